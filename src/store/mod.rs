//! The store seam: a few small traits over typed records that the rest of kolink talks to; which
//! store runs is chosen at start-up (`Arc<dyn Store>`).
//!
//! - [`Records`]: campaigns, KOLs and shops by id, newest first. Typed access is the provided
//!   [`RecordsExt`] (`create`, `get`, `put`, `list` of any [`Record`]); the store sees JSON.
//! - [`Links`]: links with their code, id, coupon, campaign and KOL indexes.
//! - [`ClickLog`]: each link's log of clicks, written in groups.
//! - [`Counters`]: each link's counters, day insights and unique visitors.
//! - [`Conversions`]: the conversion log, its idempotency, and counting a conversion once.
//!
//! The stores store; the rules live above them: which clicks count as unique visitors and on
//! which day (`crate::counters`), how coupons fold (`CouponKey`), which conversions count
//! (`crate::intake`), what a filtered page holds ([`fill_page`]).
//!
//! Expected outcomes are values (`Ok(false)` for "already exists", `Err(LinkConflict)` inside
//! `Ok`). [`StoreError`] tells a store that does not answer (`Unavailable`: the API says `503`
//! with `Retry-After`) from data or use it cannot make sense of (`Corrupt`: a bug, `500`), and a
//! cursor it never minted (`BadCursor`: `400`). Cursors are opaque: a store mints them from its
//! own positions and reads them back; nothing else looks inside.

pub mod embedded;
pub mod redis;

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::{
    Campaign, ClickInfo, Conversion, CouponKey, DayInsights, EntryId, Kol, Link, Share, Shop, StoredClick,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer (down, timed out, out of disk): retrying later may work.
    #[error("storage is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// The store answered with data kolink cannot read, or refused what kolink asked: a bug.
    #[error("storage failed: {0:#}")]
    Corrupt(anyhow::Error),
    /// A list cursor that this store did not mint.
    #[error("the cursor was not minted by this store")]
    BadCursor,
}

impl StoreError {
    pub fn corrupt(message: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(anyhow::anyhow!("{message}"))
    }
}

/// Decoding a stored record can only fail when the data is not what kolink wrote.
impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(anyhow::Error::new(e).context("Failed to decode a stored record"))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Records kept as JSON by id, listed newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Campaign,
    Kol,
    Shop,
    Share,
}

impl Kind {
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Campaign => "campaigns",
            Kind::Kol => "kols",
            Kind::Shop => "shops",
            Kind::Share => "shares",
        }
    }
}

/// A record the [`Records`] store keeps.
pub trait Record: Serialize + DeserializeOwned + Send + Sync {
    const KIND: Kind;
    fn id(&self) -> &str;
}

impl Record for Campaign {
    const KIND: Kind = Kind::Campaign;
    fn id(&self) -> &str {
        self.id.as_str()
    }
}

impl Record for Kol {
    const KIND: Kind = Kind::Kol;
    fn id(&self) -> &str {
        self.id.as_str()
    }
}

impl Record for Shop {
    const KIND: Kind = Kind::Shop;
    fn id(&self) -> &str {
        self.id.as_str()
    }
}

impl Record for Share {
    const KIND: Kind = Kind::Share;
    fn id(&self) -> &str {
        &self.id
    }
}

/// A position in a newest-first list, opaque outside the store that minted it. A store's own
/// cursor keeps its numbers and is written out (URL-safe base64 of their big-endian bytes) only
/// when a page hands it to a client: every item of a scan carries one, and a report reading a
/// 10,000-link list uses none of them.
#[derive(Debug, Clone)]
pub struct Cursor(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// What a client sent back, unread.
    Client(String),
    /// A store's position: the first `len` numbers of `at`.
    Minted { len: usize, at: [u64; MAX_POSITION] },
}

/// The most numbers a store's position has (a stream id: milliseconds and sequence).
const MAX_POSITION: usize = 2;

impl Cursor {
    /// What a client sent back; only the store can tell whether it is one of its own.
    pub fn from_client(s: &str) -> Option<Self> {
        (!s.is_empty() && s.len() <= 128).then(|| Self(Repr::Client(s.to_owned())))
    }

