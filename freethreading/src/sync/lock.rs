//! [`Lock`]: a mutual-exclusion lock without an owner, like Python's `Lock`.

use std::fmt;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::shm::arena::{Handle, Kind, State};
use crate::shm::futex;
use crate::shm::mutex::RawMutex;
use crate::shm::pid;
use crate::sync::{Acquired, deserialize_handle, or_panic, serialize_handle};

#[repr(C)]
pub(crate) struct LockState {
    chain: AtomicU32,
    /// Owned by a process id: any thread of the holding process may release it.
    pub(crate) mutex: RawMutex,
}

// SAFETY: repr(C), atomics only, 8 bytes, chain word first.
unsafe impl State for LockState {}

/// A lock that one worker (thread or process) holds at a time: Python's `threading.Lock` /
/// `multiprocessing.Lock`, usable across processes.
///
/// It has two interfaces: the RAII one ([`lock`](Self::lock) returns a guard that unlocks when
/// dropped), and Python's ([`acquire`](Self::acquire) / [`release`](Self::release)). As in
/// Python the lock has no owner thread: any worker may release it, and a second `acquire` by
/// the holder waits (it is not reentrant; see [`RLock`](crate::RLock)).
///
/// Cloning gives another handle to the same lock. A handle can be passed to a pool task as an
/// argument, on either backend.
///
/// If the *process* holding the lock is killed, the next acquirer gets it with
/// [`Acquired::OwnerDied`]. Timeouts are `Duration`s with one meaning for every primitive
/// (see [`Acquired`] for both rules).
///
/// # vs `std::sync::Mutex`
///
/// `std::sync::Mutex<T>` owns the data it protects, is unlocked only through its guard, and
/// works only between threads of one process. `Lock` protects no data of its own (it guards a
/// critical section, as in Python), can be released by any worker, and is shared with child
/// processes. Its uncontended acquire/release costs about the same as the std mutex's. A
/// thread dying while holding a `Lock` does not poison it; a process dying while holding it
/// is reported to the next acquirer instead.
///
/// # Examples
///
/// ```
/// use freethreading::Lock;
///
/// let lock = Lock::new();
/// {
///     let _guard = lock.lock();
///     assert!(lock.locked());
/// } // unlocked here
/// assert!(!lock.locked());
///
/// // Python style:
/// lock.acquire();
/// assert!(lock.try_acquire().is_none());
/// lock.release()?;
/// assert!(lock.release().is_err()); // not held any more
/// # Ok::<(), freethreading::Error>(())
/// ```
pub struct Lock {
    handle: Handle,
    state: &'static LockState,
}

impl Lock {
    /// Creates an unlocked lock.
    ///
    /// # Panics
    ///
    /// Panics if the shared memory for primitives cannot be created (see [`try_new`](Self::try_new)).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::Lock::new();
    /// assert!(!lock.locked());
    /// ```
    pub fn new() -> Lock {
        or_panic(Lock::try_new())
    }

