use freethreading::worker;

#[worker(foo = 1)]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {}