    /// The cursor as a client sees it.
    pub fn to_client(&self) -> String {
        match &self.0 {
            Repr::Client(s) => s.clone(),
            Repr::Minted { len, at } => {
                let bytes: Vec<u8> = at[..*len].iter().flat_map(|n| n.to_be_bytes()).collect();
                B64URL.encode(bytes)
            }
        }
    }

    /// A store's position as a cursor: `N` numbers.
    pub(crate) fn mint<const N: usize>(position: [u64; N]) -> Self {
        const { assert!(N <= MAX_POSITION, "a cursor holds at most MAX_POSITION numbers") };
        let mut at = [0; MAX_POSITION];
        at[..N].copy_from_slice(&position);
        Self(Repr::Minted { len: N, at })
    }

    /// The `N` numbers of a cursor minted by `mint::<N>` (here, or written out to a client and
    /// sent back).
    pub(crate) fn position<const N: usize>(&self) -> Result<[u64; N]> {
        let mut out = [0u64; N];
        match &self.0 {
            Repr::Minted { len, at } if *len == N => out.copy_from_slice(&at[..N]),
            Repr::Minted { .. } => return Err(StoreError::BadCursor),
            Repr::Client(s) => {
                let bytes = B64URL.decode(s).map_err(|_| StoreError::BadCursor)?;
                if bytes.len() != N * 8 {
                    return Err(StoreError::BadCursor);
                }
                for (o, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                    *o = u64::from_be_bytes(chunk.try_into().map_err(|_| StoreError::BadCursor)?);
                }
            }
        }
        Ok(out)
    }
}

/// One page of a newest-first list; `next` is the cursor of the page after it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// Items of a store's list, each with the cursor that continues after it. Fewer than asked for
/// means the list ends there.
pub type Scan<T> = Vec<(Cursor, T)>;

