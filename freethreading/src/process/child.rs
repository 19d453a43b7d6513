//! The child side: recognising that this process is a worker, and serving tasks until the parent
//! goes away.
//!
//! The loop reads frames in order and answers them in order, which the parent relies on: the
//! oldest unanswered task of a child is the one it is running. Answers are batched: they are
//! written when no more input is buffered, when the batch grows large, or when the oldest answer
//! has waited long enough that latency would suffer.

use std::io::{BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::codec::{ChunkReader, RemoteFailure};
use crate::process::progress::ProgressPage;
use crate::process::wire::{self, ToChild};
use crate::{Error, registry};

/// `"<channel fd>:<parent pid>:<progress page fd>"`: set by the parent on each child it spawns.
pub(crate) const CHILD_ENV: &str = "FREETHREADING_CHILD";

/// The name the parent gave this worker process (see `current_worker`).
pub(crate) const WORKER_NAME_ENV: &str = "FREETHREADING_WORKER_NAME";

/// The name of this process if it serves as a worker.
pub(crate) fn worker_name() -> Option<&'static str> {
    static NAME: OnceLock<Option<String>> = OnceLock::new();
    NAME.get_or_init(|| {
        inherited_channel()?;
        std::env::var(WORKER_NAME_ENV).ok()
    })
    .as_deref()
}

/// Exit code of a child that reached the API without calling `init()`.
pub(crate) const EXIT_NOT_INITIALIZED: i32 = 70;
/// Exit code of a child whose pool initializer failed.
pub(crate) const EXIT_INIT_FAILED: i32 = 71;
/// Exit code of a child that received a frame it could not parse.
pub(crate) const EXIT_PROTOCOL: i32 = 72;

/// Answers older than this are flushed before the next task runs.
const MAX_ANSWER_DELAY: Duration = Duration::from_micros(100);
/// Batches larger than this are flushed at once.
const MAX_BATCH_BYTES: usize = 256 * 1024;

static SERVING: AtomicBool = AtomicBool::new(false);

/// The inherited channel, if this process was started as a worker by a parent of this library.
///
/// Both the fd and the parent pid must check out, so a grandchild that merely inherited the
/// environment variable (but not the descriptor, which is close-on-exec again once serving)
/// is not mistaken for a worker.
pub(crate) fn inherited_channel() -> Option<Channel> {
    static CHANNEL: OnceLock<Option<Channel>> = OnceLock::new();
    *CHANNEL.get_or_init(|| {
        let value = std::env::var(CHILD_ENV).ok()?;
        let mut parts = value.split(':');
        let fd: RawFd = parts.next()?.parse().ok()?;
        let ppid: i32 = parts.next()?.parse().ok()?;
        let progress: RawFd = parts.next()?.parse().ok()?;
        // Die with the parent. Set here, in the child, because the parent spawns without a
        // pre-exec hook; checking the parent pid afterwards closes the race with its death.
        #[cfg(target_os = "linux")]
        // SAFETY: prctl with PR_SET_PDEATHSIG and a valid signal number.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        }
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != ppid {
            return None;
        }
        // SAFETY: F_GETFD only inspects the descriptor table; an invalid fd yields -1.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            return None;
        }
        Some(Channel { fd, progress })
    })
}

/// The descriptors a parent handed to this child.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Channel {
    fd: RawFd,
    progress: RawFd,
}

/// Whether this process is a child that is serving tasks (so nested pools are allowed).
pub(crate) fn is_serving() -> bool {
    SERVING.load(Ordering::Relaxed)
}

/// Called by every constructor of the process-facing API. A child that gets here without having
/// become a worker forgot `init()`: tell the parent why, then exit, so it never runs the
/// parent's program further (no duplicated side effects, no fork bomb).
pub(crate) fn refuse_stray_child() {
    let Some(Channel { fd, .. }) = inherited_channel() else {
        return;
    };
    if is_serving() {
        return;
    }
    let message = "the child process reached the freethreading API without calling \
                   freethreading::init() first";
    eprintln!(
        "freethreading: {message}; call freethreading::init() as the first statement of main \
         (or annotate main with #[freethreading::main])"
    );
    // SAFETY: the fd was inherited for exactly this channel and nothing else in this process
    // uses it, since this process never became a worker. ManuallyDrop is not needed: we exit.
    let mut stream = unsafe { UnixStream::from_raw_fd(fd) };
    let _ = stream.write_all(&wire::not_initialized_frame(message));
    exit_now(EXIT_NOT_INITIALIZED);
}

