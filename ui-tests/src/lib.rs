//! Compile-fail and compile-pass cases for freethreading's macros live in `tests/ui`.
