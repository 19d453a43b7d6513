//! Futex wait and wake on 32-bit words of the shared arena, plus deadline arithmetic.
//!
//! The words live in a `MAP_SHARED` mapping of one memfd, so the kernel keys them by
//! (inode, offset) and a wake in one process reaches a waiter in another. That is why the
//! calls never use `FUTEX_PRIVATE_FLAG`: a private futex is keyed by address space and would
//! never see the other process. Every caller re-checks its condition after waking; a wait may
//! end early (spurious wake-up, signal, value already changed).

use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

/// Blocks while `*word == expected`, for at most `timeout` (forever if `None`).
///
/// Returns `false` when the timeout expired, `true` otherwise (woken, value changed, or
/// interrupted). Callers loop and re-check, so the distinction is only a hint.
#[cfg(target_os = "linux")]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    let spec = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 32-bit atomic for the whole call; the kernel only
    // reads it. `spec_ptr` is null or points to a timespec that outlives the call. The
    // shared (non-private) operation is what makes the wait visible to other processes
    // mapping the same memfd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            spec_ptr,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    !(r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT))
}

/// Wakes up to `n` waiters blocked on `word`, in any process.
#[cfg(target_os = "linux")]
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    let n = n.min(i32::MAX as u32) as i32;
    // SAFETY: FUTEX_WAKE only uses the address as a key; `word` is live and aligned.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Fallback for Unix systems without futexes: poll with short sleeps. Correct, not fast.
#[cfg(not(target_os = "linux"))]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    use std::sync::atomic::Ordering;
    let step = Duration::from_micros(200);
    let nap = timeout.map_or(step, |t| t.min(step));
    if word.load(Ordering::Acquire) == expected {
        std::thread::sleep(nap);
    }
    timeout.is_none_or(|t| t > step)
}

/// Fallback for Unix systems without futexes: waiters poll, so there is nothing to do.
#[cfg(not(target_os = "linux"))]
pub(crate) fn wake(_word: &AtomicU32, _n: u32) {}

/// The time left before `deadline`: `None` means no deadline, `Some(ZERO)` means expired.
pub(crate) fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// A deadline `timeout` from now; a timeout too large to represent means "no deadline".
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// How long one sleep may last: the time to `deadline`, shortened to `slice` when the waiter
/// must wake up now and then to check that the process it depends on is still alive.
///
/// Returns `Err(())` once the deadline has passed.
pub(crate) fn sleep_for(
    deadline: Option<Instant>,
    slice: Option<Duration>,
) -> Result<Option<Duration>, ()> {
    match (remaining(deadline), slice) {
        (Some(left), _) if left.is_zero() => Err(()),
        (Some(left), Some(slice)) => Ok(Some(left.min(slice))),
        (Some(left), None) => Ok(Some(left)),
        (None, slice) => Ok(slice),
    }
}

/// Spins up to `rounds` times until `ready()` holds; true if it did. Spinning pays when the
/// other side is running on another CPU and a sleep/wake round trip would cost tens of µs.
#[inline]
pub(crate) fn spin_until(rounds: u32, mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..rounds {
        if ready() {
            return true;
        }
        std::hint::spin_loop();
    }
    ready()
}
