//! The global registry of `#[worker]` functions.
//!
//! `#[worker]` submits one [`Registration`] per function with `inventory`. Entries are
//! collected by static constructors before `main` runs, so a child process re-executed from the
//! same binary holds exactly the same registry as its parent: a task can be sent by name.
//!
//! The name → entry map is built once, on first use, and rejects duplicate names (two functions
//! with the same `#[worker(name = "...")]`, or the same path in two crates).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::codec::{ChunkReader, ChunkWriter, RemoteFailure};

/// A function annotated with `#[worker]`: the unit struct the macro generates implements this.
///
/// You never implement it by hand; pass the annotated function's name wherever a pool or a
/// worker expects a `WorkerFn`.
///
/// # Examples
///
/// ```
/// use freethreading::{WorkerFn, worker};
///
/// #[worker]
/// fn add(a: i32, b: i32) -> i32 { a + b }
///
/// assert_eq!(add(1, 2), 3);                 // a direct call still works
/// assert_eq!(add::call((1, 2)), 3);         // the runtime's typed entry point
/// assert!(add::NAME.ends_with("::add"));    // the stable name tasks are sent by
/// ```
///
/// A closure is not a `WorkerFn`:
///
/// ```compile_fail
/// use freethreading::WorkerPool;
/// let pool = WorkerPool::new(2).unwrap();
/// pool.map(|x: u64| x * 2, 0..10u64);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a #[worker] function",
    label = "expected a function annotated with #[worker]",
    note = "pools run functions by name, so only functions annotated with \
            `#[freethreading::worker]` can be passed: annotate the `fn`, or move a closure's \
            body into an annotated `fn`, and pass its name"
)]
pub trait WorkerFn: Copy + Send + Sync + 'static {
    /// The stable name the runtime sends tasks by: `module::path::fn_name` unless set with
    /// `#[worker(name = "...")]`.
    const NAME: &'static str;
    /// The parameters as a tuple: `()`, `(A,)`, `(A, B)`, ...
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// The return type.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// Calls the function with its arguments as a tuple.
    fn call(args: Self::Args) -> Self::Output;
}

/// The argument tuple of a one-parameter `#[worker]` function, made from one item: what
/// `map`, `imap` and the executor's `map` require (`starmap` takes whole tuples).
///
/// Implemented for `(T,)` only; a function of several parameters passed to `map` fails to
/// compile with a message pointing at `starmap`.
#[diagnostic::on_unimplemented(
    message = "`map` needs a #[worker] function of exactly one parameter, not one taking `{Self}`",
    label = "this function does not take one parameter",
    note = "use `starmap` with a tuple of arguments per item for functions of several (or no) \
            parameters"
)]
pub trait SingleArg<T> {
    /// Wraps the item as the argument tuple.
    fn from_item(item: T) -> Self;
}

impl<T> SingleArg<T> for (T,) {
    #[inline]
    fn from_item(item: T) -> Self {
        (item,)
    }
}

/// Runs a chunk of encoded arguments and encodes each item's result.
pub(crate) type InvokeFn = fn(&[u8], &mut Vec<u8>) -> Result<(), RemoteFailure>;

/// One registered `#[worker]` function. Created only by the macro.
#[derive(Debug)]
pub struct Registration {
    name: &'static str,
    path: &'static str,
    file: &'static str,
    line: u32,
    invoke: InvokeFn,
}

impl Registration {
    /// Not public API: used by the code `#[worker]` generates.
    #[doc(hidden)]
    pub const fn new<W: WorkerFn>(path: &'static str, file: &'static str, line: u32) -> Self {
        Registration {
            name: W::NAME,
            path,
            file,
            line,
            invoke: invoke_chunk::<W>,
        }
    }

    pub(crate) fn invoke(&self) -> InvokeFn {
        self.invoke
    }

    fn location(&self) -> String {
        format!("{} at {}:{}", self.path, self.file, self.line)
    }
}

inventory::collect!(Registration);

/// Decodes a chunk of `W::Args`, calls `W` on each (a panic fails that item only), and writes
/// a chunk of `Result<W::Output, RemoteFailure>`.
fn invoke_chunk<W: WorkerFn>(input: &[u8], out: &mut Vec<u8>) -> Result<(), RemoteFailure> {
    let decode_failure = |e: Error| RemoteFailure::Deserialize(e.to_string());
    let mut reader = ChunkReader::new(input).map_err(decode_failure)?;
    let mut writer = ChunkWriter::new(out, reader.len(), std::mem::size_of::<W::Output>() + 1);
    while let Some(args) = reader.next_item::<W::Args>() {
        let args = args.map_err(decode_failure)?;
        let result: Result<W::Output, RemoteFailure> =
            crate::unwind::catch(|| W::call(args)).map_err(RemoteFailure::Panicked);
        let pushed = match &result {
            Ok(output) => writer.push(&Ok::<&W::Output, RemoteFailure>(output)),
            Err(failure) => writer.push(&Err::<&W::Output, _>(failure)),
        };
        if let Err(e) = pushed {
            // The output could not be encoded: that item fails, the others stand.
            writer
                .push(&Err::<&W::Output, _>(RemoteFailure::Serialize(
                    e.to_string(),
                )))
                .map_err(|e| RemoteFailure::Serialize(e.to_string()))?;
        }
    }
    writer.finish();
    if !reader.finish() {
        return Err(RemoteFailure::Deserialize(
            "trailing bytes after the last item".to_owned(),
        ));
    }
    Ok(())
}

struct Registry {
    by_name: HashMap<&'static str, &'static Registration>,
    fingerprint: u64,
}

static REGISTRY: OnceLock<Result<Registry, Error>> = OnceLock::new();

fn registry() -> Result<&'static Registry, Error> {
    REGISTRY
        .get_or_init(|| {
            let mut by_name: HashMap<&'static str, &'static Registration> = HashMap::new();
            for entry in inventory::iter::<Registration> {
                if let Some(previous) = by_name.insert(entry.name, entry) {
                    let (first, second) = ordered(previous, entry);
                    return Err(Error::DuplicateWorkerName {
                        name: entry.name.to_owned(),
                        first: first.location(),
                        second: second.location(),
                    });
                }
            }
            let mut names: Vec<&str> = by_name.keys().copied().collect();
            names.sort_unstable();
            let mut hasher = std::hash::DefaultHasher::new();
            env!("CARGO_PKG_VERSION").hash(&mut hasher);
            names.hash(&mut hasher);
            Ok(Registry {
                by_name,
                fingerprint: hasher.finish(),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A stable order for the two duplicates, so the message does not depend on link order.
fn ordered(
    a: &'static Registration,
    b: &'static Registration,
) -> (&'static Registration, &'static Registration) {
    if (a.file, a.line) <= (b.file, b.line) {
        (a, b)
    } else {
        (b, a)
    }
}

/// Checks the registry (duplicate names) without looking anything up.
pub(crate) fn validate() -> Result<(), Error> {
    registry().map(drop)
}

/// The entry registered under `name`.
pub(crate) fn lookup(name: &str) -> Result<&'static Registration, Error> {
    registry()?
        .by_name
        .get(name)
        .copied()
        .ok_or_else(|| Error::UnknownWorker {
            name: name.to_owned(),
        })
}

/// A hash of the registered names and the crate version: parent and child must agree.
pub(crate) fn fingerprint() -> Result<u64, Error> {
    registry().map(|r| r.fingerprint)
}
