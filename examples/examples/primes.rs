//! The end-to-end example: find the primes in 500..600 with a pool, on either backend.
//!
//! ```text
//! cargo run --release --example primes
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example primes
//! ```

use freethreading::{WorkerPool, get_backend, worker};

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
    let pool = WorkerPool::new(4)?;
    let flags = pool.map(is_prime, candidates.iter().copied())?;
    let primes: Vec<u64> = candidates
        .iter()
        .zip(flags)
        .filter_map(|(&n, prime)| prime.then_some(n))
        .collect();
    println!("Found {} primes: {primes:?}", primes.len());
    println!(
        "(computed by {} workers on the {} backend)",
        pool.workers(),
        get_backend()
    );
    Ok(())
}
