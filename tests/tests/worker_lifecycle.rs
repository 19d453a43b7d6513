//! `Worker`: start, join, outcomes, misuse, and what happens when `main` returns.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use freethreading::{Backend, Error, ExitReason, Worker, WorkerExit, get_backend, worker};
use freethreading_tests::{die_by_signal, make_fifo, parent_channel, scratch_dir, wait_for_exit};

#[worker]
fn write_file(path: String, text: String) {
    std::fs::write(path, text).unwrap();
}

#[worker]
fn panics(message: String) {
    panic!("{message}");
}

/// Dies by `signal` in a process worker, panics on a thread (a signal would end the test).
#[worker]
fn dies(signal: i32) {
    if parent_channel().is_some() {
        if signal == 0 {
            std::process::exit(3);
        }
        die_by_signal(signal);
    }
    panic!("died (thread stand-in)");
}

/// Blocks until the test opens the other end of the named pipe, then writes `done`.
#[worker]
fn wait_on_fifo(fifo: String, done: String) {
    let mut reader = std::fs::File::open(&fifo).unwrap();
    std::io::Read::read_to_end(&mut reader, &mut Vec::new()).unwrap();
    std::fs::write(done, "done").unwrap();
}

fn release(fifo: &Path) {
    drop(std::fs::OpenOptions::new().write(true).open(fifo).unwrap());
}

#[freethreading::test]
fn a_worker_runs_its_target_once_and_reports_it_returned() {
    let dir = scratch_dir(&format!("returned-{}", get_backend()));
    let path = dir.join("out").display().to_string();
    let w = Worker::new(write_file, (path.clone(), "hello".to_owned())).unwrap();
    assert!(!w.is_alive());
    assert_eq!(w.ident(), None);
    w.start().unwrap();
    assert!(w.ident().is_some());
    assert_eq!(w.join().unwrap(), WorkerExit::Returned);
    assert!(!w.is_alive());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello");
    // Joining again gives the same answer.
    assert_eq!(w.join().unwrap(), WorkerExit::Returned);
    assert_eq!(w.backend(), get_backend());
}

#[freethreading::test]
fn join_reports_a_panic_with_its_message() {
    let w = Worker::new(panics, ("the sky fell".to_owned(),)).unwrap();
    w.start().unwrap();
    assert_eq!(
        w.join().unwrap(),
        WorkerExit::Panicked {
            message: "the sky fell".to_owned()
        }
    );
}

#[freethreading::test]
fn join_reports_how_a_worker_process_died() {
    for (signal, expected) in [
        (libc::SIGKILL, ExitReason::Signal(libc::SIGKILL)),
        (libc::SIGABRT, ExitReason::Signal(libc::SIGABRT)),
        (libc::SIGSEGV, ExitReason::Signal(libc::SIGSEGV)),
        (0, ExitReason::Code(3)),
    ] {
        let w = Worker::new(dies, (signal,)).unwrap();
        w.start().unwrap();
        match (w.join().unwrap(), get_backend()) {
            (WorkerExit::Died { pid, reason }, Backend::Multiprocessing) => {
                assert_eq!(Some(u64::from(pid)), w.ident());
                assert_eq!(reason, expected);
            }
            (WorkerExit::Panicked { .. }, Backend::Threading) => {}
            (other, backend) => panic!("unexpected {other:?} on {backend}"),
        }
    }
}

#[freethreading::test]
fn misuse_is_a_typed_error() {
    let dir = scratch_dir(&format!("misuse-{}", get_backend()));
    let path = dir.join("x").display().to_string();
    let w = Worker::builder(write_file, (path, String::new()))
        .name("before")
        .build()
        .unwrap();
    assert!(matches!(w.join(), Err(Error::NotStarted)));
    assert!(matches!(
        w.join_timeout(Duration::ZERO),
        Err(Error::NotStarted)
    ));
    w.set_name("renamed").unwrap();
    w.set_daemon(true).unwrap();
    assert_eq!((w.name().as_str(), w.daemon()), ("renamed", true));
    w.start().unwrap();
    assert!(matches!(w.start(), Err(Error::AlreadyStarted)));
    assert!(matches!(w.set_name("late"), Err(Error::AlreadyStarted)));
    assert!(matches!(w.set_daemon(false), Err(Error::AlreadyStarted)));
    assert_eq!(w.name(), "renamed");
    w.join().unwrap();
}

