//! The threading backend's engine: worker threads pulling jobs from one channel.
//!
//! Threads take the next job as soon as they are free, so uneven chunks balance themselves.
//! `close` drops the sending side: threads drain the queue and exit. `terminate` also sets a
//! flag that makes threads fail queued jobs instead of running them; a job already running
//! cannot be stopped (threads cannot be killed) and finishes in the background.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::Error;
use crate::pool::PoolConfig;
use crate::pool::job::LocalJob;

type Job = Box<dyn LocalJob>;

pub(crate) struct ThreadEngine {
    shared: Arc<Shared>,
}

struct Shared {
    config: PoolConfig,
    jobs: Receiver<Job>,
    state: Mutex<State>,
    exited: Condvar,
    terminated: AtomicBool,
    broken: OnceLock<Error>,
}

struct State {
    sender: Option<Sender<Job>>,
    handles: Vec<JoinHandle<()>>,
    live: usize,
    next_worker: usize,
}

impl ThreadEngine {
    pub(crate) fn start(config: PoolConfig) -> Result<Self, Error> {
        let (sender, jobs) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            config,
            jobs,
            state: Mutex::new(State {
                sender: Some(sender),
                handles: Vec::new(),
                live: 0,
                next_worker: 0,
            }),
            exited: Condvar::new(),
            terminated: AtomicBool::new(false),
            broken: OnceLock::new(),
        });
        {
            let mut state = shared.lock();
            for _ in 0..shared.config.workers {
                spawn_worker(&shared, &mut state)?;
            }
        }
        Ok(ThreadEngine { shared })
    }

    pub(crate) fn workers(&self) -> usize {
        self.shared.config.workers
    }

    /// Fails unless new work is accepted.
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if let Some(error) = self.shared.broken.get() {
            return Err(error.clone());
        }
        match self.shared.lock().sender {
            Some(_) => Ok(()),
            None => Err(Error::Closed),
        }
    }

    pub(crate) fn submit(&self, jobs: Vec<Job>) -> Result<(), Error> {
        if let Some(error) = self.shared.broken.get() {
            return Err(error.clone());
        }
        let state = self.shared.lock();
        let Some(sender) = &state.sender else {
            return Err(Error::Closed);
        };
        for job in jobs {
            // The receiver lives in `shared`, so sending cannot fail while we hold it.
            let _ = sender.send(job);
        }
        Ok(())
    }

    /// Fails every queued job whose sink agrees to drop it with [`Error::Cancelled`]; the
    /// others go back in the queue. Call it before [`close`](Self::close). No lock is held
    /// while sinks cancel, so their completion callbacks may use the pool.
    pub(crate) fn cancel_queued(&self) {
        let sender = self.shared.lock().sender.clone();
        let mut kept = Vec::new();
        while let Ok(job) = self.shared.jobs.try_recv() {
            if job.cancel() {
                job.fail(Error::Cancelled);
            } else {
                kept.push(job);
            }
        }
        match sender {
            Some(sender) => {
                for job in kept {
                    let _ = sender.send(job);
                }
            }
            // Already closed: the workers may have exited, so run what must run here.
            None => kept.into_iter().for_each(|job| job.run()),
        }
    }

    pub(crate) fn close(&self) {
        self.shared.lock().sender = None;
    }

    pub(crate) fn terminate(&self) {
        self.shared.terminated.store(true, Ordering::SeqCst);
        self.close();
        // Fail what is queued now; threads fail anything they still find.
        while let Ok(job) = self.shared.jobs.try_recv() {
            job.fail(Error::Terminated);
        }
    }

    pub(crate) fn join(&self) -> Result<(), Error> {
        if self.shared.lock().sender.is_some() {
            return Err(Error::StillRunning);
        }
        loop {
            let handles = std::mem::take(&mut self.shared.lock().handles);
            if handles.is_empty() {
                break;
            }
            for handle in handles {
                let _ = handle.join();
            }
        }
        let mut state = self.shared.lock();
        while state.live > 0 {
            state = self
                .shared
                .exited
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        Ok(())
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn spawn_worker(shared: &Arc<Shared>, state: &mut State) -> Result<(), Error> {
    state.next_worker += 1;
    let name = format!("{}-{}", shared.config.name_prefix, state.next_worker);
    let worker = Arc::clone(shared);
    let handle = std::thread::Builder::new()
        .name(name)
        .spawn(move || worker_loop(worker))?;
    state.handles.push(handle);
    state.live += 1;
    Ok(())
}

fn worker_loop(shared: Arc<Shared>) {
    struct Exit<'a>(&'a Shared);
    impl Drop for Exit<'_> {
        fn drop(&mut self) {
            self.0.lock().live -= 1;
            self.0.exited.notify_all();
        }
    }
    let _exit = Exit(&shared);
    if let Some(name) = std::thread::current().name() {
        crate::introspect::enter_worker_thread(name.to_owned());
    }

    if let Some(initializer) = &shared.config.initializer {
        if let Err(message) = initializer.run_here() {
            let _ = shared.broken.set(Error::InitializerFailed { message });
        }
    }
    let mut done = 0usize;
    while let Ok(job) = shared.jobs.recv() {
        if shared.terminated.load(Ordering::Relaxed) {
            job.fail(Error::Terminated);
            continue;
        }
        if let Some(error) = shared.broken.get() {
            job.fail(error.clone());
            continue;
        }
        job.run();
        done += 1;
        if shared.config.max_tasks_per_child == Some(done) {
            // Retire: a fresh thread (with a fresh initializer run) takes this one's place.
            let mut state = shared.lock();
            if !shared.terminated.load(Ordering::Relaxed)
                && spawn_worker(&shared, &mut state).is_ok()
            {
                return;
            }
            done = 0;
        }
    }
}
