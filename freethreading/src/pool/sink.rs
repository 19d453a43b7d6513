//! Where a chunk's results go.
//!
//! A [`Sink`] receives the results of one or more chunks item by item and learns when each chunk
//! is finished. `map`-like calls write straight into the final `Vec` ([`MapState`]);
//! `imap`-like calls buffer per chunk ([`ChunkBuffer`], [`Unordered`]).
//!
//! Every chunk is finished exactly once, even when its job is dropped unrun (a terminated pool):
//! the jobs in [`super::job`] guarantee that with a drop guard, so no waiter can hang.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crossbeam_channel::Sender;

use crate::Error;

/// Receives the results of chunks.
pub(crate) trait Sink<O>: Send + Sync + 'static {
    /// Per-chunk state while its items arrive.
    type Acc: Send;
    /// Starts chunk number `chunk`, covering `len` items from index `start`.
    fn begin(&self, chunk: usize, start: usize, len: usize) -> Self::Acc;
    /// Stores item `index`'s result; `false` skips the rest of the chunk.
    fn push(&self, acc: &mut Self::Acc, index: usize, result: Result<O, Error>) -> bool;
    /// Ends the chunk. `failure` applies to every item that got no result.
    fn finish(&self, acc: Self::Acc, failure: Option<Error>);
    /// Called once a worker is about to start chunk `chunk` (a pool thread picked it up, or
    /// it is about to be sent to a child). `false` means its results are no longer wanted
    /// (it was cancelled): the chunk is then finished with [`Error::Cancelled`] without
    /// running. A chunk may be claimed again after its child died; that must succeed.
    fn claim(&self, _chunk: usize) -> bool {
        true
    }
    /// Asks to drop chunk `chunk` before it starts. `true` means it is (or already was)
    /// cancelled, and the engine may finish it with [`Error::Cancelled`] unrun; `false` means
    /// it must run (it was claimed, or this sink never cancels).
    fn cancel(&self, _chunk: usize) -> bool {
        false
    }
}

/// Blocks until a flag is set.
#[derive(Debug, Default)]
pub(crate) struct Latch {
    set: Mutex<bool>,
    changed: Condvar,
}

impl Latch {
    pub(crate) fn set(&self) {
        *self.set.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
    }

