//! The contract test suite, over real HTTP: every contract test runs once per store, as
//! `<file>::<test>::redis` and `<file>::<test>::embedded`.

/// Runs `async fn $name(backend: Backend)` as one test per store.
/// One test per store: `per_store!(name)` runs `name(backend)` on Redis, the embedded store
/// and a Redis Cluster; `per_store!(name: redis embedded)` on the stores named.
macro_rules! per_store {
    ($name:ident) => {
        per_store!($name: redis embedded cluster);
    };
    ($name:ident: $($store:ident)+) => {
        mod $name {
            $(
                #[tokio::test]
                async fn $store() {
                    super::$name(crate::helpers::Backend::named(stringify!($store))).await
                }
            )+
        }
    };
}

mod cluster_server;
mod helpers;

mod browser;
mod campaigns;
mod classify;
mod cli;
mod conventions;
mod crash;
mod dashboard;
mod errors;
mod exact;
mod exports;
mod health;
mod hours;
mod kols;
mod links;
mod metrics;
mod outage;
mod redirect;
mod scale_out;
mod shares;
mod shop_forms;
mod shops;
mod stats;
mod store;
mod summaries;
mod tail;
mod time;
mod webdriver;
mod webhooks;
