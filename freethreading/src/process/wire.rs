//! Frames between a parent and its worker processes.
//!
//! Every frame is `[u32 LE length][u8 kind][body]`, the length counting kind and body. Bodies
//! are fixed little-endian headers followed by postcard bytes produced by [`crate::codec`].
//!
//! | direction | kind | body |
//! |---|---|---|
//! | parent → child | `TASK` | task id `u64`, name length `u16`, name, argument chunk |
//! | parent → child | `INIT` | name length `u16`, name, argument chunk (the pool initializer) |
//! | parent → child | `SHUTDOWN` | empty: finish and exit 0 |
//! | child → parent | `HELLO` | protocol `u32`, build fingerprint `u64`, pid `u32` (the handshake) |
//! | child → parent | `RESULT` | task id `u64`, run time in ns `u64`, result chunk |
//! | child → parent | `FAILED` | task id `u64`, a postcard `RemoteFailure` for the whole chunk |
//! | child → parent | `INIT_FAILED` | UTF-8 message |
//! | child → parent | `NOT_INITIALIZED` | UTF-8 message: the child reached the API without `init()` |
//!
//! Parsing checks every length against the bytes present; malformed input is an
//! [`Error::Protocol`], never a panic.

use std::io::{self, Read};

use crate::Error;
use crate::codec::{self, RemoteFailure};

/// Bumped whenever a frame layout changes.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// Frames larger than this are refused as corrupt (a length read from garbage).
pub(crate) const MAX_FRAME: usize = 1 << 31;

const TASK: u8 = 1;
const INIT: u8 = 2;
const SHUTDOWN: u8 = 3;
const HELLO: u8 = 16;
const RESULT: u8 = 17;
const FAILED: u8 = 18;
const INIT_FAILED: u8 = 19;
const NOT_INITIALIZED: u8 = 20;

/// Offset of the task id inside an encoded `TASK` frame (after length and kind).
const TASK_ID_AT: usize = 5;

fn protocol(detail: impl Into<String>) -> Error {
    Error::Protocol {
        detail: detail.into(),
    }
}

/// Builds one frame: reserves the length, lets the caller append the body, then patches it.
pub(crate) struct FrameBuilder {
    buf: Vec<u8>,
}

impl FrameBuilder {
    pub(crate) fn new(kind: u8) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; 4]);
        buf.push(kind);
        FrameBuilder { buf }
    }

    pub(crate) fn body(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub(crate) fn finish(mut self) -> Result<Vec<u8>, Error> {
        let len = self.buf.len() - 4;
        if len > MAX_FRAME {
            return Err(Error::Serialize {
                detail: format!(
                    "a message of {len} bytes exceeds the {MAX_FRAME}-byte frame limit"
                ),
            });
        }
        self.buf[..4].copy_from_slice(&(len as u32).to_le_bytes());
        Ok(self.buf)
    }
}

fn push_name(buf: &mut Vec<u8>, name: &str) -> Result<(), Error> {
    let len = u16::try_from(name.len())
        .map_err(|_| Error::InvalidArgument("worker names are limited to 65535 bytes"))?;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(name.as_bytes());
    Ok(())
}

/// A `TASK` frame with a placeholder id (see [`set_task_id`]); `encode_args` appends the chunk.
pub(crate) fn task_frame(
    name: &str,
    encode_args: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    let mut frame = FrameBuilder::new(TASK);
    frame.body().extend_from_slice(&0u64.to_le_bytes());
    push_name(frame.body(), name)?;
    encode_args(frame.body())?;
    frame.finish()
}

/// Writes the id a `TASK` frame is dispatched under.
pub(crate) fn set_task_id(frame: &mut [u8], id: u64) {
    frame[TASK_ID_AT..TASK_ID_AT + 8].copy_from_slice(&id.to_le_bytes());
}

pub(crate) fn init_frame(name: &str, args_chunk: &[u8]) -> Result<Vec<u8>, Error> {
    let mut frame = FrameBuilder::new(INIT);
    push_name(frame.body(), name)?;
    frame.body().extend_from_slice(args_chunk);
    frame.finish()
}

