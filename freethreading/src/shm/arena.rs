//! The arena: one `memfd` region per program, an allocator whose state lives in the region, and
//! reference-counted handles to the objects in it.
//!
//! # Layout
//!
//! The region is reserved at [`ARENA_SIZE`] with `ftruncate` and mapped `MAP_SHARED |
//! MAP_NORESERVE`: pages cost memory only once touched. The first page is the [`Header`]; after
//! it come fixed-size [`Slot`]s of [`SLOT_SIZE`] bytes, one cache line pair each, so two
//! primitives never share a cache line. A slot is a 16-byte slot header followed by a body that
//! each object kind views as its own `#[repr(C)]` struct of atomics ([`State`]).
//!
//! # Allocation
//!
//! Free slots form a lock-free stack (a Treiber stack whose head carries a 32-bit tag against
//! ABA); fresh slots come from a bump offset. Every step is a single compare-and-swap on the
//! shared header, so processes allocate consistently and a process killed in the middle of an
//! allocation can at worst leak the one slot it was taking, never corrupt the allocator (a
//! lock would have to be recovered from a dead holder instead).
//!
//! # Blocks
//!
//! Objects that need more than a slot (a queue's ring, an item too large for it) take
//! *blocks*: power-of-two spans of 4 KiB to 512 MiB, carved from the top of the region
//! downwards while slots grow upwards. One header word holds both frontiers, so the two never
//! overlap. Each size class has its own lock-free free stack, as slots do. A block has no
//! count or generation of its own: it always belongs to exactly one slot object (a queue, a
//! blob), which frees it when its own last reference goes. Freeing punches the block's pages
//! out of the memfd (all but the first, which holds the free-stack link), so memory that a
//! large item used is given back to the system, not just to the allocator.
//!
//! # Handles, generations and reference counts
//!
//! A slot's `meta` word packs a generation (high 32 bits) and a reference count (low 32 bits).
//! A handle is (arena id, offset, generation) and holds one reference. Freeing a slot bumps its
//! generation, so a handle to a freed object no longer matches and is refused as stale instead
//! of aliasing whatever reuses the slot; every count update checks the generation in the same
//! compare-and-swap, so even a miscounted handle can never touch a reused slot.
//!
//! Serialising a handle takes a reference *for the bytes*, and decoding them adopts it. So
//! `pool.apply(task, (Lock::new(),))` works although the caller's temporary is dropped as soon
//! as the task is encoded, long before a child decodes it. The cost: bytes that are never
//! decoded (a task discarded by `terminate`, a child killed before it read its task) keep
//! their object allocated until the program ends. The last drop, in any process, frees the
//! slot.
//!
//! A process killed while holding handles never drops them, so its references leak the same
//! way. Barriers are the exception: they track which processes hold them, and give back the
//! references of dead ones.
//!
//! # Memory ordering
//!
//! Slot bodies are written only through atomics. An object's zeroed body is published together
//! with its handle: within a process by whatever moves the handle to another thread, across
//! processes by the socket write and read that carry it (both system calls, which order memory).

use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The environment variable that tells a child which inherited descriptor is the arena:
/// `"<fd>:<parent pid>"`.
pub(crate) const ARENA_ENV: &str = "FREETHREADING_ARENA";

/// Bytes reserved for the region (sparse: untouched pages cost nothing).
pub(crate) const ARENA_SIZE: usize = 1 << 30;
/// Bytes per slot.
pub(crate) const SLOT_SIZE: usize = 128;
/// Bytes of a slot usable by the object in it.
pub(crate) const BODY_SIZE: usize = SLOT_SIZE - 16;
/// Offset of the first slot (the first page is the header).
const FIRST_SLOT: u32 = 4096;
const MAGIC: u64 = u64::from_le_bytes(*b"ftarena2");
/// log2 of the smallest block (one page).
pub(crate) const MIN_BLOCK_LOG2: u32 = 12;
/// log2 of the largest block (half the region).
pub(crate) const MAX_BLOCK_LOG2: u32 = 29;
const BLOCK_CLASSES: usize = (MAX_BLOCK_LOG2 - MIN_BLOCK_LOG2 + 1) as usize;

