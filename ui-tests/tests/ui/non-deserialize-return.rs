use freethreading::worker;
use serde::Serialize;

#[derive(Serialize)]
struct Report {
    total: u64,
}

#[worker]
fn summarize(values: Vec<u64>) -> Report {
    Report {
        total: values.iter().sum(),
    }
}

fn main() {}
