//! Helpers shared by the integration tests: real ways for a worker process to die or misbehave.

use std::io::Write;

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
