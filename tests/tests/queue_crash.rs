//! Workers that die in the middle of a queue operation. On the process backend they are
//! really killed (`SIGKILL`) at the instant that matters; threads cannot be killed, so the
//! thread run checks the thread equivalent (a worker that panics between operations).
//!
//! The documented semantics checked here:
//! - a consumer killed inside `get` before removing the item leaves it at the head, and the
//!   next `get` returns it;
//! - a consumer killed while waiting in `get` blocks nobody;
//! - a producer killed inside `put` leaves no trace: no half-written item, nothing counted.

use std::time::Duration;

use freethreading::{Backend, Event, ExitReason, Queue, Worker, WorkerExit, get_backend, worker};

const PATIENCE: Duration = Duration::from_secs(20);

#[worker]
fn get_and_die(queue: Queue<u32>) {
    freethreading::__queue_die_in_next_get();
    let item = queue.get().unwrap();
    unreachable!("the process survived taking {item}");
}

#[worker]
fn get_then_panic(queue: Queue<u32>) {
    let item = queue.get().unwrap();
    panic!("consumer died holding {item}");
}

#[worker]
fn announce_then_get(queue: Queue<u32>, waiting: Event) -> u32 {
    waiting.set();
    queue.get().unwrap()
}

#[worker]
fn put_then_die(queue: Queue<Vec<u64>>) {
    queue.put(vec![1]).unwrap();
    freethreading::__queue_die_in_next_put();
    let _ = queue.put((0..1000).collect());
    unreachable!("the process survived its put");
}

#[worker]
fn put_then_panic(queue: Queue<Vec<u64>>) {
    queue.put(vec![1]).unwrap();
    panic!("producer died between puts");
}

fn killed(exit: WorkerExit) -> bool {
    matches!(
        exit,
        WorkerExit::Died {
            reason: ExitReason::Signal(libc::SIGKILL),
            ..
        }
    )
}

#[freethreading::test]
fn consumer_killed_inside_get_leaves_the_item_for_the_next() {
    let queue = Queue::new();
    for i in 1..=3 {
        queue.put(i).unwrap();
    }
    if get_backend() == Backend::Threading {
        // A thread's `get` cannot be interrupted; a consumer that dies after it returned
        // took its item with it.
        let w = Worker::new(get_then_panic, (queue.clone(),)).unwrap();
        w.start().unwrap();
        assert!(matches!(w.join().unwrap(), WorkerExit::Panicked { .. }));
        assert_eq!(queue.qsize(), 2);
        assert_eq!(queue.get().unwrap(), 2);
        assert_eq!(queue.get().unwrap(), 3);
        return;
    }
    let w = Worker::new(get_and_die, (queue.clone(),)).unwrap();
    w.start().unwrap();
    assert!(killed(w.join().unwrap()));
    // The dead consumer decoded item 1 but had not removed it.
    assert_eq!(queue.qsize(), 3);
    assert_eq!(queue.get_timeout(PATIENCE).unwrap(), 1);
    assert_eq!(queue.get_timeout(PATIENCE).unwrap(), 2);
    queue.put(4).unwrap();
    assert_eq!(queue.get_timeout(PATIENCE).unwrap(), 3);
    assert_eq!(queue.get_timeout(PATIENCE).unwrap(), 4);
    assert!(queue.try_get().is_err());
}

#[freethreading::test]
fn consumer_killed_while_waiting_blocks_nobody() {
    let queue = Queue::new();
    let waiting = Event::new();
    let w = Worker::new(announce_then_get, (queue.clone(), waiting.clone())).unwrap();
    w.start().unwrap();
    assert!(waiting.wait_timeout(PATIENCE));
    if get_backend() == Backend::Multiprocessing {
        let pid = w.ident().unwrap() as libc::pid_t;
        // SAFETY: kill with a valid signal on our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        assert!(killed(w.join().unwrap()));
        queue.put(7).unwrap();
        queue.put(8).unwrap();
        // The dead waiter neither took an item nor holds anything the others need.
        assert_eq!(queue.get_timeout(PATIENCE).unwrap(), 7);
        let other = Worker::new(announce_then_get, (queue.clone(), Event::new())).unwrap();
        other.start().unwrap();
        assert_eq!(other.join().unwrap(), WorkerExit::Returned);
        assert!(queue.empty());
    } else {
        // A waiting thread cannot be killed: it gets the next item.
        queue.put(7).unwrap();
        assert_eq!(w.join().unwrap(), WorkerExit::Returned);
        assert!(queue.empty());
    }
    queue.put(9).unwrap();
    assert_eq!(queue.get_timeout(PATIENCE).unwrap(), 9);
}

#[freethreading::test]
fn producer_killed_inside_put_leaves_no_trace() {
    let queue = Queue::new();
    let exit = if get_backend() == Backend::Threading {
        let w = Worker::new(put_then_panic, (queue.clone(),)).unwrap();
        w.start().unwrap();
        let exit = w.join().unwrap();
        assert!(matches!(exit, WorkerExit::Panicked { .. }));
        exit
    } else {
        let w = Worker::new(put_then_die, (queue.clone(),)).unwrap();
        w.start().unwrap();
        let exit = w.join().unwrap();
        assert!(killed(exit.clone()), "{exit:?}");
        exit
    };
    drop(exit);
    assert_eq!(queue.qsize(), 1, "only the completed put is visible");
    assert_eq!(
        queue.unfinished_tasks(),
        1,
        "only the completed put is counted"
    );
    assert_eq!(queue.get_timeout(PATIENCE).unwrap(), vec![1]);
    assert!(queue.try_get().is_err(), "no half-written item");
    // The producers' lock is taken over; the space the dead one wrote into is reused.
    for i in 0..100u64 {
        queue.put_timeout(vec![i; 100], PATIENCE).unwrap();
    }
    for i in 0..100u64 {
        assert_eq!(queue.get().unwrap(), vec![i; 100]);
    }
    assert!(queue.empty());
}
