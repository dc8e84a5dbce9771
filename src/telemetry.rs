//! Counters for `/metrics` (Prometheus text: OpenMetrics, or the classic 0.0.4 format): what
//! the click path and the webhooks did; `warn_limited!`, the log line for what clients and
//! outages can repeat thousands of times a second; and the log subscriber ([`init_logs`]).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
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

/// The part of the service an answer came from (`crate::http::meter`).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Scope {
    api,
    webhooks,
    dashboard,
    kol_page,
    pixel,
    operations,
    other,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnswerLabel {
    pub scope: Scope,
    pub code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabel {
    pub scope: Scope,
}

/// How the link book (`crate::link_book`) was brought up to date: every link read, or only
/// those changed since its last copy.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum BookCopy {
    whole,
    changes,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BookCopyLabel {
    pub kind: BookCopy,
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
    /// Store writes of click groups: with the embedded store, one journal record (fsync) each.
    pub click_batches: Counter,
    /// Click groups the store failed to write (their redirects were refused).
    pub click_batch_failures: Counter,
    /// How long each click group took to be written durably (to the store, or to the spool).
    pub click_write_seconds: Histogram,
    /// How long the oldest click of each group waited for the writer before its group's write
    /// began (the writer was busy with the groups before it).
    pub click_queue_seconds: Histogram,
    /// Conversion webhooks answered, by status.
    pub conversions: Family<StatusLabel, Counter>,
    /// Clicks written to the spool because the store did not answer in time.
    pub clicks_spooled: Counter,
    /// Spooled clicks replayed into the store.
    pub clicks_replayed: Counter,
    /// Clicks in the spool now, waiting for the store (set when `/metrics` is read).
    pub spool_clicks: Gauge,
    /// Bytes of spool in use now, and the most it holds.
    pub spool_bytes: Gauge,
    pub spool_used_bytes: Gauge,
    pub spool_capacity_bytes: Gauge,
    /// Hourly counter fields removed past their retention (`crate::hours`).
    pub hourly_fields_pruned: Counter,
    /// The first UTC day whose hours are kept, as of the last completed prune (Unix seconds).
    pub hours_kept_from: Gauge,
    /// Links in the link book (`crate::link_book`), and links read from it while the store did
    /// not answer (each then goes into the link cache: a few reads per link and outage).
    pub link_book_links: Gauge,
    pub link_book_answers: Counter,
    /// The link book's copies, whole or of changes.
    pub link_book_copies: Family<BookCopyLabel, Counter>,
    /// Answers other than redirects, by part of the service and status code.
    pub http_answers: Family<AnswerLabel, Counter>,
    /// How long those answers took, head read to answer ready, by part of the service.
    pub http_seconds: Family<ScopeLabel, Histogram>,
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
        // 0.1 ms to 0.8 s: a group's write is about a millisecond when the store is well, and
        // the spool takes over at 250 ms.
        let click_write_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 14));
        let click_queue_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 14));
        registry.register(
            "click_write_seconds",
            "Time a click group took to be written durably (to the store, or to the spool)",
            click_write_seconds.clone(),
        );
        registry.register(
            "click_queue_seconds",
            "Time the oldest click of each group waited for the writer before the group's write began",
            click_queue_seconds.clone(),
        );
        let clicks_spooled = Counter::default();
        let clicks_replayed = Counter::default();
        let spool_clicks = Gauge::default();
        let spool_bytes = Gauge::default();
        let spool_used_bytes = Gauge::default();
        let spool_capacity_bytes = Gauge::default();
        registry.register(
            "clicks_spooled",
            "Clicks written to the local spool because the store did not answer in time",
            clicks_spooled.clone(),
        );
        registry.register(
            "clicks_replayed",
            "Spooled clicks replayed into the store",
            clicks_replayed.clone(),
        );
        registry.register(
            "spool_clicks",
            "Clicks waiting in the spool for the store",
            spool_clicks.clone(),
        );
        registry.register(
            "spool_bytes",
            "Bytes of the clicks waiting in the spool",
            spool_bytes.clone(),
        );
        registry.register(
            "spool_used_bytes",
            "Bytes of the spool's capacity taken (replayed room is used again once the spool is empty): a full spool refuses redirects",
            spool_used_bytes.clone(),
        );
        registry.register(
            "spool_capacity_bytes",
            "The most the spool holds, in bytes",
            spool_capacity_bytes.clone(),
        );
        let hourly_fields_pruned = Counter::default();
        let hours_kept_from = Gauge::default();
        registry.register(
            "hourly_fields_pruned",
            "Hourly counter fields removed past hourly_retention_days",
            hourly_fields_pruned.clone(),
        );
        registry.register(
            "hours_kept_from_seconds",
            "The first UTC day whose hourly counters are kept, as of the last completed prune",
            hours_kept_from.clone(),
        );
        let link_book_links = Gauge::default();
        let link_book_answers = Counter::default();
        registry.register(
            "link_book_links",
            "Links in this process's link book (Redis stores), as of its last copy",
            link_book_links.clone(),
        );
        registry.register(
            "link_book_answers",
            "Links read from the link book because the store did not answer",
            link_book_answers.clone(),
        );
        let link_book_copies = Family::<BookCopyLabel, Counter>::default();
        registry.register(
            "link_book_copies",
            "Copies into the link book: of every link (whole) or of the links changed since the last (changes)",
            link_book_copies.clone(),
        );
        let http_answers = Family::<AnswerLabel, Counter>::default();
        // 0.5 ms to 16 s: a page or a report takes milliseconds, and nothing waits past 10 s.
        let http_seconds = Family::<ScopeLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register(
            "http_responses",
            "Answers other than redirects (see kolink_redirects), by part of the service and status code",
            http_answers.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer requests other than redirects, by part of the service",
            http_seconds.clone(),
        );
        Self {
            registry,
            link_book_links,
            link_book_answers,
            link_book_copies,
            http_answers,
            http_seconds,
            hourly_fields_pruned,
            hours_kept_from,
            clicks_spooled,
            clicks_replayed,
            spool_clicks,
            spool_bytes,
            spool_used_bytes,
            spool_capacity_bytes,
            redirects,
            clicks_written,
            click_batches,
            click_batch_failures,
            click_write_seconds,
            click_queue_seconds,
            conversions,
        }
    }
}

