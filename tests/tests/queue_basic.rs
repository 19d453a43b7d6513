//! `Queue` and `SimpleQueue` on both backends: Python's behaviour, handles passed to pool
//! tasks and workers, items refused with their value handed back, large items.

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

#[worker]
fn put_blob(queue: Queue<Bytes>, len: usize) {
    queue.put(Bytes::pattern(len)).unwrap();
}

#[worker]
fn echo_len(input: Queue<Bytes>, output: Queue<usize>) {
    let blob = input.get().unwrap();
    assert!(
        blob == Bytes::pattern(blob.0.len()),
        "the blob arrived intact"
    );
    output.put(blob.0.len()).unwrap();
}

/// A byte string encoded as one block of bytes (serde encodes a plain `Vec<u8>` element by
/// element), as `serde_bytes` would.
#[derive(PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl Bytes {
    /// `len` bytes, each page stamped with its number so a misplaced page shows.
    fn pattern(len: usize) -> Bytes {
        let mut bytes = vec![0xA5; len];
        for (page, chunk) in bytes.chunks_mut(4096).enumerate() {
            let stamp = (page as u32).to_le_bytes();
            let n = chunk.len().min(4);
            chunk[..n].copy_from_slice(&stamp[..n]);
        }
        Bytes(bytes)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        deserializer.deserialize_byte_buf(Visit)
    }
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
fn item_larger_than_the_ring_goes_through() {
    // 64 MiB: four thousand times a fresh ring, and the ring's own limit.
    const LEN: usize = 64 << 20;
    let (blocks_before, _) = freethreading::__arena_block_usage();
    {
        let queue = Queue::new();
        let w = Worker::new(put_blob, (queue.clone(), LEN)).unwrap();
        w.start().unwrap();
        let blob = queue.get_timeout(PATIENCE).unwrap();
        assert_eq!(w.join().unwrap(), WorkerExit::Returned);
        assert_eq!(blob.0.len(), LEN);
        assert!(blob == Bytes::pattern(LEN), "the blob arrived intact");
        // And the other way, to a worker, while small items keep flowing behind it.
        let lens = Queue::new();
        let w = Worker::new(echo_len, (queue.clone(), lens.clone())).unwrap();
        w.start().unwrap();
        queue.put(blob).unwrap();
        assert_eq!(lens.get_timeout(PATIENCE).unwrap(), LEN);
        assert_eq!(w.join().unwrap(), WorkerExit::Returned);
        // An unread large item is freed with its queue.
        queue.put(Bytes(vec![1; 1 << 20])).unwrap();
    }
    let (blocks_after, _) = freethreading::__arena_block_usage();
    assert_eq!(
        blocks_after, blocks_before,
        "the queues' memory was given back"
    );
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
