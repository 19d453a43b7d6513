//! Two `#[worker]` functions under one stable name: every entry point refuses to run, and the
//! error names both definitions. (A test binary of its own, since the duplicate poisons the
//! whole registry of the binary it is linked into.)

use freethreading::{Backend, Error, Worker, WorkerPool, with_backend, worker};

#[worker(name = "shared/name")]
fn first(x: u32) -> u32 {
    x
}

mod elsewhere {
    #[freethreading::worker(name = "shared/name")]
    pub fn second(x: u32) -> u32 {
        x + 1
    }
}

#[test]
fn duplicate_names_are_reported_at_init_naming_both() {
    match freethreading::try_init() {
        // (`first` is a unit struct here, so the fields get other names.)
        Err(Error::DuplicateWorkerName {
            name,
            first: one,
            second: other,
        }) => {
            assert_eq!(name, "shared/name");
            assert!(one.contains("registry_duplicates::first"), "{one}");
            assert!(other.contains("elsewhere::second"), "{other}");
            assert!(one.contains("registry_duplicates.rs:"), "{one}");
        }
        other => panic!("expected a duplicate-name error, got {other:?}"),
    }
    let panic = std::panic::catch_unwind(freethreading::init).expect_err("init must refuse");
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("#[worker(name = \"...\")]"), "{message}");
}

#[test]
fn pools_and_workers_refuse_to_start_on_both_backends() {
    for backend in [Backend::Threading, Backend::Multiprocessing] {
        with_backend(backend, || {
            assert!(matches!(
                WorkerPool::new(1),
                Err(Error::DuplicateWorkerName { .. })
            ));
            assert!(matches!(
                Worker::new(first, (1,)),
                Err(Error::DuplicateWorkerName { .. })
            ));
        });
    }
    // Direct calls are unaffected.
    assert_eq!(first(1) + elsewhere::second(1), 3);
}
