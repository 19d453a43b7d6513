//! Cancelling: a future cancelled while pending never runs, races between cancel and start,
//! `shutdown(cancel_futures)`, and done callbacks.

mod executor_support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use executor_support::{Scratch, mark, mark_and_die, square, until, wait_for};
use freethreading::{Error, WorkerPoolExecutor};

#[freethreading::test]
fn a_future_cancelled_while_pending_never_runs() {
    let scratch = Scratch::new("cancel");
    let executor = WorkerPoolExecutor::new(1).unwrap();
    let pids = executor.pids();
    let blocker = executor
        .submit(wait_for, (scratch.path("gate"), 1))
        .unwrap();
    // If it ran, it would leave a marker, and in a worker process it would also kill its
    // child, which the pool would report and replace.
    let victim = executor
        .submit(mark_and_die, (scratch.path("victim"),))
        .unwrap();
    until("the blocker runs", || blocker.running());
    assert!(victim.cancel(), "a pending future can be cancelled");
    assert!(
        victim.cancel(),
        "cancelling again still says it is cancelled"
    );
    assert!(victim.cancelled() && victim.done() && !victim.running());
    assert!(matches!(victim.result(), Err(Error::Cancelled)));
    assert!(matches!(victim.exception(), Some(Error::Cancelled)));
    scratch.open("gate");
    assert_eq!(blocker.result().unwrap(), 1);
    // A task submitted after the victim ran, so the queue went past the victim's place.
    let after = executor.submit(mark, (scratch.path("after"), 2)).unwrap();
    assert_eq!(after.result().unwrap(), 2);
    assert!(scratch.exists("after"));
    assert!(!scratch.exists("victim"), "the cancelled task ran");
    assert_eq!(
        executor.pids(),
        pids,
        "a child died: the cancelled task ran"
    );
}

#[freethreading::test]
fn cancel_racing_with_workers_either_wins_or_the_task_runs() {
    let scratch = Scratch::new("race");
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let futures: Vec<_> = (0..120u64)
        .map(|i| {
            executor
                .submit(mark, (scratch.path(&i.to_string()), i))
                .unwrap()
        })
        .collect();
    // Cancel every other one while the workers are taking them.
    let won: Vec<bool> = futures
        .iter()
        .enumerate()
        .map(|(i, f)| i % 2 == 1 && f.cancel())
        .collect();
    executor.shutdown(true, false);
    for (i, future) in futures.iter().enumerate() {
        assert!(future.done());
        if won[i] {
            assert!(future.cancelled());
            assert!(matches!(future.result(), Err(Error::Cancelled)));
            assert!(!scratch.exists(&i.to_string()), "cancelled task {i} ran");
        } else {
            assert!(!future.cancelled());
            assert_eq!(future.result().unwrap(), i as u64);
            assert!(scratch.exists(&i.to_string()), "task {i} did not run");
        }
    }
}

#[freethreading::test]
fn shutdown_with_cancel_futures_cancels_what_has_not_started() {
    let scratch = Scratch::new("shutdown");
    let executor = WorkerPoolExecutor::new(1).unwrap();
    let blocker = executor
        .submit(wait_for, (scratch.path("gate"), 1))
        .unwrap();
    let queued: Vec<_> = (0..5)
        .map(|i| {
            executor
                .submit(mark_and_die, (scratch.path(&format!("q{i}")),))
                .unwrap()
        })
        .collect();
    until("the blocker runs", || blocker.running());
    executor.shutdown(false, true);
    // Cancelled at once, without waiting.
    assert!(queued.iter().all(|f| f.cancelled() && f.done()));
    assert!(blocker.running(), "a running task is not cancelled");
    assert!(matches!(executor.submit(square, (1,)), Err(Error::Closed)));
    scratch.open("gate");
    assert_eq!(blocker.result().unwrap(), 1);
    executor.shutdown(true, false);
    for i in 0..5 {
        assert!(!scratch.exists(&format!("q{i}")), "cancelled task q{i} ran");
    }
}