/// Fills a page of up to `limit` items that pass `keep`, reading the store's list in scans.
/// Where pages of lists are filtered, for every store (a link list read whole for a report
/// is read by `lookup::all_links`).
pub async fn fill_page<T, F>(
    after: Option<Cursor>,
    limit: usize,
    keep: impl Fn(&T) -> bool,
    mut scan: impl FnMut(Option<Cursor>, usize) -> F,
    filtered: bool,
) -> Result<Page<T>>
where
    F: std::future::Future<Output = Result<Scan<T>>>,
{
    // Unfiltered, one scan of `limit` is a page; filtered, scan wider to skip faster.
    let width = if filtered { limit.max(100) } else { limit };
    let mut cursor = after;
    let mut items = Vec::new();
    loop {
        let batch = scan(cursor.clone(), width).await?;
        let ended = batch.len() < width;
        for (c, item) in batch {
            if keep(&item) {
                items.push(item);
                if items.len() == limit {
                    return Ok(Page { items, next: Some(c) });
                }
            }
            cursor = Some(c);
        }
        if ended {
            return Ok(Page { items, next: None });
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkConflict {
    Code(String),
    Coupon(String),
    /// The link changed since it was read: read it again and retry.
    Stale,
}

/// Which index a list of links is read from.
#[derive(Debug, Clone, Copy)]
pub enum LinkIndex<'a> {
    All,
    Campaign(&'a str),
    Kol(&'a str),
}

/// What a scan of links gives for each link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRows {
    /// The whole JSON record, a `Link`.
    Records,
    /// What reports need, a `LinkSummary`: kept beside the campaign and KOL indexes and written
    /// with the record, so that a report over a campaign's 10,000 links reads a few hundred
    /// kilobytes instead of every record. Over `LinkIndex::All`, the records (they decode as
    /// summaries too).
    Summaries,
}

/// The summary JSON that stores keep beside their link indexes (`LinkRows::Summaries`).
pub fn summary_json(link: &Link) -> Result<String> {
    Ok(serde_json::to_string(&crate::domain::LinkSummary::from(link))?)
}

/// Says that `coupon`, kept under an older version's key by link `stays`, cannot move to its
/// key of today, which link `holder`'s coupon holds: it keeps matching as written, and today's
/// rule takes the two for one coupon everywhere else.
pub fn warn_coupon_stays(coupon: &str, stays: &str, holder: &str) {
    tracing::warn!(
        coupon,
        link = stays,
        other_link = holder,
        "a coupon kept under an older key folds onto another link's coupon: it stays under its older key and still matches a shop's code as written; change one of the two coupons"
    );
}

/// A click ready to be written: its log entry id, the counters it bumps and, for a person, the
/// day's unique visitor it adds to.
#[derive(Debug, Clone)]
pub struct NewClick {
    pub code: String,
    pub entry: EntryId,
    pub at: DateTime<Utc>,
    pub info: ClickInfo,
    pub fields: Vec<String>,
    pub visit: Option<Visit>,
}

/// A visitor counted once per link and UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub visitor: String,
}

/// Everything counted for one link: the fields of its counter maps (see `crate::counters`),
/// each once, and the per-day platform insights.
#[derive(Debug, Clone, Default)]
pub struct LinkData {
    /// The rollups.
    pub rollups: Vec<(String, i64)>,
    /// The full map, read unless `Detail::Rollups` (else empty).
    pub full: Vec<(String, i64)>,
    pub insights: BTreeMap<NaiveDate, DayInsights>,
}

impl LinkData {
    /// The count of one rollup field, if the link has it.
    pub fn rollup(&self, field: &str) -> Option<i64> {
        self.rollups.iter().find(|(f, _)| f == field).map(|(_, n)| *n)
    }
}

/// Unique visitors of a link and day that every store counts exactly, and keeps in the
/// rollups' `u|<day>`; past it, the Redis store estimates the rest (a HyperLogLog).
pub const EXACT_VISITORS: u64 = 10_000;

/// Which of a link's counter maps to read (see `crate::counters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// The rollups alone (daily totals and all-time breakdowns): enough for a report over
    /// every day.
    Rollups,
    /// The rollups and the full map (hourly counts, daily breakdowns): for an hourly series
    /// over every day.
    Full,
    /// The rollups but their all-time breakdowns (`crate::counters::is_all_time`), and the
    /// full map: for a range of days.
    Range,
}

impl Detail {
    /// Whether the full map is read.
    pub fn full(self) -> bool {
        self != Detail::Rollups
    }
}

#[async_trait::async_trait]
pub trait Records: Send + Sync {
    /// Stores a new record; `Ok(false)` when the id exists.
    async fn create_record(&self, kind: Kind, id: &str, json: String) -> Result<bool>;
    async fn get_record(&self, kind: Kind, id: &str) -> Result<Option<String>>;
    /// Several records at once (one round trip), in the order asked.
    async fn get_records(&self, kind: Kind, ids: &[String]) -> Result<Vec<Option<String>>>;
    /// Replaces a record if it is still `expected` (the JSON read before); `Ok(false)` when it
    /// changed meanwhile (or is gone). Updates are compare-and-set: none is lost to a race.
    async fn replace_record(&self, kind: Kind, id: &str, expected: &str, json: String) -> Result<bool>;
    /// Newest first, after `after`.
    async fn scan_records(&self, kind: Kind, after: Option<Cursor>, limit: usize) -> Result<Scan<String>>;
}

/// Typed access to [`Records`]: the one place records are encoded and decoded (updates, which
/// need the JSON read, are `crate::lookup::update`).
#[async_trait::async_trait]
pub trait RecordsExt: Records {
    async fn create<R: Record>(&self, record: &R) -> Result<bool> {
        let json = serde_json::to_string(record)?;
        self.create_record(R::KIND, record.id(), json).await
    }

    async fn get<R: Record>(&self, id: &str) -> Result<Option<R>> {
        match self.get_record(R::KIND, id).await? {
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
            None => Ok(None),
        }
    }

    async fn get_many<R: Record>(&self, ids: &[String]) -> Result<Vec<Option<R>>> {
        self.get_records(R::KIND, ids)
            .await?
            .into_iter()
            .map(|json| {
                json.map(|j| serde_json::from_str(&j))
                    .transpose()
                    .map_err(StoreError::from)
            })
            .collect()
    }

    async fn list<R: Record>(&self, after: Option<Cursor>, limit: usize) -> Result<Page<R>> {
        let page = fill_page(after, limit, |_| true, |c, n| self.scan_records(R::KIND, c, n), false).await?;
        Ok(Page {
            items: page
                .items
                .iter()
                .map(|j| serde_json::from_str(j))
                .collect::<Result<_, _>>()?,
            next: page.next,
        })
    }
}

impl<T: Records + ?Sized> RecordsExt for T {}

/// What `Links::link_changes` read, in one step.
#[derive(Debug)]
pub struct LinkChanges {
    /// The number of the last change of links (0 before any).
    pub seq: u64,
    /// How many links the store holds.
    pub links: u64,
    /// The JSON records of the links changed after the change asked for, when all are known.
    pub records: Option<Vec<String>>,
}

#[async_trait::async_trait]
pub trait Links: Send + Sync {
    /// Reserves `n` consecutive numeric link ids and returns the first.
    async fn reserve_link_ids(&self, n: u64) -> Result<u64>;
    /// Creates all links or none.
    async fn create_links(&self, links: &[Link]) -> Result<std::result::Result<(), LinkConflict>>;
    /// Replaces a link if its stored JSON is still `expected`, moving its coupon in the coupon
    /// index in the same step (`Stale` when it changed meanwhile).
    async fn update_link(&self, expected: &str, new: &Link) -> Result<std::result::Result<(), LinkConflict>>;
    /// A link's stored JSON, as `update_link` expects it.
    async fn get_link_json(&self, code: &str) -> Result<Option<String>>;
    async fn get_link(&self, code: &str) -> Result<Option<Link>> {
        match self.get_link_json(code).await? {
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
            None => Ok(None),
        }
    }
    async fn link_code_by_id(&self, id: u64) -> Result<Option<String>>;
    async fn link_code_by_coupon(&self, coupon: &CouponKey) -> Result<Option<String>>;
    /// Moves coupons kept under the key of an older rule (`CouponKey::legacy`: only ASCII
    /// letters folded) to their `CouponKey::of`, so that minting, changing and matching find
    /// them. A coupon whose new key another link's holds stays where it was (and is logged).
    /// Returns how many moved. Safe to run again and from several processes at once.
    async fn fold_coupon_keys(&self) -> Result<usize>;
    /// A number that moves whenever a link is created or changed (by any process of this
    /// version on the store; `lookup::LinkLists`): a list of links read after it is at least as
    /// new as it. `None` where the store keeps none, and lists are read each time.
    async fn links_version(&self) -> Result<Option<u64>> {
        Ok(None)
    }
    /// Where the store's numbered changes of links stand, and, with `after`, the records of
    /// the links created or changed after change `after` (for copies of every link kept up to
    /// date, the link book): `records` is `None` when they are not all known (more than
    /// `limit`, changes let go, or a count that went back, as after a restore). `None` where the
    /// store numbers no changes.
    async fn link_changes(&self, _after: Option<u64>, _limit: usize) -> Result<Option<LinkChanges>> {
        Ok(None)
    }
    /// Newest first from one index, after `after`: each link's JSON record, or its summary
    /// (`rows`), which readers decode as a `Link` or as a `LinkSummary`.
    async fn scan_links(
        &self,
        index: LinkIndex<'_>,
        rows: LinkRows,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Scan<String>>;
    /// A page of `scan_links` without a cursor per row: its rows, and the cursor the next page
    /// starts after (`None` at the index's end; after a full page the next may be empty).
    /// Callers follow the cursor, not the number of rows. A list read whole needs no more, and
    /// a store may read less for it. This default gives a cursor after a full page of rows.
    async fn link_rows(
        &self,
        index: LinkIndex<'_>,
        rows: LinkRows,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<Cursor>)> {
        let scan = self.scan_links(index, rows, after, limit).await?;
        let next = scan.last().filter(|_| scan.len() == limit).map(|(c, _)| c.clone());
        Ok((scan.into_iter().map(|(_, row)| row).collect(), next))
    }
}

#[async_trait::async_trait]
pub trait ClickLog: Send + Sync {
    /// Writes each click, its counters and its visit together, durably, and returns the log
    /// entry id each click got (normally the proposed one). Writing the same batch again is a
    /// no-op for every click already written: a retry never double counts.
    async fn write_clicks(&self, clicks: &[NewClick]) -> Result<Vec<EntryId>>;
    async fn get_click(&self, code: &str, entry: EntryId) -> Result<Option<StoredClick>>;
    /// Clicks of a link in log order, after `after` (exclusive).
    async fn read_clicks(&self, code: &str, after: Option<EntryId>, limit: usize) -> Result<Vec<StoredClick>>;
    /// From now on keeps clicks for at least `days`, whatever retention the store was opened
    /// with; never shortens it. A store shared by processes started with different retentions
    /// (Redis) may hold a campaign, accepted by another, whose attribution window is longer than
    /// this process's retention: its clicks must not be trimmed away here.
    fn keep_clicks_for_at_least(&self, _days: u32) {}
}

#[async_trait::async_trait]
pub trait Counters: Send + Sync {
    /// Adds one to a counter of the link (pixel impressions), and to its rollups.
    async fn bump_counter(&self, code: &str, field: &str) -> Result<()>;
    /// Replaces the platform insights of one day.
    async fn put_insights(&self, code: &str, day: NaiveDate, insights: &DayInsights) -> Result<()>;
    /// Removes the platform insights of one day (a day reported by mistake); whether there
    /// were any.
    async fn remove_insights(&self, code: &str, day: NaiveDate) -> Result<bool>;
    /// Counters (the maps `detail` names) and insights of each link, in the order given.
    async fn link_data(&self, codes: &[String], detail: Detail) -> Result<Vec<LinkData>>;
    /// Unique visitors of each (link, day) pair, in the order given.
    async fn unique_visitors(&self, pairs: &[(String, NaiveDate)]) -> Result<Vec<u64>>;
    /// Removes the hourly fields (`crate::counters::hourly_prefixes`) of days before
    /// `keep_from` from every link's full map; the rollups keep those days whole. Returns how
    /// many fields went. Running it again removes nothing more; it works a bounded number of
    /// links at a time, so clicks are written between. Redis notes the day of its last whole
    /// pass and answers a pass for that day or an earlier one at once (a pass reads every link):
    /// an hour of a day before it written since (a late conversion, a replayed click) on a link
    /// that had no hours at the pass waits for the next day's pass. The embedded store, held by
    /// one process, passes again.
    async fn prune_hours(&self, keep_from: NaiveDate) -> Result<u64>;
}

#[async_trait::async_trait]
pub trait Conversions: Send + Sync {
    /// Stores a conversion unless one with the same idempotency key exists; returns the stored
    /// one (the given one, or the earlier one).
    async fn save_conversion(&self, conversion: &Conversion) -> Result<Conversion>;
    async fn find_conversion(&self, idempotency_key: &str) -> Result<Option<Conversion>>;
    /// Adds a conversion's amounts to a link's counters, once per conversion id. A refund
    /// comes with its `RefundCap`: it is added only if the order's refunds stay within the
    /// purchase amount, checked and added in one atomic step.
    async fn count_conversion(
        &self,
        code: &str,
        conversion_id: &str,
        fields: &[(String, i64)],
        refund: Option<&RefundCap>,
    ) -> Result<Counted>;
    /// Whether `conversion_id` is counted on the link `code` (`count_conversion` added it).
    async fn is_counted(&self, code: &str, conversion_id: &str) -> Result<bool>;
    /// Replaces the stored conversion with the same idempotency key (its status changed).
    async fn update_conversion(&self, conversion: &Conversion) -> Result<()>;
    /// Remembers a refund (by idempotency key) that waits for the purchase `order_key`.
    async fn add_pending(&self, order_key: &str, refund_key: &str) -> Result<()>;
    /// The refunds waiting for the purchase `order_key`.
    async fn pending(&self, order_key: &str) -> Result<Vec<String>>;
    async fn remove_pending(&self, order_key: &str, refund_key: &str) -> Result<()>;
    /// Newest first, after `after`.
    async fn scan_conversions(&self, after: Option<Cursor>, limit: usize) -> Result<Scan<Conversion>>;
}

/// What counting a conversion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Added now.
    Now,
    /// Added by an earlier call.
    Before,
    /// A refund that would take its order's refunds past the purchase amount: not added.
    OverRefund,
}

/// A refund's limit: its order's refunds (in minor units, per link) may not pass `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundCap {
    /// The purchase's idempotency key.
    pub order: String,
    pub amount: i64,
    pub limit: i64,
}

