//! `Queue` and `SimpleQueue` on both backends: Python's behaviour, handles passed to pool
//! tasks and workers, items refused with their value handed back, mixed item sizes.

use std::time::Duration;

use freethreading::{
    Backend, Error, GetError, PutError, Queue, SimpleQueue, Worker, WorkerExit, WorkerPool,
    get_backend, worker,
};
use serde::{Deserialize, Serialize, Serializer};

/// Generous bound for anything that should happen promptly; tests never sleep to wait.
const PATIENCE: Duration = Duration::from_secs(20);

#[worker]
fn put_range(queue: Queue<u64>, from: u64, to: u64) -> u64 {
    for i in from..to {
        queue.put(i).unwrap();
    }
    to - from
}

#[worker]
fn get_n(queue: Queue<u64>, n: u64) -> Vec<u64> {
    (0..n)
        .map(|_| queue.get_timeout(PATIENCE).unwrap())
        .collect()
}

#[worker]
fn say_hello_world(queue: SimpleQueue<String>) {
    queue.put("hello".to_owned()).unwrap();
    queue.put("world".to_owned()).unwrap();
}

#[freethreading::test]
fn queue_follows_python() {
    let queue = Queue::new();
    assert!(queue.empty() && !queue.full());
    assert_eq!(queue.qsize(), 0);
    assert_eq!(queue.backend(), get_backend());
    for i in 0..5 {
        queue.put(i).unwrap();
    }
    assert_eq!(queue.qsize(), 5);
    assert!(!queue.full(), "an unbounded queue is never full");
    let got: Vec<i32> = (0..5).map(|_| queue.get().unwrap()).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4], "FIFO");
    assert!(matches!(queue.try_get(), Err(GetError::Empty)));
    assert!(
        queue
            .get_timeout(Duration::from_millis(10))
            .unwrap_err()
            .is_empty()
    );
    assert!(matches!(
        queue.get_timeout(Duration::ZERO),
        Err(GetError::Empty)
    ));
    // task_done: five puts, five task_done calls, then a typed error.
    assert!(!queue.join_timeout(Duration::ZERO));
    assert_eq!(queue.unfinished_tasks(), 5);
    for _ in 0..5 {
        queue.task_done().unwrap();
    }
    assert!(matches!(
        queue.task_done(),
        Err(Error::TaskDoneTooManyTimes)
    ));
    queue.join();
    assert_eq!(
        Error::TaskDoneTooManyTimes.to_string(),
        "task_done() called too many times"
    );
}

#[freethreading::test]
fn fresh_queue_joins_at_once() {
    let queue = Queue::<String>::new();
    queue.join();
    assert!(queue.join_timeout(Duration::ZERO));
    assert!(queue.task_done().is_err());
}

#[freethreading::test]
fn bounded_queue_refuses_and_hands_the_item_back() {
    let queue = Queue::with_maxsize(2);
    assert_eq!(queue.maxsize(), 2);
    queue.try_put("a".to_owned()).unwrap();
    queue.put_timeout("b".to_owned(), PATIENCE).unwrap();
    assert!(queue.full());
    match queue.try_put("c".to_owned()) {
        Err(PutError::Full(item)) => assert_eq!(item, "c"),
        other => panic!("expected Full, got {other:?}"),
    }
    let refused = queue
        .put_timeout("d".to_owned(), Duration::from_millis(10))
        .unwrap_err();
    assert!(refused.is_full());
    assert_eq!(refused.to_string(), "the queue is full");
    assert_eq!(refused.into_inner(), "d");
    assert_eq!(queue.qsize(), 2, "refused items were not added");
    assert_eq!(queue.get().unwrap(), "a");
    queue.try_put("e".to_owned()).unwrap();
    assert_eq!(queue.get().unwrap(), "b");
    assert_eq!(queue.get().unwrap(), "e");
    // Refused puts were not counted as tasks.
    for _ in 0..3 {
        queue.task_done().unwrap();
    }
    assert!(queue.task_done().is_err());
}

#[freethreading::test]
fn simple_queue_follows_python() {
    // The Python docs' example: a worker puts "hello" then "world".
    let queue = SimpleQueue::new();
    assert!(queue.empty());
    let w = Worker::new(say_hello_world, (queue.clone(),)).unwrap();
    w.start().unwrap();
    assert_eq!(queue.get().unwrap(), "hello");
    assert_eq!(queue.get().unwrap(), "world");
    assert_eq!(w.join().unwrap(), WorkerExit::Returned);
    assert!(queue.empty());
    assert!(queue.try_get().unwrap_err().is_empty());
    assert!(queue.get_timeout(Duration::from_millis(5)).is_err());
    queue.put("again".to_owned()).unwrap();
    assert!(
        !queue.empty(),
        "accurate right after put, without feeder lag"
    );
}

#[freethreading::test]
fn queues_pass_to_pool_tasks_started_before_them() {
    // The pool's workers exist before the queue: they find it all the same.
    let pool = WorkerPool::new(2).unwrap();
    pool.apply(put_range, (Queue::new(), 0, 1)).unwrap();
    let queue = Queue::new();
    let producing = pool
        .starmap_async(
            put_range,
            vec![(queue.clone(), 0, 500), (queue.clone(), 500, 1000)],
        )
        .unwrap();
    let mut got = pool.apply(get_n, (queue.clone(), 1000)).unwrap();
    assert_eq!(producing.get().unwrap(), vec![500, 500]);
    got.sort_unstable();
    assert_eq!(got, (0..1000).collect::<Vec<u64>>());
    assert!(queue.empty());
}

#[derive(Debug, Deserialize)]
struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this value refuses to be encoded",
        ))
    }
}

#[freethreading::test]
fn unencodable_item_comes_back_and_the_queue_is_unchanged() {
    let queue: Queue<Result<u8, Unencodable>> = Queue::new();
    queue.put(Ok(1)).unwrap();
    let outcome = queue.put(Err(Unencodable));
    if get_backend() == Backend::Threading {
        // Threads move items without encoding them: nothing to fail.
        outcome.unwrap();
        assert_eq!(queue.qsize(), 2);
        return;
    }
    match outcome {
        Err(PutError::Failed(Err(Unencodable), Error::Serialize { .. })) => {}
        other => panic!("expected a serialisation failure, got {other:?}"),
    }
    assert_eq!(queue.qsize(), 1, "nothing was added");
    assert_eq!(queue.unfinished_tasks(), 1, "nothing was counted");
    assert!(matches!(
        queue.try_put(Err(Unencodable)),
        Err(PutError::Failed(..))
    ));
    queue.put(Ok(2)).unwrap();
    assert_eq!(queue.get().unwrap().unwrap(), 1);
    assert_eq!(queue.get().unwrap().unwrap(), 2);
    assert!(queue.try_get().is_err());
}

#[freethreading::test]
fn mixed_sizes_keep_their_order() {
    let queue = Queue::new();
    let sizes = [
        0usize,
        1,
        7,
        8,
        9,
        16 << 10,
        (16 << 10) + 1,
        100_000,
        3,
        1 << 20,
        5,
    ];
    for round in 0..3 {
        for &len in &sizes {
            queue.put(vec![round as u8; len]).unwrap();
        }
        for &len in &sizes {
            assert_eq!(queue.get().unwrap(), vec![round as u8; len]);
        }
    }
    assert!(queue.empty());
}
