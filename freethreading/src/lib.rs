//! One API for true parallelism, run either on threads or on isolated child processes of the
//! same binary, chosen by configuration instead of by rewriting.
//!
//! This is the Rust form of Python's `freethreading`. Threads are the default and the
//! cheapest. Child processes are there for what threads cannot give: a crash (`abort()`, a
//! segfault in a C dependency, the OOM killer) kills one child, not the program; hung work can
//! be killed; non-thread-safe native libraries get a process each.
//!
//! # A first program
//!
//! ```
//! use freethreading::{WorkerPool, worker};
//!
//! // Registers `square` under a stable name so a child process can run it.
//! #[worker]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! #[freethreading::main] // or: fn main() { freethreading::init(); ... }
//! fn main() -> Result<(), freethreading::Error> {
//!     let pool = WorkerPool::new(4)?;
//!     assert_eq!(pool.map(square, 0..5u64)?, vec![0, 1, 4, 9, 16]);
//!     assert_eq!(square(3), 9); // still an ordinary function
//!     Ok(())
//! }
//! ```
//!
//! Run it with `FREETHREADING_BACKEND=multiprocessing` and the same `map` runs in four child
//! processes.
//!
//! # The pieces
//!
//! - [`WorkerPool`]: `map`, `starmap`, `apply`, lazy `imap`, and their async forms, like
//!   Python's `Pool`.
//! - [`WorkerPoolExecutor`] and [`Future`]: `submit`, `map`, `wait`, `as_completed`, like
//!   `concurrent.futures`; futures can also be `.await`ed.
//! - [`Worker`]: one function on its own thread or process, like `Thread`/`Process`, whose
//!   `join` says how it ended.
//! - [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`], [`Condition`], [`Event`],
//!   [`Barrier`] and the queues: shared between threads *and* processes, passed to workers
//!   and tasks as ordinary arguments.
//! - [`current_worker`], [`get_ident`], [`active_children`], [`active_count`], [`enumerate`].
//!
//! ```
//! use freethreading::{Event, Worker, WorkerExit, WorkerPoolExecutor, worker};
//!
//! #[worker]
//! fn cube(x: i64) -> i64 { x * x * x }
//!
//! #[worker]
//! fn wait_then_cube(go: Event, x: i64) -> i64 {
//!     go.wait();
//!     x * x * x
//! }
//!
//! #[worker]
//! fn say(text: String) { println!("{text}"); }
//!
//! let executor = WorkerPoolExecutor::new(2)?;
//! let go = Event::new();
//! let later = executor.submit(wait_then_cube, (go.clone(), 3))?;
//! assert!(!later.done());
//! go.set(); // the same event, whether the task runs on a thread or in a child process
//! assert_eq!(later.result()?, 27);
//! assert_eq!(executor.map(cube, [1, 2])?.collect::<Result<Vec<_>, _>>()?, vec![1, 8]);
//!
//! let w = Worker::new(say, ("hello from a worker".to_owned(),))?;
//! w.start()?;
//! assert_eq!(w.join()?, WorkerExit::Returned);
//! # Ok::<(), freethreading::Error>(())
//! ```
//!
//! # Choosing the backend
//!
//! [`get_backend`] tells which backend is in force: a scoped [`with_backend`], else
//! [`set_backend`] (before first use), else the `FREETHREADING_BACKEND` environment variable
//! (`threading` or `multiprocessing`), else threading. Every object keeps the backend it was
//! created with.
//!
//! # `#[worker]` instead of pickling
//!
//! Work is sent to a child by *name*, with its arguments serialised by serde. `#[worker]`
//! registers the function and checks at compile time that every parameter and the return type
//! can make the trip (`Serialize + DeserializeOwned + Send + 'static`): the compile-time
//! counterpart of Python's picklability check, which fails at run time.
//!
//! # Pitfalls
//!
//! - **Shared state.** A `static` changed by a task on the process backend changes in the
//!   child only; the parent's copy stays as it was. Send results back as return values.
//! - **`init()` first.** Everything before `init()` in `main` runs again in every child.
//! - **Local shadowing.** `#[worker] fn square` makes `square` a unit struct, so a local
//!   `let square = ...` in its scope does not compile (unit structs cannot be shadowed).
//! - **Crashes on threads.** On the threading backend a crash in a task is a crash of the
//!   program; only the process backend isolates it.
//!
//! # Testing both backends
//!
//! `#[freethreading::test]` runs a test's body on threads and then on child processes (the
//! test binary serves as the child), and names the backend that failed.

