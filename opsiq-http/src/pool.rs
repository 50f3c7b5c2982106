//! A fixed set of threads that run the core's blocking calls.
//!
//! tokio's blocking pool grows under load to hundreds of threads (a thread finishing one task
//! is not yet counted idle when the next task comes), and every thread keeps its allocator's
//! memory. A pool of a fixed size bounds both; requests past it wait in the queue, holding no
//! thread. The most recently idle thread takes the next job, so a light load runs on few,
//! warm threads.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

type Job = Box<dyn FnOnce() + Send>;

/// The pool's threads stop once the last handle to it drops.
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// One per thread: a thread waits on its own, so a job wakes exactly the one it is for.
    wake: Vec<Condvar>,
}

struct State {
    queue: std::collections::VecDeque<Job>,
    /// Threads waiting for a job, the most recently idle last.
    idle: Vec<usize>,
    /// Jobs handed to a thread (by index) that it has not yet taken.
    handed: Vec<Option<Job>>,
    closed: bool,
}

/// The job's thread panicked (the panic is logged there); the caller answers with a 500.
#[derive(Debug)]
pub(crate) struct Panicked;

/// Runs `f` on the calling thread, as the pool's threads run their jobs: a panic is caught
/// and logged.
pub(crate) fn run_here<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        tracing::error!("a request handler panicked");
        Panicked
    })
}

impl Pool {
    pub(crate) fn new(name: &str, threads: usize) -> std::io::Result<Pool> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: Default::default(),
                idle: Vec::with_capacity(threads),
                handed: (0..threads).map(|_| None).collect(),
                closed: false,
            }),
            wake: (0..threads).map(|_| Condvar::new()).collect(),
        });
        // Made before the threads: if one cannot start, dropping the pool stops the others.
        let pool = Pool { shared };
        for i in 0..threads {
            let shared = pool.shared.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || shared.work(i))?;
        }
        Ok(pool)
    }

    /// Queues `f` at once to run on one of the pool's threads; the future gives its result.
    pub(crate) fn run<T, F>(&self, f: F) -> impl Future<Output = Result<T, Panicked>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.shared.submit(Box::new(move || {
            let _ = tx.send(f());
        }));
        async move { rx.await.map_err(|_| Panicked) }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        for &i in &state.idle {
            self.shared.wake[i].notify_one();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn submit(&self, job: Job) {
        let mut state = self.lock();
        match state.idle.pop() {
            Some(i) => {
                state.handed[i] = Some(job);
                drop(state);
                self.wake[i].notify_one();
            }
            None => state.queue.push_back(job),
        }
    }

    fn work(&self, i: usize) {
        let mut state = self.lock();
        loop {
            let job = match state.handed[i].take().or_else(|| state.queue.pop_front()) {
                Some(job) => job,
                None if state.closed => return,
                None => {
                    state.idle.push(i);
                    while state.handed[i].is_none() && !state.closed {
                        state = self.wake[i]
                            .wait(state)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                    continue;
                }
            };
            drop(state);
            // A panic drops the job's result sender, which the caller reports; the thread
            // carries on with the next job.
            let _ = run_here(job);
            state = self.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_its_own_threads_and_survives_a_panic() {
        let pool = Pool::new("test-pool", 2).unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_string))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("test-pool-"));
        assert!(pool.run(|| panic!("boom")).await.is_err());
        // More jobs than threads at once: each waits in the queue and runs once.
        let pending: Vec<_> = (0..64u64)
            .map(|n| {
                pool.run(move || {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    n * 2
                })
            })
            .collect();
        let mut sums = Vec::new();
        for job in pending {
            sums.push(job.await.unwrap());
        }
        assert_eq!(sums, (0..64u64).map(|n| n * 2).collect::<Vec<_>>());
    }
}
