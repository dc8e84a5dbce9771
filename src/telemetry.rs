//! Counters for `/metrics` (Prometheus text format): what the click path and the webhooks did.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Label values are written as the variant names, so these are snake_case as Prometheus wants.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RedirectOutcome {
    redirected,
    bot,
    not_found,
    gone,
    unavailable,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: RedirectOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

pub struct Meters {
    registry: Registry,
    /// Redirect answers by outcome.
    pub redirects: Family<OutcomeLabel, Counter>,
    /// Clicks durably written (human and bot).
    pub clicks_written: Counter,
    /// Store writes of click groups: with the embedded store, one commit (fsync) each.
    pub click_batches: Counter,
    /// Click groups the store failed to write (their redirects were refused).
    pub click_batch_failures: Counter,
    /// Conversion webhooks answered, by status.
    pub conversions: Family<StatusLabel, Counter>,
}

impl Default for Meters {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kolink");
        let redirects = Family::<OutcomeLabel, Counter>::default();
        let clicks_written = Counter::default();
        let click_batches = Counter::default();
        let click_batch_failures = Counter::default();
        let conversions = Family::<StatusLabel, Counter>::default();
        registry.register("redirects", "Redirect answers by outcome", redirects.clone());
        registry.register("clicks_written", "Clicks durably written", clicks_written.clone());
        registry.register(
            "click_batches",
            "Grouped click writes (one store round trip or commit each)",
            click_batches.clone(),
        );
        registry.register(
            "click_batch_failures",
            "Grouped click writes that failed",
            click_batch_failures.clone(),
        );
        registry.register(
            "conversions",
            "Conversion webhooks answered, by status",
            conversions.clone(),
        );
        Self {
            registry,
            redirects,
            clicks_written,
            click_batches,
            click_batch_failures,
            conversions,
        }
    }
}

impl Meters {
    pub fn redirect(&self, outcome: RedirectOutcome) {
        self.redirects.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// The Prometheus text exposition of every counter.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
