//! Taking a conversion from a shop, whatever platform it runs on: the one intake.
//!
//! A shop platform ([`ShopWebhooks`]: Standard Webhooks in `standard`, Shopify in `shopify`,
//! WooCommerce in `woocommerce`)
//! verifies a delivery and reads it into [`Incoming`] values; [`accept`] then finds each one's
//! link (click id, coupon, code; a refund follows its purchase), stores it whatever the outcome,
//! and counts it once if attributed.
//!
//! Nothing a shop sent is lost: the conversion is stored first (idempotent on its key), then
//! added to its link's counters (idempotent on its id). A delivery that failed between the two
//! steps is completed by the shop's retry.

mod refunds;
mod shopify;
mod standard;
mod woocommerce;

use chrono::{DateTime, Utc};

pub use shopify::Shopify;
pub use standard::StandardWebhooks;
pub use woocommerce::WooCommerce;

use crate::attribution::{self, decide, Candidate, Unqualified};
use crate::clock::Clock;
use crate::domain::{
    AuditEntry, AuditResult, Campaign, ClickId, Conversion, ConversionStatus, CouponKey, Currency, Event, Link, Method,
    Money, Shop, ShopPlatform, Slug,
};
use crate::error::ApiError;
use crate::store::{RecordsExt, Result, Store};

/// A delivery as it arrived: its headers (by lower-case name) and its exact body.
pub struct Delivery<'a> {
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
    pub body: &'a [u8],
}

/// One shop platform's webhooks: how a delivery is verified, and what it says.
pub trait ShopWebhooks: Send + Sync {
    /// The platform whose shops send these webhooks.
    fn platform(&self) -> ShopPlatform;

    /// The path segment of its webhook URL: `/webhooks/<path>/<shop>`.
    fn path(&self) -> &'static str;

    /// Checks that the delivery comes from `shop` (signature, freshness), before anything
    /// else reads it; `401` when it does not.
    fn verify(&self, shop: &Shop, delivery: &Delivery<'_>, now: DateTime<Utc>) -> Result<(), ApiError>;

    /// Reads a verified delivery into the conversions it reports (none for a ping).
    fn parse(&self, shop: &Shop, delivery: &Delivery<'_>, now: DateTime<Utc>) -> Result<Vec<Incoming>, ApiError>;
}

/// Checks a platform's body signature (base64 HMAC-SHA256 of the raw body) against the shop's
/// secrets in force: `header` names the header for the error messages.
pub(super) fn check_body_signature(
    shop: &Shop,
    d: &Delivery<'_>,
    now: DateTime<Utc>,
    signature: Option<&str>,
    header: &str,
) -> Result<(), ApiError> {
    let Some(signature) = signature else {
        return Err(ApiError::new(
            crate::error::Code::InvalidSignature,
            format!("The {header} header is missing."),
        ));
    };
    let secrets = shop.secrets_at(now);
    if secrets
        .iter()
        .any(|secret| crate::signature::body_hmac_matches(secret.as_bytes(), d.body, signature))
    {
        Ok(())
    } else {
        Err(ApiError::new(
            crate::error::Code::InvalidSignature,
            format!("{header} does not match the body: check the shop's secret in kolink."),
        ))
    }
}

/// A list or a flag a platform may send as `null` where its documents show a value: read as
/// empty (`false`), as when it is missing, rather than losing the order to a 400.
pub(super) fn null_as_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An order, refund or webhook id as platforms send it: a JSON number or a short string.
pub(super) fn id_text(v: &serde_json::Value) -> Result<String, ApiError> {
    match v {
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::String(s) if !s.is_empty() && s.len() <= 128 => Ok(s.clone()),
        _ => Err(ApiError::invalid("id must be a number or a short string.")),
    }
}

/// Every platform kolink takes webhooks from.
pub const PLATFORMS: &[&dyn ShopWebhooks] = &[&StandardWebhooks, &Shopify, &WooCommerce];

/// The platform behind a webhook path segment.
pub fn by_path(path: &str) -> Option<&'static dyn ShopWebhooks> {
    PLATFORMS.iter().copied().find(|p| p.path() == path)
}

/// The webhooks of a shop platform (every platform is in `PLATFORMS`; a test says so).
pub fn of_platform(platform: ShopPlatform) -> Option<&'static dyn ShopWebhooks> {
    PLATFORMS.iter().copied().find(|p| p.platform() == platform)
}

