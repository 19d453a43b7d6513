//! The shared ring behind the process backend's `Queue` and `SimpleQueue`: a FIFO of encoded
//! items in arena blocks, usable by any number of producer and consumer processes.
//!
//! # Layout
//!
//! A queue is one arena slot ([`Kind::Queue`]) pointing to a 4 KiB *control block*, which
//! points to the *ring*, a power-of-two block of 8-byte units. The control block keeps each
//! group of words that one side writes on its own cache-line pair, so a producer and a
//! consumer running on two CPUs do not bounce each other's lines:
//!
//! - producer lines: the producers' robust lock; `tail` and the producers' last view of `head`;
//! - consumer lines: the consumers' robust lock; `head` and the consumers' last view of `tail`;
//! - one line per sleep condition (data, space, join): sleeper count and futex word;
//! - a read-mostly line: the ring's offset and size, the item type tag, `maxsize`.
//!
//! `tail` and `head` are single 64-bit words: the number of items ever published (consumed)
//! in the high half and a position in units, modulo 2³², in the low half. A position maps to
//! unit `pos % capacity` of the ring. So the item count (`qsize`), the bytes in use and the
//! published end move together, in one store.
//!
//! # Records
//!
//! A record starts with an 8-byte header (`u32` length, `u32` tag) and never wraps around the
//! ring's end: when one would not fit before the end, a *skip* record fills the rest and the
//! item starts at unit 0. An item whose encoding is larger than [`INLINE_MAX`] is written to a
//! *blob* (a slot of [`Kind::Blob`] owning a block of its own, allocated and filled outside any
//! lock) and the record carries the blob's handle and its reference. So a 64 MiB item goes
//! through a ring of a few KiB without being split, and without holding up other producers
//! while it is copied.
//!
//! # Protocol
//!
//! Producers serialise among themselves with the producer lock; consumers with the consumer
//! lock; the two sides never wait for each other's lock, except that a producer growing the
//! ring takes the consumer lock too (always in that order). A producer writes the record
//! beyond `tail`, where no consumer reads, then publishes it by storing the new `tail`. A
//! consumer reads the record at `head`, decodes it into the caller's value, then commits by
//! storing the new `head`; only then may a producer reuse those units. The ring grows (doubles,
//! up to [`MAX_RING_LOG2`]) when an item does not fit and consumers lag behind; beyond that,
//! producers wait for space.
//!
//! # Crashes
//!
//! Both locks are robust (see [`super::mutex`]): a process killed while holding one does not
//! block the others, who take the lock over. Nothing needs repair then, by construction:
//!
//! - a producer killed before storing `tail` leaves at most bytes beyond `tail`, which no
//!   consumer reads and the next producer overwrites: a half-written item is never visible;
//! - a consumer killed before storing `head` leaves the item it was taking at the head of the
//!   queue, and the next consumer gets it; killed after that store, the item went with it
//!   (the store is the last step of a `get` before it returns);
//! - a process killed while growing the ring leaves the old ring in force (the switch is one
//!   store) and leaks at most one block;
//! - a producer killed between filling a blob and publishing it leaks the blob (like any
//!   handle a killed process held; see `arena`).
//!
//! Waiters sleep in slices of [`WAIT_SLICE`] at most, so a wake-up lost with a killed process
//! delays them by one slice, never forever.
//!
//! # Memory ordering
//!
//! The `tail` store is a release that publishes the record bytes written before it; a
//! consumer loads `tail` with acquire before reading them. The `head` store is a release that
//! orders the consumer's reads before a producer's reuse; producers load `head` with acquire.
//! Sleepers and wakers use sequentially consistent operations on the published word and the
//! sleeper count (a Dekker pair), so either the sleeper sees the new word or the waker sees the
//! sleeper.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Error;
use crate::shm::arena::{Arena, Handle, Kind, MIN_BLOCK_LOG2, Slot, State};
use crate::shm::mutex::RawMutex;
use crate::shm::{futex, pid};

