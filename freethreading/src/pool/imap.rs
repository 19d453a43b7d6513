//! Lazy iterators over pool results: [`Imap`] (input order) and [`ImapUnordered`] (completion
//! order).
//!
//! Unlike Python's `imap`, which drains its input up front on a helper thread, these pull
//! input only to keep a bounded number of chunks in flight, so an endless or expensive input
//! iterator is fine.

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::pool::chunks;
use crate::pool::sink::{ChunkBuffer, Unordered};
use crate::{Error, WorkerFn, WorkerPool};

/// Chunks kept in flight per worker.
const AHEAD_PER_WORKER: usize = 8;

type Input<'a, A> = Box<dyn Iterator<Item = A> + 'a>;

/// Pulls the next chunk of up to `size` items.
fn next_chunk<A>(input: &mut Input<'_, A>, size: usize) -> Vec<A> {
    input.by_ref().take(size).collect()
}

/// Results of [`WorkerPool::imap`], in input order: one `Result` per input item.
///
/// A failed item yields its error and iteration goes on with the next item.
pub struct Imap<'pool, W: WorkerFn> {
    pool: &'pool WorkerPool,
    input: Input<'pool, W::Args>,
    chunk_size: usize,
    ahead: VecDeque<Arc<ChunkBuffer<W::Output>>>,
    current: std::vec::IntoIter<Result<W::Output, Error>>,
    exhausted: bool,
    error: Option<Error>,
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
            pool,
            input,
            chunk_size,
            ahead: VecDeque::new(),
            current: Vec::new().into_iter(),
            exhausted: false,
            error: None,
        }
    }

    fn fill(&mut self) {
        let limit = AHEAD_PER_WORKER * self.pool.workers();
        while !self.exhausted && self.error.is_none() && self.ahead.len() < limit {
            let items = next_chunk(&mut self.input, self.chunk_size);
            if items.is_empty() {
                self.exhausted = true;
                break;
            }
            let len = items.len();
            let buffer = Arc::new(ChunkBuffer::new());
            let chunk = chunks::split(items, len, None)
                .pop()
                .expect("one non-empty chunk");
            match self
                .pool
                .dispatch::<W, _>(vec![(0, chunk, Arc::clone(&buffer))])
            {
                Ok(()) => self.ahead.push_back(buffer),
                Err(e) => self.error = Some(e),
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
                return self.error.take().map(Err);
            };
            front.done.wait(None);
            self.current = front.take().into_iter();
        }
    }
}

/// Results of [`WorkerPool::imap_unordered`], in completion order: one `Result` per input
/// item.
pub struct ImapUnordered<'pool, W: WorkerFn> {
    pool: &'pool WorkerPool,
    input: Input<'pool, W::Args>,
    chunk_size: usize,
    sink: Arc<Unordered<W::Output>>,
    delivered: Receiver<Vec<Result<W::Output, Error>>>,
    outstanding: usize,
    current: std::vec::IntoIter<Result<W::Output, Error>>,
    exhausted: bool,
    error: Option<Error>,
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
            pool,
            input,
            chunk_size,
            sink: Arc::new(Unordered {
                delivered: delivered_tx,
            }),
            delivered,
            outstanding: 0,
            current: Vec::new().into_iter(),
            exhausted: false,
            error: None,
        }
    }

    fn fill(&mut self) {
        let limit = AHEAD_PER_WORKER * self.pool.workers();
        while !self.exhausted && self.error.is_none() && self.outstanding < limit {
            let items = next_chunk(&mut self.input, self.chunk_size);
            if items.is_empty() {
                self.exhausted = true;
                break;
            }
            let len = items.len();
            let chunk = chunks::split(items, len, None)
                .pop()
                .expect("one non-empty chunk");
            match self
                .pool
                .dispatch::<W, _>(vec![(0, chunk, Arc::clone(&self.sink))])
            {
                Ok(()) => self.outstanding += 1,
                Err(e) => {
                    // The refused chunk still reports once (as terminated); do not wait for it.
                    let _ = self.delivered.recv();
                    self.error = Some(e);
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
                return self.error.take().map(Err);
            }
            // Every dispatched chunk reports exactly once, and we hold a sender: no hang.
            let batch = self.delivered.recv().expect("the sink holds a sender");
            self.outstanding -= 1;
            self.current = batch.into_iter();
        }
    }
}
