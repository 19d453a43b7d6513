use freethreading::{WorkerPool, worker};

#[worker]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn run(pool: &WorkerPool) {
    let _ = pool.map(add, [1u64, 2]);
}

fn main() {}