/// The webhook path segment of a shop platform.
pub fn path_of(platform: ShopPlatform) -> &'static str {
    of_platform(platform).map_or("conversions", |p| p.path())
}

/// A conversion as a shop reported it, already validated.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub shop: Slug,
    pub order_id: String,
    pub refund_id: Option<String>,
    pub event: Event,
    pub amount: Option<Money>,
    pub currency: Option<Currency>,
    /// What the delivery says about its link, in the order they are tried.
    pub claims: Vec<Claim>,
    pub occurred_at: DateTime<Utc>,
    /// A shop platform's test order: stored as `test`, never counted.
    pub test: bool,
}

/// One thing a delivery says about which link a conversion came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// `ClickId`, `Coupon` or `Code`.
    pub method: Method,
    pub value: String,
    /// Where in the delivery it was (see `AuditEntry::source`).
    pub source: &'static str,
}

impl Claim {
    pub fn new(method: Method, value: impl Into<String>, source: &'static str) -> Self {
        Self {
            method,
            value: value.into(),
            source,
        }
    }
}

/// A claim worth keeping: not empty, at most 128 bytes, no control characters, and a click id
/// or a link's code only of the characters kolink writes them with (letters, digits, `-`, `_`).
/// Shoppers can put anything in a cart attribute or a landing URL, and a conversion's audit
/// keeps its claims for the dashboard and the conversions CSV (`x;=HYPERLINK(…)`, which a
/// spreadsheet splitting at `;` would run).
pub(super) fn fair_claim(c: &Claim) -> bool {
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    !c.value.is_empty()
        && c.value.len() <= 128
        && !crate::domain::has_control_chars(&c.value)
        && (!matches!(c.method, Method::ClickId | Method::Code) || plain(&c.value))
}

/// What follows a conversion's storing: an attributed one counts, once, and a refund only
/// within its purchase; a refund stored `pending` waits for its purchase (`fresh`: this call
/// stored it), and a purchase settles the refunds waiting for it. Each step may be taken again:
/// a delivery again, or `complete_recent`, finishes what a stop cut short. Returns the status
/// after counting and whether it counted now.
async fn after_save(store: &dyn Store, stored: &Conversion, fresh: bool) -> Result<(ConversionStatus, bool)> {
    let (status, counted_now) = match stored.status {
        ConversionStatus::Attributed => refunds::count(store, stored).await?,
        s => (s, false),
    };
    match stored.event {
        Event::Refund if fresh && stored.status == ConversionStatus::Pending => {
            let purchase = Conversion::key_of(stored.shop.as_str(), Event::Purchase, &stored.order_id);
            store.add_pending(&purchase, &stored.idempotency_key()).await?;
            // The purchase may have been stored between this refund's look and now.
            refunds::settle(store, stored.shop.as_str(), &stored.order_id).await?;
        }
        Event::Purchase => refunds::settle(store, stored.shop.as_str(), &stored.order_id).await?,
        _ => {}
    }
    Ok((status, counted_now))
}

/// How far back a start looks for conversions whose counting a stop cut short.
pub const COMPLETE_SINCE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// How old a conversion must be for a start to finish it: younger ones may be a delivery that
/// another process (on one Redis) is counting now, which would then be answered `duplicate`.
pub const COMPLETE_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The most conversions a start looks at for `complete_recent`.
const COMPLETE_AT_MOST: usize = 20_000;

