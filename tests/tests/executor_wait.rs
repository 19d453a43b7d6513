//! `wait` with each `ReturnWhen`, and `as_completed` order and timeout.

mod executor_support;

use std::time::{Duration, Instant};

use executor_support::{Scratch, square, wait_for};
use freethreading::{
    DoneAndNotDone, Error, Future, ReturnWhen, WorkerPoolExecutor, as_completed, wait,
};
use freethreading_tests::fragile;

fn gated(executor: &WorkerPoolExecutor, scratch: &Scratch, gate: &str, value: u64) -> Future<u64> {
    executor
        .submit(wait_for, (scratch.path(gate), value))
        .unwrap()
}

#[freethreading::test]
fn wait_first_completed_returns_when_any_is_done() {
    let scratch = Scratch::new("first-completed");
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let futures = vec![
        gated(&executor, &scratch, "gate", 0),
        executor.submit(square, (3,)).unwrap(),
    ];
    let result = wait(&futures, None, ReturnWhen::FirstCompleted);
    assert_eq!(
        result,
        DoneAndNotDone {
            done: vec![1],
            not_done: vec![0]
        }
    );
    scratch.open("gate");
    let result = wait(&futures, None, ReturnWhen::AllCompleted);
    assert_eq!(result.done, vec![0, 1]);
    assert_eq!(futures[0].result().unwrap(), 0);
}

#[freethreading::test]
fn wait_first_exception_returns_at_the_first_error() {
    let scratch = Scratch::new("first-exception");
    let executor = WorkerPoolExecutor::new(3).unwrap();
    let futures = vec![
        gated(&executor, &scratch, "gate", 0),
        executor.submit(square, (2,)).unwrap(),
        executor.submit(fragile, (13,)).unwrap(),
    ];
    let result = wait(&futures, None, ReturnWhen::FirstException);
    // The failure ends the wait; the gated task cannot be done yet. Whether `square` finished
    // first depends on which worker was quicker.
    assert!(result.done.contains(&2), "{result:?}");
    assert!(result.not_done.contains(&0), "{result:?}");
    assert!(!result.done.contains(&0), "{result:?}");
    assert!(matches!(
        futures[2].exception(),
        Some(Error::TaskPanicked { .. })
    ));
    scratch.open("gate");

    // A success does not end the wait: only an error, all done, or the timeout does.
    let scratch = Scratch::new("no-exception");
    let futures = vec![
        executor.submit(square, (2,)).unwrap(),
        gated(&executor, &scratch, "gate", 9),
    ];
    assert_eq!(futures[0].result().unwrap(), 4);
    let started = Instant::now();
    let result = wait(
        &futures,
        Some(Duration::from_millis(50)),
        ReturnWhen::FirstException,
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(result.done, vec![0]);
    assert_eq!(result.not_done, vec![1]);
    scratch.open("gate");
    let result = wait(&futures, None, ReturnWhen::FirstException);
    assert_eq!(result.done, vec![0, 1]);
    assert!(result.not_done.is_empty());
    assert_eq!(futures[1].result().unwrap(), 9);
}

#[freethreading::test]
fn a_cancelled_future_is_not_an_exception() {
    let scratch = Scratch::new("cancelled-not-exception");
    let executor = WorkerPoolExecutor::new(1).unwrap();
    let futures = vec![
        gated(&executor, &scratch, "gate", 1),
        executor.submit(square, (5,)).unwrap(),
    ];
    assert!(futures[1].cancel());
    let started = Instant::now();
    let result = wait(
        &futures,
        Some(Duration::from_millis(50)),
        ReturnWhen::FirstException,
    );
    // The cancellation did not end the wait; the timeout did.
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(result.done, vec![1]);
    assert_eq!(result.not_done, vec![0]);
    scratch.open("gate");
}

#[freethreading::test]
fn wait_all_completed_and_timeouts() {
    let scratch = Scratch::new("all-completed");
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let futures: Vec<_> = (0..50u64)
        .map(|x| executor.submit(square, (x,)).unwrap())
        .collect();
    let result = wait(&futures, None, ReturnWhen::AllCompleted);
    assert_eq!(result.done, (0..50).collect::<Vec<_>>());
    assert!(result.not_done.is_empty());
    assert!(futures.iter().all(|f| f.done()));

    let stuck = vec![
        executor.submit(square, (1,)).unwrap(),
        gated(&executor, &scratch, "gate", 2),
    ];
    for return_when in [
        ReturnWhen::AllCompleted,
        ReturnWhen::FirstException,
        ReturnWhen::FirstCompleted,
    ] {
        let result = wait(&stuck, Some(Duration::from_millis(30)), return_when);
        assert!(result.not_done.contains(&1), "{return_when:?}: {result:?}");
    }
    scratch.open("gate");
    let result = wait(
        &stuck,
        Some(Duration::from_secs(60)),
        ReturnWhen::AllCompleted,
    );
    assert_eq!(result.done, vec![0, 1]);
    // An empty set is done at once.
    let none: Vec<Future<u64>> = Vec::new();
    assert_eq!(
        wait(&none, None, ReturnWhen::FirstCompleted),
        DoneAndNotDone::default()
    );
}

#[freethreading::test]
fn as_completed_yields_in_completion_order() {
    let scratch = Scratch::new("as-completed");
    let executor = WorkerPoolExecutor::new(3).unwrap();
    let futures: Vec<_> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, gate)| gated(&executor, &scratch, gate, i as u64))
        .collect();
    let mut completed = as_completed(&futures, None);
    // Open the gates in the order c, a, b: each step has only one future that can finish.
    for (gate, value) in [("c", 2), ("a", 0), ("b", 1)] {
        scratch.open(gate);
        let future = completed.next().unwrap().unwrap();
        assert_eq!(future.result().unwrap(), value);
    }
    assert!(completed.next().is_none());

    // Futures already done come out too.
    let done: Vec<_> = (0..5u64)
        .map(|x| executor.submit(square, (x,)).unwrap())
        .collect();
    wait(&done, None, ReturnWhen::AllCompleted);
    let mut values: Vec<u64> = as_completed(&done, None)
        .map(|f| f.unwrap().result().unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(values, vec![0, 1, 4, 9, 16]);
}

#[freethreading::test]
fn as_completed_times_out_once_and_ends() {
    let scratch = Scratch::new("as-completed-timeout");
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let futures = vec![
        executor.submit(square, (4,)).unwrap(),
        gated(&executor, &scratch, "gate", 1),
    ];
    // The first is done before the clock starts, so only the gated one can time out.
    assert!(futures[0].exception().is_none());
    let mut completed = as_completed(&futures, Some(Duration::from_millis(100)));
    assert_eq!(completed.next().unwrap().unwrap().result().unwrap(), 16);
    assert!(matches!(completed.next(), Some(Err(Error::Timeout))));
    assert!(completed.next().is_none());
    assert!(!futures[1].done());
    scratch.open("gate");
    assert_eq!(futures[1].result().unwrap(), 1);
}
