//! The crate's error type.
//!
//! One enum covers every operation, because most failures can come from either backend and a
//! caller rarely needs a narrower type: a task that panicked, a child that died, misuse such as
//! submitting to a closed pool, and the process backend's own failures (spawn, handshake,
//! malformed frames). Every variant says why it happens; none is ever produced by a panic in the
//! calling process.

use std::fmt;
use std::sync::Arc;

/// How a child process ended.
///
/// # Examples
///
/// ```
/// use freethreading::ExitReason;
///
/// assert_eq!(ExitReason::Signal(9).to_string(), "signal 9 (SIGKILL)");
/// assert_eq!(ExitReason::Code(3).to_string(), "exit code 3");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// It exited with this status code.
    Code(i32),
    /// It was killed by this signal (`9` is `SIGKILL`, `6` is `SIGABRT`, `11` is `SIGSEGV`).
    Signal(i32),
}

impl ExitReason {
    pub(crate) fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitReason::Code(code),
            (None, Some(signal)) => ExitReason::Signal(signal),
            // Neither is only possible for stopped/continued statuses, which `wait` never returns.
            (None, None) => ExitReason::Code(-1),
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitReason::Code(code) => write!(f, "exit code {code}"),
            ExitReason::Signal(signal) => match signal_name(signal) {
                Some(name) => write!(f, "signal {signal} ({name})"),
                None => write!(f, "signal {signal}"),
            },
        }
    }
}

fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        _ => return None,
    })
}

