//! kolink: a self-hosted short-link redirector and click tracker for influencer (KOL)
//! marketing.
//!
//! # Layout
//!
//! - `config`: settings, layered defaults → file → `KOLINK_*` environment.
//! - `startup`: `Application::build` binds the listener, opens the store, starts the server.
//! - `error`: the one table of client-visible errors and their JSON body.
//! - `domain`: plain validated types (slugs, codes, destinations, UTM, money, click ids,
//!   records); no I/O.
//! - `http`: one file per resource; handlers parse, call the domain and the store, answer.
//! - `store`: the `Store` trait, its Redis implementation and the embedded (redb) one.
//! - `clicks`: the click writer that groups concurrent clicks into one store round trip.
//! - `classify`: bot or person, device, browser, OS, referrer, visitor hash.
//! - `counters`: names of a link's counters, shared by every store.
//! - `attribution`: which link a conversion belongs to, and why (pure rules).
//! - `conversions`: taking a conversion: attribute, store, count once.
//! - `stats`: figures from counts (CTR, conversion rate, ROI …) as API.md defines them.
//! - `signature`: webhook signature schemes (Standard Webhooks).
//! - `telemetry`: the counters served at `/metrics`.

pub mod attribution;
pub mod classify;
pub mod clicks;
pub mod config;
pub mod conversions;
pub mod counters;
pub mod domain;
pub mod error;
pub mod http;
pub mod signature;
pub mod startup;
pub mod stats;
pub mod store;
pub mod telemetry;