#![deny(missing_docs, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod backend;
mod bytes;
mod codec;
mod error;
mod executor;
mod init;
mod introspect;
mod pool;
mod process;
mod queue;
mod registry;
mod shm;
mod sync;
mod unwind;
mod worker;

pub use backend::{BACKEND_ENV, Backend, get_backend, set_backend, try_get_backend, with_backend};
pub use bytes::Bytes;
pub use error::{Error, ExitReason};
pub use executor::{
    AsCompleted, DoneAndNotDone, ExecutorMap, Future, ReturnWhen, WorkerPoolExecutor,
    WorkerPoolExecutorBuilder, as_completed, wait,
};
pub use init::{init, try_init};
pub use introspect::{
    WorkerInfo, active_children, active_count, current_worker, enumerate, get_ident,
};
pub use pool::{AsyncResult, Imap, ImapUnordered, WorkerPool, WorkerPoolBuilder};
#[doc(hidden)]
pub use queue::{__arena_block_usage, __queue_die_in_next_get, __queue_die_in_next_put};
pub use queue::{GetError, PutError, Queue, SimpleQueue};
pub use registry::{SingleArg, WorkerFn};
#[doc(hidden)]
pub use sync::__arena_usage;
pub use sync::{
    Acquired, Barrier, BarrierBuilder, BoundedSemaphore, Condition, ConditionGuard, Event, Lock,
    LockGuard, RLock, RLockGuard, Semaphore, SemaphorePermit,
};
pub use worker::{Worker, WorkerBuilder, WorkerExit};

/// Registers a function so pools and workers can run it on threads or in child processes.
///
/// The function stays callable as before (`square(3)`); its name also becomes a value that
/// pools accept (`pool.map(square, data)`). Tasks are sent by the function's stable name,
/// `module::path::name` by default, or the one given with `#[worker(name = "...")]`.
///
/// Every parameter and the return type must be `Serialize + DeserializeOwned + Send +
/// 'static`; async, generic and `unsafe` functions, methods, borrowed and `impl Trait`
/// parameters are rejected with an error that names the fix.
///
/// # Examples
///
/// ```
/// use freethreading::worker;
///
/// #[worker]
/// fn greet(name: String) -> String { format!("hello, {name}") }
///
/// #[worker(name = "stable/add")]
/// fn add(a: i64, b: i64) -> i64 { a + b }
///
/// assert_eq!(greet("Ada".into()), "hello, Ada");
/// assert_eq!(add(2, 3), 5);
/// ```
///
/// Borrowed parameters cannot cross a process boundary:
///
/// ```compile_fail
/// #[freethreading::worker]
/// fn shout(text: &str) -> String { text.to_uppercase() }
/// ```
#[doc(inline)]
pub use freethreading_macros::worker;

/// Marks `main`: child processes serve tasks there instead of running the program.
///
/// Equivalent to calling [`init`] as the first statement of `main`. `main` may return `()` or
/// any `Termination` type.
///
/// # Examples
///
/// ```
/// #[freethreading::main]
/// fn main() {
///     println!("only the parent prints this");
/// }
/// ```
#[doc(inline)]
pub use freethreading_macros::main;

/// Marks a test that runs once per backend: first on threads, then on child processes.
///
/// The test binary itself serves as the child: a child is started as `<test binary> --exact
/// <this test>` and serves tasks from inside this function. A failure names the backend that
/// failed. The body may return `()` or `Result<(), E: Debug>`, and must be callable twice.
/// Works under `cargo test` and `cargo nextest run`.
///
/// # Examples
///
/// ```no_run
/// use freethreading::{WorkerPool, worker};
///
/// #[worker]
/// fn double(x: i32) -> i32 { x * 2 }
///
/// #[freethreading::test]
/// fn doubles_on_both_backends() {
///     let pool = WorkerPool::new(2).unwrap();
///     assert_eq!(pool.map(double, [1, 2]).unwrap(), vec![2, 4]);
/// }
/// ```
#[doc(inline)]
pub use freethreading_macros::test;

/// Not public API: what the macros' generated code uses. May change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::init::{TestOutcome, main_returning, run_test_on_both_backends};
    pub use crate::process::spawn::with_test_children;
    pub use crate::registry::{Registration, WorkerFn};
    pub use inventory;
}
