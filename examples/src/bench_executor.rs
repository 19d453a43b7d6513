//! Benchmark cases for [`WorkerPoolExecutor`], called by the `bench` example, with the Python
//! peer's definitions:
//!
//! - `executor_submit`: a two-worker executor, warmed with four tasks; 5 000 tiny `square`
//!   tasks submitted one by one, then all awaited; tasks per second, median of 5 runs;
//! - `executor_map`: `map` of `square` over 20 000 items with chunk size 1 (Python's default),
//!   consumed in full; items per second, median of 3 runs.

use freethreading::{ReturnWhen, WorkerPoolExecutor, wait, worker};

use crate::measure::{emit, median, timed};

/// Tasks per `executor_submit` run.
const SUBMITS: u64 = 5_000;
/// Items per `executor_map` run.
const MAP_ITEMS: u64 = 20_000;

#[worker]
fn square(x: u64) -> u64 {
    x * x
}

/// Tasks per second: `SUBMITS` submits, then a wait for all of them.
pub fn executor_submit(executor: &WorkerPoolExecutor) -> f64 {
    let warm: Vec<_> = (0..4)
        .map(|i| executor.submit(square, (i,)).expect("submit"))
        .collect();
    wait(&warm, None, ReturnWhen::AllCompleted);
    let runs = timed(5, 0, || {
        let futures: Vec<_> = (0..SUBMITS)
            .map(|i| executor.submit(square, (i,)).expect("submit"))
            .collect();
        wait(&futures, None, ReturnWhen::AllCompleted);
        let last = futures.last().expect("not empty").result().expect("result");
        assert_eq!(last, (SUBMITS - 1) * (SUBMITS - 1));
    });
    SUBMITS as f64 / median(&runs)
}

/// Items per second: a chunk-size-1 `map` over `MAP_ITEMS` items, consumed in full.
pub fn executor_map(executor: &WorkerPoolExecutor) -> f64 {
    let runs = timed(3, 0, || {
        let mut count = 0u64;
        for result in executor.map(square, 0..MAP_ITEMS).expect("map") {
            result.expect("item");
            count += 1;
        }
        assert_eq!(count, MAP_ITEMS);
    });
    MAP_ITEMS as f64 / median(&runs)
}

/// The `executor` group: both cases on one two-worker executor, as the Python peer runs them.
pub fn g_executor() {
    let executor = WorkerPoolExecutor::new(2).expect("executor starts");
    emit("executor_submit", executor_submit(&executor), "tasks_per_s");
    emit("executor_map", executor_map(&executor), "items_per_s");
    executor.shutdown(true, false);
}
