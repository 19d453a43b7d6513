//! [`Bytes`]: a byte buffer that crosses a process boundary as one block.

use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A `Vec<u8>` that serialises as a single byte string: Python's `bytes` for task arguments
/// and results.
///
/// serde treats a plain `Vec<u8>` as a sequence and encodes it one element at a time; `Bytes`
/// is copied as one block instead, several times faster for large payloads on the process
/// backend. On the threading backend nothing is serialised and the two cost the same.
///
/// # Examples
///
/// ```
/// use freethreading::{Bytes, WorkerPool, worker};
///
/// #[worker]
/// fn checksum(data: Bytes) -> u64 {
///     data.iter().map(|&b| u64::from(b)).sum()
/// }
///
/// let pool = WorkerPool::new(2)?;
/// let blobs = vec![Bytes::from(vec![1u8; 1000]), Bytes::from(vec![2u8; 10])];
/// assert_eq!(pool.map(checksum, blobs)?, vec![1000, 20]);
/// # Ok::<(), freethreading::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The bytes as a `Vec`.
    ///
    /// # Examples
    ///
    /// ```
    /// let bytes = freethreading::Bytes::from(vec![1, 2]);
    /// assert_eq!(bytes.into_vec(), vec![1, 2]);
    /// ```
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Deref for Bytes {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes(bytes)
    }
}

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Self {
        Bytes(bytes.to_vec())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(bytes: Bytes) -> Self {
        bytes.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Bytes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }

            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(bytes.to_vec()))
            }

            fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(bytes))
            }

            // Formats without a byte-string type send a sequence.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(byte) = seq.next_element()? {
                    bytes.push(byte);
                }
                Ok(Bytes(bytes))
            }
        }

        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_one_block() {
        let bytes = Bytes::from(vec![7u8; 300]);
        let mut buf = Vec::new();
        crate::codec::encode(&bytes, &mut buf).unwrap();
        // A two-byte length prefix and the raw bytes: no per-element encoding.
        assert_eq!(buf.len(), 302);
        assert_eq!(crate::codec::decode_exact::<Bytes>(&buf).unwrap(), bytes);
        assert_eq!(format!("{bytes:?}"), "Bytes(300 bytes)");
    }
}
