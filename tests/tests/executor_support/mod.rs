//! What the executor tests share: scratch directories whose files are visible to the test and
//! to every worker (thread or process alike), and tasks that use them as gates and markers.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use freethreading::worker;

/// A fresh directory, removed on drop. Tasks get paths into it as arguments.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "freethreading-executor-{tag}-{}-{}-{}",
            std::process::id(),
            freethreading::get_backend(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch { dir }
    }

    /// The path of `name` in this directory, as a task argument.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().expect("utf-8 path").to_owned()
    }

    /// Creates `name`: opens the gate of the tasks waiting for it.
    pub fn open(&self, name: &str) {
        std::fs::write(self.dir.join(name), b"").expect("create gate file");
    }

    pub fn exists(&self, name: &str) -> bool {
        self.dir.join(name).exists()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Blocks until the file at `gate` exists (checking every millisecond), then returns `value`.
/// Panics after a minute, so a broken test fails instead of hanging.
#[worker]
pub fn wait_for(gate: String, value: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Path::new(&gate).exists() {
        assert!(Instant::now() < deadline, "gate {gate} never opened");
        std::thread::sleep(Duration::from_millis(1));
    }
    value
}

/// Creates the file at `marker` (proof that the task ran) and returns `value`.
#[worker]
pub fn mark(marker: String, value: u64) -> u64 {
    std::fs::write(&marker, b"ran").expect("create marker file");
    value
}

/// Creates the file at `marker`; in a worker process it then dies by `SIGKILL`, so running it
/// would also show up as a dead, replaced child.
#[worker]
pub fn mark_and_die(marker: String) {
    std::fs::write(&marker, b"ran").expect("create marker file");
    if freethreading_tests::parent_channel().is_some() {
        freethreading_tests::die_by_signal(libc::SIGKILL);
    }
}

#[worker]
pub fn square(x: u64) -> u64 {
    x * x
}

/// Waits (with a one-minute bound) until `ready()` holds, yielding between checks.
pub fn until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::yield_now();
    }
}
