//! Shows `Event` and `Barrier` with `Worker`s: three runners wait for a start signal, then meet
//! at a checkpoint barrier whose action runs once before any of them goes on.
//!
//! ```text
//! cargo run --release --example sync_event_barrier
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example sync_event_barrier
//! ```
//!
//! Prints:
//!
//! ```text
//! 'Runner-0' waiting for start signal
//! 'Runner-1' waiting for start signal
//! 'Runner-2' waiting for start signal
//! main program sets the start signal
//! 'Runner-0' started
//! 'Runner-1' started
//! 'Runner-2' started
//! all 3 runners reached the checkpoint
//! 'Runner-0' passed checkpoint
//! 'Runner-1' passed checkpoint
//! 'Runner-2' passed checkpoint
//! ```
//!
//! The runners and the main program print in turns, meeting at a second barrier after every
//! turn, so the lines come out in this order on every run and on both backends.

use std::time::Duration;

use freethreading::{Barrier, Error, Event, Worker, WorkerExit, current_worker, worker};

const RUNNERS: usize = 3;
/// The main program's turn comes after the runners'.
const MAIN: usize = RUNNERS;

/// Lets party `me` of `order` speak in its turn: turn `t` belongs to party `t`, and every party
/// waits at `order` after each turn, so what they print comes out in party order.
fn in_turn(order: &Barrier, me: usize, speak: impl FnOnce()) -> Result<(), Error> {
    for _ in 0..me {
        order.wait()?;
    }
    speak();
    for _ in me..order.parties() {
        order.wait()?;
    }
    Ok(())
}

/// The checkpoint's action: runs once, in the last runner to arrive, before anyone leaves.
#[worker]
fn all_arrived() {
    println!("all {RUNNERS} runners reached the checkpoint");
}

/// Python's `runner`.
#[worker]
fn runner(start_signal: Event, checkpoint: Barrier, order: Barrier, me: usize) {
    let name = current_worker().name().to_owned();
    let turns = "the order barrier holds";
    in_turn(&order, me, || println!("'{name}' waiting for start signal")).expect(turns);
    start_signal.wait();
    in_turn(&order, me, || println!("'{name}' started")).expect(turns);
    checkpoint.wait().expect("the checkpoint holds");
    in_turn(&order, me, || println!("'{name}' passed checkpoint")).expect(turns);
}

#[freethreading::main]
fn main() -> Result<(), Error> {
    let start_signal = Event::new();
    let checkpoint = Barrier::builder(RUNNERS)
        .action(all_arrived)
        .timeout(Duration::from_secs(30))
        .build()?;
    // The runners and the main program take turns to print.
    let order = Barrier::builder(RUNNERS + 1)
        .timeout(Duration::from_secs(30))
        .build()?;

    let runners = (0..RUNNERS)
        .map(|i| {
            let args = (start_signal.clone(), checkpoint.clone(), order.clone(), i);
            Worker::builder(runner, args)
                .name(format!("Runner-{i}"))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for w in &runners {
        w.start()?;
    }

    in_turn(&order, MAIN, || {
        println!("main program sets the start signal");
        start_signal.set();
    })?;
    // Nothing more to say, but the runners take two more rounds of turns.
    in_turn(&order, MAIN, || {})?;
    in_turn(&order, MAIN, || {})?;

    for w in &runners {
        assert_eq!(w.join()?, WorkerExit::Returned);
    }
    Ok(())
}
