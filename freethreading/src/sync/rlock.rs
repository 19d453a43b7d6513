//! [`RLock`]: a reentrant lock owned by one worker (thread or process), like Python's `RLock`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::shm::arena::{Handle, Kind, State};
use crate::shm::futex;
use crate::shm::mutex::RawMutex;
use crate::shm::tid;
use crate::sync::{Acquired, deserialize_handle, or_panic, serialize_handle};

#[repr(C)]
pub(crate) struct RLockState {
    chain: AtomicU32,
    /// Owned by a kernel thread id, which names the thread and its process at once.
    mutex: RawMutex,
    /// Recursion depth; written only by the owner.
    count: AtomicU32,
}

// SAFETY: repr(C), atomics only, 12 bytes, chain word first.
unsafe impl State for RLockState {}

/// A lock that the worker holding it may acquire again: Python's `RLock`, usable across
/// processes.
///
/// The owner is one worker: a thread on the threading backend, a thread of a child process on
/// the process backend (identified by its kernel thread id, which also names its process).
/// Each [`acquire`](Self::acquire) by the owner adds a level, each [`release`](Self::release)
/// removes one; the lock is free again at zero. Recursion counts are per worker: another
/// thread or process waits, and cannot release it.
///
/// If the owning process (or thread) dies while holding it, the next acquirer gets it with
/// [`Acquired::OwnerDied`] and a recursion count of one.
///
/// # vs `std::sync::ReentrantLock`
///
/// `std::sync::ReentrantLock<T>` (unstable at the time of writing) owns data and hands out
/// shared references only; it works within one process. `RLock` protects no data of its own,
/// has Python's explicit acquire/release besides the guard, reports a release by a non-owner
/// as an error, and is shared with child processes.
///
/// # Examples
///
/// ```
/// use freethreading::RLock;
///
/// fn countdown(lock: &RLock, n: u32, out: &mut Vec<u32>) {
///     let _guard = lock.lock(); // re-entered at every level
///     if n > 0 {
///         out.push(n);
///         countdown(lock, n - 1, out);
///     }
/// }
///
/// let lock = RLock::new();
/// let mut out = Vec::new();
/// countdown(&lock, 3, &mut out);
/// assert_eq!(out, [3, 2, 1]);
/// assert!(lock.release().is_err()); // fully released already
/// ```
pub struct RLock {
    handle: Handle,
    state: &'static RLockState,
}

impl RLock {
    /// Creates an unlocked reentrant lock.
    ///
    /// # Panics
    ///
    /// Panics if the shared memory for primitives cannot be created (see [`try_new`](Self::try_new)).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::RLock::new();
    /// ```
    pub fn new() -> RLock {
        or_panic(RLock::try_new())
    }

