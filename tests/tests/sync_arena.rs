//! The shared arena: dropped primitives are reclaimed, in this process and after round trips
//! through pool tasks. The only test in its binary, so no other test allocates meanwhile.

use freethreading::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore, WorkerPool, worker,
};

#[worker]
fn touch_all(lock: Lock, cond: Condition, sem: Semaphore, barrier: Barrier) -> bool {
    let _guard = lock.lock();
    let _permit = sem.permit();
    let _cond = cond.lock();
    barrier.wait().is_ok()
}

#[freethreading::test]
fn create_drop_cycles_do_not_grow_the_arena() {
    let pool = WorkerPool::new(2).unwrap();
    let (live_before, bytes_before) = freethreading::__arena_usage();
    for _ in 0..10_000 {
        let lock = Lock::new();
        let rlock = RLock::new();
        let cond = Condition::new(); // and its own RLock
        let event = Event::new();
        let sem = Semaphore::new(1);
        let bounded = BoundedSemaphore::new(1);
        let barrier = Barrier::new(1).unwrap();
        // Use them, so the per-process tables and waiter nodes are exercised too.
        drop(lock.lock());
        drop(rlock.lock());
        drop(sem.permit());
        drop(bounded.permit());
        event.set();
        let _ = barrier.wait();
        let guard = cond.lock();
        let _ = cond.wait_timeout(std::time::Duration::ZERO);
        drop(guard);
        let _clones = (lock.clone(), cond.clone(), barrier.clone());
    }
    // Handles that travel to tasks (decoded, possibly in a child) and come back dropped.
    for _ in 0..100 {
        let args = (
            Lock::new(),
            Condition::new(),
            Semaphore::new(1),
            Barrier::new(1).unwrap(),
        );
        assert!(pool.apply(touch_all, args).unwrap());
    }
    let (live_after, bytes_after) = freethreading::__arena_usage();
    assert_eq!(live_after, live_before, "objects leaked");
    // At most one cycle's worth of slots (about a dozen) was ever live at once.
    assert!(
        bytes_after - bytes_before <= 32 * 128,
        "the arena grew by {} bytes",
        bytes_after - bytes_before
    );
}
