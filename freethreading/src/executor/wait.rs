//! Waiting for many futures at once: [`wait`] and [`as_completed`], as in Python's
//! `concurrent.futures`.
//!
//! Both register one [`Watch`] with every future; a future that settles pushes its index into
//! the watch (at registration, if it already has), so the watch's queue is the completion
//! order. Futures hold the watch weakly: a `wait` that returned, or an [`AsCompleted`] dropped
//! early, leaves nothing alive behind.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::Error;
use crate::executor::future::Future;

/// Indices of settled futures, in the order they settled.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    settled: Mutex<VecDeque<usize>>,
    changed: Condvar,
}

impl Watch {
    pub(crate) fn notify(&self, index: usize) {
        self.settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(index);
        self.changed.notify_one();
    }

    /// The next settled index, waiting until `deadline`.
    fn next(&self, deadline: Option<Instant>) -> Option<usize> {
        let mut settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(index) = settled.pop_front() {
                return Some(index);
            }
            match deadline {
                None => {
                    settled = self
                        .changed
                        .wait(settled)
                        .unwrap_or_else(|e| e.into_inner())
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    settled = self
                        .changed
                        .wait_timeout(settled, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

/// When [`wait`] returns: Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION` and `ALL_COMPLETED`.
///
/// # Examples
///
/// ```
/// use freethreading::ReturnWhen;
///
/// assert_eq!(ReturnWhen::default(), ReturnWhen::AllCompleted);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReturnWhen {
    /// As soon as any future is done (finished or cancelled).
    FirstCompleted,
    /// As soon as any future finishes with an error; if none does, when all are done. A
    /// cancelled future does not count as an error.
    FirstException,
    /// When every future is done.
    #[default]
    AllCompleted,
}

/// What [`wait`] returns: the positions (in the order the futures were given) of the futures
/// that are done and of those that are not. Python's `DoneAndNotDoneFutures`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DoneAndNotDone {
    /// Positions of the futures that are done (finished or cancelled), ascending.
    pub done: Vec<usize>,
    /// Positions of the futures that are not done yet, ascending.
    pub not_done: Vec<usize>,
}

/// Waits until the futures satisfy `return_when`, or `timeout` passes; says which are done.
///
/// Python's `concurrent.futures.wait`. A timeout is not an error here: the futures still
/// running are listed in [`not_done`](DoneAndNotDone::not_done). Positions refer to the
/// order of `futures`.
///
/// # Examples
///
/// ```
/// use freethreading::{ReturnWhen, WorkerPoolExecutor, wait, worker};
///
/// #[worker]
/// fn square(x: u64) -> u64 { x * x }
///
/// let executor = WorkerPoolExecutor::new(2)?;
/// let futures: Vec<_> = (0..8u64)
///     .map(|x| executor.submit(square, (x,)))
///     .collect::<Result<_, _>>()?;
/// let first = wait(&futures, None, ReturnWhen::FirstCompleted);
/// assert!(!first.done.is_empty());
/// let all = wait(&futures, None, ReturnWhen::AllCompleted);
/// assert_eq!(all.done, (0..8).collect::<Vec<_>>());
/// assert!(all.not_done.is_empty());
/// # Ok::<(), freethreading::Error>(())
/// ```
pub fn wait<'a, T: 'a>(
    futures: impl IntoIterator<Item = &'a Future<T>>,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> DoneAndNotDone {
    let futures: Vec<&Future<T>> = futures.into_iter().collect();
    let deadline = timeout.map(|t| Instant::now() + t);
    match return_when {
        ReturnWhen::AllCompleted => {
            // Waiting on each in turn costs no registration at all.
            for future in &futures {
                if !future.core.wait(deadline) {
                    break;
                }
            }
        }
        ReturnWhen::FirstCompleted | ReturnWhen::FirstException => {
            let watch = Arc::new(Watch::default());
            for (index, future) in futures.iter().enumerate() {
                future.core.watch(&watch, index);
            }
            let mut settled = 0;
            while settled < futures.len() {
                let Some(index) = watch.next(deadline) else {
                    break;
                };
                settled += 1;
                if return_when == ReturnWhen::FirstCompleted
                    || (!futures[index].cancelled() && futures[index].core.error().is_some())
                {
                    break;
                }
            }
        }
    }
    let (done, not_done) = (0..futures.len()).partition(|&i| futures[i].done());
    DoneAndNotDone { done, not_done }
}

/// Yields the futures as they become done (finished or cancelled): those already done first,
/// then the others in completion order. Python's `concurrent.futures.as_completed`.
///
/// With a `timeout` (measured from this call), the iterator yields [`Error::Timeout`] once,
/// when it is asked for the next future after the timeout passed with futures still
/// outstanding, and then ends.
///
/// # Examples
///
/// ```
/// use freethreading::{WorkerPoolExecutor, as_completed, worker};
///
/// #[worker]
/// fn square(x: u64) -> u64 { x * x }
///
/// let executor = WorkerPoolExecutor::new(2)?;
/// let futures: Vec<_> = (1..=4u64)
///     .map(|x| executor.submit(square, (x,)))
///     .collect::<Result<_, _>>()?;
/// let mut total = 0;
/// for future in as_completed(&futures, None) {
///     total += future?.result()?;
/// }
/// assert_eq!(total, 1 + 4 + 9 + 16);
/// # Ok::<(), freethreading::Error>(())
/// ```
pub fn as_completed<'a, T: 'a>(
    futures: impl IntoIterator<Item = &'a Future<T>>,
    timeout: Option<Duration>,
) -> AsCompleted<'a, T> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let futures: Vec<&Future<T>> = futures.into_iter().collect();
    let watch = Arc::new(Watch::default());
    for (index, future) in futures.iter().enumerate() {
        future.core.watch(&watch, index);
    }
    AsCompleted {
        remaining: futures.len(),
        futures,
        watch,
        deadline,
    }
}

/// The iterator [`as_completed`] returns.
pub struct AsCompleted<'a, T> {
    futures: Vec<&'a Future<T>>,
    watch: Arc<Watch>,
    remaining: usize,
    deadline: Option<Instant>,
}

impl<T> std::fmt::Debug for AsCompleted<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted")
            .field("futures", &self.futures.len())
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl<'a, T> Iterator for AsCompleted<'a, T> {
    type Item = Result<&'a Future<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        match self.watch.next(self.deadline) {
            Some(index) => {
                self.remaining -= 1;
                Some(Ok(self.futures[index]))
            }
            None => {
                self.remaining = 0;
                Some(Err(Error::Timeout))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}
