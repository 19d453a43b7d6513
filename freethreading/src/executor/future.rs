//! [`Future`]: the handle [`WorkerPoolExecutor::submit`](crate::WorkerPoolExecutor::submit)
//! returns, and the completion cell ([`Core`]) behind it and behind every chunk of an executor
//! `map`.
//!
//! # States
//!
//! A core moves `PENDING → RUNNING → FINISHED`, or `PENDING → CANCELLED`, and never back.
//! `PENDING → RUNNING` is a lock-free claim made by the pool just before the task starts (a
//! pool thread picked it up, or it is about to be sent to a child); `cancel` competes for the
//! same transition, so exactly one of them wins and a cancelled task never runs. A task that
//! fails before it is claimed (a broken pool) goes straight from `PENDING` to `FINISHED`.
//!
//! The two terminal transitions happen with the mutex held, and every blocking waiter checks
//! the state with the mutex held, so no wake-up is lost. Waiters, the async waker, `wait`
//! watchers and done callbacks are taken out under the mutex and served after it is released,
//! so a callback may use the future (or submit more work) freely.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::Error;
use crate::executor::wait::Watch;
use crate::pool::sink::Sink;

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const FINISHED: u8 = 2;
const CANCELLED: u8 = 3;

type Callback = Box<dyn FnOnce() + Send>;

/// The value of a finished core.
enum Outcome<R> {
    Pending,
    Value(R),
    Failed(Error),
    Taken,
}

struct Inner<R> {
    outcome: Outcome<R>,
    /// Threads blocked on `settled`; notifying is skipped when there are none.
    sleepers: usize,
    waker: Option<Waker>,
    watchers: Vec<(Weak<Watch>, usize)>,
    callbacks: Vec<Callback>,
}

/// A one-shot completion cell: a state, the outcome, and whoever waits for it.
pub(crate) struct Core<R> {
    state: AtomicU8,
    inner: Mutex<Inner<R>>,
    settled: Condvar,
}

