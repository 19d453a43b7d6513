//! `map`, `starmap`, `apply`, `imap` and friends: results, order, laziness, where tasks run.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use freethreading::{Backend, Error, WorkerPool, get_backend, worker};

#[worker]
fn square(x: u64) -> u64 {
    x * x
}

#[worker]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[worker]
fn forty_two() -> u32 {
    42
}

#[worker]
fn describe(name: String, tags: Vec<String>, weight: Option<f64>) -> String {
    format!("{name}:{}:{weight:?}", tags.join("+"))
}

#[worker]
fn whoami(_item: u32) -> u32 {
    std::process::id()
}

#[worker]
fn slow_echo(millis: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(millis));
    millis
}

#[freethreading::test]
fn map_keeps_input_order_over_ten_thousand_items() {
    let pool = WorkerPool::new(3).unwrap();
    let out = pool.map(square, 0..10_000u64).unwrap();
    assert_eq!(out, (0..10_000u64).map(|x| x * x).collect::<Vec<_>>());
    // Every explicit chunk size gives the same answer, including ones that do not divide.
    for chunk in [1, 7, 333, 20_000] {
        assert_eq!(
            pool.map_chunked(square, 0..1_000u64, chunk).unwrap(),
            out[..1_000]
        );
    }
}

#[freethreading::test]
fn map_of_nothing_is_empty() {
    let pool = WorkerPool::new(2).unwrap();
    assert!(pool.map(square, Vec::<u64>::new()).unwrap().is_empty());
    assert!(pool.starmap(add, Vec::new()).unwrap().is_empty());
}

#[freethreading::test]
fn starmap_apply_and_zero_argument_workers() {
    let pool = WorkerPool::new(2).unwrap();
    assert_eq!(
        pool.starmap(add, [(1, 2), (-5, 5), (40, 2)]).unwrap(),
        vec![3, 0, 42]
    );
    assert_eq!(
        pool.starmap_chunked(add, (0..10).map(|i| (i, i)), 3)
            .unwrap()
            .len(),
        10
    );
    assert_eq!(pool.apply(add, (20, 22)).unwrap(), 42);
    assert_eq!(pool.apply(forty_two, ()).unwrap(), 42);
    assert_eq!(
        pool.apply(
            describe,
            ("ada".into(), vec!["x".into(), "y".into()], Some(1.5))
        )
        .unwrap(),
        "ada:x+y:Some(1.5)"
    );
}

#[freethreading::test]
fn invalid_sizes_are_errors() {
    assert!(matches!(WorkerPool::new(0), Err(Error::InvalidArgument(_))));
    let zero_tasks = WorkerPool::builder().max_tasks_per_child(0).build();
    assert!(matches!(zero_tasks, Err(Error::InvalidArgument(_))));
    let pool = WorkerPool::new(1).unwrap();
    assert!(matches!(
        pool.map_chunked(square, [1u64], 0),
        Err(Error::InvalidArgument(_))
    ));
}

#[freethreading::test]
fn default_size_is_the_available_parallelism() {
    let pool = WorkerPool::builder().build().unwrap();
    let expected = std::thread::available_parallelism().unwrap().get();
    assert_eq!(pool.workers(), expected);
    assert_eq!(pool.backend(), get_backend());
}

#[freethreading::test]
fn tasks_run_in_child_processes_only_on_the_process_backend() {
    let pool = WorkerPool::new(2).unwrap();
    let pids: HashSet<u32> = pool
        .map_chunked(whoami, 0..64, 1)
        .unwrap()
        .into_iter()
        .collect();
    let me = std::process::id();
    match get_backend() {
        Backend::Threading => assert_eq!(pids, HashSet::from([me])),
        Backend::Multiprocessing => {
            assert!(!pids.contains(&me), "a task ran in the parent");
            let children: HashSet<u32> = pool.pids().into_iter().collect();
            assert!(pids.is_subset(&children), "{pids:?} not among {children:?}");
        }
    }
}

