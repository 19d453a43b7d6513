//! [`Worker`]: one `#[worker]` function run on its own thread or in its own child process,
//! Python's `Thread`/`Process`.
//!
//! A thread worker runs the target under `catch_unwind`. A process worker is a child started
//! like a pool's, sent one task and then told to stop; a monitor thread in the parent reads
//! the answer, reaps the child and records how the target ended. Either way the outcome is a
//! [`WorkerExit`], which Python does not expose at all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::codec::{self, ChunkReader, RemoteFailure};
use crate::introspect::{WorkerInfo, current_worker, enter_worker_thread, this_thread_ident};
use crate::pool::sink::Latch;
use crate::process::link;
use crate::process::spawn::{self, ChildCommand, DEFAULT_START_TIMEOUT};
use crate::process::wire::{self, FromChild};
use crate::{Backend, Error, ExitReason, WorkerFn};

/// How a worker's target ended.
///
/// # Examples
///
/// ```
/// use freethreading::{Worker, WorkerExit, worker};
///
/// #[worker]
/// fn fail(reason: String) { panic!("{reason}") }
///
/// let w = Worker::new(fail, ("no input".to_owned(),))?;
/// w.start()?;
/// match w.join()? {
///     WorkerExit::Returned => println!("done"),
///     WorkerExit::Panicked { message } => assert_eq!(message, "no input"),
///     WorkerExit::Died { pid, reason } => println!("process {pid} died: {reason}"),
/// }
/// # Ok::<(), freethreading::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerExit {
    /// The function returned.
    Returned,
    /// The function panicked with this message.
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The worker's process died before the function returned (process backend only).
    Died {
        /// The child's process id.
        pid: u32,
        /// Its exit code or signal.
        reason: ExitReason,
    },
}

type ThreadTarget = Box<dyn FnOnce() -> WorkerExit + Send>;
type DecodeOutcome = fn(&[u8]) -> Result<WorkerExit, Error>;

enum Target {
    Thread(ThreadTarget),
    Process {
        frame: Vec<u8>,
        decode: DecodeOutcome,
        command: ChildCommand,
    },
}

struct Settings {
    name: String,
    daemon: bool,
    ident: Option<u64>,
    target: Option<Target>,
    started: bool,
}

struct Inner {
    backend: Backend,
    settings: Mutex<Settings>,
    outcome: Mutex<Option<Result<WorkerExit, Error>>>,
    done: Latch,
}

impl Inner {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn info(&self) -> Option<WorkerInfo> {
        let settings = self.settings();
        settings
            .ident
            .map(|ident| WorkerInfo::new(settings.name.clone(), ident))
    }

    fn finish(self: &Arc<Self>, outcome: Result<WorkerExit, Error>) {
        *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        live().retain(|w| !Arc::ptr_eq(w, self));
        self.done.set();
    }
}

/// Workers that started and have not finished, in start order.
fn live() -> MutexGuard<'static, Vec<Arc<Inner>>> {
    static LIVE: Mutex<Vec<Arc<Inner>>> = Mutex::new(Vec::new());
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn live_workers() -> Vec<WorkerInfo> {
    let workers: Vec<Arc<Inner>> = live().clone();
    workers.iter().filter_map(|w| w.info()).collect()
}

/// Waits for every live non-daemon worker, as Python does at interpreter exit.
pub(crate) fn join_non_daemon() {
    loop {
        let waiting: Vec<Arc<Inner>> = live()
            .iter()
            .filter(|w| !w.settings().daemon)
            .cloned()
            .collect();
        if waiting.is_empty() {
            return;
        }
        for worker in waiting {
            worker.done.wait(None);
        }
    }
}