impl<R> Core<R> {
    pub(crate) fn new() -> Self {
        Core {
            state: AtomicU8::new(PENDING),
            inner: Mutex::new(Inner {
                outcome: Outcome::Pending,
                sleepers: 0,
                waker: None,
                watchers: Vec::new(),
                callbacks: Vec::new(),
            }),
            settled: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<R>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Finished or cancelled.
    pub(crate) fn is_settled(&self) -> bool {
        self.state() >= FINISHED
    }

    /// `PENDING → RUNNING`; also true when already running (a task re-sent after its child
    /// died), false when cancelled.
    pub(crate) fn claim(&self) -> bool {
        match self
            .state
            .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(current) => current == RUNNING,
        }
    }

    /// `PENDING → CANCELLED`; true if it is cancelled now or already was.
    pub(crate) fn cancel(&self) -> bool {
        let inner = self.lock();
        match self
            .state
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                self.settle(inner);
                true
            }
            Err(current) => current == CANCELLED,
        }
    }

    /// Stores the outcome unless the core was cancelled (then the outcome is dropped).
    pub(crate) fn complete(&self, outcome: Result<R, Error>) {
        let mut inner = self.lock();
        let mut current = self.state();
        loop {
            if current >= FINISHED {
                return;
            }
            match self.state.compare_exchange(
                current,
                FINISHED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        inner.outcome = match outcome {
            Ok(value) => Outcome::Value(value),
            Err(error) => Outcome::Failed(error),
        };
        self.settle(inner);
    }

    /// Wakes everyone waiting for the now-terminal state, then runs the callbacks.
    fn settle(&self, mut inner: MutexGuard<'_, Inner<R>>) {
        let waker = inner.waker.take();
        let watchers = std::mem::take(&mut inner.watchers);
        let callbacks = std::mem::take(&mut inner.callbacks);
        if inner.sleepers > 0 {
            self.settled.notify_all();
        }
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
        }
        for (watch, index) in watchers {
            if let Some(watch) = watch.upgrade() {
                watch.notify(index);
            }
        }
        for callback in callbacks {
            run_callback(callback);
        }
    }

    /// Blocks until settled or `deadline`; returns whether it is settled.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        if self.is_settled() {
            return true;
        }
        let mut inner = self.lock();
        while !self.is_settled() {
            inner.sleepers += 1;
            let timed_out = match deadline {
                None => {
                    inner = self.settled.wait(inner).unwrap_or_else(|e| e.into_inner());
                    false
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        true
                    } else {
                        inner = self
                            .settled
                            .wait_timeout(inner, deadline - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                        false
                    }
                }
            };
            inner.sleepers -= 1;
            if timed_out {
                return self.is_settled();
            }
        }
        true
    }

    /// The outcome of a settled core: the value moves out once; errors are cloned.
    fn take_locked(&self, inner: &mut Inner<R>) -> Result<R, Error> {
        match self.state() {
            CANCELLED => return Err(Error::Cancelled),
            FINISHED => {}
            _ => return Err(Error::Timeout),
        }
        match std::mem::replace(&mut inner.outcome, Outcome::Taken) {
            Outcome::Value(value) => Ok(value),
            Outcome::Failed(error) => {
                inner.outcome = Outcome::Failed(error.clone());
                Err(error)
            }
            Outcome::Taken | Outcome::Pending => Err(Error::ResultTaken),
        }
    }

    /// Waits until `deadline` and takes the outcome.
    pub(crate) fn take(&self, deadline: Option<Instant>) -> Result<R, Error> {
        if !self.wait(deadline) {
            return Err(Error::Timeout);
        }
        let mut inner = self.lock();
        self.take_locked(&mut inner)
    }

    /// The error of a settled core (`Cancelled` when cancelled), `None` if it succeeded.
    pub(crate) fn error(&self) -> Option<Error> {
        match self.state() {
            CANCELLED => Some(Error::Cancelled),
            FINISHED => match &self.lock().outcome {
                Outcome::Failed(error) => Some(error.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    /// Async poll: the outcome if settled, else the waker is kept for `settle`.
    fn poll(&self, cx: &mut Context<'_>) -> Poll<Result<R, Error>> {
        let mut inner = self.lock();
        if self.is_settled() {
            return Poll::Ready(self.take_locked(&mut inner));
        }
        match &mut inner.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Tells `watch` about `index` once settled (at once if it already is).
    pub(crate) fn watch(&self, watch: &Arc<Watch>, index: usize) {
        let mut inner = self.lock();
        if self.is_settled() {
            drop(inner);
            watch.notify(index);
            return;
        }
        if inner.watchers.len() >= 4 {
            // Drop the registrations of waits that already returned.
            inner.watchers.retain(|(w, _)| w.strong_count() > 0);
        }
        inner.watchers.push((Arc::downgrade(watch), index));
    }

    /// Runs `callback` once settled (at once, here, if it already is).
    fn on_settled(&self, callback: Callback) {
        let mut inner = self.lock();
        if self.is_settled() {
            drop(inner);
            run_callback(callback);
        } else {
            inner.callbacks.push(callback);
        }
    }
}

/// Runs a done callback; a panic is reported on stderr and goes no further.
fn run_callback(callback: Callback) {
    if let Err(message) = crate::unwind::catch(callback) {
        eprintln!("freethreading: a future's done callback panicked: {message}");
    }
}

/// Errors that only reach a task when its pool is broken become [`Error::BrokenExecutor`].
pub(crate) fn executor_error(error: Error) -> Error {
    match error {
        Error::InitializerFailed { .. }
        | Error::Spawn(_)
        | Error::Handshake { .. }
        | Error::ChildNotInitialized { .. } => Error::BrokenExecutor {
            cause: Arc::new(error),
        },
        other => other,
    }
}

/// One submitted task: a one-item chunk.
impl<O: Send + 'static> Sink<O> for Core<O> {
    type Acc = Option<Result<O, Error>>;

    fn begin(&self, _chunk: usize, _start: usize, _len: usize) -> Self::Acc {
        None
    }

    fn push(&self, acc: &mut Self::Acc, _index: usize, result: Result<O, Error>) -> bool {
        *acc = Some(result);
        true
    }

    fn finish(&self, acc: Self::Acc, failure: Option<Error>) {
        let outcome = match (acc, failure) {
            (Some(result), _) => result,
            (None, Some(error)) => Err(error),
            (None, None) => Err(Error::Terminated),
        };
        self.complete(outcome.map_err(executor_error));
    }

    fn claim(&self, _chunk: usize) -> bool {
        Core::claim(self)
    }

    fn cancel(&self, _chunk: usize) -> bool {
        Core::cancel(self)
    }
}

/// The result of a task submitted to a [`WorkerPoolExecutor`](crate::WorkerPoolExecutor):
/// Python's `concurrent.futures.Future`.
///
/// A future is *pending* until a worker starts the task, then *running*, then *done*
/// (finished or cancelled). On the threading backend the task starts when a pool thread picks
/// it up; on the process backend, when it is sent to a child process (as in Python, a task
/// already handed to a child counts as running and can no longer be cancelled).
///
/// Read the outcome with [`result`](Self::result) (blocking), [`result_timeout`](Self::result_timeout),
/// or `.await` — `Future` implements [`std::future::Future`], so async code can wait for it
/// without blocking its runtime's threads. Dropping a future does not cancel the task.
///
/// # Examples
///
/// ```
/// use freethreading::{WorkerPoolExecutor, worker};
///
/// #[worker]
/// fn pow(base: u64, exponent: u32) -> u64 { base.pow(exponent) }
///
/// let executor = WorkerPoolExecutor::new(2)?;
/// let future = executor.submit(pow, (2, 10))?;
/// assert_eq!(future.result()?, 1024);
/// assert!(future.done());
/// assert!(!future.cancelled());
/// # Ok::<(), freethreading::Error>(())
/// ```
pub struct Future<T> {
    pub(crate) core: Arc<Core<T>>,
}

impl<T> std::fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.core.state() {
            PENDING => "pending",
            RUNNING => "running",
            FINISHED => "finished",
            _ => "cancelled",
        };
        f.debug_struct("Future")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<T> Future<T> {
    /// Waits for the task and returns its value, or its error.
    ///
    /// The value moves out to the caller: a later call (or `.await`) on the same future gets
    /// [`Error::ResultTaken`]. Errors are returned every time.
    ///
    /// # Errors
    ///
    /// The task's failure ([`Error::TaskPanicked`], [`Error::WorkerDied`], a serialisation
    /// error, [`Error::BrokenExecutor`]), [`Error::Cancelled`] if it was cancelled, or
    /// [`Error::ResultTaken`] if the value was already taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Error, WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn halve(x: u32) -> u32 {
    ///     assert!(x % 2 == 0, "{x} is odd");
    ///     x / 2
    /// }
    ///
    /// let executor = WorkerPoolExecutor::new(1)?;
    /// assert_eq!(executor.submit(halve, (8,))?.result()?, 4);
    /// let odd = executor.submit(halve, (7,))?;
    /// assert!(matches!(odd.result(), Err(Error::TaskPanicked { message }) if message == "7 is odd"));
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn result(&self) -> Result<T, Error> {
        self.core.take(None)
    }

    /// Like [`result`](Self::result), but gives up after `timeout`, leaving the future
    /// usable (the task goes on).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the task is not done in time; otherwise as
    /// [`result`](Self::result).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use freethreading::{WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn add(a: i32, b: i32) -> i32 { a + b }
    ///
    /// let executor = WorkerPoolExecutor::new(1)?;
    /// let future = executor.submit(add, (2, 3))?;
    /// assert_eq!(future.result_timeout(Duration::from_secs(30))?, 5);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, Error> {
        self.core.take(Some(Instant::now() + timeout))
    }

    /// Waits for the task and returns its error, or `None` if it succeeded: Python's
    /// `exception()`. A cancelled future gives `Some(Error::Cancelled)`. The value, if any,
    /// stays in the future.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Error, WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn check(ok: bool) { assert!(ok, "not ok"); }
    ///
    /// let executor = WorkerPoolExecutor::new(1)?;
    /// assert!(executor.submit(check, (true,))?.exception().is_none());
    /// let failed = executor.submit(check, (false,))?;
    /// assert!(matches!(failed.exception(), Some(Error::TaskPanicked { .. })));
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn exception(&self) -> Option<Error> {
        self.core.wait(None);
        self.core.error()
    }

    /// Like [`exception`](Self::exception), but gives up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the task is not done in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use freethreading::{WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let executor = WorkerPoolExecutor::new(1)?;
    /// let future = executor.submit(noop, ())?;
    /// assert!(future.exception_timeout(Duration::from_secs(30))?.is_none());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn exception_timeout(&self, timeout: Duration) -> Result<Option<Error>, Error> {
        if !self.core.wait(Some(Instant::now() + timeout)) {
            return Err(Error::Timeout);
        }
        Ok(self.core.error())
    }

    /// Whether the task finished (with a value or an error) or was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn one() -> u8 { 1 }
    ///
    /// let executor = WorkerPoolExecutor::new(1)?;
    /// let future = executor.submit(one, ())?;
    /// future.exception(); // waits
    /// assert!(future.done());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn done(&self) -> bool {
        self.core.is_settled()
    }

    /// Whether a worker has started the task and it has not finished yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn one() -> u8 { 1 }
    ///
    /// let executor = WorkerPoolExecutor::new(1)?;
    /// let future = executor.submit(one, ())?;
    /// future.exception(); // waits
    /// assert!(!future.running());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn running(&self) -> bool {
        self.core.state() == RUNNING
    }

    /// Whether the future was cancelled.
    ///
    /// # Examples
    ///
    /// See [`cancel`](Self::cancel).
    pub fn cancelled(&self) -> bool {
        self.core.state() == CANCELLED
    }

    /// Cancels the task if it has not started: it will never run, and the future is done
    /// with [`Error::Cancelled`]. Returns `true` if the future is now cancelled (also when it
    /// already was), `false` if the task is running or finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use freethreading::{Error, WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn nap(millis: u64) { std::thread::sleep(Duration::from_millis(millis)); }
    ///
    /// let executor = WorkerPoolExecutor::new(1)?;
    /// let busy = executor.submit(nap, (200,))?;
    /// let queued = executor.submit(nap, (200,))?;
    /// // The single worker is busy with the first task, so the second is still pending
    /// // (unless the worker raced ahead: then cancel() says false).
    /// if queued.cancel() {
    ///     assert!(queued.cancelled() && queued.done());
    ///     assert!(matches!(queued.result(), Err(Error::Cancelled)));
    /// }
    /// busy.result()?;
    /// assert!(!busy.cancel()); // finished futures cannot be cancelled
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        self.core.cancel()
    }

    /// Calls `callback` with this future once it is done (finished or cancelled); at once,
    /// on this thread, if it already is. Callbacks run in the order they were added.
    ///
    /// Otherwise the callback runs on the thread that completes the future: a pool thread,
    /// the pool's reader thread for that child process, or the thread that cancels. Keep it
    /// short. A callback that panics is contained: the panic is reported on stderr and
    /// affects neither the executor nor the other callbacks. Do not shut down or drop the
    /// executor from inside a callback.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use freethreading::{WorkerPoolExecutor, worker};
    ///
    /// #[worker]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// let executor = WorkerPoolExecutor::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let future = executor.submit(square, (9,))?;
    /// future.add_done_callback(move |f| tx.send(f.exception().is_none()).unwrap());
    /// assert!(rx.recv().unwrap());
    /// assert_eq!(future.result()?, 81);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn add_done_callback(&self, callback: impl FnOnce(&Future<T>) + Send + 'static)
    where
        T: Send + 'static,
    {
        let handle = Future {
            core: Arc::clone(&self.core),
        };
        self.core.on_settled(Box::new(move || callback(&handle)));
    }
}

