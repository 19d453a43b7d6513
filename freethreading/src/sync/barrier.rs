//! [`Barrier`]: a meeting point for a fixed number of workers, like Python's `Barrier`.
//!
//! # State machine
//!
//! CPython's: *filling* (parties arrive), *draining* (released parties are leaving; newcomers
//! wait for the next round), *resetting* (a `reset` while parties waited: they leave with an
//! error) and *broken*. A round is over when the last party has left `wait`, so a party always
//! learns the outcome of its own round. The state, the counters and the per-process table sit
//! under an internal process-owned lock; waiters sleep on a sequence word that every state
//! change bumps.
//!
//! # Death of a party
//!
//! The table records, per process, how many handles it holds and how many of its workers are
//! inside `wait`. A waiter that shares the barrier with other processes wakes up every
//! [`LIVENESS_SLICE`] and checks them; a dead one (or a dead holder of the internal lock)
//! breaks the barrier, and its entry is removed with its references given back.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{self, ChunkReader, RemoteFailure};
use crate::shm::arena::{Handle, Kind, RawHandle, State};
use crate::shm::mutex::{InternalGuard, RawMutex};
use crate::shm::table::Table;
use crate::shm::{LIVENESS_SLICE, alive, futex, pid};
use crate::{Error, WorkerFn, registry};

const FILLING: u32 = 0;
const DRAINING: u32 = 1;
const RESETTING: u32 = 2;
const BROKEN: u32 = 3;
const NO_TIMEOUT: u64 = u64::MAX;

#[repr(C)]
struct BarrierState {
    /// Per-process table: `a` = handles held, `b` = workers inside `wait`.
    chain: AtomicU32,
    mutex: RawMutex,
    seq: AtomicU32,
    state: AtomicU32,
    parties: AtomicU32,
    /// Workers inside `wait` (the sum of the table's `b`).
    count: AtomicU32,
    /// Default timeout in nanoseconds, `NO_TIMEOUT` for none.
    timeout: AtomicU64,
}

// SAFETY: repr(C), atomics only, 32 bytes, align 8, chain word first.
unsafe impl State for BarrierState {}

/// One attachment of this process to the barrier: created on construction and on every
/// decode, it counts in the table so that the death of this process can be noticed.
struct Inner {
    handle: Handle,
    state: &'static BarrierState,
    action: Option<Arc<str>>,
}

impl Inner {
    fn attach(handle: Handle, action: Option<Arc<str>>) -> Result<Inner, Error> {
        let inner = Inner {
            state: handle.state::<BarrierState>(),
            handle,
            action,
        };
        {
            let _g = inner.lock();
            let entry = inner.table().entry(pid())?;
            entry.set_a(entry.a() + 1);
        }
        Ok(inner)
    }

