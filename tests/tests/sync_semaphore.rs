//! `Semaphore` and `BoundedSemaphore` on both backends: counting, bounds, permits shared with
//! pool tasks, and permits of a killed process given back.

use std::time::Duration;

use freethreading::{
    Acquired, Backend, BoundedSemaphore, Error, Semaphore, WorkerPool, get_backend, worker,
};

const PATIENCE: Duration = Duration::from_secs(20);

#[worker]
fn take_permit(sem: Semaphore) -> bool {
    sem.try_acquire().is_some()
}

#[worker]
fn wait_permit(sem: Semaphore) -> bool {
    sem.acquire_timeout(PATIENCE).is_some()
}

#[worker]
fn give_permit(sem: BoundedSemaphore) -> bool {
    sem.release().is_ok()
}

#[worker]
fn take_two_then_die(sem: Semaphore) {
    sem.acquire();
    sem.acquire();
    // SAFETY: kill on our own pid with a valid signal; the process ends here.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

#[freethreading::test]
fn semaphore_counts_and_release_is_unbounded() {
    let sem = Semaphore::new(2);
    assert_eq!(sem.value(), 2);
    assert_eq!(sem.acquire(), Acquired::Normal);
    assert!(sem.try_acquire().is_some());
    assert!(sem.try_acquire().is_none());
    assert!(sem.acquire_timeout(Duration::from_millis(5)).is_none());
    sem.release().unwrap();
    sem.release().unwrap();
    sem.release().unwrap(); // above the initial value: allowed
    assert_eq!(sem.value(), 3);
    // Python's documented example: Semaphore(1) acquire, release, release succeeds.
    let one = Semaphore::new(1);
    one.acquire();
    one.release().unwrap();
    one.release().unwrap();
    assert_eq!(one.value(), 2);
}

#[freethreading::test]
fn bounded_semaphore_refuses_over_release() {
    let sem = BoundedSemaphore::new(1);
    sem.acquire();
    sem.release().unwrap();
    assert!(matches!(sem.release(), Err(Error::ReleasedTooManyTimes)));
    assert_eq!(sem.value(), 1);
    let zero = BoundedSemaphore::new(0);
    assert!(zero.try_acquire().is_none());
    assert!(zero.release().is_err());
}

#[freethreading::test]
fn permit_guard_gives_the_permit_back() {
    let sem = Semaphore::new(1);
    {
        let permit = sem.permit();
        assert!(!permit.owner_died());
        assert!(sem.try_permit().is_none());
        assert!(sem.permit_timeout(Duration::from_millis(2)).is_none());
    }
    assert_eq!(sem.value(), 1);
    let bounded = BoundedSemaphore::new(2);
    let a = bounded.permit();
    let b = bounded.try_permit().unwrap();
    assert_eq!(bounded.value(), 0);
    drop((a, b));
    assert_eq!(bounded.value(), 2);
}

#[freethreading::test]
fn permits_are_shared_with_pool_tasks() {
    let pool = WorkerPool::new(1).unwrap();
    let sem = Semaphore::new(1);
    let mine = sem.permit();
    assert!(!pool.apply(take_permit, (sem.clone(),)).unwrap());
    let waiter = pool.apply_async(wait_permit, (sem.clone(),)).unwrap();
    assert!(!waiter.wait_timeout(Duration::from_millis(50)));
    drop(mine);
    assert!(waiter.get().unwrap());
    // The task kept its permit when it returned.
    assert_eq!(sem.value(), 0);
    sem.release().unwrap();
    assert_eq!(sem.value(), 1);

    let bounded = BoundedSemaphore::new(1);
    bounded.acquire();
    // Any worker may release, within the bound.
    assert!(pool.apply(give_permit, (bounded.clone(),)).unwrap());
    assert!(!pool.apply(give_permit, (bounded.clone(),)).unwrap());
}

#[freethreading::test]
fn permits_of_a_killed_process_are_given_back() {
    let sem = Semaphore::new(2);
    if get_backend() == Backend::Threading {
        // A SIGKILL here would end the test binary. Permits belong to processes, not
        // threads: a thread that ends holding them keeps them taken, as in Python.
        let holder = sem.clone();
        std::thread::spawn(move || {
            holder.acquire();
            holder.acquire();
        })
        .join()
        .unwrap();
        assert!(sem.try_acquire().is_none());
        sem.release().unwrap();
        sem.release().unwrap();
        return;
    }
    let pool = WorkerPool::new(1).unwrap();
    let died = pool.apply(take_two_then_die, (sem.clone(),));
    assert!(matches!(died, Err(Error::WorkerDied { .. })), "{died:?}");
    let how = sem.acquire_timeout(PATIENCE).expect("a permit comes back");
    assert_eq!(how, Acquired::OwnerDied);
    assert_eq!(sem.try_acquire(), Some(Acquired::Normal));
    assert!(sem.try_acquire().is_none());
    sem.release().unwrap();
    sem.release().unwrap();
    assert_eq!(sem.value(), 2);
}
