//! Parallel primes with workers and queues: four `Worker`s take numbers from a task queue,
//! put the primes on a result queue, and mark each task done; the main program waits with
//! `tasks.join()`.
//!
//! ```text
//! cargo run --release --example worker_queue_primes
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example worker_queue_primes
//! ```
//!
//! Prints `Found 14 primes: [503, 509, 521, 523, 541, 547, 557, 563, 569, 571, 577, 587, 593,
//! 599]` on either backend.

use freethreading::{Queue, Worker, WorkerExit, worker};

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

#[worker]
fn find_primes(tasks: Queue<Option<u64>>, results: Queue<u64>) {
    loop {
        let task = tasks.get().expect("get a task");
        let Some(n) = task else {
            tasks.task_done().expect("task_done");
            break; // the sentinel: no more work
        };
        if is_prime(n) {
            results.put(n).expect("put a result");
        }
        tasks.task_done().expect("task_done");
    }
}

#[freethreading::main]
fn main() -> Result<(), freethreading::Error> {
    let tasks = Queue::new();
    let results = Queue::new();
    let workers: Vec<Worker> = (0..4)
        .map(|_| Worker::new(find_primes, (tasks.clone(), results.clone())))
        .collect::<Result<_, _>>()?;
    for w in &workers {
        w.start()?;
    }
    for n in 500..600 {
        tasks.put(Some(n))?;
    }
    for _ in &workers {
        tasks.put(None)?; // one sentinel per worker
    }
    tasks.join(); // every task, sentinels included, is done
    let mut primes = Vec::new();
    while let Ok(p) = results.try_get() {
        primes.push(p);
    }
    primes.sort_unstable();
    println!("Found {} primes: {primes:?}", primes.len());
    for w in &workers {
        assert_eq!(w.join()?, WorkerExit::Returned);
    }
    Ok(())
}
