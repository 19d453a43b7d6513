//! Every mistake in `tests/ui` must fail to compile with the message in its `.stderr` file, and
//! every shape in `tests/pass` must compile.
//!
//! Regenerate the snapshots with `TRYBUILD=overwrite cargo test -p freethreading-ui-tests`, then
//! read the diff: each message should tell the user what is wrong and how to fix it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/pass/*.rs");
}
