//! `Lock` and `RLock` on both backends: the Python behaviour, mutual exclusion between workers,
//! and recovery when the holder process is killed.

use std::time::Duration;

use freethreading::{Acquired, Backend, Error, Lock, RLock, WorkerPool, get_backend, worker};
use freethreading_tests::sync_support::SharedValue;

/// Generous bound for anything that should happen "promptly"; tests never sleep to wait.
const PATIENCE: Duration = Duration::from_secs(20);

#[worker]
fn increment_under_lock(lock: Lock, value: SharedValue, times: u32) -> u32 {
    for _ in 0..times {
        let _guard = lock.lock();
        value.racy_increment();
    }
    times
}

#[worker]
fn try_lock_elsewhere(lock: Lock) -> bool {
    lock.try_acquire().is_some()
}

#[worker]
fn release_elsewhere(lock: Lock) -> bool {
    lock.release().is_ok()
}

#[worker]
fn acquire_and_return(lock: Lock) -> bool {
    lock.acquire_timeout(PATIENCE).is_some()
}

#[worker]
fn acquire_then_die(lock: Lock) {
    lock.acquire();
    // SAFETY: kill on our own pid with a valid signal; the process ends here.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

#[worker]
fn rlock_try_elsewhere(lock: RLock) -> (bool, bool) {
    let release_refused = matches!(lock.release(), Err(Error::NotHeld { .. }));
    (lock.try_acquire().is_some(), release_refused)
}

#[worker]
fn rlock_nested_then_die(lock: RLock) {
    lock.acquire();
    lock.acquire();
    // SAFETY: kill on our own pid with a valid signal; the process ends here.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

#[worker]
fn rlock_countdown(lock: RLock, n: u32) -> Vec<String> {
    fn countdown(lock: &RLock, n: u32, out: &mut Vec<String>) {
        let _guard = lock.lock();
        if n == 0 {
            out.push("go!".to_owned());
        } else {
            out.push(format!("{n}..."));
            countdown(lock, n - 1, out);
        }
    }
    let mut out = Vec::new();
    countdown(&lock, n, &mut out);
    out
}

#[freethreading::test]
fn lock_acquire_release_follow_python() {
    let lock = Lock::new();
    assert!(!lock.locked());
    assert_eq!(lock.acquire(), Acquired::Normal);
    assert!(lock.locked());
    assert!(lock.try_acquire().is_none(), "not reentrant");
    assert!(lock.acquire_timeout(Duration::from_millis(10)).is_none());
    assert!(lock.acquire_timeout(Duration::ZERO).is_none());
    lock.release().unwrap();
    assert!(matches!(lock.release(), Err(Error::NotHeld { .. })));
    {
        let guard = lock.try_lock().expect("free");
        assert!(!guard.owner_died());
        assert!(lock.lock_timeout(Duration::from_millis(1)).is_none());
    }
    assert!(!lock.locked());
}

#[freethreading::test]
fn lock_is_shared_with_pool_tasks() {
    let pool = WorkerPool::new(1).unwrap();
    let lock = Lock::new();
    let guard = lock.lock();
    assert!(!pool.apply(try_lock_elsewhere, (lock.clone(),)).unwrap());
    drop(guard);
    assert!(pool.apply(try_lock_elsewhere, (lock.clone(),)).unwrap());
    // The task took it and returned without releasing: it is held here too.
    assert!(lock.locked());
    // Any worker may release a Lock, as in Python.
    assert!(pool.apply(release_elsewhere, (lock.clone(),)).unwrap());
    assert!(!lock.locked());
    assert!(!pool.apply(release_elsewhere, (lock.clone(),)).unwrap());
}

#[freethreading::test]
fn lock_gives_mutual_exclusion_between_workers() {
    const TIMES: u32 = 300;
    let pool = WorkerPool::new(2).unwrap();
    let lock = Lock::new();
    let value = SharedValue::new("lock-mutex");
    let tasks = pool
        .starmap_async(
            increment_under_lock,
            vec![(lock.clone(), value.clone(), TIMES); 2],
        )
        .unwrap();
    // The test itself contends too.
    assert_eq!(
        increment_under_lock(lock.clone(), value.clone(), TIMES),
        TIMES
    );
    assert_eq!(tasks.get().unwrap(), vec![TIMES, TIMES]);
    // A lost update (two workers inside at once) would leave the total short.
    assert_eq!(value.get(), 3 * u64::from(TIMES));
    value.remove();
}

#[freethreading::test]
fn blocked_task_gets_the_lock_when_released() {
    let pool = WorkerPool::new(1).unwrap();
    let lock = Lock::new();
    lock.acquire();
    let waiter = pool
        .apply_async(acquire_and_return, (lock.clone(),))
        .unwrap();
    // The task cannot finish while the lock is held.
    assert!(!waiter.wait_timeout(Duration::from_millis(50)));
    lock.release().unwrap();
    assert!(waiter.get().unwrap());
    assert!(lock.locked());
    lock.release().unwrap();
}

#[freethreading::test]
fn lock_of_a_killed_process_is_recovered() {
    let lock = Lock::new();
    if get_backend() == Backend::Threading {
        // A SIGKILL here would end the test binary. A Lock has no owner thread: a thread that
        // ends while holding it leaves it held (as in Python), and any worker may release it.
        let held = lock.clone();
        std::thread::spawn(move || held.acquire()).join().unwrap();
        assert!(lock.try_acquire().is_none());
        lock.release().unwrap();
        return;
    }
    let pool = WorkerPool::new(1).unwrap();
    let died = pool.apply(acquire_then_die, (lock.clone(),));
    assert!(
        matches!(died, Err(Error::WorkerDied { .. })),
        "expected a dead worker, got {died:?}"
    );
    let how = lock
        .acquire_timeout(PATIENCE)
        .expect("the lock is recovered");
    assert_eq!(how, Acquired::OwnerDied);
    lock.release().unwrap();
    // Usable as before, also by the replacement child.
    assert_eq!(lock.acquire(), Acquired::Normal);
    lock.release().unwrap();
    assert!(pool.apply(try_lock_elsewhere, (lock.clone(),)).unwrap());
    assert!(pool.apply(release_elsewhere, (lock.clone(),)).unwrap());
}

#[freethreading::test]
fn rlock_reenters_and_counts_levels() {
    let lock = RLock::new();
    assert!(matches!(lock.release(), Err(Error::NotHeld { .. })));
    lock.acquire();
    lock.acquire();
    assert!(lock.try_acquire().is_some());
    lock.release().unwrap();
    lock.release().unwrap();
    lock.release().unwrap();
    assert!(lock.release().is_err());
    {
        let _a = lock.lock();
        let _b = lock.lock();
    }
    assert!(lock.release().is_err());
}

#[freethreading::test]
fn rlock_levels_belong_to_one_worker() {
    let pool = WorkerPool::new(1).unwrap();
    let lock = RLock::new();
    let guard = lock.lock();
    // Another worker can neither enter nor release it.
    assert_eq!(
        pool.apply(rlock_try_elsewhere, (lock.clone(),)).unwrap(),
        (false, true)
    );
    drop(guard);
    // Free now: the task takes it (and then owns it; its release from here is refused).
    assert_eq!(
        pool.apply(rlock_try_elsewhere, (lock.clone(),)).unwrap(),
        (true, true)
    );
    assert!(matches!(lock.release(), Err(Error::NotHeld { .. })));
}

#[freethreading::test]
fn rlock_countdown_runs_in_a_worker() {
    let pool = WorkerPool::new(1).unwrap();
    let out = pool.apply(rlock_countdown, (RLock::new(), 3)).unwrap();
    assert_eq!(out.join(" "), "3... 2... 1... go!");
}

#[freethreading::test]
fn rlock_of_a_dead_owner_is_recovered() {
    let lock = RLock::new();
    if get_backend() == Backend::Threading {
        // A SIGKILL here would end the test binary; an RLock belongs to a thread, so a thread
        // that ends while owning it is a dead owner too.
        let held = lock.clone();
        std::thread::spawn(move || {
            held.acquire();
            held.acquire();
        })
        .join()
        .unwrap();
    } else {
        let pool = WorkerPool::new(1).unwrap();
        let died = pool.apply(rlock_nested_then_die, (lock.clone(),));
        assert!(matches!(died, Err(Error::WorkerDied { .. })), "{died:?}");
    }
    let how = lock.acquire_timeout(PATIENCE).expect("recovered");
    assert_eq!(how, Acquired::OwnerDied);
    // The dead owner's levels are gone: one release frees it.
    lock.release().unwrap();
    assert!(lock.release().is_err());
    assert_eq!(lock.acquire(), Acquired::Normal);
    lock.release().unwrap();
}
