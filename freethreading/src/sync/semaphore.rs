//! [`Semaphore`] and [`BoundedSemaphore`]: counters of permits, like Python's.
//!
//! # Accounting
//!
//! The value is not stored: it is `base − (permits held)`, where the permits each process holds
//! are kept in a per-process table. `acquire` adds one to the caller's entry; `release` takes
//! one from the caller's entry, or from any holder's entry when the caller holds none (as in
//! Python, any worker may release), or raises `base` when nobody holds one. Each step is one
//! store under the internal lock, so a process killed at any point leaves consistent books,
//! and the permits of a dead process are given back by clearing its entry.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::shm::arena::{Handle, Kind, State};
use crate::shm::mutex::RawMutex;
use crate::shm::table::Table;
use crate::shm::{LIVENESS_SLICE, alive, futex, pid};
use crate::sync::{Acquired, deserialize_handle, or_panic, serialize_handle};

#[repr(C)]
struct SemState {
    /// The per-process table of permits held.
    chain: AtomicU32,
    /// Internal lock (process-owned) around the bookkeeping.
    mutex: RawMutex,
    /// Permits when nobody holds any.
    base: AtomicU32,
    /// The initial value, the upper bound of a bounded semaphore.
    initial: AtomicU32,
    /// Bumped whenever permits may have become available; waiters sleep on it.
    seq: AtomicU32,
    /// Waiters that may be asleep on `seq`.
    sleepers: AtomicU32,
    /// Set when permits of a dead process were given back; the next acquirer reports it.
    died: AtomicU32,
}

// SAFETY: repr(C), atomics only, 28 bytes, chain word first.
unsafe impl State for SemState {}

/// What both semaphore types share.
struct Core {
    handle: Handle,
    state: &'static SemState,
    bounded: bool,
}

impl Core {
    fn new(value: u32, bounded: bool) -> Result<Core, Error> {
        let kind = if bounded {
            Kind::BoundedSemaphore
        } else {
            Kind::Semaphore
        };
        let handle = Handle::new(kind)?;
        let state = handle.state::<SemState>();
        state.base.store(value, Ordering::Relaxed);
        state.initial.store(value, Ordering::Relaxed);
        Ok(Core::from_handle(handle, bounded))
    }

    fn from_handle(handle: Handle, bounded: bool) -> Core {
        let state = handle.state::<SemState>();
        Core {
            handle,
            state,
            bounded,
        }
    }

