//! User-mode memory of the simulated process: where the OS's present surfaces live.
//!
//! `pSource` of `DxgkDdiPresentDisplayOnly` may be a user-mode address, whose pages the user can
//! decommit at any moment; on Windows the driver must probe and lock them
//! (`MmProbeAndLockPages` inside `__try`) before it reads them. To make a read that skips the
//! probe fail a test, a [`UserBuffer`] is a private `mmap` of its own pages, kept `PROT_NONE`
//! except while the driver holds them locked through the OS layer
//! (`viogpudo::os::probe_and_lock`, which reaches `probe_and_lock` here through
//! [`crate::SimEnv`]): a direct read is a SIGSEGV of the test process. One more `PROT_NONE` page
//! follows each buffer, never lockable, so a read past the end faults too.
//!
//! A test can make the tail of a buffer invalid ([`UserBuffer::decommit_from`],
//! [`UserBuffer::decommit_last_page`]): those pages stay `PROT_NONE`, and a probe of a range
//! that reaches them fails as Windows' does (`STATUS_ACCESS_VIOLATION`), locking nothing.
//!
//! Buffers are registered process-wide (addresses are unique); each remembers the thread that
//! made it, the simulated process whose address space it is in: a probe from another thread
//! would, on Windows, look at another process's memory, and is reported as a broken rule.
//!
//! `libc` gives `mmap`/`mprotect`/`munmap` (std has none); it is already the guest runner's
//! dependency for mapping the PCI BARs.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::thread::ThreadId;

/// Why a probe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeError {
    /// The range is not entirely valid user memory (MmProbeAndLockPages raises
    /// STATUS_ACCESS_VIOLATION).
    Fault,
    /// The buffer belongs to another thread's (simulated process's) address space.
    OtherThread,
}

/// One registered buffer.
#[derive(Debug)]
struct Region {
    /// Bytes that may be locked (whole pages, without the trailing guard page).
    len: usize,
    /// Offset of the first decommitted page (`len` when none is).
    valid_len: usize,
    /// Outstanding locks.
    locks: usize,
    /// The thread (simulated process) whose memory this is.
    owner: ThreadId,
    /// The byte range (offset, length) of the last successful probe, for tests to check.
    last_lock: Option<(usize, usize)>,
    /// The pages (offset range) made readable since the buffer was last all `PROT_NONE`: what
    /// the last unlock protects again, so an unlock costs what its locks covered, as
    /// MmUnlockPages does, not the whole buffer.
    readable: Option<(usize, usize)>,
}

static REGIONS: Mutex<BTreeMap<usize, Region>> = Mutex::new(BTreeMap::new());

fn regions() -> MutexGuard<'static, BTreeMap<usize, Region>> {
    REGIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(1)
}

/// The registered region holding `address`: its base and entry.
fn find(map: &mut BTreeMap<usize, Region>, address: usize) -> Option<(usize, &mut Region)> {
    let (&base, region) = map.range_mut(..=address).next_back()?;
    (address < base + region.len).then_some((base, region))
}

/// Changes the protection of `len` bytes (whole pages) at `base`.
fn protect(base: usize, len: usize, prot: libc::c_int) {
    if len == 0 {
        return;
    }
    // SAFETY: `base..base + len` lies inside a mapping this module made and still owns (the
    // caller found it in the registry, under its lock, so it is not unmapped meanwhile).
    let rc = unsafe { libc::mprotect(base as *mut c_void, len, prot) };
    assert_eq!(rc, 0, "mprotect failed: {}", io::Error::last_os_error());
}

/// Whether `address` lies in a user buffer.
pub(crate) fn is_user_address(address: usize) -> bool {
    find(&mut regions(), address).is_some()
}

/// MmProbeAndLockPages(UserMode, IoReadAccess) of `len` (> 0) bytes at `address`: the pages
/// become readable until the matching [`unlock`].
pub(crate) fn probe_and_lock(address: usize, len: usize) -> Result<(), ProbeError> {
    let mut map = regions();
    let (base, region) = find(&mut map, address).ok_or(ProbeError::Fault)?;
    if region.owner != std::thread::current().id() {
        return Err(ProbeError::OtherThread);
    }
    let offset = address - base;
    let end = offset.checked_add(len).ok_or(ProbeError::Fault)?;
    if len == 0 || end > region.valid_len {
        return Err(ProbeError::Fault);
    }
    let page = page_size();
    let first = offset / page * page;
    let last = end.div_ceil(page) * page;
    protect(base + first, last - first, libc::PROT_READ);
    region.locks += 1;
    region.last_lock = Some((offset, len));
    region.readable = Some(match region.readable {
        Some((start, end)) => (start.min(first), end.max(last)),
        None => (first, last),
    });
    Ok(())
}

