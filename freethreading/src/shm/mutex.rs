//! A robust mutex on one shared 32-bit word, recoverable when its owner dies.
//!
//! The word is `0` when free, otherwise the owner's kernel id (a process id or a thread id,
//! as the user chooses) with [`WAITERS`] set when someone may be asleep on it. Locking is one
//! compare-and-swap `0 → id`; unlocking is one swap to `0`, plus a futex wake only when the
//! waiters bit was set.
//!
//! A waiter whose owner is another process or thread sleeps in [`LIVENESS_SLICE`] slices and
//! checks the owner with [`alive`]. If the owner is gone it swaps its own id in, in one
//! compare-and-swap against the word it saw, so among several waiters exactly one takes over,
//! and that one learns it from [`Acquired::OwnerDied`].
//!
//! # Memory ordering
//!
//! Acquire on every successful lock (including a take-over), release on unlock: the usual
//! mutex pairing, so whatever the previous owner wrote is visible to the next one.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use crate::shm::{LIVENESS_SLICE, alive, futex, pid};
use crate::sync::Acquired;

/// Set in the word while a waiter may be asleep on it.
pub(crate) const WAITERS: u32 = 1 << 31;
const ID_MASK: u32 = !WAITERS;
/// Spins before the first sleep: a short critical section usually ends within this.
const SPINS: u32 = 100;

/// The lock word. Lives inside an arena object's body.
#[repr(transparent)]
#[derive(Debug)]
pub(crate) struct RawMutex {
    word: AtomicU32,
}

impl RawMutex {
    /// Locks for `me` if free; never blocks.
    #[inline]
    pub(crate) fn try_lock(&self, me: u32) -> bool {
        self.word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Locks for `me` without blocking: free, or held by a process or thread that no longer
    /// exists (checked only when the holder is not this process).
    pub(crate) fn try_lock_robust(&self, me: u32) -> Option<Acquired> {
        if self.try_lock(me) {
            return Some(Acquired::Normal);
        }
        let w = self.word.load(Ordering::Relaxed);
        let owner = w & ID_MASK;
        if owner != 0 && owner != pid() && !alive(owner) {
            let taken = self
                .word
                .compare_exchange(w, me | (w & WAITERS), Ordering::Acquire, Ordering::Relaxed)
                .is_ok();
            return taken.then_some(Acquired::OwnerDied);
        }
        None
    }

    /// Locks for `me`, blocking until `deadline` (forever if `None`); `None` on timeout.
    #[inline]
    pub(crate) fn lock(&self, me: u32, deadline: Option<Instant>) -> Option<Acquired> {
        if self.try_lock(me) {
            return Some(Acquired::Normal);
        }
        self.lock_slow(me, deadline)
    }

    #[cold]
    fn lock_slow(&self, me: u32, deadline: Option<Instant>) -> Option<Acquired> {
        let spun = futex::spin_until(SPINS, || {
            let w = self.word.load(Ordering::Relaxed);
            w == 0 || w & WAITERS != 0
        });
        if spun && self.try_lock(me) {
            return Some(Acquired::Normal);
        }
        loop {
            let w = self.word.load(Ordering::Relaxed);
            if w == 0 {
                // Others may be asleep (we cannot tell), so keep the bit set.
                if self
                    .word
                    .compare_exchange(0, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some(Acquired::Normal);
                }
                continue;
            }
            if w & WAITERS == 0
                && self
                    .word
                    .compare_exchange(w, w | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let owner = w & ID_MASK;
            let watch = owner != pid();
            let Ok(sleep) = futex::sleep_for(deadline, watch.then_some(LIVENESS_SLICE)) else {
                return None;
            };
            let woken = futex::wait(&self.word, w | WAITERS, sleep);
            if !woken && watch && !alive(owner) {
                let now = self.word.load(Ordering::Relaxed);
                if now & ID_MASK == owner
                    && self
                        .word
                        .compare_exchange(now, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    return Some(Acquired::OwnerDied);
                }
            }
        }
    }

    /// Unlocks, whoever the owner; returns the previous owner id (0 if it was not locked).
    #[inline]
    pub(crate) fn unlock(&self) -> u32 {
        let old = self.word.swap(0, Ordering::Release);
        if old & WAITERS != 0 {
            futex::wake(&self.word, 1);
        }
        old & ID_MASK
    }

    /// The owner's id, 0 when free.
    #[inline]
    pub(crate) fn owner(&self) -> u32 {
        self.word.load(Ordering::Relaxed) & ID_MASK
    }
}

/// A process-owned lock held for a short internal critical section (a primitive's bookkeeping).
#[derive(Debug)]
pub(crate) struct InternalGuard<'a> {
    mutex: &'a RawMutex,
    /// The previous holder died inside its critical section.
    pub(crate) recovered: bool,
}

impl RawMutex {
    /// Locks for this process (blocking); used around a primitive's bookkeeping.
    pub(crate) fn internal(&self) -> InternalGuard<'_> {
        let acquired = self.lock(pid(), None);
        InternalGuard {
            mutex: self,
            recovered: acquired == Some(Acquired::OwnerDied),
        }
    }
}

impl InternalGuard<'_> {
    /// Runs `f` with the lock released, then locks again (noting a take-over in `recovered`).
    pub(crate) fn unlocked<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.mutex.unlock();
        let result = f();
        let acquired = self.mutex.lock(pid(), None);
        self.recovered = acquired == Some(Acquired::OwnerDied);
        result
    }
}

impl Drop for InternalGuard<'_> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}