    fn table(&self) -> Table<'static> {
        Table::new(self.handle.arena(), &self.state.chain)
    }

    /// The internal lock; if its holder died inside, the books are repaired and the barrier
    /// breaks (the dead holder may have been half-way through a state change).
    fn lock(&self) -> InternalGuard<'static> {
        let guard = self.state.mutex.internal();
        self.repair(&guard);
        guard
    }

    fn repair(&self, guard: &InternalGuard<'_>) {
        if guard.recovered {
            self.drop_dead();
            let inside = self.table().used().map(|e| e.b()).sum();
            self.state.count.store(inside, Ordering::Relaxed);
            self.set_state(BROKEN);
        }
    }

    fn set_state(&self, state: u32) {
        self.state.state.store(state, Ordering::Relaxed);
        self.state.seq.fetch_add(1, Ordering::Release);
        futex::wake(&self.state.seq, u32::MAX);
    }

    /// Removes the entries of dead processes, giving back their references and their places
    /// inside `wait`. Returns whether there was one. Called under the internal lock.
    fn drop_dead(&self) -> bool {
        let me = pid();
        let mut found = false;
        for entry in self.table().used() {
            let holder = entry.pid.load(Ordering::Relaxed);
            if holder == me || alive(holder) {
                continue;
            }
            found = true;
            let count = self.state.count.load(Ordering::Relaxed);
            self.state
                .count
                .store(count.saturating_sub(entry.b()), Ordering::Relaxed);
            let refs = entry.a();
            entry.clear();
            self.handle.release_foreign(refs);
        }
        found
    }

    fn shared_with_others(&self) -> bool {
        let me = pid();
        self.table()
            .used()
            .any(|e| e.pid.load(Ordering::Relaxed) != me)
    }

    /// Releases the internal lock, sleeps until the state changes or `deadline`, and locks
    /// again. Returns whether the deadline passed.
    fn sleep(&self, guard: &mut InternalGuard<'static>, deadline: Option<Instant>) -> bool {
        let seq = self.state.seq.load(Ordering::Acquire);
        let watch = self.shared_with_others();
        let sleep = futex::sleep_for(deadline, watch.then_some(LIVENESS_SLICE));
        let woken = guard.unlocked(|| match sleep {
            Ok(sleep) => futex::wait(&self.state.seq, seq, sleep),
            Err(()) => false,
        });
        self.repair(guard);
        if !woken && watch && self.drop_dead() {
            self.set_state(BROKEN);
        }
        sleep.is_err()
    }

    fn wait(&self, deadline: Option<Instant>) -> Result<usize, Error> {
        let state = self.state;
        let mut guard = self.lock();
        // Wait for the previous round to drain or reset.
        loop {
            match state.state.load(Ordering::Relaxed) {
                FILLING => break,
                BROKEN => return Err(Error::BrokenBarrier),
                _ => {
                    self.sleep(&mut guard, None);
                }
            }
        }
        let entry = self.table().entry(pid())?;
        let index = state.count.load(Ordering::Relaxed);
        entry.set_b(entry.b() + 1);
        state.count.store(index + 1, Ordering::Relaxed);
        let outcome = if index + 1 == state.parties.load(Ordering::Relaxed) {
            self.release_round()
        } else {
            self.wait_round(&mut guard, deadline)
        };
        // Leave: the round ends when the last party is out.
        entry.set_b(entry.b().saturating_sub(1));
        let count = state.count.load(Ordering::Relaxed).saturating_sub(1);
        state.count.store(count, Ordering::Relaxed);
        if count == 0 && matches!(state.state.load(Ordering::Relaxed), DRAINING | RESETTING) {
            self.set_state(FILLING);
        }
        drop(guard);
        outcome.map(|()| index as usize)
    }

    /// The last party: runs the action, then lets everyone go.
    fn release_round(&self) -> Result<(), Error> {
        if let Some(name) = &self.action {
            if let Err(message) = run_action(name) {
                self.set_state(BROKEN);
                return Err(Error::BarrierActionFailed { message });
            }
        }
        self.set_state(DRAINING);
        Ok(())
    }

    fn wait_round(
        &self,
        guard: &mut InternalGuard<'static>,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        let state = self.state;
        while state.state.load(Ordering::Relaxed) == FILLING {
            let timed_out = self.sleep(guard, deadline);
            if timed_out && state.state.load(Ordering::Relaxed) == FILLING {
                self.set_state(BROKEN);
                return Err(Error::BrokenBarrier);
            }
        }
        match state.state.load(Ordering::Relaxed) {
            DRAINING => Ok(()),
            _ => Err(Error::BrokenBarrier),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _g = self.lock();
        if let Some(entry) = self.table().find(pid()) {
            entry.set_a(entry.a().saturating_sub(1));
            entry.tidy();
        }
    }
}

/// Runs the registered zero-argument `#[worker]` function `name` here, catching a panic.
fn run_action(name: &str) -> Result<(), String> {
    let entry = registry::lookup(name).map_err(|e| e.to_string())?;
    let mut input = Vec::new();
    codec::encode_chunk(&[()], &mut input).map_err(|e| e.to_string())?;
    let mut output = Vec::new();
    let describe = |failure: RemoteFailure| match failure {
        RemoteFailure::Panicked(message) => message,
        other => Error::from(other).to_string(),
    };
    (entry.invoke())(&input, &mut output).map_err(describe)?;
    let mut reader = ChunkReader::new(&output).map_err(|e| e.to_string())?;
    match reader.next_item::<Result<(), RemoteFailure>>() {
        Some(Ok(Ok(()))) => Ok(()),
        Some(Ok(Err(failure))) => Err(describe(failure)),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the action produced no result".to_owned()),
    }
}