pub(crate) fn shutdown_frame() -> Vec<u8> {
    FrameBuilder::new(SHUTDOWN)
        .finish()
        .expect("an empty frame is within limits")
}

pub(crate) fn hello_frame(fingerprint: u64) -> Vec<u8> {
    let mut frame = FrameBuilder::new(HELLO);
    frame
        .body()
        .extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    frame.body().extend_from_slice(&fingerprint.to_le_bytes());
    frame
        .body()
        .extend_from_slice(&std::process::id().to_le_bytes());
    frame.finish().expect("a hello frame is within limits")
}

/// Starts a `RESULT` frame; the caller appends the result chunk and finishes it.
pub(crate) fn result_frame(id: u64, run_nanos: u64) -> FrameBuilder {
    let mut frame = FrameBuilder::new(RESULT);
    frame.body().extend_from_slice(&id.to_le_bytes());
    frame.body().extend_from_slice(&run_nanos.to_le_bytes());
    frame
}

pub(crate) fn failed_frame(id: u64, failure: &RemoteFailure) -> Vec<u8> {
    let mut frame = FrameBuilder::new(FAILED);
    frame.body().extend_from_slice(&id.to_le_bytes());
    if codec::encode(failure, frame.body()).is_err() {
        // A failure holds only strings; postcard cannot fail on them.
        unreachable!("encoding a RemoteFailure cannot fail");
    }
    frame
        .finish()
        .unwrap_or_else(|_| text_frame(FAILED, "failure message too large"))
}

pub(crate) fn init_failed_frame(message: &str) -> Vec<u8> {
    text_frame(INIT_FAILED, message)
}

pub(crate) fn not_initialized_frame(message: &str) -> Vec<u8> {
    text_frame(NOT_INITIALIZED, message)
}

fn text_frame(kind: u8, message: &str) -> Vec<u8> {
    let mut frame = FrameBuilder::new(kind);
    let end = message.len().min(64 * 1024);
    let end = (0..=end)
        .rev()
        .find(|&i| message.is_char_boundary(i))
        .unwrap_or(0);
    frame.body().extend_from_slice(&message.as_bytes()[..end]);
    frame.finish().expect("a short text frame is within limits")
}

/// Reads one frame body (kind included) into `buf`.
///
/// Returns `Ok(false)` on a clean end of stream before any byte of a frame. A stream that ends
/// inside a frame, or announces an impossible length, is an [`Error::Protocol`].
pub(crate) fn read_frame(reader: &mut impl Read, buf: &mut Vec<u8>) -> Result<bool, Error> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match reader.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(protocol("stream ended inside a frame header")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_disconnect(&e) && got == 0 => return Ok(false),
            Err(e) => return Err(protocol(format!("read failed: {e}"))),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(protocol(format!("impossible frame length {len}")));
    }
    buf.clear();
    buf.resize(len, 0);
    reader.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => protocol(format!("stream ended inside a {len}-byte frame")),
        _ => protocol(format!("read failed: {e}")),
    })?;
    Ok(true)
}

pub(crate) fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
    )
}

/// A little cursor that refuses to read past the end.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(protocol(format!("frame too short for its {what}")));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u16(&mut self, what: &str) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(
            self.take(2, what)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self, what: &str) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self, what: &str) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }
    fn name(&mut self) -> Result<&'a str, Error> {
        let len = self.u16("name length")? as usize;
        std::str::from_utf8(self.take(len, "name")?)
            .map_err(|_| protocol("worker name is not UTF-8"))
    }
    fn text(self) -> String {
        String::from_utf8_lossy(self.0).into_owned()
    }
}

/// A frame a child sends, borrowed from the read buffer.
#[derive(Debug)]
pub(crate) enum FromChild<'a> {
    Hello {
        protocol: u32,
        fingerprint: u64,
        pid: u32,
    },
    Result {
        id: u64,
        run_nanos: u64,
        chunk: &'a [u8],
    },
    Failed {
        id: u64,
        failure: RemoteFailure,
    },
    InitFailed(String),
    NotInitialized(String),
}