    /// Creates an unlocked lock, or says why the shared memory is unavailable.
    ///
    /// # Errors
    ///
    /// [`Error::SharedMemory`] when the arena cannot be created or is full;
    /// [`Error::Unsupported`] off Linux.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::Lock::try_new()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn try_new() -> Result<Lock, Error> {
        Ok(Lock::from_handle(Handle::new(Kind::Lock)?))
    }

    fn from_handle(handle: Handle) -> Lock {
        let state = handle.state::<LockState>();
        Lock { handle, state }
    }

    pub(crate) fn raw(&self) -> &'static RawMutex {
        &self.state.mutex
    }

    /// Waits until the lock is free and takes it.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::Lock::new();
    /// let how = lock.acquire();
    /// assert!(!how.owner_died());
    /// lock.release()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    #[inline]
    pub fn acquire(&self) -> Acquired {
        match self.state.mutex.lock(pid(), None) {
            Some(how) => how,
            None => unreachable!("an acquire without deadline cannot time out"),
        }
    }

    /// Takes the lock if it is free (or its holder process is dead); never waits.
    ///
    /// `None` when another worker holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::Lock::new();
    /// assert!(lock.try_acquire().is_some());
    /// assert!(lock.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<Acquired> {
        self.state.mutex.try_lock_robust(pid())
    }

    /// Waits at most `timeout` for the lock; `None` if it stayed held.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = freethreading::Lock::new();
    /// let _held = lock.lock();
    /// assert!(lock.acquire_timeout(Duration::from_millis(5)).is_none());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Acquired> {
        if let Some(how) = self.try_acquire() {
            return Some(how);
        }
        self.state.mutex.lock(pid(), futex::deadline_after(timeout))
    }

    /// Releases the lock, whoever acquired it.
    ///
    /// # Errors
    ///
    /// [`Error::NotHeld`] when the lock is not locked.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::Lock::new();
    /// lock.acquire();
    /// lock.release()?;
    /// assert!(matches!(lock.release(), Err(freethreading::Error::NotHeld { .. })));
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    #[inline]
    pub fn release(&self) -> Result<(), Error> {
        if self.state.mutex.unlock() == 0 {
            return Err(Error::NotHeld {
                operation: "release an unlocked Lock",
            });
        }
        Ok(())
    }

    /// Whether some worker holds the lock right now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::Lock::new();
    /// assert!(!lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.state.mutex.owner() != 0
    }

    /// Waits for the lock and returns a guard that releases it when dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::Lock::new();
    /// let guard = lock.lock();
    /// assert!(!guard.owner_died());
    /// drop(guard);
    /// assert!(!lock.locked());
    /// ```
    #[inline]
    pub fn lock(&self) -> LockGuard<'_> {
        LockGuard {
            lock: self,
            acquired: self.acquire(),
        }
    }

    /// [`lock`](Self::lock) without waiting; `None` when held by another worker.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::Lock::new();
    /// let first = lock.try_lock();
    /// assert!(first.is_some());
    /// assert!(lock.try_lock().is_none());
    /// ```
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        self.try_acquire().map(|acquired| LockGuard {
            lock: self,
            acquired,
        })
    }

    /// [`lock`](Self::lock) waiting at most `timeout`; `None` if it stayed held.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = freethreading::Lock::new();
    /// assert!(lock.lock_timeout(Duration::from_millis(5)).is_some());
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<LockGuard<'_>> {
        self.acquire_timeout(timeout).map(|acquired| LockGuard {
            lock: self,
            acquired,
        })
    }
}

impl Default for Lock {
    fn default() -> Lock {
        Lock::new()
    }
}

impl Clone for Lock {
    fn clone(&self) -> Lock {
        Lock::from_handle(self.handle.clone())
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("handle", &self.handle)
            .field("locked", &self.locked())
            .finish()
    }
}

impl Serialize for Lock {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_handle(&self.handle, serializer)
    }
}

impl<'de> Deserialize<'de> for Lock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Lock, D::Error> {
        deserialize_handle(deserializer, Kind::Lock).map(Lock::from_handle)
    }
}

/// Holds a [`Lock`]; releases it when dropped. Returned by [`Lock::lock`].
///
/// # Examples
///
/// ```
/// let lock = freethreading::Lock::new();
/// let guard = lock.lock();
/// assert!(lock.locked());
/// drop(guard);
/// assert!(!lock.locked());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    acquired: Acquired,
}

impl LockGuard<'_> {
    /// Whether the lock was taken over from a process that died holding it.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = freethreading::Lock::new();
    /// assert!(!lock.lock().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        self.acquired.owner_died()
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // Another worker may have released it meanwhile (allowed for a Lock): nothing to do.
        let _ = self.lock.release();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", &self.lock.handle)
            .field("acquired", &self.acquired)
            .finish()
    }
}
