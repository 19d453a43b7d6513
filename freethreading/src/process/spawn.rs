//! Starting a child: re-execute this binary with one end of a socketpair, then handshake.
//!
//! Forks happen on one long-lived spawner thread, because `PR_SET_PDEATHSIG` fires when the
//! *thread* that forked exits, not the process: a child forked from a short-lived thread (a
//! test's thread, a pool's link thread) would be killed with it.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::process::child::{CHILD_ENV, WORKER_NAME_ENV};
use crate::process::progress::ProgressPage;
use crate::process::wire::{self, FromChild, PROTOCOL_VERSION};
use crate::{Error, ExitReason, registry};

/// How long a new child may take to reach `init()` and answer the handshake, by default.
pub(crate) const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);

/// What to run as a child: this binary plus arguments that lead it to `init()`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChildCommand {
    args: Vec<OsString>,
}

thread_local! {
    static TEST_NAME: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

impl ChildCommand {
    /// The command for objects created on this thread: inside `#[freethreading::test]` the
    /// test harness must be told to run only this test, which then serves; elsewhere `main`
    /// reaches `init()` on its own.
    pub(crate) fn for_this_thread() -> Self {
        let args = TEST_NAME.with(|name| match &*name.borrow() {
            Some(test) => [
                "--exact",
                test.as_str(),
                "--nocapture",
                "--test-threads=1",
                "-q",
            ]
            .iter()
            .map(OsString::from)
            .collect(),
            None => Vec::new(),
        });
        ChildCommand { args }
    }
}

/// Not public API: runs `f` so that child processes of objects created inside it re-run the
/// test named `test_name` (libtest name, without the crate).
pub fn with_test_children<R>(test_name: &str, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            TEST_NAME.with(|name| *name.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(TEST_NAME.with(|name| name.borrow_mut().replace(test_name.to_owned())));
    f()
}

/// A started child that has answered the handshake.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    pub(crate) stream: UnixStream,
    pub(crate) progress: ProgressPage,
}

/// A child that has been started but not yet handshaken.
#[derive(Debug)]
pub(crate) struct Starting {
    child: Child,
    stream: UnixStream,
    progress: ProgressPage,
    started: Instant,
}

struct SpawnRequest {
    args: Vec<OsString>,
    worker_name: String,
    child_fd: RawFd,
    progress_fd: RawFd,
    reply: mpsc::Sender<io::Result<Child>>,
}

fn spawner() -> &'static mpsc::Sender<SpawnRequest> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("freethreading-spawner".to_owned())
            .spawn(move || {
                for request in rx {
                    let result = fork_exec(&request);
                    let _ = request.reply.send(result);
                }
            })
            .expect("failed to start the freethreading spawner thread");
        tx
    })
}

