//! Handles to results that are still being computed: [`AsyncResult`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Error;
use crate::pool::sink::{Latch, MapState};

/// What an [`AsyncResult`] reads from.
pub(crate) trait ResultSource<R>: Send + Sync {
    fn latch(&self) -> &Latch;
    fn take(&self) -> Result<R, Error>;
    fn succeeded(&self) -> Option<bool>;
}

impl<O: Send + 'static> ResultSource<Vec<O>> for MapState<O> {
    fn latch(&self) -> &Latch {
        MapState::latch(self)
    }
    fn take(&self) -> Result<Vec<O>, Error> {
        MapState::take(self)
    }
    fn succeeded(&self) -> Option<bool> {
        MapState::succeeded(self)
    }
}

/// The one result of an `apply`.
pub(crate) struct Single<O>(pub(crate) Arc<MapState<O>>);

impl<O: Send + 'static> ResultSource<O> for Single<O> {
    fn latch(&self) -> &Latch {
        self.0.latch()
    }
    fn take(&self) -> Result<O, Error> {
        let mut all = self.0.take()?;
        debug_assert_eq!(all.len(), 1);
        all.pop().ok_or(Error::ResultTaken)
    }
    fn succeeded(&self) -> Option<bool> {
        self.0.succeeded()
    }
}

/// The pending result of [`apply_async`](crate::WorkerPool::apply_async),
/// [`map_async`](crate::WorkerPool::map_async) or
/// [`starmap_async`](crate::WorkerPool::starmap_async): Python's `AsyncResult`.
///
/// The work keeps running whether or not the handle is kept. Dropping the pool before the
/// result is ready terminates the pool, and the result becomes [`Error::Terminated`].
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
/// let pending = pool.map_async(square, 0..4u64)?;
/// pending.wait();
/// assert!(pending.ready());
/// assert_eq!(pending.successful(), Some(true));
/// assert_eq!(pending.get()?, vec![0, 1, 4, 9]);
/// # Ok::<(), freethreading::Error>(())
/// ```
pub struct AsyncResult<R> {
    source: Arc<dyn ResultSource<R>>,
}

impl<R> std::fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish_non_exhaustive()
    }
}

impl<R> AsyncResult<R> {
    pub(crate) fn new(source: Arc<dyn ResultSource<R>>) -> Self {
        AsyncResult { source }
    }

    /// Waits for the result and returns it, or the first error among its items.
    ///
    /// # Errors
    ///
    /// The task's failure ([`Error::TaskPanicked`], [`Error::WorkerDied`], ...), or
    /// [`Error::ResultTaken`] after a successful [`get_timeout`](Self::get_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let pool = WorkerPool::new(1)?;
    /// assert_eq!(pool.map_async(square, [4u64])?.get()?, vec![16]);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn get(self) -> Result<R, Error> {
        self.source.latch().wait(None);
        self.source.take()
    }

    /// Like [`get`](Self::get), but gives up after `timeout`, leaving the handle usable.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the result is not ready in time (the work goes on); otherwise as
    /// [`get`](Self::get). Once a value was returned, later calls give [`Error::ResultTaken`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn add(a: i32, b: i32) -> i32 { a + b }
    ///
    /// let pool = WorkerPool::new(1)?;
    /// let pending = pool.apply_async(add, (2, 3))?;
    /// assert_eq!(pending.get_timeout(Duration::from_secs(30))?, 5);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, Error> {
        if !self.source.latch().wait(Some(Instant::now() + timeout)) {
            return Err(Error::Timeout);
        }
        self.source.take()
    }

    /// Blocks until the result is ready.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let pool = WorkerPool::new(1)?;
    /// let pending = pool.apply_async(square, (3,))?;
    /// pending.wait();
    /// assert!(pending.ready());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn wait(&self) {
        self.source.latch().wait(None);
    }

    /// Blocks until the result is ready or `timeout` passes; returns whether it is ready.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let pool = WorkerPool::new(1)?;
    /// use std::time::Duration;
    ///
    /// let pending = pool.apply_async(square, (3,))?;
    /// assert!(pending.wait_timeout(Duration::from_secs(30)));
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.source.latch().wait(Some(Instant::now() + timeout))
    }

    /// Whether the result is ready.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let pool = WorkerPool::new(1)?;
    /// let pending = pool.apply_async(square, (3,))?;
    /// pending.wait();
    /// assert!(pending.ready());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn ready(&self) -> bool {
        self.source.latch().is_set()
    }

    /// Whether every item succeeded: `None` while not ready (where Python raises
    /// `ValueError`).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPool, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let pool = WorkerPool::new(1)?;
    /// let pending = pool.apply_async(square, (3,))?;
    /// pending.wait();
    /// assert_eq!(pending.successful(), Some(true));
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn successful(&self) -> Option<bool> {
        self.source.succeeded()
    }
}
