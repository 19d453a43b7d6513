//! Shows `Lock` and `RLock`: a critical section shared with pool tasks, and Python's recursive
//! countdown that re-enters an `RLock` without deadlocking.
//!
//! ```text
//! cargo run --example sync_lock_rlock
//! FREETHREADING_BACKEND=multiprocessing cargo run --example sync_lock_rlock
//! ```
//!
//! Prints:
//!
//! ```text
//! locked inside: true
//! task saw the lock held: true
//! locked after: false
//! 3... 2... 1... go!
//! ```

use freethreading::{Lock, RLock, WorkerPool, worker};

/// Reports whether the lock is held by someone else right now.
#[worker]
fn lock_is_held(lock: Lock) -> bool {
    lock.try_lock().is_none()
}

fn countdown(lock: &RLock, n: u32, out: &mut String) {
    let _guard = lock.lock(); // the same worker re-enters at every level
    if n == 0 {
        out.push_str("go!");
    } else {
        out.push_str(&format!("{n}... "));
        countdown(lock, n - 1, out);
    }
}

/// Python's RLock example, run in a worker.
#[worker]
fn countdown_from(lock: RLock, n: u32) -> String {
    let mut out = String::new();
    countdown(&lock, n, &mut out);
    out
}

fn main() -> Result<(), freethreading::Error> {
    freethreading::init();
    let pool = WorkerPool::new(2)?;

    let lock = Lock::new();
    {
        let _guard = lock.lock(); // Python: `with lock:`
        println!("locked inside: {}", lock.locked());
        println!(
            "task saw the lock held: {}",
            pool.apply(lock_is_held, (lock.clone(),))?
        );
    }
    println!("locked after: {}", lock.locked());

    println!("{}", pool.apply(countdown_from, (RLock::new(), 3))?);
    Ok(())
}
