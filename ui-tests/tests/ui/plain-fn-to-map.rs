use freethreading::WorkerPool;

fn square(x: u64) -> u64 {
    x * x
}

fn run(pool: &WorkerPool) {
    let _ = pool.map(square, 0..10u64);
}

fn main() {}