    fn table(&self) -> Table<'static> {
        Table::new(self.handle.arena(), &self.state.chain)
    }

    fn held(&self) -> u32 {
        self.table().used().map(|e| e.a()).sum()
    }

    fn value(&self) -> u32 {
        let _g = self.state.mutex.internal();
        self.state
            .base
            .load(Ordering::Relaxed)
            .saturating_sub(self.held())
    }

    /// One attempt under the internal lock: takes a permit if there is one. Otherwise returns
    /// the wake-up sequence to sleep on and whether a holder is another process.
    fn try_take(&self) -> Result<Acquired, (u32, bool)> {
        let state = self.state;
        let _g = state.mutex.internal();
        let me = pid();
        let table = self.table();
        let held = self.held();
        if state.base.load(Ordering::Relaxed) > held {
            let entry = table
                .entry(me)
                .unwrap_or_else(|e| panic!("cannot record a semaphore permit: {e}"));
            entry.set_a(entry.a() + 1);
            return Ok(if state.died.swap(0, Ordering::Relaxed) == 1 {
                Acquired::OwnerDied
            } else {
                Acquired::Normal
            });
        }
        let foreign = table
            .used()
            .any(|e| e.a() > 0 && e.pid.load(Ordering::Relaxed) != me);
        state.sleepers.fetch_add(1, Ordering::SeqCst);
        Err((state.seq.load(Ordering::SeqCst), foreign))
    }

    /// Gives back the permits of holder processes that no longer exist.
    fn reclaim_dead(&self) {
        let state = self.state;
        let _g = state.mutex.internal();
        let me = pid();
        let mut freed = false;
        for entry in self.table().used() {
            let holder = entry.pid.load(Ordering::Relaxed);
            if holder != me && !alive(holder) {
                freed |= entry.a() > 0;
                entry.clear();
            }
        }
        if freed {
            state.died.store(1, Ordering::Relaxed);
            state.seq.fetch_add(1, Ordering::SeqCst);
            futex::wake(&state.seq, u32::MAX);
        }
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Option<Acquired> {
        let state = self.state;
        loop {
            let (seq, foreign) = match self.try_take() {
                Ok(how) => return Some(how),
                Err(wait) => wait,
            };
            let sleep = futex::sleep_for(deadline, foreign.then_some(LIVENESS_SLICE));
            let woken = match sleep {
                Ok(sleep) => futex::wait(&state.seq, seq, sleep),
                Err(()) => false,
            };
            state.sleepers.fetch_sub(1, Ordering::Relaxed);
            if !woken && foreign {
                self.reclaim_dead();
            }
            if sleep.is_err() {
                // One last look: a permit released at the deadline is still ours to take.
                return match self.try_take() {
                    Ok(how) => Some(how),
                    Err(_) => {
                        state.sleepers.fetch_sub(1, Ordering::Relaxed);
                        None
                    }
                };
            }
        }
    }

    fn try_acquire(&self) -> Option<Acquired> {
        match self.try_take() {
            Ok(how) => Some(how),
            Err((_, foreign)) => {
                self.state.sleepers.fetch_sub(1, Ordering::Relaxed);
                if !foreign {
                    return None;
                }
                self.reclaim_dead();
                match self.try_take() {
                    Ok(how) => Some(how),
                    Err(_) => {
                        self.state.sleepers.fetch_sub(1, Ordering::Relaxed);
                        None
                    }
                }
            }
        }
    }

    fn release(&self) -> Result<(), Error> {
        let state = self.state;
        {
            let _g = state.mutex.internal();
            let table = self.table();
            let base = state.base.load(Ordering::Relaxed);
            let held = self.held();
            let value = base.saturating_sub(held);
            if self.bounded && value >= state.initial.load(Ordering::Relaxed) {
                return Err(Error::ReleasedTooManyTimes);
            }
            let me = pid();
            let holder = table
                .find(me)
                .filter(|e| e.a() > 0)
                .or_else(|| table.used().find(|e| e.a() > 0));
            match holder {
                Some(entry) => {
                    entry.set_a(entry.a() - 1);
                    entry.tidy();
                }
                None => {
                    let base = base.checked_add(1).ok_or(Error::ReleasedTooManyTimes)?;
                    state.base.store(base, Ordering::Relaxed);
                }
            }
            state.seq.fetch_add(1, Ordering::SeqCst);
        }
        if state.sleepers.load(Ordering::SeqCst) > 0 {
            // Wake them all: one that timed out meanwhile must not swallow the only wake-up.
            futex::wake(&state.seq, u32::MAX);
        }
        Ok(())
    }
}