    pub(crate) fn is_set(&self) -> bool {
        *self.set.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until set or `deadline`; returns whether it is set.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        while !*set {
            match deadline {
                None => set = self.changed.wait(set).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    set = self
                        .changed
                        .wait_timeout(set, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        true
    }
}

/// The shared state of one `map`/`starmap`/`apply` call: output slots written in place.
///
/// # Invariants
///
/// `ptr`/`capacity` come from a `Vec<O>` with room for `len` items. Chunk `k` covers
/// `starts[k]..starts[k + 1]` (the last ends at `len`); its writer initialises a prefix of that
/// range, `written[k]` long, and stops at the first error. Nobody reads a slot before every
/// chunk finished (`remaining == 0`, the latch is set). `owned` is cleared when the `Vec` is
/// handed to the caller, after which `Drop` frees nothing.
pub(crate) struct MapState<O> {
    ptr: *mut O,
    len: usize,
    capacity: usize,
    starts: Box<[usize]>,
    written: Box<[AtomicUsize]>,
    remaining: AtomicUsize,
    first_error: Mutex<Option<(usize, Error)>>,
    done: Latch,
    taken: AtomicBool,
    owned: AtomicBool,
}

// SAFETY: the buffer holds `O`s that may move to the caller's thread (`O: Send`).
unsafe impl<O: Send> Send for MapState<O> {}
// SAFETY: slots are written by the single chunk that owns their range (one thread at a time,
// see `Sink::push`) and read only after all writers finished, the latch's mutex ordering the
// writes before the reads; `take` is guarded by `taken`.
unsafe impl<O: Send> Sync for MapState<O> {}

/// Per-chunk progress of a [`MapState`].
pub(crate) struct MapAcc {
    chunk: usize,
    start: usize,
    end: usize,
    written: usize,
}

impl<O: Send + 'static> MapState<O> {
    /// State for `len` results in chunks of `chunk_size`.
    pub(crate) fn new(len: usize, chunk_size: usize) -> Self {
        let starts: Box<[usize]> = (0..len).step_by(chunk_size.max(1)).collect();
        let chunks = starts.len();
        let mut buffer = std::mem::ManuallyDrop::new(Vec::<O>::with_capacity(len));
        let state = MapState {
            ptr: buffer.as_mut_ptr(),
            len,
            capacity: buffer.capacity(),
            starts,
            written: (0..chunks).map(|_| AtomicUsize::new(0)).collect(),
            remaining: AtomicUsize::new(chunks),
            first_error: Mutex::new(None),
            done: Latch::default(),
            taken: AtomicBool::new(false),
            owned: AtomicBool::new(true),
        };
        if chunks == 0 {
            state.done.set();
        }
        state
    }

    pub(crate) fn latch(&self) -> &Latch {
        &self.done
    }

    fn record_error(&self, index: usize, error: Error) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.as_ref().is_none_or(|(at, _)| index < *at) {
            *first = Some((index, error));
        }
    }

    /// Finishes chunks `first..` with `error` and no results: the input ran out before they
    /// could be filled.
    pub(crate) fn fail_unfilled(&self, first: usize, error: Error) {
        for chunk in first..self.starts.len() {
            let acc = self.begin(chunk, self.starts[chunk], 0);
            self.finish(acc, Some(error.clone()));
        }
        if first == self.starts.len() {
            // Every chunk was filled but more items followed: still an error for the call.
            self.record_error(self.len, error);
        }
    }

    /// Whether every item succeeded; `None` while chunks are outstanding.
    pub(crate) fn succeeded(&self) -> Option<bool> {
        if !self.done.is_set() {
            return None;
        }
        Some(
            self.first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_none(),
        )
    }

    /// Moves the results out once every chunk is done. A second call gets `ResultTaken`.
    pub(crate) fn take(&self) -> Result<Vec<O>, Error> {
        debug_assert!(self.done.is_set());
        if self.taken.swap(true, Ordering::AcqRel) {
            return Err(Error::ResultTaken);
        }
        if let Some((_, error)) = self
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            // The written prefixes stay owned here and are dropped with the state.
            return Err(error);
        }
        self.owned.store(false, Ordering::Release);
        // SAFETY: no error means every chunk initialised its whole range, so all `len` slots
        // are initialised; the allocation came from a `Vec<O>` of this capacity; `owned` is now
        // false, so `Drop` will neither drop the items nor free the buffer.
        Ok(unsafe { Vec::from_raw_parts(self.ptr, self.len, self.capacity) })
    }
}

impl<O> Drop for MapState<O> {
    fn drop(&mut self) {
        if !*self.owned.get_mut() {
            return;
        }
        for (k, written) in self.written.iter_mut().enumerate() {
            let start = self.starts[k];
            // SAFETY: the first `written` slots of chunk k are initialised and were never moved
            // out (`owned` is still set); `&mut self` means no writer is left.
            unsafe {
                std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                    self.ptr.add(start),
                    *written.get_mut(),
                ))
            };
        }
        // SAFETY: frees the allocation of the `Vec` this state was built from; its items were
        // dropped above.
        drop(unsafe { Vec::from_raw_parts(self.ptr, 0, self.capacity) });
    }
}

