//! The records kolink keeps: campaigns, KOLs, links, shops, clicks and conversions.
//! They are what the store saves (as JSON) and what the API shows, less secrets.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ClickInfo, Coupon, Currency, Destination, EntryId, Money, Platform, ShortCode, Slug, Tier, Utm};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Campaign {
    pub id: Slug,
    pub name: String,
    pub destination: Option<Destination>,
    pub currency: Currency,
    pub goal_event: Event,
    pub attribution_window_days: u32,
    pub utm: Utm,
    /// Set when the first conversion is stored for the campaign: from then on its currency
    /// cannot change, so that its sums never mix currencies.
    #[serde(default)]
    pub currency_locked: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kol {
    pub id: Slug,
    pub name: String,
    pub handle: Option<String>,
    pub platform: Platform,
    pub followers: u64,
    /// Derived from `followers`; kept in the record so that stats rows need no second lookup.
    pub tier: Tier,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStatus {
    Active,
    Disabled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Link {
    /// Numeric id, part of every click id of this link.
    pub id: u64,
    pub code: ShortCode,
    pub campaign: Slug,
    pub kol: Slug,
    pub destination: Destination,
    pub target_url: String,
    /// The merged UTM set in force (defaults, then the campaign's, then the link's own); the
    /// target is rebuilt from it when the destination changes.
    pub utm: Utm,
    pub cost: Money,
    pub coupon: Option<Coupon>,
    pub tags: Vec<String>,
    pub status: LinkStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What reports need of a link: stored on its own beside the link indexes
/// (`store::LinkRows::Summaries`), and also decoded from the whole record, whose destination,
/// target URL, UTM set and tags it skips.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkSummary {
    pub code: ShortCode,
    pub campaign: Slug,
    pub kol: Slug,
    pub cost: Money,
    #[serde(deserialize_with = "super::stamp::deserialize_utc")]
    pub created_at: DateTime<Utc>,
}

impl LinkSummary {
    /// Decodes a summary. One as kolink writes it (`serde_json::to_string`: its fields in
    /// their order, strings without escapes) is read field by field, each through its own
    /// parser, as `Deserialize` would read it: a campaign's first report decodes one per link,
    /// and serde_json took about 3,600 instructions each. Anything else (an older link record
    /// standing in for its summary, other spacing, an escape) is read by serde_json.
    pub fn from_json(json: &str) -> serde_json::Result<Self> {
        match Self::as_written(json) {
            Some(summary) => Ok(summary),
            None => serde_json::from_str(json),
        }
    }

    fn as_written(json: &str) -> Option<Self> {
        let rest = json.strip_prefix(r#"{"code":""#)?;
        let (code, rest) = plain_string(rest)?;
        let (campaign, rest) = plain_string(rest.strip_prefix(r#","campaign":""#)?)?;
        let (kol, rest) = plain_string(rest.strip_prefix(r#","kol":""#)?)?;
        let (cost, rest) = plain_string(rest.strip_prefix(r#","cost":""#)?)?;
        let (created_at, rest) = plain_string(rest.strip_prefix(r#","created_at":""#)?)?;
        (rest == "}").then_some(())?;
        Some(LinkSummary {
            code: ShortCode::stored(code).ok()?,
            campaign: Slug::parse(campaign).ok()?,
            kol: Slug::parse(kol).ok()?,
            cost: Money::parse(cost).ok()?,
            created_at: super::stamp::parse_utc(created_at).ok()?,
        })
    }
}

/// A JSON string's text up to its closing quote, and what follows it; `None` if an escape or
/// a control character (which JSON does not allow raw) comes first.
fn plain_string(s: &str) -> Option<(&str, &str)> {
    let end = s.bytes().position(|b| b == b'"' || b == b'\\' || b < 0x20)?;
    (s.as_bytes()[end] == b'"').then(|| (&s[..end], &s[end + 1..]))
}

impl From<&Link> for LinkSummary {
    fn from(l: &Link) -> Self {
        LinkSummary {
            code: l.code.clone(),
            campaign: l.campaign.clone(),
            kol: l.kol.clone(),
            cost: l.cost,
            created_at: l.created_at,
        }
    }
}

impl Link {
    /// True when the link redirects people right now.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        live(self.status, self.expires_at, now)
    }

    /// Whether the link redirects people right now, and if not, why.
    pub fn standing(&self, now: DateTime<Utc>) -> Standing {
        if self.status == LinkStatus::Disabled {
            Standing::Disabled
        } else if live(self.status, self.expires_at, now) {
            Standing::Active
        } else {
            Standing::Expired
        }
    }
}

/// Whether a link redirects people now (`active`), or why not: what a page shows beside a
/// link, so that nobody hands out one that has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Standing {
    Active,
    Disabled,
    Expired,
}

fn live(status: LinkStatus, expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    status == LinkStatus::Active && expires_at.is_none_or(|e| e > now)
}

/// What a redirect needs of a link, as the redirect's cache keeps it: about a third of the
/// whole record's memory (no destination, UTM set, campaign, KOL, coupon or tags), which at
/// 100,000 cached links is tens of megabytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    pub id: u64,
    pub code: ShortCode,
    pub target_url: Box<str>,
    pub status: LinkStatus,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Redirect {
    /// True when the link redirects people right now (as `Link::is_live`).
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        live(self.status, self.expires_at, now)
    }
}

impl From<Link> for Redirect {
    fn from(l: Link) -> Self {
        Redirect {
            id: l.id,
            code: l.code,
            target_url: l.target_url.into_boxed_str(),
            status: l.status,
            expires_at: l.expires_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShopPlatform {
    Generic,
    Shopify,
    Woocommerce,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Shop {
    pub id: Slug,
    pub name: String,
    pub platform: ShopPlatform,
    /// The signing secret: `whsec_…` for generic shops, the platform's own otherwise.
    pub secret: String,
    /// The secret before the last rotation, valid until `previous_until` so that deliveries
    /// signed with it during the switch are not refused.
    #[serde(default)]
    pub previous_secret: Option<String>,
    #[serde(default)]
    pub previous_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Shop {
    /// The secrets a delivery may be signed with at `now`: the current one, and the previous
    /// one while its grace period lasts.
    pub fn secrets_at(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut out = vec![self.secret.as_str()];
        if let (Some(p), Some(until)) = (&self.previous_secret, self.previous_until) {
            if now < until {
                out.push(p.as_str());
            }
        }
        out
    }
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop")
            .field("id", &self.id)
            .field("platform", &self.platform)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A read-only link to a KOL's own figures. The token handed out is `<id>_<secret>`; only
/// the SHA-256 of the secret is kept.
#[derive(Clone, Serialize, Deserialize)]
pub struct Share {
    pub id: String,
    pub kol: Slug,
    /// Only this campaign's links, when set.
    pub campaign: Option<Slug>,
    /// Hex SHA-256 of the token's secret part.
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Share {
    /// True when the share can be opened at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("id", &self.id)
            .field("kol", &self.kol)
            .field("secret_sha256", &"[redacted]")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Purchase,
    Signup,
    Lead,
    Install,
    Subscribe,
    Refund,
}

impl Event {
    pub const ALL: [Event; 6] = [
        Event::Purchase,
        Event::Signup,
        Event::Lead,
        Event::Install,
        Event::Subscribe,
        Event::Refund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Purchase => "purchase",
            Event::Signup => "signup",
            Event::Lead => "lead",
            Event::Install => "install",
            Event::Subscribe => "subscribe",
            Event::Refund => "refund",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversionStatus {
    Attributed,
    Duplicate,
    Unattributed,
    OutsideWindow,
    CurrencyMismatch,
    /// A refund whose purchase has not arrived yet; applied when it does.
    Pending,
    /// A refund that would take an order's refunds past its purchase amount; not counted.
    OverRefund,
    /// A shop platform's test order: stored, never counted.
    Test,
}

impl ConversionStatus {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// How a conversion was tied to its link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    ClickId,
    Coupon,
    Code,
    /// A refund inherits the attribution of the purchase it reverses.
    OrderId,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversion {
    pub id: String,
    pub shop: Slug,
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    pub event: Event,
    pub amount: Option<Money>,
    pub currency: Option<Currency>,
    pub status: ConversionStatus,
    pub method: Option<Method>,
    pub link: Option<String>,
    pub kol: Option<String>,
    pub campaign: Option<String>,
    pub click_id: Option<String>,
    pub coupon: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// Every candidate that was considered, in order: what it pointed to, and why it won or lost.
    #[serde(default)]
    pub audit: Vec<AuditEntry>,
}

/// One candidate of a conversion's attribution, as the audit trail shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Where the shop's data held it: `click_id`, `cart_attribute`, `landing_site`,
    /// `discount_code`, `coupon_line`, `order_meta`, `order_attribution`, `coupon`, `code`, `order_id`.
    pub source: String,
    pub method: Method,
    pub value: String,
    /// The link it pointed to, if any.
    pub link: Option<String>,
    pub result: AuditResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditResult {
    /// This candidate's link got the conversion.
    Chosen,
    /// It qualified, but a candidate before it won.
    LowerPriority,
    /// It names no link (unknown click id, coupon or code).
    NoLink,
    /// The click id is a bot's.
    BotClick,
    /// The click came after the conversion.
    AfterConversion,
    /// The click is older than the campaign's attribution window.
    OutsideWindow,
}

impl Conversion {
    /// The key that makes a webhook delivery idempotent: (shop, event, order id), and for
    /// refunds (shop, order id, refund id). Written as a JSON array so that no id, whatever
    /// characters it holds, can make two keys alike.
    pub fn idempotency_key(&self) -> String {
        match self.event {
            Event::Refund => serde_json::json!([
                self.shop.as_str(),
                "refund",
                self.order_id,
                self.refund_id.as_deref().unwrap_or("")
            ])
            .to_string(),
            e => Self::key_of(self.shop.as_str(), e, &self.order_id),
        }
    }

    /// The idempotency key of a non-refund event: how a refund finds its purchase.
    pub fn key_of(shop: &str, event: Event, order_id: &str) -> String {
        serde_json::json!([shop, event.as_str(), order_id]).to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredClick {
    pub entry: EntryId,
    pub info: ClickInfo,
}

/// Numbers read off a platform's insights for one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayInsights {
    #[serde(default)]
    pub impressions: u64,
    #[serde(default)]
    pub reach: u64,
    #[serde(default)]
    pub likes: u64,
    #[serde(default)]
    pub comments: u64,
    #[serde(default)]
    pub shares: u64,
    #[serde(default)]
    pub saves: u64,
}

impl DayInsights {
    /// The six numbers in the order of the fields (as the dashboard's forms and lists show them).
    pub fn numbers(&self) -> [u64; 6] {
        [
            self.impressions,
            self.reach,
            self.likes,
            self.comments,
            self.shares,
            self.saves,
        ]
    }

    /// The day of six numbers in the order of `numbers`.
    pub fn from_numbers([impressions, reach, likes, comments, shares, saves]: [u64; 6]) -> Self {
        Self {
            impressions,
            reach,
            likes,
            comments,
            shares,
            saves,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn conversion(event: Event, order_id: &str, refund_id: Option<&str>) -> Conversion {
        Conversion {
            id: "cv_1".into(),
            shop: Slug::parse("acme").unwrap(),
            order_id: order_id.into(),
            refund_id: refund_id.map(str::to_owned),
            event,
            amount: None,
            currency: None,
            status: ConversionStatus::Unattributed,
            method: None,
            link: None,
            kol: None,
            campaign: None,
            click_id: None,
            coupon: None,
            occurred_at: chrono::DateTime::UNIX_EPOCH,
            received_at: chrono::DateTime::UNIX_EPOCH,
            audit: vec![],
        }
    }

    /// Summaries as `summary_json` writes them: any code, ids, cost and time of creation.
    fn written_summary() -> impl Strategy<Value = (LinkSummary, String)> {
        (
            "[A-Za-z0-9_-]{3,12}",
            "[a-z0-9][a-z0-9_-]{0,10}",
            "[a-z0-9][a-z0-9_-]{0,10}",
            0i64..1_000_000_000,
            0i64..253_402_300_799,
            0u32..1_000_000_000,
        )
            .prop_filter_map("a time out of range", |(code, campaign, kol, cost, secs, nanos)| {
                let summary = LinkSummary {
                    code: ShortCode::stored(&code).unwrap(),
                    campaign: Slug::parse(&campaign).unwrap(),
                    kol: Slug::parse(&kol).unwrap(),
                    cost: Money::from_minor(cost),
                    created_at: chrono::DateTime::from_timestamp(secs - 62_167_219_200, nanos)?,
                };
                let json = serde_json::to_string(&summary).unwrap();
                Some((summary, json))
            })
    }

    /// The same summary, compared field by field.
    fn same(a: &LinkSummary, b: &LinkSummary) -> bool {
        (
            a.code.as_str(),
            a.campaign.as_str(),
            a.kol.as_str(),
            a.cost,
            a.created_at,
        ) == (
            b.code.as_str(),
            b.campaign.as_str(),
            b.kol.as_str(),
            b.cost,
            b.created_at,
        )
    }

    proptest! {
        /// A summary as kolink writes it is read field by field, to the summary written.
        #[test]
        fn a_written_summary_reads_back_on_the_short_path((summary, json) in written_summary()) {
            let short = LinkSummary::as_written(&json);
            prop_assert!(short.as_ref().is_some_and(|s| same(s, &summary)), "{}", json);
            let read = LinkSummary::from_json(&json).unwrap();
            prop_assert!(same(&read, &summary));
        }

        /// Changed anywhere, a summary reads as serde_json reads it (through the same fields'
        /// `Deserialize`, each tested against what it replaced): the short path takes only what
        /// serde_json would read to the same summary, and leaves the rest to it.
        #[test]
        fn a_changed_summary_reads_as_serde_json_reads_it(
            (_, json) in written_summary(),
            at in any::<prop::sample::Index>(),
            cut in 0usize..3,
            with in prop::sample::select(vec!["", "\\", "\"", " ", "\t", "\\u0041", "x", "9", "-", "}", ",\"x\":1", "\u{e9}"]),
        ) {
            let at = at.index(json.len() + 1);
            let (at, end) = (at, (at + cut).min(json.len()));
            if !json.is_char_boundary(at) || !json.is_char_boundary(end) {
                return Ok(());
            }
            let changed = format!("{}{}{}", &json[..at], with, &json[end..]);
            let serde = serde_json::from_str::<LinkSummary>(&changed);
            if let Some(short) = LinkSummary::as_written(&changed) {
                prop_assert!(serde.as_ref().is_ok_and(|s| same(s, &short)), "{}", changed);
            }
            let ours = LinkSummary::from_json(&changed);
            prop_assert_eq!(ours.ok().map(|s| s.code), serde.ok().map(|s| s.code), "{}", changed);
        }
    }

    #[test]
    fn a_summary_written_otherwise_is_read_by_serde_json() {
        let spaced = r#"{ "code": "amy-serum", "campaign": "c", "kol": "amy", "cost": "10.00", "created_at": "2026-12-06T18:31:11Z" }"#;
        assert!(LinkSummary::as_written(spaced).is_none());
        assert_eq!(LinkSummary::from_json(spaced).unwrap().kol.as_str(), "amy");
        let escaped = r#"{"code":"amy-serum","campaign":"c","kol":"\u0061my","cost":"10.00","created_at":"2026-12-06T18:31:11Z"}"#;
        assert!(LinkSummary::as_written(escaped).is_none());
        assert_eq!(LinkSummary::from_json(escaped).unwrap().kol.as_str(), "amy");
        let reserved =
            r#"{"code":"api","campaign":"c","kol":"amy","cost":"10.00","created_at":"2026-12-06T18:31:11Z"}"#;
        assert_eq!(LinkSummary::as_written(reserved).unwrap().code.as_str(), "api");
        let spaced_reserved = reserved.replace(r#"":""#, r#"": ""#);
        assert_eq!(
            LinkSummary::from_json(&spaced_reserved).unwrap().code.as_str(),
            "api",
            "a code reserved after its link was minted reads either way"
        );
        let malformed = reserved.replace("\"api\"", "\"a.i\"");
        assert!(LinkSummary::as_written(&malformed).is_none());
        assert!(LinkSummary::from_json(&malformed).is_err());
        let number = r#"{"code":"amy-serum","campaign":"c","kol":"amy","cost":10,"created_at":"2026-12-06T18:31:11Z"}"#;
        assert_eq!(LinkSummary::from_json(number).unwrap().cost, Money::from_minor(1000));
    }

    #[test]
    fn idempotency_keys_cannot_be_forged_by_separators_in_ids() {
        let a = conversion(Event::Refund, "1|x", Some(""));
        let b = conversion(Event::Refund, "1", Some("x|"));
        assert_ne!(a.idempotency_key(), b.idempotency_key());
        let p = conversion(Event::Purchase, "1001", None);
        assert_eq!(p.idempotency_key(), Conversion::key_of("acme", Event::Purchase, "1001"));
        assert_ne!(
            p.idempotency_key(),
            conversion(Event::Signup, "1001", None).idempotency_key()
        );
    }
}
