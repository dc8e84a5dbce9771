//! Records and links in the embedded store: the records, the links and their indexes.

use std::sync::atomic::Ordering;

use redb::{ReadableDatabase, ReadableTable};

use super::tables::*;
use super::{before, next_seq, EmbeddedStore};
use crate::domain::{CouponKey, Link, LinkSummary};
use crate::store::{summary_json, Cursor, Kind, LinkConflict, LinkIndex, LinkRows, Links, Records, Result, Scan};

fn coupon_key(link: &Link) -> Option<CouponKey> {
    link.coupon.as_ref().map(|c| c.key())
}

#[async_trait::async_trait]
impl Records for EmbeddedStore {
    async fn create_record(&self, kind: Kind, id: &str, json: String) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |txn| {
            let k = kind.plural();
            if txn.open_table(RECORDS)?.get((k, id.as_str()))?.is_some() {
                return Ok(false);
            }
            let seq = next_seq(txn, k, 1)?;
            txn.open_table(RECORDS)?.insert((k, id.as_str()), json.as_str())?;
            txn.open_table(RECORD_IDX)?.insert((k, seq), id.as_str())?;
            Ok(true)
        })
        .await
    }

    async fn get_record(&self, kind: Kind, id: &str) -> Result<Option<String>> {
        let id = id.to_owned();
        self.run(move |db| {
            let t = db.begin_read()?.open_table(RECORDS)?;
            Ok(t.get((kind.plural(), id.as_str()))?.map(|v| v.value().to_owned()))
        })
        .await
    }

    async fn get_records(&self, kind: Kind, ids: &[String]) -> Result<Vec<Option<String>>> {
        let ids = ids.to_vec();
        self.run(move |db| {
            let t = db.begin_read()?.open_table(RECORDS)?;
            ids.iter()
                .map(|id| Ok(t.get((kind.plural(), id.as_str()))?.map(|v| v.value().to_owned())))
                .collect()
        })
        .await
    }

    async fn replace_record(&self, kind: Kind, id: &str, expected: &str, json: String) -> Result<bool> {
        let (id, expected) = (id.to_owned(), expected.to_owned());
        self.write(move |txn| {
            let mut t = txn.open_table(RECORDS)?;
            let key = (kind.plural(), id.as_str());
            if t.get(key)?.is_none_or(|v| v.value() != expected) {
                return Ok(false);
            }
            t.insert(key, json.as_str())?;
            Ok(true)
        })
        .await
    }

    async fn scan_records(&self, kind: Kind, after: Option<Cursor>, limit: usize) -> Result<Scan<String>> {
        let before = before(after)?;
        self.run(move |db| {
            let txn = db.begin_read()?;
            let idx = txn.open_table(RECORD_IDX)?;
            let records = txn.open_table(RECORDS)?;
            let k = kind.plural();
            let mut out = Vec::new();
            for row in idx.range((k, 0)..(k, before))?.rev().take(limit) {
                let (key, id) = row?;
                if let Some(json) = records.get((k, id.value()))? {
                    out.push((Cursor::mint([key.value().1]), json.value().to_owned()));
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait::async_trait]
impl Links for EmbeddedStore {
    async fn reserve_link_ids(&self, n: u64) -> Result<u64> {
        self.write(move |txn| next_seq(txn, "link", n)).await
    }

    async fn create_links(&self, links: &[Link]) -> Result<std::result::Result<(), LinkConflict>> {
        let links = links.to_vec();
        let moves = self.links_change();
        self.run_writing(move |db| {
            let _moves = moves;
            let txn = db.begin_write()?;
            {
                let existing = txn.open_table(LINKS)?;
                let coupons = txn.open_table(COUPONS)?;
                for l in &links {
                    if existing.get(l.code.as_str())?.is_some() {
                        return Ok(Err(LinkConflict::Code(l.code.to_string())));
                    }
                    if let Some(c) = coupon_key(l) {
                        if coupons.get(c.as_str())?.is_some() {
                            return Ok(Err(LinkConflict::Coupon(c.as_str().to_owned())));
                        }
                    }
                }
            }
            {
                let mut table = txn.open_table(LINKS)?;
                let mut ids = txn.open_table(LINK_IDS)?;
                let mut coupons = txn.open_table(COUPONS)?;
                let mut by_campaign = txn.open_table(CAMPAIGN_LINKS)?;
                let mut by_kol = txn.open_table(KOL_LINKS)?;
                for l in &links {
                    let code = l.code.as_str();
                    table.insert(code, serde_json::to_string(l)?.as_str())?;
                    ids.insert(l.id, code)?;
                    if let Some(c) = coupon_key(l) {
                        coupons.insert(c.as_str(), code)?;
                    }
                    let summary = summary_json(l)?;
                    by_campaign.insert((l.campaign.as_str(), l.id), summary.as_str())?;
                    by_kol.insert((l.kol.as_str(), l.id), summary.as_str())?;
                }
            }
            txn.commit()?;
            Ok(Ok(()))
        })
        .await
    }

    async fn update_link(&self, expected: &str, new: &Link) -> Result<std::result::Result<(), LinkConflict>> {
        let old: Link = serde_json::from_str(expected)?;
        let (expected, new) = (expected.to_owned(), new.clone());
        let moves = self.links_change();
        self.run_writing(move |db| {
            let _moves = moves;
            let txn = db.begin_write()?;
            let code = new.code.as_str();
            if txn.open_table(LINKS)?.get(code)?.is_none_or(|v| v.value() != expected) {
                return Ok(Err(LinkConflict::Stale));
            }
            let (old_c, new_c) = (coupon_key(&old), coupon_key(&new));
            {
                let mut coupons = txn.open_table(COUPONS)?;
                if let Some(n) = new_c.as_ref().filter(|n| Some(*n) != old_c.as_ref()) {
                    let owner = coupons.get(n.as_str())?.map(|v| v.value().to_owned());
                    if owner.is_some_and(|o| o != code) {
                        return Ok(Err(LinkConflict::Coupon(n.as_str().to_owned())));
                    }
                }
                // A coupon changed leaves neither of its keys behind: today's, nor the older
                // rule's, where it stayed because today's was taken (`CouponKey::legacy`).
                let older = old.coupon.as_ref().and_then(|c| CouponKey::legacy(c.as_str()));
                for o in [old_c.as_ref(), older.as_ref()].into_iter().flatten() {
                    if Some(o) == new_c.as_ref() {
                        continue;
                    }
                    let owned = coupons.get(o.as_str())?.is_some_and(|v| v.value() == code);
                    if owned {
                        coupons.remove(o.as_str())?;
                    }
                }
                if let Some(n) = &new_c {
                    coupons.insert(n.as_str(), code)?;
                }
                txn.open_table(LINKS)?
                    .insert(code, serde_json::to_string(&new)?.as_str())?;
                let summary = summary_json(&new)?;
                txn.open_table(CAMPAIGN_LINKS)?
                    .insert((new.campaign.as_str(), new.id), summary.as_str())?;
                txn.open_table(KOL_LINKS)?
                    .insert((new.kol.as_str(), new.id), summary.as_str())?;
            }
            txn.commit()?;
            Ok(Ok(()))
        })
        .await
    }

    async fn links_version(&self) -> Result<Option<u64>> {
        Ok(Some(self.links_version.load(Ordering::Acquire)))
    }

    async fn get_link_json(&self, code: &str) -> Result<Option<String>> {
        self.text(LINKS, code).await
    }

    async fn link_code_by_id(&self, id: u64) -> Result<Option<String>> {
        self.run(move |db| {
            Ok(db
                .begin_read()?
                .open_table(LINK_IDS)?
                .get(id)?
                .map(|v| v.value().to_owned()))
        })
        .await
    }

    async fn fold_coupon_keys(&self) -> Result<usize> {
        self.write(|txn| {
            let mut coupons = txn.open_table(COUPONS)?;
            let mut stale = Vec::new();
            for row in coupons.iter()? {
                let (key, code) = row?;
                let folded = CouponKey::of(key.value());
                if folded.as_str() != key.value() {
                    stale.push((key.value().to_owned(), folded, code.value().to_owned()));
                }
            }
            let mut moved = 0;
            for (old, new, code) in stale {
                if let Some(holder) = coupons.get(new.as_str())? {
                    crate::store::warn_coupon_stays(&old, &code, holder.value());
                    continue;
                }
                coupons.insert(new.as_str(), code.as_str())?;
                coupons.remove(old.as_str())?;
                moved += 1;
            }
            Ok(moved)
        })
        .await
    }

    async fn link_code_by_coupon(&self, coupon: &CouponKey) -> Result<Option<String>> {
        self.text(COUPONS, coupon.as_str()).await
    }

    async fn scan_links(
        &self,
        index: LinkIndex<'_>,
        rows: LinkRows,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Scan<String>> {
        let before = before(after)?;
        let index = match index {
            LinkIndex::All => None,
            LinkIndex::Campaign(c) => Some((CAMPAIGN_LINKS, c.to_owned())),
            LinkIndex::Kol(k) => Some((KOL_LINKS, k.to_owned())),
        };
        self.run(move |db| {
            let txn = db.begin_read()?;
            let links = txn.open_table(LINKS)?;
            let record = |code: &str| -> Result<Option<String>> { Ok(links.get(code)?.map(|j| j.value().to_owned())) };
            let mut out = Vec::new();
            match &index {
                // The campaign and KOL indexes hold each link's summary, in order: a report
                // reads them alone, in a few contiguous pages.
                Some((table, owner)) => {
                    let table = txn.open_table(*table)?;
                    for row in table
                        .range((owner.as_str(), 0)..(owner.as_str(), before))?
                        .rev()
                        .take(limit)
                    {
                        let (k, v) = row?;
                        let (id, value) = (k.value().1, v.value());
                        let json = if !value.starts_with('{') {
                            // A row written by an older version (one that ran on this file after
                            // it was brought to summaries, or a record that did not decode then)
                            // holds the code alone: its record stands in.
                            record(value)?
                        } else if rows == LinkRows::Summaries {
                            Some(value.to_owned())
                        } else {
                            record(serde_json::from_str::<LinkSummary>(value)?.code.as_str())?
                        };
                        out.extend(json.map(|json| (Cursor::mint([id]), json)));
                    }
                }
                None => {
                    for row in txn.open_table(LINK_IDS)?.range(0..before)?.rev().take(limit) {
                        let (id, code) = row?;
                        out.extend(record(code.value())?.map(|json| (Cursor::mint([id.value()]), json)));
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}
