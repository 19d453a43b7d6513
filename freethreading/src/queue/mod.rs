//! [`Queue`] (FIFO, optionally bounded, joinable) and [`SimpleQueue`] (unbounded FIFO): how
//! workers pass data to each other, on threads or between processes.
//!
//! # Two flavors, one behaviour
//!
//! A queue takes the backend in force when it is created and keeps it:
//!
//! - **threading**: a crossbeam channel; items move between threads as they are, never
//!   encoded;
//! - **multiprocessing**: a ring of postcard-encoded items in the program's shared arena (see
//!   `shm::ring`), which every child maps. A child started before the queue was created can
//!   use it all the same, and so can a pool task that receives it as an argument.
//!
//! Both flavors have the same semantics: FIFO per queue, every item delivered exactly once,
//! `qsize` exact when nobody else is working on the queue, `join` waiting for `task_done`
//! across threads or processes.
//!
//! # Differences from Python
//!
//! - A `put` on the process backend encodes the item in the caller, before it returns: an item
//!   that cannot be encoded comes back in [`PutError::Failed`] and the queue is unchanged
//!   (Python's multiprocessing queue encodes later in a feeder thread, prints the error and
//!   drops the item). Right after `put` returns the item is visible to `get`, `qsize` and
//!   `empty`, in every process (no feeder lag).
//! - Timeouts are [`Duration`](std::time::Duration)s; `try_*` replaces `block=False`, so
//!   Python's negative-timeout divergence cannot arise.
//! - `qsize` works on every platform.
//!
//! # Crashes (process backend)
//!
//! A process killed in the middle of a queue operation never corrupts the queue or blocks the
//! other workers for long (they take over its internal lock within tens of milliseconds):
//!
//! - killed inside `put`: the item is either entirely in the queue or not at all; a
//!   half-written item is never visible;
//! - killed inside `get`: if it had not yet removed the item, the item stays at the head of
//!   the queue and the next `get` returns it; once removed (the last step before `get`
//!   returns), the item went with the process;
//! - killed between `get` and `task_done`: the item stays unfinished, so `join` waits for it
//!   (as in Python); [`Queue::join_timeout`] bounds that wait.

mod core;
mod error;
mod local;
mod simple;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use self::core::{Core, wait_for};
pub use self::error::{GetError, PutError};
pub use self::simple::SimpleQueue;
use crate::shm::ring::Wait;
use crate::{Backend, Error};

const LABEL: &str = "Queue";

