//! A `SimpleQueue`: a worker puts "hello" then "world"; the main program gets them in order.
//!
//! ```text
//! cargo run --release --example queue_simple
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example queue_simple
//! ```
//!
//! Prints `hello`, `world`, then `true` (the queue is empty), on either backend.

use freethreading::{SimpleQueue, Worker, WorkerExit, worker};

#[worker]
fn worker_fn(queue: SimpleQueue<String>) {
    queue.put("hello".to_owned()).expect("put");
    queue.put("world".to_owned()).expect("put");
}

#[freethreading::main]
fn main() -> Result<(), freethreading::Error> {
    let queue = SimpleQueue::new();
    let w = Worker::new(worker_fn, (queue.clone(),))?;
    w.start()?;
    println!("{}", queue.get()?);
    println!("{}", queue.get()?);
    assert_eq!(w.join()?, WorkerExit::Returned);
    println!("{}", queue.empty());
    Ok(())
}
