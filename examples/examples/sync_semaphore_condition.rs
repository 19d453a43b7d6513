//! Shows `Semaphore`, `Condition` and `BoundedSemaphore` with `Worker`s: a semaphore lets two
//! of three workers in at once, a consumer waits on a condition until a producer makes an item,
//! and a bounded semaphore refuses a release too many.
//!
//! ```text
//! cargo run --release --example sync_semaphore_condition
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example sync_semaphore_condition
//! ```
//!
//! Prints:
//!
//! ```text
//! 'Worker-0' in restricted section
//! 'Worker-1' in restricted section
//! permits left: 0, so 'Worker-2' waits
//! 'Worker-2' in restricted section
//! 'Consumer' waiting for an item
//! 'Producer' made the item
//! 'Consumer' got the item
//! Semaphore(1): acquire, release, release -> ok, value 2
//! BoundedSemaphore(1): acquire, release, release -> error: semaphore released too many times
//! ```
//!
//! Events say when a worker is inside (or waiting), and the main program starts the next worker
//! only then, so the lines come out in this order on every run and on both backends.

use freethreading::{
    BoundedSemaphore, Condition, Error, Event, Semaphore, Worker, WorkerExit, current_worker,
    worker,
};

/// Python's `restricted`: at most as many workers as the semaphore has permits get in. Each
/// stays inside until the main program sets `leave`.
#[worker]
fn restricted(semaphore: Semaphore, inside: Event, leave: Event) {
    let _permit = semaphore.permit(); // Python: `with semaphore:`
    println!("'{}' in restricted section", current_worker().name());
    inside.set();
    leave.wait();
}

/// Waits on `condition` until `item` is set; `waiting` says it is about to wait.
#[worker]
fn consumer(condition: Condition, item: Event, waiting: Event) {
    let me = current_worker();
    let _guard = condition.lock();
    println!("'{}' waiting for an item", me.name());
    waiting.set(); // the lock stays held until `wait_for` releases it
    condition
        .wait_for(|| item.is_set())
        .expect("the lock is held");
    println!("'{}' got the item", me.name());
}

/// Makes the item and wakes the consumer, all under the condition's lock.
#[worker]
fn producer(condition: Condition, item: Event) {
    let _guard = condition.lock();
    item.set();
    println!("'{}' made the item", current_worker().name());
    condition.notify(1).expect("the lock is held");
}

fn join_all(workers: &[Worker]) -> Result<(), Error> {
    for w in workers {
        assert_eq!(w.join()?, WorkerExit::Returned);
    }
    Ok(())
}

#[freethreading::main]
fn main() -> Result<(), Error> {
    let (semaphore, leave) = (Semaphore::new(2), Event::new());
    let mut workers = Vec::new();
    for i in 0..3 {
        let inside = Event::new();
        let w = Worker::builder(
            restricted,
            (semaphore.clone(), inside.clone(), leave.clone()),
        )
        .name(format!("Worker-{i}"))
        .build()?;
        w.start()?;
        if i < 2 {
            inside.wait(); // the next worker starts once this one holds a permit
        }
        workers.push(w);
    }
    // Worker-0 and Worker-1 keep both permits until `leave` is set.
    println!("permits left: {}, so 'Worker-2' waits", semaphore.value());
    leave.set();
    join_all(&workers)?;

    let (condition, item, waiting) = (Condition::new(), Event::new(), Event::new());
    let c = Worker::builder(consumer, (condition.clone(), item.clone(), waiting.clone()))
        .name("Consumer")
        .build()?;
    let p = Worker::builder(producer, (condition.clone(), item.clone()))
        .name("Producer")
        .build()?;
    c.start()?;
    waiting.wait(); // the producer starts once the consumer holds the lock, about to wait
    p.start()?;
    join_all(&[c, p])?;

    let sem = Semaphore::new(1);
    sem.acquire();
    sem.release()?;
    sem.release()?; // a plain semaphore has no upper bound
    println!(
        "Semaphore(1): acquire, release, release -> ok, value {}",
        sem.value()
    );

    let bounded = BoundedSemaphore::new(1);
    bounded.acquire();
    bounded.release()?;
    match bounded.release() {
        Ok(()) => println!("BoundedSemaphore(1): acquire, release, release -> ok"),
        Err(e) => println!("BoundedSemaphore(1): acquire, release, release -> error: {e}"),
    }
    Ok(())
}
