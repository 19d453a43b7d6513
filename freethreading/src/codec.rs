//! How values cross a process boundary: postcard, one compact serde format.
//!
//! A chunk of values is a `u32` little-endian count followed by the values back to back. Items
//! are encoded one by one, straight from the caller's slice, so no intermediate `Vec` is built
//! on either side. Decoding never panics and never trusts a count: a short or malformed buffer is
//! an [`Error::Deserialize`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Why one item (or a whole chunk) failed inside a child, as sent back to the parent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum RemoteFailure {
    Panicked(String),
    Serialize(String),
    Deserialize(String),
    UnknownWorker(String),
}

impl From<RemoteFailure> for Error {
    fn from(failure: RemoteFailure) -> Self {
        match failure {
            RemoteFailure::Panicked(message) => Error::TaskPanicked { message },
            RemoteFailure::Serialize(detail) => Error::Serialize { detail },
            RemoteFailure::Deserialize(detail) => Error::Deserialize { detail },
            RemoteFailure::UnknownWorker(name) => Error::UnknownWorker { name },
        }
    }
}

thread_local! {
    /// The message of the last custom decode error raised on this thread. postcard keeps only
    /// the fact that a custom error happened, so our own `Deserialize` impls leave the text
    /// here for the error we report.
    static CUSTOM_ERROR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// A custom decode error whose message survives postcard (use it in `Deserialize` impls).
pub(crate) fn custom_error<E: serde::de::Error>(message: impl std::fmt::Display) -> E {
    let message = message.to_string();
    CUSTOM_ERROR.with(|last| *last.borrow_mut() = Some(message.clone()));
    E::custom(message)
}

/// The text of a decode error, with the message of a custom error when we raised it.
fn describe(error: postcard::Error) -> String {
    match error {
        postcard::Error::SerdeDeCustom => CUSTOM_ERROR
            .with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| error.to_string()),
        other => other.to_string(),
    }
}

/// A postcard output that appends to a borrowed `Vec` (byte pushes stay plain `Vec::push`).
struct AppendTo<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendTo<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        // Varints arrive as slices of a few bytes: a `memcpy` call per integer costs more
        // than the bytes themselves.
        if bytes.len() <= 16 {
            self.0.reserve(16);
            for &byte in bytes {
                self.0.push(byte);
            }
        } else {
            self.0.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends one value; on failure the buffer is left as it was.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<(), Error> {
    let start = buf.len();
    postcard::serialize_with_flavor(value, AppendTo(buf)).map_err(|e| {
        buf.truncate(start);
        Error::Serialize {
            detail: e.to_string(),
        }
    })
}

/// Appends a chunk: the count, then every item, through one serializer.
pub(crate) fn encode_chunk<T: Serialize>(items: &[T], buf: &mut Vec<u8>) -> Result<(), Error> {
    let count = u32::try_from(items.len())
        .map_err(|_| Error::InvalidArgument("a chunk may hold at most u32::MAX items"))?;
    let start = buf.len();
    // Most values encode to at most their in-memory size: reserve once instead of regrowing.
    buf.reserve(4 + items.len() * std::mem::size_of::<T>().clamp(1, 64));
    buf.extend_from_slice(&count.to_le_bytes());
    let mut serializer = postcard::Serializer {
        output: AppendTo(buf),
    };
    for item in items {
        if let Err(e) = item.serialize(&mut serializer) {
            buf.truncate(start);
            return Err(Error::Serialize {
                detail: e.to_string(),
            });
        }
    }
    Ok(())
}

/// Writes a chunk item by item, where each item may fail on its own (it is then replaced
/// by what the caller writes instead): the child's per-item results.
pub(crate) struct ChunkWriter<'a> {
    serializer: postcard::Serializer<AppendTo<'a>>,
    count_at: usize,
    count: u32,
}

impl<'a> ChunkWriter<'a> {
    /// Starts a chunk of about `expected` items at the end of `buf`.
    pub(crate) fn new(buf: &'a mut Vec<u8>, expected: usize, item_size: usize) -> Self {
        buf.reserve(4 + expected * item_size.clamp(1, 64));
        let count_at = buf.len();
        buf.extend_from_slice(&[0; 4]);
        ChunkWriter {
            serializer: postcard::Serializer {
                output: AppendTo(buf),
            },
            count_at,
            count: 0,
        }
    }

    /// Appends one item; on failure nothing of it is left in the buffer.
    pub(crate) fn push<T: Serialize + ?Sized>(&mut self, item: &T) -> Result<(), Error> {
        let start = self.serializer.output.0.len();
        match item.serialize(&mut self.serializer) {
            Ok(()) => {
                self.count += 1;
                Ok(())
            }
            Err(e) => {
                self.serializer.output.0.truncate(start);
                Err(Error::Serialize {
                    detail: e.to_string(),
                })
            }
        }
    }

