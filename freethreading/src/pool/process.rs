//! The process backend's engine: one child per worker, with a dispatcher that keeps each child
//! busy without starving the others.
//!
//! # Dispatch
//!
//! Jobs wait in `pending` until a child has room. Each child may have several tasks in flight
//! (sent, not answered), up to its *window*: enough queued work to hide the round trip, but not
//! so much that one child hoards chunks while another idles. The window adapts to how long the
//! child reports tasks take: tiny tasks get a deep pipeline (one wake-up serves many), long
//! tasks get one at a time (greedy balancing, like Python's pool).
//!
//! # Faults
//!
//! A child records the task it is running in a shared page (see
//! [`crate::process::progress`]). When it dies, only that task fails (with the pid and exit
//! reason); its other unanswered tasks go back to the front of `pending` for another child.
//! Those are tasks that never started, and tasks that finished but whose answers were still in
//! the dead child's batch: the latter run again. A child killed while idle fails no task. A
//! replacement child is started unless the pool is closing down.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::Error;
use crate::pool::PoolConfig;
use crate::pool::job::{RemoteAnswer, RemoteJob};
use crate::process::link::{self, Link, LinkReader};
use crate::process::spawn::{self, ChildCommand};
use crate::process::wire::{self, FromChild};

/// Queued work per child that the window aims for.
const TARGET_QUEUED: Duration = Duration::from_micros(500);
/// The deepest pipeline a child gets.
const MAX_WINDOW: usize = 128;

pub(crate) struct ProcessEngine {
    shared: Arc<Shared>,
}

struct Shared {
    config: PoolConfig,
    command: ChildCommand,
    names: std::sync::atomic::AtomicUsize,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    pending: VecDeque<RemoteJob>,
    children: Vec<Slot>,
    next_task: u64,
    next_slot: u64,
    closed: bool,
    terminated: bool,
    broken: Option<Error>,
    /// Reader threads still running (each owns one child until it is reaped).
    readers: usize,
    max_tasks_per_child: Option<usize>,
}

struct InFlight {
    id: u64,
    frame: Arc<Vec<u8>>,
    answer: Box<dyn RemoteAnswer>,
}

struct Slot {
    key: u64,
    link: Link,
    /// Sent, unanswered tasks, oldest first. The frame is kept to resend it elsewhere if this
    /// child dies before starting it.
    in_flight: VecDeque<InFlight>,
    window: usize,
    average_run_nanos: f64,
    sent: usize,
    retiring: bool,
    shutdown_sent: bool,
}

impl ProcessEngine {
    pub(crate) fn start(config: PoolConfig) -> Result<Self, Error> {
        let shared = Arc::new(Shared {
            command: ChildCommand::for_this_thread(),
            names: std::sync::atomic::AtomicUsize::new(0),
            config: config.clone(),
            state: Mutex::new(State {
                pending: VecDeque::new(),
                children: Vec::new(),
                next_task: 1,
                next_slot: 0,
                closed: false,
                terminated: false,
                broken: None,
                readers: 0,
                max_tasks_per_child: config.max_tasks_per_child,
            }),
            changed: Condvar::new(),
        });
        // Start every child first, then collect the handshakes: startup costs about one child.
        let starting: Vec<_> = (0..shared.config.workers)
            .map(|_| spawn::start(&shared.command, &shared.next_name()))
            .collect();
        let mut failure = None;
        for child in starting {
            let opened = child
                .and_then(|child| child.handshake(shared.config.start_timeout))
                .and_then(|spawned| add_child(&shared, spawned));
            if let Err(e) = opened {
                failure.get_or_insert(e);
            }
        }
        let engine = ProcessEngine { shared };
        if let Some(e) = failure {
            engine.terminate();
            engine.wait_for_readers();
            return Err(e);
        }
        Ok(engine)
    }

    pub(crate) fn workers(&self) -> usize {
        self.shared.config.workers
    }

