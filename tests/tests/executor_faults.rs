//! Faults: a dying child fails only the future it was running and the executor heals; an
//! initializer that fails breaks the executor, and says why.

mod executor_support;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use executor_support::square;
use freethreading::{Backend, Error, ExitReason, WorkerPoolExecutor, get_backend, worker};
use freethreading_tests::sigkill_on_seven;

thread_local! {
    static INIT_RUNS: Cell<u32> = const { Cell::new(0) };
    static GREETING: RefCell<String> = const { RefCell::new(String::new()) };
}

#[worker]
fn remember(greeting: String, times: u32) {
    INIT_RUNS.with(|runs| runs.set(runs.get() + 1));
    GREETING.with(|g| *g.borrow_mut() = greeting.repeat(times as usize));
}

#[worker]
fn report(_item: u32) -> (u32, String) {
    (
        INIT_RUNS.with(Cell::get),
        GREETING.with(|g| g.borrow().clone()),
    )
}

#[worker]
fn refuse_to_start() {
    panic!("no database today");
}

#[freethreading::test]
fn a_sigkilled_child_fails_only_the_future_it_was_running() {
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let before: HashSet<u32> = executor.pids().into_iter().collect();
    let futures: Vec<_> = (0..40u64)
        .map(|x| executor.submit(sigkill_on_seven, (x,)).unwrap())
        .collect();
    for (x, future) in futures.iter().enumerate() {
        match (future.result(), get_backend()) {
            (Ok(value), _) if x != 7 => assert_eq!(value, x as u64),
            (Err(Error::WorkerDied { pid, reason }), Backend::Multiprocessing) if x == 7 => {
                assert!(before.contains(&pid), "pid {pid} was not a child");
                assert_eq!(reason, ExitReason::Signal(libc::SIGKILL));
            }
            (Err(Error::TaskPanicked { .. }), Backend::Threading) if x == 7 => {}
            (other, backend) => panic!("task {x}: unexpected {other:?} on {backend}"),
        }
    }
    // Not broken, unlike Python's ProcessPoolExecutor: the next submits are served.
    assert_eq!(executor.submit(square, (6,)).unwrap().result().unwrap(), 36);
    if get_backend() == Backend::Multiprocessing {
        let after: HashSet<u32> = executor.pids().into_iter().collect();
        assert_eq!(after.len(), 2);
        assert_ne!(before, after, "the dead child was not replaced");
    }
}

#[freethreading::test]
fn the_initializer_runs_with_its_args_in_every_worker() {
    let executor = WorkerPoolExecutor::builder()
        .max_workers(2)
        .initializer(remember, ("hi".to_owned(), 2))
        .build()
        .unwrap();
    let reports: Vec<(u32, String)> = executor
        .map(report, 0..100)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (runs, greeting) in reports {
        assert_eq!(runs, 1);
        assert_eq!(greeting, "hihi");
    }
}

#[freethreading::test]
fn a_failing_initializer_breaks_the_executor() {
    let executor = WorkerPoolExecutor::builder()
        .max_workers(1)
        .initializer(refuse_to_start, ())
        .build()
        .unwrap();
    let is_broken = |error: &Error| match error {
        Error::BrokenExecutor { cause } => match &**cause {
            Error::InitializerFailed { message } => message.contains("no database today"),
            _ => false,
        },
        _ => false,
    };
    // Depending on timing the first submit is refused, or its future fails: either way with
    // the reason.
    match executor.submit(square, (2,)) {
        Ok(future) => {
            let error = future.result().unwrap_err();
            assert!(is_broken(&error), "{error:?}");
            assert!(future.done() && !future.cancelled());
        }
        Err(error) => assert!(is_broken(&error), "{error:?}"),
    }
    // From then on every submit is refused.
    for _ in 0..3 {
        let error = executor.submit(square, (3,)).unwrap_err();
        assert!(is_broken(&error), "{error:?}");
    }
    assert!(is_broken(&executor.map(square, [1u64]).unwrap_err()));
    let error = executor.submit(square, (3,)).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("the executor is broken because its initializer failed: ")
            && text.ends_with("no database today"),
        "{text}"
    );
    assert!(std::error::Error::source(&error).is_some());
}

#[freethreading::test]
fn pending_futures_of_a_broken_executor_fail_with_the_reason() {
    let executor = WorkerPoolExecutor::builder()
        .max_workers(2)
        .initializer(refuse_to_start, ())
        .build()
        .unwrap();
    for x in 0..20u64 {
        match executor.submit(square, (x,)) {
            Ok(future) => {
                assert!(matches!(future.result(), Err(Error::BrokenExecutor { .. })));
            }
            Err(Error::BrokenExecutor { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    executor.shutdown(true, true);
}