/// What a slot holds, so a handle decoded as the wrong type is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    Lock = 1,
    RLock = 2,
    Semaphore = 3,
    Condition = 4,
    Event = 5,
    Barrier = 6,
    /// A chunk of a per-process table, chained from its owner's body.
    TableChunk = 7,
    /// One waiter of a condition.
    Waiter = 8,
    BoundedSemaphore = 9,
    /// A queue: its body points to its control block, which points to its ring.
    Queue = 10,
    /// An encoded item too large for a queue's ring, in a block of its own.
    Blob = 11,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Lock => "Lock",
            Kind::RLock => "RLock",
            Kind::Semaphore => "Semaphore",
            Kind::Condition => "Condition",
            Kind::Event => "Event",
            Kind::Barrier => "Barrier",
            Kind::TableChunk => "table chunk",
            Kind::Waiter => "condition waiter",
            Kind::BoundedSemaphore => "BoundedSemaphore",
            Kind::Queue => "Queue",
            Kind::Blob => "queue item",
        }
    }

    fn from_u32(v: u32) -> Option<Kind> {
        Some(match v {
            1 => Kind::Lock,
            2 => Kind::RLock,
            3 => Kind::Semaphore,
            4 => Kind::Condition,
            5 => Kind::Event,
            6 => Kind::Barrier,
            7 => Kind::TableChunk,
            8 => Kind::Waiter,
            9 => Kind::BoundedSemaphore,
            10 => Kind::Queue,
            11 => Kind::Blob,
            _ => return None,
        })
    }
}

/// The view an object kind has of a slot body.
///
/// # Safety
///
/// Implementors must be `#[repr(C)]`, made only of atomics (so every bit pattern, and all
/// zeroes in particular, is a valid value and shared access from several processes is
/// defined), at most [`BODY_SIZE`] bytes and aligned to at most 16. The first field must be an
/// `AtomicU32` *chain* word: the offset of the first slot of a chain the object owns (0 when
/// none), freed together with the object.
pub(crate) unsafe trait State: Sync + 'static {}

#[repr(C)]
struct Header {
    magic: AtomicU64,
    /// Random, so a handle from another program's arena is told apart.
    id: AtomicU64,
    /// Free-stack head: tag in the high 32 bits, slot offset in the low 32 (0 = empty).
    free: AtomicU64,
    /// Both frontiers: the next never-used slot offset (low 32 bits, grows upwards) and the
    /// lowest offset handed out as a block (high 32 bits, grows downwards).
    bounds: AtomicU64,
    /// Slots in use.
    live: AtomicU32,
    /// Blocks in use.
    blocks_live: AtomicU32,
    /// One free stack per block size class, as `free` (tag high, block offset low).
    block_free: [AtomicU64; BLOCK_CLASSES],
}

/// One slot: its header (generation and count, kind, free-stack link) and the body.
#[repr(C, align(128))]
pub(crate) struct Slot {
    meta: AtomicU64,
    kind: AtomicU32,
    next_free: AtomicU32,
    body: [AtomicU32; BODY_SIZE / 4],
}

const _: () = assert!(size_of::<Slot>() == SLOT_SIZE);
const _: () = assert!(size_of::<Header>() <= FIRST_SLOT as usize);

impl Slot {
    /// The body viewed as `T`.
    pub(crate) fn state<T: State>(&self) -> &T {
        const { assert!(size_of::<T>() <= BODY_SIZE && align_of::<T>() <= 16) };
        // SAFETY: the body is BODY_SIZE bytes at a 16-aligned offset of a 128-aligned slot,
        // enough for T by the assertion above; `State` guarantees T is only atomics, valid for
        // any bit pattern and for shared access. The reference lives as long as `self`.
        unsafe { &*self.body.as_ptr().cast::<T>() }
    }

