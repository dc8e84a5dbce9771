//! Records and links in Redis: the `{meta}` slot's hashes and indexes, kept in step by scripts.

use redis::AsyncCommands;

use super::{failed, not_read_as, text, whole_score, RedisStore, LINK_CHANGES_KEPT};
use crate::domain::{CouponKey, Link};
use crate::store::{
    summary_json, Cursor, Kind, LinkChanges, LinkConflict, LinkIndex, LinkRows, Links, Records, Result, Scan,
};

#[async_trait::async_trait]
impl Records for RedisStore {
    async fn create_record(&self, kind: Kind, id: &str, json: String) -> Result<bool> {
        let mut conn = self.conn();
        let created: i64 = self
            .create_record
            .key(self.kind_key(kind))
            .key(format!("{}:idx", self.kind_key(kind)))
            .key(self.kind_seq(kind))
            .arg(id)
            .arg(json)
            .invoke_async(&mut conn)
            .await
            .map_err(failed("Failed to create a record in Redis"))?;
        Ok(created == 1)
    }

    async fn get_record(&self, kind: Kind, id: &str) -> Result<Option<String>> {
        let mut conn = self.conn();
        conn.hget(self.kind_key(kind), id)
            .await
            .map_err(failed("Failed to read a record from Redis"))
    }

    async fn get_records(&self, kind: Kind, ids: &[String]) -> Result<Vec<Option<String>>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut conn = self.conn();
        redis::cmd("HMGET")
            .arg(self.kind_key(kind))
            .arg(ids)
            .query_async(&mut conn)
            .await
            .map_err(failed("Failed to read records from Redis"))
    }

    async fn replace_record(&self, kind: Kind, id: &str, expected: &str, json: String) -> Result<bool> {
        let mut conn = self.conn();
        let replaced: i64 = self
            .replace_record
            .key(self.kind_key(kind))
            .arg(id)
            .arg(expected)
            .arg(json)
            .invoke_async(&mut conn)
            .await
            .map_err(failed("Failed to update a record in Redis"))?;
        Ok(replaced == 1)
    }

    async fn scan_records(&self, kind: Kind, after: Option<Cursor>, limit: usize) -> Result<Scan<String>> {
        let ids = self
            .scan_zset(&format!("{}:idx", self.kind_key(kind)), after, limit)
            .await?;
        let (cursors, ids): (Vec<_>, Vec<_>) = ids.into_iter().unzip();
        let values = self.hash_values(&self.kind_key(kind), &ids).await?;
        Ok(with_values(cursors, values))
    }
}

#[async_trait::async_trait]
impl Links for RedisStore {
    async fn reserve_link_ids(&self, n: u64) -> Result<u64> {
        let mut conn = self.conn();
        let last: u64 = conn
            .incr(self.meta("seq:link"), n)
            .await
            .map_err(failed("Failed to reserve link ids"))?;
        Ok(last + 1 - n)
    }

    async fn create_links(&self, links: &[Link]) -> Result<std::result::Result<(), LinkConflict>> {
        let mut inv = self.create_links.prepare_invoke();
        inv.key(self.meta("links"))
            .key(self.meta("link_ids"))
            .key(self.meta("coupons"))
            .key(self.meta("links:idx"))
            .key(self.meta("summaries"))
            .key(self.meta("links:version"))
            .key(self.meta("links:changes"))
            .key(self.meta("links:changes:seq"))
            .key(self.meta("links:changes:floor"));
        for l in links {
            inv.key(self.link_index(LinkIndex::Campaign(l.campaign.as_str())))
                .key(self.link_index(LinkIndex::Kol(l.kol.as_str())));
            inv.arg(l.code.as_str())
                .arg(l.id)
                .arg(coupon_arg(l))
                .arg(serde_json::to_string(l)?)
                .arg(summary_json(l)?);
        }
        inv.arg(LINK_CHANGES_KEPT).arg(rand::random::<u64>());
        let mut conn = self.conn();
        let (what, which): (String, String) = inv
            .invoke_async(&mut conn)
            .await
            .map_err(failed("Failed to create links in Redis"))?;
        Ok(conflict(&what, which))
    }

