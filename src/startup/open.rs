//! Opening the store at a start: online, with the store answering; or, while Redis does not
//! answer, from the link book (redirects served, clicks spooled) until it does
//! (`offline_start`); and connecting to Redis with a wait (`connect_waiting`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::{admin_token, check_retention, complete_conversions, link_book, watch_identity, AbortOnDrop};
use crate::clock::SharedClock;
use crate::config::{Settings, StorageKind};
use crate::spool::Spool;
use crate::store::embedded::{DiskFaults, EmbeddedStore};
use crate::store::redis::{RedisStore, Target};
use crate::store::Store;
use crate::telemetry::Meters;

/// The store, and what a start reads of it.
pub(super) struct Started {
    pub(super) store: Arc<dyn Store>,
    pub(super) admin_hash: [u8; 32],
    pub(super) generated_admin_token: Option<String>,
    pub(super) secrets: crate::link_book::StartSecrets,
    pub(super) book: Option<Arc<crate::link_book::LinkBook>>,
    pub(super) book_copy: Option<AbortOnDrop>,
    /// The count of conversions a stop cut short (`complete_conversions`), when it runs apart.
    pub(super) completion: Option<AbortOnDrop>,
}

/// A start with the store answering: what it checks, and the secrets it reads (made on a first
/// start), kept in the link book for a start while the store does not answer.
pub(super) async fn online_start(
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
pub(super) async fn offline_start(
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

pub(super) async fn open_store(
    settings: &Settings,
    clock: SharedClock,
    faults: DiskFaults,
) -> anyhow::Result<Arc<dyn Store>> {
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
pub(super) fn not_answering(e: &anyhow::Error) -> bool {
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
