//! `task_done` and `join` across workers, and bounded queues holding producers back, on both
//! backends.

use std::time::Duration;

use freethreading::{Error, Queue, SimpleQueue, Worker, WorkerExit, WorkerPool, worker};

const PATIENCE: Duration = Duration::from_secs(20);

#[worker]
fn square_tasks(tasks: Queue<Option<u64>>, results: Queue<u64>) {
    while let Some(x) = tasks.get().unwrap() {
        results.put(x * x).unwrap();
        tasks.task_done().unwrap();
    }
    tasks.task_done().unwrap();
}

#[worker]
fn task_done_once(queue: Queue<u8>) -> Result<(), String> {
    queue.task_done().map_err(|e| e.to_string())
}

#[worker]
fn put_with_progress(queue: Queue<u32>, progress: SimpleQueue<u32>, n: u32) {
    for i in 0..n {
        queue.put(i).unwrap();
        progress.put(i).unwrap();
    }
}

#[freethreading::test]
fn join_waits_for_task_done_in_other_workers() {
    let tasks = Queue::new();
    let results = Queue::new();
    for x in 1..=50 {
        tasks.put(Some(x)).unwrap();
    }
    tasks.put(None).unwrap();
    tasks.put(None).unwrap();
    assert!(
        !tasks.join_timeout(Duration::from_millis(10)),
        "nothing is done yet"
    );
    let workers: Vec<Worker> = (0..2)
        .map(|_| Worker::new(square_tasks, (tasks.clone(), results.clone())).unwrap())
        .collect();
    for w in &workers {
        w.start().unwrap();
    }
    tasks.join();
    // Every result was put before its task was marked done.
    assert_eq!(results.qsize(), 50);
    assert_eq!(tasks.unfinished_tasks(), 0);
    let mut squares: Vec<u64> = (0..50).map(|_| results.get().unwrap()).collect();
    squares.sort_unstable();
    assert_eq!(squares, (1..=50u64).map(|x| x * x).collect::<Vec<_>>());
    for w in &workers {
        assert_eq!(w.join().unwrap(), WorkerExit::Returned);
    }
    assert!(matches!(
        tasks.task_done(),
        Err(Error::TaskDoneTooManyTimes)
    ));
}

#[freethreading::test]
fn task_done_from_a_pool_task_counts_and_refuses_too_many() {
    let pool = WorkerPool::new(1).unwrap();
    let queue = Queue::new();
    assert_eq!(
        pool.apply(task_done_once, (queue.clone(),)).unwrap(),
        Err("task_done() called too many times".to_owned())
    );
    queue.put(1).unwrap();
    queue.put(2).unwrap();
    assert_eq!(
        pool.apply(task_done_once, (queue.clone(),)).unwrap(),
        Ok(())
    );
    assert!(!queue.join_timeout(Duration::ZERO));
    assert_eq!(queue.unfinished_tasks(), 1);
    assert_eq!(
        pool.apply(task_done_once, (queue.clone(),)).unwrap(),
        Ok(())
    );
    assert!(queue.join_timeout(PATIENCE));
    assert!(
        pool.apply(task_done_once, (queue.clone(),))
            .unwrap()
            .is_err()
    );
}

#[freethreading::test]
fn bounded_queue_holds_the_producer_back() {
    const N: u32 = 10;
    let queue = Queue::with_maxsize(2);
    let progress = SimpleQueue::new();
    let producer = Worker::new(put_with_progress, (queue.clone(), progress.clone(), N)).unwrap();
    producer.start().unwrap();
    assert_eq!(progress.get_timeout(PATIENCE).unwrap(), 0);
    assert_eq!(progress.get_timeout(PATIENCE).unwrap(), 1);
    // The third put cannot finish while two items wait.
    assert!(progress.get_timeout(Duration::from_millis(50)).is_err());
    assert!(queue.full());
    assert_eq!(queue.qsize(), 2);
    for i in 0..N {
        assert_eq!(queue.get_timeout(PATIENCE).unwrap(), i);
        assert!(queue.qsize() <= 2, "the bound held");
        if i + 2 < N {
            // Each get frees room for exactly one more put.
            assert_eq!(progress.get_timeout(PATIENCE).unwrap(), i + 2);
        }
    }
    assert_eq!(producer.join().unwrap(), WorkerExit::Returned);
    assert!(queue.empty() && progress.empty());
}
