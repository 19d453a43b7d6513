//! Splitting a `Vec` of task arguments into chunks that own disjoint ranges of it, without
//! copying the elements.
//!
//! # Invariants
//!
//! Each element of the buffer belongs to exactly one [`Chunk`]. A chunk moves its elements out
//! one by one ([`Iterator`]) and drops the ones it did not hand out when it is dropped. The
//! buffer itself ([`Buffer`]) only frees the allocation, after the last chunk is gone.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

/// The allocation of the original `Vec`, with length zero: the elements belong to the chunks.
struct Buffer<T> {
    ptr: NonNull<T>,
    capacity: usize,
    _owns: PhantomData<T>,
}

// SAFETY: the buffer only frees memory; every element is accessed by the single chunk that
// owns its range, so sharing the buffer between threads needs only `T: Send`.
unsafe impl<T: Send> Send for Buffer<T> {}
// SAFETY: as above: no element is reachable through a shared `&Buffer`.
unsafe impl<T: Send> Sync for Buffer<T> {}

impl<T> Drop for Buffer<T> {
    fn drop(&mut self) {
        // SAFETY: ptr and capacity came from a `Vec<T>` (see `split`); length 0 because every
        // element was moved out or dropped by its chunk.
        drop(unsafe { Vec::from_raw_parts(self.ptr.as_ptr(), 0, self.capacity) });
    }
}

/// An owned range of the split `Vec`.
pub(crate) struct Chunk<T> {
    buffer: Arc<Buffer<T>>,
    /// Index (in the original `Vec`) of the first element.
    start: usize,
    /// Index of the next element not yet moved out.
    next: usize,
    end: usize,
}

impl<T> std::fmt::Debug for Chunk<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("start", &self.start)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

// SAFETY: a chunk exclusively owns the elements in `next..end`; moving it to another thread
// moves those elements, which `T: Send` allows.
unsafe impl<T: Send> Send for Chunk<T> {}

/// Splits `items` into chunks of `chunk_size` (the last may be shorter). `chunk_size` ≥ 1.
pub(crate) fn split<T>(items: Vec<T>, chunk_size: usize) -> Vec<Chunk<T>> {
    debug_assert!(chunk_size > 0);
    let len = items.len();
    let mut items = ManuallyDrop::new(items);
    let buffer = Arc::new(Buffer {
        // SAFETY: a Vec's pointer is never null (dangling but non-null when unallocated).
        ptr: unsafe { NonNull::new_unchecked(items.as_mut_ptr()) },
        capacity: items.capacity(),
        _owns: PhantomData,
    });
    (0..len)
        .step_by(chunk_size)
        .map(|start| Chunk {
            buffer: Arc::clone(&buffer),
            start,
            next: start,
            end: (start + chunk_size).min(len),
        })
        .collect()
}

impl<T> Chunk<T> {
    /// Index of the chunk's first element in the original `Vec`.
    pub(crate) fn start(&self) -> usize {
        self.start
    }

    /// Number of elements in the chunk, handed out or not.
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    /// The elements not yet handed out.
    pub(crate) fn remaining(&self) -> &[T] {
        // SAFETY: `next..end` is within the allocation, initialised, and owned by this chunk.
        unsafe {
            std::slice::from_raw_parts(
                self.buffer.ptr.as_ptr().add(self.next),
                self.end - self.next,
            )
        }
    }
}

impl<T> Iterator for Chunk<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.next == self.end {
            return None;
        }
        // SAFETY: `next` is in this chunk's range, initialised, and read exactly once because
        // `next` advances past it right away.
        let item = unsafe { self.buffer.ptr.as_ptr().add(self.next).read() };
        self.next += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl<T> Drop for Chunk<T> {
    fn drop(&mut self) {
        let rest: *mut [T] = std::ptr::slice_from_raw_parts_mut(
            // SAFETY: `next` ≤ `end` ≤ capacity, so the offset stays inside the allocation.
            unsafe { self.buffer.ptr.as_ptr().add(self.next) },
            self.end - self.next,
        );
        self.next = self.end;
        // SAFETY: the elements not handed out are initialised and owned only by this chunk.
        unsafe { std::ptr::drop_in_place(rest) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn chunks_cover_the_vec_in_order() {
        let chunks = split((0..10).map(|i| i.to_string()).collect(), 4);
        assert_eq!(chunks.iter().map(Chunk::len).collect::<Vec<_>>(), [4, 4, 2]);
        let all: Vec<String> = chunks.into_iter().flatten().collect();
        assert_eq!(all, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn unconsumed_elements_are_dropped_exactly_once() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut chunks = split((0..7).map(|_| Counted).collect(), 3);
        let mut first = chunks.remove(0);
        drop(first.next());
        assert_eq!(first.remaining().len(), 2);
        drop(chunks);
        drop(first);
        assert_eq!(DROPS.load(Ordering::Relaxed), 7);
    }

    #[test]
    fn empty_vec_gives_no_chunks() {
        assert!(split(Vec::<u8>::new(), 5).is_empty());
    }
}
