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
        self.0.extend_from_slice(bytes);
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

/// Appends a chunk: the count, then every item.
pub(crate) fn encode_chunk<T: Serialize>(items: &[T], buf: &mut Vec<u8>) -> Result<(), Error> {
    let count = u32::try_from(items.len())
        .map_err(|_| Error::InvalidArgument("a chunk may hold at most u32::MAX items"))?;
    buf.extend_from_slice(&count.to_le_bytes());
    for item in items {
        encode(item, buf)?;
    }
    Ok(())
}

/// Reads the items of a chunk one at a time.
#[derive(Debug)]
pub(crate) struct ChunkReader<'a> {
    rest: &'a [u8],
    remaining: u32,
}

impl<'a> ChunkReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self, Error> {
        let (count, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or_else(|| Error::Deserialize {
                detail: "chunk shorter than its item count".to_owned(),
            })?;
        Ok(ChunkReader {
            rest,
            remaining: u32::from_le_bytes(*count),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.remaining as usize
    }

    /// The next item; `None` once the announced count is read.
    pub(crate) fn next_item<T: DeserializeOwned>(&mut self) -> Option<Result<T, Error>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match postcard::take_from_bytes::<T>(self.rest) {
            Ok((value, rest)) => {
                self.rest = rest;
                Some(Ok(value))
            }
            Err(e) => {
                self.remaining = 0;
                Some(Err(Error::Deserialize {
                    detail: e.to_string(),
                }))
            }
        }
    }

    /// Whether every announced item was read and nothing is left over.
    pub(crate) fn finished_cleanly(&self) -> bool {
        self.remaining == 0 && self.rest.is_empty()
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
            detail: e.to_string(),
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
        assert!(reader.finished_cleanly());
        assert_eq!(out, items);
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
            assert!(
                failed || !reader.finished_cleanly(),
                "cut at {cut} decoded cleanly"
            );
        }
        // A huge announced count over a tiny buffer fails without allocating for the count.
        let garbage = [0xff, 0xff, 0xff, 0xff, 0x80, 0x80];
        let mut reader = ChunkReader::new(&garbage).unwrap();
        assert!(reader.next_item::<String>().unwrap().is_err());
        assert!(reader.next_item::<String>().is_none());
    }
}
