//! The parent's connection to one child: a writer thread that batches frames onto the socket,
//! and a reader the owner drives from its own thread.
//!
//! Writing and reading are on separate threads on purpose: a thread that blocks writing a large
//! task while the child blocks writing a large answer would deadlock if it were also the only
//! reader.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};

use crate::process::progress::ProgressPage;
use crate::process::spawn::{ChildProcess, Spawned};
use crate::process::wire::{self, FromChild};
use crate::{Error, ExitReason};

/// Frames at least this large are written on their own instead of being copied into a batch.
const BATCH_COPY_LIMIT: usize = 64 * 1024;

/// The sending half of a connection, and the child process itself.
#[derive(Debug)]
pub(crate) struct Link {
    pid: u32,
    frames: Sender<Arc<Vec<u8>>>,
    child: Arc<Mutex<ChildProcess>>,
}

/// The receiving half of a connection.
#[derive(Debug)]
pub(crate) struct LinkReader {
    reader: BufReader<UnixStream>,
    frame: Vec<u8>,
    child: Arc<Mutex<ChildProcess>>,
    progress: ProgressPage,
}

/// Splits a handshaken child into its two halves and starts the writer thread.
pub(crate) fn open(spawned: Spawned) -> Result<(Link, LinkReader), Error> {
    let Spawned {
        child,
        pid,
        stream,
        progress,
    } = spawned;
    let write_stream = stream.try_clone()?;
    let (frames, queue) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name(format!("freethreading-writer-{pid}"))
        .spawn(move || write_frames(write_stream, queue))?;
    let child = Arc::new(Mutex::new(child));
    Ok((
        Link {
            pid,
            frames,
            child: Arc::clone(&child),
        },
        LinkReader {
            reader: BufReader::with_capacity(256 * 1024, stream),
            frame: Vec::new(),
            child,
            progress,
        },
    ))
}

/// For a child that gets a fixed few frames (a `Worker`'s task and stop): writes them at once
/// from this thread, with no writer thread, and returns the reading half.
pub(crate) fn send_then_read(spawned: Spawned, frames: &[&[u8]]) -> Result<LinkReader, Error> {
    let Spawned {
        child,
        stream,
        progress,
        ..
    } = spawned;
    let mut writer = &stream;
    for frame in frames {
        // The child reads every frame before answering, so this cannot deadlock; a failure
        // means the child is already gone, which reading will report.
        if writer.write_all(frame).is_err() {
            break;
        }
    }
    Ok(LinkReader {
        reader: BufReader::with_capacity(64 * 1024, stream),
        frame: Vec::new(),
        child: Arc::new(Mutex::new(child)),
        progress,
    })
}

fn write_frames(mut stream: UnixStream, queue: Receiver<Arc<Vec<u8>>>) {
    let mut batch = Vec::with_capacity(BATCH_COPY_LIMIT);
    while let Ok(first) = queue.recv() {
        let mut next = Some(first);
        while let Some(frame) = next.take() {
            if frame.len() >= BATCH_COPY_LIMIT {
                if !batch.is_empty() && stream.write_all(&batch).is_err() {
                    return;
                }
                batch.clear();
                if stream.write_all(&frame).is_err() {
                    return;
                }
            } else {
                batch.extend_from_slice(&frame);
            }
            if batch.len() < BATCH_COPY_LIMIT {
                next = queue.try_recv().ok();
            }
        }
        if !batch.is_empty() && stream.write_all(&batch).is_err() {
            // The child is gone; its reader reports why.
            return;
        }
        batch.clear();
    }
    // Every sender is gone: closing our half tells the child to finish.
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

impl Link {
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Queues a frame; false if the writer has stopped (the child is gone).
    pub(crate) fn send(&self, frame: Arc<Vec<u8>>) -> bool {
        self.frames.send(frame).is_ok()
    }

    /// Kills the child now (`SIGKILL`). Harmless if it already exited; never signals a reaped
    /// pid, because `Child` remembers that it was waited for.
    pub(crate) fn kill(&self) {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).kill();
    }
}

impl LinkReader {
    /// The next frame, `Ok(None)` at the end of the stream.
    pub(crate) fn next(&mut self) -> Result<Option<FromChild<'_>>, Error> {
        if !wire::read_frame(&mut self.reader, &mut self.frame)? {
            return Ok(None);
        }
        FromChild::parse(&self.frame).map(Some)
    }

    /// Makes sure the child is dead and reaped, and says how it ended and which task it was
    /// running. After `kill` a child that had already exited keeps its own status.
    pub(crate) fn reap(self, force: bool) -> (ExitReason, Option<u64>) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if force {
            child.kill();
        }
        let reason = child.wait();
        (reason, self.progress.running())
    }
}
