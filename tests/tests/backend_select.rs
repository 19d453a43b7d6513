//! Choosing the backend: scoped overrides, the environment variable, and bad values.

use std::process::Command;

use freethreading::{Backend, Error, WorkerPool, get_backend, try_get_backend, with_backend};

#[test]
fn scoped_choice_wins_and_is_restored() {
    let outer = get_backend();
    with_backend(Backend::Multiprocessing, || {
        assert_eq!(get_backend(), Backend::Multiprocessing);
        with_backend(Backend::Threading, || {
            assert_eq!(get_backend(), Backend::Threading)
        });
        assert_eq!(get_backend(), Backend::Multiprocessing);
    });
    assert_eq!(get_backend(), outer);
    let panicked =
        std::panic::catch_unwind(|| with_backend(Backend::Multiprocessing, || panic!("boom")));
    assert!(panicked.is_err());
    assert_eq!(
        get_backend(),
        outer,
        "a panic must not leak the scoped choice"
    );
}

#[test]
fn names_parse_and_print_like_python() {
    for backend in [Backend::Threading, Backend::Multiprocessing] {
        assert_eq!(backend.to_string().parse::<Backend>().unwrap(), backend);
    }
    assert_eq!(Backend::Multiprocessing.to_string(), "multiprocessing");
    match "processes".parse::<Backend>() {
        Err(Error::InvalidBackend { value }) => assert_eq!(value, "processes"),
        other => panic!("unexpected {other:?}"),
    }
}

/// Run with `FREETHREADING_BACKEND` set by the tests below; checks what the variable chose.
#[test]
fn env_probe() {
    let Ok(expected) = std::env::var("PROBE_EXPECT") else {
        return;
    };
    match expected.as_str() {
        "invalid" => {
            let error = try_get_backend().unwrap_err();
            assert!(matches!(error, Error::InvalidBackend { .. }));
            assert!(
                error
                    .to_string()
                    .contains("expected \"threading\" or \"multiprocessing\"")
            );
            assert!(matches!(
                WorkerPool::new(1),
                Err(Error::InvalidBackend { .. })
            ));
        }
        name => {
            assert_eq!(get_backend().to_string(), name);
            // set_backend agrees with the choice in force and refuses another.
            let other = match get_backend() {
                Backend::Threading => Backend::Multiprocessing,
                Backend::Multiprocessing => Backend::Threading,
            };
            freethreading::set_backend(get_backend()).unwrap();
            assert!(matches!(
                freethreading::set_backend(other),
                Err(Error::BackendAlreadyChosen { .. })
            ));
        }
    }
}

fn probe(env_value: &str, expect: &str) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "env_probe", "--nocapture", "-q"])
        .env("FREETHREADING_BACKEND", env_value)
        .env("PROBE_EXPECT", expect)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "probe with {env_value:?} failed: {status}"
    );
}

#[test]
fn the_environment_variable_chooses_the_backend() {
    probe("multiprocessing", "multiprocessing");
    probe("threading", "threading");
}

#[test]
fn an_invalid_environment_value_is_an_error_not_a_default() {
    probe("forkserver", "invalid");
}