/// A FIFO queue shared by threads or processes, optionally bounded, with `task_done`/`join`:
/// Python's `Queue` (`queue.Queue` / `multiprocessing.JoinableQueue`).
///
/// Clone it to hand it to another thread; pass it as a [`Worker`](crate::Worker) or pool task
/// argument to hand it to another worker, on either backend. All clones are the same queue.
///
/// On the threading backend items move as they are; on the process backend they are encoded
/// with serde (postcard) into shared memory, which is why `T` must be `Serialize +
/// DeserializeOwned` on both backends (the bounds are checked at compile time, the same for
/// both, so switching the backend never breaks the build). See the module documentation for
/// the crash semantics.
///
/// # vs `std::sync::mpsc` and crossbeam-channel
///
/// A channel splits sending and receiving into two handle types and disconnects when one side
/// is gone; a `Queue` is one handle that does both, never disconnects, counts unfinished tasks
/// for [`join`](Self::join), and crosses process boundaries. Within one process its threading
/// flavor *is* a crossbeam channel, with the same cost per item.
///
/// # Examples
///
/// ```
/// use freethreading::Queue;
///
/// let queue = Queue::new();
/// let consumer = {
///     let queue = queue.clone();
///     std::thread::spawn(move || {
///         let mut total = 0;
///         while let Some(n) = queue.get().unwrap() {
///             total += n;
///             queue.task_done().unwrap();
///         }
///         queue.task_done().unwrap(); // for the `None`
///         total
///     })
/// };
/// for n in 1..=4 {
///     queue.put(Some(n)).unwrap();
/// }
/// queue.put(None).unwrap();
/// queue.join(); // every item was marked done
/// assert_eq!(consumer.join().unwrap(), 10);
/// ```
///
/// Items must own their data, since on the process backend they are decoded in another
/// process; a borrowed item does not compile (on either backend):
///
/// ```compile_fail
/// let queue = freethreading::Queue::new();
/// let text = String::from("borrowed");
/// queue.put(text.as_str()).unwrap();
/// ```
pub struct Queue<T> {
    core: Core<T>,
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Queue<T> {
    /// An unbounded queue on the backend in force.
    ///
    /// # Panics
    ///
    /// Panics if the backend cannot be determined or, on the process backend, the shared
    /// memory cannot be created (see [`try_with_maxsize`](Self::try_with_maxsize)).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue: freethreading::Queue<String> = freethreading::Queue::new();
    /// assert!(queue.empty());
    /// ```
    pub fn new() -> Queue<T> {
        Queue::with_maxsize(0)
    }

    /// A queue that holds at most `maxsize` items (`put` blocks while it is full); `0` means
    /// unbounded, as Python's `maxsize <= 0`.
    ///
    /// On the process backend the ring also has a byte capacity (64 MiB of encoded items;
    /// items above 16 KiB take their own block and only a few bytes of the ring), so an
    /// unbounded queue that consumers never drain eventually makes `put` wait too.
    ///
    /// # Panics
    ///
    /// As [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::with_maxsize(2);
    /// queue.put(1).unwrap();
    /// queue.put(2).unwrap();
    /// assert!(queue.full());
    /// assert!(queue.try_put(3).is_err());
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Queue<T> {
        Queue::try_with_maxsize(maxsize).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`with_maxsize`](Self::with_maxsize), or says why the queue cannot be created.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBackend`] for a bad `FREETHREADING_BACKEND`; on the process backend
    /// [`Error::SharedMemory`] when the arena cannot be created or is full,
    /// [`Error::InvalidArgument`] for a `maxsize` above `u32::MAX`, and
    /// [`Error::Unsupported`] off Linux.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::<u64>::try_with_maxsize(10)?;
    /// assert_eq!(queue.maxsize(), 10);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn try_with_maxsize(maxsize: usize) -> Result<Queue<T>, Error> {
        Ok(Queue {
            core: Core::create(maxsize, LABEL)?,
        })
    }

    /// Adds `item` at the end, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`PutError::Failed`] with the item when it cannot be stored (process backend: its
    /// `Serialize` failed, or the shared memory is full); the queue is unchanged then. Never
    /// fails on the threading backend.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::new();
    /// queue.put("hello".to_owned()).unwrap();
    /// assert_eq!(queue.get().unwrap(), "hello");
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.core.put(item, Wait::Until(None))
    }

    /// Adds `item` at the end, waiting at most `timeout` while the queue is full.
    ///
    /// # Errors
    ///
    /// [`PutError::Full`] with the item when the queue stayed full; [`PutError::Failed`] as
    /// for [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let queue = freethreading::Queue::with_maxsize(1);
    /// queue.put(1).unwrap();
    /// let refused = queue.put_timeout(2, Duration::from_millis(5)).unwrap_err();
    /// assert_eq!(refused.into_inner(), 2);
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.core.put(item, wait_for(timeout))
    }

    /// Adds `item` at the end if there is room now (Python's `put_nowait`).
    ///
    /// # Errors
    ///
    /// [`PutError::Full`] with the item when the queue is full; [`PutError::Failed`] as for
    /// [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::with_maxsize(1);
    /// assert!(queue.try_put('a').is_ok());
    /// assert!(queue.try_put('b').unwrap_err().is_full());
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.core.put(item, Wait::No)
    }

    /// Removes and returns the first item, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`GetError::Failed`] when the item cannot be decoded (process backend; only possible
    /// with a `Deserialize` that does not accept what its `Serialize` wrote); the item is
    /// removed all the same. Never fails on the threading backend.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::new();
    /// queue.put(vec![1, 2]).unwrap();
    /// assert_eq!(queue.get().unwrap(), vec![1, 2]);
    /// ```
    pub fn get(&self) -> Result<T, GetError> {
        self.core.get(Wait::Until(None))
    }

    /// Removes and returns the first item, waiting at most `timeout` while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] when the queue stayed empty; [`GetError::Failed`] as for
    /// [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let queue = freethreading::Queue::<u8>::new();
    /// assert!(queue.get_timeout(Duration::from_millis(5)).unwrap_err().is_empty());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.core.get(wait_for(timeout))
    }

    /// Removes and returns the first item if there is one now (Python's `get_nowait`).
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] when the queue is empty; [`GetError::Failed`] as for
    /// [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::new();
    /// assert!(queue.try_get().is_err());
    /// queue.put(3).unwrap();
    /// assert_eq!(queue.try_get().unwrap(), 3);
    /// ```
    pub fn try_get(&self) -> Result<T, GetError> {
        self.core.get(Wait::No)
    }
}