fn fork_exec(request: &SpawnRequest) -> io::Result<Child> {
    let SpawnRequest {
        args,
        worker_name,
        child_fd,
        progress_fd,
        ..
    } = request;
    let (child_fd, progress_fd) = (*child_fd, *progress_fd);
    let exe = std::env::current_exe()?;
    // `/proc/self/exe` runs the very image this process runs, even if the file was replaced
    // on disk since; elsewhere fall back to the path.
    let program = if cfg!(target_os = "linux") {
        std::path::PathBuf::from("/proc/self/exe")
    } else {
        exe.clone()
    };
    // SAFETY: getpid has no preconditions.
    let parent_pid = unsafe { libc::getpid() };
    // The shared arena of synchronisation primitives, created now if needed so that every
    // primitive, made before or after this spawn, is shared with the child.
    let arena_fd = crate::shm::fd_for_children();
    let mut command = Command::new(program);
    command
        .arg0(exe.as_os_str())
        .args(args)
        .env(CHILD_ENV, format!("{child_fd}:{parent_pid}:{progress_fd}"))
        .env(WORKER_NAME_ENV, worker_name)
        .stdin(Stdio::null());
    if let Some(fd) = arena_fd {
        command.env(crate::shm::ARENA_ENV, format!("{fd}:{parent_pid}"));
    }
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (fcntl, prctl, getppid, _exit) on values captured by copy.
    unsafe {
        command.pre_exec(move || {
            // Let exactly this child inherit its end of the socketpair and its progress page.
            for fd in [child_fd, progress_fd] {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            // And the shared arena (this clears close-on-exec in the child's table only).
            if let Some(fd) = arena_fd {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            #[cfg(target_os = "linux")]
            {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl.
                if libc::getppid() != parent_pid {
                    libc::_exit(1);
                }
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Starts a child named `worker_name` (what `current_worker()` reports inside it); the
/// handshake is awaited separately so several children start at once.
pub(crate) fn start(command: &ChildCommand, worker_name: &str) -> Result<Starting, Error> {
    if !cfg!(unix) {
        return Err(Error::Unsupported(
            "the multiprocessing backend needs a Unix platform",
        ));
    }
    registry::validate()?;
    let (parent_end, child_end) = UnixStream::pair()?;
    for end in [&parent_end, &child_end] {
        enlarge_buffers(end.as_raw_fd());
    }
    let progress = ProgressPage::create()?;
    let (reply, result) = mpsc::channel();
    spawner()
        .send(SpawnRequest {
            args: command.args.clone(),
            worker_name: worker_name.to_owned(),
            child_fd: child_end.as_raw_fd(),
            progress_fd: progress.fd().expect("a created page has its fd"),
            reply,
        })
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    let child = result
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))??;
    drop(child_end);
    Ok(Starting {
        child,
        stream: parent_end,
        progress,
        started: Instant::now(),
    })
}

impl Starting {
    /// Waits for the child's handshake and checks it is the same build.
    pub(crate) fn handshake(mut self, timeout: Duration) -> Result<Spawned, Error> {
        let outcome = self.read_hello(timeout);
        match outcome {
            Ok(pid) => {
                self.stream.set_read_timeout(None)?;
                Ok(Spawned {
                    child: self.child,
                    pid,
                    stream: self.stream,
                    progress: self.progress,
                })
            }
            Err(e) => {
                let _ = self.child.kill();
                let status = self.child.wait();
                Err(match e {
                    HelloError::Failed(e) => e,
                    HelloError::Exited => Error::ChildNotInitialized {
                        detail: match status {
                            Ok(status) => format!(
                                "it ended with {} before answering",
                                ExitReason::from_status(status)
                            ),
                            Err(e) => format!("it ended before answering ({e})"),
                        },
                    },
                })
            }
        }
    }

    fn read_hello(&mut self, timeout: Duration) -> Result<u32, HelloError> {
        let deadline = self.started + timeout;
        if !wait_readable(self.stream.as_raw_fd(), deadline)
            .map_err(|e| HelloError::Failed(e.into()))?
        {
            return Err(HelloError::Failed(Error::ChildNotInitialized {
                detail: format!("no handshake within {timeout:?}"),
            }));
        }
        // Bytes are there; a child that sends a partial frame and stalls still may not hang us.
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| HelloError::Failed(e.into()))?;
        let mut frame = Vec::new();
        match wire::read_frame(&mut &self.stream, &mut frame) {
            Ok(true) => {}
            Ok(false) => return Err(HelloError::Exited),
            Err(e) => return Err(HelloError::Failed(e)),
        }
        match FromChild::parse(&frame).map_err(HelloError::Failed)? {
            FromChild::Hello {
                protocol,
                fingerprint,
                pid,
            } => {
                if protocol != PROTOCOL_VERSION {
                    return Err(HelloError::Failed(Error::Handshake {
                        detail: format!(
                            "protocol version {protocol} in the child, {PROTOCOL_VERSION} here"
                        ),
                    }));
                }
                let ours = registry::fingerprint().map_err(HelloError::Failed)?;
                if fingerprint != ours {
                    return Err(HelloError::Failed(Error::Handshake {
                        detail: "the child's registered #[worker] functions differ from the \
                                 parent's (was the binary rebuilt while running?)"
                            .to_owned(),
                    }));
                }
                Ok(pid)
            }
            FromChild::NotInitialized(detail) => {
                Err(HelloError::Failed(Error::ChildNotInitialized { detail }))
            }
            other => Err(HelloError::Failed(Error::Protocol {
                detail: format!("expected a handshake, got {other:?}"),
            })),
        }
    }
}

enum HelloError {
    Exited,
    Failed(Error),
}

/// Waits until `fd` is readable (data or end of stream) or `deadline` passes.
fn wait_readable(fd: RawFd, deadline: Instant) -> io::Result<bool> {
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let millis = remaining.as_millis().min(i32::MAX as u128) as i32;
        let mut pollfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, its count, and a finite timeout.
        let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
        match ready {
            -1 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            0 if remaining.is_zero() => return Ok(false),
            0 => {}
            _ => return Ok(true),
        }
    }
}

/// Asks for larger socket buffers, so a large task moves in fewer wake-ups. The kernel caps the
/// request at its configured maximum; failure only costs speed.
fn enlarge_buffers(fd: RawFd) {
    let size: libc::c_int = 4 << 20;
    for option in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: a valid socket fd, a valid option, and a pointer to a c_int of the stated size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}