/// `.await` gives what [`Future::result`] returns, without blocking the thread.
///
/// # Examples
///
/// ```
/// use freethreading::{WorkerPoolExecutor, worker};
///
/// #[worker]
/// fn square(x: u64) -> u64 { x * x }
///
/// async fn sum_of_squares(executor: &WorkerPoolExecutor) -> Result<u64, freethreading::Error> {
///     let a = executor.submit(square, (3,))?;
///     let b = executor.submit(square, (4,))?;
///     Ok(a.await? + b.await?)
/// }
/// # let executor = WorkerPoolExecutor::new(2)?;
/// # // A minimal executor for the doctest: park the thread until the waker fires.
/// # struct Unpark(std::thread::Thread);
/// # impl std::task::Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// # let waker = std::sync::Arc::new(Unpark(std::thread::current())).into();
/// # let mut cx = std::task::Context::from_waker(&waker);
/// # let mut task = std::pin::pin!(sum_of_squares(&executor));
/// # let total = loop {
/// #     match task.as_mut().poll(&mut cx) {
/// #         std::task::Poll::Ready(v) => break v,
/// #         std::task::Poll::Pending => std::thread::park(),
/// #     }
/// # };
/// # assert_eq!(total?, 25);
/// # Ok::<(), freethreading::Error>(())
/// ```
impl<T> std::future::Future for Future<T> {
    type Output = Result<T, Error>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.core.poll(cx)
    }
}