/// One `#[worker]` function running on its own thread or in its own child process: Python's
/// `Worker` (`threading.Thread` / `multiprocessing.Process`).
///
/// Create it with the target and its argument tuple, [`start`](Self::start) it once, and
/// [`join`](Self::join) it to learn how the target ended. The arguments are checked (encoded)
/// when the worker is created, so a value that cannot be sent fails early, like Python's
/// picklability check.
///
/// # Examples
///
/// ```
/// use freethreading::{Worker, WorkerExit, current_worker, worker};
///
/// #[worker]
/// fn greet(greeting: String) {
///     println!("{greeting} from {}", current_worker().name());
/// }
///
/// let w = Worker::builder(greet, ("Hello".to_owned(),)).name("greeter").build()?;
/// w.start()?;
/// assert_eq!(w.join()?, WorkerExit::Returned);
/// assert!(!w.is_alive());
/// # Ok::<(), freethreading::Error>(())
/// ```
///
/// # Differences from Python
///
/// - `join` reports the outcome ([`WorkerExit`]) instead of hiding it: returned, panicked
///   with its message, or (process backend) died with its exit code or signal.
/// - The default name is `Worker-<n>` on both backends, and the name and daemon flag are
///   fixed once the worker has started ([`Error::AlreadyStarted`]), on both backends.
/// - A process worker may start workers of its own, daemon or not.
pub struct Worker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings = self.inner.settings();
        f.debug_struct("Worker")
            .field("name", &settings.name)
            .field("backend", &self.inner.backend)
            .field("daemon", &settings.daemon)
            .field("ident", &settings.ident)
            .field("alive", &(settings.started && !self.inner.done.is_set()))
            .finish()
    }
}

/// Configures a [`Worker`]; made by [`Worker::builder`].
pub struct WorkerBuilder {
    make: Box<dyn FnOnce(Backend) -> Result<Target, Error>>,
    name: Option<String>,
    daemon: Option<bool>,
    backend: Option<Backend>,
}

impl std::fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("name", &self.name)
            .field("daemon", &self.daemon)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl WorkerBuilder {
    /// The worker's name (default `Worker-<n>`).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let w = Worker::builder(noop, ()).name("cleaner").build()?;
    /// assert_eq!(w.name(), "cleaner");
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether the program may end without waiting for this worker (default: inherited from
    /// the creating worker, `false` in the main program). Daemon process workers are killed
    /// when the parent exits.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let w = Worker::builder(noop, ()).daemon(true).build()?;
    /// assert!(w.daemon());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }

    /// Run on this backend instead of the one in force.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Backend, Worker, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let w = Worker::builder(noop, ()).backend(Backend::Threading).build()?;
    /// assert_eq!(w.backend(), Backend::Threading);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Creates the worker (not started).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBackend`] for a bad `FREETHREADING_BACKEND`; a serialisation error if
    /// the arguments cannot be encoded (process backend); [`Error::DuplicateWorkerName`].
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let w = Worker::builder(noop, ()).build()?;
    /// assert!(!w.is_alive());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn build(self) -> Result<Worker, Error> {
        let backend = match self.backend {
            Some(backend) => backend,
            None => crate::backend::try_get_backend()?,
        };
        crate::process::child::refuse_stray_child();
        crate::registry::validate()?;
        let target = (self.make)(backend)?;
        static NUMBER: AtomicU64 = AtomicU64::new(0);
        let name = self
            .name
            .unwrap_or_else(|| format!("Worker-{}", NUMBER.fetch_add(1, Ordering::Relaxed) + 1));
        let daemon = self.daemon.unwrap_or_else(inherited_daemon);
        Ok(Worker {
            inner: Arc::new(Inner {
                backend,
                settings: Mutex::new(Settings {
                    name,
                    daemon,
                    ident: None,
                    target: Some(target),
                    started: false,
                }),
                outcome: Mutex::new(None),
                done: Latch::default(),
            }),
        })
    }
}

