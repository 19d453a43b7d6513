//! The errors of queue operations. A refused item travels back in the error, so nothing the
//! caller owned is lost.

use std::fmt;

use crate::Error;

/// Why a `put` did not add the item; the item comes back in the error.
///
/// Like crossbeam's `TrySendError`, one variant per reason, each holding the item. `Debug`
/// does not require `T: Debug` (the item is shown as `..`).
///
/// # Examples
///
/// ```
/// use freethreading::{PutError, Queue};
///
/// let queue = Queue::with_maxsize(1);
/// queue.put("first".to_owned()).unwrap();
/// match queue.try_put("second".to_owned()) {
///     Err(PutError::Full(item)) => assert_eq!(item, "second"),
///     other => panic!("expected a full queue, got {other:?}"),
/// }
/// ```
pub enum PutError<T> {
    /// The queue stayed full: at once for `try_put`, until the timeout for `put_timeout`.
    /// Python raises `queue.Full` here.
    Full(T),
    /// The item could not be stored, and the queue is unchanged: on the process backend its
    /// `Serialize` implementation failed (Python's multiprocessing queue would print the error
    /// and drop the item silently), or the shared memory could not hold it.
    Failed(T, Error),
}

impl<T> PutError<T> {
    /// The item that was not put.
    ///
    /// # Examples
    ///
    /// ```
    /// let error = freethreading::PutError::Full(7);
    /// assert_eq!(error.into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(item) | PutError::Failed(item, _) => item,
        }
    }

    /// Whether the queue was full (as opposed to the item being unstorable).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(freethreading::PutError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::Failed(_, error) => {
                f.debug_tuple("Failed").field(&"..").field(error).finish()
            }
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("the queue is full"),
            PutError::Failed(_, error) => {
                write!(f, "the item could not be put in the queue: {error}")
            }
        }
    }
}

impl<T> std::error::Error for PutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PutError::Full(_) => None,
            PutError::Failed(_, error) => Some(error),
        }
    }
}

impl<T> From<PutError<T>> for Error {
    /// Drops the item and keeps the reason, for `?` in functions that return [`Error`].
    fn from(error: PutError<T>) -> Error {
        match error {
            PutError::Full(_) => Error::QueueFull,
            PutError::Failed(_, error) => error,
        }
    }
}

/// Why a `get` returned no item.
///
/// # Examples
///
/// ```
/// use freethreading::{GetError, Queue};
///
/// let queue: Queue<u8> = Queue::new();
/// assert!(matches!(queue.try_get(), Err(GetError::Empty)));
/// ```
#[derive(Clone, Debug)]
pub enum GetError {
    /// The queue stayed empty: at once for `try_get`, until the timeout for `get_timeout`.
    /// Python raises `queue.Empty` here.
    Empty,
    /// The item at the head could not be decoded (process backend; only possible when a type's
    /// `Deserialize` does not accept what its `Serialize` wrote). The item is removed, so the
    /// queue stays usable.
    Failed(Error),
}

impl GetError {
    /// Whether the queue was empty.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(freethreading::GetError::Empty.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, GetError::Empty)
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("the queue is empty"),
            GetError::Failed(error) => {
                write!(f, "the item could not be taken from the queue: {error}")
            }
        }
    }
}

impl std::error::Error for GetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GetError::Empty => None,
            GetError::Failed(error) => Some(error),
        }
    }
}

impl From<GetError> for Error {
    /// Keeps the reason, for `?` in functions that return [`Error`].
    fn from(error: GetError) -> Error {
        match error {
            GetError::Empty => Error::QueueEmpty,
            GetError::Failed(error) => error,
        }
    }
}
