//! Conversions in Redis: the `{conv}` log, idempotent saves, and counting on a link once.

use redis::{AsyncCommands, Value};

use super::{failed, parse_stream_id, stream_id, RedisStore};
use crate::domain::{Conversion, EntryId};
use crate::store::{Conversions, Counted, Cursor, RefundCap, Result, Scan, StoreError};

#[async_trait::async_trait]
impl Conversions for RedisStore {
    async fn save_conversion(&self, conversion: &Conversion) -> Result<Conversion> {
        let mut inv = self.save_conversion.prepare_invoke();
        inv.key(self.conv("idem"))
            .key(self.conv("log"))
            .key(self.conv("recs"))
            .arg(conversion.idempotency_key())
            .arg(serde_json::to_string(conversion)?);
        let json: String = self
            .invoke_durably(&inv, &self.conv("log"))
            .await
            .map_err(failed("Failed to store a conversion in Redis"))?;
        Ok(serde_json::from_str(&json)?)
    }

    async fn find_conversion(&self, idempotency_key: &str) -> Result<Option<Conversion>> {
        let mut conn = self.conn();
        let id: Option<String> = conn
            .hget(self.conv("idem"), idempotency_key)
            .await
            .map_err(failed("Failed to read from Redis"))?;
        let Some(id) = id else { return Ok(None) };
        let found = self.conversions_range(&id, &id, 1, false).await?;
        Ok(found.into_iter().next().map(|(_, c)| c))
    }

    async fn count_conversion(
        &self,
        code: &str,
        conversion_id: &str,
        fields: &[(String, i64)],
        refund: Option<&RefundCap>,
    ) -> Result<Counted> {
        let mut inv = self.count_conversion.prepare_invoke();
        inv.key(self.link_key(code, "orders"))
            .key(self.link_key(code, "stats"))
            .key(self.link_key(code, "refunded"))
            .key(self.link_key(code, "rollups"))
            .key(self.link_key(code, "hours_from"))
            .arg(conversion_id);
        match refund {
            Some(r) => inv.arg(&r.order).arg(r.amount).arg(r.limit),
            None => inv.arg("").arg(0).arg(0),
        };
        inv.arg(fields.len());
        for (f, n) in fields {
            inv.arg(f).arg(n);
        }
        for (f, n) in fields {
            for r in crate::counters::rollups(f) {
                inv.arg(r).arg(n);
            }
        }
        let counted: i64 = self
            .invoke_durably(&inv, &self.link_key(code, "orders"))
            .await
            .map_err(failed("Failed to count a conversion in Redis"))?;
        Ok(match counted {
            1 => Counted::Now,
            2 => Counted::OverRefund,
            _ => Counted::Before,
        })
    }

    async fn update_conversion(&self, conversion: &Conversion) -> Result<()> {
        let mut conn = self.conn();
        let _: i64 = self
            .update_conversion
            .key(self.conv("idem"))
            .key(self.conv("recs"))
            .arg(conversion.idempotency_key())
            .arg(serde_json::to_string(conversion)?)
            .invoke_async(&mut conn)
            .await
            .map_err(failed("Failed to update a conversion in Redis"))?;
        Ok(())
    }

    async fn add_pending(&self, order_key: &str, refund_key: &str) -> Result<()> {
        let mut conn = self.conn();
        conn.sadd(self.conv(&format!("pending:{order_key}")), refund_key)
            .await
            .map_err(failed("Failed to remember a pending refund in Redis"))
    }

    async fn is_counted(&self, code: &str, conversion_id: &str) -> Result<bool> {
        let mut conn = self.conn();
        conn.sismember(self.link_key(code, "orders"), conversion_id)
            .await
            .map_err(failed("Failed to read whether a conversion is counted"))
    }

    async fn pending(&self, order_key: &str) -> Result<Vec<String>> {
        let mut conn = self.conn();
        conn.smembers(self.conv(&format!("pending:{order_key}")))
            .await
            .map_err(failed("Failed to read pending refunds from Redis"))
    }

    async fn remove_pending(&self, order_key: &str, refund_key: &str) -> Result<()> {
        let mut conn = self.conn();
        conn.srem(self.conv(&format!("pending:{order_key}")), refund_key)
            .await
            .map_err(failed("Failed to forget a pending refund in Redis"))
    }

    async fn scan_conversions(&self, after: Option<Cursor>, limit: usize) -> Result<Scan<Conversion>> {
        let end = match after {
            Some(c) => {
                let [ms, seq] = c.position::<2>()?;
                format!("({}", stream_id(EntryId { ms, seq }))
            }
            None => "+".to_owned(),
        };
        let rows = self.conversions_range(&end, "-", limit, true).await?;
        Ok(rows
            .into_iter()
            .map(|(id, c)| (Cursor::mint([id.ms, id.seq]), c))
            .collect())
    }
}

impl RedisStore {
    /// Conversion log entries between `a` and `b` (XREVRANGE when `rev`), with their ids.
    async fn conversions_range(&self, a: &str, b: &str, count: usize, rev: bool) -> Result<Vec<(EntryId, Conversion)>> {
        let mut conn = self.conn();
        let reply: redis::streams::StreamRangeReply = if rev {
            conn.xrevrange_count(self.conv("log"), a, b, count).await
        } else {
            conn.xrange_count(self.conv("log"), a, b, count).await
        }
        .map_err(failed("Failed to read conversions from Redis"))?;
        // Conversions whose status changed keep their new version beside the log.
        let changed: Vec<Option<String>> = if reply.ids.is_empty() {
            vec![]
        } else {
            redis::cmd("HMGET")
                .arg(self.conv("recs"))
                .arg(reply.ids.iter().map(|e| e.id.as_str()).collect::<Vec<_>>())
                .query_async(&mut conn)
                .await
                .map_err(failed("Failed to read conversions from Redis"))?
        };
        let mut out = Vec::with_capacity(reply.ids.len());
        for (e, changed) in reply.ids.iter().zip(changed) {
            let id = parse_stream_id(&e.id)
                .ok_or_else(|| StoreError::corrupt(format!("conversion entry id {} is not a stream id", e.id)))?;
            let conversion = match (changed, e.map.get("j")) {
                (Some(json), _) => serde_json::from_str(&json)?,
                (None, Some(Value::BulkString(j))) => serde_json::from_slice(j)?,
                (None, _) => return Err(StoreError::corrupt(format!("conversion entry {} has no record", e.id))),
            };
            out.push((id, conversion));
        }
        Ok(out)
    }
}
