//! Benchmark cases for the synchronisation primitives, called by the `bench` example.
//!
//! - `lock_uncontended`: ns per acquire/release pair of a [`Lock`] in the parent (the lock lives
//!   in the shared arena, the very object a process-backend child would use), median of 5 runs
//!   of 1 000 000 pairs;
//! - `std_mutex_uncontended`: the same for `std::sync::Mutex<()>`, the yardstick;
//! - `event_pingpong`: round trips per second between the parent and one child process,
//!   alternating through two [`Event`]s.

use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use freethreading::{Backend, Event, Lock, WorkerPool, worker};

use crate::measure::{median, timed};

const PAIRS: u32 = 1_000_000;
const RUNS: usize = 5;
const ROUND_TRIPS: u32 = 20_000;

/// ns per uncontended `Lock` acquire/release pair (through the RAII guard).
pub fn lock_uncontended() -> f64 {
    let lock = Lock::new();
    let runs = timed(RUNS, 1, || {
        for _ in 0..PAIRS {
            drop(black_box(&lock).lock());
        }
    });
    median(&runs) * 1e9 / f64::from(PAIRS)
}

/// ns per uncontended `std::sync::Mutex` lock/unlock pair.
pub fn std_mutex_uncontended() -> f64 {
    let mutex = Mutex::new(());
    let runs = timed(RUNS, 1, || {
        for _ in 0..PAIRS {
            drop(black_box(&mutex).lock());
        }
    });
    median(&runs) * 1e9 / f64::from(PAIRS)
}

/// The child's side of the ping-pong: answer every `ping` with a `pong`.
#[worker]
fn answer_pings(ping: Event, pong: Event, rounds: u32) -> u32 {
    for done in 0..rounds {
        if !ping.wait_timeout(Duration::from_secs(30)) {
            return done;
        }
        ping.clear();
        pong.set();
    }
    rounds
}

/// Round trips per second between this process and a child process through two `Event`s
/// (median of 5 runs of 20 000 round trips, each on a warm child).
///
/// # Panics
///
/// Panics if the child process cannot be started or stops answering.
pub fn event_pingpong() -> f64 {
    let pool = WorkerPool::builder()
        .workers(1)
        .backend(Backend::Multiprocessing)
        .build()
        .expect("start one child process");
    let (ping, pong) = (Event::new(), Event::new());
    let mut rates = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let child = pool
            .apply_async(answer_pings, (ping.clone(), pong.clone(), ROUND_TRIPS + 1))
            .expect("submit the ping-pong task");
        let round_trip = || {
            ping.set();
            assert!(pong.wait_timeout(Duration::from_secs(30)), "no pong");
            pong.clear();
        };
        // The first round trip waits for the task to start: not timed.
        round_trip();
        let start = Instant::now();
        for _ in 0..ROUND_TRIPS {
            round_trip();
        }
        rates.push(f64::from(ROUND_TRIPS) / start.elapsed().as_secs_f64());
        assert_eq!(child.get().expect("the child answered"), ROUND_TRIPS + 1);
    }
    median(&rates)
}