thread_local! {
    static IN_DAEMON: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn inherited_daemon() -> bool {
    IN_DAEMON.with(std::cell::Cell::get)
}

fn make_target<W: WorkerFn>(args: W::Args, backend: Backend) -> Result<Target, Error> {
    match backend {
        Backend::Threading => Ok(Target::Thread(Box::new(
            move || match crate::unwind::catch(|| W::call(args)) {
                Ok(_) => WorkerExit::Returned,
                Err(message) => WorkerExit::Panicked { message },
            },
        ))),
        Backend::Multiprocessing => {
            let mut frame = wire::task_frame(W::NAME, |buf| {
                codec::encode_chunk(std::slice::from_ref(&args), buf)
            })?;
            wire::set_task_id(&mut frame, 1);
            Ok(Target::Process {
                frame,
                decode: decode_outcome::<W::Output>,
                command: ChildCommand::for_this_thread(),
            })
        }
    }
}

fn decode_outcome<O: serde::de::DeserializeOwned>(chunk: &[u8]) -> Result<WorkerExit, Error> {
    let mut reader = ChunkReader::new(chunk)?;
    match reader.next_item::<Result<O, RemoteFailure>>() {
        Some(Ok(Ok(_))) => Ok(WorkerExit::Returned),
        Some(Ok(Err(RemoteFailure::Panicked(message)))) => Ok(WorkerExit::Panicked { message }),
        Some(Ok(Err(failure))) => Err(failure.into()),
        Some(Err(e)) => Err(e),
        None => Err(Error::Protocol {
            detail: "an empty answer for a worker's task".to_owned(),
        }),
    }
}

impl Worker {
    /// A worker that will call `target` with `args`, on the backend in force.
    ///
    /// # Errors
    ///
    /// As [`WorkerBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let w = Worker::new(noop, ())?;
    /// w.start()?;
    /// assert_eq!(w.join()?, WorkerExit::Returned);
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn new<W: WorkerFn>(target: W, args: W::Args) -> Result<Self, Error> {
        Self::builder(target, args).build()
    }

    /// A builder for a worker with a name, daemon flag or backend.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let w = Worker::builder(noop, ()).name("n").daemon(false).build()?;
    /// assert_eq!(w.name(), "n");
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn builder<W: WorkerFn>(target: W, args: W::Args) -> WorkerBuilder {
        let _ = target;
        WorkerBuilder {
            make: Box::new(move |backend| make_target::<W>(args, backend)),
            name: None,
            daemon: None,
            backend: None,
        }
    }

    /// Starts the worker.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyStarted`] on a second call; on the process backend the child's start
    /// errors ([`Error::Spawn`], [`Error::ChildNotInitialized`], [`Error::Handshake`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Error, Worker, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let w = Worker::new(noop, ())?;
    /// w.start()?;
    /// assert!(matches!(w.start(), Err(Error::AlreadyStarted)));
    /// w.join()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn start(&self) -> Result<(), Error> {
        let (target, name, daemon) = {
            let mut settings = self.inner.settings();
            if settings.started {
                return Err(Error::AlreadyStarted);
            }
            let target = settings.target.take().ok_or(Error::AlreadyStarted)?;
            settings.started = true;
            (target, settings.name.clone(), settings.daemon)
        };
        let started = match target {
            Target::Thread(run) => self.start_thread(run, name, daemon),
            Target::Process {
                frame,
                decode,
                command,
            } => self.start_process(frame, decode, &command, &name),
        };
        if let Err(e) = &started {
            self.inner.finish(Err(e.clone()));
        }
        started
    }

    fn start_thread(&self, run: ThreadTarget, name: String, daemon: bool) -> Result<(), Error> {
        let inner = Arc::clone(&self.inner);
        let (ident_tx, ident_rx) = std::sync::mpsc::channel();
        live().push(Arc::clone(&self.inner));
        let spawned = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                enter_worker_thread(name);
                IN_DAEMON.with(|d| d.set(daemon));
                let _ = ident_tx.send(this_thread_ident());
                let exit = run();
                inner.finish(Ok(exit));
            });
        match spawned {
            Ok(_) => {
                // The thread sends its id before running anything.
                let ident = ident_rx.recv().map_err(|_| Error::Protocol {
                    detail: "worker thread ended before starting".to_owned(),
                })?;
                self.inner.settings().ident = Some(ident);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn start_process(
        &self,
        frame: Vec<u8>,
        decode: DecodeOutcome,
        command: &ChildCommand,
        name: &str,
    ) -> Result<(), Error> {
        let mut starting = spawn::start(command, name)?;
        // A large task could fill the socket before the child reads it: send it early only
        // when it fits comfortably.
        let early = frame.len() <= 64 * 1024;
        let shutdown = wire::shutdown_frame();
        if early {
            starting.send_early(&[&frame, &shutdown]);
        }
        let spawned = starting.handshake(DEFAULT_START_TIMEOUT)?;
        let pid = spawned.pid;
        let later: &[&[u8]] = if early { &[] } else { &[&frame, &shutdown] };
        let mut reader = link::send_then_read(spawned, later)?;
        self.inner.settings().ident = Some(u64::from(pid));
        live().push(Arc::clone(&self.inner));
        let inner = Arc::clone(&self.inner);
        let monitor = std::thread::Builder::new()
            .name(format!("freethreading-worker-{pid}"))
            .spawn(move || {
                let answer = match reader.next() {
                    Ok(Some(FromChild::Result { chunk, .. })) => Some(decode(chunk)),
                    Ok(Some(FromChild::Failed { failure, .. })) => Some(Err(failure.into())),
                    Ok(Some(other)) => Some(Err(Error::Protocol {
                        detail: format!("unexpected frame from a worker: {other:?}"),
                    })),
                    Ok(None) => None,
                    Err(e) => Some(Err(e)),
                };
                // After its answer the child exits by itself (it was told to stop).
                let forced = !matches!(answer, Some(Ok(_)));
                let (reason, _) = reader.reap(forced);
                let outcome = match answer {
                    Some(outcome) => outcome,
                    None => Ok(WorkerExit::Died { pid, reason }),
                };
                inner.finish(outcome);
            });
        if let Err(e) = monitor {
            return Err(e.into());
        }
        Ok(())
    }

    /// Waits for the worker to finish and says how its target ended.
    ///
    /// # Errors
    ///
    /// [`Error::NotStarted`] before [`start`](Self::start); [`Error::InvalidArgument`] when a
    /// worker joins itself; the error that prevented the target from running at all (a
    /// failed start, a corrupt answer).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn fail() { panic!("oops") }
    ///
    /// let w = Worker::new(fail, ())?;
    /// w.start()?;
    /// assert_eq!(w.join()?, WorkerExit::Panicked { message: "oops".into() });
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn join(&self) -> Result<WorkerExit, Error> {
        self.join_until(None)?.ok_or(Error::Timeout)
    }

    /// Like [`join`](Self::join), but gives up after `timeout`: `Ok(None)` means the worker
    /// is still running.
    ///
    /// # Errors
    ///
    /// As [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    /// use std::time::Duration;
    ///
    /// let w = Worker::new(noop, ())?;
    /// w.start()?;
    /// assert_eq!(w.join_timeout(Duration::from_secs(30))?, Some(WorkerExit::Returned));
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<Option<WorkerExit>, Error> {
        self.join_until(Some(Instant::now() + timeout))
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<Option<WorkerExit>, Error> {
        if !self.inner.settings().started {
            return Err(Error::NotStarted);
        }
        if self.inner.backend == Backend::Threading
            && self
                .inner
                .info()
                .is_some_and(|info| info == current_worker())
        {
            return Err(Error::InvalidArgument("a worker cannot join itself"));
        }
        if !self.inner.done.wait(deadline) {
            return Ok(None);
        }
        let outcome = self.inner.outcome.lock().unwrap_or_else(|e| e.into_inner());
        match outcome.as_ref() {
            Some(outcome) => outcome.clone().map(Some),
            None => Ok(None),
        }
    }

    /// Whether the worker has started and not yet finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let w = Worker::new(noop, ())?;
    /// assert!(!w.is_alive()); // not started
    /// w.start()?;
    /// w.join()?;
    /// assert!(!w.is_alive()); // finished
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        self.inner.settings().started && !self.inner.done.is_set()
    }

    /// The worker's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let w = Worker::new(noop, ())?;
    /// assert!(w.name().starts_with("Worker-"));
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn name(&self) -> String {
        self.inner.settings().name.clone()
    }

    /// Renames the worker before it starts.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyStarted`] once started (a running child could not see the new name).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let w = Worker::new(noop, ())?;
    /// w.set_name("renamed")?;
    /// assert_eq!(w.name(), "renamed");
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn set_name(&self, name: impl Into<String>) -> Result<(), Error> {
        let mut settings = self.inner.settings();
        if settings.started {
            return Err(Error::AlreadyStarted);
        }
        settings.name = name.into();
        Ok(())
    }

    /// Whether the worker is a daemon.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// assert!(!Worker::new(noop, ())?.daemon());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn daemon(&self) -> bool {
        self.inner.settings().daemon
    }

    /// Sets the daemon flag before the worker starts.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyStarted`] once started.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let w = Worker::new(noop, ())?;
    /// w.set_daemon(true)?;
    /// assert!(w.daemon());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn set_daemon(&self, daemon: bool) -> Result<(), Error> {
        let mut settings = self.inner.settings();
        if settings.started {
            return Err(Error::AlreadyStarted);
        }
        settings.daemon = daemon;
        Ok(())
    }

    /// The worker's id once started: its thread id, or its child's process id.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, WorkerExit, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// let w = Worker::new(noop, ())?;
    /// assert_eq!(w.ident(), None);
    /// w.start()?;
    /// assert!(w.ident().is_some());
    /// w.join()?;
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn ident(&self) -> Option<u64> {
        self.inner.settings().ident
    }

    /// The backend this worker runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Worker, get_backend, worker};
    ///
    /// #[worker]
    /// fn noop() {}
    ///
    /// assert_eq!(Worker::new(noop, ())?.backend(), get_backend());
    /// # Ok::<(), freethreading::Error>(())
    /// ```
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }
}
