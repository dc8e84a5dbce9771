//! kolink: a self-hosted short-link redirector and click tracker for influencer (KOL)
//! marketing.
//!
//! # Layout
//!
//! ```text
//! http ──────── handlers: extract, call a rule module, render (one file per resource)
//!   │
//! rules ─────── minting (links), intake (conversions, one for every shop platform),
//!   │           report (stats per link / campaign / KOL), lookup (shared reads and lists),
//!   │           clicks (the grouped click writer), classify, counters, attribution, stats
//! domain ────── plain validated types; no I/O
//! store ─────── small traits (Records, Links, ClickLog, Counters, Conversions) over typed
//!               records; Redis and the embedded store implement them; they store, the rules
//!               above decide
//! ```
//!
//! - `config`: settings, layered defaults → file → `KOLINK_*` environment.
//! - `startup`: `Application::build` opens the store, binds, serves, shuts down in order.
//! - `clock`: where "now" comes from (the system, or a test's clock).
//! - `error`: the one table of client-visible errors and their JSON body; `503` for an
//!   unavailable store, `500` for bugs.
//! - `domain`: slugs, codes, coupons, destinations, UTM, money, click ids, click dimensions,
//!   records.
//! - `http`: the API.md surface.
//! - `minting`: links from specs (UTM defaults, destination fallback, ids, code retries).
//! - `intake`: conversions from shops: the `ShopWebhooks` trait per platform, then `accept`.
//! - `attribution`: which link a conversion belongs to, and why (pure rules).
//! - `report`: the stats reports and their rows, sorted by a typed `SortKey`.
//! - `stats`: figures from counts (CTR, conversion rate, ROI …) as API.md defines them.
//! - `lookup`: a record by id or `404`; filtered, paged lists of links and conversions; the
//!   link lists that reports read, kept while the store's links are unchanged (`LinkLists`).
//! - `export`: what an exported click looks like (the API's export, `kolink tail`).
//! - `tail`: `kolink tail --group`, clicks and conversions as NDJSON for a warehouse.
//! - `qr`: QR codes of short links (SVG, PNG).
//! - `cache`: the redirect path's cache of link records.
//! - `link_book`: where every link goes, copied to local disk (Redis stores), so that a link
//!   never followed by this process still redirects while Redis does not answer.
//! - `clicks`: the click writer that groups concurrent clicks into one store round trip, and
//!   spools them when the store does not answer in time; the spool's replayer.
//! - `spool`: the local, fsync'd file where clicks wait while the store does not answer (its
//!   format is also the embedded store's click journal).
//! - `classify`: bot or person, and each click dimension's value; the visitor hash.
//! - `counters`: the counter fields of a click, a conversion, a pixel; which clicks are visits.
//! - `hours`: how long hourly counters are kept, and the job that prunes older ones.
//! - `signature`: webhook signature schemes (Standard Webhooks).
//! - `suspicion`: more than 10 clicks a minute from one visitor on one link.
//! - `store`: the store traits, `StoreError`, cursors, paging; `redis` and `embedded`.
//! - `telemetry`: the Prometheus counters served at `/metrics`; rate-limited warnings.

pub mod attribution;
pub mod cache;
pub mod classify;
pub mod clicks;
pub mod clock;
pub mod config;
pub mod counters;
pub mod domain;
pub mod error;
pub mod export;
pub mod hours;
pub mod http;
pub mod intake;
pub mod link_book;
pub mod lookup;
pub mod minting;
#[cfg(test)]
mod properties;
pub mod qr;
pub mod report;
pub mod signature;
pub mod spool;
pub mod startup;
pub mod stats;
pub mod store;
pub mod suspicion;
pub mod tail;
pub mod telemetry;
