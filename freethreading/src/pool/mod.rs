//! [`WorkerPool`]: Python's `multiprocessing.Pool` / `ThreadPool`, on either backend.
//!
//! Every call splits its items into chunks (Python's chunk-size rule by default), hands the
//! chunks to the backend's engine, and gathers results through a sink: `map` writes straight
//! into the final `Vec`, `imap` buffers chunk by chunk. The threading engine runs chunks on
//! pool threads without serialising anything; the process engine encodes each chunk once in
//! the caller's thread and ships it to a child.

pub(crate) mod chunks;
mod imap;
mod job;
mod process;
mod result;
pub(crate) mod sink;
mod thread;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use imap::{Imap, ImapUnordered};
pub use result::AsyncResult;

use crate::pool::chunks::Chunk;
use crate::pool::job::{LocalChunk, LocalJob, RemoteChunk, RemoteJob};
use crate::pool::sink::{MapState, Sink};
use crate::process::spawn::DEFAULT_START_TIMEOUT;
use crate::process::{child, wire};
use crate::registry::SingleArg;
use crate::{Backend, Error, WorkerFn, codec};

/// The pool initializer: a `#[worker]` function and its encoded arguments, run once in every
/// worker (thread or child) before it takes tasks.
#[derive(Clone, Debug)]
pub(crate) struct Initializer {
    name: &'static str,
    args: Arc<Vec<u8>>,
}

impl Initializer {
    fn new<W: WorkerFn<Output = ()>>(args: W::Args) -> Result<Self, Error> {
        let mut chunk = Vec::new();
        codec::encode_chunk(std::slice::from_ref(&args), &mut chunk)?;
        Ok(Initializer {
            name: W::NAME,
            args: Arc::new(chunk),
        })
    }

    /// Runs it on this thread (threading backend).
    pub(crate) fn run_here(&self) -> Result<(), String> {
        child::run_initializer(self.name, &self.args)
    }

    /// The frame that asks a child to run it.
    pub(crate) fn frame(&self) -> Result<Vec<u8>, Error> {
        wire::init_frame(self.name, &self.args)
    }
}

/// Settings shared by both engines.
#[derive(Clone, Debug)]
pub(crate) struct PoolConfig {
    pub(crate) workers: usize,
    pub(crate) initializer: Option<Initializer>,
    pub(crate) max_tasks_per_child: Option<usize>,
    pub(crate) start_timeout: Duration,
    pub(crate) name_prefix: String,
}

enum Engine {
    Threads(thread::ThreadEngine),
    Processes(process::ProcessEngine),
}

/// Configures a [`WorkerPool`]; made by [`WorkerPool::builder`].
///
/// # Examples
///
/// ```
/// use freethreading::{WorkerPool, worker};
///
/// #[worker]
/// fn warm_up(label: String) { let _ = label; }
///
/// #[worker]
/// fn double(x: u32) -> u32 { 2 * x }
///
/// let pool = WorkerPool::builder()
///     .workers(2)
///     .initializer(warm_up, ("cache".to_owned(),))
///     .max_tasks_per_child(100)
///     .build()?;
/// assert_eq!(pool.map(double, [1, 2, 3])?, vec![2, 4, 6]);
/// # Ok::<(), freethreading::Error>(())
/// ```
#[derive(Debug)]
pub struct WorkerPoolBuilder {
    workers: Option<usize>,
    initializer: Option<Result<Initializer, Error>>,
    max_tasks_per_child: Option<usize>,
    start_timeout: Duration,
    backend: Option<Backend>,
}

impl WorkerPoolBuilder {
    /// The number of workers. Default: [`std::thread::available_parallelism`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = freethreading::WorkerPool::builder().workers(3).build()?;
    /// assert_eq!(pool.workers(), 3);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// A `#[worker]` function returning `()` that every worker runs once, with `args`, before
    /// its first task (again in every replacement worker). If it panics, the pool is broken:
    /// queued and later tasks fail with [`Error::InitializerFailed`]. (Python's pool instead
    /// restarts the failing worker forever.)
    pub fn initializer<W: WorkerFn<Output = ()>>(mut self, init: W, args: W::Args) -> Self {
        let _ = init;
        self.initializer = Some(Initializer::new::<W>(args));
        self
    }

