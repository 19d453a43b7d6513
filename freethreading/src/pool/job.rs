//! A chunk of one call's items, packaged for a pool thread ([`LocalJob`]) or for a child process
//! ([`RemoteJob`]).
//!
//! Both kinds report to their [`Sink`] exactly once: when run, when failed, or, as a last
//! resort, when dropped unrun (reported as [`Error::Terminated`]).

use std::marker::PhantomData;
use std::sync::Arc;

use crate::codec::{self, ChunkReader, RemoteFailure};
use crate::pool::chunks::Chunk;
use crate::pool::sink::Sink;
use crate::process::wire;
use crate::{Error, WorkerFn};

/// Work for a pool thread.
pub(crate) trait LocalJob: Send {
    /// Runs the chunk here, catching each item's panic.
    fn run(self: Box<Self>);
    /// Reports `error` for every item without running any.
    fn fail(self: Box<Self>, error: Error);
    /// Whether the job may be dropped unrun because its results are no longer wanted (see
    /// [`Sink::cancel`]); if so, [`fail`](Self::fail) it with [`Error::Cancelled`].
    fn cancel(&self) -> bool;
}

/// Work for a child process: the encoded `TASK` frame plus what to do with the answer.
pub(crate) struct RemoteJob {
    pub(crate) frame: Vec<u8>,
    pub(crate) answer: Box<dyn RemoteAnswer>,
}

impl std::fmt::Debug for RemoteJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJob")
            .field("frame_len", &self.frame.len())
            .finish_non_exhaustive()
    }
}

/// Completes a [`RemoteJob`] from the child's answer.
pub(crate) trait RemoteAnswer: Send {
    /// The result chunk the child sent, or why there is none.
    fn complete(self: Box<Self>, answer: Result<&[u8], Error>);
    /// Called just before the task is sent to a child; `false` means it was cancelled and
    /// must not be sent (see [`Sink::claim`]).
    fn claim(&self) -> bool;
    /// Whether the task may be dropped unsent (see [`Sink::cancel`]).
    fn cancel(&self) -> bool;
}

/// A chunk run on a pool thread.
pub(crate) struct LocalChunk<W: WorkerFn, S: Sink<W::Output>> {
    items: Option<Chunk<W::Args>>,
    chunk: usize,
    sink: Arc<S>,
    _worker: PhantomData<W>,
}

impl<W: WorkerFn, S: Sink<W::Output>> LocalChunk<W, S> {
    pub(crate) fn new(chunk: usize, items: Chunk<W::Args>, sink: Arc<S>) -> Self {
        LocalChunk {
            items: Some(items),
            chunk,
            sink,
            _worker: PhantomData,
        }
    }

    fn report_unrun(&mut self, error: Error) {
        if let Some(items) = self.items.take() {
            let acc = self.sink.begin(self.chunk, items.start(), items.len());
            drop(items);
            self.sink.finish(acc, Some(error));
        }
    }
}

impl<W: WorkerFn, S: Sink<W::Output>> LocalJob for LocalChunk<W, S> {
    fn run(mut self: Box<Self>) {
        if !self.sink.claim(self.chunk) {
            self.report_unrun(Error::Cancelled);
            return;
        }
        let Some(mut items) = self.items.take() else {
            return;
        };
        let sink = &*self.sink;
        let mut acc = sink.begin(self.chunk, items.start(), items.len());
        let mut index = items.start();
        // One `catch_unwind` per run of items rather than per item keeps the loop tight; after
        // a panic the run resumes with the next item (the panicking one was consumed).
        loop {
            let run = crate::unwind::catch(|| {
                for args in items.by_ref() {
                    let output = W::call(args);
                    let more = sink.push(&mut acc, index, Ok(output));
                    index += 1;
                    if !more {
                        return false;
                    }
                }
                false
            });
            match run {
                Ok(_) => break,
                Err(message) => {
                    let more = sink.push(&mut acc, index, Err(Error::TaskPanicked { message }));
                    index += 1;
                    if !more {
                        break;
                    }
                }
            }
        }
        sink.finish(acc, None);
    }

