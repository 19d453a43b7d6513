//! Helpers shared by the examples and the benchmark.

pub mod measure;
