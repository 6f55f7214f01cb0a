//! Nonpaged pool on Windows: which kernel routine the driver's heap and its registry query
//! allocate with, chosen per package.
//!
//! - The default build (the package for Windows 10 2004 / build 19041 and later) allocates with
//!   `ExAllocatePool2(POOL_FLAG_NON_PAGED, ...)`: the global allocator is wdk-alloc's
//!   `WdkAllocator`, and [`allocate_zeroed`] calls the same routine (its memory comes zeroed).
//! - The `legacy-pool` build (the package for Windows 10 1607-1909 and Windows Server
//!   2016/2019, whose kernels do not export `ExAllocatePool2`) allocates with
//!   `ExAllocatePoolWithTag(NonPagedPoolNx, ...)`, which every Windows 10 and 11 kernel
//!   exports (deprecated from 2004 on, in favour of `ExAllocatePool2`), through
//!   [`PoolWithTagAllocator`] and [`allocate_zeroed`] (which zeroes what it gets: that routine
//!   does not). Both free with `ExFreePoolWithTag`.
//!
//! wdk-sys leaves `ExAllocatePoolWithTag` out of its bindings (wdk-build blocklists the
//! deprecated pool routines), so it is declared here to its documented signature (wdm.h:
//! `PVOID ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)`,
//! `NTAPI`), and `NonPagedPoolNx` is spelled out with its wdm.h value (512; `POOL_TYPE` is a C
//! enum, an `int`). Both routines may be called at IRQL <= DISPATCH_LEVEL for nonpaged pool,
//! which the driver respects (the simulator checks it, `os::hosted::irql`). Pool blocks below
//! a page are 16-byte aligned on x64 and blocks of a page or more are page aligned, so the
//! allocator refuses (returns null for) a layout whose alignment the pool does not give
//! (`os::pool_block_aligns`, unit-tested on every host).

use core::ffi::c_void;

use wdk_sys::ntddk::ExFreePoolWithTag;
use wdk_sys::{SIZE_T, ULONG};

/// `POOL_FLAG_NON_PAGED` (wdm.h, `0x40` as a POOL_FLAGS ULONG64), spelled out because the
/// header's `UI64`-suffixed macro is not one bindgen reliably turns into a constant.
#[cfg(not(feature = "legacy-pool"))]
const POOL_FLAG_NON_PAGED: u64 = 0x40;

/// `NonPagedPoolNx` of wdm.h's `POOL_TYPE`: nonpaged, not executable.
#[cfg(feature = "legacy-pool")]
const NON_PAGED_POOL_NX: i32 = 512;

/// Pool tag of the legacy global allocator's blocks ("rust", as wdk-alloc's).
#[cfg(feature = "legacy-pool")]
const HEAP_TAG: ULONG = u32::from_le_bytes(*b"rust");

#[cfg(feature = "legacy-pool")]
extern "system" {
    /// wdm.h; not in wdk-sys's bindings (see the module docs).
    fn ExAllocatePoolWithTag(PoolType: i32, NumberOfBytes: SIZE_T, Tag: ULONG) -> *mut c_void;
}

/// `size` bytes of zeroed nonpaged pool tagged `tag`, or null. Free with [`free`] and the
/// same tag. Call at IRQL <= DISPATCH_LEVEL.
pub fn allocate_zeroed(size: SIZE_T, tag: ULONG) -> *mut c_void {
    #[cfg(not(feature = "legacy-pool"))]
    {
        // SAFETY: ExAllocatePool2 may be called at IRQL <= DISPATCH_LEVEL for nonpaged pool
        // (the caller's contract) with any size and a nonzero tag; it returns null or zeroed
        // memory of `size` bytes.
        unsafe { wdk_sys::ntddk::ExAllocatePool2(POOL_FLAG_NON_PAGED, size, tag) }
    }
    #[cfg(feature = "legacy-pool")]
    {
        // SAFETY: ExAllocatePoolWithTag may be called at IRQL <= DISPATCH_LEVEL for nonpaged
        // pool (the caller's contract); it returns null or `size` bytes of uninitialised
        // memory.
        let block = unsafe { ExAllocatePoolWithTag(NON_PAGED_POOL_NX, size, tag) };
        if !block.is_null() {
            // SAFETY: `block` is a fresh allocation of `size` bytes, written before any read.
            unsafe { core::ptr::write_bytes(block.cast::<u8>(), 0, size as usize) };
        }
        block
    }
}

/// Frees a block from [`allocate_zeroed`] (or the legacy allocator).
///
/// # Safety
/// `block` came from [`allocate_zeroed`] with `tag`, is freed once and not used afterwards.
pub unsafe fn free(block: *mut c_void, tag: ULONG) {
    // SAFETY: the caller's contract; ExFreePoolWithTag frees nonpaged pool at IRQL <=
    // DISPATCH_LEVEL with the tag the block was allocated with.
    unsafe { ExFreePoolWithTag(block, tag) };
}

/// The `legacy-pool` build's global allocator: `ExAllocatePoolWithTag(NonPagedPoolNx)` (module
/// docs). Like wdk-alloc's, usable at IRQL <= DISPATCH_LEVEL only.
#[cfg(feature = "legacy-pool")]
pub struct PoolWithTagAllocator;

// SAFETY: alloc returns null or a block of at least `layout.size()` bytes aligned to
// `layout.align()` (a layout the pool cannot align is refused with null), which nothing else
// owns until dealloc gives it back to the pool; neither function unwinds.
#[cfg(feature = "legacy-pool")]
unsafe impl core::alloc::GlobalAlloc for PoolWithTagAllocator {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        if !super::pool_block_aligns(layout.size(), layout.align()) {
            return core::ptr::null_mut();
        }
        // SAFETY: ExAllocatePoolWithTag may be called at IRQL <= DISPATCH_LEVEL for nonpaged
        // pool, which is this allocator's contract with the driver.
        unsafe { ExAllocatePoolWithTag(NON_PAGED_POOL_NX, layout.size() as SIZE_T, HEAP_TAG) }
            .cast::<u8>()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: core::alloc::Layout) {
        // SAFETY: `ptr` came from `alloc` (GlobalAlloc's contract), so from the pool with
        // HEAP_TAG, and is freed once.
        unsafe { free(ptr.cast::<c_void>(), HEAP_TAG) };
    }
}