#[freethreading::test]
fn done_callbacks_run_once_on_completion_or_at_once_if_already_done() {
    let scratch = Scratch::new("callbacks");
    let executor = WorkerPoolExecutor::new(2).unwrap();
    let future = executor
        .submit(wait_for, (scratch.path("gate"), 5))
        .unwrap();
    let (tx, rx) = mpsc::channel();
    for tag in ["first", "second"] {
        let tx = tx.clone();
        future.add_done_callback(move |f| {
            tx.send((tag, f.done(), f.exception().is_none())).unwrap();
        });
    }
    assert!(rx.try_recv().is_err(), "called before the task finished");
    scratch.open("gate");
    // In the order they were added, each once, seeing a done future.
    assert_eq!(rx.recv().unwrap(), ("first", true, true));
    assert_eq!(rx.recv().unwrap(), ("second", true, true));
    assert_eq!(future.result().unwrap(), 5);

    // Already done: called at once, on this thread.
    let here = std::thread::current().id();
    let ran_on = Arc::new(std::sync::Mutex::new(None));
    let seen = Arc::clone(&ran_on);
    future.add_done_callback(move |_| *seen.lock().unwrap() = Some(std::thread::current().id()));
    assert_eq!(*ran_on.lock().unwrap(), Some(here));

    // Cancelling also completes the future and calls its callbacks. A fresh one-worker
    // executor, so that on the process backend the child takes one task at a time (a child
    // that has been answering quickly gets several queued, and those count as running).
    let executor = WorkerPoolExecutor::new(1).unwrap();
    let blocker = executor
        .submit(wait_for, (scratch.path("gate2"), 0))
        .unwrap();
    let pending = executor.submit(square, (3,)).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    pending.add_done_callback(move |f| {
        assert!(f.cancelled());
        counter.fetch_add(1, Ordering::SeqCst);
    });
    until("the worker is busy", || blocker.running());
    assert!(pending.cancel());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(pending.cancel());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "callbacks run only once");
    scratch.open("gate2");
}

#[freethreading::test]
fn a_panicking_callback_is_contained() {
    let executor = WorkerPoolExecutor::new(1).unwrap();
    let (tx, rx) = mpsc::channel();
    let futures: Vec<_> = (0..20u64)
        .map(|x| executor.submit(square, (x,)).unwrap())
        .collect();
    for (x, future) in futures.iter().enumerate() {
        future.add_done_callback(|_| panic!("callback failure"));
        let tx = tx.clone();
        future.add_done_callback(move |f| {
            tx.send((x, f.exception().is_none())).unwrap();
        });
    }
    // Every later callback still ran, and the executor (with its one worker) keeps serving.
    let seen: HashSet<usize> = (0..20).map(|_| rx.recv().unwrap().0).collect();
    assert_eq!(seen.len(), 20);
    for (x, future) in futures.iter().enumerate() {
        assert_eq!(future.result().unwrap(), (x * x) as u64);
    }
    let next = executor.submit(square, (9,)).unwrap();
    assert_eq!(next.result_timeout(Duration::from_secs(60)).unwrap(), 81);
    // A panicking callback on an already-done future is contained on this thread too.
    next.add_done_callback(|_| panic!("late callback failure"));
    assert_eq!(executor.submit(square, (2,)).unwrap().result().unwrap(), 4);
}

#[freethreading::test]
fn callbacks_run_by_shutdown_may_call_the_executor() {
    let scratch = Scratch::new("shutdown-callbacks");
    let executor = Arc::new(WorkerPoolExecutor::new(1).unwrap());
    let blocker = executor
        .submit(wait_for, (scratch.path("gate"), 1))
        .unwrap();
    let queued = executor.submit(square, (2,)).unwrap();
    let (tx, rx) = mpsc::channel();
    let inner = Arc::clone(&executor);
    queued.add_done_callback(move |f| {
        // Runs inside shutdown(); neither call may deadlock.
        let resubmit = inner.submit(square, (3,));
        tx.send((f.cancelled(), inner.max_workers(), resubmit.err()))
            .unwrap();
    });
    until("the blocker runs", || blocker.running());
    executor.shutdown(false, true);
    let (cancelled, workers, refused) = rx.recv().unwrap();
    assert!(cancelled);
    assert_eq!(workers, 1);
    assert!(matches!(refused, Some(Error::Closed)));
    scratch.open("gate");
    assert_eq!(blocker.result().unwrap(), 1);
}
