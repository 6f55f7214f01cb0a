//! DMA memory for the driver core inside a simulated guest.
//!
//! [`GuestMemoryHal`] implements the core's [`Hal`] over one `vm-memory` guest RAM region:
//! bus addresses are guest physical addresses (what a device model over the same
//! `GuestMemoryMmap` dereferences), CPU addresses are the host mappings of those bytes. It
//! hands out page-aligned chunks first-fit from a free list that coalesces on free, zeroes
//! them, and counts the bytes currently allocated so tests can assert that everything a
//! scenario allocated came back ("DMA memory back to baseline"). Contract violations by the
//! code under test (freeing an unknown region, a double free, a wrong length) fail loudly.

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

use viogpu_common::hal::{DmaRegion, Hal, PAGE_SIZE};
use vm_memory::mmap::FromRangesError;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// Allocator state: free ranges and live regions, both keyed by guest address.
#[derive(Debug, Default)]
struct Books {
    /// start -> length of each free range; adjacent ranges are always merged.
    free: BTreeMap<u64, u64>,
    /// start -> length of each region handed out.
    live: BTreeMap<u64, u64>,
    allocated: usize,
    /// Set by [`GuestMemoryHal::fail_allocations_after`]: allocations left before failing.
    budget: Option<usize>,
    /// Set by [`GuestMemoryHal::fail_allocations_larger_than`]: the largest region handed out.
    largest: Option<usize>,
}

#[derive(Debug)]
struct Inner {
    mem: GuestMemoryMmap,
    books: Mutex<Books>,
}

/// DMA memory from simulated guest RAM (see the module documentation). Cloning shares the
/// same memory and allocator.
#[derive(Debug, Clone)]
pub struct GuestMemoryHal {
    inner: Arc<Inner>,
}

impl GuestMemoryHal {
    /// Guest RAM of `size` bytes (rounded down to whole pages) at guest physical address
    /// `base` (rounded up to a page), all of it available for DMA allocations.
    pub fn new(base: u64, size: usize) -> Result<Self, FromRangesError> {
        let page = PAGE_SIZE as u64;
        let base = base.div_ceil(page) * page;
        let size = size / PAGE_SIZE * PAGE_SIZE;
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(base), size)])?;
        let mut books = Books::default();
        if size > 0 {
            books.free.insert(base, size as u64);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                mem,
                books: Mutex::new(books),
            }),
        })
    }

    /// The guest memory, for the device side.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.inner.mem
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        // A panic while holding the lock only happens in a failing test; keep going.
        self.inner
            .books
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes currently allocated (whole pages).
    pub fn allocated_bytes(&self) -> usize {
        self.books().allocated
    }

    /// Number of regions currently allocated.
    pub fn live_regions(&self) -> usize {
        self.books().live.len()
    }

    /// Makes every allocation after the next `count` ones fail (`None`: never fail), to test
    /// the code's handling of DMA memory exhaustion.
    pub fn fail_allocations_after(&self, count: Option<usize>) {
        self.books().budget = count;
    }

    /// Makes every allocation of more than `bytes` fail (`None`: any size), as a guest whose
    /// physical memory is too fragmented for large contiguous blocks.
    pub fn fail_allocations_larger_than(&self, bytes: Option<usize>) {
        self.books().largest = bytes;
    }

    /// Host pointer to guest physical address `addr`.
    fn host(&self, addr: u64) -> Option<NonNull<u8>> {
        let ptr = self.inner.mem.get_host_address(GuestAddress(addr)).ok()?;
        NonNull::new(ptr)
    }
}