impl Meters {
    pub fn redirect(&self, outcome: RedirectOutcome) {
        self.redirects.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// An answer other than a redirect's: its part of the service, status and time taken.
    pub fn http_answer(&self, scope: Scope, status: actix_web::http::StatusCode, took: std::time::Duration) {
        self.http_answers
            .get_or_create(&AnswerLabel {
                scope,
                code: status.as_u16(),
            })
            .inc();
        self.http_seconds
            .get_or_create(&ScopeLabel { scope })
            .observe(took.as_secs_f64());
    }

    /// A completed prune of hourly counters: `n` fields went, days from `kept_from` stay.
    pub fn hours_pruned(&self, n: u64, kept_from: chrono::NaiveDate) {
        self.hourly_fields_pruned.inc_by(n);
        self.hours_kept_from
            .set(kept_from.and_time(chrono::NaiveTime::MIN).and_utc().timestamp());
    }

    /// Every meter in the OpenMetrics text format, which Prometheus asks for.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Every meter in Prometheus' classic text format (0.0.4), for scrapers and people that do
    /// not ask for OpenMetrics.
    pub fn encode_classic(&self) -> String {
        classic_text(&self.encode())
    }
}

/// OpenMetrics text as Prometheus' classic text format (0.0.4). prometheus-client writes only
/// the former, and the two differ in a few lines: a classic family is named as its samples, so
/// a counter's `# HELP`/`# TYPE` name gains `_total` (and an info's `_info`); `unknown`,
/// `info`, `stateset` and `gaugehistogram` are `untyped`; `# UNIT` and `# EOF` are left out
/// (the classic format has neither); and `\"` in help text, an escape only OpenMetrics has, is
/// a plain quote.
fn classic_text(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    // The family's `# HELP` text, written once its `# TYPE` (which follows it) gives the name.
    let mut help: Option<(&str, &str)> = None;
    for line in open_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (suffix, kind) = match kind {
                "counter" => ("_total", "counter"),
                "info" => ("_info", "untyped"),
                "gauge" | "histogram" | "summary" => ("", kind),
                _ => ("", "untyped"),
            };
            if let Some((_, text)) = help.take().filter(|(of, _)| *of == name) {
                out.push_str(&format!("# HELP {name}{suffix} {}\n", classic_help(text)));
            }
            out.push_str(&format!("# TYPE {name}{suffix} {kind}\n"));
        } else if !line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// OpenMetrics help text in the classic format: `\\` and `\n` stay, `\"` is `"`.
fn classic_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Where the HTTP layer reports requests it could not parse (a client's mistake, logged there at
/// ERROR): shown as WARN here, at most `LINES_PER_SECOND` a second.
const CLIENT_MISTAKES: &str = "actix_http::h1";

/// Logs to stderr (coloured only on a terminal) through `filter`: levels by target
/// (`warn,kolink=debug`, checked when the settings load). A `Targets` filter rather than an
/// `EnvFilter`: the latter's span-field filters bring regex-automata's full-DFA builder into the
/// build, and every small regex of the process then built a dense DFA at start (2 MiB of the
/// user-agent parser's regexes alone), for a kind of filter kolink does not use.
/// Expected failures carry no backtrace: `anyhow` captures one only when `RUST_LIB_BACKTRACE`
/// asks for it (panics still follow `RUST_BACKTRACE`).
pub fn init_logs(filter: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: called first thing at start-up, before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    static MISTAKES: LogGate = LogGate::new();
    let client_mistakes = tracing_subscriber::filter::dynamic_filter_fn(|meta, _| {
        !meta.target().starts_with(CLIENT_MISTAKES) || !meta.is_event() || MISTAKES.pass().is_some()
    })
    // Asked again for every event of the HTTP layer (the gate counts them), once for the rest.
    .with_callsite_filter(|meta| {
        if meta.target().starts_with(CLIENT_MISTAKES) {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::always()
        }
    });
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .event_format(Lines(tracing_subscriber::fmt::format()))
        .with_filter(client_mistakes);
    tracing_subscriber::registry()
        .with(
            filter
                .parse::<tracing_subscriber::filter::Targets>()
                .unwrap_or_else(|_| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)),
        )
        .with(fmt)
        .init();
}

/// The default line format, with the HTTP layer's parse errors at WARN.
struct Lines(tracing_subscriber::fmt::format::Format);

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Lines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        if !(meta.target().starts_with(CLIENT_MISTAKES) && *meta.level() < tracing::Level::WARN) {
            return self.0.format_event(ctx, writer, event);
        }
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        write!(writer, "{now}  WARN {}: client request not understood: ", meta.target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Lets a few log lines a second through from one call site and counts the rest.
pub struct LogGate {
    second: AtomicU64,
    passed: AtomicU64,
    skipped: AtomicU64,
}

/// Lines one call site may log per second.
const LINES_PER_SECOND: u64 = 5;

impl LogGate {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self {
            second: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }

    /// `Some(lines skipped since the last one that passed)` when this line may be logged.
    pub fn pass(&self) -> Option<u64> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let second = self.second.load(Ordering::Relaxed);
        if now != second
            && self
                .second
                .compare_exchange(second, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.passed.store(0, Ordering::Relaxed);
        }
        if self.passed.fetch_add(1, Ordering::Relaxed) < LINES_PER_SECOND {
            Some(self.skipped.swap(0, Ordering::Relaxed))
        } else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// `tracing::warn!`, at most `LINES_PER_SECOND` times a second per call site; each line that
/// passes says how many were skipped before it (`skipped`).
macro_rules! warn_limited {
    ($($arg:tt)+) => {{
        static GATE: $crate::telemetry::LogGate = $crate::telemetry::LogGate::new();
        if let Some(skipped) = GATE.pass() {
            ::tracing::warn!(skipped, $($arg)+);
        }
    }};
}
pub(crate) use warn_limited;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_text_names_each_family_as_its_samples() {
        let meters = Meters::default();
        meters.redirect(RedirectOutcome::redirected);
        meters.clicks_written.inc_by(3);
        meters.click_write_seconds.observe(0.002);
        let open = meters.encode();
        assert!(open.ends_with("# EOF\n"), "{open}");
        let classic = meters.encode_classic();
        assert!(!classic.contains("# EOF") && !classic.contains("# UNIT"), "{classic}");
        assert!(classic.contains("# TYPE kolink_redirects_total counter\n"), "{classic}");
        assert!(classic.contains("# HELP kolink_redirects_total "), "{classic}");
        assert!(
            classic.contains("kolink_redirects_total{outcome=\"redirected\"} 1\n"),
            "{classic}"
        );
        assert!(classic.contains("kolink_clicks_written_total 3\n"), "{classic}");
        assert!(
            classic.contains("# TYPE kolink_click_write_seconds histogram\n"),
            "{classic}"
        );
        // Each sample belongs to the family typed last before it (the classic format's rule): a
        // histogram's through `_bucket`, `_sum` and `_count`, any other's by its own name.
        let mut family = None;
        let mut samples = 0;
        for line in classic.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "{line}"
                );
                family = Some((name, kind));
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let (of, kind) = family.unwrap_or_else(|| panic!("{line} before any # TYPE"));
                let ok = match kind {
                    "histogram" => ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name.strip_suffix(s) == Some(of)),
                    _ => name == of,
                };
                assert!(ok, "{line} under # TYPE {of} {kind}");
                samples += 1;
            }
        }
        assert!(samples > 10, "{classic}");
    }

    #[test]
    fn classic_help_text_keeps_its_escapes_but_a_quote() {
        let open = concat!(
            r#"# HELP x Said \"hi\" at C:\\ on two\nlines."#,
            "\n# TYPE x gauge\nx 1\n# EOF\n"
        );
        let classic = concat!(
            r#"# HELP x Said "hi" at C:\\ on two\nlines."#,
            "\n# TYPE x gauge\nx 1\n"
        );
        assert_eq!(classic_text(open), classic);
        assert_eq!(classic_help(r"a\"), r"a\", "a lone backslash at the end stays");
    }

    #[test]
    fn a_log_gate_passes_a_few_lines_a_second_and_counts_the_rest() {
        let gate = LogGate::new();
        let passed = (0..1000).filter(|_| gate.pass().is_some()).count() as u64;
        // The test may straddle a second boundary: then two seconds' worth pass.
        assert!((LINES_PER_SECOND..=2 * LINES_PER_SECOND).contains(&passed), "{passed}");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let skipped = gate.pass().expect("a new second lets a line through");
        assert_eq!(skipped + passed, 1000);
    }
}
