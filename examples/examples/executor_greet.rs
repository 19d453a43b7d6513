//! The executor's first example: `submit` a task, get a `Future`, read its result.
//!
//! ```text
//! cargo run --release --example executor_greet
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example executor_greet
//! ```

use freethreading::{WorkerPoolExecutor, worker};

#[worker]
fn greet(name: String) -> String {
    format!("Hello, {name}!")
}

#[freethreading::main]
fn main() -> Result<(), freethreading::Error> {
    // Dropping the executor at the end of `main` waits for its tasks, like Python's `with`.
    let executor = WorkerPoolExecutor::builder().build()?;
    let future = executor.submit(greet, ("World".to_owned(),))?;
    println!("{}", future.result()?);
    Ok(())
}