    /// The chain word every `State` starts with.
    fn chain(&self) -> &AtomicU32 {
        &self.body[0]
    }
}

/// The process's mapping of the program's arena.
#[derive(Debug)]
pub(crate) struct Arena {
    base: NonNull<u8>,
    fd: RawFd,
    id: u64,
}

// SAFETY: the mapping is shared memory accessed only through atomics; the pointer and fd are
// plain values valid for the life of the process (the arena is never unmapped).
unsafe impl Send for Arena {}
// SAFETY: as above: all access through `&Arena` goes through atomics in the mapping.
unsafe impl Sync for Arena {}

static ARENA: OnceLock<Result<Arena, Error>> = OnceLock::new();

fn os_error(what: &str) -> Error {
    Error::SharedMemory {
        detail: format!("{what}: {}", std::io::Error::last_os_error()),
    }
}

impl Arena {
    /// The program's arena: adopted from the parent if this process is one of our children,
    /// created otherwise.
    pub(crate) fn get() -> Result<&'static Arena, Error> {
        ARENA
            .get_or_init(|| match Arena::inherited() {
                Some(arena) => Ok(arena),
                None => Arena::create(),
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    #[cfg(target_os = "linux")]
    fn create() -> Result<Arena, Error> {
        // SAFETY: a NUL-terminated name and valid flags; the result is checked.
        let fd = unsafe { libc::memfd_create(c"freethreading-arena".as_ptr(), libc::MFD_CLOEXEC) };
        if fd == -1 {
            return Err(os_error("memfd_create"));
        }
        // SAFETY: `fd` is the memfd just created and owned here.
        if unsafe { libc::ftruncate(fd, ARENA_SIZE as libc::off_t) } == -1 {
            let e = os_error("ftruncate of the shared arena");
            // SAFETY: closing our own descriptor once.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        let arena = Arena::map(fd).inspect_err(|_| {
            // SAFETY: closing our own descriptor once.
            unsafe { libc::close(fd) };
        })?;
        let id = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(super::pid());
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            h.finish() | 1
        };
        let header = arena.header();
        header.id.store(id, Ordering::Relaxed);
        header.bounds.store(
            (ARENA_SIZE as u64) << 32 | u64::from(FIRST_SLOT),
            Ordering::Relaxed,
        );
        header.magic.store(MAGIC, Ordering::Release);
        Ok(Arena { id, ..arena })
    }

    #[cfg(not(target_os = "linux"))]
    fn create() -> Result<Arena, Error> {
        Err(Error::Unsupported(
            "shared synchronisation primitives need Linux (memfd and futex)",
        ))
    }

    /// Maps `fd` (checked to be an arena-sized file).
    fn map(fd: RawFd) -> Result<Arena, Error> {
        // SAFETY: a fresh mapping of a descriptor we hold; the kernel picks the address and the
        // result is checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ARENA_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | map_noreserve(),
                fd,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(os_error("mmap of the shared arena"));
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or_else(|| os_error("mmap"))?;
        Ok(Arena { base, fd, id: 0 })
    }

    /// The arena the parent handed down, if this process is a child of this program and the
    /// descriptor checks out (a grandchild that only inherited the variable is not).
    fn inherited() -> Option<Arena> {
        let value = std::env::var(ARENA_ENV).ok()?;
        let (fd, ppid) = value.split_once(':')?;
        let fd: RawFd = fd.parse().ok()?;
        let ppid: libc::pid_t = ppid.parse().ok()?;
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != ppid {
            return None;
        }
        // SAFETY: an all-zero stat is a valid out-buffer for fstat, which fills it or fails.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on a descriptor number; an invalid one yields -1.
        if unsafe { libc::fstat(fd, &mut st) } == -1 || st.st_size as usize != ARENA_SIZE {
            return None;
        }
        // SAFETY: our own inherited descriptor; set close-on-exec again so programs this
        // process runs do not inherit it (children of this library get it explicitly).
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        let arena = Arena::map(fd).ok()?;
        let header = arena.header();
        if header.magic.load(Ordering::Acquire) != MAGIC {
            return None;
        }
        let id = header.id.load(Ordering::Relaxed);
        Some(Arena { id, ..arena })
    }

