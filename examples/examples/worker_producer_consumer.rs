//! A producer and a consumer `Worker` linked by a `Queue`; `None` tells the consumer to stop.
//!
//! ```text
//! cargo run --release --example worker_producer_consumer
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example worker_producer_consumer
//! ```
//!
//! Prints `Consumed 0` to `Consumed 4` on either backend.

use freethreading::{Queue, Worker, WorkerExit, worker};

#[worker]
fn producer(queue: Queue<Option<u32>>) {
    for i in 0..5 {
        queue.put(Some(i)).expect("put");
    }
    queue.put(None).expect("put the sentinel"); // no more items
}

#[worker]
fn consumer(queue: Queue<Option<u32>>) {
    while let Some(item) = queue.get().expect("get") {
        println!("Consumed {item}");
    }
}

#[freethreading::main]
fn main() -> Result<(), freethreading::Error> {
    let queue = Queue::new();
    let workers = [
        Worker::new(producer, (queue.clone(),))?,
        Worker::new(consumer, (queue.clone(),))?,
    ];
    for w in &workers {
        w.start()?;
    }
    for w in &workers {
        assert_eq!(w.join()?, WorkerExit::Returned);
    }
    Ok(())
}
