//! `Barrier` on both backends: arrival indexes, rounds with an action run once each, timeouts,
//! `abort`/`reset`, a failing action, and a party process that is killed.

use std::time::{Duration, Instant};

use freethreading::{Backend, Barrier, Error, WorkerPool, get_backend, worker};
use freethreading_tests::sync_support::SharedValue;

const PATIENCE: Duration = Duration::from_secs(20);
const ROUNDS: usize = 5;

/// The barrier action: counts rounds in a file every process of this test can find.
#[worker]
fn count_round() {
    SharedValue::for_process_group("barrier-rounds").racy_increment();
}

#[worker]
fn failing_action() {
    panic!("the action failed on purpose");
}

#[worker]
fn wait_rounds(barrier: Barrier, rounds: usize) -> Vec<usize> {
    (0..rounds)
        .map(|_| barrier.wait_timeout(PATIENCE).unwrap())
        .collect()
}

#[worker]
fn wait_once(barrier: Barrier) -> Result<usize, String> {
    barrier.wait_timeout(PATIENCE).map_err(|e| format!("{e:?}"))
}

#[worker]
fn hold_then_die(barrier: Barrier) {
    let _keep = barrier;
    // SAFETY: kill on our own pid with a valid signal; the process ends here.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

/// Waits (by polling an observable state, bounded) until `n` parties wait at `barrier`.
fn until_waiting(barrier: &Barrier, n: usize) {
    let deadline = Instant::now() + PATIENCE;
    while barrier.n_waiting() != n {
        assert!(Instant::now() < deadline, "never saw {n} waiting parties");
        std::thread::yield_now();
    }
}

#[freethreading::test]
fn single_party_barrier_and_bad_arguments() {
    let barrier = Barrier::new(1).unwrap();
    assert_eq!(barrier.parties(), 1);
    assert_eq!(barrier.wait().unwrap(), 0);
    assert_eq!(barrier.wait().unwrap(), 0);
    barrier.reset();
    assert_eq!(barrier.wait().unwrap(), 0);
    assert!(matches!(Barrier::new(0), Err(Error::InvalidArgument(_))));
}

#[freethreading::test]
fn rounds_release_all_parties_and_run_the_action_once_each() {
    let rounds = SharedValue::for_process_group("barrier-rounds");
    rounds.set(0);
    let pool = WorkerPool::new(2).unwrap();
    let barrier = Barrier::builder(3).action(count_round).build().unwrap();
    let tasks = pool
        .starmap_async(wait_rounds, vec![(barrier.clone(), ROUNDS); 2])
        .unwrap();
    let mine = wait_rounds(barrier.clone(), ROUNDS);
    let theirs = tasks.get().unwrap();
    for round in 0..ROUNDS {
        let mut indexes = vec![mine[round], theirs[0][round], theirs[1][round]];
        indexes.sort_unstable();
        assert_eq!(indexes, [0, 1, 2], "round {round}");
    }
    assert_eq!(rounds.get(), ROUNDS as u64, "the action ran once per round");
    assert_eq!(barrier.n_waiting(), 0);
    assert!(!barrier.broken());
    rounds.remove();
}

#[freethreading::test]
fn timeout_breaks_the_barrier_until_reset() {
    let barrier = Barrier::new(2).unwrap();
    assert!(matches!(
        barrier.wait_timeout(Duration::from_millis(10)),
        Err(Error::BrokenBarrier)
    ));
    assert!(barrier.broken());
    assert!(matches!(barrier.wait(), Err(Error::BrokenBarrier)));
    barrier.reset();
    assert!(!barrier.broken());

    let with_default = Barrier::builder(2)
        .timeout(Duration::from_millis(10))
        .build()
        .unwrap();
    assert!(matches!(with_default.wait(), Err(Error::BrokenBarrier)));
    assert!(with_default.broken());
}

#[freethreading::test]
fn abort_and_reset_release_waiting_parties_with_an_error() {
    let pool = WorkerPool::new(1).unwrap();
    let barrier = Barrier::new(2).unwrap();

    let waiting = pool.apply_async(wait_once, (barrier.clone(),)).unwrap();
    until_waiting(&barrier, 1);
    barrier.abort();
    assert!(
        waiting
            .get()
            .unwrap()
            .unwrap_err()
            .contains("BrokenBarrier")
    );
    assert!(barrier.broken());
    assert!(matches!(barrier.wait(), Err(Error::BrokenBarrier)));
    barrier.reset();

    let waiting = pool.apply_async(wait_once, (barrier.clone(),)).unwrap();
    until_waiting(&barrier, 1);
    barrier.reset();
    assert!(
        waiting
            .get()
            .unwrap()
            .unwrap_err()
            .contains("BrokenBarrier")
    );
    assert!(!barrier.broken());

    // Usable again.
    let waiting = pool.apply_async(wait_once, (barrier.clone(),)).unwrap();
    let mine = barrier.wait_timeout(PATIENCE).unwrap();
    let theirs = waiting.get().unwrap().unwrap();
    assert_eq!(mine + theirs, 1);
}

#[freethreading::test]
fn failing_action_breaks_the_barrier() {
    let pool = WorkerPool::new(1).unwrap();
    let barrier = Barrier::builder(2).action(failing_action).build().unwrap();
    let theirs = pool.apply_async(wait_once, (barrier.clone(),)).unwrap();
    let mine = barrier.wait_timeout(PATIENCE);
    let theirs = theirs.get().unwrap();
    // Whoever arrived last ran the action and got its panic; the other saw a broken barrier.
    match mine {
        Err(Error::BarrierActionFailed { message }) => {
            assert!(message.contains("on purpose"), "{message}");
            assert!(theirs.unwrap_err().contains("BrokenBarrier"));
        }
        Err(Error::BrokenBarrier) => {
            let theirs = theirs.unwrap_err();
            assert!(theirs.contains("BarrierActionFailed"), "{theirs}");
            assert!(theirs.contains("on purpose"), "{theirs}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(barrier.broken());
}

#[freethreading::test]
fn killed_party_breaks_the_barrier() {
    if get_backend() == Backend::Threading {
        // A SIGKILL would end the test binary; only processes can die alone. Threads that
        // merely drop their handles do not break anything.
        let barrier = Barrier::new(2).unwrap();
        let clone = barrier.clone();
        std::thread::spawn(move || drop(clone)).join().unwrap();
        assert!(!barrier.broken());
        return;
    }
    let pool = WorkerPool::new(2).unwrap();
    let barrier = Barrier::new(3).unwrap();
    let survivor = pool.apply_async(wait_once, (barrier.clone(),)).unwrap();
    let victim = pool.apply_async(hold_then_die, (barrier.clone(),)).unwrap();
    let started = Instant::now();
    assert!(matches!(
        barrier.wait_timeout(PATIENCE),
        Err(Error::BrokenBarrier)
    ));
    assert!(
        started.elapsed() < PATIENCE / 2,
        "took {:?} to notice",
        started.elapsed()
    );
    assert!(matches!(victim.get(), Err(Error::WorkerDied { .. })));
    assert!(
        survivor
            .get()
            .unwrap()
            .unwrap_err()
            .contains("BrokenBarrier")
    );
    // Reset makes it usable by the remaining parties.
    barrier.reset();
    let two = Barrier::new(2).unwrap();
    let other = pool.apply_async(wait_once, (two.clone(),)).unwrap();
    assert!(two.wait_timeout(PATIENCE).is_ok());
    assert!(other.get().unwrap().is_ok());
}