    /// Replace each worker after it has run this many tasks (chunks), as Python's
    /// `maxtasksperchild`: a fresh child process (new pid) or a fresh thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::builder().workers(1).max_tasks_per_child(10).build()?;
    /// assert_eq!(pool.map(square, 0..100u64)?.len(), 100);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn max_tasks_per_child(mut self, tasks: usize) -> Self {
        self.max_tasks_per_child = Some(tasks);
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
    /// let pool = freethreading::WorkerPool::builder()
    ///     .start_timeout(Duration::from_secs(5))
    ///     .build()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Use this backend instead of the one in force ([`crate::get_backend`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Backend, WorkerPool};
    ///
    /// let pool = WorkerPool::builder().backend(Backend::Threading).build()?;
    /// assert_eq!(pool.backend(), Backend::Threading);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for zero workers or a `max_tasks_per_child` of zero;
    /// [`Error::InvalidBackend`] for a bad `FREETHREADING_BACKEND`; a serialisation error for
    /// the initializer's arguments; on the process backend, [`Error::Spawn`],
    /// [`Error::ChildNotInitialized`] or [`Error::Handshake`] when a child cannot start.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Error, WorkerPool};
    ///
    /// assert!(matches!(WorkerPool::builder().workers(0).build(), Err(Error::InvalidArgument(_))));
    /// ```
    pub fn build(self) -> Result<WorkerPool, Error> {
        let backend = match self.backend {
            Some(backend) => backend,
            None => crate::backend::try_get_backend()?,
        };
        child::refuse_stray_child();
        crate::registry::validate()?;
        let workers = match self.workers {
            Some(0) => return Err(Error::InvalidArgument("a pool needs at least one worker")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if self.max_tasks_per_child == Some(0) {
            return Err(Error::InvalidArgument(
                "max_tasks_per_child must be at least 1",
            ));
        }
        static POOLS: AtomicUsize = AtomicUsize::new(0);
        let id = POOLS.fetch_add(1, Ordering::Relaxed) + 1;
        let config = PoolConfig {
            workers,
            initializer: self.initializer.transpose()?,
            max_tasks_per_child: self.max_tasks_per_child,
            start_timeout: self.start_timeout,
            name_prefix: format!("PoolWorker-{id}"),
        };
        let engine = match backend {
            Backend::Threading => Engine::Threads(thread::ThreadEngine::start(config)?),
            Backend::Multiprocessing => Engine::Processes(process::ProcessEngine::start(config)?),
        };
        Ok(WorkerPool {
            engine,
            backend,
            recycler: Arc::default(),
        })
    }
}

/// A pool of workers running `#[worker]` functions: Python's `multiprocessing.Pool` (process
/// backend) or `ThreadPool` (threading backend), with the same behaviour on both.
///
/// Results come back in input order. A task that panics fails only its own item (and the pool
/// keeps serving); on the process backend a child that crashes fails only the task it was
/// running, and a replacement child starts.
///
/// # Examples
///
/// ```
/// use freethreading::{WorkerPool, worker};
///
/// #[worker]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[worker]
/// fn add(a: u64, b: u64) -> u64 { a + b }
///
/// let pool = WorkerPool::new(2)?;
/// assert_eq!(pool.map(square, 0..5u64)?, vec![0, 1, 4, 9, 16]);
/// assert_eq!(pool.starmap(add, [(1, 2), (3, 4)])?, vec![3, 7]);
/// assert_eq!(pool.apply(add, (20, 22))?, 42);
/// let lazily: Vec<u64> = pool.imap(square, 0..3u64).collect::<Result<_, _>>()?;
/// assert_eq!(lazily, vec![0, 1, 4]);
/// # Ok::<(), freethreading::Error>(())
/// ```
///
/// # Dropping
///
/// Dropping the pool is Python's `with Pool() as p:` exit: it [`terminate`](Self::terminate)s.
/// Queued work is discarded (pending [`AsyncResult`]s report [`Error::Terminated`]); child
/// processes are killed and reaped before `drop` returns; pool threads finish the task they
/// are running in the background. Call [`close`](Self::close) and [`join`](Self::join) first
/// to let queued work finish.
pub struct WorkerPool {
    engine: Engine,
    backend: Backend,
    recycler: Arc<chunks::Recycler>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("backend", &self.backend)
            .field("workers", &self.workers())
            .finish_non_exhaustive()
    }
}

/// Python's default chunk size: the items spread over four chunks per worker.
fn default_chunk_size(len: usize, workers: usize) -> usize {
    len.div_ceil(workers * 4).max(1)
}

fn check_chunk_size(chunk_size: usize) -> Result<usize, Error> {
    if chunk_size == 0 {
        return Err(Error::InvalidArgument("chunk_size must be at least 1"));
    }
    Ok(chunk_size)
}

impl WorkerPool {
    /// A pool of `workers` workers on the backend in force.
    ///
    /// # Errors
    ///
    /// As [`WorkerPoolBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// assert_eq!(pool.map(square, [3u64])?, vec![9]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn new(workers: usize) -> Result<Self, Error> {
        Self::builder().workers(workers).build()
    }

