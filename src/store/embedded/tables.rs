//! The tables of the embedded store, opening the file, and pruning old clicks.

use std::sync::Weak;
use std::time::Duration;

use anyhow::Context;
use redb::{Database, ReadableTable, TableDefinition};

use super::disk::Handle;
use crate::clock::SharedClock;

pub(super) const SECRETS: TableDefinition<&str, &str> = TableDefinition::new("secrets");
pub(super) const RECORDS: TableDefinition<(&str, &str), &str> = TableDefinition::new("records");
pub(super) const RECORD_IDX: TableDefinition<(&str, u64), &str> = TableDefinition::new("record_idx");
pub(super) const SEQS: TableDefinition<&str, u64> = TableDefinition::new("seqs");
pub(super) const LINKS: TableDefinition<&str, &str> = TableDefinition::new("links");
pub(super) const LINK_IDS: TableDefinition<u64, &str> = TableDefinition::new("link_ids");
pub(super) const COUPONS: TableDefinition<&str, &str> = TableDefinition::new("coupons");
/// The campaign's links by id, each with its summary (`LinkRows::Summaries`); so is `KOL_LINKS`.
pub(super) const CAMPAIGN_LINKS: TableDefinition<(&str, u64), &str> = TableDefinition::new("campaign_links");
pub(super) const KOL_LINKS: TableDefinition<(&str, u64), &str> = TableDefinition::new("kol_links");
pub(super) const CLICKS: TableDefinition<(&str, u64, u64), &str> = TableDefinition::new("clicks");
pub(super) const COUNTERS: TableDefinition<(&str, &str), i64> = TableDefinition::new("counters");
/// A link's rollups (`crate::counters::rollups`), kept with its counters in the same transaction.
pub(super) const ROLLUPS: TableDefinition<(&str, &str), i64> = TableDefinition::new("rollups");
pub(super) const VISITORS: TableDefinition<(&str, &str, &str), ()> = TableDefinition::new("visitors");
/// A link's new visitors of a day past the first `EXACT_VISITORS` (`sketch`), by (code, day).
pub(super) const VISITOR_SKETCHES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("visitor_sketches");
pub(super) const METRICS: TableDefinition<(&str, &str), &str> = TableDefinition::new("metrics");
pub(super) const ORDERS: TableDefinition<(&str, &str), ()> = TableDefinition::new("orders");
pub(super) const CONVERSIONS: TableDefinition<u64, &str> = TableDefinition::new("conversions");
pub(super) const CONVERSION_IDEM: TableDefinition<&str, u64> = TableDefinition::new("conversion_idem");
pub(super) const REFUNDED: TableDefinition<(&str, &str), i64> = TableDefinition::new("refunded");
pub(super) const PENDING: TableDefinition<(&str, &str), ()> = TableDefinition::new("pending");

/// How often clicks older than the retention are removed.
pub(super) const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Creates every table of a just opened database, so that readers never meet a missing one.
pub(super) fn create_tables(db: anyhow::Result<Database>) -> anyhow::Result<Database> {
    let db = db?;
    let txn = db.begin_write().context("Failed to create the tables")?;
    txn.open_table(SECRETS)?;
    txn.open_table(RECORDS)?;
    txn.open_table(RECORD_IDX)?;
    txn.open_table(SEQS)?;
    txn.open_table(LINKS)?;
    txn.open_table(LINK_IDS)?;
    txn.open_table(COUPONS)?;
    txn.open_table(CAMPAIGN_LINKS)?;
    txn.open_table(KOL_LINKS)?;
    txn.open_table(CLICKS)?;
    txn.open_table(COUNTERS)?;
    txn.open_table(ROLLUPS)?;
    txn.open_table(VISITORS)?;
    txn.open_table(VISITOR_SKETCHES)?;
    txn.open_table(METRICS)?;
    txn.open_table(ORDERS)?;
    txn.open_table(CONVERSIONS)?;
    txn.open_table(CONVERSION_IDEM)?;
    txn.open_table(REFUNDED)?;
    txn.open_table(PENDING)?;
    build_rollups(&txn).context("Failed to build the counters' rollups")?;
    build_summaries(&txn).context("Failed to build the links' summaries")?;
    txn.commit().context("Failed to create the tables")?;
    Ok(db)
}

/// The layout version that has rollups; stored under `SCHEMA` in `SEQS`.
const ROLLUPS_SCHEMA: u64 = 2;
const SCHEMA: &str = "schema";

