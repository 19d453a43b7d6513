//! A page of shared memory per child in which it records the task it is running.
//!
//! A child batches its answers, so when it dies the parent cannot tell from the socket alone
//! which of its unanswered tasks was running: some may have finished with their answers still
//! in the dead child's buffer. Before each task the child stores the task's id here (a single
//! store, no system call) and clears it afterwards; after a death the parent reads it to blame
//! exactly the running task. The page is a `memfd`, inherited by that child alone.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

const PAGE: usize = 4096;

/// The mapped page. Word 0 holds the id of the running task, or 0 between tasks.
#[derive(Debug)]
pub(crate) struct ProgressPage {
    base: NonNull<AtomicU64>,
    fd: Option<OwnedFd>,
}

// SAFETY: the page is only accessed through atomics.
unsafe impl Send for ProgressPage {}
// SAFETY: as above.
unsafe impl Sync for ProgressPage {}

impl ProgressPage {
    /// A new page for a child about to be spawned (parent side).
    pub(crate) fn create() -> io::Result<Self> {
        // SAFETY: a valid NUL-terminated name and flags; the result is checked.
        let fd =
            unsafe { libc::memfd_create(c"freethreading-progress".as_ptr(), libc::MFD_CLOEXEC) };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: memfd_create returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ftruncate on our own memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), PAGE as libc::off_t) } == -1 {
            return Err(io::Error::last_os_error());
        }
        let base = map(fd.as_raw_fd())?;
        Ok(ProgressPage { base, fd: Some(fd) })
    }

    /// Maps the page a parent passed down (child side). The descriptor is closed after mapping.
    pub(crate) fn adopt(fd: RawFd) -> io::Result<Self> {
        // SAFETY: the parent created this descriptor for this process alone; we take it over.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let base = map(fd.as_raw_fd())?;
        Ok(ProgressPage { base, fd: None })
    }

    /// The descriptor to hand to the child (parent side).
    pub(crate) fn fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    fn word(&self) -> &AtomicU64 {
        // SAFETY: the mapping is PAGE bytes, aligned to a page, and lives as long as `self`.
        unsafe { self.base.as_ref() }
    }

    /// Records the running task (child side); 0 means none.
    pub(crate) fn set_running(&self, task: u64) {
        self.word().store(task, Ordering::Release);
    }

    /// The task the child was running (parent side, after its death); `None` if it was idle.
    pub(crate) fn running(&self) -> Option<u64> {
        match self.word().load(Ordering::Acquire) {
            0 => None,
            task => Some(task),
        }
    }
}

fn map(fd: RawFd) -> io::Result<NonNull<AtomicU64>> {
    // SAFETY: a fresh shared mapping of PAGE bytes of a memfd at least that large; the result
    // is checked against MAP_FAILED.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

impl Drop for ProgressPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no reference to it outlives self.
        unsafe { libc::munmap(self.base.as_ptr().cast(), PAGE) };
    }
}
