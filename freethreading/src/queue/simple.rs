//! [`SimpleQueue`]: Python's unbounded FIFO without task accounting.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::core::{Core, wait_for};
use super::error::{GetError, PutError};
use crate::shm::ring::Wait;
use crate::{Backend, Error};

const LABEL: &str = "SimpleQueue";

/// An unbounded FIFO queue shared by threads or processes: Python's `SimpleQueue`.
///
/// The same machinery as [`Queue`](crate::Queue) (a crossbeam channel on threads, a shared
/// ring between processes) without a bound and without `task_done`/`join`. `put` never waits
/// for consumers (Python's multiprocessing `SimpleQueue.put` blocks once about 64 KiB are
/// unread; this one holds 64 MiB of encoded items, and large items take their own memory).
///
/// # vs `std::sync::mpsc` and crossbeam-channel
///
/// Like an unbounded channel whose sender and receiver are one cloneable handle that never
/// disconnects, and that child processes can use too.
///
/// # Examples
///
/// ```
/// use freethreading::SimpleQueue;
///
/// let queue = SimpleQueue::new();
/// let sender = queue.clone();
/// std::thread::spawn(move || {
///     sender.put("hello".to_owned()).unwrap();
///     sender.put("world".to_owned()).unwrap();
/// })
/// .join()
/// .unwrap();
/// assert_eq!(queue.get().unwrap(), "hello");
/// assert_eq!(queue.get().unwrap(), "world");
/// assert!(queue.empty());
/// ```
pub struct SimpleQueue<T> {
    core: Core<T>,
}

impl<T: Serialize + DeserializeOwned + Send + 'static> SimpleQueue<T> {
    /// An empty queue on the backend in force.
    ///
    /// # Panics
    ///
    /// Panics if the backend cannot be determined or, on the process backend, the shared
    /// memory cannot be created (see [`try_new`](Self::try_new)).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::SimpleQueue::<u32>::new();
    /// assert!(queue.empty());
    /// ```
    pub fn new() -> SimpleQueue<T> {
        SimpleQueue::try_new().unwrap_or_else(|e| panic!("{e}"))
    }

    /// An empty queue, or why it cannot be created.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBackend`] for a bad `FREETHREADING_BACKEND`; on the process backend
    /// [`Error::SharedMemory`] when the arena cannot be created or is full, and
    /// [`Error::Unsupported`] off Linux.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::SimpleQueue::<u32>::try_new()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn try_new() -> Result<SimpleQueue<T>, Error> {
        Ok(SimpleQueue {
            core: Core::create(0, LABEL)?,
        })
    }

    /// Adds `item` at the end.
    ///
    /// # Errors
    ///
    /// [`PutError::Failed`] with the item when it cannot be stored (process backend: its
    /// `Serialize` failed, or the shared memory is full); the queue is unchanged then.
    /// [`PutError::Full`] only when a process-backend queue holds 64 MiB of unread items and
    /// stays so (it waits for consumers first). Never fails on the threading backend.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::SimpleQueue::new();
    /// queue.put(1.5).unwrap();
    /// assert!(!queue.empty());
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.core.put(item, Wait::Until(None))
    }

    /// Removes and returns the first item, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`GetError::Failed`] when the item cannot be decoded (process backend; only possible
    /// with a `Deserialize` that does not accept what its `Serialize` wrote). Never fails on
    /// the threading backend.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::SimpleQueue::new();
    /// queue.put('x').unwrap();
    /// assert_eq!(queue.get().unwrap(), 'x');
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
    /// let queue = freethreading::SimpleQueue::<()>::new();
    /// assert!(queue.get_timeout(std::time::Duration::from_millis(1)).is_err());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.core.get(wait_for(timeout))
    }

    /// Removes and returns the first item if there is one now.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] when the queue is empty; [`GetError::Failed`] as for
    /// [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::SimpleQueue::<u8>::new();
    /// assert!(queue.try_get().unwrap_err().is_empty());
    /// ```
    pub fn try_get(&self) -> Result<T, GetError> {
        self.core.get(Wait::No)
    }
}

impl<T> SimpleQueue<T> {
    /// Whether the queue holds no items (a snapshot when others are using it). Accurate right
    /// after a `put` in any process.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::SimpleQueue::new();
    /// queue.put(()).unwrap();
    /// assert!(!queue.empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.core.len() == 0
    }

    /// The backend the queue was created on (and works on).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = freethreading::SimpleQueue::<u8>::new();
    /// assert_eq!(queue.backend(), freethreading::get_backend());
    /// ```
    pub fn backend(&self) -> Backend {
        self.core.backend()
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Default for SimpleQueue<T> {
    fn default() -> SimpleQueue<T> {
        SimpleQueue::new()
    }
}

impl<T> Clone for SimpleQueue<T> {
    /// Another handle to the same queue.
    fn clone(&self) -> SimpleQueue<T> {
        SimpleQueue {
            core: self.core.clone(),
        }
    }
}

impl<T> std::fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.fmt(f)
    }
}

/// Serialises the handle, not the items (see [`Queue`](crate::Queue)'s implementation).
impl<T: Send + 'static> Serialize for SimpleQueue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(serializer)
    }
}

impl<'de, T: Send + 'static> Deserialize<'de> for SimpleQueue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SimpleQueue<T>, D::Error> {
        Core::deserialize(deserializer, LABEL).map(|core| SimpleQueue { core })
    }
}
