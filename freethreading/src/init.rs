//! Entry points that make a process a parent or a worker: [`init`], and the runtime side of
//! `#[freethreading::main]` and `#[freethreading::test]`.

use crate::process::{child, spawn};
use crate::{Backend, Error, registry, with_backend};

/// Turns this process into a worker if it was started as one, and otherwise checks the
/// registry. Call it first thing in `main` (or use [`macro@crate::main`]).
///
/// The process backend runs work in child processes that re-execute this program's binary.
/// In such a child, `init()` never returns: it serves tasks until the parent is done, then
/// exits. This is the Rust counterpart of Python's `if __name__ == "__main__":` guard, and it
/// is why anything before `init()` runs again in every child.
///
/// A child that reaches a pool without passing through `init()` exits at once and its parent
/// gets [`Error::ChildNotInitialized`] naming this fix; it can never spawn children itself.
///
/// # Panics
///
/// Panics if two `#[worker]` functions share a stable name, a build defect like a duplicate
/// symbol; [`try_init`] returns [`Error::DuplicateWorkerName`] instead.
///
/// # Examples
///
/// ```
/// use freethreading::{WorkerPool, worker};
///
/// #[worker]
/// fn double(x: u32) -> u32 { 2 * x }
///
/// fn main() -> Result<(), freethreading::Error> {
///     freethreading::init(); // a worker process never gets past this line
///     let pool = WorkerPool::new(2)?;
///     assert_eq!(pool.map(double, [1, 2])?, vec![2, 4]);
///     Ok(())
/// }
/// ```
pub fn init() {
    if let Err(e) = try_init() {
        panic!("{e}");
    }
}

/// [`init`] that returns registry errors instead of panicking.
///
/// # Errors
///
/// [`Error::DuplicateWorkerName`] when two `#[worker]` functions share a stable name.
pub fn try_init() -> Result<(), Error> {
    if let Some(channel) = child::inherited_channel() {
        child::serve(channel);
    }
    registry::validate()
}

/// Not public API: the body of a `#[freethreading::test]`.
///
/// In a child spawned for this test it serves and exits. In the test process it runs `body`
/// under each backend, children re-running only this test, and fails naming the backend(s)
/// that failed.
#[doc(hidden)]
pub fn run_test_on_both_backends<R: TestOutcome>(path: &str, body: impl Fn() -> R) {
    if let Some(channel) = child::inherited_channel() {
        child::serve(channel);
    }
    // libtest names tests by their path without the crate name.
    let test_name = path.split_once("::").map_or(path, |(_, rest)| rest);
    let mut failures = Vec::new();
    for backend in [Backend::Threading, Backend::Multiprocessing] {
        let outcome = crate::unwind::catch(|| {
            spawn::with_test_children(test_name, || with_backend(backend, &body)).into_failure()
        });
        match outcome {
            Ok(None) => {}
            Ok(Some(message)) => failures.push(format!("on the {backend} backend: {message}")),
            Err(panic) => failures.push(format!("on the {backend} backend: {panic}")),
        }
    }
    if !failures.is_empty() {
        panic!("test `{test_name}` failed {}", failures.join("; and "));
    }
}

/// What a `#[freethreading::test]` body may return: `()` or a `Result` whose error is `Debug`.
#[doc(hidden)]
pub trait TestOutcome {
    /// The failure message, if the outcome is a failure.
    fn into_failure(self) -> Option<String>;
}

impl TestOutcome for () {
    fn into_failure(self) -> Option<String> {
        None
    }
}

impl<E: std::fmt::Debug> TestOutcome for Result<(), E> {
    fn into_failure(self) -> Option<String> {
        self.err().map(|e| format!("returned Err({e:?})"))
    }
}

/// Not public API: runs when the body of a `#[freethreading::main]` returns: waits for the
/// non-daemon workers, as Python does at exit.
#[doc(hidden)]
pub fn main_returning() {
    crate::worker::join_non_daemon();
    let _ = std::io::Write::flush(&mut std::io::stdout());
}
