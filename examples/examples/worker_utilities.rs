//! The utility functions: `get_backend`, `current_worker`, `get_ident`, `active_children`,
//! `active_count` and `enumerate`, around one running daemon worker.
//!
//! ```text
//! cargo run --release --example worker_utilities
//! FREETHREADING_BACKEND=multiprocessing cargo run --release --example worker_utilities
//! ```

use std::io::Read;

use freethreading::{
    Worker, active_children, active_count, current_worker, enumerate, get_backend, get_ident,
    worker,
};

/// Runs until the main program closes the pipe (the read end of a pipe it created).
#[worker]
fn wait_for_close(fifo: String) {
    let mut pipe = std::fs::File::open(fifo).expect("open the pipe");
    let _ = pipe.read_to_end(&mut Vec::new());
}

fn names(workers: &[freethreading::WorkerInfo]) -> Vec<&str> {
    workers.iter().map(|w| w.name()).collect()
}

#[freethreading::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("backend: {}", get_backend());
    println!("current worker: {}", current_worker().name());
    println!("ident is positive: {}", get_ident() > 0);
    println!("children at start: {:?}", names(&active_children()));

    // A named pipe keeps the worker alive until we are done looking at it.
    let fifo = std::env::temp_dir().join(format!("freethreading-utilities-{}", std::process::id()));
    let path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes())?;
    // SAFETY: a valid NUL-terminated path and mode.
    if unsafe { libc::mkfifo(path.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let daemon = Worker::builder(wait_for_close, (fifo.display().to_string(),))
        .name("Daemon")
        .daemon(true)
        .build()?;
    daemon.start()?;

    println!("active children: {:?}", names(&active_children()));
    println!("active count: {}", active_count());
    println!("enumerate: {:?}", names(&enumerate()));

    drop(std::fs::OpenOptions::new().write(true).open(&fifo)?);
    daemon.join()?;
    std::fs::remove_file(&fifo)?;
    println!("children at the end: {:?}", names(&active_children()));
    Ok(())
}
