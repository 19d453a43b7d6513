//! Nothing lost, nothing invented: four producers and four consumers (threads, or eight child
//! processes) move 100 000 items per producer through one queue; every item arrives exactly
//! once, and each producer's items reach any one consumer in the order they were put.

use std::collections::HashMap;
use std::time::Duration;

use freethreading::{Queue, Worker, WorkerExit, worker};

const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 4;
const PER_PRODUCER: u64 = 100_000;
const PATIENCE: Duration = Duration::from_secs(60);

#[worker]
fn produce(queue: Queue<Option<u64>>, id: u64, n: u64) {
    for i in 0..n {
        queue.put(Some((id << 32) | i)).unwrap();
    }
}

#[worker]
fn consume(queue: Queue<Option<u64>>, results: Queue<Vec<u64>>) {
    let mut got = Vec::new();
    while let Some(item) = queue.get_timeout(PATIENCE).unwrap() {
        got.push(item);
    }
    results.put(got).unwrap();
}

#[freethreading::test]
fn many_producers_and_consumers_deliver_every_item_exactly_once() {
    let queue = Queue::new();
    let results = Queue::new();
    let consumers: Vec<Worker> = (0..CONSUMERS)
        .map(|_| Worker::new(consume, (queue.clone(), results.clone())).unwrap())
        .collect();
    let producers: Vec<Worker> = (0..PRODUCERS)
        .map(|id| Worker::new(produce, (queue.clone(), id, PER_PRODUCER)).unwrap())
        .collect();
    for w in consumers.iter().chain(&producers) {
        w.start().unwrap();
    }
    for w in &producers {
        assert_eq!(w.join().unwrap(), WorkerExit::Returned);
    }
    for _ in 0..CONSUMERS {
        queue.put(None).unwrap();
    }
    let mut all = Vec::new();
    for _ in 0..CONSUMERS {
        let got = results.get_timeout(PATIENCE).unwrap();
        // Per consumer, each producer's items come in the order they were put.
        let mut last: HashMap<u64, u64> = HashMap::new();
        for &item in &got {
            let (id, i) = (item >> 32, item & 0xFFFF_FFFF);
            if let Some(&prev) = last.get(&id) {
                assert!(i > prev, "producer {id}: item {i} after {prev}");
            }
            last.insert(id, i);
        }
        all.extend(got);
    }
    for w in &consumers {
        assert_eq!(w.join().unwrap(), WorkerExit::Returned);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (0..PRODUCERS)
        .flat_map(|id| (0..PER_PRODUCER).map(move |i| (id << 32) | i))
        .collect();
    assert_eq!(all.len(), expected.len(), "items lost or invented");
    assert!(all == expected, "the multiset of items differs");
    assert!(queue.empty() && results.empty());
    assert_eq!(
        queue.unfinished_tasks(),
        PRODUCERS * PER_PRODUCER + CONSUMERS as u64
    );
}