    fn header(&self) -> &Header {
        // SAFETY: the header sits at offset 0 of a mapping of ARENA_SIZE bytes that lives as
        // long as the process; it is only atomics, valid for any content.
        unsafe { &*self.base.as_ptr().cast::<Header>() }
    }

    /// The slot at `off`, which must be a slot offset this arena handed out.
    pub(crate) fn slot(&self, off: u32) -> &Slot {
        debug_assert!(self.valid_offset(off));
        // SAFETY: `off` is a slot offset inside the mapping (checked when it entered the
        // process: allocation or `Handle::adopt`); slots are only atomics.
        unsafe { &*self.base.as_ptr().add(off as usize).cast::<Slot>() }
    }

    fn valid_offset(&self, off: u32) -> bool {
        off >= FIRST_SLOT
            && ((off - FIRST_SLOT) as usize).is_multiple_of(SLOT_SIZE)
            && off < self.slot_frontier()
            && off as usize + SLOT_SIZE <= ARENA_SIZE
    }

    /// Takes a slot for a new object of `kind`: zeroed body, reference count 1.
    pub(crate) fn alloc(&self, kind: Kind) -> Result<(u32, u32), Error> {
        let header = self.header();
        let off = loop {
            let head = header.free.load(Ordering::Acquire);
            let off = head as u32;
            if off == 0 {
                break self.bump()?;
            }
            let next = self.slot(off).next_free.load(Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(next);
            if header
                .free
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break off;
            }
        };
        let slot = self.slot(off);
        for word in &slot.body {
            word.store(0, Ordering::Relaxed);
        }
        slot.kind.store(kind as u32, Ordering::Relaxed);
        let generation = match (slot.meta.load(Ordering::Relaxed) >> 32) as u32 {
            0 => 1,
            g => g,
        };
        slot.meta
            .store((u64::from(generation) << 32) | 1, Ordering::Release);
        header.live.fetch_add(1, Ordering::Relaxed);
        Ok((off, generation))
    }

    /// The next never-used slot offset.
    fn slot_frontier(&self) -> u32 {
        self.header().bounds.load(Ordering::Acquire) as u32
    }

    fn full_error() -> Error {
        Error::SharedMemory {
            detail: format!(
                "the shared arena is full ({} MiB of primitives and queued items are alive)",
                ARENA_SIZE >> 20
            ),
        }
    }

    fn bump(&self) -> Result<u32, Error> {
        let bounds = &self.header().bounds;
        let mut now = bounds.load(Ordering::Relaxed);
        loop {
            let (off, floor) = (now as u32, (now >> 32) as usize);
            if off as usize + SLOT_SIZE > floor {
                return Err(Arena::full_error());
            }
            let new = (now & !0xFFFF_FFFF) | u64::from(off + SLOT_SIZE as u32);
            match bounds.compare_exchange_weak(now, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Ok(off),
                Err(seen) => now = seen,
            }
        }
    }

    /// The size class (log2 of the block size) that holds `bytes`, if any does.
    pub(crate) fn block_class(bytes: usize) -> Option<u32> {
        let log2 = bytes.max(1).next_power_of_two().trailing_zeros();
        (log2 <= MAX_BLOCK_LOG2).then_some(log2.max(MIN_BLOCK_LOG2))
    }