/// Finishes the conversions received from `since` to `until` whose counting a stop (a kill, a
/// crash, a store that went away mid-way) cut short after they were stored: they were listed
/// as attributed and not in the figures until the shop delivered them again, and a shop that
/// did not left the list and the figures apart for good. Only what is missing is written: an
/// attributed conversion not counted yet, a pending refund (its waiting is noted again), and
/// a purchase's waiting refunds. Returns how many counted now.
pub async fn complete_recent(store: &dyn Store, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<usize> {
    let mut after = None;
    let (mut seen, mut completed) = (0, 0);
    loop {
        let page = store.scan_conversions(after.take(), 500).await?;
        let last = page.len() < 500;
        for (cursor, c) in page {
            if c.received_at < since || seen >= COMPLETE_AT_MOST {
                return Ok(completed);
            }
            seen += 1;
            after = Some(cursor);
            if c.received_at > until {
                continue;
            }
            let uncounted = match (&c.status, &c.link) {
                (ConversionStatus::Attributed, Some(code)) => !store.is_counted(code, &c.id).await?,
                _ => false,
            };
            let pending_refund = c.event == Event::Refund && c.status == ConversionStatus::Pending;
            if uncounted || pending_refund {
                if after_save(store, &c, true).await?.1 {
                    completed += 1;
                }
            } else if c.event == Event::Purchase {
                refunds::settle(store, c.shop.as_str(), &c.order_id).await?;
            }
        }
        if last {
            return Ok(completed);
        }
    }
}

/// What the shop is told about one conversion.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Receipt {
    pub status: ConversionStatus,
    pub conversion_id: String,
    pub method: Option<Method>,
    pub link: Option<String>,
    pub kol: Option<String>,
    pub campaign: Option<String>,
}

pub async fn accept(store: &dyn Store, clock: &dyn Clock, mut incoming: Incoming) -> Result<Receipt, ApiError> {
    // To the second, as every time kolink writes: a delivery without a time of its own is
    // dated by the clock, which has nanoseconds.
    incoming.occurred_at = chrono::SubsecRound::trunc_subsecs(incoming.occurred_at, 0);
    let (mut decision, audit) = if incoming.event == Event::Refund {
        let d = refunds::attribution(
            store,
            incoming.shop.as_str(),
            &incoming.order_id,
            incoming.currency.clone(),
        )
        .await?;
        let audit = refunds::audit(&incoming.order_id, &d);
        (d, audit)
    } else {
        let (mut found, mut audit) = candidates(store, clock, &incoming, true).await?;
        let mut decision = decide(found.clone(), incoming.occurred_at, incoming.currency.clone());
        // The chosen campaign's currency is locked before the decision is final, so that a
        // PATCH of the currency cannot slip between the decision and the sums. Only a
        // conversion that counts locks it: one in another currency, or outside the window,
        // is not in the sums, and its campaign's currency must stay free to be corrected (test
        // orders count nothing and lock nothing).
        for _ in 0..3 {
            match &decision.chosen {
                Some(c) if !c.currency_locked && !incoming.test && decision.status == ConversionStatus::Attributed => {
                    lock_currency(store, &c.campaign).await?
                }
                _ => break,
            }
            (found, audit) = candidates(store, clock, &incoming, false).await?;
            decision = decide(found.clone(), incoming.occurred_at, incoming.currency.clone());
        }
        settle_audit(&mut audit, &found, decision.chosen.as_ref(), incoming.occurred_at);
        (decision, audit)
    };
    if incoming.test {
        decision.status = ConversionStatus::Test;
    }
    let first = |m: Method| incoming.claims.iter().find(|c| c.method == m).map(|c| c.value.clone());
    let (click_id, coupon) = (first(Method::ClickId), first(Method::Coupon));
    let chosen = decision.chosen;
    let conversion = Conversion {
        id: format!("cv_{}", nanoid::nanoid!(20)),
        shop: incoming.shop,
        order_id: incoming.order_id,
        refund_id: incoming.refund_id,
        event: incoming.event,
        amount: incoming.amount,
        currency: decision.currency,
        status: decision.status,
        method: chosen.as_ref().map(|c| c.method),
        link: chosen.as_ref().map(|c| c.link.clone()),
        kol: chosen.as_ref().map(|c| c.kol.clone()),
        campaign: chosen.as_ref().map(|c| c.campaign.clone()),
        click_id,
        coupon,
        occurred_at: incoming.occurred_at,
        received_at: clock.now_to_second(),
        audit,
    };
    let stored = store.save_conversion(&conversion).await?;
    let fresh = stored.id == conversion.id;
    let (status, counted_now) = after_save(store, &stored, fresh).await?;
    // Exactly one answer per conversion says `attributed`: the delivery that counted it (the
    // first, or the one that completed an interrupted first). Deliveries racing it, and later
    // ones, are `duplicate`; so are re-deliveries of conversions that were not counted.
    let status = match status {
        ConversionStatus::Attributed if counted_now => ConversionStatus::Attributed,
        s if fresh && s != ConversionStatus::Attributed => s,
        _ => ConversionStatus::Duplicate,
    };
    Ok(Receipt {
        status,
        conversion_id: stored.id,
        method: stored.method,
        link: stored.link,
        kol: stored.kol,
        campaign: stored.campaign,
    })
}

