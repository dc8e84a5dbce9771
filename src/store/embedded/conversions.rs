//! Conversions in the embedded store: the log, idempotent saves, and counting on a link once.

use redb::{ReadableDatabase, ReadableTable};

use super::counters::add_counters;
use super::tables::*;
use super::{before, next_seq, EmbeddedStore};
use crate::domain::Conversion;
use crate::store::{Conversions, Counted, Cursor, RefundCap, Result, Scan};

#[async_trait::async_trait]
impl Conversions for EmbeddedStore {
    async fn save_conversion(&self, conversion: &Conversion) -> Result<Conversion> {
        let conversion = conversion.clone();
        self.write(move |txn| {
            let key = conversion.idempotency_key();
            let existing = txn.open_table(CONVERSION_IDEM)?.get(key.as_str())?.map(|v| v.value());
            if let Some(seq) = existing {
                if let Some(json) = txn.open_table(CONVERSIONS)?.get(seq)? {
                    return Ok(serde_json::from_str(json.value())?);
                }
            }
            let seq = next_seq(txn, "conversions", 1)?;
            txn.open_table(CONVERSIONS)?
                .insert(seq, serde_json::to_string(&conversion)?.as_str())?;
            txn.open_table(CONVERSION_IDEM)?.insert(key.as_str(), seq)?;
            Ok(conversion)
        })
        .await
    }

    async fn find_conversion(&self, idempotency_key: &str) -> Result<Option<Conversion>> {
        let key = idempotency_key.to_owned();
        self.run(move |db| {
            let txn = db.begin_read()?;
            let Some(seq) = txn.open_table(CONVERSION_IDEM)?.get(key.as_str())?.map(|v| v.value()) else {
                return Ok(None);
            };
            let json = txn.open_table(CONVERSIONS)?.get(seq)?.map(|v| v.value().to_owned());
            Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
        })
        .await
    }

    async fn count_conversion(
        &self,
        code: &str,
        conversion_id: &str,
        fields: &[(String, i64)],
        refund: Option<&RefundCap>,
    ) -> Result<Counted> {
        let (code, id, fields, refund) = (
            code.to_owned(),
            conversion_id.to_owned(),
            fields.to_vec(),
            refund.cloned(),
        );
        self.write(move |txn| {
            let mut orders = txn.open_table(ORDERS)?;
            if orders.get((code.as_str(), id.as_str()))?.is_some() {
                return Ok(Counted::Before);
            }
            if let Some(r) = &refund {
                let mut refunded = txn.open_table(REFUNDED)?;
                let key = (code.as_str(), r.order.as_str());
                let so_far = refunded.get(key)?.map(|v| v.value()).unwrap_or(0);
                if so_far.saturating_add(r.amount) > r.limit {
                    return Ok(Counted::OverRefund);
                }
                refunded.insert(key, so_far + r.amount)?;
            }
            orders.insert((code.as_str(), id.as_str()), ())?;
            let sums = fields.iter().map(|(f, n)| ((code.as_str(), f.as_str()), *n)).collect();
            add_counters(txn, sums)?;
            Ok(Counted::Now)
        })
        .await
    }

    async fn is_counted(&self, code: &str, conversion_id: &str) -> Result<bool> {
        let (code, id) = (code.to_owned(), conversion_id.to_owned());
        self.run(move |db| {
            let orders = db.begin_read()?.open_table(ORDERS)?;
            Ok(orders.get((code.as_str(), id.as_str()))?.is_some())
        })
        .await
    }

    async fn update_conversion(&self, conversion: &Conversion) -> Result<()> {
        let (key, json) = (conversion.idempotency_key(), serde_json::to_string(conversion)?);
        self.write(move |txn| {
            let seq = txn.open_table(CONVERSION_IDEM)?.get(key.as_str())?.map(|v| v.value());
            if let Some(seq) = seq {
                txn.open_table(CONVERSIONS)?.insert(seq, json.as_str())?;
            }
            Ok(())
        })
        .await
    }

    async fn add_pending(&self, order_key: &str, refund_key: &str) -> Result<()> {
        let (order, refund) = (order_key.to_owned(), refund_key.to_owned());
        self.write(move |txn| {
            txn.open_table(PENDING)?.insert((order.as_str(), refund.as_str()), ())?;
            Ok(())
        })
        .await
    }

    async fn pending(&self, order_key: &str) -> Result<Vec<String>> {
        let order = order_key.to_owned();
        self.run(move |db| {
            let t = db.begin_read()?.open_table(PENDING)?;
            let mut out = Vec::new();
            for row in t.range((order.as_str(), "")..)? {
                let (k, _) = row?;
                let (o, refund) = k.value();
                if o != order {
                    break;
                }
                out.push(refund.to_owned());
            }
            Ok(out)
        })
        .await
    }

    async fn remove_pending(&self, order_key: &str, refund_key: &str) -> Result<()> {
        let (order, refund) = (order_key.to_owned(), refund_key.to_owned());
        self.write(move |txn| {
            txn.open_table(PENDING)?.remove((order.as_str(), refund.as_str()))?;
            Ok(())
        })
        .await
    }

    async fn scan_conversions(&self, after: Option<Cursor>, limit: usize) -> Result<Scan<Conversion>> {
        let before = before(after)?;
        self.run(move |db| {
            let t = db.begin_read()?.open_table(CONVERSIONS)?;
            let mut out = Vec::new();
            for row in t.range(0..before)?.rev().take(limit) {
                let (seq, json) = row?;
                out.push((Cursor::mint([seq.value()]), serde_json::from_str(json.value())?));
            }
            Ok(out)
        })
        .await
    }
}
