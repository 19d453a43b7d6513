//! [`Condition`]: a condition variable over a [`Lock`] or [`RLock`], like Python's `Condition`.
//!
//! # Waiters
//!
//! As in CPython, every wait has its own wake-up word: a waiter allocates a small node in the
//! arena, appends it to the condition's FIFO list, releases the lock and sleeps on the node.
//! `notify(n)` pops up to `n` nodes, marks them and wakes each. Everything touching the list
//! happens while holding the condition's lock, so the list needs no atomics of its own beyond
//! the shared-memory words it is made of. A waiter that times out re-takes the lock and either
//! finds its node marked (it was notified after all) or unlinks it.
//!
//! Nodes of waiters whose process has died are dropped by `notify` without counting them, so
//! a dead waiter never swallows a notification.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::shm::arena::{Arena, Handle, Kind, RawHandle, State};
use crate::shm::{alive, futex, pid};
use crate::sync::{Acquired, Lock, RLock, or_panic};

#[repr(C)]
struct CondState {
    chain: AtomicU32,
    head: AtomicU32,
    tail: AtomicU32,
}

// SAFETY: repr(C), atomics only, 12 bytes, chain word first.
unsafe impl State for CondState {}

#[repr(C)]
struct WaiterState {
    chain: AtomicU32,
    /// 0 while waiting, 1 once notified; the waiter sleeps on it.
    word: AtomicU32,
    pid: AtomicU32,
    prev: AtomicU32,
    next: AtomicU32,
}

// SAFETY: repr(C), atomics only, 20 bytes, chain word first.
unsafe impl State for WaiterState {}

/// The lock a condition is built on.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum CondLock {
    Lock(Lock),
    RLock(RLock),
}

/// A condition variable: workers wait on it until another one notifies them, all under one
/// lock. Python's `Condition`, usable across processes.
///
/// It is built on a [`Lock`] or an [`RLock`] of this crate ([`with_lock`](Self::with_lock),
/// [`with_rlock`](Self::with_rlock)), or on a new `RLock` of its own ([`new`](Self::new)). The
/// condition's own `acquire`/`release`/[`lock`](Self::lock) act on that lock. [`wait`](Self::wait)
/// releases it (every level of an `RLock`), sleeps until notified, and takes it back;
/// [`notify`](Self::notify) wakes up to `n` waiters in the order they started waiting.
/// Waiting or notifying without holding the lock is an [`Error::NotHeld`]. With a plain
/// `Lock`, which has no owner thread, "holding" means the lock is held by this process.
///
/// Spurious wake-ups do not happen (`wait` returns only when notified or timed out), but, as
/// with every condition variable, the state may have changed again before the waiter runs:
/// prefer [`wait_for`](Self::wait_for) with a predicate.
///
/// # vs `std::sync::Condvar`
///
/// A `Condvar` is paired with a `Mutex` at each call and consumes the guard; spurious wake-ups
/// are allowed. `Condition` owns its lock, is used Python-style through `&self`, wakes
/// waiters in FIFO order without spurious wake-ups, supports `notify(n)`, and works across
/// processes.
///
/// # Examples
///
/// ```
/// use freethreading::Condition;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let cond = Condition::new();
/// let ready = Arc::new(AtomicBool::new(false));
/// let (c, r) = (cond.clone(), ready.clone());
/// let producer = std::thread::spawn(move || {
///     let _guard = c.lock();
///     r.store(true, Ordering::SeqCst);
///     c.notify_all().unwrap();
/// });
/// {
///     let _guard = cond.lock();
///     cond.wait_for(|| ready.load(Ordering::SeqCst))?;
/// }
/// producer.join().unwrap();
/// # Ok::<(), freethreading::Error>(())
/// ```
pub struct Condition {
    handle: Handle,
    state: &'static CondState,
    lock: CondLock,
}

impl Condition {
    /// Creates a condition with a new [`RLock`] of its own.
    ///
    /// # Panics
    ///
    /// Panics if the shared memory for primitives cannot be created (see [`try_new`](Self::try_new)).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::new();
    /// let _guard = cond.lock();
    /// cond.notify(1)?; // nobody waits: fine
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn new() -> Condition {
        or_panic(Condition::try_new())
    }

