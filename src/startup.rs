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
use crate::store::embedded::{DiskFaults, EmbeddedStore};
use crate::store::redis::{RedisStore, Target};
use crate::store::{RecordsExt, Store};
use crate::telemetry::Meters;

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

/// The store, and what a start reads of it.
struct Started {
    store: Arc<dyn Store>,
    admin_hash: [u8; 32],
    generated_admin_token: Option<String>,
    secrets: crate::link_book::StartSecrets,
    book: Option<Arc<crate::link_book::LinkBook>>,
    book_copy: Option<AbortOnDrop>,
    /// The count of conversions a stop cut short (`complete_conversions`), when it runs apart.
    completion: Option<AbortOnDrop>,
}

/// A start with the store answering: what it checks, and the secrets it reads (made on a first
/// start), kept in the link book for a start while the store does not answer.
async fn online_start(
    settings: &Settings,
    store: Arc<dyn Store>,
    meters: &Meters,
    clock: &SharedClock,
) -> anyhow::Result<Started> {
    check_retention(store.as_ref(), settings.click_retention_days).await?;
    // Coupons kept under the keys of an older rule move to their new ones (`CouponKey`).
    let moved = store.fold_coupon_keys().await?;
    if moved > 0 {
        tracing::info!(moved, "coupons moved to the keys of the case rule for every alphabet");
    }
    let (admin_hash, generated_admin_token) = admin_token(store.as_ref(), settings).await?;
    let secret = async |name: &str| {
        let candidate = hex::encode(rand::random::<[u8; 32]>());
        anyhow::Ok(store.init_secret(name, &candidate).await?.0)
    };
    let secrets = crate::link_book::StartSecrets {
        admin_token_sha256: hex::encode(admin_hash),
        visitor_key: secret("visitor_key").await?,
        session_key: secret("session_key").await?,
    };
    watch_identity(&store, &secrets.visitor_key);
    let completion = {
        let (store, now) = (store.clone(), clock.now());
        AbortOnDrop(tokio::spawn(async move { complete_conversions(store.as_ref(), now).await }).abort_handle())
    };
    let (book, book_copy) = link_book(settings, store.clone(), meters).await;
    if let Some(b) = book.clone() {
        let kept = secrets.clone();
        match tokio::task::spawn_blocking(move || b.keep_secrets(&kept)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(
                error = %format!("{e:#}"),
                "the link book keeps no secrets: a start while Redis does not answer waits for it"
            ),
            Err(e) => tracing::warn!(error = %e, "the link book keeps no secrets"),
        }
    }
    Ok(Started {
        store,
        admin_hash,
        generated_admin_token,
        secrets,
        book,
        book_copy,
        completion: Some(completion),
    })
}

/// How long a start with a link book waits for Redis to answer before it starts from the book.
const OFFLINE_AFTER: Duration = Duration::from_secs(3);

/// A start while Redis does not answer, from the link book (`link_book::StartSecrets`): on one
/// Redis that does not answer within `OFFLINE_AFTER` (refused, timing out, frozen), with a book
/// that keeps what a start needs. Links redirect from the book; clicks are held in the spool
/// (`Spool::hold`), not written to Redis, until it answers and is found to be the store the
/// book was made for (`finish_offline_start`). `None`: start as usual (a Redis Cluster, the
/// embedded store, no book or secrets kept). Redis answering, the usual start is done here.
async fn offline_start(
    settings: &Settings,
    clock: SharedClock,
    meters: &Meters,
    spool: &Arc<Spool>,
) -> anyhow::Result<Option<Started>> {
    let Some(Target::Single(url)) = settings
        .redis_target()
        .filter(|_| settings.storage() == StorageKind::Redis)
    else {
        return Ok(None);
    };
    let dir = settings.spool_dir();
    let book_meters = crate::link_book::BookMeters::from(meters);
    let opened =
        tokio::task::spawn_blocking(move || crate::link_book::LinkBook::open_offline(&dir, book_meters)).await?;
    let (book, secrets) = match opened {
        Ok(Some(kept)) => kept,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "the link book could not be opened");
            return Ok(None);
        }
    };
    let retention = Duration::from_secs(u64::from(settings.click_retention_days) * 86_400);
    let wait_replicas = settings.redis_wait_replicas as usize;
    let target = Target::Single(url.clone());
    let tried = tokio::time::timeout(
        OFFLINE_AFTER,
        RedisStore::connect(&target, &settings.redis_prefix, retention, wait_replicas, clock.clone()),
    )
    .await;
    match tried {
        Ok(Ok(store)) => {
            // The usual start opens the book again.
            drop(book);
            return online_start(settings, Arc::new(store), meters, &clock).await.map(Some);
        }
        Ok(Err(e)) if !not_answering(&e) => return Err(e),
        Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "Redis does not answer"),
        Err(_) => tracing::warn!(within = ?OFFLINE_AFTER, "Redis does not answer"),
    }
    let admin_hash: [u8; 32] = match &settings.admin_token {
        Some(t) => Sha256::digest(t.as_bytes()).into(),
        None => {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(&secrets.admin_token_sha256, &mut bytes)
                .context("Failed to read the admin token hash the link book keeps")?;
            bytes
        }
    };
    let redis = Arc::new(
        RedisStore::connect_lazily(&url, &settings.redis_prefix, retention, wait_replicas, clock.clone()).await?,
    );
    let store: Arc<dyn Store> = redis.clone();
    let book = Arc::new(book);
    spool.hold(true);
    tracing::warn!(
        links = book.links(),
        "started from the link book while Redis does not answer: its links redirect, and their clicks wait in the spool until Redis answers and is found to be this store"
    );
    let job = tokio::spawn(finish_offline_start(
        redis,
        store.clone(),
        settings.click_retention_days,
        secrets.clone(),
        book.clone(),
        spool.clone(),
        clock.clone(),
    ));
    Ok(Some(Started {
        store,
        admin_hash,
        generated_admin_token: None,
        secrets,
        book: Some(book),
        book_copy: Some(AbortOnDrop(job.abort_handle())),
        completion: None,
    }))
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

