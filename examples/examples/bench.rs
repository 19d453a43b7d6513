//! The benchmark: the Python peer's cases, measured on the selected backend, plus rayon and
//! procspawn lines where a case applies.
//!
//! ```text
//! cargo run --release --example bench -- [--backend threading|multiprocessing] [CASE...]
//! ```
//!
//! Prints `case value unit` lines on stdout (case names and definitions as in the Python
//! peer's `bench.py`), notes on stderr. A CASE argument selects the groups whose cases start
//! with it. Throughput figures are medians over repeated runs on a warm pool; startup is
//! measured on its own.

use std::hint::black_box;
use std::time::Instant;

use freethreading::{
    Backend, Bytes, Worker, WorkerExit, WorkerPool, get_backend, set_backend, worker,
};
use freethreading_examples::bench_sync;
use freethreading_examples::measure::{emit, median, timed};
use rayon::prelude::*;

#[worker]
fn square(x: u64) -> u64 {
    x * x
}

#[worker]
fn noop() {}

/// Python's `bytes` is one block: `Bytes` is its counterpart (a plain `Vec<u8>` goes through
/// serde element by element, see `large_payload_vec`).
#[worker]
fn blob_len(blob: Bytes) -> usize {
    blob.len()
}

#[worker]
fn vec_len(blob: Vec<u8>) -> usize {
    blob.len()
}

/// Counts primes in `lo..hi` by trial division (CPU bound, uneven across chunks).
#[worker]
fn count_primes(lo: u64, hi: u64) -> u64 {
    count_primes_in(lo, hi)
}

fn count_primes_in(lo: u64, hi: u64) -> u64 {
    let mut count = 0;
    for n in lo.max(2)..hi {
        if n < 4 {
            count += 1;
            continue;
        }
        if n % 2 == 0 {
            continue;
        }
        let mut d = 3;
        let mut prime = true;
        while d * d <= n {
            if n % d == 0 {
                prime = false;
                break;
            }
            d += 2;
        }
        count += u64::from(prime);
    }
    count
}

fn prime_chunks(limit: u64) -> Vec<(u64, u64)> {
    (0..8)
        .map(|i| (i * limit / 8, (i + 1) * limit / 8))
        .collect()
}

fn pool(workers: usize) -> WorkerPool {
    WorkerPool::new(workers).expect("pool starts")
}

fn g_pool_startup() {
    let one = || {
        let pool = pool(2);
        assert_eq!(pool.map(square, [1u64]).unwrap(), vec![1]);
        pool.close();
        pool.join().unwrap();
    };
    emit("pool_startup", median(&timed(5, 1, one)) * 1e3, "ms");
}

fn g_pool_map() {
    let pool = pool(2);
    pool.map(square, 0..1000u64).unwrap();
    let n = 100_000u64;
    let expect: u64 = (0..n).map(|i| i * i).sum();
    let ts = timed(3, 0, || {
        assert_eq!(pool.map(square, 0..n).unwrap().iter().sum::<u64>(), expect);
    });
    emit("pool_map_tiny", n as f64 / median(&ts), "items_per_s");

    let n = 20_000u64;
    let ts = timed(3, 0, || {
        black_box(pool.map_chunked(square, 0..n, 1).unwrap());
    });
    emit(
        "pool_map_tiny_chunk1",
        n as f64 / median(&ts),
        "items_per_s",
    );

    let data: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1_000_000]).collect();
    let (mut blocks, mut vecs) = (Vec::new(), Vec::new());
    for rep in 0..6 {
        // Cloning the input is not timed: Python's list is built once too.
        let input: Vec<Bytes> = data.iter().cloned().map(Bytes::from).collect();
        let start = Instant::now();
        assert_eq!(pool.map(blob_len, input).unwrap(), vec![1_000_000; 20]);
        let block = start.elapsed().as_secs_f64();
        let input = data.clone();
        let start = Instant::now();
        assert_eq!(pool.map(vec_len, input).unwrap(), vec![1_000_000; 20]);
        if rep > 0 {
            blocks.push(block);
            vecs.push(start.elapsed().as_secs_f64());
        }
    }
    emit("large_payload", 20.0 / median(&blocks), "MB_per_s");
    emit("large_payload_vec", 20.0 / median(&vecs), "MB_per_s");
}