    /// [`new`](Self::new) that reports shared-memory failures instead of panicking.
    ///
    /// # Errors
    ///
    /// [`Error::SharedMemory`] when the arena cannot be created or is full;
    /// [`Error::Unsupported`] off Linux.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::try_new()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn try_new() -> Result<Condition, Error> {
        Condition::build(CondLock::RLock(RLock::try_new()?))
    }

    /// Creates a condition over `lock` (the condition keeps a handle to it).
    ///
    /// # Panics
    ///
    /// Panics if the shared memory is full.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Condition, Lock};
    ///
    /// let lock = Lock::new();
    /// let cond = Condition::with_lock(lock.clone());
    /// let _guard = cond.lock();
    /// assert!(lock.locked());
    /// ```
    pub fn with_lock(lock: Lock) -> Condition {
        or_panic(Condition::build(CondLock::Lock(lock)))
    }

    /// Creates a condition over `lock` (the condition keeps a handle to it).
    ///
    /// # Panics
    ///
    /// Panics if the shared memory is full.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Condition, RLock};
    ///
    /// let cond = Condition::with_rlock(RLock::new());
    /// let _outer = cond.lock();
    /// let _inner = cond.lock(); // reentrant
    /// ```
    pub fn with_rlock(lock: RLock) -> Condition {
        or_panic(Condition::build(CondLock::RLock(lock)))
    }

    fn build(lock: CondLock) -> Result<Condition, Error> {
        Ok(Condition::from_parts(Handle::new(Kind::Condition)?, lock))
    }

    fn from_parts(handle: Handle, lock: CondLock) -> Condition {
        let state = handle.state::<CondState>();
        Condition {
            handle,
            state,
            lock,
        }
    }

    fn arena(&self) -> &'static Arena {
        self.handle.arena()
    }

    /// Takes the underlying lock, waiting as long as needed.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::new();
    /// cond.acquire();
    /// cond.release()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn acquire(&self) -> Acquired {
        match &self.lock {
            CondLock::Lock(lock) => lock.acquire(),
            CondLock::RLock(lock) => lock.acquire(),
        }
    }

    /// Takes the underlying lock if it is free; never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::with_lock(freethreading::Lock::new());
    /// assert!(cond.try_acquire().is_some());
    /// assert!(cond.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<Acquired> {
        match &self.lock {
            CondLock::Lock(lock) => lock.try_acquire(),
            CondLock::RLock(lock) => lock.try_acquire(),
        }
    }

    /// Takes the underlying lock, waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::new();
    /// assert!(cond.acquire_timeout(std::time::Duration::from_millis(1)).is_some());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Acquired> {
        match &self.lock {
            CondLock::Lock(lock) => lock.acquire_timeout(timeout),
            CondLock::RLock(lock) => lock.acquire_timeout(timeout),
        }
    }

    /// Releases the underlying lock (one level of an `RLock`).
    ///
    /// # Errors
    ///
    /// [`Error::NotHeld`] as for [`Lock::release`] or [`RLock::release`].
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::new();
    /// assert!(cond.release().is_err());
    /// ```
    pub fn release(&self) -> Result<(), Error> {
        match &self.lock {
            CondLock::Lock(lock) => lock.release(),
            CondLock::RLock(lock) => lock.release(),
        }
    }

    /// Takes the underlying lock and returns a guard that releases it when dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::new();
    /// let guard = cond.lock();
    /// assert!(!guard.owner_died());
    /// ```
    pub fn lock(&self) -> ConditionGuard<'_> {
        ConditionGuard {
            cond: self,
            acquired: self.acquire(),
            _not_send: PhantomData,
        }
    }

    /// [`lock`](Self::lock) without waiting; `None` when another worker holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::new();
    /// assert!(cond.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<ConditionGuard<'_>> {
        self.try_acquire().map(|acquired| ConditionGuard {
            cond: self,
            acquired,
            _not_send: PhantomData,
        })
    }

    /// [`lock`](Self::lock) waiting at most `timeout`; `None` if the lock stayed held.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::new();
    /// assert!(cond.lock_timeout(std::time::Duration::from_millis(1)).is_some());
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<ConditionGuard<'_>> {
        self.acquire_timeout(timeout)
            .map(|acquired| ConditionGuard {
                cond: self,
                acquired,
                _not_send: PhantomData,
            })
    }

    fn check_held(&self, operation: &'static str) -> Result<(), Error> {
        let held = match &self.lock {
            CondLock::Lock(lock) => lock.raw().owner() == pid(),
            CondLock::RLock(lock) => lock.is_owned(),
        };
        if held {
            Ok(())
        } else {
            Err(Error::NotHeld { operation })
        }
    }

    /// Releases the lock, waits until notified, and takes the lock back.
    ///
    /// The lock is taken back however long that takes (as in Python), at the same recursion
    /// depth for an `RLock`. If its holder died meanwhile, it is taken over silently: the wait
    /// has no way to report [`Acquired::OwnerDied`].
    ///
    /// # Errors
    ///
    /// [`Error::NotHeld`] when the caller does not hold the lock;
    /// [`Error::SharedMemory`] when the shared memory is full.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::new();
    /// assert!(cond.wait().is_err()); // the lock is not held
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_until(None).map(drop)
    }

    /// [`wait`](Self::wait) for at most `timeout`; returns whether it was notified.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = freethreading::Condition::new();
    /// let _guard = cond.lock();
    /// assert!(!cond.wait_timeout(Duration::from_millis(2))?);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        self.wait_until(futex::deadline_after(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        self.check_held("wait on a Condition")?;
        let arena = self.arena();
        let (off, _) = arena.alloc(Kind::Waiter)?;
        let node: &WaiterState = arena.slot(off).state();
        node.pid.store(pid(), Ordering::Relaxed);
        self.push(off, node);
        let saved = match &self.lock {
            CondLock::Lock(lock) => {
                lock.raw().unlock();
                0
            }
            CondLock::RLock(lock) => lock.release_all(),
        };
        let mut notified = false;
        loop {
            if node.word.load(Ordering::Acquire) == 1 {
                notified = true;
                break;
            }
            match futex::sleep_for(deadline, None) {
                Ok(sleep) => {
                    futex::wait(&node.word, 0, sleep);
                }
                Err(()) => break,
            }
        }
        match &self.lock {
            CondLock::Lock(lock) => drop(lock.acquire()),
            CondLock::RLock(lock) => drop(lock.restore(saved)),
        }
        if !notified {
            // Notified while re-taking the lock? Then it has been unlinked already.
            notified = node.word.load(Ordering::Acquire) == 1;
            if !notified {
                self.unlink(node);
            }
        }
        // The node has a single owner (this wait), so it is freed directly.
        arena.free(off);
        Ok(notified)
    }

    fn node(&self, off: u32) -> &'static WaiterState {
        let slot: &'static crate::shm::arena::Slot = self.arena().slot(off);
        slot.state()
    }

    fn push(&self, off: u32, node: &WaiterState) {
        let tail = self.state.tail.load(Ordering::Relaxed);
        node.prev.store(tail, Ordering::Relaxed);
        node.next.store(0, Ordering::Relaxed);
        if tail == 0 {
            self.state.head.store(off, Ordering::Relaxed);
        } else {
            self.node(tail).next.store(off, Ordering::Relaxed);
        }
        self.state.tail.store(off, Ordering::Relaxed);
    }

    fn unlink(&self, node: &WaiterState) {
        let prev = node.prev.load(Ordering::Relaxed);
        let next = node.next.load(Ordering::Relaxed);
        if prev == 0 {
            self.state.head.store(next, Ordering::Relaxed);
        } else {
            self.node(prev).next.store(next, Ordering::Relaxed);
        }
        if next == 0 {
            self.state.tail.store(prev, Ordering::Relaxed);
        } else {
            self.node(next).prev.store(prev, Ordering::Relaxed);
        }
    }

    /// Waits until `predicate()` is true, re-checking after each notification. Returns at
    /// once if it already is.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::new();
    /// let _guard = cond.lock();
    /// cond.wait_for(|| true)?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn wait_for(&self, mut predicate: impl FnMut() -> bool) -> Result<(), Error> {
        while !predicate() {
            self.wait()?;
        }
        Ok(())
    }

    /// [`wait_for`](Self::wait_for) for at most `timeout`; returns the predicate's last value.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = freethreading::Condition::new();
    /// let _guard = cond.lock();
    /// assert!(!cond.wait_for_timeout(Duration::from_millis(2), || false)?);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn wait_for_timeout(
        &self,
        timeout: Duration,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<bool, Error> {
        let deadline = futex::deadline_after(timeout);
        loop {
            if predicate() {
                return Ok(true);
            }
            let left = futex::remaining(deadline);
            if left.is_some_and(|left| left.is_zero()) {
                self.check_held("wait on a Condition")?;
                return Ok(false);
            }
            self.wait_until(deadline)?;
        }
    }

    /// Wakes up to `n` waiters, oldest first. Waking nobody (`n == 0`, or no waiter) is fine.
    ///
    /// # Errors
    ///
    /// [`Error::NotHeld`] when the caller does not hold the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::new();
    /// assert!(cond.notify(1).is_err()); // the lock is not held
    /// let _guard = cond.lock();
    /// cond.notify(3)?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn notify(&self, n: usize) -> Result<(), Error> {
        self.check_held("notify a Condition")?;
        let me = pid();
        let mut woken = 0;
        let mut off = self.state.head.load(Ordering::Relaxed);
        while woken < n && off != 0 {
            let node = self.node(off);
            let next = node.next.load(Ordering::Relaxed);
            self.unlink(node);
            let waiter = node.pid.load(Ordering::Relaxed);
            if waiter != me && !alive(waiter) {
                // A dead waiter never frees its node: do it here, and do not count it.
                self.arena().free(off);
            } else {
                node.word.store(1, Ordering::Release);
                futex::wake(&node.word, 1);
                woken += 1;
            }
            off = next;
        }
        Ok(())
    }

    /// Wakes every waiter.
    ///
    /// # Errors
    ///
    /// [`Error::NotHeld`] when the caller does not hold the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::new();
    /// let _guard = cond.lock();
    /// cond.notify_all()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn notify_all(&self) -> Result<(), Error> {
        self.notify(usize::MAX)
    }
}

