//! `submit` and its futures: results, errors, states, timeouts, `.await`, shutdown and drop.

mod executor_support;

use std::collections::HashSet;
use std::future::Future as _;
use std::task::Poll;
use std::time::Duration;

use executor_support::{Scratch, mark, square, until, wait_for};
use freethreading::{Error, WorkerPoolExecutor, worker};
use freethreading_tests::fragile;

#[worker]
fn greet(name: String) -> String {
    format!("Hello, {name}!")
}

#[worker]
fn nap(millis: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(millis));
    millis
}

#[freethreading::test]
fn submit_returns_a_future_with_the_value() {
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let future = executor.submit(greet, ("World".to_owned(),)).unwrap();
    assert_eq!(future.result().unwrap(), "Hello, World!");
    assert!(future.done());
    assert!(!future.running());
    assert!(!future.cancelled());
    assert!(future.exception().is_none());
    // The value moved out; a second read says so.
    assert!(matches!(future.result(), Err(Error::ResultTaken)));

    let many: Vec<_> = (0..200u64)
        .map(|x| executor.submit(square, (x,)).unwrap())
        .collect();
    let values: Vec<u64> = many.iter().map(|f| f.result().unwrap()).collect();
    assert_eq!(values, (0..200u64).map(|x| x * x).collect::<Vec<_>>());
}

#[freethreading::test]
fn a_panicking_task_fails_only_its_future() {
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let futures: Vec<_> = (0..30u64)
        .map(|x| executor.submit(fragile, (x,)).unwrap())
        .collect();
    for (x, future) in futures.iter().enumerate() {
        if x == 13 {
            match future.result() {
                Err(Error::TaskPanicked { message }) => assert_eq!(message, "unlucky number 13"),
                other => panic!("expected a panic error, got {other:?}"),
            }
            // The error is kept: it is reported every time, and by exception().
            assert!(matches!(future.result(), Err(Error::TaskPanicked { .. })));
            assert!(matches!(
                future.exception(),
                Some(Error::TaskPanicked { .. })
            ));
            assert!(future.done() && !future.cancelled());
        } else {
            assert_eq!(future.result().unwrap(), x as u64);
        }
    }
    assert_eq!(
        executor.submit(square, (12,)).unwrap().result().unwrap(),
        144
    );
}

#[freethreading::test]
fn result_timeout_gives_up_and_leaves_the_future_usable() {
    let scratch = Scratch::new("timeout");
    let executor = WorkerPoolExecutor::new(1).unwrap();
    let future = executor
        .submit(wait_for, (scratch.path("gate"), 7))
        .unwrap();
    assert!(matches!(
        future.result_timeout(Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    assert!(matches!(
        future.exception_timeout(Duration::from_millis(1)),
        Err(Error::Timeout)
    ));
    assert!(!future.done());
    scratch.open("gate");
    assert_eq!(future.result_timeout(Duration::from_secs(60)).unwrap(), 7);
    assert!(future.done());
}

#[freethreading::test]
fn states_move_from_pending_to_running_to_done() {
    let scratch = Scratch::new("states");
    let executor = WorkerPoolExecutor::new(1).unwrap();
    let first = executor
        .submit(wait_for, (scratch.path("gate"), 1))
        .unwrap();
    let second = executor.submit(mark, (scratch.path("second"), 2)).unwrap();
    until("the first task runs", || first.running());
    // The only worker is busy: the second task is still pending.
    assert!(!first.done() && !first.cancelled());
    assert!(!second.running() && !second.done() && !second.cancelled());
    // A running task cannot be cancelled.
    assert!(!first.cancel());
    assert!(first.running());
    scratch.open("gate");
    assert_eq!(first.result().unwrap(), 1);
    assert_eq!(second.result().unwrap(), 2);
    assert!(first.done() && !first.running() && !first.cancel());
    assert!(scratch.exists("second"));
}

#[freethreading::test]
fn futures_can_be_awaited_without_blocking_the_runtime() {
    let scratch = Scratch::new("await");
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let a = executor.submit(square, (3,)).unwrap();
    let b = executor.submit(square, (4,)).unwrap();
    let sum = pollster::block_on(async { a.await.unwrap() + b.await.unwrap() });
    assert_eq!(sum, 25);

    // A future that is still pending when first polled registers the waker and is woken.
    let mut gated = executor
        .submit(wait_for, (scratch.path("gate"), 11))
        .unwrap();
    let value = pollster::block_on(async {
        let first = std::future::poll_fn(|cx| {
            Poll::Ready(std::pin::Pin::new(&mut gated).poll(cx).is_pending())
        })
        .await;
        assert!(first, "the gated task cannot be done before its gate opens");
        scratch.open("gate");
        (&mut gated).await
    });
    assert_eq!(value.unwrap(), 11);

    // Errors come through .await too.
    let failed = executor.submit(fragile, (13,)).unwrap();
    assert!(matches!(
        pollster::block_on(failed),
        Err(Error::TaskPanicked { .. })
    ));
}

#[freethreading::test]
fn zero_workers_is_an_error_and_the_default_is_one_per_cpu() {
    match WorkerPoolExecutor::new(0) {
        Err(Error::InvalidArgument(message)) => {
            assert_eq!(message, "max_workers must be greater than 0");
        }
        other => panic!("expected an invalid argument, got {other:?}"),
    }
    let executor = WorkerPoolExecutor::builder().build().unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(executor.max_workers(), cpus);
    assert_eq!(executor.backend(), freethreading::get_backend());
    assert_eq!(executor.submit(square, (5,)).unwrap().result().unwrap(), 25);
}

#[freethreading::test]
fn submitting_after_shutdown_is_an_error_and_shutdown_is_idempotent() {
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let before: Vec<_> = (0..20u64)
        .map(|x| executor.submit(nap, (x % 3,)).unwrap())
        .collect();
    executor.shutdown(true, false);
    // wait=true returned only after every submitted task finished.
    assert!(before.iter().all(|f| f.done()));
    for (x, future) in before.iter().enumerate() {
        assert_eq!(future.result().unwrap(), x as u64 % 3);
    }
    assert!(matches!(executor.submit(square, (1,)), Err(Error::Closed)));
    assert!(matches!(executor.map(square, [1u64]), Err(Error::Closed)));
    assert_eq!(
        Error::Closed.to_string(),
        "the pool or executor is shut down and accepts no new work"
    );
    executor.shutdown(true, false);
    executor.shutdown(false, true);
    if freethreading::get_backend() == freethreading::Backend::Multiprocessing {
        assert!(executor.pids().is_empty(), "the children exited");
    }
}

#[freethreading::test]
fn dropping_the_executor_waits_for_its_tasks() {
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let futures: Vec<_> = (0..6u64)
        .map(|_| executor.submit(nap, (30,)).unwrap())
        .collect();
    drop(executor);
    assert!(futures.iter().all(|f| f.done()));
    assert!(futures.iter().all(|f| f.result().unwrap() == 30));
}

#[freethreading::test]
fn tasks_spread_over_the_workers() {
    #[worker]
    fn where_am_i(millis: u64) -> String {
        std::thread::sleep(Duration::from_millis(millis));
        freethreading_tests::worker_identity()
    }
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let futures: Vec<_> = (0..8)
        .map(|_| executor.submit(where_am_i, (20,)).unwrap())
        .collect();
    let places: HashSet<String> = futures.iter().map(|f| f.result().unwrap()).collect();
    assert_eq!(places.len(), 2, "{places:?}");
}
