//! `Event` on both backends: the flag, timed waits, and hand-offs with pool tasks.

use std::time::Duration;

use freethreading::{Event, WorkerPool, worker};

const PATIENCE: Duration = Duration::from_secs(20);

#[worker]
fn wait_then_set(wait_for: Event, then_set: Event) -> bool {
    let seen = wait_for.wait_timeout(PATIENCE);
    then_set.set();
    seen
}

#[worker]
fn ping_pong(ping: Event, pong: Event, rounds: u32) -> u32 {
    let mut done = 0;
    for _ in 0..rounds {
        if !ping.wait_timeout(PATIENCE) {
            break;
        }
        ping.clear();
        pong.set();
        done += 1;
    }
    done
}

#[freethreading::test]
fn event_flag_and_timeouts() {
    let event = Event::new();
    assert!(!event.is_set());
    assert!(!event.wait_timeout(Duration::ZERO));
    assert!(!event.wait_timeout(Duration::from_millis(10)));
    event.set();
    assert!(event.is_set());
    event.wait();
    assert!(event.wait_timeout(Duration::ZERO));
    event.set();
    event.clear();
    assert!(!event.is_set());
    assert!(!event.wait_timeout(Duration::from_millis(1)));
}

#[freethreading::test]
fn event_wakes_a_task_and_the_task_wakes_us() {
    let pool = WorkerPool::new(1).unwrap();
    let (go, done) = (Event::new(), Event::new());
    let task = pool
        .apply_async(wait_then_set, (go.clone(), done.clone()))
        .unwrap();
    assert!(
        !done.wait_timeout(Duration::from_millis(30)),
        "not before go"
    );
    go.set();
    assert!(done.wait_timeout(PATIENCE));
    assert!(task.get().unwrap());
}

#[freethreading::test]
fn events_ping_pong_with_a_task() {
    const ROUNDS: u32 = 2000;
    let pool = WorkerPool::new(1).unwrap();
    let (ping, pong) = (Event::new(), Event::new());
    let task = pool
        .apply_async(ping_pong, (ping.clone(), pong.clone(), ROUNDS))
        .unwrap();
    for round in 0..ROUNDS {
        ping.set();
        assert!(pong.wait_timeout(PATIENCE), "round {round} got no answer");
        pong.clear();
    }
    assert_eq!(task.get().unwrap(), ROUNDS);
    assert!(!ping.is_set() && !pong.is_set());
}
