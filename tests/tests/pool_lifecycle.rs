//! Initializers, worker recycling, and children that never become workers.

use std::cell::Cell;
use std::collections::HashSet;
use std::time::Duration;

use freethreading::__private::with_test_children;
use freethreading::{Backend, Error, WorkerPool, get_backend, worker};
use freethreading_tests::worker_identity;

thread_local! {
    static INIT_RUNS: Cell<u32> = const { Cell::new(0) };
    static GREETING: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

#[worker]
fn remember(greeting: String) {
    INIT_RUNS.with(|runs| runs.set(runs.get() + 1));
    GREETING.with(|g| *g.borrow_mut() = greeting);
}

#[worker]
fn report(_item: u32) -> (String, u32, String) {
    (
        worker_identity(),
        INIT_RUNS.with(Cell::get),
        GREETING.with(|g| g.borrow().clone()),
    )
}

#[worker]
fn refuse_to_start() {
    panic!("no database today");
}

#[worker]
fn identity(_item: u32) -> String {
    worker_identity()
}

#[freethreading::test]
fn the_initializer_runs_once_in_every_worker() {
    let pool = WorkerPool::builder()
        .workers(2)
        .initializer(remember, ("hi".to_owned(),))
        .build()
        .unwrap();
    let reports = pool.map_chunked(report, 0..200, 1).unwrap();
    for (worker, runs, greeting) in &reports {
        assert_eq!(*runs, 1, "worker {worker} ran the initializer {runs} times");
        assert_eq!(greeting, "hi");
    }
    let workers: HashSet<&String> = reports.iter().map(|r| &r.0).collect();
    assert!(!workers.is_empty() && workers.len() <= 2, "{workers:?}");
}

#[freethreading::test]
fn a_failing_initializer_breaks_the_pool() {
    let pool = WorkerPool::builder()
        .workers(1)
        .initializer(refuse_to_start, ())
        .build()
        .unwrap();
    match pool.map(identity, 0..4) {
        Err(Error::InitializerFailed { message }) => {
            assert!(message.contains("no database today"), "{message}");
        }
        other => panic!("expected a broken pool, got {other:?}"),
    }
    assert!(matches!(
        pool.apply(identity, (1,)),
        Err(Error::InitializerFailed { .. })
    ));
}

#[freethreading::test]
fn max_tasks_per_child_recycles_workers() {
    let pool = WorkerPool::builder()
        .workers(1)
        .max_tasks_per_child(2)
        .initializer(remember, ("again".to_owned(),))
        .build()
        .unwrap();
    let reports = pool.map_chunked(report, 0..6, 1).unwrap();
    let workers: Vec<&String> = reports.iter().map(|r| &r.0).collect();
    // One worker at a time, two tasks each: three different workers, in runs of two.
    assert_eq!(workers[0], workers[1]);
    assert_eq!(workers[2], workers[3]);
    assert_eq!(workers[4], workers[5]);
    let distinct: HashSet<&&String> = workers.iter().collect();
    assert_eq!(distinct.len(), 3, "{workers:?}");
    // Each replacement ran the initializer itself, once.
    assert!(
        reports
            .iter()
            .all(|(_, runs, greeting)| *runs == 1 && greeting == "again")
    );
    if get_backend() == Backend::Multiprocessing {
        let pids: HashSet<&str> = workers
            .iter()
            .map(|w| w.split('/').next().unwrap())
            .collect();
        assert_eq!(pids.len(), 3, "process workers must be new processes");
    }
}

/// As a pool's child, this test is a program that forgot `init()`: it reaches the pool API.
/// Run on its own, it does nothing.
#[test]
fn stray_child_target() {
    if freethreading_tests::parent_channel().is_some() {
        let _ = WorkerPool::builder()
            .backend(Backend::Multiprocessing)
            .workers(1)
            .build();
        unreachable!("a stray child must exit inside the pool constructor");
    }
}

/// As a pool's child, this test never reaches the API at all.
#[test]
fn silent_child_target() {
    if freethreading_tests::parent_channel().is_some() {
        loop {
            std::thread::park();
        }
    }
}

/// As a pool's child, this test exits with a code of its own before the handshake.
#[test]
fn quitting_child_target() {
    if freethreading_tests::parent_channel().is_some() {
        std::process::exit(3);
    }
}

fn start_child_running(test: &str, timeout: Duration) -> Error {
    with_test_children(test, || {
        WorkerPool::builder()
            .backend(Backend::Multiprocessing)
            .workers(1)
            .start_timeout(timeout)
            .build()
    })
    .expect_err("the child cannot become a worker")
}

#[test]
fn a_child_that_forgets_init_is_a_typed_error_naming_the_fix() {
    let error = start_child_running("stray_child_target", Duration::from_secs(60));
    assert!(
        matches!(error, Error::ChildNotInitialized { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("freethreading::init()"),
        "{error}"
    );
}

#[test]
fn a_child_that_never_answers_times_out() {
    let error = start_child_running("silent_child_target", Duration::from_millis(300));
    match &error {
        Error::ChildNotInitialized { detail } => {
            assert!(detail.contains("no handshake"), "{detail}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_child_that_exits_early_reports_its_exit_code() {
    let error = start_child_running("quitting_child_target", Duration::from_secs(60));
    match &error {
        Error::ChildNotInitialized { detail } => {
            assert!(detail.contains("exit code 3"), "{detail}")
        }
        other => panic!("unexpected {other:?}"),
    }
}
