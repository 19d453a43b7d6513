use freethreading::{WorkerPool, worker};

#[worker]
fn square(x: u64) -> u64 {
    x * x
}

#[worker]
fn pid(_x: u32) -> u32 {
    std::process::id()
}

#[freethreading::test]
fn smoke() {
    let pool = WorkerPool::new(2).unwrap();
    assert_eq!(pool.map(square, 0..5u64).unwrap(), vec![0, 1, 4, 9, 16]);
    let pids = pool.map(pid, 0..4).unwrap();
    eprintln!("backend {} pids {pids:?}", freethreading::get_backend());
}
