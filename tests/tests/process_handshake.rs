//! The handshake with a new child: a child that answers with another protocol version or
//! another build is refused with a typed error, and killed.

use std::time::Duration;

use freethreading::__private::with_test_children;
use freethreading::{Backend, Error, WorkerPool};
use freethreading_tests::{parent_channel, write_to_parent};

/// A hand-made `HELLO` frame: kind 16, protocol version, fingerprint, pid.
fn hello(protocol: u32, fingerprint: u64) -> Vec<u8> {
    let mut body = vec![16u8];
    body.extend_from_slice(&protocol.to_le_bytes());
    body.extend_from_slice(&fingerprint.to_le_bytes());
    body.extend_from_slice(&std::process::id().to_le_bytes());
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend(body);
    frame
}

/// As a pool's child: pretends to be a worker of protocol 99, then waits to be killed.
#[test]
fn wrong_protocol_target() {
    if parent_channel().is_some() {
        write_to_parent(&hello(99, 0));
        loop {
            std::thread::park();
        }
    }
}

/// As a pool's child: the current protocol, but a build fingerprint no build has.
#[test]
fn wrong_build_target() {
    if parent_channel().is_some() {
        write_to_parent(&hello(1, 0x0bad_f00d));
        loop {
            std::thread::park();
        }
    }
}

/// As a pool's child: sends bytes that are no frame at all.
#[test]
fn garbage_hello_target() {
    if parent_channel().is_some() {
        write_to_parent(&[3, 0, 0, 0, 200, 1, 2]);
        loop {
            std::thread::park();
        }
    }
}

fn start_pool_with_child(test: &str) -> Error {
    with_test_children(test, || {
        WorkerPool::builder()
            .backend(Backend::Multiprocessing)
            .workers(1)
            .start_timeout(Duration::from_secs(60))
            .build()
    })
    .expect_err("the child is not a valid worker")
}

#[test]
fn a_child_of_another_protocol_version_is_refused() {
    match start_pool_with_child("wrong_protocol_target") {
        Error::Handshake { detail } => assert!(detail.contains("protocol version 99"), "{detail}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_child_of_another_build_is_refused() {
    match start_pool_with_child("wrong_build_target") {
        Error::Handshake { detail } => assert!(detail.contains("differ"), "{detail}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_garbled_handshake_is_a_protocol_error() {
    let error = start_pool_with_child("garbage_hello_target");
    assert!(matches!(error, Error::Protocol { .. }), "{error:?}");
}