    /// Takes a block of `1 << log2` bytes (a class from [`block_class`](Self::block_class)).
    /// Its content is unspecified; the caller owns it until [`free_block`](Self::free_block).
    pub(crate) fn alloc_block(&self, log2: u32) -> Result<u32, Error> {
        debug_assert!((MIN_BLOCK_LOG2..=MAX_BLOCK_LOG2).contains(&log2));
        let header = self.header();
        let stack = &header.block_free[(log2 - MIN_BLOCK_LOG2) as usize];
        let off = loop {
            let head = stack.load(Ordering::Acquire);
            let off = head as u32;
            if off == 0 {
                break self.carve(1 << log2)?;
            }
            // The link may be garbage if the block was taken meanwhile; the tag makes the
            // compare-and-swap fail then.
            let next = self.block_word(off).load(Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(next);
            if stack
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break off;
            }
        };
        header.blocks_live.fetch_add(1, Ordering::Relaxed);
        Ok(off)
    }

    /// Carves a never-used block of `size` bytes below the block frontier.
    fn carve(&self, size: usize) -> Result<u32, Error> {
        let bounds = &self.header().bounds;
        let mut now = bounds.load(Ordering::Relaxed);
        loop {
            let (slots, floor) = (now as u32 as usize, (now >> 32) as usize);
            let Some(off) = floor.checked_sub(size).filter(|&off| off >= slots) else {
                return Err(Arena::full_error());
            };
            let new = ((off as u64) << 32) | (now & 0xFFFF_FFFF);
            match bounds.compare_exchange_weak(now, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Ok(off as u32),
                Err(seen) => now = seen,
            }
        }
    }

    /// Gives back a block taken with `alloc_block(log2)`; nobody may use it any more.
    pub(crate) fn free_block(&self, off: u32, log2: u32) {
        if off == 0 || !(MIN_BLOCK_LOG2..=MAX_BLOCK_LOG2).contains(&log2) {
            return;
        }
        let size = 1usize << log2;
        if size > 4096 {
            self.punch(off as usize + 4096, size - 4096);
        }
        let header = self.header();
        let stack = &header.block_free[(log2 - MIN_BLOCK_LOG2) as usize];
        let link = self.block_word(off);
        let mut head = stack.load(Ordering::Relaxed);
        loop {
            link.store(head as u32, Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(off);
            match stack.compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => head = now,
            }
        }
        header.blocks_live.fetch_sub(1, Ordering::Relaxed);
    }

