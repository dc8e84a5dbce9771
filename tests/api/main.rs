//! The contract test suite, over real HTTP: every contract test runs once per store, as
//! `<file>::<test>::redis` and `<file>::<test>::embedded`.

/// Runs `async fn $name(backend: Backend)` as one test per store.
macro_rules! per_store {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn redis() {
                super::$name(crate::helpers::Backend::Redis).await
            }

            #[tokio::test]
            async fn embedded() {
                super::$name(crate::helpers::Backend::Embedded).await
            }
        }
    };
}

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
mod kols;
mod links;
mod metrics;
mod outage;
mod redirect;
mod shares;
mod shops;
mod stats;
mod store;
mod time;
mod webdriver;
mod webhooks;
