//! Shared memory for objects that more than one process uses: the arena, the futex calls, and
//! the robust mutex and per-process table the synchronisation primitives are built from.
//!
//! # The arena
//!
//! One region per program (the first process that needs it creates it; its children adopt it),
//! backed by an anonymous `memfd`: nothing appears in `/dev/shm` or on disk, and the memory is
//! gone once the last process mapping it exits. See [`arena`] for the layout and the handle
//! rules.
//!
//! # Queues
//!
//! The process backend's queues are rings of encoded items in arena blocks; see [`ring`].
//!
//! # Identity of workers
//!
//! Owners are recorded by kernel ids: the process id for things a process holds (a `Lock`, a
//! semaphore permit, a barrier attachment) and the thread id for what a thread holds (an
//! `RLock`). Both are unique among live tasks of the machine, so one number identifies a thread
//! *and* the process it belongs to, on either backend.
//!
//! # Liveness
//!
//! A waiter that depends on another process (or thread) sleeps in slices of
//! [`LIVENESS_SLICE`] and checks, after each slice, whether that owner still exists. A reused
//! process id would look alive: that is the one case where recovery waits for the reused
//! process, and it needs the kernel to cycle through its whole pid space while a lock is held.

pub(crate) mod arena;
pub(crate) mod futex;
pub(crate) mod mutex;
pub(crate) mod ring;
pub(crate) mod table;

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long a waiter sleeps before checking that the owner it waits for is alive.
pub(crate) const LIVENESS_SLICE: Duration = Duration::from_millis(20);

/// This process's id, cached (glibc no longer caches `getpid`, and lock fast paths need it).
///
/// The cache is right because this library never forks without exec-ing.
#[inline]
pub(crate) fn pid() -> u32 {
    static PID: AtomicU32 = AtomicU32::new(0);
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let pid = std::process::id();
    PID.store(pid, Ordering::Relaxed);
    pid
}

/// The kernel id of the calling thread (equal to [`pid`] on the main thread).
#[inline]
pub(crate) fn tid() -> u32 {
    thread_local! {
        static TID: u32 = current_tid();
    }
    TID.with(|t| *t)
}

#[cfg(target_os = "linux")]
fn current_tid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() as u32 }
}

#[cfg(not(target_os = "linux"))]
fn current_tid() -> u32 {
    // Without kernel thread ids, number threads from the top of the id space downwards, which
    // process ids do not reach in practice.
    static NEXT: AtomicU32 = AtomicU32::new(0x3FFF_FFFF);
    NEXT.fetch_sub(1, Ordering::Relaxed)
}

/// Whether the process or thread with kernel id `id` still exists and is not a zombie.
///
/// Only called on slow paths (after a liveness slice), so reading `/proc` is affordable.
pub(crate) fn alive(id: u32) -> bool {
    if id == 0 {
        return false;
    }
    if id == pid() {
        return true;
    }
    let Ok(id) = libc::pid_t::try_from(id) else {
        return false;
    };
    // SAFETY: signal 0 performs only the existence and permission checks; nothing is sent.
    let r = unsafe { libc::kill(id, 0) };
    if r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    // The id exists. A killed child stays a zombie until its parent reaps it, and a zombie
    // holds nothing: treat it as dead.
    #[cfg(target_os = "linux")]
    {
        match std::fs::read_to_string(format!("/proc/{id}/stat")) {
            Ok(stat) => {
                let state = stat
                    .rfind(')')
                    .and_then(|end| stat[end + 1..].trim_start().chars().next());
                !matches!(state, Some('Z' | 'X'))
            }
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}

/// The arena's descriptor, for the spawner to hand to a new child; the arena is created now if
/// this process has none yet, so objects made after the child starts are shared with it too.
///
/// `None` when the arena cannot be created; the child then runs without one and any handle
/// sent to it fails to decode with a clear error.
pub(crate) fn fd_for_children() -> Option<RawFd> {
    arena::Arena::get().ok().map(arena::Arena::fd)
}

pub(crate) use arena::ARENA_ENV;
