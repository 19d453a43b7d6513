//! [`WorkerPoolExecutor`]: Python's `concurrent.futures` executor, on either backend, built on
//! the [`WorkerPool`] machinery.
//!
//! Each `submit` is a one-item chunk sent through the pool with a [`Future`]'s completion
//! cell as its sink; each `map` chunk gets a cell of its own. The pool asks the cell to
//! *claim* the task just before it starts (a pool thread picked it up, or it is about to be
//! sent to a child), which is what makes cancelling race-free: a task cancelled while pending
//! is dropped from the queue unrun.
//!
//! # Faults
//!
//! A task that panics fails only its future. On the process backend a child that dies fails
//! only the future it was running ([`Error::WorkerDied`], with the pid and signal); its other
//! queued tasks go to another child, a replacement child starts, and the executor keeps
//! serving. That is a deliberate improvement on Python, whose `ProcessPoolExecutor` marks
//! itself broken (`BrokenProcessPool`) and fails every pending future when one worker dies.
//! An initializer that fails does break the executor: pending futures and later submits fail
//! with [`Error::BrokenExecutor`], which says why.

mod future;
mod map;
mod wait;

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub use future::Future;
pub use map::ExecutorMap;
pub use wait::{AsCompleted, DoneAndNotDone, ReturnWhen, as_completed, wait};

use crate::executor::future::Core;
use crate::executor::map::ChunkCore;
use crate::pool::chunks;
use crate::registry::SingleArg;
use crate::{Backend, Error, WorkerFn, WorkerPool, WorkerPoolBuilder};

/// Configures a [`WorkerPoolExecutor`]; made by [`WorkerPoolExecutor::builder`].
///
/// # Examples
///
/// ```
/// use freethreading::{WorkerPoolExecutor, worker};
///
/// #[worker]
/// fn connect(url: String) { let _ = url; }
///
/// #[worker]
/// fn double(x: u32) -> u32 { 2 * x }
///
/// let executor = WorkerPoolExecutor::builder()
///     .max_workers(2)
///     .initializer(connect, ("db://local".to_owned(),))
///     .build()?;
/// assert_eq!(executor.submit(double, (21,))?.result()?, 42);
/// # Ok::<(), freethreading::Error>(())
/// ```
#[derive(Debug)]
pub struct WorkerPoolExecutorBuilder {
    pool: WorkerPoolBuilder,
    max_workers: Option<usize>,
}

impl WorkerPoolExecutorBuilder {
    /// The number of workers. Default: [`std::thread::available_parallelism`] on both
    /// backends. (Python's default is `min(32, cpu + 4)` for threads, which pays off for
    /// threads that mostly wait on I/O; here every worker runs CPU-bound `#[worker]` code in
    /// true parallel, so more workers than CPUs only adds switching.)
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = freethreading::WorkerPoolExecutor::builder().max_workers(3).build()?;
    /// assert_eq!(executor.max_workers(), 3);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn max_workers(mut self, workers: usize) -> Self {
        self.max_workers = Some(workers);
        self
    }

    /// A `#[worker]` function returning `()` that every worker runs once, with `args`, before
    /// its first task (again in every replacement worker). If it panics, the executor is
    /// broken: pending futures and later submits fail with [`Error::BrokenExecutor`].
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn setup(level: u8) { let _ = level; }
    ///
    /// let executor = WorkerPoolExecutor::builder().initializer(setup, (3,)).build()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn initializer<W: WorkerFn<Output = ()>>(mut self, init: W, args: W::Args) -> Self {
        self.pool = self.pool.initializer(init, args);
        self
    }

    /// How long a new child process may take to start and answer (process backend).
    /// Default 30 s.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let executor = freethreading::WorkerPoolExecutor::builder()
    ///     .start_timeout(Duration::from_secs(5))
    ///     .build()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.pool = self.pool.start_timeout(timeout);
        self
    }

    /// Use this backend instead of the one in force ([`crate::get_backend`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Backend, WorkerPoolExecutor};
    ///
    /// let executor = WorkerPoolExecutor::builder().backend(Backend::Threading).build()?;
    /// assert_eq!(executor.backend(), Backend::Threading);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn backend(mut self, backend: Backend) -> Self {
        self.pool = self.pool.backend(backend);
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for zero workers (Python's `ValueError`);
    /// [`Error::InvalidBackend`] for a bad `FREETHREADING_BACKEND`; a serialisation error for
    /// the initializer's arguments; on the process backend, [`Error::Spawn`],
    /// [`Error::ChildNotInitialized`] or [`Error::Handshake`] when a child cannot start.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Error, WorkerPoolExecutor};
    ///
    /// let zero = WorkerPoolExecutor::builder().max_workers(0).build();
    /// assert!(matches!(zero, Err(Error::InvalidArgument(_))));
    /// ```
    pub fn build(self) -> Result<WorkerPoolExecutor, Error> {
        let mut pool = self.pool;
        match self.max_workers {
            Some(0) => {
                return Err(Error::InvalidArgument("max_workers must be greater than 0"));
            }
            Some(n) => pool = pool.workers(n),
            None => {}
        }
        Ok(WorkerPoolExecutor {
            pool: pool.build()?,
            shut_down: RwLock::new(false),
        })
    }
}