impl<'a> FromChild<'a> {
    pub(crate) fn parse(frame: &'a [u8]) -> Result<Self, Error> {
        let (&kind, body) = frame.split_first().ok_or_else(|| protocol("empty frame"))?;
        let mut body = Body(body);
        Ok(match kind {
            HELLO => FromChild::Hello {
                protocol: body.u32("protocol version")?,
                fingerprint: body.u64("fingerprint")?,
                pid: body.u32("pid")?,
            },
            RESULT => FromChild::Result {
                id: body.u64("task id")?,
                run_nanos: body.u64("run time")?,
                chunk: body.0,
            },
            FAILED => FromChild::Failed {
                id: body.u64("task id")?,
                failure: codec::decode_exact(body.0)
                    .map_err(|e| protocol(format!("undecodable task failure: {e}")))?,
            },
            INIT_FAILED => FromChild::InitFailed(body.text()),
            NOT_INITIALIZED => FromChild::NotInitialized(body.text()),
            other => return Err(protocol(format!("unknown frame kind {other} from worker"))),
        })
    }
}

/// A frame a parent sends, borrowed from the read buffer.
#[derive(Debug)]
pub(crate) enum ToChild<'a> {
    Task {
        id: u64,
        name: &'a str,
        chunk: &'a [u8],
    },
    Init {
        name: &'a str,
        chunk: &'a [u8],
    },
    Shutdown,
}

impl<'a> ToChild<'a> {
    pub(crate) fn parse(frame: &'a [u8]) -> Result<Self, Error> {
        let (&kind, body) = frame.split_first().ok_or_else(|| protocol("empty frame"))?;
        let mut body = Body(body);
        Ok(match kind {
            TASK => {
                let id = body.u64("task id")?;
                let name = body.name()?;
                ToChild::Task {
                    id,
                    name,
                    chunk: body.0,
                }
            }
            INIT => {
                let name = body.name()?;
                ToChild::Init {
                    name,
                    chunk: body.0,
                }
            }
            SHUTDOWN => ToChild::Shutdown,
            other => return Err(protocol(format!("unknown frame kind {other} from parent"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(bytes: &[u8]) -> Vec<Result<Vec<u8>, Error>> {
        let mut reader = bytes;
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            match read_frame(&mut reader, &mut buf) {
                Ok(true) => out.push(Ok(buf)),
                Ok(false) => return out,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }

    #[test]
    fn task_frames_round_trip_with_patched_ids() {
        let mut frame = task_frame("m::square", |b| codec::encode_chunk(&[3u64, 4], b)).unwrap();
        set_task_id(&mut frame, 42);
        let frames = frames_of(&frame);
        let body = frames[0].as_ref().unwrap();
        match ToChild::parse(body).unwrap() {
            ToChild::Task { id, name, chunk } => {
                assert_eq!((id, name), (42, "m::square"));
                let mut reader = codec::ChunkReader::new(chunk).unwrap();
                assert_eq!(reader.next_item::<u64>().unwrap().unwrap(), 3);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn truncated_streams_are_protocol_errors() {
        let mut frame = result_frame(7, 1);
        frame.body().extend_from_slice(b"payload");
        let frame = frame.finish().unwrap();
        for cut in 1..frame.len() {
            let frames = frames_of(&frame[..cut]);
            assert!(
                matches!(frames.last(), Some(Err(Error::Protocol { .. }))),
                "cut at {cut}: {frames:?}"
            );
        }
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        // Impossible lengths.
        assert!(matches!(
            frames_of(&[0, 0, 0, 0])[0],
            Err(Error::Protocol { .. })
        ));
        assert!(matches!(
            frames_of(&[0xff, 0xff, 0xff, 0xff, 1])[0],
            Err(Error::Protocol { .. })
        ));
        // Every short body of every kind parses to an error, not a panic.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..64 {
            for kind in 0..=25u8 {
                let mut body = vec![kind];
                for _ in 0..len {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    body.push(seed as u8);
                }
                let _ = FromChild::parse(&body);
                let _ = ToChild::parse(&body);
            }
        }
        assert!(FromChild::parse(&[RESULT, 1, 2]).is_err());
        assert!(FromChild::parse(&[99]).is_err());
    }
}