    /// Returns the pages of `[off, off + len)` to the system; they read as zeroes afterwards.
    #[cfg(target_os = "linux")]
    fn punch(&self, off: usize, len: usize) {
        // SAFETY: the range lies inside the arena's memfd; punching a hole only drops pages
        // nobody uses (the block is free), and the file keeps its size.
        unsafe {
            libc::fallocate(
                self.fd,
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as libc::off_t,
                len as libc::off_t,
            );
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn punch(&self, _off: usize, _len: usize) {}

    /// The first word of a block: its free-stack link while it is free.
    fn block_word(&self, off: u32) -> &AtomicU32 {
        // SAFETY: `off` is a block offset inside the mapping, page aligned; the mapping is
        // shared memory that lives as long as the process, and any bit pattern is a valid
        // `AtomicU32`.
        unsafe { &*self.base.as_ptr().add(off as usize).cast::<AtomicU32>() }
    }

    /// The address of byte `off` of the region.
    ///
    /// Callers use it for the bytes of blocks they own, under their own protocol for who may
    /// write them when (see `shm::ring`).
    pub(crate) fn ptr(&self, off: usize) -> *mut u8 {
        debug_assert!(off <= ARENA_SIZE);
        // SAFETY: `off` is at most the mapping's length, so the result stays inside it (or one
        // past its end).
        unsafe { self.base.as_ptr().add(off) }
    }

    /// Whether `[off, off + len)` is inside the block area handed out so far.
    pub(crate) fn valid_block(&self, off: u32, len: usize) -> bool {
        let floor = (self.header().bounds.load(Ordering::Acquire) >> 32) as usize;
        (off as usize) >= floor
            && (off as usize).is_multiple_of(4096)
            && (off as usize)
                .checked_add(len)
                .is_some_and(|end| end <= ARENA_SIZE)
    }

    /// Drops one reference to object `off` of `generation`; the last one frees it and its
    /// chain. A reference to an object that is already gone is ignored.
    pub(crate) fn release(&self, off: u32, generation: u32) {
        if self.update_count(off, generation, |refs| refs.checked_sub(1)) == Some(0) {
            self.free(off);
        }
    }

    /// Gives back `extra` references at once (those of a dead process); never the last one,
    /// since the caller holds a reference itself.
    pub(crate) fn release_many(&self, off: u32, generation: u32, extra: u32) {
        self.update_count(off, generation, |refs| (refs > extra).then(|| refs - extra));
    }

    /// Applies `f` to the count of object `off` if it still has `generation`; returns the new
    /// count, or `None` when the generation differs or `f` refuses.
    fn update_count(
        &self,
        off: u32,
        generation: u32,
        f: impl Fn(u32) -> Option<u32>,
    ) -> Option<u32> {
        let meta = &self.slot(off).meta;
        let mut now = meta.load(Ordering::Acquire);
        loop {
            if (now >> 32) as u32 != generation {
                return None;
            }
            let refs = f(now as u32)?;
            let new = (now & !0xFFFF_FFFF) | u64::from(refs);
            match meta.compare_exchange_weak(now, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(refs),
                Err(seen) => now = seen,
            }
        }
    }

    /// Frees a slot whose count is zero (or a chain slot owned by one object), then its chain.
    pub(crate) fn free(&self, mut off: u32) {
        while off != 0 {
            let slot = self.slot(off);
            match Kind::from_u32(slot.kind.load(Ordering::Relaxed)) {
                Some(Kind::Queue) => super::ring::finalize(self, slot),
                Some(Kind::Blob) => super::ring::free_blob(self, slot),
                _ => {}
            }
            let next = slot.chain().swap(0, Ordering::Relaxed);
            let generation = ((slot.meta.load(Ordering::Relaxed) >> 32) as u32).wrapping_add(1);
            let generation = if generation == 0 { 1 } else { generation };
            // Refuse every outstanding handle from now on.
            slot.meta
                .store(u64::from(generation) << 32, Ordering::Release);
            slot.kind.store(0, Ordering::Relaxed);
            let header = self.header();
            let mut head = header.free.load(Ordering::Relaxed);
            loop {
                slot.next_free.store(head as u32, Ordering::Relaxed);
                let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(off);
                match header.free.compare_exchange_weak(
                    head,
                    new,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => head = now,
                }
            }
            header.live.fetch_sub(1, Ordering::Relaxed);
            off = next;
        }
    }

    /// (slots in use, bytes of the region ever handed out as slots).
    pub(crate) fn usage(&self) -> (u64, u64) {
        let header = self.header();
        (
            u64::from(header.live.load(Ordering::Relaxed)),
            u64::from(self.slot_frontier() - FIRST_SLOT),
        )
    }

    /// (blocks in use, bytes of the region ever handed out as blocks).
    pub(crate) fn block_usage(&self) -> (u64, u64) {
        let header = self.header();
        let floor = header.bounds.load(Ordering::Relaxed) >> 32;
        (
            u64::from(header.blocks_live.load(Ordering::Relaxed)),
            ARENA_SIZE as u64 - floor,
        )
    }
}

#[cfg(target_os = "linux")]
fn map_noreserve() -> libc::c_int {
    libc::MAP_NORESERVE
}

#[cfg(not(target_os = "linux"))]
fn map_noreserve() -> libc::c_int {
    0
}

/// A handle as it crosses a process boundary.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct RawHandle {
    arena: u64,
    off: u32,
    generation: u32,
}

/// One counted reference to an object in the arena.
pub(crate) struct Handle {
    arena: &'static Arena,
    slot: &'static Slot,
    off: u32,
    generation: u32,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}/{}", self.off, self.generation)
    }
}

impl Handle {
    /// Allocates a new object of `kind`.
    pub(crate) fn new(kind: Kind) -> Result<Handle, Error> {
        let arena = Arena::get()?;
        let (off, generation) = arena.alloc(kind)?;
        Ok(Handle {
            arena,
            slot: arena.slot(off),
            off,
            generation,
        })
    }

