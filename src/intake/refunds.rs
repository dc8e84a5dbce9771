//! Refunds. A refund reverses (part of) a purchase and takes its attribution: same link,
//! counted as refunds there (a refund of a purchase that was not counted, a test or one
//! outside the window or in another currency, takes its status and is not counted either). Several partial refunds may follow one purchase; one that would
//! take the order's refunds past the purchase amount is `over_refund` and not counted (checked
//! and counted in one atomic store step). A refund that arrives before its purchase is
//! `pending` until the purchase arrives, then applied.

use crate::attribution::{Candidate, Decision};
use crate::domain::{AuditEntry, AuditResult, Conversion, ConversionStatus, Currency, Event, Method};
use crate::store::{Counted, RefundCap, Result, Store};

/// The attribution of a refund of `order_id`: its purchase's, or `pending` while there is none.
pub(super) async fn attribution(
    store: &dyn Store,
    shop: &str,
    order_id: &str,
    currency: Option<Currency>,
) -> Result<Decision> {
    let key = Conversion::key_of(shop, Event::Purchase, order_id);
    let Some(purchase) = store.find_conversion(&key).await? else {
        return Ok(Decision {
            status: ConversionStatus::Pending,
            chosen: None,
            currency,
        });
    };
    let unattributed = Decision {
        status: ConversionStatus::Unattributed,
        chosen: None,
        currency: currency.clone(),
    };
    let (Some(link), Some(purchase_currency)) = (purchase.link.clone(), purchase.currency.clone()) else {
        return Ok(unattributed);
    };
    let currency = currency.unwrap_or_else(|| purchase_currency.clone());
    let status = match purchase.status {
        ConversionStatus::Attributed if currency == purchase_currency => ConversionStatus::Attributed,
        ConversionStatus::Attributed => ConversionStatus::CurrencyMismatch,
        // A refund of a purchase that was not counted is not counted either (only what is
        // attributed counts), and says why, on the purchase's link: a test order's refund is
        // a test, one of a purchase outside the window or in another currency is that too.
        s @ (ConversionStatus::Test | ConversionStatus::OutsideWindow | ConversionStatus::CurrencyMismatch) => s,
        _ => return Ok(unattributed),
    };
    Ok(Decision {
        status,
        chosen: Some(Candidate {
            method: Method::OrderId,
            link,
            kol: purchase.kol.clone().unwrap_or_default(),
            campaign: purchase.campaign.clone().unwrap_or_default(),
            window_days: 0,
            currency: purchase_currency,
            // The purchase locked its campaign.
            currency_locked: true,
            click_at: None,
            claim: 0,
        }),
        currency: Some(currency),
    })
}

/// A refund's audit trail: the purchase it follows.
pub(super) fn audit(order_id: &str, d: &Decision) -> Vec<AuditEntry> {
    vec![AuditEntry {
        source: "order_id".to_owned(),
        method: Method::OrderId,
        value: order_id.to_owned(),
        link: d.chosen.as_ref().map(|c| c.link.clone()),
        result: match &d.chosen {
            Some(_) => AuditResult::Chosen,
            None => AuditResult::NoLink,
        },
    }]
}

/// Counts an attributed conversion on its link, once; a refund only within its purchase's
/// amount. Returns the status the conversion ends with (an over-refund is stored as such) and
/// whether this call counted it.
pub(super) async fn count(store: &dyn Store, c: &Conversion) -> Result<(ConversionStatus, bool)> {
    let (status, now) = count_unsaved(store, c).await?;
    if status != c.status {
        let mut changed = c.clone();
        changed.status = status;
        store.update_conversion(&changed).await?;
    }
    Ok((status, now))
}

/// `count`, leaving the stored record to the caller.
async fn count_unsaved(store: &dyn Store, c: &Conversion) -> Result<(ConversionStatus, bool)> {
    let Some(code) = &c.link else {
        return Ok((c.status, false));
    };
    let cap = match c.event {
        Event::Refund => {
            let order = Conversion::key_of(c.shop.as_str(), Event::Purchase, &c.order_id);
            let limit = store
                .find_conversion(&order)
                .await?
                .and_then(|p| p.amount)
                .map_or(0, |a| a.minor());
            let amount = c.amount.map_or(0, |a| a.minor());
            Some(RefundCap { order, amount, limit })
        }
        _ => None,
    };
    let fields = crate::counters::conversion_fields(c);
    Ok(
        match store.count_conversion(code, &c.id, &fields, cap.as_ref()).await? {
            Counted::Now => (c.status, true),
            Counted::Before => (c.status, false),
            Counted::OverRefund => (ConversionStatus::OverRefund, false),
        },
    )
}

/// Applies the refunds that wait for the purchase `order_id` of `shop`, now that it is stored.
/// Safe to run more than once and concurrently: counting is once per refund.
pub(super) async fn settle(store: &dyn Store, shop: &str, order_id: &str) -> Result<()> {
    let order = Conversion::key_of(shop, Event::Purchase, order_id);
    for refund_key in store.pending(&order).await? {
        if let Some(mut r) = store.find_conversion(&refund_key).await? {
            if r.status == ConversionStatus::Pending {
                let d = attribution(store, shop, order_id, r.currency.clone()).await?;
                if d.status == ConversionStatus::Pending {
                    continue;
                }
                r.audit = audit(order_id, &d);
                r.status = d.status;
                r.currency = d.currency.clone();
                r.method = d.chosen.as_ref().map(|c| c.method);
                r.link = d.chosen.as_ref().map(|c| c.link.clone());
                r.kol = d.chosen.as_ref().map(|c| c.kol.clone());
                r.campaign = d.chosen.as_ref().map(|c| c.campaign.clone());
                if r.status == ConversionStatus::Attributed {
                    // Counted first, stored once with the status it ends with.
                    let (status, _) = count_unsaved(store, &r).await?;
                    r.status = status;
                }
                store.update_conversion(&r).await?;
            }
        }
        store.remove_pending(&order, &refund_key).await?;
    }
    Ok(())
}