impl<O: Send + 'static> Sink<O> for MapState<O> {
    type Acc = MapAcc;

    fn begin(&self, chunk: usize, start: usize, len: usize) -> MapAcc {
        let end = self.starts.get(chunk + 1).copied().unwrap_or(self.len);
        assert!(
            self.starts.get(chunk) == Some(&start) && start + len <= end,
            "chunk {chunk} does not match the map's layout"
        );
        MapAcc {
            chunk,
            start,
            end,
            written: 0,
        }
    }

    #[inline]
    fn push(&self, acc: &mut MapAcc, index: usize, result: Result<O, Error>) -> bool {
        match result {
            Ok(value) => {
                let at = acc.start + acc.written;
                debug_assert_eq!(index, at);
                assert!(at < acc.end, "more results than the chunk has items");
                // SAFETY: `at` lies in this chunk's range (checked against `end`, which `begin`
                // checked against the layout), so it is in bounds and the next slot of the
                // range: written once, by the one thread running the chunk, and read by nobody
                // before the latch is set.
                unsafe { self.ptr.add(at).write(value) };
                acc.written += 1;
                true
            }
            Err(error) => {
                self.record_error(index, error);
                false
            }
        }
    }

    fn finish(&self, acc: MapAcc, failure: Option<Error>) {
        if let Some(error) = failure {
            self.record_error(acc.start + acc.written, error);
        }
        self.written[acc.chunk].store(acc.written, Ordering::Release);
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.set();
        }
    }
}

/// Results of one chunk, in order, for ordered `imap`.
pub(crate) struct ChunkBuffer<O> {
    results: Mutex<Option<Vec<Result<O, Error>>>>,
    pub(crate) done: Latch,
}

impl<O> ChunkBuffer<O> {
    pub(crate) fn new() -> Self {
        ChunkBuffer {
            results: Mutex::new(None),
            done: Latch::default(),
        }
    }

    pub(crate) fn take(&self) -> Vec<Result<O, Error>> {
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }
}

/// Per-chunk progress of an `imap` sink.
pub(crate) struct ItemsAcc<O> {
    len: usize,
    results: Vec<Result<O, Error>>,
}

fn complete_items<O>(mut acc: ItemsAcc<O>, failure: Option<Error>) -> Vec<Result<O, Error>> {
    if acc.results.len() < acc.len {
        let error = failure.unwrap_or(Error::Terminated);
        while acc.results.len() < acc.len {
            acc.results.push(Err(error.clone()));
        }
    }
    acc.results
}

/// Where an `imap` chunk's results go once complete.
pub(crate) trait Delivery<O>: Send + Sync + 'static {
    fn deliver(&self, results: Vec<Result<O, Error>>);
}

/// A sink that collects each chunk's results in order and delivers them whole.
pub(crate) struct Items<D>(pub(crate) D);

impl<O: Send + 'static, D: Delivery<O>> Sink<O> for Items<D> {
    type Acc = ItemsAcc<O>;

    fn begin(&self, _chunk: usize, _start: usize, len: usize) -> ItemsAcc<O> {
        ItemsAcc {
            len,
            results: Vec::with_capacity(len),
        }
    }

    fn push(&self, acc: &mut ItemsAcc<O>, _index: usize, result: Result<O, Error>) -> bool {
        acc.results.push(result);
        true
    }

    fn finish(&self, acc: ItemsAcc<O>, failure: Option<Error>) {
        self.0.deliver(complete_items(acc, failure));
    }
}

impl<O: Send + 'static> Delivery<O> for ChunkBuffer<O> {
    fn deliver(&self, results: Vec<Result<O, Error>>) {
        *self.results.lock().unwrap_or_else(|e| e.into_inner()) = Some(results);
        self.done.set();
    }
}

/// Results of many chunks, delivered in completion order, for `imap_unordered`.
pub(crate) struct Unordered<O> {
    pub(crate) delivered: Sender<Vec<Result<O, Error>>>,
}

impl<O: Send + 'static> Delivery<O> for Unordered<O> {
    fn deliver(&self, results: Vec<Result<O, Error>>) {
        // The iterator may be gone; then nobody wants the results.
        let _ = self.delivered.send(results);
    }
}
