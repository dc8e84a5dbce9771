//! Bringing a store written by an older version to this layout (`RedisStore::migrate`).

use std::collections::HashMap;

use anyhow::Context;
use redis::AsyncCommands;

use super::{failed, RedisStore};
use crate::domain::Link;
use crate::store::{summary_json, Result};

impl RedisStore {
    /// Brings a store written by an older version to this layout, once: version 2 built every
    /// link's rollups, version 3 its summary, version 4 copied its metrics into its rollups.
    /// Every kolink process on the store must run a version with all three, or the clicks,
    /// links and metrics of older ones miss them.
    pub(super) async fn migrate(&self) -> anyhow::Result<()> {
        const SCHEMA: u64 = 4;
        let mut conn = self.conn();
        let done: Option<u64> = conn
            .get(self.meta("schema"))
            .await
            .map_err(failed("Failed to read the layout version"))?;
        if done >= Some(SCHEMA) {
            return Ok(());
        }
        if done < Some(2) {
            self.build_rollups()
                .await
                .context("Failed to build the counters' rollups")?;
        }
        if done < Some(3) {
            self.build_summaries()
                .await
                .context("Failed to build the links' summaries")?;
        }
        self.copy_insights()
            .await
            .context("Failed to copy the links' metrics into their rollups")?;
        let _: () = conn
            .set(self.meta("schema"), SCHEMA)
            .await
            .map_err(failed("Failed to record the layout version"))?;
        Ok(())
    }

    /// Every link's code, for the layout changes above.
    async fn all_link_codes(&self) -> Result<Vec<String>> {
        self.conn()
            .hkeys(self.meta("links"))
            .await
            .map_err(failed("Failed to list the links"))
    }

    /// Writes the summary of every link that has none (`LinkRows::Summaries`).
    async fn build_summaries(&self) -> Result<()> {
        let mut conn = self.conn();
        let codes = self.all_link_codes().await?;
        for chunk in codes.chunks(500) {
            let records: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(self.meta("links"))
                .arg(chunk)
                .query_async(&mut conn)
                .await
                .map_err(failed("Failed to read links from Redis"))?;
            let mut pipe = redis::pipe();
            for json in records.into_iter().flatten() {
                let link: Link = match serde_json::from_str(&json) {
                    Ok(link) => link,
                    Err(e) => {
                        tracing::warn!(error = %e, "a link record does not decode: no summary");
                        continue;
                    }
                };
                // Not over a summary that a link update wrote meanwhile.
                pipe.hset_nx(self.meta("summaries"), link.code.as_str(), summary_json(&link)?)
                    .ignore();
            }
            if pipe.is_empty() {
                continue;
            }
            let _: () = pipe
                .query_async(&mut conn)
                .await
                .map_err(failed("Failed to write link summaries to Redis"))?;
        }
        Ok(())
    }

    /// Copies every link's metrics into its rollups (`COPY_INSIGHTS`, one script call per link,
    /// so that it neither misses nor undoes a `PUT_INSIGHTS` running beside it, and replaces a
    /// copy left stale by an older process).
    async fn copy_insights(&self) -> Result<()> {
        let codes = self.all_link_codes().await?;
        for chunk in codes.chunks(500) {
            let mut spread = self.redis.spread();
            for code in chunk {
                let metrics = self.link_key(code, "metrics");
                let mut inv = self.copy_insights.prepare_invoke();
                inv.key(&metrics).key(self.link_key(code, "rollups"));
                spread.on(&metrics).invoke_script(&inv);
            }
            let _: Vec<i64> = self
                .run_spread(spread, false)
                .await
                .map_err(failed("Failed to copy metrics in Redis"))?;
        }
        Ok(())
    }

    /// Builds every link's rollups from its counters: a store written before rollups existed
    /// gets them at the first start of a version with them.
    async fn build_rollups(&self) -> Result<()> {
        let mut conn = self.conn();
        let codes = self.all_link_codes().await?;
        for chunk in codes.chunks(500) {
            let mut spread = self.redis.spread();
            for code in chunk {
                let key = self.link_key(code, "stats");
                spread.on(&key).hgetall(&key);
            }
            let stats: Vec<HashMap<String, i64>> = self
                .run_spread(spread, false)
                .await
                .map_err(failed("Failed to read counters from Redis"))?;
            for (code, mut counters) in chunk.iter().zip(stats) {
                // A click between the read and the write: read again (clicks only add).
                while !self.replace_rollups(code, &counters).await? {
                    counters = conn
                        .hgetall(self.link_key(code, "stats"))
                        .await
                        .map_err(failed("Failed to read counters from Redis"))?;
                }
            }
        }
        Ok(())
    }

    /// Replaces a link's rollups with those of `counters` (and its exact visitor sets) if the
    /// counters are still `counters`; `false` when they moved.
    async fn replace_rollups(&self, code: &str, counters: &HashMap<String, i64>) -> Result<bool> {
        let mut sums: HashMap<String, i64> = HashMap::new();
        for (f, n) in counters {
            for r in crate::counters::rollups(f) {
                *sums.entry(r).or_default() += n;
            }
        }
        // The days with human clicks are the days with visitors.
        let days: Vec<String> = sums
            .keys()
            .filter_map(|f| f.strip_prefix("c|").map(str::to_owned))
            .collect();
        let mut pipe = redis::pipe();
        for d in &days {
            pipe.scard(self.link_key(code, &format!("uvs:{d}")));
        }
        let mut conn = self.conn();
        let visitors: Vec<i64> = if days.is_empty() {
            vec![]
        } else {
            pipe.query_async(&mut conn)
                .await
                .map_err(failed("Failed to count visitors in Redis"))?
        };
        for (d, n) in days.iter().zip(visitors) {
            if n > 0 {
                sums.insert(crate::counters::visitors_field(d), n);
            }
        }
        let mut inv = self.replace_rollups.prepare_invoke();
        inv.key(self.link_key(code, "stats"))
            .key(self.link_key(code, "rollups"))
            .arg(counters.len())
            .arg(counters.values().sum::<i64>());
        for (f, n) in &sums {
            inv.arg(f).arg(n);
        }
        let replaced: i64 = inv
            .invoke_async(&mut conn)
            .await
            .map_err(failed("Failed to build a link's rollups"))?;
        Ok(replaced == 1)
    }
}
