//! Prints only the synchronisation benchmark cases (`lock_uncontended`, `std_mutex_uncontended`,
//! `event_pingpong`): `cargo run --release --example sync_bench_probe`.

use freethreading_examples::bench_sync;
use freethreading_examples::measure::emit;

fn main() {
    freethreading::init();
    emit("lock_uncontended", bench_sync::lock_uncontended(), "ns");
    emit(
        "std_mutex_uncontended",
        bench_sync::std_mutex_uncontended(),
        "ns",
    );
    emit(
        "event_pingpong",
        bench_sync::event_pingpong(),
        "roundtrips/s",
    );
}