/// Bytes per ring unit (record alignment).
const UNIT: usize = 8;
/// log2 of a new ring's size in bytes.
const INITIAL_RING_LOG2: u32 = 16;
/// log2 of the largest ring, in bytes.
pub(crate) const MAX_RING_LOG2: u32 = 26;
/// Largest encoding stored in the ring itself; larger items go to a blob.
pub(crate) const INLINE_MAX: usize = 16 * 1024;
/// Longest single sleep of a waiter.
const WAIT_SLICE: Duration = Duration::from_millis(20);
/// How long a waiter spins before sleeping: a partner on another CPU that answers within this
/// is met without a system call on either side.
const SPIN: Duration = Duration::from_micros(60);

const TAG_ITEM: u32 = 1;
const TAG_SKIP: u32 = 2;
const TAG_BLOB: u32 = 3;

/// The slot body of a queue.
#[repr(C)]
struct QueueSlot {
    chain: AtomicU32,
    /// Offset of the control block (0 while it is being created).
    control: AtomicU32,
}

// SAFETY: repr(C), atomics only, 8 bytes, align 4, chain word first.
unsafe impl State for QueueSlot {}

/// The slot body of a blob.
#[repr(C)]
struct BlobSlot {
    chain: AtomicU32,
    block: AtomicU32,
    log2: AtomicU32,
    len: AtomicU32,
}

// SAFETY: repr(C), atomics only, 16 bytes, align 4, chain word first.
unsafe impl State for BlobSlot {}

/// One side's words. The lock has a line of its own: the other side reads `end` while it
/// waits, and would otherwise pull the lock's line away from every lock and unlock.
#[repr(C)]
struct Side {
    lock: LockLine,
    /// `tail` on the producer side, `head` on the consumer side.
    end: AtomicU64,
    /// This side's last view of the other side's word.
    cached_other: AtomicU64,
    _align: [Aligned; 0],
}

#[repr(C, align(128))]
struct Aligned;

#[repr(C, align(128))]
struct LockLine(RawMutex);

impl std::ops::Deref for LockLine {
    type Target = RawMutex;

    fn deref(&self) -> &RawMutex {
        &self.0
    }
}

#[repr(C, align(128))]
struct Sleepers {
    count: AtomicU32,
    /// Futex word, bumped when there is something to wake for.
    seq: AtomicU32,
}

#[repr(C, align(128))]
struct Info {
    /// Ring block offset (low 32 bits) and log2 of its size in bytes (high 32 bits).
    ring: AtomicU64,
    /// Identifies the item type, so a handle decoded as a queue of another type is refused.
    tag: AtomicU64,
    /// Item bound, 0 for none.
    maxsize: AtomicU32,
}

#[repr(C, align(128))]
struct Tasks {
    /// `task_done` calls, modulo 2³²; the futex word of `join`.
    done: AtomicU32,
    joiners: AtomicU32,
}

/// The control block. Only atomics, so any content (a reused block) is a valid value; it is
/// zeroed before the queue is published.
#[repr(C)]
struct Control {
    producer: Side,
    consumer: Side,
    data: Sleepers,
    space: Sleepers,
    info: Info,
    tasks: Tasks,
}

const _: () = assert!(size_of::<Control>() <= 1 << MIN_BLOCK_LOG2);

fn count(word: u64) -> u32 {
    (word >> 32) as u32
}

fn pos(word: u64) -> u32 {
    word as u32
}

fn pack(count: u32, pos: u32) -> u64 {
    (u64::from(count) << 32) | u64::from(pos)
}

#[derive(Clone, Copy)]
struct RingRef {
    off: u32,
    log2: u32,
}

impl RingRef {
    fn unpack(word: u64) -> RingRef {
        RingRef {
            off: word as u32,
            log2: (word >> 32) as u32,
        }
    }

    fn pack(self) -> u64 {
        (u64::from(self.log2) << 32) | u64::from(self.off)
    }

