//! Executor `map`: order, chunking, errors at their item, timeouts, early drop, and a child
//! killed in the middle.

mod executor_support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use executor_support::{Scratch, square, wait_for};
use freethreading::{Backend, Error, ExitReason, WorkerPoolExecutor, get_backend, worker};
use freethreading_tests::{fragile, sigkill_on_seven};

/// Waits for the file `job.0`, creates the file `job.1`, and returns. Takes at least 2 ms,
/// so that on the process backend a child is handed one such task at a time (a child that
/// answers quickly gets several queued, and those count as started).
#[worker]
fn gated_mark(job: (String, String)) -> u64 {
    let (gate, marker) = job;
    let value = wait_for(gate, 0);
    std::thread::sleep(Duration::from_millis(2));
    std::fs::write(marker, b"ran").unwrap();
    value
}

#[freethreading::test]
fn map_yields_in_input_order() {
    let executor = WorkerPoolExecutor::new(4).unwrap();
    let squares: Vec<u64> = executor
        .map(square, 0..10u64)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(squares, vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    let expected: Vec<u64> = (0..2_000u64).map(|x| x * x).collect();
    for chunk_size in [1, 3, 64, 5_000] {
        let out: Vec<u64> = executor
            .map_chunked(square, 0..2_000u64, chunk_size)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(out, expected, "chunk size {chunk_size}");
    }
    let mut empty = executor.map(square, Vec::<u64>::new()).unwrap();
    assert!(empty.next().is_none());
    assert!(matches!(
        executor.map_chunked(square, [1u64], 0),
        Err(Error::InvalidArgument(_))
    ));
}

#[freethreading::test]
fn a_failed_item_surfaces_when_iteration_reaches_it() {
    let executor = WorkerPoolExecutor::new(2).unwrap();
    for chunk_size in [1, 4] {
        let results: Vec<_> = executor
            .map_chunked(fragile, 0..30u64, chunk_size)
            .unwrap()
            .collect();
        assert_eq!(results.len(), 30);
        for (x, result) in results.iter().enumerate() {
            match result {
                Err(Error::TaskPanicked { message }) if x == 13 => {
                    assert_eq!(message, "unlucky number 13");
                }
                Ok(value) if x != 13 => assert_eq!(*value, x as u64),
                other => panic!("item {x}: unexpected {other:?}"),
            }
        }
    }
}

#[freethreading::test]
fn a_timeout_is_measured_from_the_map_call_and_cancels_the_rest() {
    let scratch = Scratch::new("map-timeout");
    let executor = WorkerPoolExecutor::new(1).unwrap();
    let jobs: Vec<(String, String)> = (0..4)
        .map(|i| (scratch.path("gate"), scratch.path(&format!("m{i}"))))
        .collect();
    let mut results = executor
        .map(gated_mark, jobs)
        .unwrap()
        .timeout(Duration::from_millis(80));
    // Let the whole timeout pass before asking: it counts from the map call, so the first
    // item times out without waiting any further.
    std::thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    assert!(matches!(results.next(), Some(Err(Error::Timeout))));
    assert!(asked.elapsed() < Duration::from_millis(80));
    assert!(
        results.next().is_none(),
        "the iterator ends after a timeout"
    );
    scratch.open("gate");
    executor.shutdown(true, false);
    // The first item was (almost surely) running and went on; the others had not started
    // and never ran.
    for i in 1..4 {
        assert!(!scratch.exists(&format!("m{i}")), "cancelled item {i} ran");
    }
}

#[freethreading::test]
fn dropping_the_iterator_cancels_items_not_started() {
    let scratch = Scratch::new("map-drop");
    let executor = WorkerPoolExecutor::new(1).unwrap();
    let jobs: Vec<(String, String)> = (0..6)
        .map(|i| {
            let gate = if i == 0 { "first" } else { "rest" };
            (scratch.path(gate), scratch.path(&format!("m{i}")))
        })
        .collect();
    let mut results = executor.map(gated_mark, jobs).unwrap();
    scratch.open("first");
    assert_eq!(results.next().unwrap().unwrap(), 0);
    // Item 1 is running (waiting for its gate) or about to be taken by the worker; items
    // 2 to 5 are queued behind it.
    drop(results);
    scratch.open("rest");
    executor.shutdown(true, false);
    assert!(scratch.exists("m0"));
    for i in 2..6 {
        assert!(!scratch.exists(&format!("m{i}")), "cancelled item {i} ran");
    }
}

#[freethreading::test]
fn a_sigkilled_child_during_map_fails_only_its_item() {
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let before: HashSet<u32> = executor.pids().into_iter().collect();
    let results: Vec<Result<u64, Error>> =
        executor.map(sigkill_on_seven, 0..40u64).unwrap().collect();
    let failures: Vec<usize> = (0..40).filter(|&i| results[i].is_err()).collect();
    assert_eq!(failures, vec![7], "only item 7 may fail: {results:?}");
    match (&results[7], get_backend()) {
        (Err(Error::WorkerDied { pid, reason }), Backend::Multiprocessing) => {
            assert!(before.contains(pid), "pid {pid} was not a child");
            assert_eq!(*reason, ExitReason::Signal(libc::SIGKILL));
        }
        (Err(Error::TaskPanicked { .. }), Backend::Threading) => {}
        (other, backend) => panic!("unexpected {other:?} on {backend}"),
    }
    for (i, result) in results.iter().enumerate().filter(|&(i, _)| i != 7) {
        assert_eq!(*result.as_ref().unwrap(), i as u64);
    }
    // The executor healed and keeps serving.
    let again: Vec<u64> = executor
        .map(square, 0..100u64)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(again[99], 99 * 99);
    if get_backend() == Backend::Multiprocessing {
        let after: HashSet<u32> = executor.pids().into_iter().collect();
        assert_eq!(after.len(), 2);
        assert_ne!(before, after, "the dead child was not replaced");
    }
}
