//! Benchmark cases for the queues, called by the `bench` example, with the Python peer's
//! definitions:
//!
//! - `queue_roundtrip`: a child [`Worker`] echoes items from one [`Queue`] to another; round
//!   trips per second, 20 000 per run, median of 3;
//! - `queue_throughput`: one way, 100 000 items then a batch end marker; the child counts them
//!   and reports the count; items per second, median of 5;
//! - `crossbeam_throughput`: the same one-way shape over a plain unbounded crossbeam channel
//!   between two threads, for reference.
//!
//! The worker runs on the selected backend (a thread, or a child process).

use std::thread;

use freethreading::{Queue, Worker, WorkerExit, worker};
use serde::{Deserialize, Serialize};

use crate::measure::{median, timed};

const ROUND_TRIPS: u64 = 20_000;
const ITEMS: u64 = 100_000;

/// What the parent sends to the draining child.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum Msg {
    /// One item to count.
    Item(u64),
    /// The end of a batch: report the count (Python's `None`).
    EndBatch,
    /// Stop the worker (Python's `"stop"`).
    Stop,
}

/// What the draining child answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The child is up.
    Ready,
    /// Items counted in the batch.
    Count(u64),
}

/// Echoes every item until `None`.
#[worker]
fn echo_worker(q_in: Queue<Option<i64>>, q_out: Queue<Option<i64>>) {
    while let Some(x) = q_in.get().expect("echo input") {
        q_out.put(Some(x)).expect("echo output");
    }
}

/// Counts items per batch, reports each count; ends on `Stop`.
#[worker]
fn drain_worker(q_in: Queue<Msg>, q_out: Queue<Reply>) {
    q_out.put(Reply::Ready).expect("ready");
    let mut n = 0;
    loop {
        match q_in.get().expect("drain input") {
            Msg::Item(_) => n += 1,
            Msg::EndBatch => {
                q_out.put(Reply::Count(n)).expect("count");
                n = 0;
            }
            Msg::Stop => break,
        }
    }
}

/// Round trips per second through a child that echoes.
///
/// # Panics
///
/// Panics if the worker cannot be started or a queue operation fails.
pub fn queue_roundtrip() -> f64 {
    let (q_in, q_out) = (Queue::new(), Queue::new());
    let w = Worker::new(echo_worker, (q_in.clone(), q_out.clone())).expect("worker");
    w.start().expect("start");
    q_in.put(Some(-1)).unwrap();
    q_out.get().unwrap(); // the child is up
    let runs = timed(3, 0, || {
        for i in 0..ROUND_TRIPS as i64 {
            q_in.put(Some(i)).unwrap();
            q_out.get().unwrap();
        }
    });
    q_in.put(None).unwrap();
    assert_eq!(w.join().unwrap(), WorkerExit::Returned);
    ROUND_TRIPS as f64 / median(&runs)
}

/// Items per second, one way, into a child that counts them.
///
/// # Panics
///
/// Panics if the worker cannot be started or a queue operation fails.
pub fn queue_throughput() -> f64 {
    let (q_in, q_out) = (Queue::new(), Queue::new());
    let w = Worker::new(drain_worker, (q_in.clone(), q_out.clone())).expect("worker");
    w.start().expect("start");
    assert_eq!(q_out.get().unwrap(), Reply::Ready);
    let runs = timed(5, 0, || {
        for i in 0..ITEMS {
            q_in.put(Msg::Item(i)).unwrap();
        }
        q_in.put(Msg::EndBatch).unwrap();
        assert_eq!(q_out.get().unwrap(), Reply::Count(ITEMS));
    });
    q_in.put(Msg::Stop).unwrap();
    assert_eq!(w.join().unwrap(), WorkerExit::Returned);
    ITEMS as f64 / median(&runs)
}

/// Items per second, one way, over an unbounded crossbeam channel into a counting thread.
///
/// # Panics
///
/// Panics if the thread dies.
pub fn crossbeam_throughput() -> f64 {
    let (tx_in, rx_in) = crossbeam_channel::unbounded::<Msg>();
    let (tx_out, rx_out) = crossbeam_channel::unbounded::<Reply>();
    let child = thread::spawn(move || {
        tx_out.send(Reply::Ready).unwrap();
        let mut n = 0;
        loop {
            match rx_in.recv().unwrap() {
                Msg::Item(_) => n += 1,
                Msg::EndBatch => {
                    tx_out.send(Reply::Count(n)).unwrap();
                    n = 0;
                }
                Msg::Stop => break,
            }
        }
    });
    assert_eq!(rx_out.recv().unwrap(), Reply::Ready);
    let runs = timed(5, 0, || {
        for i in 0..ITEMS {
            tx_in.send(Msg::Item(i)).unwrap();
        }
        tx_in.send(Msg::EndBatch).unwrap();
        assert_eq!(rx_out.recv().unwrap(), Reply::Count(ITEMS));
    });
    tx_in.send(Msg::Stop).unwrap();
    child.join().unwrap();
    ITEMS as f64 / median(&runs)
}
