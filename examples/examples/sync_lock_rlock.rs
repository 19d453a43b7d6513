//! Shows `Lock` and `RLock` with `Worker`s: two workers queue up for a critical section, then
//! each counts down `3... 2... 1... go!` while re-entering an `RLock` at every level.
//!
//! ```text
//! cargo run --release --example sync_lock_rlock
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example sync_lock_rlock
//! ```
//!
//! Prints:
//!
//! ```text
//! 'Worker-0' acquired the lock
//! 'Worker-1' acquired the lock
//! 'Worker-0': 3...
//! 'Worker-0': 2...
//! 'Worker-0': 1...
//! 'Worker-0': go!
//! 'Worker-1': 3...
//! 'Worker-1': 2...
//! 'Worker-1': 1...
//! 'Worker-1': go!
//! ```
//!
//! Each worker says when it holds the lock, and only then does the next one start and queue up
//! behind it, so the lines come out in this order on every run and on both backends.

use freethreading::{
    Error, Event, Lock, RLock, Worker, WorkerBuilder, WorkerExit, current_worker, worker,
};

/// Python's `critical`: one worker at a time in here. `holding` tells the main program that
/// this worker is inside.
#[worker]
fn critical(lock: Lock, holding: Event) {
    let _guard = lock.lock(); // Python: `with lock:`
    holding.set();
    println!("'{}' acquired the lock", current_worker().name());
}

/// Python's recursive `countdown`: the same worker takes the `RLock` again at every level.
fn countdown(rlock: &RLock, n: u32) {
    let _guard = rlock.lock();
    let me = current_worker();
    if n > 0 {
        println!("'{}': {n}...", me.name());
        countdown(rlock, n - 1);
    } else {
        println!("'{}': go!", me.name());
    }
}

/// Holds the `RLock` for the whole countdown, so the other worker's lines cannot interleave.
#[worker]
fn count_down(rlock: RLock, n: u32, holding: Event) {
    let _guard = rlock.lock();
    holding.set();
    countdown(&rlock, n);
}

/// Starts `Worker-0`, `Worker-1`, ... one after another, each once the one before it holds the
/// lock (it sets the event it is given), then joins them all.
fn queue_up(count: usize, make: impl Fn(Event) -> WorkerBuilder) -> Result<(), Error> {
    let mut workers = Vec::new();
    for i in 0..count {
        let holding = Event::new();
        let w = make(holding.clone()).name(format!("Worker-{i}")).build()?;
        w.start()?;
        holding.wait();
        workers.push(w);
    }
    for w in &workers {
        assert_eq!(w.join()?, WorkerExit::Returned);
    }
    Ok(())
}

#[freethreading::main]
fn main() -> Result<(), Error> {
    let lock = Lock::new();
    queue_up(2, |holding| {
        Worker::builder(critical, (lock.clone(), holding))
    })?;

    let rlock = RLock::new();
    queue_up(2, |holding| {
        Worker::builder(count_down, (rlock.clone(), 3, holding))
    })?;
    Ok(())
}