    async fn update_link(&self, expected: &str, new: &Link) -> Result<std::result::Result<(), LinkConflict>> {
        let old: Link = serde_json::from_str(expected)?;
        let mut conn = self.conn();
        let (what, which): (String, String) = self
            .update_link
            .key(self.meta("links"))
            .key(self.meta("coupons"))
            .key(self.meta("summaries"))
            .key(self.meta("links:version"))
            .key(self.meta("links:changes"))
            .key(self.meta("links:changes:seq"))
            .key(self.meta("links:changes:floor"))
            .arg(new.code.as_str())
            .arg(coupon_arg(&old))
            .arg(coupon_arg(new))
            .arg(serde_json::to_string(new)?)
            .arg(expected)
            .arg(summary_json(new)?)
            .arg(rand::random::<u64>())
            .arg(legacy_coupon_arg(&old))
            .arg(LINK_CHANGES_KEPT)
            .invoke_async(&mut conn)
            .await
            .map_err(failed("Failed to update a link in Redis"))?;
        Ok(conflict(&what, which))
    }

    async fn get_link_json(&self, code: &str) -> Result<Option<String>> {
        let mut conn = self.conn();
        conn.hget(self.meta("links"), code)
            .await
            .map_err(failed("Failed to read a link from Redis"))
    }

    async fn link_code_by_id(&self, id: u64) -> Result<Option<String>> {
        let mut conn = self.conn();
        conn.hget(self.meta("link_ids"), id)
            .await
            .map_err(failed("Failed to read a link id from Redis"))
    }