    /// Capacity in units.
    fn cap(self) -> u32 {
        1 << (self.log2 - 3)
    }

    /// Byte offset in the arena of unit `pos`.
    fn at(self, pos: u32) -> usize {
        self.off as usize + (pos & (self.cap() - 1)) as usize * UNIT
    }
}

/// A hook the tests use to kill a process at the one instant that matters.
static HOOK: AtomicU32 = AtomicU32::new(0);
const HOOK_DIE_IN_GET: u32 = 1;
const HOOK_DIE_IN_PUT: u32 = 2;

/// Makes this process kill itself (`SIGKILL`) inside its next `get` on a shared queue, after
/// decoding the item and before removing it.
pub(crate) fn die_in_next_get() {
    HOOK.store(HOOK_DIE_IN_GET, Ordering::Relaxed);
}

/// Makes this process kill itself inside its next `put` on a shared queue, after writing half
/// of the item into the ring and before publishing it.
pub(crate) fn die_in_next_put() {
    HOOK.store(HOOK_DIE_IN_PUT, Ordering::Relaxed);
}

fn hook(which: u32) {
    if HOOK.load(Ordering::Relaxed) == which {
        // SAFETY: kill on our own pid with a valid signal; the process ends here.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}

/// Why a push did not happen.
#[derive(Debug)]
pub(crate) enum PushError {
    /// The queue stayed full (or its lock busy) until the deadline, or at once for a try.
    Full,
    /// The item could not be stored.
    Failed(Error),
}

/// Why a pop did not happen.
#[derive(Debug)]
pub(crate) enum PopError {
    /// The queue stayed empty until the deadline, or at once for a try.
    Empty,
    /// The queue's memory holds a record that makes no sense (never produced by this code).
    Corrupt(Error),
}

/// When a blocking operation gives up.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Do not wait for data or space (locks are still waited for: they are held briefly).
    No,
    /// Wait until the deadline, forever if `None`.
    Until(Option<Instant>),
}

/// Holds a side's lock; unlocks on drop.
struct Held<'a>(&'a RawMutex);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

fn lock(mutex: &RawMutex, wait: Wait) -> Option<Held<'_>> {
    let deadline = match wait {
        Wait::No => None,
        Wait::Until(deadline) => deadline,
    };
    mutex.lock(pid(), deadline).map(|_| Held(mutex))
}

/// One process's reference to a shared queue.
pub(crate) struct Ring {
    handle: Handle,
    arena: &'static Arena,
    ctl: &'static Control,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ring({:?})", self.handle)
    }
}

impl Clone for Ring {
    fn clone(&self) -> Ring {
        Ring {
            handle: self.handle.clone(),
            ..*self
        }
    }
}

