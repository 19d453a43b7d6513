//! Who is running: [`current_worker`], [`get_ident`], [`active_children`], [`active_count`]
//! and [`enumerate`], consistent across backends.
//!
//! Python answers these from `threading` or `multiprocessing` depending on the backend, so
//! their scope and order differ (all threads of the process vs. child processes; the main
//! thread first vs. the current process last). Here both backends give the same shapes:
//!
//! | call | answer |
//! |---|---|
//! | `current_worker()` | `MainThread` / `MainProcess` in the main program (by backend, as in Python; on the threading backend another thread of yours reports its own name); a `Worker`'s own name inside it; `PoolWorker-<pool>-<n>` inside pool workers, on both backends |
//! | `get_ident()` | a thread id on the threading backend, the process id on the process backend (inside a process worker: its pid) |
//! | `active_children()` | the live [`Worker`](crate::Worker)s this process started (pool workers are not listed) |
//! | `active_count()` | `active_children().len() + 1` |
//! | `enumerate()` | the current worker first, then `active_children()` in start order |

use std::cell::RefCell;

use crate::process::child;
use crate::{Backend, get_backend};

/// A snapshot of a worker's identity: what Python's `Thread`/`Process` objects expose
/// through `name` and `ident`.
///
/// # Examples
///
/// ```
/// let me = freethreading::current_worker();
/// println!("{} ({})", me.name(), me.ident());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkerInfo {
    name: String,
    ident: u64,
}

impl WorkerInfo {
    pub(crate) fn new(name: String, ident: u64) -> Self {
        WorkerInfo { name, ident }
    }

    /// The worker's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Backend, current_worker, with_backend};
    ///
    /// let me = with_backend(Backend::Multiprocessing, current_worker);
    /// assert_eq!(me.name(), "MainProcess");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The worker's id: a thread id on the threading backend, a process id on the process
    /// backend (see [`get_ident`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use freethreading::{Backend, current_worker, with_backend};
    ///
    /// let me = with_backend(Backend::Multiprocessing, current_worker);
    /// assert_eq!(me.ident(), u64::from(std::process::id()));
    /// ```
    pub fn ident(&self) -> u64 {
        self.ident
    }
}

thread_local! {
    static CURRENT: RefCell<Option<WorkerInfo>> = const { RefCell::new(None) };
}

/// Marks the calling thread as a worker thread (a `Worker` or a pool thread).
pub(crate) fn enter_worker_thread(name: String) {
    let info = WorkerInfo::new(name, this_thread_ident());
    CURRENT.with(|current| *current.borrow_mut() = Some(info));
}

/// Whether this is the process's first thread (Linux: its thread id is the process id).
fn is_main_thread() -> bool {
    // SAFETY: gettid and getpid have no preconditions.
    unsafe { libc::gettid() == libc::getpid() }
}

/// This thread's id, as `pthread_self` (Python's `threading.get_ident`).
pub(crate) fn this_thread_ident() -> u64 {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() as u64 }
}

/// The worker running this code.
///
/// # Examples
///
/// ```
/// use freethreading::{Backend, current_worker, with_backend};
///
/// assert_eq!(with_backend(Backend::Multiprocessing, || current_worker().name().to_owned()), "MainProcess");
/// // On the threading backend, `MainThread` on the program's first thread; other threads
/// // report their own name.
/// let name = std::thread::Builder::new()
///     .name("helper".into())
///     .spawn(|| with_backend(Backend::Threading, || current_worker().name().to_owned()))?
///     .join()
///     .unwrap();
/// assert_eq!(name, "helper");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn current_worker() -> WorkerInfo {
    if let Some(info) = CURRENT.with(|current| current.borrow().clone()) {
        return info;
    }
    if let Some(name) = child::worker_name() {
        return WorkerInfo::new(name.to_owned(), u64::from(std::process::id()));
    }
    match get_backend() {
        Backend::Threading => {
            let name = if is_main_thread() {
                "MainThread".to_owned()
            } else {
                match std::thread::current().name() {
                    Some(name) => name.to_owned(),
                    None => format!("Thread-{}", this_thread_ident()),
                }
            };
            WorkerInfo::new(name, this_thread_ident())
        }
        Backend::Multiprocessing => {
            WorkerInfo::new("MainProcess".to_owned(), u64::from(std::process::id()))
        }
    }
}

/// The id of the running worker: on the threading backend the thread's id (which may be
/// reused after the thread ends), on the process backend the process id. Never zero.
///
/// # Examples
///
/// ```
/// use freethreading::{Backend, get_ident, with_backend};
///
/// let pid = with_backend(Backend::Multiprocessing, get_ident);
/// assert_eq!(pid, u64::from(std::process::id()));
/// assert_ne!(with_backend(Backend::Threading, get_ident), 0);
/// ```
pub fn get_ident() -> u64 {
    current_worker().ident()
}

/// The live [`Worker`](crate::Worker)s started by this process, in start order, not counting
/// the caller.
///
/// # Examples
///
/// ```
/// // A fresh program has no children.
/// assert!(freethreading::active_children().is_empty());
/// ```
pub fn active_children() -> Vec<WorkerInfo> {
    let me = current_worker();
    crate::worker::live_workers()
        .into_iter()
        .filter(|info| *info != me)
        .collect()
}

/// The number of live workers including the caller: `active_children().len() + 1`.
///
/// # Examples
///
/// ```
/// assert_eq!(freethreading::active_count(), 1);
/// ```
pub fn active_count() -> usize {
    active_children().len() + 1
}

/// The caller followed by [`active_children`]. (Python lists the main thread first on one
/// backend and the current process last on the other; here the order is the same on both.)
///
/// # Examples
///
/// ```
/// let all = freethreading::enumerate();
/// assert_eq!(all.len(), 1);
/// assert_eq!(all[0], freethreading::current_worker());
/// ```
pub fn enumerate() -> Vec<WorkerInfo> {
    let mut all = vec![current_worker()];
    all.extend(active_children());
    all
}