#[freethreading::test]
fn imap_is_lazy_and_ordered() {
    let pool = WorkerPool::new(2).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let input = (0..10_000u64).inspect(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let mut results = pool.imap(square, input);
    assert_eq!(results.next().unwrap().unwrap(), 0);
    let early = pulled.load(Ordering::Relaxed);
    assert!(
        early < 1_000,
        "imap pulled {early} items to produce one result"
    );
    let rest: Vec<u64> = results.map(Result::unwrap).collect();
    assert_eq!(rest, (1..10_000u64).map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(pulled.load(Ordering::Relaxed), 10_000);
}

#[freethreading::test]
fn imap_takes_endless_input() {
    let pool = WorkerPool::new(2).unwrap();
    let first: Vec<u64> = pool
        .imap_chunked(square, 1u64.., 5)
        .take(12)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, (1..=12u64).map(|x| x * x).collect::<Vec<_>>());
}

#[freethreading::test]
fn imap_unordered_yields_every_result_once() {
    let pool = WorkerPool::new(3).unwrap();
    let mut got: Vec<u64> = pool
        .imap_unordered(square, 0..500u64)
        .map(Result::unwrap)
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..500u64).map(|x| x * x).collect::<Vec<_>>());
    let mut chunked: Vec<u64> = pool
        .imap_unordered_chunked(square, 0..500u64, 16)
        .map(Result::unwrap)
        .collect();
    chunked.sort_unstable();
    assert_eq!(chunked, got);
}

#[freethreading::test]
fn async_results_wait_and_report() {
    let pool = WorkerPool::new(2).unwrap();
    let mapped = pool.map_async(square, 0..100u64).unwrap();
    let applied = pool.apply_async(add, (1, 1)).unwrap();
    let starred = pool
        .starmap_async_chunked(add, [(1, 1), (2, 2)], 1)
        .unwrap();
    let chunked = pool.map_async_chunked(square, [3u64], 1).unwrap();
    mapped.wait();
    assert!(mapped.ready());
    assert_eq!(mapped.successful(), Some(true));
    assert_eq!(mapped.get().unwrap()[99], 99 * 99);
    assert_eq!(applied.get().unwrap(), 2);
    assert_eq!(starred.get().unwrap(), vec![2, 4]);
    assert_eq!(chunked.get().unwrap(), vec![9]);
    let starmapped = pool.starmap_async(add, [(5, 5)]).unwrap();
    assert!(starmapped.wait_timeout(Duration::from_secs(60)));
    assert_eq!(starmapped.get().unwrap(), vec![10]);
}

#[freethreading::test]
fn get_timeout_leaves_the_handle_usable() {
    let pool = WorkerPool::new(1).unwrap();
    // The second task waits behind the first; it cannot be ready after a zero timeout.
    let _first = pool.apply_async(slow_echo, (200,)).unwrap();
    let second = pool.apply_async(slow_echo, (1,)).unwrap();
    assert!(matches!(
        second.get_timeout(Duration::ZERO),
        Err(Error::Timeout)
    ));
    assert_eq!(second.successful(), None);
    assert_eq!(second.get_timeout(Duration::from_secs(60)).unwrap(), 1);
    assert!(matches!(
        second.get_timeout(Duration::from_secs(1)),
        Err(Error::ResultTaken)
    ));
}

/// An iterator that claims `claimed` items and yields `actual`.
struct Liar {
    claimed: usize,
    actual: u64,
    next: u64,
}

impl Iterator for Liar {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        (self.next < self.actual).then(|| {
            self.next += 1;
            self.next
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claimed, Some(self.claimed))
    }
}

#[freethreading::test]
fn an_input_whose_size_hint_lies_is_an_error_not_a_wrong_answer() {
    let pool = WorkerPool::new(2).unwrap();
    for (claimed, actual) in [(50, 30), (30, 50), (1, 0)] {
        let liar = Liar {
            claimed,
            actual,
            next: 0,
        };
        match pool.map_chunked(square, liar, 4) {
            Err(Error::InvalidArgument(message)) => assert!(message.contains("size_hint")),
            other => panic!("claimed {claimed}, yielded {actual}: {other:?}"),
        }
    }
    // The pool is fine afterwards.
    assert_eq!(pool.map(square, 0..3u64).unwrap(), vec![0, 1, 4]);
}

/// Runs a pool of its own inside a worker (a nested pool on the process backend is a
/// grandchild of the test).
#[worker]
fn nested_sum(n: u64) -> (u64, u32) {
    let pool = WorkerPool::new(2).unwrap();
    let total = pool.map(square, 0..n).unwrap().iter().sum();
    let pids = pool.map_chunked(whoami, 0..8, 1).unwrap();
    (total, pids[0])
}

#[freethreading::test]
fn a_task_can_run_a_pool_of_its_own() {
    let pool = WorkerPool::new(1).unwrap();
    let (total, inner_pid) = pool.apply(nested_sum, (100,)).unwrap();
    assert_eq!(total, (0..100u64).map(|x| x * x).sum());
    if get_backend() == Backend::Multiprocessing {
        assert!(!pool.pids().contains(&inner_pid));
        assert_ne!(inner_pid, std::process::id());
    }
}
