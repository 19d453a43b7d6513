//! A per-process table kept beside a primitive: which processes hold how much of it.
//!
//! Entries are `(pid, a, b)` with two counters whose meaning belongs to the primitive (permits
//! held; handles held and parties inside `wait`). The entries live in a chain of arena slots
//! hanging from the object's chain word, so the table grows with the number of processes and is
//! freed with the object.
//!
//! Callers hold the primitive's internal lock around every use. Each update is a single store
//! to one counter, so a process killed in the middle leaves a table that is still consistent.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::Error;
use crate::shm::arena::{Arena, Kind, State};

const ENTRIES: usize = 9;

#[repr(C)]
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) pid: AtomicU32,
    pub(crate) a: AtomicU32,
    pub(crate) b: AtomicU32,
}

impl Entry {
    pub(crate) fn a(&self) -> u32 {
        self.a.load(Ordering::Relaxed)
    }

    pub(crate) fn b(&self) -> u32 {
        self.b.load(Ordering::Relaxed)
    }

    pub(crate) fn set_a(&self, v: u32) {
        self.a.store(v, Ordering::Relaxed);
    }

    pub(crate) fn set_b(&self, v: u32) {
        self.b.store(v, Ordering::Relaxed);
    }

    /// Frees the entry once both counters are zero.
    pub(crate) fn tidy(&self) {
        if self.a() == 0 && self.b() == 0 {
            self.pid.store(0, Ordering::Relaxed);
        }
    }

    /// Empties the entry.
    pub(crate) fn clear(&self) {
        self.set_a(0);
        self.set_b(0);
        self.pid.store(0, Ordering::Relaxed);
    }
}

#[repr(C)]
struct Chunk {
    next: AtomicU32,
    entries: [Entry; ENTRIES],
}

// SAFETY: repr(C), only atomics, 4 + 9 * 12 = 112 bytes, align 4, and `next` (first) is the
// chain word.
unsafe impl State for Chunk {}

/// The table whose chain starts at `head` (the owning object's chain word).
#[derive(Debug)]
pub(crate) struct Table<'a> {
    arena: &'static Arena,
    head: &'a AtomicU32,
}

impl<'a> Table<'a> {
    pub(crate) fn new(arena: &'static Arena, head: &'a AtomicU32) -> Self {
        Table { arena, head }
    }

    /// Every entry slot, used or not.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &'static Entry> + '_ {
        let mut off = self.head.load(Ordering::Acquire);
        let arena = self.arena;
        std::iter::from_fn(move || {
            if off == 0 {
                return None;
            }
            let chunk: &'static Chunk = arena.slot(off).state();
            off = chunk.next.load(Ordering::Acquire);
            Some(chunk.entries.iter())
        })
        .flatten()
    }

    /// Entries in use.
    pub(crate) fn used(&self) -> impl Iterator<Item = &'static Entry> + '_ {
        self.entries()
            .filter(|e| e.pid.load(Ordering::Relaxed) != 0)
    }

    /// The entry of `pid`, if it has one.
    pub(crate) fn find(&self, pid: u32) -> Option<&'static Entry> {
        self.entries()
            .find(|e| e.pid.load(Ordering::Relaxed) == pid)
    }

    /// The entry of `pid`, created (zeroed) if needed.
    pub(crate) fn entry(&self, pid: u32) -> Result<&'static Entry, Error> {
        if let Some(entry) = self.find(pid) {
            return Ok(entry);
        }
        if let Some(free) = self.entries().find(|e| e.pid.load(Ordering::Relaxed) == 0) {
            free.set_a(0);
            free.set_b(0);
            free.pid.store(pid, Ordering::Relaxed);
            return Ok(free);
        }
        let (off, _) = self.arena.alloc(Kind::TableChunk)?;
        let chunk: &'static Chunk = self.arena.slot(off).state();
        chunk
            .next
            .store(self.head.load(Ordering::Relaxed), Ordering::Relaxed);
        chunk.entries[0].pid.store(pid, Ordering::Relaxed);
        // Publish the chunk only once it is linked and its first entry claimed.
        self.head.store(off, Ordering::Release);
        Ok(&chunk.entries[0])
    }
}
