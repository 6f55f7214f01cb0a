//! A heap-backed [`Hal`] for unit tests: page-aligned zeroed memory with fake bus addresses,
//! live-byte accounting, and switches that make allocations fail (above a size, at the Nth
//! call, or from the Nth call on).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

extern crate std;

use core::ptr::NonNull;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::vec::Vec;

use crate::hal::{DmaRegion, Hal, PAGE_SIZE};

/// Where the fake bus addresses start (above 4 GiB, so 32-bit truncation would show).
const PHYS_BASE: u64 = 0x1_0000_0000;

/// A region's CPU pointer, kept as a pointer (not an address) so that reads through it carry
/// the allocation's provenance and Miri checks them (an integer-to-pointer cast would not be).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RegionPtr(NonNull<u8>);

// SAFETY: the pointer names plain heap memory owned by the table; it is only dereferenced
// under the state lock (read_phys) while the region is live, from whichever thread holds it.
unsafe impl Send for RegionPtr {}

#[derive(Default)]
struct State {
    /// phys -> (virt pointer, len) of each live region.
    regions: BTreeMap<u64, (RegionPtr, usize)>,
    live_bytes: u64,
    next_phys: u64,
    /// Calls of `dma_alloc` so far (failed ones included).
    calls: u64,
    /// Refuse requests larger than this.
    refuse_above: Option<usize>,
    /// Refuse exactly this call (1-based).
    fail_call: Option<u64>,
    /// Refuse this call (1-based) and every later one.
    fail_from: Option<u64>,
}

/// A counting heap-backed test platform; clones share their state.
#[derive(Clone, Default)]
pub(crate) struct TestHal {
    state: Arc<Mutex<State>>,
}

impl TestHal {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuse every request larger than `len` bytes.
    pub(crate) fn refuse_above(&self, len: usize) {
        self.state().refuse_above = Some(len);
    }

    /// Refuse only the `n`th call of `dma_alloc` (1-based, counted from creation).
    pub(crate) fn fail_call(&self, n: u64) {
        self.state().fail_call = Some(n);
    }

    /// Refuse the `n`th call of `dma_alloc` (1-based) and all later ones.
    pub(crate) fn fail_from(&self, n: u64) {
        self.state().fail_from = Some(n);
    }

    /// Calls of `dma_alloc` so far.
    pub(crate) fn calls(&self) -> u64 {
        self.state().calls
    }

    /// Bytes handed out and not yet freed.
    pub(crate) fn live_bytes(&self) -> u64 {
        self.state().live_bytes
    }

    /// Regions handed out and not yet freed.
    pub(crate) fn live_regions(&self) -> usize {
        self.state().regions.len()
    }

    /// Reads `len` bytes at bus address `phys`, which must lie inside one live region.
    pub(crate) fn read_phys(&self, phys: u64, len: usize) -> Option<Vec<u8>> {
        let state = self.state();
        let (&base, &(virt, region_len)) = state.regions.range(..=phys).next_back()?;
        let offset = usize::try_from(phys - base).ok()?;
        if offset.checked_add(len)? > region_len {
            return None;
        }
        // SAFETY: `offset + len <= region_len`, so `offset` is inside the live allocation
        // virt..virt+region_len (or one past its end).
        let start = unsafe { virt.0.as_ptr().cast_const().add(offset) };
        // SAFETY: virt..virt+region_len is a live allocation of ours; the range is inside it.
        let bytes = unsafe { core::slice::from_raw_parts(start, len) };
        Some(bytes.to_vec())
    }
}

// SAFETY: regions come from the global allocator with page alignment and zeroing, are not
// aliased, are rounded up to whole pages, and get unique fake bus ranges that are contiguous
// per region.
unsafe impl Hal for TestHal {
    fn dma_alloc(&self, len: usize) -> Option<DmaRegion> {
        let mut state = self.state();
        state.calls += 1;
        let call = state.calls;
        if state.fail_call == Some(call)
            || state.fail_from.is_some_and(|n| call >= n)
            || state.refuse_above.is_some_and(|max| len > max)
            || len == 0
        {
            return None;
        }
        let len = len.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let layout = Layout::from_size_align(len, PAGE_SIZE).ok()?;
        // SAFETY: layout has non-zero size.
        let virt = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        if state.next_phys == 0 {
            state.next_phys = PHYS_BASE;
        }
        let phys = state.next_phys;
        // A guard page between regions, so no test can rely on adjacent chunks.
        state.next_phys += (len + PAGE_SIZE) as u64;
        state.regions.insert(phys, (RegionPtr(virt), len));
        state.live_bytes += len as u64;
        Some(DmaRegion { virt, phys, len })
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        let mut state = self.state();
        let Some((virt, len)) = state.regions.remove(&region.phys) else {
            panic!("dma_free of unknown region at {:#x}", region.phys);
        };
        assert_eq!(virt, RegionPtr(region.virt), "virt mismatch on free");
        assert_eq!(len, region.len, "length mismatch on free");
        state.live_bytes -= len as u64;
        let layout = Layout::from_size_align(len, PAGE_SIZE).unwrap();
        // SAFETY: allocated in dma_alloc with this layout, and removed from the table just now,
        // so it is freed once.
        unsafe { dealloc(region.virt.as_ptr(), layout) };
    }
}