    /// Adopts the reference that travelled with a received handle, checking it is live and
    /// of `kind`.
    pub(crate) fn adopt(raw: RawHandle, kind: Kind) -> Result<Handle, String> {
        let arena = Arena::get().map_err(|e| e.to_string())?;
        if raw.arena != arena.id {
            return Err(format!(
                "the {} handle belongs to another program's shared memory",
                kind.name()
            ));
        }
        if !arena.valid_offset(raw.off) {
            return Err(format!(
                "invalid {} handle offset {:#x}",
                kind.name(),
                raw.off
            ));
        }
        let slot = arena.slot(raw.off);
        let meta = slot.meta.load(Ordering::Acquire);
        if (meta >> 32) as u32 != raw.generation || meta as u32 == 0 {
            return Err(format!(
                "stale {} handle: the object no longer exists (were these bytes decoded twice?)",
                kind.name()
            ));
        }
        let handle = Handle {
            arena,
            slot,
            off: raw.off,
            generation: raw.generation,
        };
        let found = slot.kind.load(Ordering::Relaxed);
        if found != kind as u32 {
            let found = Kind::from_u32(found).map_or("unknown", Kind::name);
            return Err(format!("expected a {} handle, got a {found}", kind.name()));
        }
        Ok(handle)
    }

    /// (offset, generation), giving up this handle's reference to whoever keeps the pair
    /// (a queue record that carries a blob); [`from_parts`](Self::from_parts) takes it back.
    pub(crate) fn into_parts(self) -> (u32, u32) {
        let parts = self.parts();
        std::mem::forget(self);
        parts
    }

    /// (offset, generation), without a reference.
    pub(crate) fn parts(&self) -> (u32, u32) {
        (self.off, self.generation)
    }

    /// Adopts the reference kept by [`into_parts`](Self::into_parts) in this program's arena.
    pub(crate) fn from_parts(off: u32, generation: u32, kind: Kind) -> Result<Handle, String> {
        let arena = Arena::get().map_err(|e| e.to_string())?;
        Handle::adopt(
            RawHandle {
                arena: arena.id,
                off,
                generation,
            },
            kind,
        )
    }

    /// The handle to send: takes the reference the receiver will adopt.
    pub(crate) fn raw_for_transfer(&self) -> RawHandle {
        self.slot.meta.fetch_add(1, Ordering::Relaxed);
        self.raw()
    }

    /// The handle's identity, without a reference.
    pub(crate) fn raw(&self) -> RawHandle {
        RawHandle {
            arena: self.arena.id,
            off: self.off,
            generation: self.generation,
        }
    }

    pub(crate) fn arena(&self) -> &'static Arena {
        self.arena
    }

    /// Gives back `extra` references taken by other (dead) processes.
    pub(crate) fn release_foreign(&self, extra: u32) {
        self.arena.release_many(self.off, self.generation, extra);
    }

    /// The object's body.
    pub(crate) fn state<T: State>(&self) -> &'static T {
        self.slot.state()
    }
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        // Relaxed is enough for an increment from a count we already hold (as `Arc` does).
        self.slot.meta.fetch_add(1, Ordering::Relaxed);
        Handle { ..*self }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.arena.release(self.off, self.generation);
    }
}

/// (objects alive in the arena, bytes of the arena ever handed out), or zeros without one.
pub(crate) fn usage() -> (u64, u64) {
    Arena::get().map_or((0, 0), Arena::usage)
}

