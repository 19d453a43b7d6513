//! The executor's `map`: squares of 0..10 on four workers, in input order.
//!
//! ```text
//! cargo run --release --example executor_squares
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example executor_squares
//! ```

use freethreading::{WorkerPoolExecutor, worker};

#[worker]
fn square(x: u64) -> u64 {
    x * x
}

#[freethreading::main]
fn main() -> Result<(), freethreading::Error> {
    let executor = WorkerPoolExecutor::new(4)?;
    let results: Vec<u64> = executor.map(square, 0..10)?.collect::<Result<_, _>>()?;
    println!("{results:?}");
    Ok(())
}
