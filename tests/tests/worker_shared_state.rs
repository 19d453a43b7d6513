//! The shared-state pitfall: a `static` changed by workers changes in the parent only on the
//! threading backend; a `Queue` carries the result back on both.

use std::sync::atomic::{AtomicU32, Ordering};

use freethreading::{Backend, Queue, Worker, WorkerExit, get_backend, worker};

static COUNTER: AtomicU32 = AtomicU32::new(0);

#[worker]
fn increment() {
    COUNTER.fetch_add(1, Ordering::SeqCst);
}

#[worker]
fn increment_into(results: Queue<u32>) {
    results.put(1).unwrap();
}

fn run_five(make: impl Fn() -> Worker) {
    let workers: Vec<Worker> = (0..5).map(|_| make()).collect();
    for w in &workers {
        w.start().unwrap();
    }
    for w in &workers {
        assert_eq!(w.join().unwrap(), WorkerExit::Returned);
    }
}

#[freethreading::test]
fn static_counter_changes_in_the_parent_only_on_threads() {
    COUNTER.store(0, Ordering::SeqCst);
    run_five(|| Worker::new(increment, ()).unwrap());
    let expected = match get_backend() {
        Backend::Threading => 5,
        // Each child incremented its own copy of the static.
        Backend::Multiprocessing => 0,
    };
    assert_eq!(COUNTER.load(Ordering::SeqCst), expected);
}

#[freethreading::test]
fn queue_carries_the_counts_back_on_both_backends() {
    let results = Queue::new();
    run_five(|| Worker::new(increment_into, (results.clone(),)).unwrap());
    let total: u32 = (0..5).map(|_| results.get().unwrap()).sum();
    assert_eq!(total, 5);
    assert!(results.empty());
}