/// Flushes the user's stdout (exit skips destructors) and exits.
fn exit_now(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// Serves tasks on the inherited channel until the parent says stop or goes away. Never returns.
pub(crate) fn serve(channel: Channel) -> ! {
    SERVING.store(true, Ordering::Relaxed);
    let Channel { fd, progress } = channel;
    // SAFETY: fcntl on our own inherited descriptor; restores close-on-exec so programs this
    // worker runs do not inherit the channel.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: the parent created this descriptor for this process alone and nothing else in
    // the process has taken ownership of it (serve runs once, before any other use).
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let mut writer = &stream;
    let progress = match ProgressPage::adopt(progress) {
        Ok(page) => page,
        Err(e) => {
            let message = format!("cannot map the progress page: {e}");
            let _ = writer.write_all(&wire::not_initialized_frame(&message));
            exit_now(EXIT_NOT_INITIALIZED);
        }
    };
    let fingerprint = match registry::fingerprint() {
        Ok(fingerprint) => fingerprint,
        Err(e) => {
            let _ = writer.write_all(&wire::not_initialized_frame(&e.to_string()));
            exit_now(EXIT_NOT_INITIALIZED);
        }
    };
    if writer.write_all(&wire::hello_frame(fingerprint)).is_err() {
        exit_now(0);
    }
    let mut reader = BufReader::with_capacity(256 * 1024, &stream);
    let mut frame = Vec::new();
    let mut answers: Vec<u8> = Vec::new();
    let mut oldest_answer: Option<Instant> = None;
    let mut flush = |answers: &mut Vec<u8>, oldest: &mut Option<Instant>| {
        if !answers.is_empty() {
            if writer.write_all(answers).is_err() {
                // The parent is gone: nobody is left to serve.
                exit_now(0);
            }
            answers.clear();
        }
        *oldest = None;
    };
    loop {
        if reader.buffer().is_empty() {
            flush(&mut answers, &mut oldest_answer);
        }
        match wire::read_frame(&mut reader, &mut frame) {
            Ok(true) => {}
            Ok(false) => exit_now(0),
            Err(_) => exit_now(EXIT_PROTOCOL),
        }
        let message = match ToChild::parse(&frame) {
            Ok(message) => message,
            Err(_) => exit_now(EXIT_PROTOCOL),
        };
        match message {
            ToChild::Task { id, name, chunk } => {
                progress.set_running(id);
                let started = Instant::now();
                let mut answer = wire::result_frame(id, 0);
                let body_start = answer.body().len();
                let outcome = registry::lookup(name)
                    .map_err(|_| RemoteFailure::UnknownWorker(name.to_owned()))
                    .and_then(|entry| (entry.invoke())(chunk, answer.body()));
                let run_nanos = started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
                progress.set_running(0);
                match outcome {
                    Ok(()) => {
                        // Patch the run time now that it is known (after length, kind and id).
                        answer.body()[13..21].copy_from_slice(&run_nanos.to_le_bytes());
                        match answer.finish() {
                            Ok(bytes) => answers.extend_from_slice(&bytes),
                            Err(e) => answers.extend_from_slice(&wire::failed_frame(
                                id,
                                &RemoteFailure::Serialize(e.to_string()),
                            )),
                        }
                    }
                    Err(failure) => {
                        answer.body().truncate(body_start);
                        answers.extend_from_slice(&wire::failed_frame(id, &failure));
                    }
                }
                let now = Instant::now();
                let oldest = *oldest_answer.get_or_insert(now);
                if answers.len() >= MAX_BATCH_BYTES || now - oldest >= MAX_ANSWER_DELAY {
                    flush(&mut answers, &mut oldest_answer);
                }
            }
            ToChild::Init { name, chunk } => {
                if let Err(message) = run_initializer(name, chunk) {
                    answers.extend_from_slice(&wire::init_failed_frame(&message));
                    flush(&mut answers, &mut oldest_answer);
                    exit_now(EXIT_INIT_FAILED);
                }
            }
            ToChild::Shutdown => {
                flush(&mut answers, &mut oldest_answer);
                exit_now(0);
            }
        }
    }
}

/// Runs the pool initializer; its one result must be `Ok`.
pub(crate) fn run_initializer(name: &str, chunk: &[u8]) -> Result<(), String> {
    let entry = registry::lookup(name).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    (entry.invoke())(chunk, &mut out).map_err(|failure| Error::from(failure).to_string())?;
    let mut reader = ChunkReader::new(&out).map_err(|e| e.to_string())?;
    match reader.next_item::<Result<(), RemoteFailure>>() {
        Some(Ok(Ok(()))) => Ok(()),
        Some(Ok(Err(failure))) => Err(Error::from(failure).to_string()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the initializer produced no result".to_owned()),
    }
}