/// (blocks alive in the arena, bytes ever handed out as blocks), or zeros without one.
pub(crate) fn block_usage() -> (u64, u64) {
    Arena::get().map_or((0, 0), Arena::block_usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{Event, Lock};

    #[test]
    fn decoding_the_same_bytes_twice_is_refused_as_stale() {
        let lock = Lock::new();
        let bytes = postcard::to_allocvec(&lock).unwrap();
        drop(lock);
        // The bytes' own reference keeps the object alive until they are decoded.
        let first: Lock = postcard::from_bytes(&bytes).unwrap();
        drop(first); // the last reference: the slot is freed
        let reuse = Lock::new(); // likely reuses the slot
        assert!(postcard::from_bytes::<Lock>(&bytes).is_err());
        assert!(!reuse.locked());
        let raw: RawHandle = postcard::from_bytes(&bytes).unwrap();
        let err = Handle::adopt(raw, Kind::Lock).unwrap_err();
        assert!(err.contains("stale"), "{err}");
    }

    #[test]
    fn wrong_kind_wrong_arena_and_bad_offsets_are_refused() {
        let event = Event::new();
        let raw =
            postcard::from_bytes::<RawHandle>(&postcard::to_allocvec(&event).unwrap()).unwrap();
        let err = Handle::adopt(raw, Kind::Lock).unwrap_err();
        // The refused bytes gave their reference back; `event` still holds its own.
        assert!(err.contains("expected a Lock handle, got a Event"), "{err}");
        assert!(!event.is_set());

        let other = RawHandle {
            arena: raw.arena ^ 1,
            ..raw
        };
        assert!(
            Handle::adopt(other, Kind::Event)
                .unwrap_err()
                .contains("another program")
        );
        for off in [0, 7, FIRST_SLOT + 1, u32::MAX - 3] {
            let bad = RawHandle { off, ..raw };
            assert!(
                Handle::adopt(bad, Kind::Event)
                    .unwrap_err()
                    .contains("offset")
            );
        }
    }

    #[test]
    fn release_of_a_reused_slot_is_ignored() {
        let arena = Arena::get().unwrap();
        let (off, generation) = arena.alloc(Kind::Event).unwrap();
        arena.release(off, generation);
        let (again, new_generation) = arena.alloc(Kind::Event).unwrap();
        if again == off {
            assert_ne!(generation, new_generation);
            // A stray release with the old generation must not touch the new object.
            arena.release(off, generation);
            assert_eq!(arena.slot(off).meta.load(Ordering::Relaxed) as u32, 1);
        }
        arena.release(again, new_generation);
    }

    #[test]
    fn blocks_are_reused_by_class_and_never_overlap_slots() {
        let arena = Arena::get().unwrap();
        assert_eq!(Arena::block_class(1), Some(MIN_BLOCK_LOG2));
        assert_eq!(Arena::block_class(4097), Some(13));
        assert_eq!(Arena::block_class(64 << 20), Some(26));
        assert_eq!(Arena::block_class((64 << 20) + 1), Some(27));
        assert_eq!(Arena::block_class(1 << 30), None);
        // A class no other unit test uses, so the reuse order is deterministic.
        let a = arena.alloc_block(21).unwrap();
        let b = arena.alloc_block(21).unwrap();
        assert_ne!(a, b);
        assert!(a.abs_diff(b) >= 1 << 21, "blocks overlap");
        assert!(arena.valid_block(a, 1 << 21));
        let (slot, _) = arena.alloc(Kind::Event).unwrap();
        assert!((slot as usize) + SLOT_SIZE <= a.min(b) as usize);
        arena.free_block(a, 21);
        let again = arena.alloc_block(21).unwrap();
        assert_eq!(again, a, "a freed block of the class is reused first");
        // A freed block's pages read as zeroes again (given back to the system).
        // SAFETY: the block is ours; plain byte writes and reads inside it.
        unsafe {
            arena.ptr(again as usize + 8192).write(0xAB);
        }
        arena.free_block(again, 21);
        let third = arena.alloc_block(21).unwrap();
        assert_eq!(third, a);
        // SAFETY: as above.
        assert_eq!(unsafe { arena.ptr(third as usize + 8192).read() }, 0);
        arena.free_block(third, 21);
        arena.free_block(b, 21);
        arena.release(slot, 1);
    }
}