fn control(arena: &'static Arena, off: u32) -> &'static Control {
    // SAFETY: `off` is a block of at least 4 KiB that the queue owns (checked with
    // `valid_block` when it came from another process); `Control` is only atomics, valid for
    // any content, and fits in the block. The arena is never unmapped.
    unsafe { &*arena.ptr(off as usize).cast::<Control>() }
}

impl Ring {
    /// A new empty queue whose items are identified by `tag`, bounded to `maxsize` items (0:
    /// unbounded).
    pub(crate) fn create(tag: u64, maxsize: u32) -> Result<Ring, Error> {
        let handle = Handle::new(Kind::Queue)?;
        let arena = handle.arena();
        let slot: &QueueSlot = handle.state();
        let ctl_off = arena.alloc_block(MIN_BLOCK_LOG2)?;
        // SAFETY: the block was just allocated and nobody else knows it yet.
        unsafe { std::ptr::write_bytes(arena.ptr(ctl_off as usize), 0, 1 << MIN_BLOCK_LOG2) };
        let ctl = control(arena, ctl_off);
        // From here on the queue's finalizer frees the control block (and the ring once set).
        slot.control.store(ctl_off, Ordering::Release);
        let ring_off = arena.alloc_block(INITIAL_RING_LOG2)?;
        let ring = RingRef {
            off: ring_off,
            log2: INITIAL_RING_LOG2,
        };
        ctl.info.tag.store(tag, Ordering::Relaxed);
        ctl.info.maxsize.store(maxsize, Ordering::Relaxed);
        ctl.info.ring.store(ring.pack(), Ordering::Release);
        Ok(Ring { handle, arena, ctl })
    }

    /// Adopts a handle received from another process (or thread), checking its item type.
    pub(crate) fn adopt(handle: Handle, tag: u64) -> Result<Ring, String> {
        let arena = handle.arena();
        let slot: &QueueSlot = handle.state();
        let off = slot.control.load(Ordering::Acquire);
        if off == 0 || !arena.valid_block(off, 1 << MIN_BLOCK_LOG2) {
            return Err("the queue handle points to no queue".to_owned());
        }
        let ctl = control(arena, off);
        if ctl.info.tag.load(Ordering::Relaxed) != tag {
            return Err(
                "the queue handle is for another item type (or another kind of queue)".to_owned(),
            );
        }
        Ok(Ring { handle, arena, ctl })
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    pub(crate) fn maxsize(&self) -> u32 {
        self.ctl.info.maxsize.load(Ordering::Relaxed)
    }

    /// Items published and not yet taken (approximate while others work on the queue).
    pub(crate) fn len(&self) -> u32 {
        // Head first: `tail` only moves forward, so the difference never goes negative.
        let head = self.ctl.consumer.end.load(Ordering::Acquire);
        let tail = self.ctl.producer.end.load(Ordering::Acquire);
        count(tail).wrapping_sub(count(head))
    }

    fn ring(&self) -> RingRef {
        RingRef::unpack(self.ctl.info.ring.load(Ordering::Acquire))
    }

    /// Appends one encoded item.
    pub(crate) fn push(&self, bytes: &[u8], wait: Wait) -> Result<(), PushError> {
        let blob = if bytes.len() > INLINE_MAX {
            Some(store_blob(bytes).map_err(PushError::Failed)?)
        } else {
            None
        };
        let units = 1 + match &blob {
            Some(_) => 1,
            None => bytes.len().div_ceil(UNIT) as u32,
        };
        let ctl = self.ctl;
        let producer = &ctl.producer;
        let maxsize = self.maxsize();
        let mut held = lock(&producer.lock, wait).ok_or(PushError::Full)?;
        loop {
            let ring = self.ring();
            let cap = ring.cap();
            let tail = producer.end.load(Ordering::Relaxed);
            let mut head = producer.cached_other.load(Ordering::Relaxed);
            let mut refreshed = false;
            let (skip, fits) = loop {
                let at = pos(tail) & (cap - 1);
                let skip = if cap - at < units { cap - at } else { 0 };
                let used = pos(tail).wrapping_sub(pos(head));
                let counted = maxsize == 0 || count(tail).wrapping_sub(count(head)) < maxsize;
                let fits = counted && u64::from(used) + u64::from(skip + units) <= u64::from(cap);
                if fits || refreshed {
                    break (skip, fits);
                }
                head = ctl.consumer.end.load(Ordering::Acquire);
                producer.cached_other.store(head, Ordering::Relaxed);
                refreshed = true;
            };
            if !fits {
                let by_count = maxsize != 0 && count(tail).wrapping_sub(count(head)) >= maxsize;
                let needed = u64::from(pos(tail).wrapping_sub(pos(head))) + 2 * u64::from(units);
                if !by_count && ring.log2 < MAX_RING_LOG2 {
                    self.grow(ring, needed, wait)?;
                    continue;
                }
                let Wait::Until(deadline) = wait else {
                    return Err(PushError::Full);
                };
                drop(held);
                if !self.wait_for(&ctl.space, deadline, || {
                    ctl.consumer.end.load(Ordering::SeqCst) != head
                }) {
                    return Err(PushError::Full);
                }
                held = lock(&producer.lock, wait).ok_or(PushError::Full)?;
                continue;
            }
            let mut at = pos(tail);
            if skip > 0 {
                self.write_header(ring, at, skip, TAG_SKIP);
                at = at.wrapping_add(skip);
            }
            match &blob {
                Some(handle) => {
                    self.write_header(ring, at, bytes.len() as u32, TAG_BLOB);
                    let (off, generation) = handle.parts();
                    self.word(ring, at.wrapping_add(1))
                        .store(pack(generation, off), Ordering::Relaxed);
                }
                None => {
                    self.write_header(ring, at, bytes.len() as u32, TAG_ITEM);
                    let dst = self.arena.ptr(ring.at(at.wrapping_add(1)));
                    if HOOK.load(Ordering::Relaxed) == HOOK_DIE_IN_PUT {
                        // SAFETY: as for the full copy below, with half the length.
                        unsafe {
                            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len() / 2)
                        };
                        hook(HOOK_DIE_IN_PUT);
                    }
                    // SAFETY: the record's units lie beyond `tail` (checked above to be free
                    // and contiguous before the ring's end), where no consumer reads and no
                    // other producer writes while we hold the producer lock; `bytes` is
                    // process-local memory, so the two do not overlap.
                    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
                }
            }
            let new_tail = pack(count(tail).wrapping_add(1), at.wrapping_add(units));
            producer.end.store(new_tail, Ordering::SeqCst);
            break;
        }
        drop(held);
        // The record now owns the blob's reference.
        if let Some(handle) = blob {
            handle.into_parts();
        }
        if ctl.data.count.load(Ordering::SeqCst) > 0 {
            ctl.data.seq.fetch_add(1, Ordering::SeqCst);
            futex::wake(&ctl.data.seq, 1);
        }
        Ok(())
    }

    /// Replaces the ring with a larger one holding `needed` units at least. Called with the
    /// producer lock held; takes the consumer lock for the copy.
    fn grow(&self, old: RingRef, needed: u64, wait: Wait) -> Result<(), PushError> {
        let mut log2 = old.log2 + 1;
        while log2 < MAX_RING_LOG2 && (1u64 << (log2 - 3)) < needed {
            log2 += 1;
        }
        let consumer = &self.ctl.consumer;
        let _held = lock(&consumer.lock, wait).ok_or(PushError::Full)?;
        let off = self.arena.alloc_block(log2).map_err(PushError::Failed)?;
        let new = RingRef { off, log2 };
        let head = consumer.end.load(Ordering::Acquire);
        let tail = self.ctl.producer.end.load(Ordering::Relaxed);
        let mut at = pos(head);
        let end = pos(tail);
        while at != end {
            let left = end.wrapping_sub(at);
            let run = left
                .min(old.cap() - (at & (old.cap() - 1)))
                .min(new.cap() - (at & (new.cap() - 1)));
            // SAFETY: both ranges are `run` units inside their own rings (the run stops at
            // either ring's end); the old units are published records nobody writes while we
            // hold both locks; the new block is ours alone until the switch below.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.arena.ptr(old.at(at)),
                    self.arena.ptr(new.at(at)),
                    run as usize * UNIT,
                );
            }
            at = at.wrapping_add(run);
        }
        self.ctl.info.ring.store(new.pack(), Ordering::Release);
        self.ctl
            .producer
            .cached_other
            .store(head, Ordering::Relaxed);
        self.arena.free_block(old.off, old.log2);
        Ok(())
    }

    fn word(&self, ring: RingRef, at: u32) -> &AtomicU64 {
        // SAFETY: `ring.at` is a unit inside the ring block, 8-aligned (blocks are page
        // aligned); shared memory that lives as long as the process; any bits are a valid
        // `AtomicU64`.
        unsafe { &*self.arena.ptr(ring.at(at)).cast::<AtomicU64>() }
    }

    fn write_header(&self, ring: RingRef, at: u32, len: u32, tag: u32) {
        self.word(ring, at)
            .store((u64::from(tag) << 32) | u64::from(len), Ordering::Relaxed);
    }

    /// Takes the item at the head and hands its bytes to `decode` (called with the consumer
    /// lock held; the item is removed after it returns, whatever it returns).
    pub(crate) fn pop<R>(
        &self,
        wait: Wait,
        decode: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, PopError> {
        let ctl = self.ctl;
        let consumer = &ctl.consumer;
        loop {
            let held = lock(&consumer.lock, wait).ok_or(PopError::Empty)?;
            let head = consumer.end.load(Ordering::Relaxed);
            let mut tail = consumer.cached_other.load(Ordering::Relaxed);
            if pos(head) == pos(tail) {
                tail = ctl.producer.end.load(Ordering::Acquire);
                consumer.cached_other.store(tail, Ordering::Relaxed);
            }
            if pos(head) == pos(tail) {
                drop(held);
                let Wait::Until(deadline) = wait else {
                    return Err(PopError::Empty);
                };
                let available = || {
                    pos(ctl.producer.end.load(Ordering::SeqCst))
                        != pos(consumer.end.load(Ordering::SeqCst))
                };
                if !self.wait_for(&ctl.data, deadline, available) {
                    return Err(PopError::Empty);
                }
                continue;
            }
            let ring = self.ring();
            let (units, blob, result) = match self.read(ring, head, tail, decode) {
                Ok(read) => read,
                Err(e) => {
                    // Never produced by this code; drop everything so the queue stays usable.
                    consumer.end.store(tail, Ordering::SeqCst);
                    return Err(PopError::Corrupt(e));
                }
            };
            hook(HOOK_DIE_IN_GET);
            let new_head = pack(count(head).wrapping_add(1), pos(head).wrapping_add(units));
            consumer.end.store(new_head, Ordering::SeqCst);
            drop(held);
            // Freed only now: a consumer killed before the commit leaves the blob readable.
            drop(blob);
            if ctl.space.count.load(Ordering::SeqCst) > 0 {
                ctl.space.seq.fetch_add(1, Ordering::SeqCst);
                futex::wake(&ctl.space.seq, u32::MAX);
            }
            // Pass the wake-up on while items remain, in case the one woken is not taking them.
            if pos(new_head) != pos(tail) && ctl.data.count.load(Ordering::SeqCst) > 0 {
                ctl.data.seq.fetch_add(1, Ordering::SeqCst);
                futex::wake(&ctl.data.seq, 1);
            }
            return Ok(result);
        }
    }

    /// Reads the record at `head`: (units to advance, the blob to free after the commit,
    /// what `decode` returned).
    fn read<R>(
        &self,
        ring: RingRef,
        head: u64,
        tail: u64,
        decode: impl FnOnce(&[u8]) -> R,
    ) -> Result<(u32, Option<Handle>, R), Error> {
        let corrupt = |what: &str| Error::SharedMemory {
            detail: format!("corrupt queue record: {what}"),
        };
        let cap = ring.cap();
        let avail = pos(tail).wrapping_sub(pos(head));
        let mut at = pos(head);
        let mut skipped = 0;
        let mut header = self.word(ring, at).load(Ordering::Relaxed);
        if (header >> 32) as u32 == TAG_SKIP {
            skipped = header as u32;
            if skipped == 0 || skipped >= avail {
                return Err(corrupt("bad skip"));
            }
            at = at.wrapping_add(skipped);
            header = self.word(ring, at).load(Ordering::Relaxed);
        }
        let (len, tag) = (header as u32, (header >> 32) as u32);
        let units = 1 + match tag {
            TAG_ITEM => (len as usize).div_ceil(UNIT) as u32,
            TAG_BLOB => 1,
            _ => return Err(corrupt("unknown tag")),
        };
        if units > avail - skipped || (at & (cap - 1)) + units > cap {
            return Err(corrupt("record beyond the published end"));
        }
        match tag {
            TAG_ITEM => {
                // SAFETY: the record lies between `head` and the published `tail` and inside
                // the ring (checked above); producers never write there until we move `head`
                // past it, and we hold the consumer lock, so the bytes are stable while the
                // slice lives (it does not outlive `decode`).
                let bytes = unsafe {
                    std::slice::from_raw_parts(
                        self.arena.ptr(ring.at(at.wrapping_add(1))),
                        len as usize,
                    )
                };
                Ok((skipped + units, None, decode(bytes)))
            }
            _ => {
                let word = self.word(ring, at.wrapping_add(1)).load(Ordering::Relaxed);
                let handle = Handle::from_parts(pos(word), count(word), Kind::Blob)
                    .map_err(|e| corrupt(&e))?;
                let body: &BlobSlot = handle.state();
                let block = body.block.load(Ordering::Acquire);
                let blob_len = body.len.load(Ordering::Relaxed);
                if blob_len != len || !self.arena.valid_block(block, len as usize) {
                    return Err(corrupt("bad blob"));
                }
                // SAFETY: the blob's block holds `len` bytes written before the record was
                // published; nobody writes a blob after that, and our reference (the
                // record's) keeps it allocated until after `decode` returns.
                let bytes = unsafe {
                    std::slice::from_raw_parts(self.arena.ptr(block as usize), len as usize)
                };
                let result = decode(bytes);
                Ok((skipped + units, Some(handle), result))
            }
        }
    }

    /// Spins, then sleeps on `sleepers`, until `ready()` or the deadline; whether it is ready.
    fn wait_for(
        &self,
        sleepers: &Sleepers,
        deadline: Option<Instant>,
        ready: impl Fn() -> bool,
    ) -> bool {
        if spin_for(SPIN, deadline, &ready) {
            return true;
        }
        loop {
            sleepers.count.fetch_add(1, Ordering::SeqCst);
            let seq = sleepers.seq.load(Ordering::SeqCst);
            if ready() {
                sleepers.count.fetch_sub(1, Ordering::SeqCst);
                return true;
            }
            let sleep = futex::sleep_for(deadline, Some(WAIT_SLICE));
            if let Ok(sleep) = sleep {
                futex::wait(&sleepers.seq, seq, sleep);
            }
            sleepers.count.fetch_sub(1, Ordering::SeqCst);
            if ready() {
                return true;
            }
            if sleep.is_err() {
                return false;
            }
        }
    }

    /// Counts one `task_done`; `false` (and nothing counted) when every item put is already
    /// done.
    pub(crate) fn task_done(&self) -> bool {
        let tasks = &self.ctl.tasks;
        let mut done = tasks.done.load(Ordering::Acquire);
        loop {
            let put = count(self.ctl.producer.end.load(Ordering::Acquire));
            if put == done {
                return false;
            }
            match tasks.done.compare_exchange_weak(
                done,
                done.wrapping_add(1),
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => done = now,
            }
        }
        let put = count(self.ctl.producer.end.load(Ordering::SeqCst));
        if put == done.wrapping_add(1) && tasks.joiners.load(Ordering::SeqCst) > 0 {
            futex::wake(&tasks.done, u32::MAX);
        }
        true
    }

    /// Items put and not yet marked done.
    pub(crate) fn unfinished(&self) -> u32 {
        let done = self.ctl.tasks.done.load(Ordering::Acquire);
        count(self.ctl.producer.end.load(Ordering::Acquire)).wrapping_sub(done)
    }

    /// Waits until every item put was marked done; whether that happened before the deadline.
    pub(crate) fn join(&self, deadline: Option<Instant>) -> bool {
        let tasks = &self.ctl.tasks;
        let settled = || {
            let done = tasks.done.load(Ordering::SeqCst);
            count(self.ctl.producer.end.load(Ordering::SeqCst)) == done
        };
        if settled() {
            return true;
        }
        loop {
            tasks.joiners.fetch_add(1, Ordering::SeqCst);
            let done = tasks.done.load(Ordering::SeqCst);
            if count(self.ctl.producer.end.load(Ordering::SeqCst)) == done {
                tasks.joiners.fetch_sub(1, Ordering::SeqCst);
                return true;
            }
            let sleep = futex::sleep_for(deadline, Some(WAIT_SLICE));
            if let Ok(sleep) = sleep {
                futex::wait(&tasks.done, done, sleep);
            }
            tasks.joiners.fetch_sub(1, Ordering::SeqCst);
            if settled() {
                return true;
            }
            if sleep.is_err() {
                return false;
            }
        }
    }
}

