use freethreading::WorkerPool;

fn run(pool: &WorkerPool) {
    let _ = pool.map(|x: u64| x, 0..10u64);
}

fn main() {}
