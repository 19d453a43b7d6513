//! Shows `Semaphore`, `BoundedSemaphore` and `Condition`: Python's release-too-many-times
//! example, and a consumer task waiting on a condition until the program produces an item.
//!
//! ```text
//! cargo run --example sync_semaphore_condition
//! FREETHREADING_BACKEND=multiprocessing cargo run --example sync_semaphore_condition
//! ```
//!
//! Prints:
//!
//! ```text
//! Semaphore(1): acquire, release, release -> ok, value 2
//! BoundedSemaphore(1): acquire, release, release -> error: semaphore released too many times
//! consumer is waiting
//! producer made the item
//! consumer got the item
//! ```

use std::time::Duration;

use freethreading::{BoundedSemaphore, Condition, Event, Semaphore, WorkerPool, worker};

/// Waits on `cond` until `item` is set; `waiting` tells the producer it is about to wait.
#[worker]
fn consume(cond: Condition, item: Event, waiting: Event) -> String {
    let _guard = cond.lock();
    waiting.set(); // the lock is held until `wait_for` releases it
    cond.wait_for(|| item.is_set()).expect("the lock is held");
    "consumer got the item".to_owned()
}

fn main() -> Result<(), freethreading::Error> {
    freethreading::init();

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

    let pool = WorkerPool::new(1)?;
    let (cond, item, waiting) = (Condition::new(), Event::new(), Event::new());
    let consumer = pool.apply_async(consume, (cond.clone(), item.clone(), waiting.clone()))?;
    assert!(waiting.wait_timeout(Duration::from_secs(30)));
    println!("consumer is waiting");
    {
        let _guard = cond.lock(); // only once the consumer is inside `wait_for`
        item.set();
        println!("producer made the item");
        cond.notify(1)?;
    }
    println!("{}", consumer.get()?);
    Ok(())
}