/// Spins for up to `budget` (and not past `deadline`) until `ready()`.
fn spin_for(budget: Duration, deadline: Option<Instant>, ready: impl Fn() -> bool) -> bool {
    if ready() {
        return true;
    }
    let start = Instant::now();
    let end = match deadline {
        Some(d) => d.min(start + budget),
        None => start + budget,
    };
    loop {
        if futex::spin_until(64, &ready) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
    }
}

/// Copies an encoded item into a blob of its own.
fn store_blob(bytes: &[u8]) -> Result<Handle, Error> {
    let too_large = || Error::SharedMemory {
        detail: format!(
            "an item of {} bytes does not fit in the shared arena",
            bytes.len()
        ),
    };
    let len = u32::try_from(bytes.len()).map_err(|_| too_large())?;
    let log2 = Arena::block_class(bytes.len()).ok_or_else(too_large)?;
    let handle = Handle::new(Kind::Blob)?;
    let arena = handle.arena();
    let block = arena.alloc_block(log2)?;
    // SAFETY: the block is ours alone (just allocated) and at least `bytes.len()` long;
    // `bytes` is process-local memory.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), arena.ptr(block as usize), bytes.len())
    };
    let body: &BlobSlot = handle.state();
    body.len.store(len, Ordering::Relaxed);
    body.log2.store(log2, Ordering::Relaxed);
    body.block.store(block, Ordering::Release);
    Ok(handle)
}

