//! Helpers shared by the examples and the benchmark.

pub mod bench_executor;
pub mod bench_queue;
pub mod bench_sync;
pub mod measure;