    pub(crate) fn check_open(&self) -> Result<(), Error> {
        let state = self.shared.lock();
        state.accepting()
    }

    pub(crate) fn submit(&self, jobs: Vec<RemoteJob>) -> Result<(), Error> {
        let mut state = self.shared.lock();
        state.accepting()?;
        state.pending.extend(jobs);
        state.pump();
        Ok(())
    }

    /// Fails every job not yet sent to a child whose sink agrees to drop it with
    /// [`Error::Cancelled`]; the others go back first in line. Tasks already sent count as
    /// started. Call it before [`close`](Self::close). No lock is held while sinks cancel, so
    /// their completion callbacks may use the pool.
    pub(crate) fn cancel_queued(&self) {
        let queued = std::mem::take(&mut self.shared.lock().pending);
        let mut kept = VecDeque::new();
        for job in queued {
            if job.answer.cancel() {
                job.answer.complete(Err(Error::Cancelled));
            } else {
                kept.push_back(job);
            }
        }
        let stranded = {
            let mut state = self.shared.lock();
            if state.terminated || state.broken.is_some() {
                // Ended meanwhile: whoever ended it settled the queue it saw, so settle ours.
                Some((kept, state.broken.clone()))
            } else {
                for job in kept.into_iter().rev() {
                    state.pending.push_front(job);
                }
                state.pump();
                None
            }
        };
        if let Some((jobs, broken)) = stranded {
            for job in jobs {
                job.answer
                    .complete(Err(broken.clone().unwrap_or(Error::Terminated)));
            }
        }
    }

    pub(crate) fn close(&self) {
        let mut state = self.shared.lock();
        state.closed = true;
        state.pump();
    }

    pub(crate) fn terminate(&self) {
        let pending = {
            let mut state = self.shared.lock();
            state.closed = true;
            state.terminated = true;
            for slot in &state.children {
                slot.link.kill();
            }
            std::mem::take(&mut state.pending)
        };
        // Dropping an unsent job reports `Terminated` to its sink.
        drop(pending);
    }

    pub(crate) fn join(&self) -> Result<(), Error> {
        if !self.shared.lock().closed {
            return Err(Error::StillRunning);
        }
        self.wait_for_readers();
        Ok(())
    }