/// The links this conversion's claims point to, in the claims' order, with an audit entry per
/// claim (its result settled by `settle_audit` once the decision is made). With `wait`, a
/// recent click that is not stored yet is waited for (`click_link`).
async fn candidates(
    store: &dyn Store,
    clock: &dyn Clock,
    c: &Incoming,
    wait: bool,
) -> Result<(Vec<Candidate>, Vec<AuditEntry>)> {
    let mut found = Vec::new();
    let mut audit = Vec::with_capacity(c.claims.len());
    for (i, claim) in c.claims.iter().enumerate() {
        let mut entry = AuditEntry {
            source: claim.source.to_owned(),
            method: claim.method,
            value: claim.value.clone(),
            link: None,
            result: AuditResult::NoLink,
        };
        let (link, click_at) = match claim.method {
            Method::ClickId => match click_link(store, clock, &claim.value, wait).await? {
                ClickLink::Person(link, at) => (Some(*link), at),
                ClickLink::Bot(code) => {
                    entry.link = Some(code);
                    entry.result = AuditResult::BotClick;
                    (None, None)
                }
                ClickLink::None => (None, None),
            },
            Method::Coupon => {
                // The older key first: a coupon still under it is one that could not move to
                // today's key, which another link's coupon holds (`straße` beside `STRASSE`,
                // told apart before non-ASCII letters folded), or one an older process wrote;
                // either way the code as sent names it, while that link still has the coupon
                // (an index entry left by an older version's change of it does not count).
                // Else today's key.
                let key = CouponKey::of(&claim.value);
                let older = match CouponKey::legacy(&claim.value) {
                    Some(old) => match store.link_code_by_coupon(&old).await? {
                        Some(code) => store
                            .get_link(&code)
                            .await?
                            .filter(|l| l.coupon.as_ref().is_some_and(|c| c.key() == key)),
                        None => None,
                    },
                    None => None,
                };
                match older {
                    Some(link) => (Some(link), None),
                    None => match store.link_code_by_coupon(&key).await? {
                        Some(code) => (store.get_link(&code).await?, None),
                        None => (None, None),
                    },
                }
            }
            Method::Code | Method::OrderId => (store.get_link(&claim.value).await?, None),
        };
        if let Some(link) = link {
            entry.link = Some(link.code.to_string());
            if let Some(campaign) = store.get::<Campaign>(link.campaign.as_str()).await? {
                found.push(Candidate {
                    method: claim.method,
                    link: link.code.to_string(),
                    kol: link.kol.to_string(),
                    campaign: campaign.id.to_string(),
                    window_days: campaign.attribution_window_days,
                    currency: campaign.currency,
                    currency_locked: campaign.currency_locked,
                    click_at,
                    claim: i,
                });
            }
        }
        audit.push(entry);
    }
    Ok((found, audit))
}

