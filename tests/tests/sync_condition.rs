//! `Condition` on both backends: the lock rules, timed waits, `notify(n)` counts, and hand-offs
//! between the test and pool tasks.

use std::time::Duration;

use freethreading::{
    Backend, Condition, Error, Lock, RLock, Semaphore, WorkerPool, get_backend, worker,
};
use freethreading_tests::sync_support::SharedValue;

const PATIENCE: Duration = Duration::from_secs(20);

/// Waits on `cond` after telling the test (through `ready`) that it holds the lock, so once the
/// test gets the lock every such waiter is registered. Reports through `done` when woken.
#[worker]
fn wait_for_notify(cond: Condition, ready: Semaphore, done: Semaphore) -> bool {
    let _guard = cond.lock();
    ready.release().unwrap();
    let notified = cond.wait_timeout(PATIENCE).unwrap();
    done.release().unwrap();
    notified
}

/// Takes turns with the test: waits for an odd value, makes it even, `rounds` times.
#[worker]
fn take_odd_turns(cond: Condition, value: SharedValue, rounds: u64) -> u64 {
    for round in 0..rounds {
        let _guard = cond.lock();
        let want = 2 * round + 1;
        let ok = cond
            .wait_for_timeout(PATIENCE, || value.get() == want)
            .unwrap();
        assert!(ok, "round {round}: value stayed {}", value.get());
        value.set(want + 1);
        cond.notify_all().unwrap();
    }
    value.get()
}

#[worker]
fn lock_and_notify(cond: Condition, value: SharedValue) -> bool {
    let Some(guard) = cond.lock_timeout(PATIENCE) else {
        return false;
    };
    value.set(1);
    cond.notify(1).unwrap();
    drop(guard);
    true
}

#[freethreading::test]
fn condition_requires_its_lock() {
    for cond in [
        Condition::new(),
        Condition::with_lock(Lock::new()),
        Condition::with_rlock(RLock::new()),
    ] {
        assert!(matches!(cond.wait(), Err(Error::NotHeld { .. })));
        assert!(matches!(
            cond.wait_timeout(Duration::ZERO),
            Err(Error::NotHeld { .. })
        ));
        assert!(matches!(cond.notify(1), Err(Error::NotHeld { .. })));
        assert!(matches!(cond.notify_all(), Err(Error::NotHeld { .. })));
        assert!(matches!(cond.release(), Err(Error::NotHeld { .. })));
        let guard = cond.lock();
        cond.notify(0).unwrap();
        cond.notify(5).unwrap();
        assert!(!cond.wait_timeout(Duration::from_millis(10)).unwrap());
        assert!(
            !cond
                .wait_for_timeout(Duration::from_millis(5), || false)
                .unwrap()
        );
        assert!(cond.wait_for_timeout(Duration::ZERO, || true).unwrap());
        cond.wait_for(|| true).unwrap();
        drop(guard);
        assert!(cond.try_acquire().is_some());
        cond.release().unwrap();
    }
}

#[freethreading::test]
fn notify_n_wakes_exactly_n_waiters() {
    let pool = WorkerPool::new(3).unwrap();
    let cond = Condition::new();
    let (ready, done) = (Semaphore::new(0), Semaphore::new(0));
    let waiters = pool
        .starmap_async(
            wait_for_notify,
            vec![(cond.clone(), ready.clone(), done.clone()); 3],
        )
        .unwrap();
    for _ in 0..3 {
        assert!(ready.acquire_timeout(PATIENCE).is_some());
    }
    {
        // Each waiter held the lock when it signalled and released it only inside `wait`, so
        // all three are registered once the lock is ours.
        let _guard = cond.lock();
        cond.notify(2).unwrap();
    }
    assert!(done.acquire_timeout(PATIENCE).is_some());
    assert!(done.acquire_timeout(PATIENCE).is_some());
    assert!(
        done.acquire_timeout(Duration::from_millis(100)).is_none(),
        "notify(2) woke a third waiter"
    );
    {
        let _guard = cond.lock();
        cond.notify_all().unwrap();
    }
    assert!(done.acquire_timeout(PATIENCE).is_some());
    assert_eq!(waiters.get().unwrap(), vec![true, true, true]);
}

#[freethreading::test]
fn condition_hands_off_between_workers() {
    const ROUNDS: u64 = 25;
    let pool = WorkerPool::new(1).unwrap();
    for cond in [Condition::new(), Condition::with_lock(Lock::new())] {
        let value = SharedValue::new("cond-turns");
        let task = pool
            .apply_async(take_odd_turns, (cond.clone(), value.clone(), ROUNDS))
            .unwrap();
        for round in 0..ROUNDS {
            let _guard = cond.lock();
            let want = 2 * round;
            assert!(
                cond.wait_for_timeout(PATIENCE, || value.get() == want)
                    .unwrap(),
                "round {round}: value stayed {}",
                value.get()
            );
            value.set(want + 1);
            cond.notify_all().unwrap();
        }
        assert_eq!(task.get().unwrap(), 2 * ROUNDS);
        value.remove();
    }
}

#[freethreading::test]
fn wait_releases_every_level_of_an_rlock() {
    let pool = WorkerPool::new(1).unwrap();
    let cond = Condition::with_rlock(RLock::new());
    let value = SharedValue::new("cond-rlock");
    let outer = cond.lock();
    let inner = cond.lock();
    let task = pool
        .apply_async(lock_and_notify, (cond.clone(), value.clone()))
        .unwrap();
    // The task can only get the lock (and notify) if `wait` released both levels.
    assert!(
        cond.wait_for_timeout(PATIENCE, || value.get() == 1)
            .unwrap()
    );
    assert!(task.get().unwrap());
    // Both levels are back.
    drop(inner);
    assert!(cond.notify(1).is_ok(), "still held after one release");
    drop(outer);
    assert!(cond.notify(1).is_err());
    value.remove();
}

/// Like `wait_for_notify`, with a shorter wait so a lost notification fails the test quickly.
#[worker]
fn wait_briefly(cond: Condition, ready: Semaphore) -> bool {
    let _guard = cond.lock();
    ready.release().unwrap();
    cond.wait_timeout(Duration::from_secs(5)).unwrap()
}

#[freethreading::test]
fn notify_skips_waiters_of_killed_processes() {
    if get_backend() == Backend::Threading {
        // Killing a waiter would kill the test binary; a thread cannot die while waiting.
        return;
    }
    let pool = WorkerPool::new(1).unwrap();
    let cond = Condition::new();
    let ready = Semaphore::new(0);
    let doomed = pool
        .apply_async(
            wait_for_notify,
            (cond.clone(), ready.clone(), Semaphore::new(0)),
        )
        .unwrap();
    assert!(ready.acquire_timeout(PATIENCE).is_some());
    let victim = pool.pids()[0];
    {
        // Once the lock is ours the waiter is registered; then its process dies.
        let _guard = cond.lock();
        // SAFETY: kill with a valid signal on our own child's pid.
        unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) };
    }
    assert!(matches!(doomed.get(), Err(Error::WorkerDied { .. })));
    // A live waiter (in the replacement child) must get the one notification.
    let survivor = pool
        .apply_async(wait_briefly, (cond.clone(), ready.clone()))
        .unwrap();
    assert!(ready.acquire_timeout(PATIENCE).is_some());
    {
        let _guard = cond.lock();
        cond.notify(1).unwrap();
    }
    assert!(
        survivor.get().unwrap(),
        "the notification went to the dead waiter"
    );
}