    fn wait_for_readers(&self) {
        let mut state = self.shared.lock();
        while state.readers > 0 {
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The pids of the live children (for tests and diagnostics).
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.shared
            .lock()
            .children
            .iter()
            .map(|s| s.link.pid())
            .collect()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The name of the next child: the pool's prefix and a number, as for pool threads.
    fn next_name(&self) -> String {
        let n = self
            .names
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        format!("{}-{n}", self.config.name_prefix)
    }
}

impl State {
    fn accepting(&self) -> Result<(), Error> {
        if let Some(error) = &self.broken {
            return Err(error.clone());
        }
        if self.closed {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Hands pending jobs to children with room, and tells idle children to stop when the
    /// pool is closed and drained (or when they reached `max_tasks_per_child`).
    fn pump(&mut self) {
        while !self.pending.is_empty() {
            let Some(slot) = self
                .children
                .iter_mut()
                .filter(|s| !s.retiring && s.in_flight.len() < s.window)
                .min_by_key(|s| s.in_flight.len())
            else {
                break;
            };
            let RemoteJob { mut frame, answer } = self.pending.pop_front().expect("not empty");
            if !answer.claim() {
                // Cancelled while queued: it never runs. Its sink expects no more than this.
                answer.complete(Err(Error::Cancelled));
                continue;
            }
            let id = self.next_task;
            self.next_task += 1;
            wire::set_task_id(&mut frame, id);
            let frame = Arc::new(frame);
            // A failed send means the child is gone; its reader will settle the task.
            let _ = slot.link.send(Arc::clone(&frame));
            slot.in_flight.push_back(InFlight { id, frame, answer });
            slot.sent += 1;
            if self.max_tasks_per_child.is_some_and(|max| slot.sent >= max) {
                slot.retiring = true;
            }
        }
        let drained = self.closed && self.pending.is_empty();
        for slot in &mut self.children {
            if slot.in_flight.is_empty() && !slot.shutdown_sent && (slot.retiring || drained) {
                slot.shutdown_sent = true;
                let _ = slot.link.send(Arc::new(wire::shutdown_frame()));
            }
        }
    }
}

/// Registers a handshaken child, sends it the initializer, and starts its reader thread.
fn add_child(shared: &Arc<Shared>, spawned: spawn::Spawned) -> Result<(), Error> {
    let (link, reader) = link::open(spawned)?;
    if let Some(initializer) = &shared.config.initializer {
        link.send(Arc::new(initializer.frame()?));
    }
    let key = {
        let mut state = shared.lock();
        let key = state.next_slot;
        state.next_slot += 1;
        state.children.push(Slot {
            key,
            link,
            in_flight: VecDeque::new(),
            window: 1,
            average_run_nanos: 0.0,
            sent: 0,
            retiring: false,
            shutdown_sent: false,
        });
        state.readers += 1;
        state.pump();
        key
    };
    let worker = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("freethreading-reader".to_owned())
        .spawn(move || read_answers(worker, key, reader));
    if let Err(e) = spawned {
        let mut state = shared.lock();
        state.readers -= 1;
        if let Some(at) = state.children.iter().position(|s| s.key == key) {
            let slot = state.children.remove(at);
            slot.link.kill();
        }
        return Err(e.into());
    }
    Ok(())
}

/// How a child's connection ended.
enum End {
    /// End of stream (a clean exit, or a death).
    Eof,
    /// It sent bytes we could not accept.
    Protocol(Error),
    /// Its initializer failed; the pool is broken.
    InitFailed(String),
}

fn read_answers(shared: Arc<Shared>, key: u64, mut reader: LinkReader) {
    let end = loop {
        let (answer, outcome) = match reader.next() {
            Ok(None) => break End::Eof,
            Err(e) => break End::Protocol(e),
            Ok(Some(FromChild::Result {
                id,
                run_nanos,
                chunk,
            })) => match take_answer(&shared, key, id, Some(run_nanos)) {
                Ok(answer) => (answer, Ok(chunk)),
                Err(e) => break End::Protocol(e),
            },
            Ok(Some(FromChild::Failed { id, failure })) => {
                match take_answer(&shared, key, id, None) {
                    Ok(answer) => (answer, Err(Error::from(failure))),
                    Err(e) => break End::Protocol(e),
                }
            }
            Ok(Some(FromChild::InitFailed(message))) => break End::InitFailed(message),
            Ok(Some(other)) => {
                break End::Protocol(Error::Protocol {
                    detail: format!("unexpected frame after the handshake: {other:?}"),
                });
            }
        };
        answer.complete(outcome);
    };
    child_ended(&shared, key, reader, end);
}

/// Removes the answered task (which must be the oldest in flight) and refills the child.
fn take_answer(
    shared: &Shared,
    key: u64,
    id: u64,
    run_nanos: Option<u64>,
) -> Result<Box<dyn RemoteAnswer>, Error> {
    let mut state = shared.lock();
    let slot = state
        .children
        .iter_mut()
        .find(|s| s.key == key)
        .ok_or_else(|| Error::Protocol {
            detail: "answer from a child that is no longer part of the pool".to_owned(),
        })?;
    match slot.in_flight.front() {
        Some(front) if front.id == id => {}
        _ => {
            return Err(Error::Protocol {
                detail: format!("answer for task {id}, which is not the oldest in flight"),
            });
        }
    }
    let answer = slot.in_flight.pop_front().expect("checked above").answer;
    if let Some(nanos) = run_nanos {
        let nanos = nanos as f64;
        slot.average_run_nanos = if slot.average_run_nanos == 0.0 {
            nanos
        } else {
            0.8 * slot.average_run_nanos + 0.2 * nanos
        };
        let target = TARGET_QUEUED.as_nanos() as f64;
        slot.window = ((target / slot.average_run_nanos.max(1.0)) as usize).clamp(1, MAX_WINDOW);
    }
    if shared
        .config
        .max_tasks_per_child
        .is_some_and(|max| slot.sent >= max)
    {
        slot.retiring = true;
    }
    state.pump();
    Ok(answer)
}

/// Cleans up after a child's connection ended: reap it, settle its tasks, replace it if the
/// pool still needs it.
fn child_ended(shared: &Arc<Shared>, key: u64, reader: LinkReader, end: End) {
    let expected = {
        let state = shared.lock();
        let slot = state.children.iter().find(|s| s.key == key);
        state.terminated || slot.is_some_and(|s| s.shutdown_sent && s.in_flight.is_empty())
    };
    let (reason, running) = reader.reap(!expected || !matches!(end, End::Eof));
    let (failed, error, replace) = {
        let mut state = shared.lock();
        let Some(at) = state.children.iter().position(|s| s.key == key) else {
            state.readers -= 1;
            shared.changed.notify_all();
            return;
        };
        let slot = state.children.remove(at);
        let pid = slot.link.pid();
        let mut in_flight = slot.in_flight;
        if let End::InitFailed(message) = &end {
            state.broken.get_or_insert(Error::InitializerFailed {
                message: message.clone(),
            });
        }
        let error = if state.terminated {
            Error::Terminated
        } else if let Some(broken) = &state.broken {
            broken.clone()
        } else {
            match &end {
                End::Protocol(e) => e.clone(),
                _ => Error::WorkerDied { pid, reason },
            }
        };
        let mut failed: Vec<Box<dyn RemoteAnswer>> = Vec::new();
        if state.terminated || state.broken.is_some() {
            failed.extend(in_flight.drain(..).map(|task| task.answer));
            failed.extend(state.pending.drain(..).map(|job| job.answer));
        } else {
            // Blame the task the child recorded as running (with a protocol error, the oldest
            // one). Every other unanswered task goes back first in line, in order: those that
            // never started, and those that finished but whose answers died with the child.
            let culprit = match end {
                End::Protocol(_) => in_flight.front().map(|task| task.id),
                _ => running,
            };
            if let Some(at) = in_flight.iter().position(|task| Some(task.id) == culprit) {
                failed.push(in_flight.remove(at).expect("position is in range").answer);
            }
            for task in in_flight.into_iter().rev() {
                state.pending.push_front(RemoteJob {
                    frame: Arc::unwrap_or_clone(task.frame),
                    answer: task.answer,
                });
            }
        }
        // Replace unless the pool is ending, or closed with nothing left to run.
        let replace = !state.terminated
            && state.broken.is_none()
            && !(state.closed && state.pending.is_empty());
        (failed, error, replace)
    };
    // Replace the child before reporting its failure, so that whoever sees the error also
    // sees a healed pool.
    if replace {
        let added = spawn::start(&shared.command, &shared.next_name())
            .and_then(|child| child.handshake(shared.config.start_timeout))
            .and_then(|spawned| add_child(shared, spawned));
        if let Err(e) = added {
            let stranded = {
                let mut state = shared.lock();
                if state.children.is_empty() {
                    state.broken.get_or_insert(e.clone());
                    state.pending.drain(..).map(|job| job.answer).collect()
                } else {
                    Vec::new()
                }
            };
            for answer in stranded {
                answer.complete(Err(e.clone()));
            }
        }
    }
    for answer in failed {
        answer.complete(Err(error.clone()));
    }
    let mut state = shared.lock();
    state.readers -= 1;
    state.pump();
    shared.changed.notify_all();
}
