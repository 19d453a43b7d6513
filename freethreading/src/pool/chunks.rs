//! Splitting a `Vec` of task arguments into chunks that own disjoint ranges of it, without
//! copying the elements.
//!
//! # Invariants
//!
//! Each element of the buffer belongs to exactly one [`Chunk`]. A chunk moves its elements out
//! one by one ([`Iterator`]) and drops the ones it did not hand out when it is dropped. The
//! buffer itself ([`Buffer`]) only frees the allocation, after the last chunk is gone, or hands
//! it to a [`Recycler`] so the next call writes its items into memory that is already mapped.
//! (Page faults on a fresh buffer cost more than the items' copy itself: for ten million
//! integers, about as much as a whole parallel map.)

use std::alloc::Layout;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

/// The largest allocation a recycler keeps between calls.
const MAX_RECYCLED_BYTES: usize = 256 << 20;

/// Keeps the allocation of a pool's last input buffer for reuse by the next call.
#[derive(Debug, Default)]
pub(crate) struct Recycler {
    kept: Mutex<Option<RawAllocation>>,
}

#[derive(Debug)]
struct RawAllocation {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: an allocation without live elements is plain memory; any thread may reuse or free it.
unsafe impl Send for RawAllocation {}

impl Drop for RawAllocation {
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated by the global allocator with exactly `layout` (it came
        // from a `Vec` with that capacity, see `Buffer::drop`), and is freed once, here.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

impl Recycler {
    /// An empty `Vec` with room for at least `capacity` items, reusing the kept allocation when
    /// its layout fits `T` exactly.
    pub(crate) fn vec_with_capacity<T>(&self, capacity: usize) -> Vec<T> {
        let size = std::mem::size_of::<T>();
        if size == 0 || capacity == 0 {
            return Vec::with_capacity(capacity);
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let fits = kept.as_ref().is_some_and(|raw| {
            raw.layout.align() == std::mem::align_of::<T>()
                && raw.layout.size() % size == 0
                && raw.layout.size() / size >= capacity
        });
        if !fits {
            return Vec::with_capacity(capacity);
        }
        let raw = std::mem::ManuallyDrop::new(kept.take().expect("checked above"));
        // SAFETY: the allocation came from the global allocator with `raw.layout`, which equals
        // `Layout::array::<T>(size / size_of::<T>())` (same alignment, size an exact multiple);
        // it holds no live elements, so length 0 is right; ownership moves into the Vec.
        unsafe { Vec::from_raw_parts(raw.ptr.as_ptr().cast::<T>(), 0, raw.layout.size() / size) }
    }

    fn keep(&self, raw: RawAllocation) {
        if raw.layout.size() > MAX_RECYCLED_BYTES {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept
            .as_ref()
            .is_none_or(|old| old.layout.size() <= raw.layout.size())
        {
            *kept = Some(raw);
        }
    }
}

/// The allocation of the original `Vec`, with length zero: the elements belong to the chunks.
struct Buffer<T> {
    ptr: NonNull<T>,
    capacity: usize,
    recycler: Option<Arc<Recycler>>,
    _owns: PhantomData<T>,
}

// SAFETY: the buffer only frees memory; every element is accessed by the single chunk that
// owns its range, so sharing the buffer between threads needs only `T: Send`.
unsafe impl<T: Send> Send for Buffer<T> {}
// SAFETY: as above: no element is reachable through a shared `&Buffer`.
unsafe impl<T: Send> Sync for Buffer<T> {}

impl<T> Drop for Buffer<T> {
    fn drop(&mut self) {
        let layout = Layout::array::<T>(self.capacity).ok();
        match (self.recycler.take(), layout) {
            (Some(recycler), Some(layout)) if layout.size() > 0 => recycler.keep(RawAllocation {
                ptr: self.ptr.cast(),
                layout,
            }),
            // SAFETY: ptr and capacity came from a `Vec<T>` (see `split`); length 0 because
            // every element was moved out or dropped by its chunk.
            _ => drop(unsafe { Vec::from_raw_parts(self.ptr.as_ptr(), 0, self.capacity) }),
        }
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
/// The allocation goes to `recycler` once every chunk is gone.
pub(crate) fn split<T>(
    items: Vec<T>,
    chunk_size: usize,
    recycler: Option<Arc<Recycler>>,
) -> Vec<Chunk<T>> {
    debug_assert!(chunk_size > 0);
    let len = items.len();
    let mut items = ManuallyDrop::new(items);
    let buffer = Arc::new(Buffer {
        // SAFETY: a Vec's pointer is never null (dangling but non-null when unallocated).
        ptr: unsafe { NonNull::new_unchecked(items.as_mut_ptr()) },
        capacity: items.capacity(),
        recycler,
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

/// A buffer filled chunk by chunk from an iterator whose length is known up front, so each
/// chunk can start running while the next is still being filled.
pub(crate) struct Filling<T> {
    buffer: Arc<Buffer<T>>,
    filled: usize,
    len: usize,
}

impl<T> Filling<T> {
    /// Room for `len` items, from `recycler` when it has a fitting allocation.
    pub(crate) fn new(len: usize, recycler: Option<Arc<Recycler>>) -> Self {
        let storage: Vec<T> = match &recycler {
            Some(recycler) => recycler.vec_with_capacity(len),
            None => Vec::with_capacity(len),
        };
        let mut storage = ManuallyDrop::new(storage);
        Filling {
            buffer: Arc::new(Buffer {
                // SAFETY: a Vec's pointer is never null.
                ptr: unsafe { NonNull::new_unchecked(storage.as_mut_ptr()) },
                capacity: storage.capacity(),
                recycler,
                _owns: PhantomData,
            }),
            filled: 0,
            len,
        }
    }

    /// Moves the next `n` items (fewer at the end) into the buffer and returns them as a chunk.
    /// `Err(())` if `items` ends before the announced length: the partial chunk is dropped.
    pub(crate) fn next_chunk(
        &mut self,
        items: &mut impl Iterator<Item = T>,
        n: usize,
    ) -> Result<Chunk<T>, ()> {
        let start = self.filled;
        let end = (start + n).min(self.len);
        while self.filled < end {
            let Some(item) = items.next() else {
                let partial = std::ptr::slice_from_raw_parts_mut(
                    // SAFETY: `start` ≤ `len` ≤ capacity.
                    unsafe { self.buffer.ptr.as_ptr().add(start) },
                    self.filled - start,
                );
                self.filled = start;
                // SAFETY: `start..filled` was initialised just above and belongs to no chunk.
                unsafe { std::ptr::drop_in_place(partial) };
                return Err(());
            };
            // SAFETY: `filled` < `len` ≤ capacity, and the slot is not initialised yet.
            unsafe { self.buffer.ptr.as_ptr().add(self.filled).write(item) };
            self.filled += 1;
        }
        Ok(Chunk {
            buffer: Arc::clone(&self.buffer),
            start,
            next: start,
            end,
        })
    }

    /// Whether every announced item was filled in.
    pub(crate) fn is_full(&self) -> bool {
        self.filled == self.len
    }
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
        let chunks = split((0..10).map(|i| i.to_string()).collect(), 4, None);
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
        let mut chunks = split((0..7).map(|_| Counted).collect(), 3, None);
        let mut first = chunks.remove(0);
        drop(first.next());
        assert_eq!(first.remaining().len(), 2);
        drop(chunks);
        drop(first);
        assert_eq!(DROPS.load(Ordering::Relaxed), 7);
    }

    #[test]
    fn filling_hands_out_chunks_and_drops_a_short_tail() {
        let mut filling = Filling::new(5, None);
        let mut items = (0..4).map(|i| i.to_string());
        let first = filling.next_chunk(&mut items, 2).unwrap();
        assert_eq!(first.remaining(), ["0", "1"]);
        // Only two items are left for a chunk that needs three.
        assert!(filling.next_chunk(&mut items, 3).is_err());
        assert!(!filling.is_full());
        assert_eq!(first.collect::<Vec<_>>(), ["0", "1"]);
    }

    #[test]
    fn empty_vec_gives_no_chunks() {
        assert!(split(Vec::<u8>::new(), 5, None).is_empty());
    }

    #[test]
    fn a_recycled_allocation_is_reused_for_fitting_layouts_only() {
        let recycler = Arc::new(Recycler::default());
        let items: Vec<u64> = (0..1000).collect();
        let ptr = items.as_ptr() as usize;
        drop(split(items, 100, Some(Arc::clone(&recycler))));
        // A different alignment does not get it.
        let bytes: Vec<u8> = recycler.vec_with_capacity(10);
        assert_ne!(bytes.as_ptr() as usize, ptr);
        // Same layout, smaller need: reused.
        let again: Vec<(u64,)> = recycler.vec_with_capacity(500);
        assert_eq!(again.as_ptr() as usize, ptr);
        assert!(again.capacity() >= 1000);
        // Taken: the next request allocates afresh.
        let fresh: Vec<u64> = recycler.vec_with_capacity(500);
        assert_ne!(fresh.as_ptr() as usize, ptr);
    }
}