/// Frees a blob's block; called by the arena when the blob's last reference goes.
pub(crate) fn free_blob(arena: &Arena, slot: &Slot) {
    let body: &BlobSlot = slot.state();
    let block = body.block.swap(0, Ordering::Acquire);
    arena.free_block(block, body.log2.load(Ordering::Relaxed));
}

/// Frees a queue's blocks and the blobs still queued in it; called by the arena when the
/// queue's last reference goes (so nobody else can be using it).
pub(crate) fn finalize(arena: &Arena, slot: &Slot) {
    let body: &QueueSlot = slot.state();
    let off = body.control.swap(0, Ordering::Acquire);
    if off == 0 {
        return;
    }
    // SAFETY: as in `control`: the queue's own control block, only atomics.
    let ctl = unsafe { &*arena.ptr(off as usize).cast::<Control>() };
    let ring = RingRef::unpack(ctl.info.ring.load(Ordering::Acquire));
    if ring.off != 0 {
        let word = |at: u32| {
            // SAFETY: a unit of the queue's ring, as in `Ring::word`.
            unsafe { &*arena.ptr(ring.at(at)).cast::<AtomicU64>() }
        };
        let end = pos(ctl.producer.end.load(Ordering::Acquire));
        let mut at = pos(ctl.consumer.end.load(Ordering::Acquire));
        while at != end {
            let header = word(at).load(Ordering::Relaxed);
            let (len, tag) = (header as u32, (header >> 32) as u32);
            let units = match tag {
                TAG_SKIP if len > 0 => len,
                TAG_ITEM => 1 + (len as usize).div_ceil(UNIT) as u32,
                TAG_BLOB => {
                    let blob = word(at.wrapping_add(1)).load(Ordering::Relaxed);
                    arena.release(pos(blob), count(blob));
                    2
                }
                _ => break,
            };
            if units > end.wrapping_sub(at) {
                break;
            }
            at = at.wrapping_add(units);
        }
        arena.free_block(ring.off, ring.log2);
    }
    arena.free_block(off, MIN_BLOCK_LOG2);
}