/// A meeting point: each of `parties` workers calls [`wait`](Self::wait), and all are released
/// together when the last one arrives. Python's `Barrier`, usable across processes.
///
/// `wait` returns the arrival index, `0` for the first to arrive up to `parties - 1` for the
/// last. An optional *action*, a zero-argument `#[worker]` function, runs exactly once per
/// round, in the last party to arrive, before anyone is released. The barrier is reusable:
/// each round starts when the previous one has fully left.
///
/// The barrier *breaks* when a wait times out, the action panics, [`abort`](Self::abort) is
/// called, or a process holding the barrier dies; then every current and future `wait` fails
/// with [`Error::BrokenBarrier`] until [`reset`](Self::reset).
///
/// # vs `std::sync::Barrier`
///
/// `std::sync::Barrier::wait` returns only an "is leader" flag, cannot time out, break, reset
/// or run an action, and works within one process. This one follows Python: arrival indexes,
/// an action, timeouts, `abort`/`reset`, and failure (instead of a hang) when a party dies.
///
/// # Examples
///
/// ```
/// use freethreading::Barrier;
///
/// let barrier = Barrier::new(3)?;
/// let handles: Vec<_> = (0..2)
///     .map(|_| {
///         let b = barrier.clone();
///         std::thread::spawn(move || b.wait().unwrap())
///     })
///     .collect();
/// let mine = barrier.wait()?;
/// let mut indexes: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
/// indexes.push(mine);
/// indexes.sort();
/// assert_eq!(indexes, [0, 1, 2]);
/// # Ok::<(), freethreading::Error>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    inner: Arc<Inner>,
}

/// Configures a [`Barrier`]: Python's `action` and `timeout` arguments.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use freethreading::{Barrier, worker};
///
/// #[worker]
/// fn announce() {
///     println!("everyone is here");
/// }
///
/// let barrier = Barrier::builder(1)
///     .action(announce)
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(barrier.wait()?, 0);
/// # Ok::<(), freethreading::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BarrierBuilder {
    parties: usize,
    action: Option<&'static str>,
    timeout: Option<Duration>,
}

impl BarrierBuilder {
    /// Runs `action` once per round in the last party to arrive, before the others are
    /// released. It is sent by name, so it works in any process of the program. A panic in
    /// it breaks the barrier. It must not wait on the same barrier (it would wait forever).
    ///
    /// # Examples
    ///
    /// ```
    /// #[freethreading::worker]
    /// fn tick() {}
    ///
    /// let barrier = freethreading::Barrier::builder(1).action(tick).build()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn action<W: WorkerFn<Args = (), Output = ()>>(mut self, action: W) -> Self {
        let _ = action;
        self.action = Some(W::NAME);
        self
    }

    /// The timeout of [`Barrier::wait`] (by default it waits forever).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = freethreading::Barrier::builder(2)
    ///     .timeout(std::time::Duration::from_millis(5))
    ///     .build()?;
    /// assert!(barrier.wait().is_err()); // the second party never came
    /// assert!(barrier.broken());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Creates the barrier.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `parties` is 0 or above `u32::MAX`;
    /// [`Error::UnknownWorker`] or [`Error::DuplicateWorkerName`] when the action cannot be
    /// found by name; [`Error::SharedMemory`] when the arena cannot be created or is full.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(freethreading::Barrier::builder(0).build().is_err());
    /// ```
    pub fn build(self) -> Result<Barrier, Error> {
        let parties =
            u32::try_from(self.parties)
                .ok()
                .filter(|&p| p > 0)
                .ok_or(Error::InvalidArgument(
                    "a barrier needs between 1 and u32::MAX parties",
                ))?;
        if let Some(name) = self.action {
            registry::lookup(name)?;
        }
        let handle = Handle::new(Kind::Barrier)?;
        let state = handle.state::<BarrierState>();
        state.parties.store(parties, Ordering::Relaxed);
        let timeout = self.timeout.map_or(NO_TIMEOUT, |t| {
            u64::try_from(t.as_nanos()).unwrap_or(NO_TIMEOUT - 1)
        });
        state.timeout.store(timeout, Ordering::Relaxed);
        let inner = Inner::attach(handle, self.action.map(Arc::from))?;
        Ok(Barrier {
            inner: Arc::new(inner),
        })
    }
}

impl Barrier {
    /// A barrier for `parties` workers, without action or timeout.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `parties` is 0 (Python's `ValueError`) or above
    /// `u32::MAX`; [`Error::SharedMemory`] when the arena cannot be created or is full.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = freethreading::Barrier::new(1)?;
    /// assert_eq!(barrier.wait()?, 0); // one party: never blocks
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn new(parties: usize) -> Result<Barrier, Error> {
        Barrier::builder(parties).build()
    }

