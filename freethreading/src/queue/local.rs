//! The threading backend's queue: a crossbeam channel plus the task accounting of `join`, and
//! a per-process registry that lets a handle be serialised without serialising the items.
//!
//! Items move between threads as they are, never encoded. The channel's sender and receiver
//! both live in the shared state, so the channel never disconnects while a handle exists.
//!
//! # Task accounting
//!
//! `puts` counts items put (raised *before* the send, so a consumer can never mark an item
//! done before it is counted; lowered again when a `try_put` or `put_timeout` fails), `done`
//! counts `task_done` calls. `task_done` is refused when `done` would pass `puts`. `join`
//! sleeps on a condition variable that `task_done` notifies when the two meet and a joiner is
//! registered (a Dekker pair on `joiners` and `done`, so the notification cannot be missed).

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::error::{GetError, PutError};
use crate::shm::ring::Wait;

pub(crate) struct Local<T> {
    tx: Sender<T>,
    rx: Receiver<T>,
    /// Which public type created it ("Queue" or "SimpleQueue").
    pub(crate) label: &'static str,
    pub(crate) maxsize: usize,
    puts: AtomicU64,
    done: AtomicU64,
    joiners: AtomicUsize,
    lock: Mutex<()>,
    settled: Condvar,
}

impl<T> Local<T> {
    pub(crate) fn new(maxsize: usize, label: &'static str) -> Local<T> {
        let (tx, rx) = if maxsize == 0 {
            crossbeam_channel::unbounded()
        } else {
            crossbeam_channel::bounded(maxsize)
        };
        Local {
            tx,
            rx,
            label,
            maxsize,
            puts: AtomicU64::new(0),
            done: AtomicU64::new(0),
            joiners: AtomicUsize::new(0),
            lock: Mutex::new(()),
            settled: Condvar::new(),
        }
    }

    pub(crate) fn put(&self, item: T, wait: Wait) -> Result<(), PutError<T>> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        let refused = match wait {
            Wait::No => self.tx.try_send(item).err().map(|e| e.into_inner()),
            Wait::Until(None) => self.tx.send(item).err().map(|e| e.into_inner()),
            Wait::Until(Some(deadline)) => self
                .tx
                .send_deadline(item, deadline)
                .err()
                .map(|e| e.into_inner()),
        };
        match refused {
            None => Ok(()),
            Some(item) => {
                self.puts.fetch_sub(1, Ordering::SeqCst);
                self.notify_if_settled();
                Err(PutError::Full(item))
            }
        }
    }

    pub(crate) fn get(&self, wait: Wait) -> Result<T, GetError> {
        let got = match wait {
            Wait::No => self.rx.try_recv().ok(),
            Wait::Until(None) => self.rx.recv().ok(),
            Wait::Until(Some(deadline)) => self.rx.recv_deadline(deadline).ok(),
        };
        got.ok_or(GetError::Empty)
    }

    pub(crate) fn len(&self) -> usize {
        self.rx.len()
    }

    pub(crate) fn unfinished(&self) -> u64 {
        let done = self.done.load(Ordering::SeqCst);
        self.puts.load(Ordering::SeqCst).saturating_sub(done)
    }

    pub(crate) fn task_done(&self) -> bool {
        let mut done = self.done.load(Ordering::SeqCst);
        loop {
            if done >= self.puts.load(Ordering::SeqCst) {
                return false;
            }
            match self.done.compare_exchange_weak(
                done,
                done + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => break,
                Err(now) => done = now,
            }
        }
        self.notify_if_settled();
        true
    }

    fn notify_if_settled(&self) {
        if self.unfinished() == 0 && self.joiners.load(Ordering::SeqCst) > 0 {
            let _guard = self.guard();
            self.settled.notify_all();
        }
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn join(&self, deadline: Option<Instant>) -> bool {
        if self.unfinished() == 0 {
            return true;
        }
        let mut guard = self.guard();
        self.joiners.fetch_add(1, Ordering::SeqCst);
        let settled = loop {
            if self.unfinished() == 0 {
                break true;
            }
            match deadline {
                None => {
                    guard = self.settled.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break false;
                    }
                    guard = self
                        .settled
                        .wait_timeout(guard, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        };
        self.joiners.fetch_sub(1, Ordering::SeqCst);
        settled
    }
}

type Exported = Box<dyn Any + Send + Sync>;

/// Threading-backend queues whose handle was serialised and not yet decoded, by id. Each
/// entry is the reference that travels with the bytes (as arena handles do): bytes that are
/// never decoded keep their queue alive until the program ends.
fn registry() -> MutexGuard<'static, HashMap<u64, Exported>> {
    static REGISTRY: LazyLock<Mutex<HashMap<u64, Exported>>> = LazyLock::new(Default::default);
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps a reference for serialised bytes; returns its id.
pub(crate) fn export<T: Send + 'static>(queue: &Arc<Local<T>>) -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    registry().insert(id, Box::new(Arc::clone(queue)));
    id
}

/// Takes back the reference exported under `id`.
pub(crate) fn import<T: Send + 'static>(id: u64, label: &str) -> Result<Arc<Local<T>>, String> {
    let entry = registry().remove(&id).ok_or(
        "stale queue handle: the queue no longer exists (were these bytes decoded twice?)",
    )?;
    let queue = entry
        .downcast::<Arc<Local<T>>>()
        .map_err(|_| "the queue handle is for another item type".to_owned())?;
    if queue.label != label {
        return Err(format!("expected a {label} handle, got a {}", queue.label));
    }
    Ok(*queue)
}
