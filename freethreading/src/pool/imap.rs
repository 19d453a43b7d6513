//! Lazy iterators over pool results: [`Imap`] (input order) and [`ImapUnordered`] (completion
//! order).
//!
//! Unlike Python's `imap`, which drains its input up front on a helper thread, these pull
//! input only to keep a bounded number of chunks in flight, so an endless or expensive input
//! iterator is fine.

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::pool::chunks::{self, Chunk};
use crate::pool::sink::{ChunkBuffer, Items, Unordered};
use crate::{Error, WorkerFn, WorkerPool};

/// Chunks kept in flight per worker.
const AHEAD_PER_WORKER: usize = 8;

type Input<'a, A> = Box<dyn Iterator<Item = A> + 'a>;

/// The input side shared by both iterators: pulls chunks on demand and remembers why it
/// stopped.
struct Feeder<'pool, A> {
    pool: &'pool WorkerPool,
    input: Input<'pool, A>,
    chunk_size: usize,
    exhausted: bool,
    error: Option<Error>,
}

impl<'pool, A> Feeder<'pool, A> {
    fn new(pool: &'pool WorkerPool, input: Input<'pool, A>, chunk_size: usize) -> Self {
        Feeder {
            pool,
            input,
            chunk_size: chunk_size.max(1),
            exhausted: false,
            error: None,
        }
    }

    /// How many chunks may be in flight.
    fn limit(&self) -> usize {
        AHEAD_PER_WORKER * self.pool.workers()
    }

    /// The next chunk of input, unless it ran out or dispatching failed before.
    fn next_chunk(&mut self) -> Option<Chunk<A>> {
        if self.exhausted || self.error.is_some() {
            return None;
        }
        let items: Vec<A> = self.input.by_ref().take(self.chunk_size).collect();
        if items.is_empty() {
            self.exhausted = true;
            return None;
        }
        let len = items.len();
        chunks::split(items, len, None).pop()
    }
}

/// Results of [`WorkerPool::imap`], in input order: one `Result` per input item.
///
/// A failed item yields its error and iteration goes on with the next item.
///
/// # Examples
///
/// ```
/// use freethreading::{WorkerPool, worker};
///
/// #[worker]
/// fn halve(x: u32) -> u32 {
///     assert!(x % 2 == 0, "odd");
///     x / 2
/// }
///
/// let pool = WorkerPool::new(2)?;
/// let results: Vec<_> = pool.imap(halve, [2, 3, 4]).collect();
/// assert_eq!(*results[0].as_ref().unwrap(), 1);
/// assert!(results[1].is_err()); // the failure of item 1 ...
/// assert_eq!(*results[2].as_ref().unwrap(), 2); // ... does not stop item 2
/// # Ok::<(), freethreading::Error>(())
/// ```
pub struct Imap<'pool, W: WorkerFn> {
    feeder: Feeder<'pool, W::Args>,
    ahead: VecDeque<Arc<Items<ChunkBuffer<W::Output>>>>,
    current: std::vec::IntoIter<Result<W::Output, Error>>,
}

impl<W: WorkerFn> std::fmt::Debug for Imap<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imap")
            .field("worker", &W::NAME)
            .field("chunks_in_flight", &self.ahead.len())
            .finish_non_exhaustive()
    }
}

impl<'pool, W: WorkerFn> Imap<'pool, W> {
    pub(crate) fn new(
        pool: &'pool WorkerPool,
        input: Input<'pool, W::Args>,
        chunk_size: usize,
    ) -> Self {
        Imap {
            feeder: Feeder::new(pool, input, chunk_size),
            ahead: VecDeque::new(),
            current: Vec::new().into_iter(),
        }
    }

    fn fill(&mut self) {
        while self.ahead.len() < self.feeder.limit() {
            let Some(chunk) = self.feeder.next_chunk() else {
                break;
            };
            let buffer = Arc::new(Items(ChunkBuffer::new()));
            match self
                .feeder
                .pool
                .dispatch::<W, _>(vec![(0, chunk, Arc::clone(&buffer))])
            {
                Ok(()) => self.ahead.push_back(buffer),
                Err(e) => self.feeder.error = Some(e),
            }
        }
    }
}

impl<W: WorkerFn> Iterator for Imap<'_, W> {
    type Item = Result<W::Output, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(item);
            }
            self.fill();
            let Some(front) = self.ahead.pop_front() else {
                return self.feeder.error.take().map(Err);
            };
            front.0.done.wait(None);
            self.current = front.0.take().into_iter();
        }
    }
}

/// Results of [`WorkerPool::imap_unordered`], in completion order: one `Result` per input
/// item.
///
/// # Examples
///
/// ```
/// use freethreading::{WorkerPool, worker};
///
/// #[worker]
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = WorkerPool::new(2)?;
/// let total: u64 = pool.imap_unordered(square, 0..100u64).map(Result::unwrap).sum();
/// assert_eq!(total, (0..100u64).map(|x| x * x).sum());
/// # Ok::<(), freethreading::Error>(())
/// ```
pub struct ImapUnordered<'pool, W: WorkerFn> {
    feeder: Feeder<'pool, W::Args>,
    sink: Arc<Items<Unordered<W::Output>>>,
    delivered: Receiver<Vec<Result<W::Output, Error>>>,
    outstanding: usize,
    current: std::vec::IntoIter<Result<W::Output, Error>>,
}

impl<W: WorkerFn> std::fmt::Debug for ImapUnordered<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("worker", &W::NAME)
            .field("chunks_in_flight", &self.outstanding)
            .finish_non_exhaustive()
    }
}

impl<'pool, W: WorkerFn> ImapUnordered<'pool, W> {
    pub(crate) fn new(
        pool: &'pool WorkerPool,
        input: Input<'pool, W::Args>,
        chunk_size: usize,
    ) -> Self {
        let (delivered_tx, delivered) = crossbeam_channel::unbounded();
        ImapUnordered {
            feeder: Feeder::new(pool, input, chunk_size),
            sink: Arc::new(Items(Unordered {
                delivered: delivered_tx,
            })),
            delivered,
            outstanding: 0,
            current: Vec::new().into_iter(),
        }
    }

    fn fill(&mut self) {
        while self.outstanding < self.feeder.limit() {
            let Some(chunk) = self.feeder.next_chunk() else {
                break;
            };
            match self
                .feeder
                .pool
                .dispatch::<W, _>(vec![(0, chunk, Arc::clone(&self.sink))])
            {
                Ok(()) => self.outstanding += 1,
                Err(e) => {
                    // The refused chunk still reports once (as terminated); do not wait for it.
                    let _ = self.delivered.recv();
                    self.feeder.error = Some(e);
                }
            }
        }
    }
}

impl<W: WorkerFn> Iterator for ImapUnordered<'_, W> {
    type Item = Result<W::Output, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(item);
            }
            self.fill();
            if self.outstanding == 0 {
                return self.feeder.error.take().map(Err);
            }
            // Every dispatched chunk reports exactly once, and we hold a sender: no hang.
            let batch = self.delivered.recv().expect("the sink holds a sender");
            self.outstanding -= 1;
            self.current = batch.into_iter();
        }
    }
}
