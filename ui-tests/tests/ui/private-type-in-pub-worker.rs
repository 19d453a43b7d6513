use freethreading::worker;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Celsius(f64);

#[worker]
pub fn to_fahrenheit(c: Celsius) -> f64 {
    c.0 * 9.0 / 5.0 + 32.0
}

fn main() {}