/// Everything that can go wrong in `freethreading`.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a wildcard arm.
/// It is `Clone` so that one failure (say, a dead child) can be reported to every item it
/// affected.
///
/// # Examples
///
/// ```
/// use freethreading::{Error, WorkerPool, worker};
///
/// #[worker]
/// fn check(x: i32) -> i32 {
///     assert!(x >= 0, "negative input {x}");
///     x
/// }
///
/// let pool = WorkerPool::new(1)?;
/// match pool.apply(check, (-1,)) {
///     Err(Error::TaskPanicked { message }) => assert_eq!(message, "negative input -1"),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), freethreading::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The task's function panicked. The worker that ran it keeps serving.
    TaskPanicked {
        /// The panic payload, when it was a string; otherwise a placeholder.
        message: String,
    },
    /// The child process running the task died (a crash, `abort()`, `SIGKILL`, the OOM killer)
    /// before answering. Only the task it was running fails; a replacement child is started.
    WorkerDied {
        /// The dead child's process id.
        pid: u32,
        /// How it ended.
        reason: ExitReason,
    },
    /// The pool was closed, or the executor shut down, so it accepts no new work (Python's
    /// "cannot schedule new futures after shutdown").
    Closed,
    /// `join` was called while the pool still accepts work; call `close` or `terminate` first.
    StillRunning,
    /// The work was discarded by `terminate` (or by dropping the pool) before it finished.
    Terminated,
    /// A timed wait ran out before the result was ready.
    Timeout,
    /// The result of this handle was already taken by an earlier `get`.
    ResultTaken,
    /// `Worker::start` was called twice, or the name or daemon flag was set after the start.
    AlreadyStarted,
    /// `Worker::join` was called before `Worker::start`.
    NotStarted,
    /// An argument is out of range (for example a pool of zero workers or a chunk size of zero).
    InvalidArgument(&'static str),
    /// `FREETHREADING_BACKEND` (or a parsed string) names no backend.
    InvalidBackend {
        /// The rejected value.
        value: String,
    },
    /// `set_backend` was called after the backend was already in use with another value.
    BackendAlreadyChosen {
        /// The backend already in force.
        current: crate::Backend,
    },
    /// The process backend is not available on this platform.
    Unsupported(&'static str),
    /// Two `#[worker]` functions were registered under the same stable name; rename one with
    /// `#[worker(name = "...")]`.
    DuplicateWorkerName {
        /// The shared name.
        name: String,
        /// Where the first one is defined (`path at file:line`).
        first: String,
        /// Where the second one is defined.
        second: String,
    },
    /// A child process of this program never became a worker: it did not call
    /// `freethreading::init()` (or use `#[freethreading::main]`) first thing in `main`, exited
    /// early, or did not answer in time.
    ChildNotInitialized {
        /// What the parent observed.
        detail: String,
    },
    /// Starting a child process failed (the operating system's error).
    Spawn(Arc<std::io::Error>),
    /// The child is not the same build as the parent (protocol version or build fingerprint
    /// differ), usually because the binary was rebuilt while it ran.
    Handshake {
        /// Which check failed.
        detail: String,
    },
    /// A child sent bytes that are not a valid frame. The child is discarded and replaced.
    Protocol {
        /// What was wrong with the bytes.
        detail: String,
    },
    /// A value could not be encoded to cross the process boundary (a custom `Serialize` failed).
    Serialize {
        /// The encoder's message.
        detail: String,
    },
    /// Bytes could not be decoded back into the expected type.
    Deserialize {
        /// The decoder's message.
        detail: String,
    },
    /// The child has no `#[worker]` function of this name (the builds differ).
    UnknownWorker {
        /// The missing stable name.
        name: String,
    },
    /// The pool's initializer failed in a worker, so the pool is broken: queued and later tasks
    /// fail with this error.
    InitializerFailed {
        /// Why the initializer failed.
        message: String,
    },
    /// The executor's future was cancelled before it started: by `Future::cancel`, by
    /// `WorkerPoolExecutor::shutdown` with `cancel_futures`, or by dropping the iterator of an
    /// executor `map` (or by its timeout). The task never ran.
    Cancelled,
    /// The executor is broken and runs no more tasks: its initializer failed in a worker (or,
    /// on the process backend, no worker process could be started). Its pending futures and
    /// every later `submit` fail with this error. A worker process that dies does not break
    /// the executor.
    BrokenExecutor {
        /// Why it broke, such as [`Error::InitializerFailed`].
        cause: Arc<Error>,
    },
    /// A lock operation needs the caller to hold the lock, and it does not: releasing an
    /// unlocked `Lock`, releasing an `RLock` owned by another worker (or by nobody), or
    /// waiting on or notifying a `Condition` without holding its lock.
    NotHeld {
        /// The operation that was refused, such as `"release an unlocked Lock"`.
        operation: &'static str,
    },
    /// A `BoundedSemaphore` was released more times than it was acquired (its value would go
    /// above the initial value), or a `Semaphore`'s value would overflow `u32`.
    ReleasedTooManyTimes,
    /// The `Barrier` is broken: it was aborted, reset while this worker waited, a wait timed
    /// out, its action failed, or a process holding it died. Every waiter gets this until
    /// `reset()`.
    BrokenBarrier,
    /// The `Barrier`'s action panicked (or could not run) in this worker, the last to arrive;
    /// the barrier is now broken for the others.
    BarrierActionFailed {
        /// Why the action failed.
        message: String,
    },
    /// The shared memory that holds synchronisation primitives could not be created or mapped,
    /// or it is full.
    SharedMemory {
        /// What failed.
        detail: String,
    },
    /// `Queue::task_done` was called more times than items were put (Python's
    /// `ValueError: task_done() called too many times`).
    TaskDoneTooManyTimes,
    /// A queue stayed empty (a [`GetError::Empty`](crate::GetError::Empty) passed on with `?`).
    QueueEmpty,
    /// A queue stayed full (a [`PutError::Full`](crate::PutError::Full) passed on with `?`,
    /// which drops the item).
    QueueFull,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TaskPanicked { message } => write!(f, "task panicked: {message}"),
            Error::WorkerDied { pid, reason } => {
                write!(
                    f,
                    "worker process {pid} died ({reason}) while running the task"
                )
            }
            Error::Closed => {
                f.write_str("the pool or executor is shut down and accepts no new work")
            }
            Error::StillRunning => {
                f.write_str("the pool is still running; call close() or terminate() before join()")
            }
            Error::Terminated => {
                f.write_str("the task was discarded because the pool was terminated")
            }
            Error::Timeout => f.write_str("timed out waiting for the result"),
            Error::ResultTaken => f.write_str("the result was already taken"),
            Error::AlreadyStarted => f.write_str("the worker was already started"),
            Error::NotStarted => f.write_str("the worker was not started yet"),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::InvalidBackend { value } => write!(
                f,
                "invalid backend {value:?}; expected \"threading\" or \"multiprocessing\""
            ),
            Error::BackendAlreadyChosen { current } => write!(
                f,
                "the backend is already in use as {current}; call set_backend before creating \
                 any pool, worker or primitive"
            ),
            Error::Unsupported(what) => write!(f, "unsupported on this platform: {what}"),
            Error::DuplicateWorkerName {
                name,
                first,
                second,
            } => write!(
                f,
                "two #[worker] functions share the name {name:?}: {first} and {second}; give one \
                 a distinct #[worker(name = \"...\")]"
            ),
            Error::ChildNotInitialized { detail } => write!(
                f,
                "child process did not become a worker ({detail}); call freethreading::init() as \
                 the first statement of main, or annotate main with #[freethreading::main]"
            ),
            Error::Spawn(e) => write!(f, "failed to start a worker process: {e}"),
            Error::Handshake { detail } => write!(f, "worker process handshake failed: {detail}"),
            Error::Protocol { detail } => {
                write!(f, "malformed message from worker process: {detail}")
            }
            Error::Serialize { detail } => write!(f, "failed to serialize a value: {detail}"),
            Error::Deserialize { detail } => write!(f, "failed to deserialize a value: {detail}"),
            Error::UnknownWorker { name } => {
                write!(
                    f,
                    "no #[worker] function named {name:?} is registered in the worker process"
                )
            }
            Error::InitializerFailed { message } => {
                write!(
                    f,
                    "the pool is broken because its initializer failed: {message}"
                )
            }
            Error::Cancelled => f.write_str("the task was cancelled before it started"),
            Error::BrokenExecutor { cause } => match &**cause {
                Error::InitializerFailed { message } => write!(
                    f,
                    "the executor is broken because its initializer failed: {message}"
                ),
                other => write!(f, "the executor is broken: {other}"),
            },
            Error::NotHeld { operation } => {
                write!(f, "cannot {operation}: the caller does not hold the lock")
            }
            Error::ReleasedTooManyTimes => f.write_str("semaphore released too many times"),
            Error::BrokenBarrier => f.write_str("the barrier is broken"),
            Error::BarrierActionFailed { message } => {
                write!(f, "the barrier action failed: {message}")
            }
            Error::SharedMemory { detail } => {
                write!(f, "shared memory for synchronisation primitives: {detail}")
            }
            Error::TaskDoneTooManyTimes => f.write_str("task_done() called too many times"),
            Error::QueueEmpty => f.write_str("the queue is empty"),
            Error::QueueFull => f.write_str("the queue is full"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn(e) => Some(&**e),
            Error::BrokenExecutor { cause } => Some(&**cause),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Spawn(Arc::new(e))
    }
}