/// What a start asks of the store, once it answers after a start from the link book: the
/// scripts and layout, then whether it is the store the book was made for (the keys and id it
/// keeps). Only then are the clicks held in the spool written (`Spool::hold`), and the book
/// kept up to date as usual. A store that is not (flushed, restored from an older backup,
/// another Redis at the address) is said, and the clicks stay in the spool for the operator.
async fn finish_offline_start(
    redis: Arc<RedisStore>,
    store: Arc<dyn Store>,
    retention_days: u32,
    secrets: crate::link_book::StartSecrets,
    book: Arc<crate::link_book::LinkBook>,
    spool: Arc<Spool>,
    clock: SharedClock,
) {
    // Whether Redis is this process's store is asked first, with reads alone: a Redis that is
    // not gets nothing written, not even the layout's version.
    let kept = [
        ("visitor_key", secrets.visitor_key.clone()),
        ("session_key", secrets.session_key.clone()),
        ("link_book_store", book.store_id()),
    ];
    let found = until_answered(|| async {
        let mut found = Vec::new();
        for (name, _) in &kept {
            found.push(store.secret(name).await?);
        }
        anyhow::Ok(found)
    })
    .await;
    let other = kept
        .iter()
        .zip(&found)
        .filter(|((_, kept), found)| found.as_deref() != Some(kept.as_str()))
        .map(|((name, _), found)| (*name, found.is_none()))
        .collect::<Vec<_>>();
    if !other.is_empty() {
        let flushed = other.iter().all(|(_, missing)| *missing);
        tracing::error!(
            keys = ?other.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            clicks = spool.depth().clicks,
            "Redis is not the store this process started from ({}): the clicks taken meanwhile stay in the spool, not written to it; restart this process to start on this Redis (its spool is then written to it)",
            if flushed { "it holds none of its keys: flushed, or a new Redis" } else { "it holds other keys: another Redis, or restored from a backup" }
        );
        return;
    }
    watch_identity(&store, &secrets.visitor_key);
    until_answered(|| redis.finish_start()).await;
    if let Err(e) = check_retention(store.as_ref(), retention_days).await {
        tracing::error!(error = %format!("{e:#}"), "restart this process with a longer click retention");
    }
    if let Err(e) = store.fold_coupon_keys().await {
        tracing::warn!(error = %e, "coupons kept under older keys not moved");
    }
    spool.hold(false);
    tracing::info!(
        clicks = spool.depth().clicks,
        "Redis answers and is this process's store: the start from the link book is complete, and the clicks spooled meanwhile are written"
    );
    complete_conversions(store.as_ref(), clock.now()).await;
    crate::link_book::keep(book, store).await;
}

/// `f`'s answer, asked again until Redis gives one (backing off to every 8 s), saying each time
/// why not: Redis not answering yet, or refusing this process (a password or setting).
async fn until_answered<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut pause = Duration::from_secs(1);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if not_answering(&e) => {
                crate::telemetry::warn_limited!(error = %format!("{e:#}"), "Redis does not answer yet");
            }
            Err(e) => tracing::error!(
                error = %format!("{e:#}"),
                "Redis answers but refuses this process (its password or settings?): links redirect from the link book and clicks wait in the spool; correct the setting and restart"
            ),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(8));
    }
}

