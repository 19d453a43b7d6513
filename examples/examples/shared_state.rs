//! The shared-state pitfall: five workers increment a `static` counter. On threads the parent
//! sees 5; on the process backend each child increments its own copy and the parent still
//! sees 0. Sending the increments back through a `Queue` gives 5 on both backends.
//!
//! ```text
//! cargo run --release --example shared_state
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example shared_state
//! ```
//!
//! Prints `backend: threading`, `counter: 5`, `from the queue: 5` on threads, and
//! `backend: multiprocessing`, `counter: 0`, `from the queue: 5` on processes.

use std::sync::atomic::{AtomicU32, Ordering};

use freethreading::{Queue, Worker, get_backend, worker};

static COUNTER: AtomicU32 = AtomicU32::new(0);

#[worker]
fn increment() {
    // On the process backend this is the child's own copy of COUNTER.
    COUNTER.fetch_add(1, Ordering::SeqCst);
}

#[worker]
fn increment_into(results: Queue<u32>) {
    results.put(1).expect("put");
}

fn run_five(
    make: impl Fn() -> Result<Worker, freethreading::Error>,
) -> Result<(), freethreading::Error> {
    let workers: Vec<Worker> = (0..5).map(|_| make()).collect::<Result<_, _>>()?;
    for w in &workers {
        w.start()?;
    }
    for w in &workers {
        w.join()?;
    }
    Ok(())
}

#[freethreading::main]
fn main() -> Result<(), freethreading::Error> {
    println!("backend: {}", get_backend());

    run_five(|| Worker::new(increment, ()))?;
    println!("counter: {}", COUNTER.load(Ordering::SeqCst)); // 0 with multiprocessing!

    let results = Queue::new();
    run_five(|| Worker::new(increment_into, (results.clone(),)))?;
    let total: u32 = (0..5).map(|_| results.get()).sum::<Result<_, _>>()?;
    println!("from the queue: {total}");
    Ok(())
}