    /// A builder for the other settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = freethreading::WorkerPool::builder().workers(2).build()?;
    /// assert_eq!(pool.workers(), 2);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn builder() -> WorkerPoolBuilder {
        WorkerPoolBuilder {
            workers: None,
            initializer: None,
            max_tasks_per_child: None,
            start_timeout: DEFAULT_START_TIMEOUT,
            backend: None,
        }
    }

    /// The number of workers.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = freethreading::WorkerPool::new(3)?;
    /// assert_eq!(pool.workers(), 3);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn workers(&self) -> usize {
        match &self.engine {
            Engine::Threads(e) => e.workers(),
            Engine::Processes(e) => e.workers(),
        }
    }

    /// The backend this pool runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Backend, WorkerPool, with_backend};
    ///
    /// let pool = with_backend(Backend::Threading, || WorkerPool::new(1))?;
    /// assert_eq!(pool.backend(), Backend::Threading);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The process ids of the current children (empty on the threading backend). They change
    /// when a child dies or is recycled by `max_tasks_per_child`.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Backend, WorkerPool};
    ///
    /// let pool = WorkerPool::builder().backend(Backend::Threading).workers(2).build()?;
    /// assert!(pool.pids().is_empty()); // threads have no pids of their own
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn pids(&self) -> Vec<u32> {
        match &self.engine {
            Engine::Threads(_) => Vec::new(),
            Engine::Processes(e) => e.pids(),
        }
    }

    fn check_open(&self) -> Result<(), Error> {
        match &self.engine {
            Engine::Threads(e) => e.check_open(),
            Engine::Processes(e) => e.check_open(),
        }
    }

    /// Sends chunks to the engine; each reports to its sink exactly once, even on failure.
    pub(crate) fn dispatch<W: WorkerFn, S: Sink<W::Output>>(
        &self,
        work: Vec<(usize, Chunk<W::Args>, Arc<S>)>,
    ) -> Result<(), Error> {
        match &self.engine {
            Engine::Threads(engine) => engine.submit(
                work.into_iter()
                    .map(|(no, items, sink)| {
                        Box::new(LocalChunk::<W, S>::new(no, items, sink)) as Box<dyn LocalJob>
                    })
                    .collect(),
            ),
            Engine::Processes(engine) => {
                let mut jobs = Vec::with_capacity(work.len());
                for (no, items, sink) in work {
                    let answer =
                        RemoteChunk::<W::Output, S>::new(no, items.start(), items.len(), sink);
                    match job::encode_task::<W>(&items) {
                        Ok(frame) => jobs.push(RemoteJob {
                            frame,
                            answer: Box::new(answer),
                        }),
                        Err(e) => answer.fail(e),
                    }
                }
                engine.submit(jobs)
            }
        }
    }

    /// Starts a map over argument tuples.
    ///
    /// When the input announces its exact length (a range, a `Vec`, most adapters over them),
    /// chunks are dispatched as they are filled, so the workers start while the input is still
    /// being read. Otherwise the input is collected first, as Python does.
    fn start_map<W: WorkerFn>(
        &self,
        items: impl IntoIterator<Item = W::Args>,
        chunk_size: Option<usize>,
    ) -> Result<Arc<MapState<W::Output>>, Error> {
        self.check_open()?;
        if let Some(size) = chunk_size {
            check_chunk_size(size)?;
        }
        let mut items = items.into_iter();
        let len = match items.size_hint() {
            (lower, Some(upper)) if lower == upper => lower,
            _ => {
                let collected = self.collect(items);
                return self.start_collected_map::<W>(collected, chunk_size);
            }
        };
        let chunk_size = chunk_size.unwrap_or_else(|| default_chunk_size(len, self.workers()));
        let state = Arc::new(MapState::new(len, chunk_size));
        let mut filling = chunks::Filling::new(len, Some(Arc::clone(&self.recycler)));
        let mut number = 0;
        while !filling.is_full() {
            let Ok(chunk) = filling.next_chunk(&mut items, chunk_size) else {
                break;
            };
            self.dispatch::<W, _>(vec![(number, chunk, Arc::clone(&state))])?;
            number += 1;
        }
        // An iterator whose size hint lied: settle the chunks it did not fill, or refuse the
        // extra items it still has.
        let short = !filling.is_full();
        if short || items.next().is_some() {
            state.fail_unfilled(
                number,
                Error::InvalidArgument("the input iterator's size_hint did not match its length"),
            );
        }
        Ok(state)
    }

    /// Starts a map over already-collected argument tuples.
    fn start_collected_map<W: WorkerFn>(
        &self,
        items: Vec<W::Args>,
        chunk_size: Option<usize>,
    ) -> Result<Arc<MapState<W::Output>>, Error> {
        let chunk_size = match chunk_size {
            Some(size) => size,
            None => default_chunk_size(items.len(), self.workers()),
        };
        let state = Arc::new(MapState::new(items.len(), chunk_size));
        let work = chunks::split(items, chunk_size, Some(Arc::clone(&self.recycler)))
            .into_iter()
            .enumerate()
            .map(|(no, chunk)| (no, chunk, Arc::clone(&state)))
            .collect();
        self.dispatch::<W, _>(work)?;
        Ok(state)
    }

    fn finish_map<O: Send + 'static>(state: Arc<MapState<O>>) -> Result<Vec<O>, Error> {
        state.latch().wait(None);
        state.take()
    }

    /// Calls `f` with `args` on a worker and waits for the result: Python's `apply`.
    ///
    /// # Errors
    ///
    /// The task's failure ([`Error::TaskPanicked`], [`Error::WorkerDied`], a serialisation
    /// error), or [`Error::Closed`] after [`close`](Self::close)/[`terminate`](Self::terminate).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(1)?;
    /// assert_eq!(pool.apply(add, (40, 2))?, 42);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn apply<W: WorkerFn>(&self, f: W, args: W::Args) -> Result<W::Output, Error> {
        self.apply_async(f, args)?.get()
    }

    /// Calls `f` with `args` on a worker without waiting: Python's `apply_async`.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] when the pool no longer accepts work; task failures come from the
    /// returned handle.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(1)?;
    /// let pending = pool.apply_async(add, (1, 2))?;
    /// assert_eq!(pending.get()?, 3);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn apply_async<W: WorkerFn>(
        &self,
        f: W,
        args: W::Args,
    ) -> Result<AsyncResult<W::Output>, Error> {
        let _ = f;
        let state = self.start_map::<W>([args], Some(1))?;
        Ok(AsyncResult::new(Arc::new(result::Single(state))))
    }

    /// Applies a one-parameter `f` to every item, in parallel; results in input order.
    ///
    /// The input is collected first and split into chunks of about `len / (4 × workers)`
    /// items, as Python does; [`map_chunked`](Self::map_chunked) sets the size.
    ///
    /// # Errors
    ///
    /// The error of the first failed item (lowest index among the failures seen),
    /// or [`Error::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// assert_eq!(pool.map(square, 0..4u64)?, vec![0, 1, 4, 9]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn map<W, T>(
        &self,
        f: W,
        items: impl IntoIterator<Item = T>,
    ) -> Result<Vec<W::Output>, Error>
    where
        W: WorkerFn,
        W::Args: SingleArg<T>,
    {
        Self::finish_map(self.start_map::<W>(single_args(f, items), None)?)
    }

    /// [`map`](Self::map) with an explicit chunk size (≥ 1).
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map), and [`Error::InvalidArgument`] for a zero chunk size.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// assert_eq!(pool.map_chunked(square, 0..4u64, 2)?, vec![0, 1, 4, 9]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn map_chunked<W, T>(
        &self,
        f: W,
        items: impl IntoIterator<Item = T>,
        chunk_size: usize,
    ) -> Result<Vec<W::Output>, Error>
    where
        W: WorkerFn,
        W::Args: SingleArg<T>,
    {
        Self::finish_map(self.start_map::<W>(single_args(f, items), Some(chunk_size))?)
    }

    /// [`map`](Self::map) without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`]; task failures come from the handle.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// let pending = pool.map_async(square, 0..3u64)?;
    /// assert_eq!(pending.get()?, vec![0, 1, 4]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn map_async<W, T>(
        &self,
        f: W,
        items: impl IntoIterator<Item = T>,
    ) -> Result<AsyncResult<Vec<W::Output>>, Error>
    where
        W: WorkerFn,
        W::Args: SingleArg<T>,
    {
        Ok(AsyncResult::new(
            self.start_map::<W>(single_args(f, items), None)?,
        ))
    }

    /// [`map_async`](Self::map_async) with an explicit chunk size.
    ///
    /// # Errors
    ///
    /// As [`map_async`](Self::map_async), and [`Error::InvalidArgument`] for a zero chunk size.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// assert_eq!(pool.map_async_chunked(square, [2u64, 3], 1)?.get()?, vec![4, 9]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn map_async_chunked<W, T>(
        &self,
        f: W,
        items: impl IntoIterator<Item = T>,
        chunk_size: usize,
    ) -> Result<AsyncResult<Vec<W::Output>>, Error>
    where
        W: WorkerFn,
        W::Args: SingleArg<T>,
    {
        Ok(AsyncResult::new(
            self.start_map::<W>(single_args(f, items), Some(chunk_size))?,
        ))
    }

    /// Applies `f` to every argument tuple: Python's `starmap`.
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// assert_eq!(pool.starmap(add, [(1, 2), (3, 4)])?, vec![3, 7]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn starmap<W: WorkerFn>(
        &self,
        f: W,
        items: impl IntoIterator<Item = W::Args>,
    ) -> Result<Vec<W::Output>, Error> {
        let _ = f;
        Self::finish_map(self.start_map::<W>(items, None)?)
    }

    /// [`starmap`](Self::starmap) with an explicit chunk size.
    ///
    /// # Errors
    ///
    /// As [`map_chunked`](Self::map_chunked).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// assert_eq!(pool.starmap_chunked(add, [(1, 1), (2, 2)], 1)?, vec![2, 4]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn starmap_chunked<W: WorkerFn>(
        &self,
        f: W,
        items: impl IntoIterator<Item = W::Args>,
        chunk_size: usize,
    ) -> Result<Vec<W::Output>, Error> {
        let _ = f;
        Self::finish_map(self.start_map::<W>(items, Some(chunk_size))?)
    }

    /// [`starmap`](Self::starmap) without waiting.
    ///
    /// # Errors
    ///
    /// As [`map_async`](Self::map_async).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// assert_eq!(pool.starmap_async(add, [(5, 5)])?.get()?, vec![10]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn starmap_async<W: WorkerFn>(
        &self,
        f: W,
        items: impl IntoIterator<Item = W::Args>,
    ) -> Result<AsyncResult<Vec<W::Output>>, Error> {
        let _ = f;
        Ok(AsyncResult::new(self.start_map::<W>(items, None)?))
    }

    /// [`starmap_async`](Self::starmap_async) with an explicit chunk size.
    ///
    /// # Errors
    ///
    /// As [`map_async_chunked`](Self::map_async_chunked).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// assert_eq!(pool.starmap_async_chunked(add, [(1, 0)], 1)?.get()?, vec![1]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn starmap_async_chunked<W: WorkerFn>(
        &self,
        f: W,
        items: impl IntoIterator<Item = W::Args>,
        chunk_size: usize,
    ) -> Result<AsyncResult<Vec<W::Output>>, Error> {
        let _ = f;
        Ok(AsyncResult::new(
            self.start_map::<W>(items, Some(chunk_size))?,
        ))
    }

    /// A lazy iterator of results in input order, one `Result` per item (chunk size 1, as
    /// Python's `imap`). Input is pulled only to keep a bounded number of chunks in flight.
    ///
    /// If the pool is closed, the iterator yields [`Error::Closed`] once and ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// // An endless input is fine: only what is consumed (plus a bounded look-ahead) is sent.
    /// let first: Vec<u64> = pool.imap(square, 0u64..).take(3).map(Result::unwrap).collect();
    /// assert_eq!(first, vec![0, 1, 4]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn imap<'pool, W, T>(
        &'pool self,
        f: W,
        items: impl IntoIterator<Item = T> + 'pool,
    ) -> Imap<'pool, W>
    where
        W: WorkerFn,
        W::Args: SingleArg<T>,
        T: 'pool,
    {
        self.imap_chunked(f, items, 1)
    }

    /// [`imap`](Self::imap) sending `chunk_size` items per task (a zero size counts as 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// let squares: Vec<u64> = pool.imap_chunked(square, 0..6u64, 3).collect::<Result<_, _>>()?;
    /// assert_eq!(squares, vec![0, 1, 4, 9, 16, 25]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn imap_chunked<'pool, W, T>(
        &'pool self,
        f: W,
        items: impl IntoIterator<Item = T> + 'pool,
        chunk_size: usize,
    ) -> Imap<'pool, W>
    where
        W: WorkerFn,
        W::Args: SingleArg<T>,
        T: 'pool,
    {
        let _ = f;
        let input = Box::new(items.into_iter().map(SingleArg::from_item));
        Imap::new(self, input, chunk_size.max(1))
    }

    /// Like [`imap`](Self::imap), but yields results as they complete.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// let mut squares: Vec<u64> = pool.imap_unordered(square, 0..4u64).collect::<Result<_, _>>()?;
    /// squares.sort();
    /// assert_eq!(squares, vec![0, 1, 4, 9]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn imap_unordered<'pool, W, T>(
        &'pool self,
        f: W,
        items: impl IntoIterator<Item = T> + 'pool,
    ) -> ImapUnordered<'pool, W>
    where
        W: WorkerFn,
        W::Args: SingleArg<T>,
        T: 'pool,
    {
        self.imap_unordered_chunked(f, items, 1)
    }

    /// [`imap_unordered`](Self::imap_unordered) sending `chunk_size` items per task.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// assert_eq!(pool.imap_unordered_chunked(square, 0..10u64, 4).count(), 10);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn imap_unordered_chunked<'pool, W, T>(
        &'pool self,
        f: W,
        items: impl IntoIterator<Item = T> + 'pool,
        chunk_size: usize,
    ) -> ImapUnordered<'pool, W>
    where
        W: WorkerFn,
        W::Args: SingleArg<T>,
        T: 'pool,
    {
        let _ = f;
        let input = Box::new(items.into_iter().map(SingleArg::from_item));
        ImapUnordered::new(self, input, chunk_size.max(1))
    }

    /// Drops every queued chunk whose sink agrees to it (see `Sink::cancel`), finishing it
    /// with [`Error::Cancelled`]. Chunks already started, or sent to a child, go on.
    pub(crate) fn cancel_queued(&self) {
        match &self.engine {
            Engine::Threads(e) => e.cancel_queued(),
            Engine::Processes(e) => e.cancel_queued(),
        }
    }

    /// Stops accepting work; queued work still runs, then the workers exit. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(2)?;
    /// let pending = pool.map_async(square, 0..10u64)?;
    /// pool.close();
    /// assert!(pool.map(square, [1u64]).is_err()); // closed
    /// assert_eq!(pending.get()?.len(), 10);      // queued work still ran
    /// pool.join()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn close(&self) {
        match &self.engine {
            Engine::Threads(e) => e.close(),
            Engine::Processes(e) => e.close(),
        }
    }

    /// Stops at once: queued work is discarded ([`Error::Terminated`]), child processes are
    /// killed. Threads cannot be killed: a task already running on a pool thread finishes in
    /// the background. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[worker]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// let pool = WorkerPool::new(1)?;
    /// pool.terminate();
    /// pool.join()?;
    /// assert!(pool.apply(square, (2,)).is_err());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn terminate(&self) {
        match &self.engine {
            Engine::Threads(e) => e.terminate(),
            Engine::Processes(e) => e.terminate(),
        }
    }

    /// Waits for the workers to exit (and, on the process backend, reaps the children).
    ///
    /// # Errors
    ///
    /// [`Error::StillRunning`] unless [`close`](Self::close) or
    /// [`terminate`](Self::terminate) was called first, as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Error, WorkerPool};
    ///
    /// let pool = WorkerPool::new(1)?;
    /// assert!(matches!(pool.join(), Err(Error::StillRunning)));
    /// pool.close();
    /// pool.join()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn join(&self) -> Result<(), Error> {
        match &self.engine {
            Engine::Threads(e) => e.join(),
            Engine::Processes(e) => e.join(),
        }
    }
}

impl WorkerPool {
    /// Collects a call's arguments, into the last call's buffer when it fits.
    fn collect<A>(&self, items: impl IntoIterator<Item = A>) -> Vec<A> {
        let items = items.into_iter();
        let mut out = self.recycler.vec_with_capacity(items.size_hint().0);
        out.extend(items);
        out
    }
}

/// The items of a one-parameter worker as argument tuples.
fn single_args<W, T>(f: W, items: impl IntoIterator<Item = T>) -> impl Iterator<Item = W::Args>
where
    W: WorkerFn,
    W::Args: SingleArg<T>,
{
    let _ = f;
    items.into_iter().map(SingleArg::from_item)
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.terminate();
        if let Engine::Processes(e) = &self.engine {
            // Children were killed; reaping them is quick and leaves no zombies behind.
            let _ = e.join();
        }
    }
}