impl Default for Condition {
    fn default() -> Condition {
        Condition::new()
    }
}

impl Clone for Condition {
    fn clone(&self) -> Condition {
        Condition::from_parts(self.handle.clone(), self.lock.clone())
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("handle", &self.handle)
            .field("lock", &self.lock)
            .finish()
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.handle.raw_for_transfer(), &self.lock).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Condition, D::Error> {
        let (raw, lock) = <(RawHandle, CondLock)>::deserialize(deserializer)?;
        let handle = Handle::adopt(raw, Kind::Condition).map_err(crate::codec::custom_error)?;
        Ok(Condition::from_parts(handle, lock))
    }
}

/// Holds a [`Condition`]'s lock; releases it when dropped. Returned by [`Condition::lock`].
///
/// # Examples
///
/// ```
/// let cond = freethreading::Condition::new();
/// let guard = cond.lock();
/// cond.notify_all()?;
/// drop(guard);
/// # Ok::<(), freethreading::Error>(())
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    acquired: Acquired,
    _not_send: PhantomData<*const ()>,
}

impl ConditionGuard<'_> {
    /// Whether the lock was taken over from a worker that died holding it.
    ///
    /// # Examples
    ///
    /// ```
    /// let cond = freethreading::Condition::new();
    /// assert!(!cond.lock().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        self.acquired.owner_died()
    }
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        let _ = self.cond.release();
    }
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard")
            .field("condition", &self.cond.handle)
            .field("acquired", &self.acquired)
            .finish()
    }
}
