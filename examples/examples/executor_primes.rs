//! The end-to-end example with the executor: find the primes in 500..600 with `map`, on
//! either backend.
//!
//! ```text
//! cargo run --release --example executor_primes
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example executor_primes
//! ```

use freethreading::{WorkerPoolExecutor, get_backend, worker};

/// Trial division: slow on purpose, so the work is worth spreading.
#[worker]
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    (2..)
        .take_while(|d| d * d <= n)
        .all(|d| !n.is_multiple_of(d))
}

#[freethreading::main]
fn main() -> Result<(), freethreading::Error> {
    let candidates: Vec<u64> = (500..600).collect();
    let executor = WorkerPoolExecutor::new(4)?;
    let mut primes = Vec::new();
    for (&n, prime) in candidates
        .iter()
        .zip(executor.map(is_prime, candidates.clone())?)
    {
        if prime? {
            primes.push(n);
        }
    }
    println!("Found {} primes: {primes:?}", primes.len());
    println!(
        "(computed by {} workers on the {} backend)",
        executor.max_workers(),
        get_backend()
    );
    Ok(())
}
