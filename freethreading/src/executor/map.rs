//! [`ExecutorMap`]: the ordered, lazy results of
//! [`WorkerPoolExecutor::map`](crate::WorkerPoolExecutor::map).
//!
//! Every chunk is submitted when `map` is called (as in Python); each reports into its own
//! completion cell ([`ChunkCore`]), which can be cancelled while the chunk waits in the queue.
//! The iterator waits for the cells in input order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Error;
use crate::executor::future::{Core, executor_error};
use crate::pool::sink::Sink;

/// The completion cell of one chunk of an executor `map`: the results of its items.
pub(crate) struct ChunkCore<O> {
    pub(crate) core: Core<Vec<Result<O, Error>>>,
}

impl<O> ChunkCore<O> {
    pub(crate) fn new() -> Self {
        ChunkCore { core: Core::new() }
    }
}

/// Per-chunk progress: the results so far and the chunk's length.
pub(crate) struct ChunkAcc<O> {
    len: usize,
    results: Vec<Result<O, Error>>,
}

impl<O: Send + 'static> Sink<O> for ChunkCore<O> {
    type Acc = ChunkAcc<O>;

    fn begin(&self, _chunk: usize, _start: usize, len: usize) -> Self::Acc {
        ChunkAcc {
            len,
            results: Vec::with_capacity(len),
        }
    }

    fn push(&self, acc: &mut Self::Acc, _index: usize, result: Result<O, Error>) -> bool {
        acc.results.push(result.map_err(executor_error));
        true
    }

    fn finish(&self, mut acc: Self::Acc, failure: Option<Error>) {
        if acc.results.len() < acc.len {
            let error = executor_error(failure.unwrap_or(Error::Terminated));
            acc.results.resize_with(acc.len, || Err(error.clone()));
        }
        self.core.complete(Ok(acc.results));
    }

    fn claim(&self, _chunk: usize) -> bool {
        self.core.claim()
    }

    fn cancel(&self, _chunk: usize) -> bool {
        self.core.cancel()
    }
}

/// The results of [`WorkerPoolExecutor::map`](crate::WorkerPoolExecutor::map), in input
/// order: one `Result` per item.
///
/// A failed item yields its error and iteration goes on with the next item (Python's
/// iterator instead ends at the first exception). With a [`timeout`](Self::timeout), the
/// iterator yields [`Error::Timeout`] for the first item not ready in time and then ends.
///
/// Dropping the iterator early, or its timeout expiring, cancels the items that have not
/// started (as Python's iterator does when it is closed); items already running finish.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use freethreading::{WorkerPoolExecutor, worker};
///
/// #[worker]
/// fn square(x: u64) -> u64 { x * x }
///
/// let executor = WorkerPoolExecutor::new(2)?;
/// let squares: Vec<u64> = executor
///     .map(square, 0..5u64)?
///     .timeout(Duration::from_secs(60))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(squares, vec![0, 1, 4, 9, 16]);
/// # Ok::<(), freethreading::Error>(())
/// ```
#[must_use = "dropping the iterator cancels the items that have not started"]
pub struct ExecutorMap<T> {
    chunks: VecDeque<(Arc<ChunkCore<T>>, usize)>,
    current: std::vec::IntoIter<Result<T, Error>>,
    remaining: usize,
    started: Instant,
    deadline: Option<Instant>,
}

impl<T> std::fmt::Debug for ExecutorMap<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorMap")
            .field("remaining", &self.remaining)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<T> ExecutorMap<T> {
    pub(crate) fn new(chunks: VecDeque<(Arc<ChunkCore<T>>, usize)>, started: Instant) -> Self {
        ExecutorMap {
            remaining: chunks.iter().map(|(_, len)| len).sum(),
            chunks,
            current: Vec::new().into_iter(),
            started,
            deadline: None,
        }
    }

    /// Gives up when an item is not ready `timeout` after the `map` call (as Python measures
    /// it): that item yields [`Error::Timeout`], the items not started are cancelled, and the
    /// iterator ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use freethreading::{Error, WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn nap(millis: u64) -> u64 { std::thread::sleep(Duration::from_millis(millis)); millis }
    ///
    /// let executor = WorkerPoolExecutor::new(1)?;
    /// let mut results = executor.map(nap, [300, 300])?.timeout(Duration::from_millis(10));
    /// assert!(matches!(results.next(), Some(Err(Error::Timeout))));
    /// assert!(results.next().is_none());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Some(self.started + timeout);
        self
    }

    fn cancel_rest(&mut self) {
        for (chunk, _) in self.chunks.drain(..) {
            chunk.core.cancel();
        }
        self.remaining = 0;
    }
}

impl<T> Iterator for ExecutorMap<T> {
    type Item = Result<T, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(item) = self.current.next() {
            self.remaining -= 1;
            return Some(item);
        }
        let (chunk, len) = self.chunks.pop_front()?;
        if !chunk.core.wait(self.deadline) {
            chunk.core.cancel();
            self.cancel_rest();
            return Some(Err(Error::Timeout));
        }
        self.current = match chunk.core.take(None) {
            Ok(results) => results.into_iter(),
            Err(error) => vec![error; len]
                .into_iter()
                .map(Err)
                .collect::<Vec<_>>()
                .into_iter(),
        };
        self.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

impl<T> Drop for ExecutorMap<T> {
    fn drop(&mut self) {
        self.cancel_rest();
    }
}
