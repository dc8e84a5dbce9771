//! The contract test suite: every test runs against every store backend, over real HTTP.

mod helpers;

mod campaigns;
mod cli;
mod conventions;
mod crash;
mod exports;
mod health;
mod kols;
mod links;
mod metrics;
mod redirect;
mod stats;
mod store;
mod webhooks;