/// Runs `#[worker]` functions on a pool of threads or child processes and hands back
/// [`Future`]s: Python's `concurrent.futures` `ThreadPoolExecutor` / `ProcessPoolExecutor`,
/// with the same behaviour on both backends.
///
/// A task that panics fails only its future. On the process backend, a child process that
/// dies fails only the future it was running, with the pid and signal
/// ([`Error::WorkerDied`]); a replacement child starts and the executor keeps serving (Python
/// breaks the whole executor instead). An initializer that fails breaks the executor
/// ([`Error::BrokenExecutor`]).
///
/// # Examples
///
/// ```
/// use freethreading::{WorkerPoolExecutor, worker};
///
/// #[worker]
/// fn greet(name: String) -> String { format!("Hello, {name}!") }
///
/// #[worker]
/// fn square(x: u64) -> u64 { x * x }
///
/// let executor = WorkerPoolExecutor::new(4)?;
/// let future = executor.submit(greet, ("World".to_owned(),))?;
/// assert_eq!(future.result()?, "Hello, World!");
/// let squares: Vec<u64> = executor.map(square, 0..10u64)?.collect::<Result<_, _>>()?;
/// assert_eq!(squares, vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
/// executor.shutdown(true, false);
/// # Ok::<(), freethreading::Error>(())
/// ```
///
/// # Dropping
///
/// Dropping the executor is Python's `with` exit: [`shutdown(true,
/// false)`](Self::shutdown), so it waits for every submitted task. Do not drop it, or shut
/// it down with `wait`, from inside one of its own tasks or done callbacks.
pub struct WorkerPoolExecutor {
    pool: WorkerPool,
    /// Whether `shutdown` was called. Submits hold the read side while they queue work, so a
    /// `shutdown` that cancels queued work sees every task submitted before it.
    shut_down: RwLock<bool>,
}

impl std::fmt::Debug for WorkerPoolExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPoolExecutor")
            .field("backend", &self.pool.backend())
            .field("max_workers", &self.pool.workers())
            .field("shut_down", &self.is_shut_down())
            .finish_non_exhaustive()
    }
}

/// A refused submit: `Closed` stays, anything else means the pool is broken.
fn submit_error(error: Error) -> Error {
    match error {
        Error::Closed | Error::BrokenExecutor { .. } => error,
        other => Error::BrokenExecutor {
            cause: Arc::new(other),
        },
    }
}