    fn fail(mut self: Box<Self>, error: Error) {
        self.report_unrun(error);
    }

    fn cancel(&self) -> bool {
        self.sink.cancel(self.chunk)
    }
}

impl<W: WorkerFn, S: Sink<W::Output>> Drop for LocalChunk<W, S> {
    fn drop(&mut self) {
        self.report_unrun(Error::Terminated);
    }
}

/// Encodes a chunk into a `TASK` frame for `W`.
pub(crate) fn encode_task<W: WorkerFn>(items: &Chunk<W::Args>) -> Result<Vec<u8>, Error> {
    wire::task_frame(W::NAME, |buf| codec::encode_chunk(items.remaining(), buf))
}

/// Decodes a child's answer for one chunk into the sink.
pub(crate) struct RemoteChunk<O, S: Sink<O>> {
    chunk: usize,
    start: usize,
    len: usize,
    sink: Option<Arc<S>>,
    _output: PhantomData<fn() -> O>,
}

impl<O, S: Sink<O>> RemoteChunk<O, S> {
    pub(crate) fn new(chunk: usize, start: usize, len: usize, sink: Arc<S>) -> Self {
        RemoteChunk {
            chunk,
            start,
            len,
            sink: Some(sink),
            _output: PhantomData,
        }
    }

    /// Finishes the chunk with `error` and no results (encoding or dispatch failed).
    pub(crate) fn fail(mut self, error: Error) {
        if let Some(sink) = self.sink.take() {
            let acc = sink.begin(self.chunk, self.start, self.len);
            sink.finish(acc, Some(error));
        }
    }
}

impl<O, S> RemoteAnswer for RemoteChunk<O, S>
where
    O: serde::de::DeserializeOwned + Send + 'static,
    S: Sink<O>,
{
    fn complete(mut self: Box<Self>, answer: Result<&[u8], Error>) {
        let Some(sink) = self.sink.take() else {
            return;
        };
        let mut acc = sink.begin(self.chunk, self.start, self.len);
        let failure = match answer {
            Err(error) => Some(error),
            Ok(bytes) => decode_into(&*sink, &mut acc, self.start, self.len, bytes),
        };
        sink.finish(acc, failure);
    }

    fn claim(&self) -> bool {
        self.sink.as_ref().is_none_or(|sink| sink.claim(self.chunk))
    }

    fn cancel(&self) -> bool {
        self.sink
            .as_ref()
            .is_some_and(|sink| sink.cancel(self.chunk))
    }
}

/// Pushes each decoded item; a malformed answer becomes a protocol error for the rest.
fn decode_into<O, S>(
    sink: &S,
    acc: &mut S::Acc,
    start: usize,
    len: usize,
    bytes: &[u8],
) -> Option<Error>
where
    O: serde::de::DeserializeOwned,
    S: Sink<O>,
{
    let protocol = |detail: String| Some(Error::Protocol { detail });
    let mut reader = match ChunkReader::new(bytes) {
        Ok(reader) => reader,
        Err(e) => return protocol(format!("undecodable result chunk: {e}")),
    };
    if reader.len() != len {
        return protocol(format!(
            "{} results for a chunk of {len} items",
            reader.len()
        ));
    }
    let mut index = start;
    while let Some(item) = reader.next_item::<Result<O, RemoteFailure>>() {
        let result = match item {
            Ok(result) => result.map_err(Error::from),
            Err(e) => return protocol(format!("undecodable result: {e}")),
        };
        if !sink.push(acc, index, result) {
            return None;
        }
        index += 1;
    }
    if !reader.finish() {
        return protocol("trailing bytes after the last result".to_owned());
    }
    None
}

impl<O, S: Sink<O>> Drop for RemoteChunk<O, S> {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            let acc = sink.begin(self.chunk, self.start, self.len);
            sink.finish(acc, Some(Error::Terminated));
        }
    }
}
