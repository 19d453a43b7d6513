//! [`Event`]: a flag that workers wait for, like Python's `Event`.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::shm::arena::{Handle, Kind, State};
use crate::shm::futex;
use crate::sync::{deserialize_handle, or_panic, serialize_handle};

/// How long a waiter spins before sleeping: a cross-CPU wake-up costs tens of µs on small
/// machines, so a partner that answers within this is met without a system call.
const SPIN: Duration = Duration::from_micros(40);

#[repr(C)]
struct EventState {
    chain: AtomicU32,
    /// Bit 0: the flag. Bits 1..: how many times it was set, so a waiter that slept through a
    /// `set` followed by a `clear` still knows it was set.
    word: AtomicU32,
    /// Waiters that may be asleep; `set` skips the wake-up call when there are none.
    sleepers: AtomicU32,
}

// SAFETY: repr(C), atomics only, 12 bytes, chain word first.
unsafe impl State for EventState {}

/// A flag, initially false, that workers can wait for: Python's `Event`, usable across
/// processes.
///
/// [`set`](Self::set) makes it true and wakes every waiter; [`clear`](Self::clear) makes it
/// false again; [`wait`](Self::wait) returns once it is true. A waiter woken by `set` returns
/// even if the flag was cleared again before it ran, as in Python.
///
/// # vs `std::sync::Condvar`
///
/// The standard library has no event type; the usual stand-in is a `Mutex<bool>` plus a
/// `Condvar`, with the predicate loop written by hand. `Event` is that pattern packaged, without
/// a mutex (one atomic word), and shared with child processes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use freethreading::Event;
///
/// let ready = Event::new();
/// assert!(!ready.wait_timeout(Duration::from_millis(1)));
/// let setter = ready.clone();
/// std::thread::spawn(move || setter.set());
/// ready.wait();
/// assert!(ready.is_set());
/// ```
pub struct Event {
    handle: Handle,
    state: &'static EventState,
}

impl Event {
    /// Creates an event whose flag is false.
    ///
    /// # Panics
    ///
    /// Panics if the shared memory for primitives cannot be created (see [`try_new`](Self::try_new)).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!freethreading::Event::new().is_set());
    /// ```
    pub fn new() -> Event {
        or_panic(Event::try_new())
    }

    /// Creates an event, or says why the shared memory is unavailable.
    ///
    /// # Errors
    ///
    /// [`Error::SharedMemory`] when the arena cannot be created or is full;
    /// [`Error::Unsupported`] off Linux.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = freethreading::Event::try_new()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn try_new() -> Result<Event, Error> {
        Ok(Event::from_handle(Handle::new(Kind::Event)?))
    }

    fn from_handle(handle: Handle) -> Event {
        let state = handle.state::<EventState>();
        Event { handle, state }
    }

    /// Whether the flag is true.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = freethreading::Event::new();
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.state.word.load(Ordering::Acquire) & 1 == 1
    }

    /// Makes the flag true and wakes every waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = freethreading::Event::new();
    /// event.set();
    /// event.set(); // already set: nothing changes
    /// assert!(event.wait_timeout(std::time::Duration::ZERO));
    /// ```
    pub fn set(&self) {
        let state = self.state;
        let mut word = state.word.load(Ordering::Relaxed);
        loop {
            if word & 1 == 1 {
                return;
            }
            // Count the set (bits 1..) and raise the flag, in one step.
            match state.word.compare_exchange_weak(
                word,
                word.wrapping_add(3),
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        // SeqCst on both sides: either a waiter sees the new word, or this sees its count.
        if state.sleepers.load(Ordering::SeqCst) > 0 {
            futex::wake(&state.word, u32::MAX);
        }
    }

    /// Makes the flag false.
    ///
    /// # Examples
    ///
    /// ```
    /// let event = freethreading::Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    pub fn clear(&self) {
        self.state.word.fetch_and(!1, Ordering::Release);
    }

    /// Waits until the flag is true (returns at once if it is).
    ///
    /// # Examples
    ///
    /// ```
    /// let event = freethreading::Event::new();
    /// event.set();
    /// event.wait();
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout` for the flag; returns whether it was set.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let event = freethreading::Event::new();
    /// assert!(!event.wait_timeout(Duration::from_millis(2)));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::ZERO));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(futex::deadline_after(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let state = self.state;
        let seen = state.word.load(Ordering::Acquire);
        if seen & 1 == 1 {
            return true;
        }
        // Any change from an unset word is a `set` (a `clear` of an unset word changes nothing).
        let changed = || state.word.load(Ordering::Acquire) != seen;
        if spin_for(SPIN, deadline, changed) {
            return true;
        }
        loop {
            state.sleepers.fetch_add(1, Ordering::SeqCst);
            if state.word.load(Ordering::SeqCst) != seen {
                state.sleepers.fetch_sub(1, Ordering::Relaxed);
                return true;
            }
            let sleep = futex::sleep_for(deadline, None);
            if let Ok(sleep) = sleep {
                futex::wait(&state.word, seen, sleep);
            }
            state.sleepers.fetch_sub(1, Ordering::Relaxed);
            if changed() {
                return true;
            }
            if sleep.is_err() {
                return false;
            }
        }
    }
}

/// Spins for up to `budget` (and not past `deadline`) until `ready()`.
fn spin_for(budget: Duration, deadline: Option<Instant>, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let end = match deadline {
        Some(d) => d.min(start + budget),
        None => start + budget,
    };
    loop {
        if futex::spin_until(64, &mut ready) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl Clone for Event {
    fn clone(&self) -> Event {
        Event::from_handle(self.handle.clone())
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("handle", &self.handle)
            .field("set", &self.is_set())
            .finish()
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_handle(&self.handle, serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Event, D::Error> {
        deserialize_handle(deserializer, Kind::Event).map(Event::from_handle)
    }
}
