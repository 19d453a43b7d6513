//! Attribute macros for [`freethreading`](https://docs.rs/freethreading).
//!
//! Use them through the `freethreading` crate (`freethreading::worker`, `freethreading::main`,
//! `freethreading::test`); the generated code names only `::freethreading::__private`, so this
//! crate is never a direct dependency of user code.
//!
//! Each entry point hands off to a module that parses, validates and expands. On a validation
//! error the user's item is emitted unchanged next to a `compile_error!`, so one mistake gives
//! one error message rather than a cascade.

use proc_macro::TokenStream;

mod entry;
mod parse;
mod worker;

/// Registers a function so that pools and workers can run it on threads or in child processes.
///
/// See `freethreading::worker` for the full documentation.
#[proc_macro_attribute]
pub fn worker(args: TokenStream, item: TokenStream) -> TokenStream {
    worker::expand(args.into(), item.into()).into()
}

/// Marks `main` so that child processes of the process backend serve tasks instead of running it.
///
/// See `freethreading::main` for the full documentation.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::main(args.into(), item.into()).into()
}

/// Marks a test that runs once per backend.
///
/// See `freethreading::test` for the full documentation.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::test(args.into(), item.into()).into()
}
