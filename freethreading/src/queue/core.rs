//! What `Queue` and `SimpleQueue` share: the two flavors (a crossbeam channel on the threading
//! backend, a shared ring on the process backend) behind one set of operations, and the
//! handle's serialised form.

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{GetError, PutError};
use super::local::{self, Local};
use crate::shm::arena::{Handle, Kind, RawHandle};
use crate::shm::futex;
use crate::shm::ring::{PopError, PushError, Ring, Wait};
use crate::{Backend, Error, codec};

pub(crate) enum Flavor<T> {
    Local(Arc<Local<T>>),
    /// `fn() -> T`: the ring holds bytes, not `T`s, so it is `Send` and `Sync` whatever `T`.
    Shared(Ring, PhantomData<fn() -> T>),
}

pub(crate) struct Core<T> {
    flavor: Flavor<T>,
    label: &'static str,
}

/// The serialised form of a handle.
#[derive(Serialize, Deserialize)]
enum Wire {
    /// A threading-backend queue: only meaningful inside the process that wrote it.
    Local { pid: u32, id: u64 },
    /// A process-backend queue in the program's arena.
    Shared(RawHandle),
}

/// A stable identifier of the item type and the queue kind (FNV-1a of their names), so a
/// handle decoded as a queue of another type is refused instead of misreading items.
fn type_tag<T>(label: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in label
        .bytes()
        .chain([0])
        .chain(std::any::type_name::<T>().bytes())
    {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A deadline `timeout` from now, as a wait.
pub(crate) fn wait_for(timeout: Duration) -> Wait {
    Wait::Until(futex::deadline_after(timeout))
}

thread_local! {
    /// Encoding buffer reused by this thread's puts.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Largest scratch buffer kept between puts.
const SCRATCH_KEEP: usize = 1 << 20;

impl<T> Core<T> {
    pub(crate) fn create(maxsize: usize, label: &'static str) -> Result<Core<T>, Error> {
        let backend = crate::backend::try_get_backend()?;
        let flavor = match backend {
            Backend::Threading => Flavor::Local(Arc::new(Local::new(maxsize, label))),
            Backend::Multiprocessing => {
                let bound = u32::try_from(maxsize).map_err(|_| {
                    Error::InvalidArgument("maxsize of a process-backend queue exceeds u32::MAX")
                })?;
                Flavor::Shared(Ring::create(type_tag::<T>(label), bound)?, PhantomData)
            }
        };
        Ok(Core { flavor, label })
    }

    pub(crate) fn backend(&self) -> Backend {
        match self.flavor {
            Flavor::Local(_) => Backend::Threading,
            Flavor::Shared(..) => Backend::Multiprocessing,
        }
    }

    pub(crate) fn maxsize(&self) -> usize {
        match &self.flavor {
            Flavor::Local(q) => q.maxsize,
            Flavor::Shared(ring, _) => ring.maxsize() as usize,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match &self.flavor {
            Flavor::Local(q) => q.len(),
            Flavor::Shared(ring, _) => ring.len() as usize,
        }
    }

    pub(crate) fn task_done(&self) -> Result<(), Error> {
        let counted = match &self.flavor {
            Flavor::Local(q) => q.task_done(),
            Flavor::Shared(ring, _) => ring.task_done(),
        };
        if counted {
            Ok(())
        } else {
            Err(Error::TaskDoneTooManyTimes)
        }
    }

    pub(crate) fn unfinished(&self) -> u64 {
        match &self.flavor {
            Flavor::Local(q) => q.unfinished(),
            Flavor::Shared(ring, _) => u64::from(ring.unfinished()),
        }
    }

    pub(crate) fn join(&self, deadline: Option<Instant>) -> bool {
        match &self.flavor {
            Flavor::Local(q) => q.join(deadline),
            Flavor::Shared(ring, _) => ring.join(deadline),
        }
    }
}

impl<T: Serialize> Core<T> {
    pub(crate) fn put(&self, item: T, wait: Wait) -> Result<(), PutError<T>> {
        let ring = match &self.flavor {
            Flavor::Local(q) => return q.put(item, wait),
            Flavor::Shared(ring, _) => ring,
        };
        // Take the buffer out of the cell: a `Serialize` that itself puts finds an empty one.
        let mut buf = SCRATCH.take();
        buf.clear();
        let result = match codec::encode(&item, &mut buf) {
            Err(e) => Err(PutError::Failed(item, e)),
            Ok(()) => match ring.push(&buf, wait) {
                Ok(()) => Ok(()),
                Err(PushError::Full) => Err(PutError::Full(item)),
                Err(PushError::Failed(e)) => Err(PutError::Failed(item, e)),
            },
        };
        if buf.capacity() <= SCRATCH_KEEP {
            SCRATCH.set(buf);
        }
        result
    }
}

impl<T: DeserializeOwned> Core<T> {
    pub(crate) fn get(&self, wait: Wait) -> Result<T, GetError> {
        match &self.flavor {
            Flavor::Local(q) => q.get(wait),
            Flavor::Shared(ring, _) => match ring.pop(wait, codec::decode_exact::<T>) {
                Ok(Ok(item)) => Ok(item),
                Ok(Err(e)) | Err(PopError::Corrupt(e)) => Err(GetError::Failed(e)),
                Err(PopError::Empty) => Err(GetError::Empty),
            },
        }
    }
}

impl<T: Send + 'static> Core<T> {
    pub(crate) fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.flavor {
            Flavor::Local(q) => Wire::Local {
                pid: crate::shm::pid(),
                id: local::export(q),
            }
            .serialize(serializer),
            Flavor::Shared(ring, _) => {
                Wire::Shared(ring.handle().raw_for_transfer()).serialize(serializer)
            }
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
        label: &'static str,
    ) -> Result<Core<T>, D::Error> {
        let flavor = match Wire::deserialize(deserializer)? {
            Wire::Local { pid, id } => {
                if pid != crate::shm::pid() {
                    return Err(crate::codec::custom_error(format!(
                        "a {label} created on the threading backend cannot be used in another \
                         process; create it while the multiprocessing backend is in force"
                    )));
                }
                Flavor::Local(local::import(id, label).map_err(crate::codec::custom_error)?)
            }
            Wire::Shared(raw) => {
                let handle = Handle::adopt(raw, Kind::Queue).map_err(crate::codec::custom_error)?;
                let ring = Ring::adopt(handle, type_tag::<T>(label))
                    .map_err(crate::codec::custom_error)?;
                Flavor::Shared(ring, PhantomData)
            }
        };
        Ok(Core { flavor, label })
    }
}

impl<T> Clone for Core<T> {
    fn clone(&self) -> Core<T> {
        let flavor = match &self.flavor {
            Flavor::Local(q) => Flavor::Local(Arc::clone(q)),
            Flavor::Shared(ring, _) => Flavor::Shared(ring.clone(), PhantomData),
        };
        Core {
            flavor,
            label: self.label,
        }
    }
}

impl<T> std::fmt::Debug for Core<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.label)
            .field("backend", &self.backend())
            .field("qsize", &self.len())
            .field("maxsize", &self.maxsize())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Backend, Queue, SimpleQueue, with_backend};

    fn round_trip<A: serde::Serialize, B: serde::de::DeserializeOwned>(a: &A) -> Result<B, String> {
        let bytes = postcard::to_allocvec(a).map_err(|e| e.to_string())?;
        postcard::from_bytes(&bytes).map_err(|e| e.to_string())
    }

    #[test]
    fn handles_decode_only_as_the_same_kind_and_item_type() {
        for backend in [Backend::Threading, Backend::Multiprocessing] {
            with_backend(backend, || {
                let queue: Queue<u32> = Queue::new();
                assert!(round_trip::<_, Queue<String>>(&queue).is_err(), "{backend}");
                assert!(
                    round_trip::<_, SimpleQueue<u32>>(&queue).is_err(),
                    "{backend}"
                );
                let same: Queue<u32> = round_trip(&queue).unwrap();
                same.put(7).unwrap();
                assert_eq!(queue.get().unwrap(), 7, "{backend}: the same queue");
                assert_eq!(same.backend(), backend);
            });
        }
    }

    #[test]
    fn bytes_decoded_twice_are_refused() {
        for backend in [Backend::Threading, Backend::Multiprocessing] {
            with_backend(backend, || {
                let queue: Queue<u8> = Queue::new();
                let bytes = postcard::to_allocvec(&queue).unwrap();
                drop(queue);
                let first: Queue<u8> = postcard::from_bytes(&bytes).unwrap();
                drop(first);
                assert!(
                    postcard::from_bytes::<Queue<u8>>(&bytes).is_err(),
                    "{backend}"
                );
            });
        }
    }
}
