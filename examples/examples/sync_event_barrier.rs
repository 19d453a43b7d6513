//! Shows `Event` and `Barrier`: tasks held at a starting line until the program fires the
//! event, then three parties meeting at a barrier whose action runs once.
//!
//! ```text
//! cargo run --example sync_event_barrier
//! FREETHREADING_BACKEND=multiprocessing cargo run --example sync_event_barrier
//! ```
//!
//! Prints:
//!
//! ```text
//! workers are waiting for the start signal
//! worker 0 started
//! worker 1 started
//! all 3 parties arrived
//! arrival indexes: [0, 1, 2]
//! ```

use std::time::Duration;

use freethreading::{Barrier, Event, WorkerPool, worker};

#[worker]
fn wait_for_start(start: Event, n: u32) -> String {
    start.wait();
    format!("worker {n} started")
}

/// The barrier action: runs once, in the last party to arrive, before anyone leaves.
#[worker]
fn all_arrived() {
    println!("all 3 parties arrived");
}

#[worker]
fn meet(barrier: Barrier) -> usize {
    barrier.wait().expect("the barrier is not broken")
}

fn main() -> Result<(), freethreading::Error> {
    freethreading::init();
    let pool = WorkerPool::new(2)?;

    let start = Event::new();
    let runners = pool.starmap_async(wait_for_start, [(start.clone(), 0), (start.clone(), 1)])?;
    println!("workers are waiting for the start signal");
    start.set();
    for line in runners.get()? {
        println!("{line}");
    }

    let barrier = Barrier::builder(3)
        .action(all_arrived)
        .timeout(Duration::from_secs(30))
        .build()?;
    // One task per worker, so both wait at the barrier at the same time as this program.
    let others = pool.map_async_chunked(meet, [barrier.clone(), barrier.clone()], 1)?;
    let mine = barrier.wait()?;
    let mut indexes = others.get()?;
    indexes.push(mine);
    indexes.sort_unstable();
    println!("arrival indexes: {indexes:?}");
    Ok(())
}