    /// Creates an unlocked reentrant lock, or says why the shared memory is unavailable.
    ///
    /// # Errors
    ///
    /// [`Error::SharedMemory`] when the arena cannot be created or is full;
    /// [`Error::Unsupported`] off Linux.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::RLock::try_new()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn try_new() -> Result<RLock, Error> {
        Ok(RLock::from_handle(Handle::new(Kind::RLock)?))
    }

    fn from_handle(handle: Handle) -> RLock {
        let state = handle.state::<RLockState>();
        RLock { handle, state }
    }

    fn acquire_until(&self, deadline: Option<Instant>, wait: bool) -> Option<Acquired> {
        let me = tid();
        let state = self.state;
        if state.mutex.owner() == me {
            let count = state.count.load(Ordering::Relaxed);
            let count = count
                .checked_add(1)
                .unwrap_or_else(|| panic!("RLock recursion count overflow"));
            state.count.store(count, Ordering::Relaxed);
            return Some(Acquired::Normal);
        }
        let how = match state.mutex.try_lock_robust(me) {
            Some(how) => how,
            None if wait => state.mutex.lock(me, deadline)?,
            None => return None,
        };
        state.count.store(1, Ordering::Relaxed);
        Some(how)
    }

    /// Takes the lock, or one more level of it if the caller owns it already.
    ///
    /// # Panics
    ///
    /// Panics if the recursion count would exceed `u32::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::RLock::new();
    /// lock.acquire();
    /// lock.acquire(); // no deadlock: same owner
    /// lock.release()?;
    /// lock.release()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn acquire(&self) -> Acquired {
        match self.acquire_until(None, true) {
            Some(how) => how,
            None => unreachable!("an acquire without deadline cannot time out"),
        }
    }

    /// [`acquire`](Self::acquire) without waiting; `None` when another worker owns it.
    ///
    /// # Panics
    ///
    /// Panics if the recursion count would exceed `u32::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::RLock::new();
    /// assert!(lock.try_acquire().is_some());
    /// assert!(lock.try_acquire().is_some()); // reentrant
    /// ```
    pub fn try_acquire(&self) -> Option<Acquired> {
        self.acquire_until(None, false)
    }

    /// [`acquire`](Self::acquire) waiting at most `timeout`; `None` if another worker kept it.
    ///
    /// # Panics
    ///
    /// Panics if the recursion count would exceed `u32::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = freethreading::RLock::new();
    /// assert!(lock.acquire_timeout(Duration::from_millis(5)).is_some());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Acquired> {
        self.acquire_until(futex::deadline_after(timeout), true)
    }

    /// Removes one level; the lock is free when the last level goes.
    ///
    /// # Errors
    ///
    /// [`Error::NotHeld`] when the caller (this thread of this process) does not own the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::RLock::new();
    /// assert!(lock.release().is_err());
    /// lock.acquire();
    /// lock.release()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn release(&self) -> Result<(), Error> {
        let state = self.state;
        if state.mutex.owner() != tid() {
            return Err(Error::NotHeld {
                operation: "release an RLock this worker does not own",
            });
        }
        let count = state.count.load(Ordering::Relaxed).saturating_sub(1);
        state.count.store(count, Ordering::Relaxed);
        if count == 0 {
            state.mutex.unlock();
        }
        Ok(())
    }

    /// Whether the calling worker owns the lock.
    pub(crate) fn is_owned(&self) -> bool {
        self.state.mutex.owner() == tid()
    }

    /// Releases every level the caller holds, returning the count to restore later (for
    /// `Condition::wait`). The caller must own the lock.
    pub(crate) fn release_all(&self) -> u32 {
        let count = self.state.count.swap(0, Ordering::Relaxed);
        self.state.mutex.unlock();
        count
    }

    /// Re-acquires after [`release_all`](Self::release_all), restoring the depth.
    pub(crate) fn restore(&self, count: u32) -> Acquired {
        let how = self.acquire();
        self.state.count.store(count.max(1), Ordering::Relaxed);
        how
    }

    /// Waits for the lock (or re-enters it) and returns a guard that removes the level when
    /// dropped.
    ///
    /// # Panics
    ///
    /// Panics if the recursion count would exceed `u32::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::RLock::new();
    /// let outer = lock.lock();
    /// let inner = lock.lock();
    /// drop(inner);
    /// drop(outer);
    /// assert!(lock.release().is_err());
    /// ```
    pub fn lock(&self) -> RLockGuard<'_> {
        RLockGuard::new(self, self.acquire())
    }

    /// [`lock`](Self::lock) without waiting; `None` when another worker owns it.
    ///
    /// # Panics
    ///
    /// Panics if the recursion count would exceed `u32::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::RLock::new();
    /// assert!(lock.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<RLockGuard<'_>> {
        self.try_acquire().map(|how| RLockGuard::new(self, how))
    }

    /// [`lock`](Self::lock) waiting at most `timeout`; `None` if another worker kept it.
    ///
    /// # Panics
    ///
    /// Panics if the recursion count would exceed `u32::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = freethreading::RLock::new();
    /// assert!(lock.lock_timeout(Duration::from_millis(1)).is_some());
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_>> {
        self.acquire_timeout(timeout)
            .map(|how| RLockGuard::new(self, how))
    }
}

impl Default for RLock {
    fn default() -> RLock {
        RLock::new()
    }
}

impl Clone for RLock {
    fn clone(&self) -> RLock {
        RLock::from_handle(self.handle.clone())
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("handle", &self.handle)
            .field("owned_by_caller", &self.is_owned())
            .finish()
    }
}

impl Serialize for RLock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_handle(&self.handle, serializer)
    }
}

impl<'de> Deserialize<'de> for RLock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RLock, D::Error> {
        deserialize_handle(deserializer, Kind::RLock).map(RLock::from_handle)
    }
}

/// Holds one level of an [`RLock`]; removes it when dropped. Returned by [`RLock::lock`].
///
/// It cannot be sent to another thread: the level belongs to the thread that took it.
///
/// # Examples
///
/// ```
/// let lock = freethreading::RLock::new();
/// let guard = lock.lock();
/// assert!(!guard.owner_died());
/// ```
///
/// Moving the guard to another thread does not compile:
///
/// ```compile_fail
/// let lock = freethreading::RLock::new();
/// std::thread::scope(|s| {
///     let guard = lock.lock();
///     s.spawn(move || drop(guard));
/// });
/// ```
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    acquired: Acquired,
    _not_send: PhantomData<*const ()>,
}

impl<'a> RLockGuard<'a> {
    fn new(lock: &'a RLock, acquired: Acquired) -> Self {
        RLockGuard {
            lock,
            acquired,
            _not_send: PhantomData,
        }
    }

    /// Whether the lock was taken over from a worker that died owning it.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::RLock::new();
    /// assert!(!lock.lock().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        self.acquired.owner_died()
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("lock", &self.lock.handle)
            .field("acquired", &self.acquired)
            .finish()
    }
}