/// Builds the rollups of every link from its counters, once: a data file written before
/// rollups existed gets them at its first open by this version.
fn build_rollups(txn: &redb::WriteTransaction) -> crate::store::Result<()> {
    let mut seqs = txn.open_table(SEQS)?;
    if seqs.get(SCHEMA)?.map(|v| v.value()) >= Some(ROLLUPS_SCHEMA) {
        return Ok(());
    }
    let counters = txn.open_table(COUNTERS)?;
    let mut sums: std::collections::HashMap<(String, String), i64> = std::collections::HashMap::new();
    for row in counters.iter()? {
        let (k, v) = row?;
        let (code, field) = k.value();
        for r in crate::counters::rollups(field) {
            *sums.entry((code.to_owned(), r)).or_default() += v.value();
        }
    }
    for row in txn.open_table(VISITORS)?.iter()? {
        let (k, _) = row?;
        let (code, day, _) = k.value();
        *sums
            .entry((code.to_owned(), crate::counters::visitors_field(day)))
            .or_default() += 1;
    }
    let mut rollups = txn.open_table(ROLLUPS)?;
    rollups.retain(|_, _| false)?;
    for ((code, field), n) in &sums {
        rollups.insert((code.as_str(), field.as_str()), n)?;
    }
    seqs.insert(SCHEMA, ROLLUPS_SCHEMA)?;
    Ok(())
}

/// The layout version whose link indexes hold summaries rather than codes.
const SUMMARIES_SCHEMA: u64 = 3;

/// Writes every link's summary into the campaign and KOL indexes, once: a data file written
/// before summaries existed holds codes there.
fn build_summaries(txn: &redb::WriteTransaction) -> crate::store::Result<()> {
    let mut seqs = txn.open_table(SEQS)?;
    if seqs.get(SCHEMA)?.map(|v| v.value()) >= Some(SUMMARIES_SCHEMA) {
        return Ok(());
    }
    let mut by_campaign = txn.open_table(CAMPAIGN_LINKS)?;
    let mut by_kol = txn.open_table(KOL_LINKS)?;
    for row in txn.open_table(LINKS)?.iter()? {
        let (code, json) = row?;
        let link: crate::domain::Link = match serde_json::from_str(json.value()) {
            Ok(link) => link,
            Err(e) => {
                tracing::warn!(code = code.value(), error = %e, "a link record does not decode: no summary");
                continue;
            }
        };
        let summary = crate::store::summary_json(&link)?;
        by_campaign.insert((link.campaign.as_str(), link.id), summary.as_str())?;
        by_kol.insert((link.kol.as_str(), link.id), summary.as_str())?;
    }
    seqs.insert(SCHEMA, SUMMARIES_SCHEMA)?;
    Ok(())
}

/// Prunes hourly, on the store's writer thread, until the store is closed (the task is aborted)
/// or dropped.
/// How often the upkeep task looks whether the click journal waits for a checkpoint.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// The store's upkeep, until the store is gone: a checkpoint of the click journal once clicks
/// stop coming (while they come, their writes do it), and the hourly pruning of old clicks.
pub(super) async fn upkeep(
    db: Weak<Handle>,
    writer: Weak<super::pool::Pool>,
    journal: Weak<super::journal::Journal>,
    retention: Duration,
    clock: SharedClock,
) {
    let mut pruned = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(UPKEEP_EVERY).await;
        let (Some(db), Some(writer), Some(journal)) = (db.upgrade(), writer.upgrade(), journal.upgrade()) else {
            return;
        };
        if journal.due() {
            let (db, journal) = (db.clone(), journal.clone());
            if let Ok(Err(e)) = writer.run(move || db.with(|db| journal.checkpoint(db))).await {
                crate::telemetry::warn_limited!(
                    error = format!("{e:#}"),
                    "Failed to write the click journal into the embedded database"
                );
            }
        }
        if pruned.elapsed() < PRUNE_EVERY {
            continue;
        }
        pruned = tokio::time::Instant::now();
        let cutoff = (clock.now().timestamp_millis() as u64).saturating_sub(retention.as_millis() as u64);
        let result = writer.run(move || db.with(|db| prune(db, &journal, cutoff))).await;
        match result {
            Ok(Ok(n)) if n > 0 => tracing::info!(removed = n, "pruned clicks past their retention"),
            Ok(Err(e)) => tracing::warn!(error = format!("{e:#}"), "Failed to prune old clicks"),
            _ => {}
        }
    }
}

/// Removes click log entries older than `cutoff_ms`; counters stay. Walks the log link by
/// link (seeking past each link's entries), so it needs no other table.
pub(super) fn prune(db: &Database, journal: &super::journal::Journal, cutoff_ms: u64) -> crate::store::Result<u64> {
    use std::ops::Bound;
    // The journal is emptied first: were a pruned click still in it, a crash would bring it back
    // (and count it again, its entry gone).
    journal.checkpoint(db)?;
    let txn = db.begin_write()?;
    let mut removed = 0;
    {
        let mut clicks = txn.open_table(CLICKS)?;
        let mut after: Option<String> = None;
        loop {
            let code = {
                let mut range = match &after {
                    None => clicks.range::<(&str, u64, u64)>(..)?,
                    Some(c) => clicks.range((Bound::Excluded((c.as_str(), u64::MAX, u64::MAX)), Bound::Unbounded))?,
                };
                match range.next() {
                    Some(row) => row?.0.value().0.to_owned(),
                    None => break,
                }
            };
            clicks.retain_in((code.as_str(), 0, 0)..(code.as_str(), cutoff_ms, 0), |_, _| {
                removed += 1;
                false
            })?;
            after = Some(code);
        }
    }
    txn.commit()?;
    Ok(removed)
}
