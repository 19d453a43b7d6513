//! An item larger than the ring (64 MiB) between processes, both ways, and the memory of
//! large items and queues given back. The only test in its binary, so no other test
//! allocates shared memory meanwhile.

use std::time::Duration;

use freethreading::{Bytes, Queue, Worker, WorkerExit, worker};

const PATIENCE: Duration = Duration::from_secs(20);

#[worker]
fn put_blob(queue: Queue<Bytes>, len: usize) {
    queue.put(pattern(len)).unwrap();
}

#[worker]
fn echo_len(input: Queue<Bytes>, output: Queue<usize>) {
    let blob = input.get().unwrap();
    assert!(blob == pattern(blob.0.len()), "the blob arrived intact");
    output.put(blob.0.len()).unwrap();
}

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
        assert!(blob == pattern(LEN), "the blob arrived intact");
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
