//! Taking a conversion from a shop: find its link (click id, coupon, code; a refund follows its
//! purchase), store it whatever the outcome, count it once if attributed.
//!
//! Nothing a shop sent is lost: the conversion is stored first (idempotent on its key), then
//! added to its link's counters (idempotent on its id). A delivery that failed between the two
//! steps is completed by the shop's retry.

use chrono::{DateTime, Utc};

use crate::attribution::{decide, Candidate, Decision};
use crate::domain::{ClickId, Conversion, ConversionStatus, Currency, Event, Link, Method, Money, Slug};
use crate::store::Store;

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

/// What the shop is told.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub status: ConversionStatus,
    pub conversion_id: String,
    pub method: Option<Method>,
    pub link: Option<String>,
    pub kol: Option<String>,
    pub campaign: Option<String>,
}

pub async fn accept(store: &dyn Store, incoming: Incoming) -> anyhow::Result<Outcome> {
    let decision = if incoming.event == Event::Refund {
        refund_attribution(store, &incoming).await?
    } else {
        let candidates = candidates(store, &incoming).await?;
        decide(candidates, incoming.occurred_at, incoming.currency.clone())
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
        received_at: crate::domain::now(),
    };
    let stored = store.save_conversion(&conversion).await?;
    let fresh = stored.id == conversion.id;
    let applied = if stored.status == ConversionStatus::Attributed {
        store
            .apply_conversion(&stored, &crate::counters::conversion_fields(&stored))
            .await?
    } else {
        false
    };
    // A re-delivery that finds the work done changes nothing and says so; one that completed
    // an earlier, interrupted delivery reports what was stored.
    let status = if fresh || applied {
        stored.status
    } else {
        ConversionStatus::Duplicate
    };
    Ok(Outcome {
        status,
        conversion_id: stored.id,
        method: stored.method,
        link: stored.link,
        kol: stored.kol,
        campaign: stored.campaign,
    })
}

/// The links this conversion may belong to, in order: click id, coupon, code.
async fn candidates(store: &dyn Store, c: &Incoming) -> anyhow::Result<Vec<Candidate>> {
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
        if let Some(code) = store.link_code_by_coupon(coupon).await? {
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
) -> anyhow::Result<()> {
    let json = store
        .get_record(crate::store::Kind::Campaign, link.campaign.as_str())
        .await?;
    let Some(campaign) = json.and_then(|j| serde_json::from_str::<crate::domain::Campaign>(&j).ok()) else {
        return Ok(());
    };
    out.push(Candidate {
        method,
        link: link.code.to_string(),
        kol: link.kol.to_string(),
        campaign: campaign.id.to_string(),
        window_days: campaign.attribution_window_days,
        currency: campaign.currency,
        click_at,
    });
    Ok(())
}

/// A refund takes the attribution of the purchase it reverses; without an attributed
/// purchase it is `unattributed`. Its currency must be the purchase's.
async fn refund_attribution(store: &dyn Store, c: &Incoming) -> anyhow::Result<Decision> {
    let key = Conversion::key_of(c.shop.as_str(), Event::Purchase, &c.order_id);
    let purchase = store.find_conversion(&key).await?;
    let attributed = purchase.filter(|p| p.status == ConversionStatus::Attributed);
    let (Some(p), Some(link)) = (attributed.as_ref(), attributed.as_ref().and_then(|p| p.link.clone())) else {
        return Ok(Decision {
            status: ConversionStatus::Unattributed,
            chosen: None,
            currency: c.currency.clone(),
        });
    };
    let Some(purchase_currency) = p.currency.clone() else {
        return Ok(Decision {
            status: ConversionStatus::Unattributed,
            chosen: None,
            currency: c.currency.clone(),
        });
    };
    let currency = c.currency.clone().unwrap_or_else(|| purchase_currency.clone());
    let status = if currency == purchase_currency {
        ConversionStatus::Attributed
    } else {
        ConversionStatus::CurrencyMismatch
    };
    let chosen = Candidate {
        method: Method::OrderId,
        link,
        kol: p.kol.clone().unwrap_or_default(),
        campaign: p.campaign.clone().unwrap_or_default(),
        window_days: 0,
        currency: purchase_currency,
        click_at: None,
    };
    Ok(Decision {
        status,
        chosen: Some(chosen),
        currency: Some(currency),
    })
}
