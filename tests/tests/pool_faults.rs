//! Panics, crashing children, misbehaving children, and misuse of a pool.

use std::collections::HashSet;
use std::time::Duration;

use freethreading::{Backend, Error, ExitReason, WorkerPool, get_backend, worker};
use freethreading_tests::{crash_on_seven, fragile, sigkill_on_seven, write_to_parent};

#[worker]
fn square(x: u64) -> u64 {
    x * x
}

fn get_backend_is_processes() -> bool {
    freethreading_tests::parent_channel().is_some()
}

#[worker]
fn corrupt_answer(mode: u8) -> u8 {
    if get_backend_is_processes() {
        match mode {
            // A frame of an unknown kind.
            0 => write_to_parent(&[5, 0, 0, 0, 99, 1, 2, 3, 4]),
            // A frame that announces 100 bytes, sends 3, and the stream ends.
            _ => {
                write_to_parent(&[100, 0, 0, 0, 17, 1, 2]);
                std::process::exit(0);
            }
        }
    }
    mode
}

#[worker]
fn sleepy(millis: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(millis));
    millis
}

#[freethreading::test]
fn a_panicking_task_fails_its_item_and_the_pool_keeps_serving() {
    let pool = WorkerPool::new(2).unwrap();
    match pool.map(fragile, 0..40u64) {
        Err(Error::TaskPanicked { message }) => assert_eq!(message, "unlucky number 13"),
        other => panic!("expected a panic error, got {other:?}"),
    }
    // imap reports the one failure and goes on.
    let results: Vec<_> = pool.imap(fragile, 0..40u64).collect();
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    assert!(matches!(&results[13], Err(Error::TaskPanicked { .. })));
    assert_eq!(*results[14].as_ref().unwrap(), 14);
    assert!(matches!(
        pool.apply(fragile, (13,)),
        Err(Error::TaskPanicked { .. })
    ));
    assert_eq!(pool.map(square, 0..4u64).unwrap(), vec![0, 1, 4, 9]);
}

#[freethreading::test]
fn a_sigkilled_child_fails_only_its_task() {
    let pool = WorkerPool::new(2).unwrap();
    let before: HashSet<u32> = pool.pids().into_iter().collect();
    let results: Vec<Result<u64, Error>> = pool.imap(sigkill_on_seven, 0..40u64).collect();
    let failures: Vec<usize> = (0..40).filter(|&i| results[i].is_err()).collect();
    assert_eq!(
        failures,
        vec![7],
        "only the task that was running may fail: {results:?}"
    );
    match (&results[7], get_backend()) {
        (Err(Error::WorkerDied { pid, reason }), Backend::Multiprocessing) => {
            assert!(before.contains(pid), "pid {pid} was not a child");
            assert_eq!(*reason, ExitReason::Signal(libc::SIGKILL));
        }
        (Err(Error::TaskPanicked { .. }), Backend::Threading) => {}
        (other, backend) => panic!("unexpected {other:?} on {backend}"),
    }
    // The pool healed: a replacement child serves the next call.
    assert_eq!(pool.map(square, 0..100u64).unwrap()[99], 99 * 99);
    if get_backend() == Backend::Multiprocessing {
        let after: HashSet<u32> = pool.pids().into_iter().collect();
        assert_eq!(after.len(), 2);
        assert_ne!(before, after, "the dead child was not replaced");
    }
}

#[freethreading::test]
fn a_killed_child_during_map_fails_the_map_and_the_pool_heals() {
    let pool = WorkerPool::new(2).unwrap();
    let args: Vec<(u64, i32)> = (0..50).map(|x| (x, libc::SIGKILL)).collect();
    match (pool.starmap_chunked(crash_on_seven, args, 2), get_backend()) {
        (Err(Error::WorkerDied { reason, .. }), Backend::Multiprocessing) => {
            assert_eq!(reason, ExitReason::Signal(libc::SIGKILL));
        }
        (Err(Error::TaskPanicked { .. }), Backend::Threading) => {}
        (other, backend) => panic!("unexpected {other:?} on {backend}"),
    }
    let display = Error::WorkerDied {
        pid: 1234,
        reason: ExitReason::Signal(9),
    }
    .to_string();
    assert_eq!(
        display,
        "worker process 1234 died (signal 9 (SIGKILL)) while running the task"
    );
    assert_eq!(
        pool.starmap(crash_on_seven, [(1, 0), (2, 0)]).unwrap(),
        vec![1, 2]
    );
}

#[freethreading::test]
fn an_aborting_or_segfaulting_child_is_reported_with_its_signal() {
    let pool = WorkerPool::new(2).unwrap();
    for signal in [libc::SIGABRT, libc::SIGSEGV] {
        match (pool.apply(crash_on_seven, (7, signal)), get_backend()) {
            (Err(Error::WorkerDied { reason, .. }), Backend::Multiprocessing) => {
                assert_eq!(reason, ExitReason::Signal(signal));
            }
            (Err(Error::TaskPanicked { .. }), Backend::Threading) => {}
            (other, backend) => panic!("unexpected {other:?} on {backend}"),
        }
        assert_eq!(pool.apply(square, (5,)).unwrap(), 25);
    }
}

#[freethreading::test]
fn garbage_and_truncated_frames_are_protocol_errors() {
    let pool = WorkerPool::new(1).unwrap();
    for mode in [0u8, 1] {
        match (pool.apply(corrupt_answer, (mode,)), get_backend()) {
            (Err(Error::Protocol { detail }), Backend::Multiprocessing) => {
                assert!(!detail.is_empty());
            }
            (Ok(m), Backend::Threading) => assert_eq!(m, mode),
            (other, backend) => panic!("unexpected {other:?} on {backend}"),
        }
        // The corrupt child was replaced.
        assert_eq!(pool.apply(square, (3,)).unwrap(), 9);
    }
}

#[freethreading::test]
fn submitting_after_close_is_an_error() {
    let pool = WorkerPool::new(2).unwrap();
    assert!(matches!(pool.join(), Err(Error::StillRunning)));
    let pending = pool.map_async(square, 0..10u64).unwrap();
    pool.close();
    pool.close(); // idempotent
    assert!(matches!(pool.map(square, [1u64]), Err(Error::Closed)));
    assert!(matches!(pool.apply(square, (1,)), Err(Error::Closed)));
    assert!(matches!(pool.apply_async(square, (1,)), Err(Error::Closed)));
    let mut lazy = pool.imap(square, [1u64]);
    assert!(matches!(lazy.next(), Some(Err(Error::Closed))));
    assert!(lazy.next().is_none());
    // Work queued before close still completes.
    assert_eq!(pending.get().unwrap().len(), 10);
    pool.join().unwrap();
    assert!(pool.pids().is_empty());
}

#[freethreading::test]
fn terminate_discards_queued_work() {
    let pool = WorkerPool::new(1).unwrap();
    let pending = pool.map_async_chunked(sleepy, vec![50u64; 40], 1).unwrap();
    pool.terminate();
    assert!(matches!(pending.get(), Err(Error::Terminated)));
    assert!(matches!(pool.apply(square, (1,)), Err(Error::Closed)));
    pool.join().unwrap();
}

#[freethreading::test]
fn dropping_the_pool_terminates_pending_results() {
    let pool = WorkerPool::new(1).unwrap();
    let pending = pool.map_async_chunked(sleepy, vec![50u64; 40], 1).unwrap();
    drop(pool);
    assert!(matches!(pending.get(), Err(Error::Terminated)));
}