    /// Writes the final count.
    pub(crate) fn finish(self) {
        let at = self.count_at;
        self.serializer.output.0[at..at + 4].copy_from_slice(&self.count.to_le_bytes());
    }
}

/// Reads the items of a chunk one at a time, through one deserializer.
pub(crate) struct ChunkReader<'a> {
    deserializer: postcard::Deserializer<'a, postcard::de_flavors::Slice<'a>>,
    remaining: u32,
    failed: bool,
}

impl std::fmt::Debug for ChunkReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkReader")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl<'a> ChunkReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self, Error> {
        let (count, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or_else(|| Error::Deserialize {
                detail: "chunk shorter than its item count".to_owned(),
            })?;
        Ok(ChunkReader {
            deserializer: postcard::Deserializer::from_bytes(rest),
            remaining: u32::from_le_bytes(*count),
            failed: false,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.remaining as usize
    }

    /// The next item; `None` once the announced count is read (or after a failure).
    pub(crate) fn next_item<T: DeserializeOwned>(&mut self) -> Option<Result<T, Error>> {
        if self.remaining == 0 || self.failed {
            return None;
        }
        self.remaining -= 1;
        match T::deserialize(&mut self.deserializer) {
            Ok(value) => Some(Ok(value)),
            Err(e) => {
                self.failed = true;
                Some(Err(Error::Deserialize {
                    detail: describe(e),
                }))
            }
        }
    }

    /// Whether every announced item was read and nothing is left over.
    pub(crate) fn finish(self) -> bool {
        self.remaining == 0
            && !self.failed
            && matches!(self.deserializer.finalize(), Ok(rest) if rest.is_empty())
    }
}

/// Decodes a single value that must use the whole buffer.
pub(crate) fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Error::Deserialize {
            detail: format!("{} trailing bytes", rest.len()),
        }),
        Err(e) => Err(Error::Deserialize {
            detail: describe(e),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_round_trips() {
        let items = vec![(1u64, "a".to_owned()), (u64::MAX, String::new())];
        let mut buf = Vec::new();
        encode_chunk(&items, &mut buf).unwrap();
        let mut reader = ChunkReader::new(&buf).unwrap();
        assert_eq!(reader.len(), 2);
        let mut out = Vec::new();
        while let Some(item) = reader.next_item::<(u64, String)>() {
            out.push(item.unwrap());
        }
        assert!(reader.finish());
        assert_eq!(out, items);
    }

    #[test]
    fn custom_decode_errors_keep_their_message() {
        struct Picky;
        impl<'de> Deserialize<'de> for Picky {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let _ = u8::deserialize(deserializer)?;
                Err(custom_error("a stale handle"))
            }
        }
        let mut buf = Vec::new();
        encode_chunk(&[1u8], &mut buf).unwrap();
        let mut reader = ChunkReader::new(&buf).unwrap();
        match reader.next_item::<Picky>() {
            Some(Err(Error::Deserialize { detail })) => assert_eq!(detail, "a stale handle"),
            other => panic!("unexpected {:?}", other.map(|r| r.map(|_| ()))),
        }
    }

    #[test]
    fn a_writer_drops_a_failed_item_whole() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        let mut buf = Vec::new();
        let mut writer = ChunkWriter::new(&mut buf, 2, 8);
        writer.push(&7u64).unwrap();
        assert!(writer.push(&Refuses).is_err());
        writer.push(&9u64).unwrap();
        writer.finish();
        let mut reader = ChunkReader::new(&buf).unwrap();
        assert_eq!(reader.len(), 2);
        assert_eq!(reader.next_item::<u64>().unwrap().unwrap(), 7);
        assert_eq!(reader.next_item::<u64>().unwrap().unwrap(), 9);
        assert!(reader.finish());
    }

    #[test]
    fn truncated_and_garbage_chunks_are_errors() {
        let mut buf = Vec::new();
        encode_chunk(&[String::from("hello"), String::from("world")], &mut buf).unwrap();
        for cut in 0..buf.len() {
            let Ok(mut reader) = ChunkReader::new(&buf[..cut]) else {
                assert!(cut < 4);
                continue;
            };
            let mut failed = false;
            while let Some(item) = reader.next_item::<String>() {
                failed |= item.is_err();
            }
            assert!(failed || !reader.finish(), "cut at {cut} decoded cleanly");
        }
        // A huge announced count over a tiny buffer fails without allocating for the count.
        let garbage = [0xff, 0xff, 0xff, 0xff, 0x80, 0x80];
        let mut reader = ChunkReader::new(&garbage).unwrap();
        assert!(reader.next_item::<String>().unwrap().is_err());
        assert!(reader.next_item::<String>().is_none());
    }
}
