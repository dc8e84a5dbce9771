//! The one async interface the rest of kolink talks to; which store runs is chosen at start-up.
//!
//! Expected outcomes are values (`Ok(false)` for "already exists", `Err(LinkConflict)` inside
//! `Ok` for a taken code or coupon); `anyhow::Error` means the store itself failed, which the
//! API answers with `503`.

pub mod embedded;
pub mod redis;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{ClickInfo, Conversion, ConversionStatus, DayMetrics, Link, StoredClick, StreamId};

pub type Result<T> = anyhow::Result<T>;

/// Records kept as JSON by id, listed newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Campaign,
    Kol,
    Shop,
}

impl Kind {
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Campaign => "campaigns",
            Kind::Kol => "kols",
            Kind::Shop => "shops",
        }
    }
}

/// One page of a newest-first list; `next` is the store's cursor for the page after it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkConflict {
    Code(String),
    Coupon(String),
}

#[derive(Debug, Clone, Default)]
pub struct LinkFilter {
    pub campaign: Option<String>,
    pub kol: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ConversionFilter {
    pub campaign: Option<String>,
    pub status: Option<ConversionStatus>,
}

impl ConversionFilter {
    pub fn matches(&self, c: &Conversion) -> bool {
        self.campaign.as_ref().is_none_or(|id| c.campaign.as_ref() == Some(id))
            && self.status.is_none_or(|s| c.status == s)
    }
}

/// A click ready to be written: its proposed log entry id and the counters it bumps.
#[derive(Debug, Clone)]
pub struct NewClick {
    pub code: String,
    pub entry: StreamId,
    pub at: DateTime<Utc>,
    pub info: ClickInfo,
    pub fields: Vec<String>,
}

/// Everything counted for one link: the counter map (see `crate::counters`) and the
/// per-day platform metrics.
#[derive(Debug, Clone, Default)]
pub struct LinkData {
    pub counters: HashMap<String, i64>,
    pub metrics: BTreeMap<NaiveDate, DayMetrics>,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// `redis` or `embedded`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Answers when the store can serve.
    async fn ping(&self) -> Result<()>;

    /// Keeps `candidate` under `name` unless a value is there already; returns the value in
    /// force and whether it was just stored.
    async fn init_secret(&self, name: &str, candidate: &str) -> Result<(String, bool)>;

    /// Stores a new record; `Ok(false)` when the id exists.
    async fn create_record(&self, kind: Kind, id: &str, json: &str) -> Result<bool>;
    async fn get_record(&self, kind: Kind, id: &str) -> Result<Option<String>>;
    /// Replaces an existing record.
    async fn put_record(&self, kind: Kind, id: &str, json: &str) -> Result<()>;
    async fn list_records(&self, kind: Kind, cursor: Option<&str>, limit: usize) -> Result<Page<String>>;

    /// Reserves `n` consecutive numeric link ids and returns the first.
    async fn reserve_link_ids(&self, n: u64) -> Result<u64>;
    /// Creates all links or none.
    async fn create_links(&self, links: &[Link]) -> Result<std::result::Result<(), LinkConflict>>;
    async fn update_link(&self, old: &Link, new: &Link) -> Result<std::result::Result<(), LinkConflict>>;
    async fn get_link(&self, code: &str) -> Result<Option<Link>>;
    async fn link_code_by_id(&self, id: u64) -> Result<Option<String>>;
    async fn link_code_by_coupon(&self, coupon: &str) -> Result<Option<String>>;
    async fn list_links(&self, filter: &LinkFilter, cursor: Option<&str>, limit: usize) -> Result<Page<Link>>;

    /// Writes each click, its counters and its visitor together, durably, and returns the log
    /// entry id each click got (normally the proposed one). Writing the same batch again is a
    /// no-op for every click already written: a retry never double counts.
    async fn write_clicks(&self, clicks: &[NewClick]) -> Result<Vec<StreamId>>;
    async fn get_click(&self, code: &str, entry: StreamId) -> Result<Option<StoredClick>>;
    /// Clicks of a link in log order, after `after` (exclusive).
    async fn read_clicks(&self, code: &str, after: Option<StreamId>, limit: usize) -> Result<Vec<StoredClick>>;

    /// Adds one to a counter of the link (pixel impressions).
    async fn bump_counter(&self, code: &str, field: &str) -> Result<()>;
    /// Replaces the platform metrics of one day.
    async fn put_metrics(&self, code: &str, day: NaiveDate, metrics: &DayMetrics) -> Result<()>;

    /// Stores a conversion unless one with the same idempotency key exists; returns the stored
    /// one (the given one, or the earlier one).
    async fn save_conversion(&self, conversion: &Conversion) -> Result<Conversion>;
    async fn find_conversion(&self, idempotency_key: &str) -> Result<Option<Conversion>>;
    /// Adds an attributed conversion to its link's counters, once; `Ok(true)` when added now.
    async fn apply_conversion(&self, conversion: &Conversion, fields: &[(String, i64)]) -> Result<bool>;
    async fn list_conversions(
        &self,
        filter: &ConversionFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Conversion>>;

    /// Counters and metrics of each link, in the order given.
    async fn link_data(&self, codes: &[String]) -> Result<Vec<LinkData>>;
    /// Unique visitors of each (link, day) pair, in the order given.
    async fn unique_visitors(&self, pairs: &[(String, NaiveDate)]) -> Result<Vec<u64>>;
}