/// MmUnlockPages of a range [`probe_and_lock`] locked. When the last lock of the buffer goes,
/// it is `PROT_NONE` again. An unlock of a buffer that holds no lock is an error (the text).
pub(crate) fn unlock(address: usize, _len: usize) -> Result<(), String> {
    let mut map = regions();
    let Some((base, region)) = find(&mut map, address) else {
        return Err(format!(
            "MmUnlockPages of {address:#x}, which is no locked user memory"
        ));
    };
    if region.locks == 0 {
        return Err(format!(
            "MmUnlockPages of {address:#x}, whose pages are not locked"
        ));
    }
    region.locks -= 1;
    if region.locks == 0 {
        if let Some((start, end)) = region.readable.take() {
            protect(base + start, end - start, libc::PROT_NONE);
        }
    }
    Ok(())
}

/// Locks still held on the calling thread's buffers (none may outlive the DDI that took them:
/// on Windows the pages would stay locked until the process exits, then bugcheck
/// PROCESS_HAS_LOCKED_PAGES).
pub(crate) fn locks_held_by_current_thread() -> usize {
    let me = std::thread::current().id();
    regions()
        .values()
        .filter(|r| r.owner == me)
        .map(|r| r.locks)
        .sum()
}

/// Pages of the simulated process's user memory holding a copy of some bytes (a present's
/// source surface): unreadable until the driver probes and locks them; unmapped on drop.
#[derive(Debug)]
pub struct UserBuffer {
    base: usize,
    /// Registered (lockable) bytes, whole pages.
    mapped: usize,
    /// Bytes copied in.
    len: usize,
}

impl UserBuffer {
    /// Maps fresh pages (and a guard page after them), copies `bytes` in and makes them
    /// `PROT_NONE`. At least one page is mapped, even for no bytes.
    pub fn copy_of(bytes: &[u8]) -> io::Result<Self> {
        let page = page_size();
        let len = bytes.len().max(1).div_ceil(page) * page;
        let total = len + page;
        // SAFETY: an anonymous private mapping at an address of the kernel's choice touches no
        // existing memory; the result is checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the mapping is `total >= bytes.len()` writable bytes that nothing else
        // references; the source is a distinct live slice.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.cast::<u8>(), bytes.len()) };
        let base = base as usize;
        protect(base, total, libc::PROT_NONE);
        regions().insert(
            base,
            Region {
                len,
                valid_len: len,
                locks: 0,
                owner: std::thread::current().id(),
                last_lock: None,
                readable: None,
            },
        );
        Ok(Self {
            base,
            mapped: len,
            len: bytes.len(),
        })
    }

    /// The user-mode address of the first byte (what goes into `pSource`).
    pub fn address(&self) -> *mut c_void {
        self.base as *mut c_void
    }

    /// Bytes copied in.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no bytes were copied in.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Decommits the page holding byte `offset` and every page after it: they stay
    /// `PROT_NONE`, and a probe of a range that reaches them fails.
    pub fn decommit_from(&self, offset: usize) {
        let page = page_size();
        let from = (offset / page * page).min(self.mapped);
        let mut map = regions();
        if let Some(region) = map.get_mut(&self.base) {
            region.valid_len = region.valid_len.min(from);
            protect(self.base + from, self.mapped - from, libc::PROT_NONE);
        }
    }

    /// Decommits the last page of the buffer (a surface whose end the user freed).
    pub fn decommit_last_page(&self) {
        self.decommit_from(self.mapped.saturating_sub(1));
    }

    /// Locks the driver holds on the buffer now.
    pub fn locks(&self) -> usize {
        regions().get(&self.base).map_or(0, |r| r.locks)
    }

    /// The bytes the last successful probe and lock covered: (offset into the buffer,
    /// length).
    pub fn last_lock(&self) -> Option<(usize, usize)> {
        regions().get(&self.base).and_then(|r| r.last_lock)
    }
}

impl Drop for UserBuffer {
    fn drop(&mut self) {
        regions().remove(&self.base);
        // SAFETY: the mapping (data pages and guard page) was made by `copy_of` and is
        // unregistered above, so the driver can no longer lock it; nothing else refers to it.
        unsafe { libc::munmap(self.base as *mut c_void, self.mapped + page_size()) };
    }
}
