use freethreading::worker;

struct Counter {
    step: u64,
}

impl Counter {
    #[worker]
    fn advance(&self, from: u64) -> u64 {
        from + self.step
    }
}

fn main() {}