impl<T> Queue<T> {
    /// The number of items in the queue (exact when nobody else is using it, a snapshot
    /// otherwise). Works on every platform, unlike Python's on macOS.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::new();
    /// queue.put(1).unwrap();
    /// queue.put(2).unwrap();
    /// assert_eq!(queue.qsize(), 2);
    /// ```
    pub fn qsize(&self) -> usize {
        self.core.len()
    }

    /// Whether the queue holds no items (a snapshot, like [`qsize`](Self::qsize)).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::<()>::new();
    /// assert!(queue.empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether a bounded queue holds `maxsize` items; always `false` when unbounded.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::with_maxsize(1);
    /// assert!(!queue.full());
    /// queue.put(0).unwrap();
    /// assert!(queue.full());
    /// ```
    pub fn full(&self) -> bool {
        let maxsize = self.core.maxsize();
        maxsize > 0 && self.qsize() >= maxsize
    }

    /// The bound given at creation, `0` for unbounded.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(freethreading::Queue::<u8>::new().maxsize(), 0);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.core.maxsize()
    }

    /// Marks one item as processed, for [`join`](Self::join). Each `get` of a task is
    /// usually followed by one `task_done` once the task is finished.
    ///
    /// # Errors
    ///
    /// [`Error::TaskDoneTooManyTimes`] when every item put was already marked done (Python's
    /// `ValueError`); nothing is counted then.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::new();
    /// queue.put(1).unwrap();
    /// queue.get().unwrap();
    /// queue.task_done()?;
    /// assert!(queue.task_done().is_err());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn task_done(&self) -> Result<(), Error> {
        self.core.task_done()
    }

    /// Waits until every item ever put has been marked done with
    /// [`task_done`](Self::task_done), by any thread or process. Returns at once on a fresh
    /// queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::<u8>::new();
    /// queue.join(); // nothing was put
    /// ```
    pub fn join(&self) {
        self.core.join(None);
    }

    /// Like [`join`](Self::join), waiting at most `timeout`; whether every item was done.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let queue = freethreading::Queue::new();
    /// queue.put(1).unwrap();
    /// assert!(!queue.join_timeout(Duration::from_millis(5)));
    /// queue.task_done().unwrap();
    /// assert!(queue.join_timeout(Duration::ZERO));
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.core.join(crate::shm::futex::deadline_after(timeout))
    }

    /// Items put and not yet marked done.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::new();
    /// queue.put(1).unwrap();
    /// assert_eq!(queue.unfinished_tasks(), 1);
    /// ```
    pub fn unfinished_tasks(&self) -> u64 {
        self.core.unfinished()
    }

    /// The backend the queue was created on (and works on).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::Queue::<u8>::new();
    /// assert_eq!(queue.backend(), freethreading::get_backend());
    /// ```
    pub fn backend(&self) -> Backend {
        self.core.backend()
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue::new()
    }
}

impl<T> Clone for Queue<T> {
    /// Another handle to the same queue.
    fn clone(&self) -> Queue<T> {
        Queue {
            core: self.core.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.fmt(f)
    }
}

/// Serialises the handle, not the items: a process-backend queue as its place in the shared
/// arena, a threading-backend queue as an id that only this process can decode.
impl<T: Send + 'static> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(serializer)
    }
}

impl<'de, T: Send + 'static> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Queue<T>, D::Error> {
        Core::deserialize(deserializer, LABEL).map(|core| Queue { core })
    }
}

/// Not public API: makes this process kill itself inside its next `get` on a process-backend
/// queue, after decoding the item and before removing it. For the crash tests.
#[doc(hidden)]
pub fn __queue_die_in_next_get() {
    crate::shm::ring::die_in_next_get();
}

/// Not public API: makes this process kill itself inside its next `put` on a process-backend
/// queue, with half of the item written and nothing published. For the crash tests.
#[doc(hidden)]
pub fn __queue_die_in_next_put() {
    crate::shm::ring::die_in_next_put();
}

/// Not public API: (blocks alive in the shared arena, bytes ever handed out as blocks), so the
/// tests can check that queues and large items give their memory back.
#[doc(hidden)]
pub fn __arena_block_usage() -> (u64, u64) {
    crate::shm::arena::block_usage()
}
