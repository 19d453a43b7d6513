//! Helpers shared by the integration tests: real ways for a worker process to die or misbehave.

use std::io::Write;

use freethreading::worker;

/// Kills the calling process with `signal`, for real: the default action is restored first,
/// because the Rust runtime's own `SIGSEGV` handler would otherwise return from a raised
/// signal.
pub fn die_by_signal(signal: i32) -> ! {
    // SAFETY: resetting a signal disposition and raising it are plain libc calls with valid
    // arguments; nothing runs after the raise.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
    unreachable!("signal {signal} did not end the process")
}

/// The descriptor of the channel to the parent, when this process is a worker process.
pub fn parent_channel() -> Option<i32> {
    let value = std::env::var("FREETHREADING_CHILD").ok()?;
    value.split_once(':')?.0.parse().ok()
}

/// Writes raw bytes to the parent over the worker channel, as a corrupt child would.
pub fn write_to_parent(bytes: &[u8]) {
    let fd = parent_channel().expect("not a worker process");
    let mut written = 0;
    while written < bytes.len() {
        // SAFETY: fd is this process's open channel; the pointer and length describe the
        // unwritten rest of `bytes`.
        let n = unsafe { libc::write(fd, bytes[written..].as_ptr().cast(), bytes.len() - written) };
        assert!(n > 0, "write to the parent failed");
        written += n as usize;
    }
    let _ = std::io::stdout().flush();
}

/// A name for the current thread that differs between threads and between processes.
pub fn worker_identity() -> String {
    format!("{}/{:?}", std::process::id(), std::thread::current().id())
}

/// A fresh empty directory for one test's files.
pub fn scratch_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("freethreading-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Creates a named pipe: a worker blocks opening it until the test opens the other end, which
/// synchronises the two without sleeping.
pub fn make_fifo(path: &std::path::Path) {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: a valid NUL-terminated path and mode.
    let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo failed: {}", std::io::Error::last_os_error());
}

/// Waits (up to `timeout`) for process `pid` to exit, without being its parent: a pidfd
/// becomes readable when the process ends. Returns whether it ended.
pub fn wait_for_exit(pid: u32, timeout: std::time::Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
    if fd < 0 {
        // Already gone (ESRCH).
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd and its count.
    let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(fd) };
    ready == 1
}

pub mod sync_support;

/// Panics on 13, returns anything else: a task that fails on one item.
#[worker]
pub fn fragile(x: u64) -> u64 {
    if x == 13 {
        panic!("unlucky number {x}");
    }
    x
}

/// Item 7 dies by `signal` (`SIGABRT` through `abort()`) in a worker process; on threads it
/// panics instead, since a real signal would end the test binary: isolating crashes is what
/// the process backend is for.
#[worker]
pub fn crash_on_seven(x: u64, signal: i32) -> u64 {
    if x == 7 {
        if parent_channel().is_some() {
            if signal == libc::SIGABRT {
                std::process::abort();
            }
            die_by_signal(signal);
        }
        panic!("crash stand-in on threads");
    }
    x
}

/// [`crash_on_seven`] with `SIGKILL`, for one-parameter calls such as `map`.
#[worker]
pub fn sigkill_on_seven(x: u64) -> u64 {
    crash_on_seven(x, libc::SIGKILL)
}
