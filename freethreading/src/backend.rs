//! Which backend runs parallel work, and how it is chosen.
//!
//! Resolution order, first match wins:
//! 1. a scoped override on this thread ([`with_backend`], used by `#[freethreading::test]`);
//! 2. the process-wide choice, fixed at first use: [`set_backend`] if it was called before that,
//!    otherwise the `FREETHREADING_BACKEND` environment variable (`threading` or
//!    `multiprocessing`), otherwise [`Backend::Threading`].
//!
//! Every pool, worker and primitive records the backend in force when it is created and keeps
//! it, so objects made under different choices never mix. A worker process starts with the
//! process backend as its own default (as a Python child re-imports the same choice), so a
//! pool created inside a task runs on processes too.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::Error;

/// The environment variable read once to choose the process-wide backend.
pub const BACKEND_ENV: &str = "FREETHREADING_BACKEND";

/// Where parallel work runs.
///
/// # Examples
///
/// ```
/// use freethreading::Backend;
///
/// assert_eq!("multiprocessing".parse::<Backend>().unwrap(), Backend::Multiprocessing);
/// assert_eq!(Backend::Threading.to_string(), "threading");
/// assert!("fork".parse::<Backend>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Threads of this process: the cheapest, and the default.
    Threading,
    /// Child processes re-executed from this program's binary: isolation from crashes,
    /// killable work, separate process-global state.
    Multiprocessing,
}

impl Backend {
    /// The name used by `Display`, `FromStr` and `FREETHREADING_BACKEND`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Threading => "threading",
            Backend::Multiprocessing => "multiprocessing",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "threading" => Ok(Backend::Threading),
            "multiprocessing" => Ok(Backend::Multiprocessing),
            other => Err(Error::InvalidBackend {
                value: other.to_owned(),
            }),
        }
    }
}

static PROCESS_WIDE: OnceLock<Result<Backend, Error>> = OnceLock::new();

thread_local! {
    static SCOPED: Cell<Option<Backend>> = const { Cell::new(None) };
}

fn process_wide() -> &'static Result<Backend, Error> {
    PROCESS_WIDE.get_or_init(|| match std::env::var(BACKEND_ENV) {
        Ok(value) => value.parse(),
        Err(std::env::VarError::NotPresent) => Ok(Backend::Threading),
        Err(std::env::VarError::NotUnicode(value)) => Err(Error::InvalidBackend {
            value: value.to_string_lossy().into_owned(),
        }),
    })
}

/// The backend in force on this thread, or the error that prevents choosing one.
///
/// # Errors
///
/// [`Error::InvalidBackend`] when `FREETHREADING_BACKEND` holds something other than
/// `threading` or `multiprocessing`.
///
/// # Examples
///
/// ```
/// let backend = freethreading::try_get_backend()?;
/// println!("parallel work runs on {backend}");
/// # Ok::<(), freethreading::Error>(())
/// ```
pub fn try_get_backend() -> Result<Backend, Error> {
    if let Some(backend) = SCOPED.with(Cell::get) {
        return Ok(backend);
    }
    process_wide().clone()
}

/// The backend in force on this thread: `threading` unless configured otherwise.
///
/// Unlike the Python original (which decides from the interpreter build), the choice is
/// configuration: [`set_backend`], [`with_backend`] or `FREETHREADING_BACKEND`.
///
/// # Panics
///
/// Panics with the [`Error::InvalidBackend`] message when `FREETHREADING_BACKEND` is invalid;
/// [`try_get_backend`] returns the error instead. Constructors of pools and workers always
/// return it as an error.
///
/// # Examples
///
/// ```
/// use freethreading::{Backend, get_backend, with_backend};
///
/// let inside = with_backend(Backend::Multiprocessing, get_backend);
/// assert_eq!(inside, Backend::Multiprocessing);
/// ```
pub fn get_backend() -> Backend {
    match try_get_backend() {
        Ok(backend) => backend,
        Err(e) => panic!("{e}"),
    }
}

/// Fixes the process-wide backend. Allowed until the process-wide backend is first used; after
/// that only a call with the same value succeeds.
///
/// # Errors
///
/// [`Error::BackendAlreadyChosen`] when a different backend is already in use.
///
/// # Examples
///
/// ```
/// use freethreading::{Backend, set_backend};
///
/// set_backend(Backend::Threading)?;
/// set_backend(Backend::Threading)?; // the same value again is fine
/// assert!(set_backend(Backend::Multiprocessing).is_err());
/// # Ok::<(), freethreading::Error>(())
/// ```
pub fn set_backend(backend: Backend) -> Result<(), Error> {
    let chosen = PROCESS_WIDE.get_or_init(|| Ok(backend));
    match chosen {
        Ok(current) if *current == backend => Ok(()),
        Ok(current) => Err(Error::BackendAlreadyChosen { current: *current }),
        // The environment held garbage and was already read: an explicit choice repairs it
        // for nobody, since objects may have failed to build. Report the original problem.
        Err(e) => Err(e.clone()),
    }
}

/// Runs `f` with `backend` in force on this thread, then restores the previous choice (also
/// when `f` panics). Objects created inside keep `backend` after `f` returns.
///
/// # Examples
///
/// ```
/// use freethreading::{Backend, get_backend, with_backend};
///
/// with_backend(Backend::Multiprocessing, || {
///     assert_eq!(get_backend(), Backend::Multiprocessing);
/// });
/// ```
pub fn with_backend<R>(backend: Backend, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Backend>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(SCOPED.with(|cell| cell.replace(Some(backend))));
    f()
}
