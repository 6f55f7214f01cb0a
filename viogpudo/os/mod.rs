//! The kernel services the driver needs, behind one small interface with two backends.
//!
//! - `nt` (Windows only): pool and contiguous memory, IRQL, events, time, debug print and the
//!   registry, from wdk-sys. It is the only code the Linux machines cannot build, so it stays
//!   thin: each function is a direct call of one kernel routine. `nt_pool` says which pool
//!   routine the heap uses: `ExAllocatePool2`, or `ExAllocatePoolWithTag` in the
//!   `legacy-pool` build for Windows before 10 2004.
//! - `hosted` (everything else): the same services over std, for the dxgkrnl simulator in the
//!   Linux tests and for the QEMU guest runner. Device memory and registers come from a
//!   [`hosted::HostEnvironment`] that the test or runner installs before it loads the driver.
//!
//! The rest of the driver sees only the names re-exported here: [`Dma`] (the `Hal` of the
//! core crate), [`Mmio`] (a mapped register window), [`OsPlatform`] (waiting, time, IRQL),
//! [`PassiveMutex`] (the waitable lock of PASSIVE_LEVEL state: a KMUTEX on Windows),
//! [`probe_and_lock`] with its guard [`LockedPages`] (the only way the driver reads a present's
//! source surface, which may be user-mode memory: see below), [`with_avx_state`] (the YMM
//! registers saved around a rotated copy, which kernel code may not touch otherwise) and the
//! `trace!` macro.
//!
//! # User-mode source surfaces
//!
//! `pSource` of DxgkDdiPresentDisplayOnly may be a user-mode address, and the user can
//! decommit those pages at any moment. On Windows a read of such a page from kernel mode
//! raises an exception, which only SEH catches, and Rust has no SEH: a direct read would be a
//! bugcheck. So the driver reads the source only through [`probe_and_lock`], which returns a
//! guard over the bytes or an NTSTATUS: on Windows kernel addresses are used directly and user
//! addresses are described by an MDL, probed and locked with `MmProbeAndLockPages` inside a
//! `__try`/`__except` of a small C function (`os/nt_probe.c`, see `nt`), and mapped into
//! system space; the guard unlocks and frees the MDL when dropped. The hosted backend asks the
//! [`hosted::HostEnvironment`], whose user memory the simulator keeps PROT_NONE until probed.

#[cfg(not(windows))]
pub mod hosted;
#[cfg(not(windows))]
pub use hosted::{
    caller_may_configure, probe_and_lock, registry_dword, trace_str, with_avx_state, Dma,
    LockedPages, Mmio, OsPlatform, PassiveGuard, PassiveMutex,
};

#[cfg(windows)]
pub mod nt;
#[cfg(windows)]
pub mod nt_pool;
#[cfg(windows)]
pub use nt::{
    caller_may_configure, probe_and_lock, registry_dword, trace_str, with_avx_state, Dma,
    LockedPages, Mmio, OsPlatform, PassiveGuard, PassiveMutex,
};

/// `STATUS_ACCESS_VIOLATION` (ntstatus.h): the exception `MmProbeAndLockPages` raises for a
/// user-mode range that is not entirely valid, which [`probe_and_lock`] returns and the KMDOD
/// sample's present passes on as it is (`Status = GetExceptionCode()`). Not a display code, so
/// it is not among the `ddi` constants checked against the WDK display facts.
pub const STATUS_ACCESS_VIOLATION: crate::ddi::NTSTATUS = 0xC000_0005_u32 as i32;

/// Writes one line of driver trace output (DbgPrint on Windows, the environment's log here).
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => {{
        let mut line = $crate::os::TraceLine::new();
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!($($arg)*));
        $crate::os::trace_str(line.as_str());
    }};
}

/// A fixed-size line buffer so tracing never allocates (it runs at any IRQL).
pub struct TraceLine {
    buf: [u8; 256],
    len: usize,
}

impl TraceLine {
    /// An empty line that starts with the driver's prefix.
    pub fn new() -> Self {
        let mut line = Self {
            buf: [0; 256],
            len: 0,
        };
        let _ = core::fmt::Write::write_str(&mut line, "viogpudo: ");
        line
    }

    /// The text written so far (truncated at a character boundary when full).
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..self.len).unwrap_or(&[]);
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                core::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or("")
            }
        }
    }
}

impl Default for TraceLine {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Write for TraceLine {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len().saturating_sub(self.len);
        let n = s.len().min(room);
        if let Some(dst) = self.buf.get_mut(self.len..self.len + n) {
            dst.copy_from_slice(s.as_bytes().get(..n).unwrap_or(&[]));
            self.len += n;
        }
        Ok(())
    }
}

/// Whether a nonpaged pool block of `size` bytes (> 0) is aligned to `align` by itself: on x64
/// a block below a page is 16-byte aligned and a block of a page or more page aligned (the
/// ExAllocatePoolWithTag page). The `legacy-pool` heap (`nt_pool`) refuses other layouts
/// rather than hand out a misaligned block.
pub const fn pool_block_aligns(size: usize, align: usize) -> bool {
    const POOL_ALIGN: usize = 16;
    let page = viogpu_common::hal::PAGE_SIZE;
    size > 0 && (align <= POOL_ALIGN || (align <= page && size >= page))
}

#[cfg(test)]
mod tests {
    use super::pool_block_aligns;

    #[test]
    fn pool_blocks_give_16_bytes_below_a_page_and_a_page_from_a_page_on() {
        assert!(pool_block_aligns(1, 1));
        assert!(pool_block_aligns(24, 16));
        assert!(!pool_block_aligns(24, 32));
        assert!(!pool_block_aligns(4095, 4096));
        assert!(pool_block_aligns(4096, 4096));
        assert!(pool_block_aligns(1 << 20, 64));
        assert!(!pool_block_aligns(1 << 20, 8192));
        assert!(!pool_block_aligns(0, 1));
    }
}
