//! Building the application: settings in, a bound listener and a running server out. Tests
//! build it on port 0 and read `port()`, and may give it a clock of their own.
//!
//! Shutdown is orderly: the server stops taking requests and finishes those in flight, the
//! pruning of old hours (`crate::hours`) stops, the click writer writes what it holds and ends,
//! the spool is replayed into the store (bounded; the rest waits on disk for the next start),
//! the store's background work is stopped, and only then does `run_until_stopped` return (so
//! the store's files are closed when it does).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::cache::LinkCache;
use crate::clicks::{ClickWriter, WriterTasks};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Settings, StorageKind};
use crate::domain::Campaign;
use crate::http::AppState;
use crate::spool::Spool;
use crate::store::embedded::DiskFaults;
use crate::store::{RecordsExt, Store};
use crate::telemetry::Meters;

mod open;

pub use open::{connect_waiting, START_WAIT};
use open::{offline_start, online_start, open_store, Started};

pub struct Application {
    port: u16,
    server: Server,
    store: Arc<dyn Store>,
    writer: WriterTasks,
    /// The job that prunes old hourly counters (`crate::hours`), stopped with the application.
    hours: AbortOnDrop,
    /// The job that keeps clicks for campaigns' windows other processes accepted
    /// (`keep_clicks_for_every_window`).
    windows: AbortOnDrop,
    /// The job that copies the links into the link book (`link_book::keep`; Redis stores).
    book_copy: Option<AbortOnDrop>,
    /// The job that reads the session key again (`session::keep_key_fresh`).
    session_key_refresh: AbortOnDrop,
    /// The count of conversions a stop cut short (`complete_conversions`).
    completion: Option<AbortOnDrop>,
    /// The admin token generated at this start, if one was (it is shown once).
    pub generated_admin_token: Option<String>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        Self::build_with_faults(settings, clock, DiskFaults::default()).await
    }

    /// `build_with_clock`, with the embedded store's disk behind `faults` (tests and drills make
    /// it act full).
    pub async fn build_with_faults(settings: Settings, clock: SharedClock, faults: DiskFaults) -> anyhow::Result<Self> {
        // What can fail for the machine's sake (the port, the spool's disk) first: a first start
        // that fails after its admin token was generated would keep a token it never showed.
        let listener =
            TcpListener::bind(&settings.listen).with_context(|| format!("Failed to bind {}", settings.listen))?;
        let bound = listener.local_addr()?;
        let settings_spool_bytes = settings.spool_max_mb.saturating_mul(1 << 20);
        let spool_dir = settings.spool_dir();
        let spool =
            Arc::new(tokio::task::spawn_blocking(move || Spool::open(&spool_dir, settings_spool_bytes)).await??);
        if let Some(header) = &settings.client_ip_header {
            // Earlier builds took the header's first entry. Behind two proxies (a CDN, then a load
            // balancer) trusted_proxies must say 2, or every visitor is the first proxy: said at
            // start, so that an upgrade that changes whom kolink counts is not silent.
            tracing::info!(
                header = %header,
                trusted_proxies = settings.trusted_proxies,
                "a client's address is entry {} from the end of the header, the one the first trusted proxy wrote",
                settings.trusted_proxies
            );
        }
        let meters = Arc::new(Meters::default());
        // The classifier's regexes compile once, here, not on a follower's first tap.
        tokio::task::spawn_blocking(crate::classify::warm).await?;
        let Started {
            store,
            admin_hash,
            generated_admin_token,
            secrets,
            book,
            book_copy,
            completion,
        } = match offline_start(&settings, clock.clone(), &meters, &spool).await? {
            Some(started) => started,
            None => {
                let store = open_store(&settings, clock.clone(), faults).await?;
                online_start(&settings, store, &meters, &clock).await?
            }
        };
        let visitor_key = crate::classify::VisitorKey::new(secrets.visitor_key.as_bytes());
        let session_key = Arc::new(crate::http::views::session::SessionKey::new(
            secrets.session_key.into_bytes(),
        ));
        let session_key_refresh = AbortOnDrop(
            tokio::spawn(crate::http::views::session::keep_key_fresh(
                store.clone(),
                session_key.clone(),
                spool.clone(),
            ))
            .abort_handle(),
        );
        if spool.holds_clicks() {
            tracing::info!(
                clicks = spool.depth().clicks,
                "clicks an earlier run left in the spool are written to the store as soon as it takes them"
            );
        }
        let (writer, writer_task) = ClickWriter::start(store.clone(), spool.clone(), meters.clone(), clock.clone());
        let windows = AbortOnDrop(tokio::spawn(keep_clicks_for_every_window(store.clone())).abort_handle());
        let hours = AbortOnDrop(
            tokio::spawn(crate::hours::keep(
                store.clone(),
                clock.clone(),
                settings.hourly_retention_days,
                meters.clone(),
                spool.clone(),
            ))
            .abort_handle(),
        );
        let state = web::Data::new(AppState {
            writer,
            spool,
            meters,
            suspicion: crate::suspicion::Suspicion::new(settings.link_cache_capacity.max(100_000)),
            pixel_windows: crate::suspicion::Suspicion::new(settings.link_cache_capacity.max(100_000)),
            proxy_pixel_windows: crate::suspicion::Suspicion::with_limit(10_000, crate::http::PROXY_LOADS_A_MINUTE),
            limits: crate::http::limits::RateLimits::new(settings.rate_limit_per_second, settings.rate_limit_burst),
            sign_in_limits: crate::http::limits::RateLimits::sign_in(settings.rate_limit_per_second),
            token_guesses: crate::http::limits::TokenGuesses::default(),
            webhook_bodies: crate::http::limits::WebhookBodies::default(),
            pixels: tokio::sync::Semaphore::new(crate::http::PIXELS_IN_FLIGHT),
            link_lists: crate::lookup::LinkLists::new(
                match settings.storage() {
                    crate::config::StorageKind::Embedded => crate::lookup::EMBEDDED_LINK_LISTS_HOLD,
                    crate::config::StorageKind::Redis => crate::lookup::LINK_LISTS_HOLD,
                },
                clock.clone(),
            ),
            clock,
            links: LinkCache::new(
                settings.link_cache_capacity,
                Duration::from_secs(settings.link_cache_seconds),
                book,
            ),
            store: store.clone(),
            admin_hash,
            visitor_key,
            session_key,
            public_base: settings.public_base(bound),
            settings: settings.clone(),
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(crate::http::error_format())
                // Outermost: every request's deadline, and its answer counted as it is sent.
                .wrap(crate::http::meter::Meter(state.meters.clone()))
                .configure(crate::http::configure)
        })
        // Request heads within 10 s; a closing client gets 1 s to go.
        .client_request_timeout(crate::http::deadline::BODY_DEADLINE)
        .client_disconnect_timeout(Duration::from_secs(1))
        .listen(listener)?;
        if let Some(n) = settings.workers {
            server = server.workers(n);
        }
        let server = server.shutdown_timeout(10).run();
        Ok(Self {
            port: bound.port(),
            server,
            store,
            writer: writer_task,
            hours,
            windows,
            book_copy,
            session_key_refresh,
            completion,
            generated_admin_token,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, then shuts down in order (see the module doc).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        // The writer ends once the workers' handles to it are gone; it writes what it holds
        // first, then the spool is replayed for a bounded time (what is left waits on disk).
        drop(self.hours);
        drop(self.windows);
        drop(self.book_copy);
        drop(self.session_key_refresh);
        drop(self.completion);
        self.writer.finish().await;
        self.store.close().await;
        served
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Finishes the conversions of the last day whose counting a stop cut short after they were
/// stored (`intake::complete_recent`), the youngest minute left to whoever is counting them.
async fn complete_conversions(store: &dyn Store, now: chrono::DateTime<chrono::Utc>) {
    let (since, until) = (now - crate::intake::COMPLETE_SINCE, now - crate::intake::COMPLETE_GRACE);
    match crate::intake::complete_recent(store, since, until).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            conversions = n,
            "conversions stored but not counted when a process stopped are counted now"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            "the conversions of the last day were not checked for a count a stop cut short"
        ),
    }
}

/// How often a process checks that Redis is still its store (`watch_identity`), and how
/// soon again while it is not known to be.
const IDENTITY_EVERY: Duration = Duration::from_secs(1);
const IDENTITY_RETRY: Duration = Duration::from_millis(100);

/// Holds the store to the visitor key this process started with, and checks every
/// `IDENTITY_EVERY`, and at once when a connection to it dropped, that Redis still keeps it
/// (`Store::confirm_identity`): a Redis that came back flushed or without its data, under a
/// running process, took the clicks spooled during the gap, and its empty link list turned
/// every link into a 404. It is now unavailable to the process until its data is back (or the
/// process is restarted on it). The replay of the spool checks before each chunk too. The
/// embedded store, held by this process alone, is not watched.
fn watch_identity(store: &Arc<dyn Store>, visitor_key: &str) {
    store.hold_to_identity(visitor_key);
    if store.backend() != "redis" {
        return;
    }
    let store = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut wait = IDENTITY_EVERY;
        loop {
            let Some(store) = store.upgrade() else { return };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = store.identity_in_doubt() => {}
            }
            // Its outcome is the store's to keep (`confirm_identity`), and said there; while the
            // store is not confirmed, it is asked again soon.
            wait = match store.confirm_identity().await {
                Ok(()) => IDENTITY_EVERY,
                Err(_) => IDENTITY_RETRY,
            };
        }
    });
}