fn g_pool_map_10m() {
    let n = 10_000_000u64;
    let ours = pool(2);
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    ours.map(square, 0..1000u64).unwrap();
    let (mut ft, mut ry) = (Vec::new(), Vec::new());
    // Alternate the two so noise from other tenants hits both alike.
    for _ in 0..5 {
        let start = Instant::now();
        let out = ours.map(square, 0..n).unwrap();
        ft.push(start.elapsed().as_secs_f64());
        assert_eq!(out[n as usize - 1], (n - 1) * (n - 1));
        drop(out);
        let start = Instant::now();
        let out: Vec<u64> = rayon_pool.install(|| (0..n).into_par_iter().map(|x| x * x).collect());
        ry.push(start.elapsed().as_secs_f64());
        assert_eq!(out[n as usize - 1], (n - 1) * (n - 1));
    }
    emit("pool_map_10m", n as f64 / median(&ft), "items_per_s");
    emit("rayon_pool_map_10m", n as f64 / median(&ry), "items_per_s");
}

/// Picks a prime limit for which one worker needs at least 200 ms.
fn calibrated_limit() -> u64 {
    let mut limit = 200_000u64;
    loop {
        let start = Instant::now();
        let total: u64 = prime_chunks(limit)
            .iter()
            .map(|&(lo, hi)| count_primes_in(lo, hi))
            .sum();
        black_box(total);
        if start.elapsed().as_secs_f64() >= 0.2 {
            return limit;
        }
        limit *= 2;
    }
}

fn g_cpu_scaling() {
    let limit = calibrated_limit();
    let chunks = prime_chunks(limit);
    let expected: u64 = chunks.iter().map(|&(lo, hi)| count_primes_in(lo, hi)).sum();
    eprintln!("# cpu_scaling: prime limit {limit} ({expected} primes)");
    let ts = timed(5, 0, || {
        black_box(
            chunks
                .iter()
                .map(|&(lo, hi)| count_primes_in(lo, hi))
                .sum::<u64>(),
        );
    });
    emit("cpu_serial_inprocess", median(&ts) * 1e3, "ms");

    let pools = [pool(1), pool(2)];
    let rayons = [1, 2].map(|n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    });
    for (i, p) in pools.iter().enumerate() {
        p.map(square, 0..2 * (i as u64 + 1)).unwrap();
    }
    let mut ours = [Vec::new(), Vec::new()];
    let mut theirs = [Vec::new(), Vec::new()];
    for _ in 0..5 {
        for i in 0..2 {
            let start = Instant::now();
            let total: u64 = pools[i]
                .starmap(count_primes, chunks.clone())
                .unwrap()
                .iter()
                .sum();
            ours[i].push(start.elapsed().as_secs_f64());
            assert_eq!(total, expected);
            let start = Instant::now();
            let total: u64 = rayons[i].install(|| {
                chunks
                    .par_iter()
                    .with_max_len(1)
                    .map(|&(lo, hi)| count_primes_in(lo, hi))
                    .sum()
            });
            theirs[i].push(start.elapsed().as_secs_f64());
            assert_eq!(total, expected);
        }
    }
    let (m1, m2) = (median(&ours[0]), median(&ours[1]));
    emit("cpu_scaling_w1", m1 * 1e3, "ms");
    emit("cpu_scaling_w2", m2 * 1e3, "ms");
    emit("cpu_scaling_speedup", m1 / m2, "x");
    emit(
        "rayon_cpu_scaling_speedup",
        median(&theirs[0]) / median(&theirs[1]),
        "x",
    );
}

fn g_pool_apply() {
    let n = 2_000u64;
    let ours = pool(2);
    ours.apply(square, (1,)).unwrap();
    let ts = timed(5, 0, || {
        for i in 0..n {
            assert_eq!(ours.apply(square, (i,)).unwrap(), i * i);
        }
    });
    emit("pool_apply", n as f64 / median(&ts), "tasks_per_s");

    let theirs = procspawn::Pool::new(2).expect("procspawn pool");
    theirs.spawn(1u64, |x| x * x).join().unwrap();
    let ts = timed(5, 0, || {
        for i in 0..n {
            assert_eq!(theirs.spawn(i, |x| x * x).join().unwrap(), i * i);
        }
    });
    emit(
        "procspawn_pool_apply",
        n as f64 / median(&ts),
        "tasks_per_s",
    );
}

