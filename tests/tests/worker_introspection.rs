//! `current_worker`, `get_ident`, `active_children`, `active_count`, `enumerate`: the same
//! shapes on both backends.

use std::path::Path;

use freethreading::{
    Backend, Worker, WorkerPool, active_children, active_count, current_worker, enumerate,
    get_backend, get_ident, worker,
};
use freethreading_tests::{make_fifo, scratch_dir};

/// Records what the worker sees of itself, then blocks until the test opens the pipe.
#[worker]
fn introspect(report: String, fifo: String) {
    let me = current_worker();
    let text = format!(
        "{}\n{}\n{}\n{}\n{}",
        me.name(),
        me.ident(),
        get_ident(),
        active_count(),
        active_children().len()
    );
    std::fs::write(report, text).unwrap();
    let mut reader = std::fs::File::open(&fifo).unwrap();
    std::io::Read::read_to_end(&mut reader, &mut Vec::new()).unwrap();
}

#[worker]
fn pool_worker_name(_item: u32) -> (String, u64) {
    (current_worker().name().to_owned(), get_ident())
}

#[freethreading::test]
fn the_main_program_is_main_thread_or_main_process() {
    let me = current_worker();
    match get_backend() {
        // Tests run on named threads, which report their names; the program's first thread
        // is `MainThread` (see the examples).
        Backend::Threading => assert_eq!(Some(me.name()), std::thread::current().name()),
        Backend::Multiprocessing => {
            assert_eq!(me.name(), "MainProcess");
            assert_eq!(get_ident(), u64::from(std::process::id()));
        }
    }
    assert_ne!(get_ident(), 0);
}

#[freethreading::test]
fn a_worker_knows_its_name_and_ident_and_the_parent_lists_it() {
    let dir = scratch_dir(&format!("introspect-{}", get_backend()));
    let fifo = dir.join("fifo");
    make_fifo(&fifo);
    let report = dir.join("report");
    let w = Worker::builder(
        introspect,
        (report.display().to_string(), fifo.display().to_string()),
    )
    .name("Inspector")
    .build()
    .unwrap();
    let before = active_count();
    w.start().unwrap();
    // The worker is blocked on the pipe, so it is alive for everything below.
    let children = active_children();
    let info = children
        .iter()
        .find(|c| c.name() == "Inspector")
        .expect("listed");
    assert_eq!(Some(info.ident()), w.ident());
    assert_eq!(active_count(), before + 1);
    let all = enumerate();
    assert_eq!(all[0], current_worker());
    assert!(all[1..].contains(info));

    drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
    w.join().unwrap();
    let text = std::fs::read_to_string(&report).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Inspector");
    let ident: u64 = lines[1].parse().unwrap();
    assert_eq!(Some(ident), w.ident());
    assert_eq!(
        lines[2], lines[1],
        "get_ident() inside is the worker's ident"
    );
    if get_backend() == Backend::Multiprocessing {
        assert_ne!(ident, u64::from(std::process::id()));
    }
    // Seen from inside, a worker has no children of its own.
    assert_eq!((lines[3], lines[4]), ("1", "0"));
    assert!(!active_children().iter().any(|c| c.name() == "Inspector"));
}

#[freethreading::test]
fn pool_workers_have_pool_names_on_both_backends() {
    let pool = WorkerPool::new(2).unwrap();
    for (name, ident) in pool.map_chunked(pool_worker_name, 0..20, 1).unwrap() {
        assert!(name.starts_with("PoolWorker-"), "{name}");
        assert_ne!(ident, 0);
        if get_backend() == Backend::Multiprocessing {
            assert!(pool.pids().iter().any(|&pid| u64::from(pid) == ident));
        }
    }
}

#[test]
fn names_are_plain_values() {
    let me = freethreading::with_backend(Backend::Threading, current_worker);
    assert_eq!(me.clone(), me);
    let _ = Path::new(me.name());
}