// SAFETY: regions are carved from one guest RAM mapping, never overlap (free list + live map
// under one lock), are page aligned in guest physical space (base and lengths are whole
// pages) and in host space (the mapping is page aligned), contiguous (one region), and zeroed
// before they are handed out.
unsafe impl Hal for GuestMemoryHal {
    fn dma_alloc(&self, len: usize) -> Option<DmaRegion> {
        let len = (len.max(1).div_ceil(PAGE_SIZE) * PAGE_SIZE) as u64;
        let mut books = self.books();
        if books.largest.is_some_and(|largest| len as usize > largest) {
            return None;
        }
        if let Some(budget) = books.budget.as_mut() {
            if *budget == 0 {
                return None;
            }
            *budget -= 1;
        }
        let (&start, &free_len) = books.free.iter().find(|(_, &l)| l >= len)?;
        let virt = self.host(start)?;
        books.free.remove(&start);
        if free_len > len {
            books.free.insert(start + len, free_len - len);
        }
        books.live.insert(start, len);
        books.allocated += len as usize;
        // SAFETY: [start, start + len) lies in the single mapped region (it came from the
        // free list, which only holds ranges of it), so the host range is valid for writes.
        unsafe { std::ptr::write_bytes(virt.as_ptr(), 0, len as usize) };
        Some(DmaRegion {
            virt,
            phys: start,
            len: len as usize,
        })
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        let mut books = self.books();
        let len = books.live.remove(&region.phys);
        assert_eq!(
            len,
            Some(region.len as u64),
            "dma_free of a region that is not live (double free?) at {:#x}",
            region.phys
        );
        assert_eq!(
            self.host(region.phys),
            Some(region.virt),
            "virt/phys mismatch"
        );
        books.allocated -= region.len;
        let mut start = region.phys;
        let mut len = region.len as u64;
        if let Some((&prev, &prev_len)) = books.free.range(..start).next_back() {
            if prev + prev_len == start {
                books.free.remove(&prev);
                start = prev;
                len += prev_len;
            }
        }
        if let Some(next_len) = books.free.remove(&(start + len)) {
            len += next_len;
        }
        books.free.insert(start, len);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vm_memory::Bytes;

    #[test]
    fn allocations_are_zeroed_disjoint_and_counted() {
        let hal = GuestMemoryHal::new(0x10_0000, 16 * PAGE_SIZE).unwrap();
        let a = hal.dma_alloc(1).unwrap();
        let b = hal.dma_alloc(PAGE_SIZE + 1).unwrap();
        assert_eq!((a.phys, a.len), (0x10_0000, PAGE_SIZE));
        assert_eq!((b.phys, b.len), (0x10_1000, 2 * PAGE_SIZE));
        assert_eq!(hal.allocated_bytes(), 3 * PAGE_SIZE);
        assert_eq!(hal.live_regions(), 2);
        // The CPU pointer and the guest address name the same bytes.
        // SAFETY: inside region b, which we own.
        unsafe { b.virt.as_ptr().add(5).write(0xAB) };
        let byte: u8 = hal.memory().read_obj(GuestAddress(b.phys + 5)).unwrap();
        assert_eq!(byte, 0xAB);
        // SAFETY: allocated above, freed once.
        unsafe { hal.dma_free(b) };
        let c = hal.dma_alloc(PAGE_SIZE).unwrap();
        assert_eq!(c.phys, 0x10_1000, "first fit reuses the freed range");
        // SAFETY: c is valid for PAGE_SIZE bytes.
        assert_eq!(unsafe { c.virt.as_ptr().add(5).read() }, 0, "zeroed again");
        // SAFETY: allocated above, freed once each.
        unsafe {
            hal.dma_free(a);
            hal.dma_free(c);
        }
        assert_eq!(hal.allocated_bytes(), 0);
        // Fully coalesced: the whole RAM is one free range again.
        let all = hal.dma_alloc(16 * PAGE_SIZE).unwrap();
        assert!(hal.dma_alloc(1).is_none());
        // SAFETY: allocated above.
        unsafe { hal.dma_free(all) };
        hal.fail_allocations_after(Some(1));
        assert!(hal.dma_alloc(1).is_some_and(|r| {
            // SAFETY: just allocated.
            unsafe { hal.dma_free(r) };
            true
        }));
        assert!(hal.dma_alloc(1).is_none(), "budget exhausted");
    }
}
