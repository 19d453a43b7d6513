//! A `Worker` greets from its own thread or process and names itself with `current_worker`.
//!
//! ```text
//! cargo run --release --example worker_greet
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example worker_greet
//! ```

use freethreading::{Worker, WorkerExit, current_worker, worker};

#[worker]
fn greet(name: String) {
    println!("Hello, {name}! I am {}.", current_worker().name());
}

#[freethreading::main]
fn main() -> Result<(), freethreading::Error> {
    println!("Main program: {}", current_worker().name());
    let workers: Vec<Worker> = ["Alice", "Bob"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Worker::builder(greet, (name.to_string(),))
                .name(format!("Greeter-{}", i + 1))
                .build()
        })
        .collect::<Result<_, _>>()?;
    // One at a time, so the output order is the same on every run.
    for w in &workers {
        w.start()?;
        assert_eq!(w.join()?, WorkerExit::Returned);
    }
    println!("All greeters finished.");
    Ok(())
}
