//! Starting a child: re-execute this binary with one end of a socketpair, then handshake.
//!
//! Forks happen on one long-lived spawner thread, because `PR_SET_PDEATHSIG` fires when the
//! *thread* that forked exits, not the process: a child forked from a short-lived thread (a
//! test's thread, a pool's link thread) would be killed with it.

use std::ffi::CString;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;
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
            // A worker process starting children of its own passes on the arguments that led
            // it to `init()` (under a test harness, they name the test).
            None if crate::process::child::is_serving() => std::env::args_os().skip(1).collect(),
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
    pub(crate) child: ChildProcess,
    pub(crate) pid: u32,
    pub(crate) stream: UnixStream,
    pub(crate) progress: ProgressPage,
}

/// A child that has been started but not yet handshaken.
#[derive(Debug)]
pub(crate) struct Starting {
    child: ChildProcess,
    stream: UnixStream,
    progress: ProgressPage,
    started: Instant,
}

struct SpawnRequest {
    args: Vec<OsString>,
    worker_name: String,
    child_fd: RawFd,
    progress_fd: RawFd,
    reply: mpsc::Sender<io::Result<ChildProcess>>,
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

/// Starts the child with `posix_spawn`, which (unlike `fork`) does not copy the parent's page
/// tables, so spawning stays cheap however large the parent is. The child's descriptors are
/// passed by `dup2`-ing each onto itself, which clears close-on-exec in the child only, so no
/// other process started meanwhile inherits them. The child sets its own parent-death signal
/// first thing (see `child::inherited_channel`).
fn fork_exec(request: &SpawnRequest) -> io::Result<ChildProcess> {
    static EXE: OnceLock<Result<std::path::PathBuf, io::ErrorKind>> = OnceLock::new();
    let exe = EXE
        .get_or_init(|| std::env::current_exe().map_err(|e| e.kind()))
        .clone()
        .map_err(io::Error::from)?;
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
    let mut inherited = vec![request.child_fd, request.progress_fd];
    let mut ours: Vec<(&str, String)> = vec![
        (
            CHILD_ENV,
            format!("{}:{parent_pid}:{}", request.child_fd, request.progress_fd),
        ),
        (WORKER_NAME_ENV, request.worker_name.clone()),
        // A child's own default backend is the one that started it, as a Python child
        // re-imports the same choice: pools and workers it creates are processes too.
        (
            crate::BACKEND_ENV,
            crate::Backend::Multiprocessing.to_string(),
        ),
    ];
    if let Some(fd) = arena_fd {
        inherited.push(fd);
        ours.push((crate::shm::ARENA_ENV, format!("{fd}:{parent_pid}")));
    }

    let c =
        |bytes: &[u8]| CString::new(bytes).map_err(|_| io::Error::other("NUL byte in argument"));
    let program = c(program.as_os_str().as_bytes())?;
    let mut argv = vec![c(exe.as_os_str().as_bytes())?];
    for arg in &request.args {
        argv.push(c(arg.as_bytes())?);
    }
    let mut envp = Vec::new();
    for (key, value) in std::env::vars_os() {
        if ours.iter().any(|(k, _)| key == *k) {
            continue;
        }
        let mut entry = key.into_vec();
        entry.push(b'=');
        entry.extend(value.as_bytes());
        envp.push(c(&entry)?);
    }
    for (key, value) in &ours {
        envp.push(c(format!("{key}={value}").as_bytes())?);
    }
    let argv_ptrs: Vec<*mut libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let envp_ptrs: Vec<*mut libc::c_char> = envp
        .iter()
        .map(|e| e.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();

    let actions = FileActions::new()?;
    for fd in inherited {
        actions.dup2_onto_itself(fd)?;
    }
    actions.stdin_from_dev_null()?;
    let attributes = SpawnAttributes::new()?;
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: the program and the NULL-terminated argv
    // and envp arrays point into CStrings that outlive it; actions and attributes are
    // initialised and destroyed by their guards afterwards.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            actions.as_ptr(),
            attributes.as_ptr(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(ChildProcess::new(pid as u32))
}

/// `posix_spawn_file_actions_t`, destroyed on drop.
struct FileActions(Box<libc::posix_spawn_file_actions_t>);

impl FileActions {
    fn new() -> io::Result<Self> {
        // SAFETY: an all-zero value is valid storage for the init call to fill in.
        let mut actions =
            Box::new(unsafe { std::mem::zeroed::<libc::posix_spawn_file_actions_t>() });
        // SAFETY: initialises the storage we own.
        check(unsafe { libc::posix_spawn_file_actions_init(&mut *actions) })?;
        Ok(FileActions(actions))
    }

    /// Keeps `fd` open in the child: `dup2(fd, fd)` clears close-on-exec there.
    fn dup2_onto_itself(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: the actions object is initialised; fd is an open descriptor of ours.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(self.as_ptr().cast_mut(), fd, fd) })
    }

    fn stdin_from_dev_null(&self) -> io::Result<()> {
        // SAFETY: the actions object is initialised; the path is NUL-terminated and static.
        check(unsafe {
            libc::posix_spawn_file_actions_addopen(
                self.as_ptr().cast_mut(),
                0,
                c"/dev/null".as_ptr(),
                libc::O_RDONLY,
                0,
            )
        })
    }

    fn as_ptr(&self) -> *const libc::posix_spawn_file_actions_t {
        &*self.0
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: destroys the object initialised in `new`, once.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut *self.0) };
    }
}

