//! The embedded store's own threads. redb calls block, so they never run on an actix worker;
//! they run here, on a few threads that live as long as the store, rather than on tokio's
//! blocking pool. That pool starts a thread for each concurrent call (36 at once while a
//! benchmark tapped 11,000 links) and lets each go after 10 s idle; every one of them left its
//! own partly used allocator pages behind, holding the store's resident memory well above what
//! it used. The calls waiting here are bounded by the store's tickets (`disk::MAX_IN_FLIGHT`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;
/// Work a job leaves for its thread after its result was handed back (`Pool::run_then`).
pub(super) type Then = Box<dyn FnOnce() + Send>;

/// Threads that run jobs in the order given, as many at once as there are threads.
pub(super) struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

/// The job did not finish: it panicked (the panic is logged), or the pool is gone.
#[derive(Debug)]
pub(super) struct Lost;

impl Pool {
    /// `threads` threads, named `kolink-store-<name>-<i>`.
    pub(super) fn new(name: &str, threads: usize) -> std::io::Result<Pool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("kolink-store-{name}-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job, not while it runs.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        // The pool was dropped: no more jobs.
                        Err(_) => return,
                    }
                })?;
        }
        Ok(Pool { jobs: Mutex::new(tx) })
    }

    /// Runs `f` on one of the pool's threads and waits (asynchronously) for its result.
    pub(super) async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Lost> {
        self.run_then(move || (f(), None)).await
    }

    /// `run`, where `f` may leave work to do on the same thread once its result is handed
    /// back (the caller does not wait for it; the thread's next job does).
    pub(super) async fn run_then<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> (T, Option<Then>) + Send + 'static,
    ) -> Result<T, Lost> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || match catch_unwind(AssertUnwindSafe(f)) {
            Ok((out, then)) => {
                let _ = done.send(out);
                if let Some(then) = then {
                    if catch_unwind(AssertUnwindSafe(then)).is_err() {
                        tracing::error!("an embedded store call panicked");
                    }
                }
            }
            Err(_) => tracing::error!("an embedded store call panicked"),
        });
        self.jobs.lock().map_err(|_| Lost)?.send(job).map_err(|_| Lost)?;
        result.await.map_err(|_| Lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_pools_threads_and_a_panic_loses_only_its_own_job() {
        let pool = Pool::new("test", 2).unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.is_some_and(|n| n.starts_with("kolink-store-")));
        assert!(pool.run(|| -> u32 { panic!("boom") }).await.is_err());
        assert!(pool.run(|| -> u32 { panic!("boom") }).await.is_err());
        // Both threads are still there.
        let (a, b) = tokio::join!(
            pool.run(|| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                1
            }),
            pool.run(|| 2)
        );
        assert_eq!((a.unwrap(), b.unwrap()), (1, 2));
    }
}