/// Clicks are trimmed past the retention by every process of a store, whatever the others
/// were started with: a process whose retention is shorter than a campaign's attribution window
/// would trim clicks that campaign's purchases still need, so it does not start.
async fn check_retention(store: &dyn Store, retention_days: u32) -> anyhow::Result<()> {
    match longest_window(store).await? {
        Some((id, days)) if days > retention_days => anyhow::bail!(
            "click_retention_days ({retention_days}) is shorter than the attribution window of \
             campaign '{id}' ({days} days): its clicks would be trimmed (for every process of this \
             store) before its purchases could find them. Set KOLINK_CLICK_RETENTION_DAYS to at \
             least {days}."
        ),
        _ => Ok(()),
    }
}

/// The stored campaign with the longest attribution window, and that window in days.
async fn longest_window(store: &dyn Store) -> anyhow::Result<Option<(String, u32)>> {
    let mut longest: Option<(String, u32)> = None;
    let mut after = None;
    loop {
        let page = store.list::<Campaign>(after, 200).await?;
        for c in page.items {
            if longest
                .as_ref()
                .is_none_or(|(_, days)| c.attribution_window_days > *days)
            {
                longest = Some((c.id.to_string(), c.attribution_window_days));
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(longest),
        }
    }
}

/// How often a process looks for campaigns that other processes of its store accepted with a
/// window longer than its click retention (`Store::keep_clicks_for_at_least`).
const WINDOWS_CHECKED_EVERY: Duration = Duration::from_secs(60);

/// Keeps the store's clicks for the longest window of its campaigns, as they are accepted by
/// any process: one started with a shorter retention than another's would otherwise trim, for
/// every process, the clicks a newer campaign's purchases need.
async fn keep_clicks_for_every_window(store: Arc<dyn Store>) {
    loop {
        tokio::time::sleep(WINDOWS_CHECKED_EVERY).await;
        match longest_window(store.as_ref()).await {
            Ok(Some((_, days))) => store.keep_clicks_for_at_least(days),
            Ok(None) => {}
            Err(e) => crate::telemetry::warn_limited!(error = %e, "campaigns' windows not read"),
        }
    }
}

/// The link book of a Redis store (`crate::link_book`), in the spool's directory, and the job
/// that keeps it a copy of the links. Without it (the embedded store, whose links are on this
/// disk already; a book that cannot be opened, which is said) kolink runs as before.
async fn link_book(
    settings: &Settings,
    store: Arc<dyn Store>,
    meters: &Meters,
) -> (Option<Arc<crate::link_book::LinkBook>>, Option<AbortOnDrop>) {
    if settings.storage() != StorageKind::Redis {
        return (None, None);
    }
    // Which store the book copies: one that is flushed, restored or another gets a new id.
    let candidate = hex::encode(rand::random::<[u8; 16]>());
    let id = match store.init_secret("link_book_store", &candidate).await {
        Ok((id, _)) => id,
        Err(e) => {
            tracing::warn!(error = %e, "no link book: the store's id was not read");
            return (None, None);
        }
    };
    let dir = settings.spool_dir();
    let meters = crate::link_book::BookMeters::from(meters);
    let opened = tokio::task::spawn_blocking(move || crate::link_book::LinkBook::open(&dir, &id, meters)).await;
    match opened {
        Ok(Ok(book)) => {
            let book = Arc::new(book);
            let job = tokio::spawn(crate::link_book::keep(book.clone(), store));
            (Some(book), Some(AbortOnDrop(job.abort_handle())))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %format!("{e:#}"), "no link book: while Redis does not answer, links this process has not followed answer 503");
            (None, None)
        }
        Err(e) => {
            tracing::warn!(error = %e, "no link book");
            (None, None)
        }
    }
}

/// The SHA-256 of the admin token in force, and the token itself when it was generated now.
async fn admin_token(store: &dyn Store, settings: &Settings) -> anyhow::Result<([u8; 32], Option<String>)> {
    if let Some(t) = &settings.admin_token {
        return Ok((Sha256::digest(t.as_bytes()).into(), None));
    }
    let token = format!("kl_{}", B64URL.encode(rand::random::<[u8; 32]>()));
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let (stored, created) = store.init_secret("admin_token_sha256", &hex::encode(hash)).await?;
    if created {
        return Ok((hash, Some(token)));
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(&stored, &mut bytes).context("Failed to read the stored admin token hash")?;
    Ok((bytes, None))
}