/// Everything a store does.
#[async_trait::async_trait]
pub trait Store: Records + Links + ClickLog + Counters + Conversions + Send + Sync + 'static {
    /// `redis` or `embedded`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Answers when the store can serve.
    async fn ping(&self) -> Result<()>;

    /// Keeps `candidate` under `name` unless a value is there already; returns the value in
    /// force and whether it was just stored.
    async fn init_secret(&self, name: &str, candidate: &str) -> Result<(String, bool)>;

    /// The value under `name`, if one is kept.
    async fn secret(&self, name: &str) -> Result<Option<String>>;

    /// Keeps `value` under `name`, over what was there.
    async fn replace_secret(&self, name: &str, value: &str) -> Result<()>;

    /// Takes the store as this process's only while it keeps `visitor_key` (the value this
    /// process started with), as `confirm_identity` checks. The embedded store, whose files
    /// this process holds alone, needs no such check.
    fn hold_to_identity(&self, _visitor_key: &str) {}

    /// Checks now that the store is this process's (`hold_to_identity`). One that is not (a
    /// Redis that came back flushed or without its data, or another Redis at the address) is
    /// `Unavailable` from then on, for every call, until it is again: clicks wait in the spool,
    /// links redirect from the link book, the API answers 503, and nothing is written to it.
    async fn confirm_identity(&self) -> Result<()> {
        Ok(())
    }

    /// Waits until the store's identity is in doubt (a dropped connection: what answers next
    /// may be another Redis), for `confirm_identity` to be asked at once. Never, by default.
    async fn identity_in_doubt(&self) {
        std::future::pending::<()>().await
    }

    /// Stops background work (pruning) and waits for it; called once at shutdown.
    async fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let c = Cursor::mint([7, u64::MAX]);
        assert_eq!(c.position::<2>().unwrap(), [7, u64::MAX]);
        assert!(matches!(c.position::<1>(), Err(StoreError::BadCursor)));
        // Written out and sent back, a cursor reads as the same position, and the one-number
        // kind still refuses being read as two.
        let sent = Cursor::from_client(&c.to_client()).unwrap();
        assert_eq!(sent.position::<2>().unwrap(), [7, u64::MAX]);
        assert!(matches!(sent.position::<1>(), Err(StoreError::BadCursor)));
        let one = Cursor::mint([7]);
        // The written form is the one earlier builds handed out, so their cursors still read.
        assert_eq!(one.to_client(), "AAAAAAAAAAc");
        assert_eq!(c.to_client(), "AAAAAAAAAAf__________w");
        assert!(matches!(one.position::<2>(), Err(StoreError::BadCursor)));
        let sent = Cursor::from_client(&one.to_client()).unwrap();
        assert_eq!(sent.position::<1>().unwrap(), [7]);
        assert!(matches!(sent.position::<2>(), Err(StoreError::BadCursor)));
        for bad in ["MTIz", "not base64!", "AAAAAAAAAA"] {
            let c = Cursor::from_client(bad).unwrap();
            assert!(matches!(c.position::<1>(), Err(StoreError::BadCursor)), "{bad}");
        }
    }

    #[tokio::test]
    async fn fill_page_keeps_filtering_across_scans_and_resumes_after_the_last_kept_item() {
        // A list of 0..250, newest first; keep multiples of 3.
        let items: Vec<u64> = (0..250).rev().collect();
        let scan = |after: Option<Cursor>, n: usize| {
            let page = match after.map(|c| c.position::<1>()) {
                Some(Err(e)) => Err(e),
                start => {
                    let start = start.map_or(0, |s| s.map_or(0, |p| p[0] as usize));
                    Ok(items
                        .iter()
                        .enumerate()
                        .skip(start)
                        .take(n)
                        .map(|(i, v)| (Cursor::mint([i as u64 + 1]), *v))
                        .collect())
                }
            };
            std::future::ready(page)
        };
        let keep = |v: &u64| v.is_multiple_of(3);
        let first = fill_page(None, 50, keep, scan, true).await.unwrap();
        assert_eq!(first.items.len(), 50);
        assert_eq!(first.items[0], 249);
        let second = fill_page(first.next, 50, keep, scan, true).await.unwrap();
        assert_eq!(second.items[0], first.items[49] - 3);
        assert_eq!(second.items.len(), 34);
        assert!(second.next.is_none());
    }
}
