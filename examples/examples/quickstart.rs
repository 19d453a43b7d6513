//! A tour of the basics: `#[worker]`, direct calls, `map`, `starmap`, `imap`, and the backend.
//!
//! ```text
//! cargo run --release --example quickstart
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example quickstart
//! ```

use freethreading::{WorkerPool, get_backend, worker};

#[worker]
fn square(x: u64) -> u64 {
    x * x
}

#[worker]
fn power(base: u64, exponent: u32) -> u64 {
    base.pow(exponent)
}

#[worker]
fn shout(word: String) -> String {
    format!(
        "{}! (from process {})",
        word.to_uppercase(),
        std::process::id()
    )
}

#[freethreading::main]
fn main() -> Result<(), freethreading::Error> {
    println!("backend: {}", get_backend());
    println!("parent process: {}", std::process::id());

    // A #[worker] function is still an ordinary function.
    println!("square(7) = {}", square(7));

    let pool = WorkerPool::new(2)?;
    println!("map:     {:?}", pool.map(square, 0..10u64)?);
    println!(
        "starmap: {:?}",
        pool.starmap(power, [(2, 10), (3, 4), (10, 3)])?
    );
    for word in pool.imap(shout, ["hello", "parallel", "world"].map(String::from)) {
        println!("imap:    {}", word?);
    }
    pool.close();
    pool.join()?;
    Ok(())
}