fn g_worker_spawn_join() {
    let one = || {
        let w = Worker::new(noop, ()).unwrap();
        w.start().unwrap();
        assert_eq!(w.join().unwrap(), WorkerExit::Returned);
    };
    let start = Instant::now();
    one();
    emit(
        "worker_spawn_join_cold",
        start.elapsed().as_secs_f64() * 1e3,
        "ms",
    );
    emit("worker_spawn_join", median(&timed(20, 1, one)) * 1e3, "ms");
    let theirs = || {
        procspawn::spawn((), |()| ()).join().unwrap();
    };
    emit(
        "procspawn_spawn_join",
        median(&timed(20, 1, theirs)) * 1e3,
        "ms",
    );
}

fn g_lock() {
    emit(
        "lock_uncontended",
        bench_sync::lock_uncontended(),
        "ns_per_pair",
    );
    emit(
        "std_mutex_uncontended",
        bench_sync::std_mutex_uncontended(),
        "ns_per_pair",
    );
}

fn g_event_pingpong() {
    emit(
        "event_pingpong",
        bench_sync::event_pingpong(),
        "roundtrips_per_s",
    );
}

fn g_queue() {
    use freethreading_examples::bench_queue;
    emit(
        "queue_roundtrip",
        bench_queue::queue_roundtrip(),
        "roundtrips_per_s",
    );
    emit(
        "queue_throughput",
        bench_queue::queue_throughput(),
        "items_per_s",
    );
    emit(
        "crossbeam_throughput",
        bench_queue::crossbeam_throughput(),
        "items_per_s",
    );
}

type Group = (&'static [&'static str], fn());

const GROUPS: &[Group] = &[
    (
        &[
            "worker_spawn_join",
            "worker_spawn_join_cold",
            "procspawn_spawn_join",
        ],
        g_worker_spawn_join,
    ),
    (&["pool_startup"], g_pool_startup),
    (
        &["pool_map_tiny", "pool_map_tiny_chunk1", "large_payload"],
        g_pool_map,
    ),
    (&["pool_map_10m", "rayon_pool_map_10m"], g_pool_map_10m),
    (
        &[
            "cpu_serial_inprocess",
            "cpu_scaling_w1",
            "cpu_scaling_w2",
            "cpu_scaling_speedup",
            "rayon_cpu_scaling_speedup",
        ],
        g_cpu_scaling,
    ),
    (&["pool_apply", "procspawn_pool_apply"], g_pool_apply),
    (&["lock_uncontended", "std_mutex_uncontended"], g_lock),
    (&["event_pingpong"], g_event_pingpong),
    (
        &["executor_submit", "executor_map"],
        freethreading_examples::bench_executor::g_executor,
    ),
    (
        &[
            "queue_roundtrip",
            "queue_throughput",
            "crossbeam_throughput",
        ],
        g_queue,
    ),
];

fn main() {
    freethreading::init();
    procspawn::init();

    let mut args = std::env::args().skip(1);
    let mut wanted = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "--backend" {
            let name = args
                .next()
                .expect("--backend needs threading or multiprocessing");
            let backend: Backend = name.parse().unwrap_or_else(|e| panic!("{e}"));
            set_backend(backend).unwrap_or_else(|e| panic!("{e}"));
        } else {
            wanted.push(arg);
        }
    }
    eprintln!(
        "# freethreading {} backend={} cpus={}",
        env!("CARGO_PKG_VERSION"),
        get_backend(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let started = Instant::now();
    for (cases, run) in GROUPS {
        let selected = wanted.is_empty()
            || cases
                .iter()
                .any(|case| wanted.iter().any(|w| case.starts_with(w.as_str())));
        if selected {
            let t0 = Instant::now();
            run();
            eprintln!(
                "# group {} took {:.1}s",
                cases[0],
                t0.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!("# total {:.1}s", started.elapsed().as_secs_f64());
}