/// `posix_spawnattr_t` that gives the child an empty signal mask and the default `SIGPIPE`
/// disposition (as `std::process::Command` does), destroyed on drop.
struct SpawnAttributes(Box<libc::posix_spawnattr_t>);

impl SpawnAttributes {
    fn new() -> io::Result<Self> {
        // SAFETY: an all-zero value is valid storage for the init call to fill in.
        let mut attributes = Box::new(unsafe { std::mem::zeroed::<libc::posix_spawnattr_t>() });
        // SAFETY: initialises the storage we own.
        check(unsafe { libc::posix_spawnattr_init(&mut *attributes) })?;
        let attributes = SpawnAttributes(attributes);
        // SAFETY: all-zero sigset_t storage is filled in by sigemptyset before any use.
        let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut pipe_only: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid sigset_t pointers and a valid signal number; the attribute object is
        // initialised; the flags are defined by POSIX.
        unsafe {
            libc::sigemptyset(&mut empty);
            libc::sigemptyset(&mut pipe_only);
            libc::sigaddset(&mut pipe_only, libc::SIGPIPE);
            let ptr = attributes.as_ptr().cast_mut();
            check(libc::posix_spawnattr_setsigmask(ptr, &empty))?;
            check(libc::posix_spawnattr_setsigdefault(ptr, &pipe_only))?;
            check(libc::posix_spawnattr_setflags(
                ptr,
                (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short,
            ))?;
        }
        Ok(attributes)
    }

    fn as_ptr(&self) -> *const libc::posix_spawnattr_t {
        &*self.0
    }
}

impl Drop for SpawnAttributes {
    fn drop(&mut self) {
        // SAFETY: destroys the object initialised in `new`, once.
        unsafe { libc::posix_spawnattr_destroy(&mut *self.0) };
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    match rc {
        0 => Ok(()),
        code => Err(io::Error::from_raw_os_error(code)),
    }
}

/// A child process we started: killed and reaped by pid, remembering once it was reaped so
/// a recycled pid is never signalled.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    pid: u32,
    status: Option<ExitReason>,
}

impl ChildProcess {
    fn new(pid: u32) -> Self {
        ChildProcess { pid, status: None }
    }

    /// Sends `SIGKILL` unless the child was already reaped.
    pub(crate) fn kill(&mut self) {
        if self.status.is_none() {
            // SAFETY: kill with our own, not yet reaped, child's pid and a valid signal.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        }
    }

    /// Waits for the child to end (once) and says how it ended.
    pub(crate) fn wait(&mut self) -> ExitReason {
        if let Some(status) = self.status {
            return status;
        }
        let mut raw = 0;
        loop {
            // SAFETY: waitpid on our own child with a valid out-pointer.
            let rc = unsafe { libc::waitpid(self.pid as libc::pid_t, &mut raw, 0) };
            if rc == self.pid as libc::pid_t {
                break;
            }
            if rc == -1 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                // Not our child any more (reaped elsewhere): nothing better to report.
                let unknown = ExitReason::Code(-1);
                self.status = Some(unknown);
                return unknown;
            }
        }
        use std::os::unix::process::ExitStatusExt;
        let status = ExitReason::from_status(std::process::ExitStatus::from_raw(raw));
        self.status = Some(status);
        status
    }
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
    /// Writes frames before the handshake, to save a round trip. Safe because on Linux the
    /// child runs this very image (`/proc/self/exe`); the handshake is still checked before
    /// any answer is trusted. The frames must be small enough for the socket buffer (a
    /// `Worker`'s task and stop), since the child reads them only after its handshake.
    pub(crate) fn send_early(&mut self, frames: &[&[u8]]) {
        let mut writer = &self.stream;
        for frame in frames {
            if std::io::Write::write_all(&mut writer, frame).is_err() {
                // The child is gone; the handshake reports how.
                return;
            }
        }
    }

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
                self.child.kill();
                let status = self.child.wait();
                Err(match e {
                    HelloError::Failed(e) => e,
                    HelloError::Exited => Error::ChildNotInitialized {
                        detail: format!("it ended with {status} before answering"),
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
