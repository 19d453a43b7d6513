//! The process backend's plumbing: spawning re-executed children, the child's serve loop, the
//! parent's connection to one child, and the frames they exchange.
//!
//! A child is this same binary started again from `/proc/self/exe`, with one end of a Unix
//! socketpair inherited under a number named in `FREETHREADING_CHILD`. `init()` (or
//! `#[freethreading::main]`, or `#[freethreading::test]`) notices the variable and turns the
//! process into a worker before any user code runs; see [`child`].

pub(crate) mod child;
pub(crate) mod link;
pub(crate) mod progress;
pub(crate) mod spawn;
pub(crate) mod wire;