    async fn fold_coupon_keys(&self) -> Result<usize> {
        let mut conn = self.conn();
        let key = self.meta("coupons");
        // Only keys with letters outside ASCII can change; the rest are read and left.
        let mut stale = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("HSCAN")
                .arg(&key)
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(failed("Failed to read the coupons from Redis"))?;
            for pair in page.chunks_exact(2) {
                let folded = CouponKey::of(&pair[0]);
                if folded.as_str() != pair[0] {
                    stale.push((pair[0].clone(), folded));
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut moved = 0;
        for (old, new) in stale {
            let (done, holder): (u8, String) = self
                .fold_coupon
                .key(&key)
                .arg(&old)
                .arg(new.as_str())
                .invoke_async(&mut conn)
                .await
                .map_err(failed("Failed to move a coupon in Redis"))?;
            if done == 1 {
                moved += 1;
            } else if !holder.is_empty() {
                // For the log only: a failed read leaves the link unnamed, not the start failed.
                let stays: Option<String> = conn.hget(&key, &old).await.unwrap_or(None);
                crate::store::warn_coupon_stays(&old, stays.as_deref().unwrap_or_default(), &holder);
            }
        }
        Ok(moved)
    }

    async fn link_code_by_coupon(&self, coupon: &CouponKey) -> Result<Option<String>> {
        let mut conn = self.conn();
        conn.hget(self.meta("coupons"), coupon.as_str())
            .await
            .map_err(failed("Failed to read a coupon from Redis"))
    }

    /// The random number that `CREATE_LINKS` and `UPDATE_LINK` leave with every change, with the
    /// number of links: a link minted by a process of an older version, which leaves none,
    /// still moves it. A process of an older version that changes a link does not.
    async fn links_version(&self) -> Result<Option<u64>> {
        let (changes, links): (Option<u64>, u64) = redis::pipe()
            .get(self.meta("links:version"))
            .zcard(self.meta("links:idx"))
            .query_async(&mut self.conn())
            .await
            .map_err(failed("Failed to read the links' version"))?;
        // An odd multiplier: distinct counts of links give distinct versions with one nonce.
        Ok(Some(changes.unwrap_or(0) ^ links.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    }

    /// From `links:changes` (`scripts::link_changes!`), read in one transaction; the records
    /// after it.
    async fn link_changes(&self, after: Option<u64>, limit: usize) -> Result<Option<LinkChanges>> {
        // With no `after`, a range that holds nothing.
        let min = after.map_or_else(|| "+inf".to_owned(), |a| format!("({a}"));
        let (seq, links, codes, floor): (Option<u64>, u64, Vec<String>, Option<u64>) = redis::pipe()
            .atomic()
            .get(self.meta("links:changes:seq"))
            .zcard(self.meta("links:idx"))
            .zrangebyscore_limit(self.meta("links:changes"), min, "+inf", 0, limit as isize + 1)
            .get(self.meta("links:changes:floor"))
            .query_async(&mut self.conn())
            .await
            .map_err(failed("Failed to read the links' changes"))?;
        let seq = seq.unwrap_or(0);
        let all_known = |after: u64| after <= seq && floor.unwrap_or(0) <= after && codes.len() <= limit;
        let records = match after {
            Some(after) if all_known(after) => Some(self.hash_values(&self.meta("links"), &codes).await?),
            _ => None,
        };
        Ok(Some(LinkChanges {
            seq,
            links,
            // A code without a record (none is ever removed) is left out.
            records: records.map(|r| r.into_iter().flatten().collect()),
        }))
    }

    async fn scan_links(
        &self,
        index: LinkIndex<'_>,
        rows: LinkRows,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Scan<String>> {
        let (cursors, codes): (Vec<_>, Vec<_>) = self
            .scan_zset(&self.link_index(index), after, limit)
            .await?
            .into_iter()
            .unzip();
        let values = self.link_values(index, rows, &codes, None).await?.0;
        Ok(with_values(cursors, values))
    }

    /// The members alone, and the last one's score read with the values (`values_and_score`):
    /// Redis writes each score of a `WITHSCORES` reply as a double, which took it 1.40 ms for
    /// a page of 2,500 links of a campaign's index (measured so) against 0.65 ms for the members
    /// alone.
    async fn link_rows(
        &self,
        index: LinkIndex<'_>,
        rows: LinkRows,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<Cursor>)> {
        let zset = self.link_index(index);
        let cmd = newest_first(&zset, after, limit, false)?;
        let mut codes = Vec::with_capacity(limit.min(10_000));
        self.read_items(&zset, cmd, "Failed to list from Redis", |item| {
            codes.push(text(item.ok_or_else(|| not_read_as("a listed member", "nil"))?));
            Ok(())
        })
        .await?;
        // A full page: the next one starts after its last member's score.
        let last = codes
            .last()
            .filter(|_| codes.len() == limit)
            .map(|code| (zset.as_str(), code.as_str()));
        let (values, next) = self.link_values(index, rows, &codes, last).await?;
        Ok((values.into_iter().flatten().collect(), next.map(|s| Cursor::mint([s]))))
    }
}

impl RedisStore {
    /// The rows of `codes` from `index` (records or summaries, `None` for a link without one),
    /// and with `scored` a member's score (`values_and_score`).
    async fn link_values(
        &self,
        index: LinkIndex<'_>,
        rows: LinkRows,
        codes: &[String],
        scored: Option<(&str, &str)>,
    ) -> Result<(Vec<Option<String>>, Option<u64>)> {
        let records = rows == LinkRows::Records || matches!(index, LinkIndex::All);
        let hash = self.meta(if records { "links" } else { "summaries" });
        let (mut values, score) = self.values_and_score(&hash, codes, scored).await?;
        // A link written by an older version has no summary: its record stands in.
        if !records && values.iter().any(Option::is_none) {
            values = self.hash_values(&self.meta("links"), codes).await?;
        }
        Ok((values, score))
    }

    /// Newest-first members of a zset scored by sequence, each with its cursor.
    pub(super) async fn scan_zset(
        &self,
        zset: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<(Cursor, String)>> {
        let cmd = newest_first(zset, after, limit, true)?;
        let mut rows = Vec::with_capacity(limit.min(10_000));
        let mut member = None;
        self.read_items(zset, cmd, "Failed to list from Redis", |item| {
            let item = item.ok_or_else(|| not_read_as("a listed member", "nil"))?;
            match member.take() {
                None => member = Some(text(item)),
                Some(id) => {
                    let score =
                        whole_score(item).ok_or_else(|| not_read_as("a listed member's score", "something else"))?;
                    rows.push((Cursor::mint([score]), id));
                }
            }
            Ok(())
        })
        .await?;
        if member.is_some() {
            return Err(not_read_as("a listed member", "one without its score"));
        }
        Ok(rows)
    }

    /// Values of `hash` for the members of a scan, in order (`None` for a member without one).
    async fn hash_values(&self, hash: &str, members: &[String]) -> Result<Vec<Option<String>>> {
        Ok(self.values_and_score(hash, members, None).await?.0)
    }

    /// One command on `key` whose answer is an array, each item handed to `each` as bytes
    /// (`None` for a nil one): read on the bulk connections on one Redis (a long list decoded
    /// in place, not value by value by the client's parser), else through the client.
    async fn read_items(
        &self,
        key: &str,
        cmd: redis::Cmd,
        what: &'static str,
        mut each: impl FnMut(Option<&[u8]>) -> Result<()>,
    ) -> Result<()> {
        // One key, so `add` runs once: the command (thousands of arguments for a long list)
        // moves into the pipeline, not a copy of it.
        let mut cmd = Some(cmd);
        let add = |pipe: &mut redis::Pipeline, _: usize, _: &str| {
            pipe.add_command(cmd.take().expect("one command for one key"));
        };
        self.read_each(&[key.to_owned()], add, what, |reply| reply.each_item(&mut each))
            .await
    }

    /// The values of `members` in `hash` (`hash_values`), and with `scored` (a zset and one of
    /// its members) that member's score, in the same round trip.
    async fn values_and_score(
        &self,
        hash: &str,
        members: &[String],
        scored: Option<(&str, &str)>,
    ) -> Result<(Vec<Option<String>>, Option<u64>)> {
        if members.is_empty() {
            return Ok((vec![], None));
        }
        let mut values = Vec::with_capacity(members.len());
        let mut score = None;
        // Built straight into the pipeline: a page's `HMGET` has thousands of arguments.
        let add = |pipe: &mut redis::Pipeline, i: usize, key: &str| {
            if i == 0 {
                let hmget = pipe.cmd("HMGET").arg(key);
                for m in members {
                    hmget.arg(m);
                }
            } else if let Some((_, member)) = scored {
                pipe.cmd("ZSCORE").arg(key).arg(member);
            }
        };
        let mut keys = vec![hash.to_owned()];
        keys.extend(scored.map(|(zset, _)| zset.to_owned()));
        let mut taken = 0;
        self.read_each(&keys, add, "Failed to read records from Redis", |reply| {
            taken += 1;
            match taken {
                1 => reply.each_item(|item| {
                    values.push(item.map(text));
                    Ok(())
                }),
                _ => {
                    score = Some(reply.score()?);
                    Ok(())
                }
            }
        })
        .await?;
        if values.len() != members.len() {
            return Err(not_read_as("a record list", "a list of another length"));
        }
        Ok((values, score))
    }
}

/// A scan's cursors with their members' values; a member without one (its record gone) is
/// left out.
fn with_values(cursors: Vec<Cursor>, values: Vec<Option<String>>) -> Scan<String> {
    cursors
        .into_iter()
        .zip(values)
        .filter_map(|(c, v)| Some((c, v?)))
        .collect()
}

/// `ZREVRANGEBYSCORE` of up to `limit` members of `zset` after `after`, newest first, with
/// their scores or without.
fn newest_first(zset: &str, after: Option<Cursor>, limit: usize, scores: bool) -> Result<redis::Cmd> {
    let max = match after {
        Some(c) => format!("({}", c.position::<1>()?[0]),
        None => "+inf".to_owned(),
    };
    let mut cmd = redis::cmd("ZREVRANGEBYSCORE");
    cmd.arg(zset).arg(max).arg("-inf");
    if scores {
        cmd.arg("WITHSCORES");
    }
    cmd.arg("LIMIT").arg(0).arg(limit);
    Ok(cmd)
}

/// The coupon index key of a link, `''` for none (the scripts' convention).
/// The key a link's coupon had under the older rule, when it differs (`CouponKey::legacy`).
fn legacy_coupon_arg(link: &Link) -> String {
    link.coupon
        .as_ref()
        .and_then(|c| CouponKey::legacy(c.as_str()))
        .map(|k| k.as_str().to_owned())
        .unwrap_or_default()
}

fn coupon_arg(link: &Link) -> String {
    link.coupon
        .as_ref()
        .map(|c| c.key().as_str().to_owned())
        .unwrap_or_default()
}

fn conflict(what: &str, which: String) -> std::result::Result<(), LinkConflict> {
    match what {
        "code" => Err(LinkConflict::Code(which)),
        "coupon" => Err(LinkConflict::Coupon(which)),
        "stale" => Err(LinkConflict::Stale),
        _ => Ok(()),
    }
}
