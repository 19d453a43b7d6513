//! Support for the `sync_*` tests: state that every process of a test can observe.
//!
//! The primitives under test carry no data, so the tests need a shared value to prove what a
//! primitive guarantees (mutual exclusion, a hand-off, one action per round). A small file in
//! the temporary directory is the simplest such value that works the same between threads and
//! between processes, and its non-atomic read-modify-write is exactly what a lock must protect.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A `u64` stored in a file; cheap to pass to a task (only the path travels).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SharedValue {
    path: PathBuf,
}

impl SharedValue {
    /// A new value, initially `0`, in a file unique to this process and call.
    pub fn new(tag: &str) -> SharedValue {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "freethreading-test-{}-{tag}-{nanos}",
            std::process::id()
        ));
        let value = SharedValue { path };
        value.set(0);
        value
    }

    /// A value at a path derived from `tag` and the process group, so that a zero-argument
    /// worker function (a barrier action) finds the same file in every process of a test.
    pub fn for_process_group(tag: &str) -> SharedValue {
        // SAFETY: getpgrp has no preconditions and cannot fail.
        let group = unsafe { libc::getpgrp() };
        SharedValue {
            path: std::env::temp_dir().join(format!("freethreading-test-pg{group}-{tag}")),
        }
    }

    /// The current value (0 if the file is missing or empty).
    pub fn get(&self) -> u64 {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Replaces the value.
    pub fn set(&self, value: u64) {
        std::fs::write(&self.path, value.to_string()).expect("write the shared test value");
    }

    /// A deliberately racy increment: read, yield the CPU, write. Two unsynchronised callers
    /// lose updates; callers under a working lock never do.
    pub fn racy_increment(&self) {
        let value = self.get();
        std::thread::yield_now();
        self.set(value + 1);
    }

    /// Deletes the file.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