enum ClickLink {
    Person(Box<Link>, Option<DateTime<Utc>>),
    Bot(String),
    None,
}

/// How long a conversion waits, at most, for the click its click id names when the store does
/// not hold it yet. A click id is handed out only with a redirect whose click was stored or
/// spooled; a spooled click reaches the store when the spool is replayed, which can be a moment
/// after the store is back and its shop's webhook is taken (and is answered within Shopify's
/// 5 s).
const CLICK_ON_ITS_WAY: std::time::Duration = std::time::Duration::from_secs(3);

/// Only a click made this recently (by its id) is waited for: older ones are not on their way.
const SPOOLED_AT_MOST: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// The link and time of a click id's click; with `wait`, a recent click the store does not
/// hold yet is looked up again for up to `CLICK_ON_ITS_WAY`.
async fn click_link(store: &dyn Store, clock: &dyn Clock, value: &str, wait: bool) -> Result<ClickLink> {
    let Some(cid) = ClickId::parse(value) else {
        return Ok(ClickLink::None);
    };
    let Some(code) = store.link_code_by_id(cid.link_id).await? else {
        return Ok(ClickLink::None);
    };
    let made = DateTime::from_timestamp_millis(i64::try_from(cid.entry.ms).unwrap_or(i64::MAX));
    let now = clock.now();
    let recent = made.is_some_and(|m| m > now - SPOOLED_AT_MOST && m < now + chrono::TimeDelta::minutes(1));
    let until = std::time::Instant::now()
        + if wait && recent {
            CLICK_ON_ITS_WAY
        } else {
            Default::default()
        };
    let click = loop {
        match store.get_click(&code, cid.entry).await? {
            None if std::time::Instant::now() < until => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            found => break found,
        }
    };
    match click {
        Some(click) if click.info.bot => Ok(ClickLink::Bot(code)),
        Some(click) => match store.get_link(&code).await? {
            Some(link) => Ok(ClickLink::Person(
                Box::new(link),
                DateTime::from_timestamp_millis(click.entry.ms as i64),
            )),
            None => Ok(ClickLink::None),
        },
        None => Ok(ClickLink::None),
    }
}

/// Says, for each candidate, why it won or lost.
fn settle_audit(audit: &mut [AuditEntry], found: &[Candidate], chosen: Option<&Candidate>, occurred_at: DateTime<Utc>) {
    for c in found {
        // An outside-window conversion keeps its link for reference: the audit says why it
        // did not count, not that it was chosen.
        audit[c.claim].result = match (attribution::check(c, occurred_at), chosen) {
            (Err(Unqualified::AfterConversion), _) => AuditResult::AfterConversion,
            (Err(Unqualified::OutsideWindow), _) => AuditResult::OutsideWindow,
            (Ok(()), Some(w)) if w.claim == c.claim => AuditResult::Chosen,
            (Ok(()), _) => AuditResult::LowerPriority,
        };
    }
}

/// Marks a campaign as having conversions: its currency may no longer change.
async fn lock_currency(store: &dyn Store, campaign: &str) -> Result<(), ApiError> {
    crate::lookup::update::<Campaign>(store, campaign, "campaign", |c| {
        c.currency_locked = true;
        Ok(())
    })
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shop_platform_takes_webhooks_at_its_own_path() {
        let all = [ShopPlatform::Generic, ShopPlatform::Shopify, ShopPlatform::Woocommerce];
        for p in all {
            assert!(PLATFORMS.iter().any(|w| w.platform() == p), "{p:?}");
            assert_eq!(by_path(path_of(p)).map(|w| w.platform()), Some(p));
        }
        assert_eq!(path_of(ShopPlatform::Shopify), "shopify");
    }
}