#[freethreading::test]
fn join_timeout_says_whether_the_worker_finished() {
    let dir = scratch_dir(&format!("timeout-{}", get_backend()));
    let fifo = dir.join("fifo");
    make_fifo(&fifo);
    let done = dir.join("done");
    let w = Worker::new(
        wait_on_fifo,
        (fifo.display().to_string(), done.display().to_string()),
    )
    .unwrap();
    w.start().unwrap();
    // It cannot finish before we open the pipe.
    assert_eq!(w.join_timeout(Duration::from_millis(20)).unwrap(), None);
    assert!(w.is_alive());
    release(&fifo);
    assert_eq!(
        w.join_timeout(Duration::from_secs(60)).unwrap(),
        Some(WorkerExit::Returned)
    );
    assert!(done.exists());
}

/// Sleeps as its workload, then writes `done`.
#[worker]
fn slow_write(done: String, millis: u64) {
    std::thread::sleep(Duration::from_millis(millis));
    std::fs::write(done, "done").unwrap();
}

/// Run by the tests below in a fresh copy of this binary: starts a worker that takes a while,
/// then returns from "main" the way `#[freethreading::main]` does.
#[test]
fn main_return_probe() {
    // What `#[freethreading::main]` does first: in the probe's own worker child, serve.
    freethreading::init();
    let Ok(dir) = std::env::var("PROBE_DIR") else {
        return;
    };
    let backend: Backend = std::env::var("PROBE_BACKEND").unwrap().parse().unwrap();
    let daemon = std::env::var("PROBE_DAEMON").unwrap() == "1";
    let dir = Path::new(&dir);
    freethreading::__private::with_test_children("main_return_probe", || {
        let w = Worker::builder(slow_write, (dir.join("done").display().to_string(), 300))
            .daemon(daemon)
            .backend(backend)
            .build()
            .unwrap();
        w.start().unwrap();
        std::fs::write(dir.join("ident"), w.ident().unwrap().to_string()).unwrap();
    });
    freethreading::__private::main_returning();
}

fn run_probe(backend: Backend, daemon: bool) -> std::path::PathBuf {
    let dir = scratch_dir(&format!("probe-{backend}-{daemon}"));
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "main_return_probe", "--nocapture", "-q"])
        .env("PROBE_DIR", &dir)
        .env("PROBE_BACKEND", backend.to_string())
        .env("PROBE_DAEMON", if daemon { "1" } else { "0" })
        .status()
        .unwrap();
    assert!(status.success(), "{backend}: {status}");
    dir
}

#[test]
fn main_returning_waits_for_non_daemon_workers() {
    for backend in [Backend::Threading, Backend::Multiprocessing] {
        let dir = run_probe(backend, false);
        assert!(
            dir.join("done").exists(),
            "{backend}: main returned before its worker ended"
        );
    }
}

#[test]
fn daemon_workers_do_not_outlive_the_program() {
    for backend in [Backend::Threading, Backend::Multiprocessing] {
        let dir = run_probe(backend, true);
        if backend == Backend::Multiprocessing {
            let pid: u32 = std::fs::read_to_string(dir.join("ident"))
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                wait_for_exit(pid, Duration::from_secs(30)),
                "daemon worker process {pid} outlived its parent"
            );
        }
        assert!(
            !dir.join("done").exists(),
            "{backend}: the daemon worker finished its work"
        );
    }
}