macro_rules! semaphore_type {
    (
        $(#[$doc:meta])*
        $name:ident, bounded = $bounded:expr, kind = $kind:expr, example = $example:literal
    ) => {
        $(#[$doc])*
        pub struct $name {
            core: Core,
        }

        impl $name {
            #[doc = concat!("Creates a ", stringify!($name), " with `value` permits.")]
            ///
            /// # Panics
            ///
            /// Panics if the shared memory for primitives cannot be created (see `try_new`).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = freethreading::", stringify!($name), "::new(2);")]
            /// assert!(sem.try_acquire().is_some());
            /// ```
            pub fn new(value: u32) -> $name {
                or_panic($name::try_new(value))
            }

            #[doc = concat!("Creates a ", stringify!($name), ", or says why the shared memory is unavailable.")]
            ///
            /// # Errors
            ///
            /// [`Error::SharedMemory`] when the arena cannot be created or is full;
            /// [`Error::Unsupported`] off Linux.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = freethreading::", stringify!($name), "::try_new(1)?;")]
            /// # Ok::<(), freethreading::Error>(())
            /// ```
            pub fn try_new(value: u32) -> Result<$name, Error> {
                Ok($name { core: Core::new(value, $bounded)? })
            }

            /// Waits for a permit and takes it.
            ///
            /// # Panics
            ///
            /// Panics if more processes hold permits at once than the shared memory can
            /// record (it is full).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = freethreading::", stringify!($name), "::new(1);")]
            /// sem.acquire();
            /// sem.release()?;
            /// # Ok::<(), freethreading::Error>(())
            /// ```
            pub fn acquire(&self) -> Acquired {
                match self.core.acquire_until(None) {
                    Some(how) => how,
                    None => unreachable!("an acquire without deadline cannot time out"),
                }
            }

            /// Takes a permit if one is free; never waits. Permits held by dead processes
            /// are reclaimed first.
            ///
            /// # Panics
            ///
            /// As [`acquire`](Self::acquire).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = freethreading::", stringify!($name), "::new(1);")]
            /// assert!(sem.try_acquire().is_some());
            /// assert!(sem.try_acquire().is_none());
            /// ```
            pub fn try_acquire(&self) -> Option<Acquired> {
                self.core.try_acquire()
            }

            /// Waits at most `timeout` for a permit; `None` if none came.
            ///
            /// # Panics
            ///
            /// As [`acquire`](Self::acquire).
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            ///
            #[doc = concat!("let sem = freethreading::", stringify!($name), "::new(0);")]
            /// assert!(sem.acquire_timeout(Duration::from_millis(2)).is_none());
            /// ```
            pub fn acquire_timeout(&self, timeout: Duration) -> Option<Acquired> {
                match self.core.try_acquire() {
                    Some(how) => Some(how),
                    None => self.core.acquire_until(futex::deadline_after(timeout)),
                }
            }

            /// Waits for a permit and returns a guard that gives it back when dropped.
            ///
            /// # Panics
            ///
            /// As [`acquire`](Self::acquire).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = freethreading::", stringify!($name), "::new(1);")]
            /// {
            ///     let _permit = sem.permit();
            ///     assert!(sem.try_acquire().is_none());
            /// }
            /// assert!(sem.try_acquire().is_some());
            /// ```
            pub fn permit(&self) -> SemaphorePermit<'_> {
                SemaphorePermit { core: &self.core, acquired: self.acquire() }
            }

            /// [`permit`](Self::permit) without waiting; `None` when no permit is free.
            ///
            /// # Panics
            ///
            /// As [`acquire`](Self::acquire).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = freethreading::", stringify!($name), "::new(0);")]
            /// assert!(sem.try_permit().is_none());
            /// ```
            pub fn try_permit(&self) -> Option<SemaphorePermit<'_>> {
                self.try_acquire().map(|acquired| SemaphorePermit { core: &self.core, acquired })
            }

            /// [`permit`](Self::permit) waiting at most `timeout`.
            ///
            /// # Panics
            ///
            /// As [`acquire`](Self::acquire).
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            ///
            #[doc = concat!("let sem = freethreading::", stringify!($name), "::new(1);")]
            /// assert!(sem.permit_timeout(Duration::from_millis(1)).is_some());
            /// ```
            pub fn permit_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
                self.acquire_timeout(timeout)
                    .map(|acquired| SemaphorePermit { core: &self.core, acquired })
            }

            /// The number of free permits right now (a snapshot).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let sem = freethreading::", stringify!($name), "::new(3);")]
            /// sem.acquire();
            /// assert_eq!(sem.value(), 2);
            /// ```
            pub fn value(&self) -> u32 {
                self.core.value()
            }

            #[doc = $example]
            pub fn release(&self) -> Result<(), Error> {
                self.core.release()
            }
        }

        impl Clone for $name {
            fn clone(&self) -> $name {
                $name { core: Core::from_handle(self.core.handle.clone(), $bounded) }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("handle", &self.core.handle)
                    .field("value", &self.value())
                    .finish()
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serialize_handle(&self.core.handle, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                deserialize_handle(deserializer, $kind)
                    .map(|handle| $name { core: Core::from_handle(handle, $bounded) })
            }
        }
    };
}

