//! Synchronisation primitives that work the same between threads and between processes:
//! [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`], [`Condition`], [`Event`] and
//! [`Barrier`].
//!
//! Every primitive lives in the program's shared arena (see `shm`), whichever backend is in
//! force, so one implementation serves both: a primitive created on the threading backend is the
//! very same object as on the process backend, and any of them can be passed to a pool task as
//! an argument (Python refuses that; here it is how primitives reach child processes).
//! Serialising one sends an arena offset and a generation; the child maps the same memory.
//! Cloning gives another handle to the same primitive, as `Arc::clone` would.
//!
//! Blocking uses futexes on the shared words, after a short spin where a wake-up would cost
//! more than the wait.
//!
//! # Timeouts
//!
//! Every timeout is a [`Duration`](std::time::Duration), measured on the monotonic clock, and
//! means the same for every primitive: how long to wait at most. `Duration::ZERO` means "do not
//! wait". Python's inconsistency (a negative timeout waits forever for `Lock.acquire` but not
//! at all for `Semaphore.acquire`) cannot be expressed, so it is not reproduced: the untimed
//! methods wait forever, the `try_` methods never wait.
//!
//! # Owner death
//!
//! A process killed while holding a [`Lock`], an [`RLock`] or a semaphore permit does not leave
//! the others blocked: the next acquirer takes it over and is told so by
//! [`Acquired::OwnerDied`] (or the guard's `owner_died()`), like a robust POSIX mutex. A
//! [`Barrier`] breaks when a process that holds it dies. Waiters notice within tens of
//! milliseconds (they check the owner between sleeps).

mod barrier;
mod condition;
mod event;
mod lock;
mod rlock;
mod semaphore;

pub use barrier::{Barrier, BarrierBuilder};
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphorePermit};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::shm::arena::{Handle, Kind, RawHandle};

/// How an acquisition succeeded.
///
/// Returned by the Python-style `acquire` methods; the RAII guards report the same through
/// `owner_died()`.
///
/// # Owner death
///
/// A process killed while holding a [`Lock`], an [`RLock`] (or a thread that ends owning an
/// `RLock`) or a semaphore permit does not leave the others blocked: the next acquirer takes it
/// over and gets [`Acquired::OwnerDied`], like a robust POSIX mutex; the primitive stays
/// usable. Waiters notice within tens of milliseconds: they sleep in short slices and check
/// that the holder still exists. (A process id reused by an unrelated process before the check
/// would look alive; the kernel has to cycle through its whole pid space for that.)
///
/// # Timeouts
///
/// Every timeout in this crate's primitives is a [`Duration`](std::time::Duration) on the
/// monotonic clock and means the same everywhere: the longest time to wait; `Duration::ZERO`
/// does not wait. Python's inconsistency, where a negative timeout waits forever for
/// `Lock.acquire` but fails at once for `Semaphore.acquire`, cannot be expressed and is not
/// reproduced: the untimed methods wait forever, the `try_` methods never wait.
///
/// # Examples
///
/// ```
/// use freethreading::{Acquired, Lock};
///
/// let lock = Lock::new();
/// assert_eq!(lock.acquire(), Acquired::Normal);
/// lock.release()?;
/// # Ok::<(), freethreading::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Acquired {
    /// Acquired in the ordinary way.
    Normal,
    /// The previous holder was a process (or, for an `RLock`, a thread) that died without
    /// releasing; the caller now holds it. Whatever it protected may be half-updated: check
    /// or repair it before relying on it.
    OwnerDied,
}

impl Acquired {
    /// Whether the previous holder died without releasing.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(freethreading::Acquired::OwnerDied.owner_died());
    /// ```
    pub fn owner_died(self) -> bool {
        self == Acquired::OwnerDied
    }
}

/// Not public API: (objects alive in the shared arena, bytes of it ever handed out). Used by
/// the tests to prove that dropped primitives are reclaimed.
#[doc(hidden)]
pub fn __arena_usage() -> (u64, u64) {
    crate::shm::arena::usage()
}

fn serialize_handle<S: Serializer>(handle: &Handle, serializer: S) -> Result<S::Ok, S::Error> {
    handle.raw_for_transfer().serialize(serializer)
}

fn deserialize_handle<'de, D: Deserializer<'de>>(
    deserializer: D,
    kind: Kind,
) -> Result<Handle, D::Error> {
    let raw = RawHandle::deserialize(deserializer)?;
    Handle::adopt(raw, kind).map_err(crate::codec::custom_error)
}

/// Panics with the error's message: for constructors whose only failure is shared memory
/// that cannot be created, documented under `# Panics` with a `try_new` alternative.
fn or_panic<T>(result: Result<T, crate::Error>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}