impl WorkerPoolExecutor {
    /// An executor with `max_workers` workers on the backend in force.
    ///
    /// # Errors
    ///
    /// As [`WorkerPoolExecutorBuilder::build`]; zero workers is [`Error::InvalidArgument`].
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Error, WorkerPoolExecutor};
    ///
    /// let executor = WorkerPoolExecutor::new(2)?;
    /// assert_eq!(executor.max_workers(), 2);
    /// assert!(matches!(WorkerPoolExecutor::new(0), Err(Error::InvalidArgument(_))));
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = freethreading::WorkerPoolExecutor::new(2)?;
    /// assert_eq!(executor.max_workers(), 2);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn new(max_workers: usize) -> Result<Self, Error> {
        Self::builder().max_workers(max_workers).build()
    }

    /// A builder for the other settings (default size, initializer, backend).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::WorkerPoolExecutor;
    ///
    /// let executor = WorkerPoolExecutor::builder().build()?; // one worker per CPU
    /// assert!(executor.max_workers() >= 1);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = freethreading::WorkerPoolExecutor::builder().build()?;
    /// assert!(executor.max_workers() >= 1);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn builder() -> WorkerPoolExecutorBuilder {
        WorkerPoolExecutorBuilder {
            pool: WorkerPool::builder(),
            max_workers: None,
        }
    }

    /// The number of workers.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(freethreading::WorkerPoolExecutor::new(4)?.max_workers(), 4);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn max_workers(&self) -> usize {
        self.pool.workers()
    }

    /// The backend this executor runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPoolExecutor, get_backend};
    ///
    /// assert_eq!(WorkerPoolExecutor::new(1)?.backend(), get_backend());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// The process ids of the current worker processes (empty on the threading backend).
    /// They change when a child dies and is replaced.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Backend, WorkerPoolExecutor};
    ///
    /// let executor = WorkerPoolExecutor::builder().backend(Backend::Threading).build()?;
    /// assert!(executor.pids().is_empty());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn pids(&self) -> Vec<u32> {
        self.pool.pids()
    }

    fn is_shut_down(&self) -> bool {
        *self.shut_down.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Schedules `f(args)` and returns its [`Future`] at once.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`shutdown`](Self::shutdown) (Python's "cannot schedule new
    /// futures after shutdown"); [`Error::BrokenExecutor`] once the initializer failed. The
    /// task's own failure comes from the future.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn add(a: i64, b: i64) -> i64 { a + b }
    ///
    /// let executor = WorkerPoolExecutor::new(2)?;
    /// let future = executor.submit(add, (40, 2))?;
    /// assert_eq!(future.result()?, 42);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn submit<W: WorkerFn>(&self, f: W, args: W::Args) -> Result<Future<W::Output>, Error> {
        let _ = f;
        let core = Arc::new(Core::new());
        let chunk = chunks::split(vec![args], 1, None)
            .pop()
            .expect("one item makes one chunk");
        let open = self.shut_down.read().unwrap_or_else(|e| e.into_inner());
        if *open {
            return Err(Error::Closed);
        }
        self.pool
            .dispatch::<W, Core<W::Output>>(vec![(0, chunk, Arc::clone(&core))])
            .map_err(submit_error)?;
        drop(open);
        Ok(Future { core })
    }

    /// Applies a one-parameter `f` to every item, submitting every item at once (as Python
    /// does); the results come lazily, in input order, one `Result` per item.
    ///
    /// Each item is its own task (Python's default `chunksize=1`);
    /// [`map_chunked`](Self::map_chunked) groups them. A failed item yields its error when
    /// iteration reaches it; [`ExecutorMap::timeout`] bounds the wait.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let executor = WorkerPoolExecutor::new(4)?;
    /// let mut squares = executor.map(square, 0..10u64)?;
    /// assert_eq!(squares.next().transpose()?, Some(0));
    /// assert_eq!(squares.map(Result::unwrap).last(), Some(81));
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn map<W, T>(
        &self,
        f: W,
        items: impl IntoIterator<Item = T>,
    ) -> Result<ExecutorMap<W::Output>, Error>
    where
        W: WorkerFn,
        W::Args: SingleArg<T>,
    {
        self.map_chunked(f, items, 1)
    }

    /// [`map`](Self::map) sending `chunk_size` items per task (Python's `chunksize`): fewer,
    /// larger messages for many small items. Results still come one per item.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit), and [`Error::InvalidArgument`] for a zero chunk size.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let executor = WorkerPoolExecutor::new(2)?;
    /// let total: u64 = executor.map_chunked(square, 0..1000u64, 100)?.map(Result::unwrap).sum();
    /// assert_eq!(total, (0..1000u64).map(|x| x * x).sum());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn map_chunked<W, T>(
        &self,
        f: W,
        items: impl IntoIterator<Item = T>,
        chunk_size: usize,
    ) -> Result<ExecutorMap<W::Output>, Error>
    where
        W: WorkerFn,
        W::Args: SingleArg<T>,
    {
        let _ = f;
        let started = Instant::now();
        if chunk_size == 0 {
            return Err(Error::InvalidArgument("chunk_size must be at least 1"));
        }
        let items: Vec<W::Args> = items.into_iter().map(SingleArg::from_item).collect();
        let mut cells = VecDeque::with_capacity(items.len().div_ceil(chunk_size));
        let work: Vec<_> = chunks::split(items, chunk_size, None)
            .into_iter()
            .enumerate()
            .map(|(no, chunk)| {
                let cell = Arc::new(ChunkCore::new());
                cells.push_back((Arc::clone(&cell), chunk.len()));
                (no, chunk, cell)
            })
            .collect();
        let open = self.shut_down.read().unwrap_or_else(|e| e.into_inner());
        if *open {
            return Err(Error::Closed);
        }
        self.pool
            .dispatch::<W, ChunkCore<W::Output>>(work)
            .map_err(submit_error)?;
        drop(open);
        Ok(ExecutorMap::new(cells, started))
    }

    /// Stops accepting work: later submits fail with [`Error::Closed`]. With
    /// `cancel_futures`, every task that has not started is cancelled (its future is done
    /// with [`Error::Cancelled`]). With `wait`, blocks until every remaining task finished
    /// and the workers exited. Idempotent: later calls only add the waiting or cancelling
    /// they ask for.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Error, WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let executor = WorkerPoolExecutor::new(2)?;
    /// let future = executor.submit(square, (3,))?;
    /// executor.shutdown(true, false);
    /// assert_eq!(future.result()?, 9); // submitted before the shutdown: it ran
    /// assert!(matches!(executor.submit(square, (4,)), Err(Error::Closed)));
    /// executor.shutdown(true, false); // a no-op
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        // Once the flag is set under the write lock, every accepted submit has queued its
        // work, so cancelling below sees all of it. Cancelling runs done callbacks, which may
        // call back into the executor: no lock is held then.
        *self.shut_down.write().unwrap_or_else(|e| e.into_inner()) = true;
        if cancel_futures {
            self.pool.cancel_queued();
        }
        self.pool.close();
        if wait {
            // Cannot fail: the pool is closed.
            let _ = self.pool.join();
        }
    }
}

impl Drop for WorkerPoolExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}