async fn open_store(settings: &Settings, clock: SharedClock, faults: DiskFaults) -> anyhow::Result<Arc<dyn Store>> {
    let retention = Duration::from_secs(u64::from(settings.click_retention_days) * 86_400);
    match settings.storage() {
        StorageKind::Redis => {
            let target = settings
                .redis_target()
                .context("neither redis_url nor redis_cluster is set")?;
            let store = connect_waiting(START_WAIT, || {
                RedisStore::connect(
                    &target,
                    &settings.redis_prefix,
                    retention,
                    settings.redis_wait_replicas as usize,
                    clock.clone(),
                )
            })
            .await?;
            Ok(Arc::new(store))
        }
        StorageKind::Embedded => Ok(Arc::new(
            EmbeddedStore::open_with(
                &settings.data_dir,
                retention,
                clock,
                usize::try_from(settings.embedded_cache_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
                faults,
            )
            .await?,
        )),
    }
}

/// How long a start waits for a Redis that does not answer yet.
pub const START_WAIT: Duration = Duration::from_secs(60);

/// `connect()`, tried again while Redis does not answer (not listening yet, timing out), for
/// up to `wait`: kolink and its Redis are often started together (a compose file, a reboot),
/// and kolink would otherwise exit before Redis listens. A wrong URL or password fails at once.
/// A try that takes the rest of `wait` ends there: a Redis that accepts connections and never
/// replies (stopped, overloaded) would make each try last the client's own retries (about 21 s).
pub async fn connect_waiting<F, Fut>(wait: Duration, connect: F) -> anyhow::Result<RedisStore>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<RedisStore>>,
{
    // The runtime's clock for what is said (a test pauses it), the machine's for the wait.
    let started = tokio::time::Instant::now();
    let until = std::time::Instant::now() + wait;
    let mut pause = Duration::from_secs(1);
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        let Ok(tried) = tokio::time::timeout(left.max(Duration::from_secs(1)), connect()).await else {
            // The client's own retries were cut short: the cause may be any of these.
            anyhow::bail!(
                "Redis did not answer within {} s: check that it runs at the address set (it refused the connection, could not be reached, or took it without replying)",
                started.elapsed().as_secs().max(1)
            );
        };
        match tried {
            Ok(store) => return Ok(store),
            Err(e) if not_answering(&e) && std::time::Instant::now() + pause < until => {
                tracing::warn!(error = %format!("{e:#}"), "Redis does not answer yet: trying again in {} s", pause.as_secs());
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(8));
            }
            Err(e) if not_answering(&e) && !wait.is_zero() => {
                return Err(e.context(format!(
                    "Redis did not answer for {} s, tried again until then",
                    started.elapsed().as_secs()
                )))
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a failed connection is Redis not answering (yet), rather than a wrong setting:
/// not listening, timing out, or up but not serving yet (loading its data after a restart, a
/// cluster without a master for a slot).
fn not_answering(e: &anyhow::Error) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    e.chain().any(|c| {
        // A store's error holds Redis's own (the scripts' loading wraps it so).
        if let Some(crate::store::StoreError::Unavailable(inner)) = c.downcast_ref::<crate::store::StoreError>() {
            return not_answering(inner);
        }
        c.downcast_ref::<redis::RedisError>().is_some_and(|r| {
            r.is_io_error()
                || r.is_timeout()
                || r.is_connection_refusal()
                || r.is_connection_dropped()
                || matches!(
                    r.kind(),
                    ErrorKind::Server(
                        ServerErrorKind::BusyLoading
                            | ServerErrorKind::MasterDown
                            | ServerErrorKind::ClusterDown
                            | ServerErrorKind::TryAgain
                    )
                )
        })
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A Redis restarted with its host loads its data before it serves (`LOADING`): a kolink
    /// started with it exited at once, as for a wrong password, rather than waiting for it.
    #[test]
    fn a_redis_loading_its_data_is_waited_for_and_a_wrong_password_is_not() {
        use redis::{ErrorKind, RedisError, ServerErrorKind};
        // As the scripts' loading wraps it: a store's error holding Redis's, with context.
        let failed = |kind: ErrorKind| {
            let redis = anyhow::Error::from(RedisError::from((kind, "from the test")));
            anyhow::Error::from(crate::store::StoreError::Unavailable(
                redis.context("Failed to load a Redis script"),
            ))
            .context("Failed to load the Redis scripts")
        };
        assert!(not_answering(&failed(ErrorKind::Server(ServerErrorKind::BusyLoading))));
        assert!(not_answering(&failed(ErrorKind::Server(ServerErrorKind::ClusterDown))));
        assert!(!not_answering(&failed(ErrorKind::AuthenticationFailed)));
        assert!(!not_answering(&failed(ErrorKind::Server(ServerErrorKind::NoPerm))));
    }

    /// A Redis that takes connections and never replies: each try lasted the client's own
    /// retries (about 21 s), so the start gave up long after its minute. Here a try that never
    /// ends: the wait gives up once its time is over.
    #[tokio::test(start_paused = true)]
    async fn a_redis_that_never_replies_is_given_up_on_when_the_wait_is_over() {
        let tries = std::sync::atomic::AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let waited = tokio::time::timeout(
            Duration::from_secs(600),
            connect_waiting(Duration::from_secs(60), || {
                tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::future::pending()
            }),
        )
        .await
        .expect("a Redis that never replies is given up on");
        let e = waited.err().expect("a try that never ends is no connection");
        assert!(format!("{e:#}").contains("did not answer within 60 s"), "{e:#}");
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 1);
        // The clock is paused: this is the wait's own arithmetic, not the machine's speed.
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }
}