    /// Starts configuring a barrier with an action or a default timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = freethreading::Barrier::builder(2).build()?;
    /// assert_eq!(barrier.parties(), 2);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn builder(parties: usize) -> BarrierBuilder {
        BarrierBuilder {
            parties,
            action: None,
            timeout: None,
        }
    }

    /// Waits for all parties (up to the barrier's default timeout, if it has one) and
    /// returns this worker's arrival index.
    ///
    /// # Errors
    ///
    /// [`Error::BrokenBarrier`] when the barrier is or becomes broken (including by this wait
    /// timing out); [`Error::BarrierActionFailed`] in the last party when the action panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = freethreading::Barrier::new(1)?;
    /// assert_eq!(barrier.wait()?, 0);
    /// barrier.abort();
    /// assert!(barrier.wait().is_err());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn wait(&self) -> Result<usize, Error> {
        let timeout = self.inner.state.timeout.load(Ordering::Relaxed);
        let deadline = if timeout == NO_TIMEOUT {
            None
        } else {
            futex::deadline_after(Duration::from_nanos(timeout))
        };
        self.inner.wait(deadline)
    }

    /// [`wait`](Self::wait) with this timeout instead of the default one. A timeout breaks the
    /// barrier, for this worker and the others.
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
    /// let barrier = freethreading::Barrier::new(2)?;
    /// assert!(barrier.wait_timeout(Duration::from_millis(5)).is_err());
    /// assert!(barrier.broken());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, Error> {
        self.inner.wait(futex::deadline_after(timeout))
    }

    /// Returns the barrier to its initial state. Workers waiting now fail with
    /// [`Error::BrokenBarrier`]; later waits work normally.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = freethreading::Barrier::new(2)?;
    /// barrier.abort();
    /// barrier.reset();
    /// assert!(!barrier.broken());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn reset(&self) {
        let inner = &*self.inner;
        let _g = inner.lock();
        let state = inner.state.state.load(Ordering::Relaxed);
        let next = if inner.state.count.load(Ordering::Relaxed) > 0 {
            match state {
                FILLING | BROKEN => RESETTING,
                other => other,
            }
        } else {
            FILLING
        };
        inner.set_state(next);
    }

    /// Breaks the barrier: current and future waits fail with [`Error::BrokenBarrier`] until
    /// [`reset`](Self::reset).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = freethreading::Barrier::new(3)?;
    /// barrier.abort();
    /// assert!(barrier.broken());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn abort(&self) {
        let _g = self.inner.lock();
        self.inner.set_state(BROKEN);
    }

    /// The number of parties needed to pass the barrier.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(freethreading::Barrier::new(4)?.parties(), 4);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn parties(&self) -> usize {
        self.inner.state.parties.load(Ordering::Relaxed) as usize
    }

    /// The number of workers waiting in the current round (0 while a round drains).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(freethreading::Barrier::new(2)?.n_waiting(), 0);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn n_waiting(&self) -> usize {
        let state = self.inner.state;
        if state.state.load(Ordering::Relaxed) == FILLING {
            state.count.load(Ordering::Relaxed) as usize
        } else {
            0
        }
    }

    /// Whether the barrier is broken.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!freethreading::Barrier::new(2)?.broken());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn broken(&self) -> bool {
        self.inner.state.state.load(Ordering::Relaxed) == BROKEN
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("handle", &self.inner.handle)
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .field("action", &self.inner.action)
            .finish()
    }
}

impl Serialize for Barrier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (
            self.inner.handle.raw_for_transfer(),
            self.inner.action.as_deref(),
        )
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Barrier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Barrier, D::Error> {
        let (raw, action) = <(RawHandle, Option<String>)>::deserialize(deserializer)?;
        if let Some(name) = &action {
            registry::lookup(name).map_err(crate::codec::custom_error)?;
        }
        let handle = Handle::adopt(raw, Kind::Barrier).map_err(crate::codec::custom_error)?;
        let inner =
            Inner::attach(handle, action.map(Arc::from)).map_err(crate::codec::custom_error)?;
        Ok(Barrier {
            inner: Arc::new(inner),
        })
    }
}
