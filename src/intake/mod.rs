//! Taking a conversion from a shop, whatever platform it runs on: the one intake.
//!
//! A shop platform ([`ShopWebhooks`]: Standard Webhooks in `standard`, the next ones beside it)
//! verifies a delivery and reads it into [`Incoming`] values; [`accept`] then finds each one's
//! link (click id, coupon, code; a refund follows its purchase), stores it whatever the outcome,
//! and counts it once if attributed.
//!
//! Nothing a shop sent is lost: the conversion is stored first (idempotent on its key), then
//! added to its link's counters (idempotent on its id). A delivery that failed between the two
//! steps is completed by the shop's retry.

mod refunds;
mod standard;

use chrono::{DateTime, Utc};

pub use standard::StandardWebhooks;

use crate::attribution::{decide, Candidate};
use crate::clock::Clock;
use crate::domain::{
    Campaign, ClickId, Conversion, ConversionStatus, CouponKey, Currency, Event, Link, Method, Money, Shop,
    ShopPlatform, Slug,
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

/// Every platform kolink takes webhooks from.
pub const PLATFORMS: &[&dyn ShopWebhooks] = &[&StandardWebhooks];

/// The platform behind a webhook path segment.
pub fn by_path(path: &str) -> Option<&'static dyn ShopWebhooks> {
    PLATFORMS.iter().copied().find(|p| p.path() == path)
}

/// The webhook path segment of a shop platform.
pub fn path_of(platform: ShopPlatform) -> &'static str {
    match PLATFORMS.iter().find(|p| p.platform() == platform) {
        Some(p) => p.path(),
        None => match platform {
            ShopPlatform::Generic => "conversions",
            ShopPlatform::Shopify => "shopify",
            ShopPlatform::Woocommerce => "woocommerce",
        },
    }
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
    pub click_id: Option<String>,
    pub coupon: Option<String>,
    pub code: Option<String>,
    pub occurred_at: DateTime<Utc>,
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

pub async fn accept(store: &dyn Store, clock: &dyn Clock, incoming: Incoming) -> Result<Receipt, ApiError> {
    let decision = if incoming.event == Event::Refund {
        refunds::attribution(
            store,
            incoming.shop.as_str(),
            &incoming.order_id,
            incoming.currency.clone(),
        )
        .await?
    } else {
        let mut decision = decide(
            candidates(store, &incoming).await?,
            incoming.occurred_at,
            incoming.currency.clone(),
        );
        // The chosen campaign's currency is locked before the decision is final, so that a
        // PATCH of the currency cannot slip between the decision and the sums.
        for _ in 0..3 {
            match &decision.chosen {
                Some(c) if !c.currency_locked => lock_currency(store, &c.campaign).await?,
                _ => break,
            }
            decision = decide(
                candidates(store, &incoming).await?,
                incoming.occurred_at,
                incoming.currency.clone(),
            );
        }
        decision
    };
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
        click_id: incoming.click_id,
        coupon: incoming.coupon,
        occurred_at: incoming.occurred_at,
        received_at: clock.now_to_second(),
    };
    let stored = store.save_conversion(&conversion).await?;
    let fresh = stored.id == conversion.id;
    // Only an attributed conversion counts, once, and a refund only within its purchase.
    let (status, counted_now) = match stored.status {
        ConversionStatus::Attributed => refunds::count(store, &stored).await?,
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

/// The links this conversion may belong to, in order: click id, coupon, code.
async fn candidates(store: &dyn Store, c: &Incoming) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    if let Some(cid) = c.click_id.as_deref().and_then(ClickId::parse) {
        if let Some(code) = store.link_code_by_id(cid.link_id).await? {
            let click = store.get_click(&code, cid.entry).await?;
            if let Some(click) = click.filter(|k| !k.info.bot) {
                let at = DateTime::from_timestamp_millis(click.entry.ms as i64);
                if let Some(link) = store.get_link(&code).await? {
                    push(store, &mut out, Method::ClickId, &link, at).await?;
                }
            }
        }
    }
    if let Some(coupon) = c.coupon.as_deref().filter(|s| !s.is_empty()) {
        if let Some(code) = store.link_code_by_coupon(&CouponKey::of(coupon)).await? {
            if let Some(link) = store.get_link(&code).await? {
                push(store, &mut out, Method::Coupon, &link, None).await?;
            }
        }
    }
    if let Some(code) = c.code.as_deref().filter(|s| !s.is_empty()) {
        if let Some(link) = store.get_link(code).await? {
            push(store, &mut out, Method::Code, &link, None).await?;
        }
    }
    Ok(out)
}

async fn push(
    store: &dyn Store,
    out: &mut Vec<Candidate>,
    method: Method,
    link: &Link,
    click_at: Option<DateTime<Utc>>,
) -> Result<()> {
    let Some(campaign) = store.get::<Campaign>(link.campaign.as_str()).await? else {
        return Ok(());
    };
    out.push(Candidate {
        method,
        link: link.code.to_string(),
        kol: link.kol.to_string(),
        campaign: campaign.id.to_string(),
        window_days: campaign.attribution_window_days,
        currency: campaign.currency,
        currency_locked: campaign.currency_locked,
        click_at,
    });
    Ok(())
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