semaphore_type! {
    /// A counter of permits: Python's `Semaphore`, usable across processes.
    ///
    /// [`acquire`](Self::acquire) takes a permit, waiting while there is none;
    /// [`release`](Self::release) adds one, with no upper bound (any worker may release). A
    /// permit held by a process that is killed is given back, and the acquirer that gets it is
    /// told by [`Acquired::OwnerDied`].
    ///
    /// Python's `Semaphore(-1)` error cannot happen: the value is a `u32`. Python's negative
    /// timeout ("fail at once" here, "wait forever" for `Lock`) has no counterpart: timeouts
    /// are `Duration`s, the same for every primitive (see [`Acquired`]).
    ///
    /// # vs `std::sync`
    ///
    /// The standard library has no semaphore (a `Mutex<u32>` plus a `Condvar` is the usual
    /// stand-in). Unlike `tokio::sync::Semaphore` this one blocks the thread, and its permits
    /// are not tied to the guard: Python-style `release` from another worker is allowed.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::Semaphore;
    ///
    /// let sem = Semaphore::new(1);
    /// sem.acquire();
    /// sem.release()?;
    /// sem.release()?; // unbounded: the value is now 2
    /// assert_eq!(sem.value(), 2);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    Semaphore, bounded = false, kind = Kind::Semaphore,
    example = "Adds a permit and wakes a waiter.\n\n# Errors\n\n[`Error::ReleasedTooManyTimes`] only if the value would exceed `u32::MAX`.\n\n# Examples\n\n```\nlet sem = freethreading::Semaphore::new(0);\nsem.release()?;\nassert!(sem.try_acquire().is_some());\n# Ok::<(), freethreading::Error>(())\n```"
}

semaphore_type! {
    /// A [`Semaphore`] whose value may not go above its initial value: Python's
    /// `BoundedSemaphore`, usable across processes.
    ///
    /// Releasing more often than acquiring is a bug this type catches:
    /// [`release`](Self::release) then fails with [`Error::ReleasedTooManyTimes`] (Python raises
    /// `ValueError`).
    ///
    /// # vs `std::sync`
    ///
    /// As for [`Semaphore`]: no std counterpart; it blocks threads and processes alike.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{BoundedSemaphore, Error};
    ///
    /// let sem = BoundedSemaphore::new(1);
    /// sem.acquire();
    /// sem.release()?;
    /// assert!(matches!(sem.release(), Err(Error::ReleasedTooManyTimes)));
    /// # Ok::<(), Error>(())
    /// ```
    BoundedSemaphore, bounded = true, kind = Kind::BoundedSemaphore,
    example = "Adds a permit back and wakes a waiter.\n\n# Errors\n\n[`Error::ReleasedTooManyTimes`] when the value is already at its initial value.\n\n# Examples\n\n```\nlet sem = freethreading::BoundedSemaphore::new(1);\nassert!(sem.release().is_err());\n# Ok::<(), freethreading::Error>(())\n```"
}

/// A permit of a [`Semaphore`] or [`BoundedSemaphore`], given back when dropped.
///
/// # Examples
///
/// ```
/// let sem = freethreading::Semaphore::new(1);
/// let permit = sem.permit();
/// assert!(!permit.owner_died());
/// drop(permit);
/// assert_eq!(sem.value(), 1);
/// ```
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    core: &'a Core,
    acquired: Acquired,
}

impl SemaphorePermit<'_> {
    /// Whether this permit was reclaimed from a process that died holding it.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = freethreading::Semaphore::new(1);
    /// assert!(!sem.permit().owner_died());
    /// ```
    pub fn owner_died(&self) -> bool {
        self.acquired.owner_died()
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        let _ = self.core.release();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("semaphore", &self.core.handle)
            .field("acquired", &self.acquired)
            .finish()
    }
}
