//! Reads that handlers and rules share: a record by id (or `404`), and the filtered lists.
//! Filtering of lists happens here, above the stores: pages through `store::fill_page`, and
//! the link lists that reports read whole in `all_links` (or page by page as they arrive,
//! `all_links_as_read`), which are kept between reads (`LinkLists`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use serde::de::DeserializeOwned;

use crate::clock::SharedClock;
use crate::domain::{Campaign, Conversion, ConversionStatus, Kol, Link, LinkSummary, Shop};
use crate::error::{ApiError, Code};
use crate::store::{
    fill_page, Cursor, LinkIndex, LinkRows, Page, Record, RecordsExt, Result as StoreResult, Store, StoreError,
};

async fn record<R: Record>(store: &dyn Store, id: &str, what: &str) -> Result<R, ApiError> {
    store
        .get::<R>(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No {what} has id '{id}'.")))
}

/// How often an update is tried again when the record changed between its read and its write.
pub const UPDATE_TRIES: usize = 50;

/// Changes a record atomically: reads it, applies `change`, and writes it only if nobody wrote
/// it meanwhile; otherwise reads it again and re-applies `change`. No concurrent change is lost.
pub async fn update<R: Record>(
    store: &dyn Store,
    id: &str,
    what: &str,
    mut change: impl FnMut(&mut R) -> Result<(), ApiError> + Send,
) -> Result<R, ApiError> {
    for _ in 0..UPDATE_TRIES {
        let Some(raw) = store.get_record(R::KIND, id).await? else {
            return Err(ApiError::not_found(format!("No {what} has id '{id}'.")));
        };
        let mut record: R = serde_json::from_str(&raw).map_err(StoreError::from)?;
        change(&mut record)?;
        let json = serde_json::to_string(&record).map_err(StoreError::from)?;
        if store.replace_record(R::KIND, id, &raw, json).await? {
            return Ok(record);
        }
    }
    Err(ApiError::Unavailable(anyhow::anyhow!(
        "the {what} '{id}' changed {UPDATE_TRIES} times while it was being updated"
    )))
}

pub async fn campaign(store: &dyn Store, id: &str) -> Result<Campaign, ApiError> {
    record(store, id, "campaign").await
}

pub async fn kol(store: &dyn Store, id: &str) -> Result<Kol, ApiError> {
    record(store, id, "KOL").await
}

pub async fn shop(store: &dyn Store, id: &str) -> Result<Shop, ApiError> {
    record(store, id, "shop").await
}

pub async fn link(store: &dyn Store, code: &str) -> Result<Link, ApiError> {
    store
        .get_link(code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No link has the code '{code}'.")))
}

/// A campaign that a request names in its body: unknown is `400 unknown_campaign`.
pub async fn named_campaign(store: &dyn Store, id: &str) -> Result<Campaign, ApiError> {
    store.get::<Campaign>(id).await?.ok_or_else(|| {
        ApiError::new(
            Code::UnknownCampaign,
            format!("No campaign has id '{id}': create it first."),
        )
    })
}

/// A KOL that a request names in its body: unknown is `400 unknown_kol`.
pub async fn named_kol(store: &dyn Store, id: &str) -> Result<Kol, ApiError> {
    store
        .get::<Kol>(id)
        .await?
        .ok_or_else(|| ApiError::new(Code::UnknownKol, format!("No KOL has id '{id}': create it first.")))
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LinkFilter {
    pub campaign: Option<String>,
    pub kol: Option<String>,
}

impl LinkFilter {
    /// The index a list of these links is read from (with both filters, the campaign's), and
    /// which of its links to keep.
    fn index(&self) -> LinkIndex<'_> {
        match (&self.campaign, &self.kol) {
            (Some(c), _) => LinkIndex::Campaign(c),
            (None, Some(k)) => LinkIndex::Kol(k),
            (None, None) => LinkIndex::All,
        }
    }

    fn keeps(&self, kol: &str) -> bool {
        self.kol.as_deref().is_none_or(|k| kol == k)
    }
}

/// A page of links, newest first. With both filters, the campaign's index is read and the
/// KOL's links kept.
pub async fn links(
    store: &dyn Store,
    filter: &LinkFilter,
    after: Option<Cursor>,
    limit: usize,
) -> StoreResult<Page<Link>> {
    links_as(store, filter, after, limit).await
}

/// A link record as a list decodes it: whole, or only what reports need.
pub trait LinkRecord: DeserializeOwned {
    /// The rows of a scan that decode as this type.
    const ROWS: LinkRows;
    fn kol(&self) -> &str;
    /// One row of a scan.
    fn decode(json: &str) -> serde_json::Result<Self> {
        serde_json::from_str(json)
    }
}

impl LinkRecord for Link {
    const ROWS: LinkRows = LinkRows::Records;
    fn kol(&self) -> &str {
        self.kol.as_str()
    }
}

impl LinkRecord for LinkSummary {
    const ROWS: LinkRows = LinkRows::Summaries;
    fn kol(&self) -> &str {
        self.kol.as_str()
    }
    fn decode(json: &str) -> serde_json::Result<Self> {
        LinkSummary::from_json(json)
    }
}

async fn links_as<L: LinkRecord>(
    store: &dyn Store,
    filter: &LinkFilter,
    after: Option<Cursor>,
    limit: usize,
) -> StoreResult<Page<L>> {
    let index = filter.index();
    let both = filter.campaign.is_some() && filter.kol.is_some();
    let keep = |l: &L| filter.keeps(l.kol());
    let scan = |c, n| async move {
        let rows = store.scan_links(index, L::ROWS, c, n).await?;
        rows.into_iter().map(|(c, json)| Ok((c, L::decode(&json)?))).collect()
    };
    fill_page(after, limit, keep, scan, both).await
}

/// The link lists that reports read (a campaign's or a KOL's links, as `LinkSummary`), kept
/// with the store's links version they were read at (`Links::links_version`) and used again
/// while that version stays, for at most `KEEP_FOR`. Reading and decoding the summaries of a
/// 10,000-link campaign from Redis took about a third of its report; the dashboard asks for the
/// same campaigns again and again. A link created or changed by any kolink process of this
/// version moves the version, and the version is read before the list, so a list in use is
/// not older than the store's links; a change the version misses (a process of an older
/// version changing a link) shows within `KEEP_FOR` (of the application's clock). Bounded by the
/// links held ([`LinkLists::new`]); where the store keeps no version nothing is kept. The
/// embedded store keeps one too: decoding a 10,000-link list from its pages was almost half of
/// that campaign's report (instruction counts).
#[derive(Clone)]
pub struct LinkLists {
    kept: Arc<quick_cache::sync::Cache<LinkFilter, Kept, ByLinks>>,
    clock: SharedClock,
}

/// A list, with the links version it was read at and when.
type Kept = (u64, DateTime<Utc>, LinkList);

/// Links per page when a list is read whole (`all_links`): two of a report's chunks (checked
/// there), so that a report counts the first page's links while the next one is read, and a
/// 10,000-link list is a few store calls.
pub(crate) const LIST_PAGE: usize = 2_000;

/// How long a kept list is used at most, even while the version stays.
const KEEP_FOR: Duration = Duration::from_secs(60);

/// A list of links read whole, newest first, in the pages it was read in: a report counts
/// each page as it arrives (`all_links_as_read`), and the list is kept as it was read.
#[derive(Debug, Clone, Default)]
pub struct LinkList(Arc<[Arc<[LinkSummary]>]>);

impl LinkList {
    pub fn len(&self) -> usize {
        self.0.iter().map(|p| p.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &LinkSummary> {
        self.0.iter().flat_map(|p| p.iter())
    }

    /// Its pages, in order (none empty).
    pub fn pages(&self) -> &[Arc<[LinkSummary]>] {
        &self.0
    }
}

impl From<Vec<Arc<[LinkSummary]>>> for LinkList {
    /// Pages that are not empty.
    fn from(pages: Vec<Arc<[LinkSummary]>>) -> Self {
        debug_assert!(pages.iter().all(|p| !p.is_empty()), "an empty page in a link list");
        Self(pages.into())
    }
}

/// Links held by the link lists of a process, at most (about 130 bytes each).
pub const LINK_LISTS_HOLD: u64 = 100_000;

/// The same on the embedded store, whose memory is its bound: a 10,000-link campaign's list
/// and more (about 3 MiB), not 13 MiB of lists.
pub const EMBEDDED_LINK_LISTS_HOLD: u64 = 20_000;

/// A kept list weighs its links.
#[derive(Clone)]
struct ByLinks;

impl quick_cache::Weighter<LinkFilter, Kept> for ByLinks {
    fn weight(&self, _: &LinkFilter, kept: &Kept) -> u64 {
        // An empty list weighs one: a weight of zero would never be evicted.
        kept.2.len().max(1) as u64
    }
}

impl LinkLists {
    /// Lists of `links` links in all, at most, each kept for `KEEP_FOR` of `clock` at most.
    pub fn new(links: u64, clock: SharedClock) -> Self {
        // One shard: the cache splits its weight among its shards, and a list bigger than its
        // shard's share would never be kept.
        let options = quick_cache::OptionsBuilder::new()
            .estimated_items_capacity(256)
            .weight_capacity(links.max(1))
            .shards(1)
            .build()
            .expect("the link lists' options are valid");
        Self {
            kept: Arc::new(quick_cache::sync::Cache::with_options(
                options,
                ByLinks,
                Default::default(),
                Default::default(),
            )),
            clock,
        }
    }
}

/// Every link that `filter` selects, newest first, as reports need them: as `lists` keeps them
/// while the store's links are unchanged, else read.
pub async fn all_links(store: &dyn Store, lists: &LinkLists, filter: &LinkFilter) -> StoreResult<LinkList> {
    all_links_as_read(store, lists, filter, |_| {}).await
}

/// `all_links`, handing each page to `page` as soon as it is decoded (a kept list's pages at
/// once), so that a report counts the first links while the rest are read.
pub async fn all_links_as_read(
    store: &dyn Store,
    lists: &LinkLists,
    filter: &LinkFilter,
    mut page: impl FnMut(&Arc<[LinkSummary]>),
) -> StoreResult<LinkList> {
    let version = store.links_version().await?;
    let now = lists.clock.now();
    if let (Some(v), Some((at, read, links))) = (version, lists.kept.get(filter)) {
        // A clock that went back since makes the list stale too.
        let fresh = (now - read).to_std().is_ok_and(|age| age < KEEP_FOR);
        if at == v && fresh {
            links.pages().iter().for_each(&mut page);
            return Ok(links);
        }
    }
    let read = now;
    let index = filter.index();
    let scan = |after| store.link_rows(index, <LinkSummary as LinkRecord>::ROWS, after, LIST_PAGE);
    let mut pages = Vec::new();
    // Links kept of the pages read so far, handed on once they make a page: a KOL's links
    // among a campaign's may be few a page, and a report reads each page a chunk at a time.
    let mut held: Vec<LinkSummary> = Vec::new();
    let (mut rows, mut more) = scan(None).await?;
    loop {
        // The next page's read starts before this one is decoded: on the embedded store it goes
        // on meanwhile on the store's reader thread; on Redis its first command does.
        let (next, decoded) = tokio::join!(
            biased;
            async {
                match more {
                    Some(c) => scan(Some(c)).await.map(Some),
                    None => Ok(None),
                }
            },
            async {
                rows.iter()
                    .map(|json| <LinkSummary as LinkRecord>::decode(json))
                    .filter(|l| l.as_ref().map_or(true, |l| filter.keeps(l.kol.as_str())))
                    .collect::<serde_json::Result<Vec<_>>>()
            },
        );
        let decoded = decoded?;
        if held.is_empty() {
            held = decoded;
        } else {
            held.extend(decoded);
        }
        let next = next?;
        if held.len() >= LIST_PAGE || (next.is_none() && !held.is_empty()) {
            let full: Arc<[LinkSummary]> = std::mem::take(&mut held).into();
            page(&full);
            pages.push(full);
        }
        match next {
            Some(n) => (rows, more) = n,
            None => break,
        }
    }
    let links = LinkList::from(pages);
    if let Some(v) = version {
        lists.kept.insert(filter.clone(), (v, read, links.clone()));
    }
    Ok(links)
}

#[derive(Debug, Clone, Default)]
pub struct ConversionFilter {
    pub campaign: Option<String>,
    pub kol: Option<String>,
    pub status: Option<ConversionStatus>,
    /// UTC days of `occurred_at`.
    pub days: crate::stats::Range,
}

impl ConversionFilter {
    pub fn matches(&self, c: &Conversion) -> bool {
        self.campaign.as_ref().is_none_or(|id| c.campaign.as_ref() == Some(id))
            && self.kol.as_ref().is_none_or(|id| c.kol.as_ref() == Some(id))
            && self.status.is_none_or(|s| c.status == s)
            && self.days.contains(c.occurred_at.date_naive())
    }

    fn is_empty(&self) -> bool {
        self.campaign.is_none()
            && self.kol.is_none()
            && self.status.is_none()
            && self.days.from.is_none()
            && self.days.to.is_none()
    }
}

/// A page of stored conversions, newest first.
pub async fn conversions(
    store: &dyn Store,
    filter: &ConversionFilter,
    after: Option<Cursor>,
    limit: usize,
) -> StoreResult<Page<Conversion>> {
    fill_page(
        after,
        limit,
        |c| filter.matches(c),
        |c, n| store.scan_conversions(c, n),
        !filter.is_empty(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: usize) -> LinkList {
        let one: LinkSummary = serde_json::from_str(
            r#"{"code":"amy-serum","campaign":"spring-sale","kol":"amy","cost":"100.00","created_at":"2026-11-22T08:15:00Z"}"#,
        )
        .unwrap();
        LinkList::from(vec![Arc::from(vec![one; n])])
    }

    fn of_campaign(id: &str) -> LinkFilter {
        LinkFilter {
            campaign: Some(id.into()),
            kol: None,
        }
    }

    #[test]
    fn a_list_of_most_of_the_hold_is_kept_and_later_ones_make_room() {
        let lists = LinkLists::new(LINK_LISTS_HOLD, Arc::new(crate::clock::SystemClock));
        lists.kept.insert(of_campaign("big"), (1, Utc::now(), list(90_000)));
        assert!(lists.kept.get(&of_campaign("big")).is_some(), "kept whole");

        lists.kept.insert(of_campaign("next"), (1, Utc::now(), list(20_000)));
        assert!(lists.kept.get(&of_campaign("next")).is_some());
        assert!(
            lists.kept.weight() <= LINK_LISTS_HOLD,
            "{} links held",
            lists.kept.weight()
        );
    }

    #[test]
    fn the_embedded_stores_lists_hold_a_ten_thousand_link_campaign_and_no_more_than_their_bound() {
        let lists = LinkLists::new(EMBEDDED_LINK_LISTS_HOLD, Arc::new(crate::clock::SystemClock));
        lists.kept.insert(of_campaign("c10k"), (1, Utc::now(), list(10_000)));
        assert!(lists.kept.get(&of_campaign("c10k")).is_some(), "kept whole");
        for i in 0..4 {
            lists
                .kept
                .insert(of_campaign(&format!("c{i}")), (1, Utc::now(), list(6_000)));
        }
        assert!(
            lists.kept.weight() <= EMBEDDED_LINK_LISTS_HOLD,
            "{} links held",
            lists.kept.weight()
        );
    }
}
