//! Counters in the embedded store: counters, rollups, visitors and insights, and the pruning of
//! old hours.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::clicks::read_sketch;
use super::tables::*;
use super::EmbeddedStore;
use crate::domain::DayInsights;
use crate::store::{Counters, Detail, LinkData, Result};

#[async_trait::async_trait]
impl Counters for EmbeddedStore {
    async fn bump_counter(&self, code: &str, field: &str) -> Result<()> {
        let (code, field) = (code.to_owned(), field.to_owned());
        self.write(move |txn| add_counters(txn, HashMap::from([((code.as_str(), field.as_str()), 1)])))
            .await
    }

    async fn put_insights(&self, code: &str, day: NaiveDate, insights: &DayInsights) -> Result<()> {
        let (code, day, json) = (code.to_owned(), day.to_string(), serde_json::to_string(insights)?);
        self.write(move |txn| {
            txn.open_table(METRICS)?
                .insert((code.as_str(), day.as_str()), json.as_str())?;
            Ok(())
        })
        .await
    }

    async fn remove_insights(&self, code: &str, day: NaiveDate) -> Result<bool> {
        let (code, day) = (code.to_owned(), day.to_string());
        self.write(move |txn| {
            let mut metrics = txn.open_table(METRICS)?;
            let removed = metrics.remove((code.as_str(), day.as_str()))?.is_some();
            Ok(removed)
        })
        .await
    }

    async fn link_data(&self, codes: &[String], detail: Detail) -> Result<Vec<LinkData>> {
        let codes = codes.to_vec();
        self.run(move |db| {
            let txn = db.begin_read()?;
            let (rollups, insights) = (txn.open_table(ROLLUPS)?, txn.open_table(METRICS)?);
            let full = if detail.full() {
                Some(txn.open_table(COUNTERS)?)
            } else {
                None
            };
            let all_time = detail != Detail::Range;
            let fields =
                |t: &redb::ReadOnlyTable<(&str, &str), i64>, c: &str, all_time: bool| -> Result<Vec<(String, i64)>> {
                    let mut out = Vec::new();
                    for row in t.range((c, "")..)? {
                        let (k, v) = row?;
                        let (kc, field) = k.value();
                        if kc != c {
                            break;
                        }
                        if all_time || !crate::counters::is_all_time(field.as_bytes()) {
                            out.push((field.to_owned(), v.value()));
                        }
                    }
                    Ok(out)
                };
            let mut out = Vec::with_capacity(codes.len());
            for code in &codes {
                let c = code.as_str();
                let mut data = LinkData::default();
                if let Some(full) = &full {
                    data.full = fields(full, c, true)?;
                }
                data.rollups = fields(&rollups, c, all_time)?;
                for row in insights.range((c, "")..)? {
                    let (k, v) = row?;
                    let (kc, day) = k.value();
                    if kc != c {
                        break;
                    }
                    if let (Ok(d), Ok(m)) = (day.parse(), serde_json::from_str(v.value())) {
                        data.insights.insert(d, m);
                    }
                }
                out.push(data);
            }
            Ok(out)
        })
        .await
    }

    async fn prune_hours(&self, keep_from: NaiveDate) -> Result<u64> {
        let ends: Arc<Vec<(String, String)>> = Arc::new(
            crate::counters::hourly_prefixes()
                .into_iter()
                .map(|p| {
                    let end = format!("{p}{keep_from}");
                    (p, end)
                })
                .collect(),
        );
        let (mut removed, mut at) = (0, Some((String::new(), 0)));
        while let Some(from) = at {
            let ends = ends.clone();
            let (n, next) = self.write(move |txn| prune_hours(txn, from, &ends)).await?;
            removed += n;
            at = next;
        }
        Ok(removed)
    }

    async fn unique_visitors(&self, pairs: &[(String, NaiveDate)]) -> Result<Vec<u64>> {
        let pairs = pairs.to_vec();
        self.run(move |db| {
            let txn = db.begin_read()?;
            let t = txn.open_table(VISITORS)?;
            let sketches = txn.open_table(VISITOR_SKETCHES)?;
            let mut out = Vec::with_capacity(pairs.len());
            for (code, day) in &pairs {
                let d = day.to_string();
                let mut n = 0u64;
                for row in t.range((code.as_str(), d.as_str(), "")..)? {
                    let (k, _) = row?;
                    let (kc, kd, _) = k.value();
                    if kc != code || kd != d {
                        break;
                    }
                    n += 1;
                }
                let key = (code.as_str(), d.as_str());
                if let Some(sketch) = sketches.get(key)?.and_then(|b| read_sketch(key, b.value())) {
                    n = n.saturating_add(sketch.count());
                }
                out.push(n);
            }
            Ok(out)
        })
        .await
    }
}

/// What one write transaction of `prune_hours` does at most, about: clicks wait for it. Links
/// (each a dozen range lookups), and fields removed (a link's first prune after an upgrade can
/// have months of hours).
const PRUNE_HOURS_LINKS: usize = 500;
const PRUNE_HOURS_FIELDS: u64 = 20_000;

/// Removes the hourly fields in `[prefix, end)` of each (prefix, end) of `ends` from the
/// counters of the links from `from` on (a code, and the index in `ends` to start at on it),
/// for about `PRUNE_HOURS_LINKS` links or `PRUNE_HOURS_FIELDS` fields; returns how many went,
/// and where to go on (`None` once every link is done).
fn prune_hours(
    txn: &WriteTransaction,
    (code, first): (String, usize),
    ends: &[(String, String)],
) -> Result<(u64, Option<(String, usize)>)> {
    let links = txn.open_table(LINKS)?;
    let mut counters = txn.open_table(COUNTERS)?;
    let mut removed = 0;
    for (n, row) in links.range::<&str>(code.as_str()..)?.enumerate() {
        let (c, _) = row?;
        let c = c.value();
        if n == PRUNE_HOURS_LINKS {
            return Ok((removed, Some((c.to_owned(), 0))));
        }
        let skip = if c == code { first } else { 0 };
        for (i, (prefix, end)) in ends.iter().enumerate().skip(skip) {
            if removed >= PRUNE_HOURS_FIELDS {
                return Ok((removed, Some((c.to_owned(), i))));
            }
            counters.retain_in((c, prefix.as_str())..(c, end.as_str()), |_, _| {
                removed += 1;
                false
            })?;
        }
    }
    Ok((removed, None))
}

/// Adds each sum to its counter, and to the counter's rollups.
pub(super) fn add_counters(txn: &WriteTransaction, sums: HashMap<(&str, &str), i64>) -> Result<()> {
    let mut t = txn.open_table(COUNTERS)?;
    let mut rollups: HashMap<(&str, String), i64> = HashMap::new();
    for ((code, field), n) in sums {
        let current = t.get((code, field))?.map(|v| v.value()).unwrap_or(0);
        t.insert((code, field), current + n)?;
        for r in crate::counters::rollups(field) {
            *rollups.entry((code, r)).or_default() += n;
        }
    }
    add_rollups(txn, rollups)
}

/// Adds each sum to its rollup field.
pub(super) fn add_rollups(txn: &WriteTransaction, sums: HashMap<(&str, String), i64>) -> Result<()> {
    let mut t = txn.open_table(ROLLUPS)?;
    for ((code, field), n) in sums {
        let current = t.get((code, field.as_str()))?.map(|v| v.value()).unwrap_or(0);
        t.insert((code, field.as_str()), current + n)?;
    }
    Ok(())
}
