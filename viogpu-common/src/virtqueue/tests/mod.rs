//! Tests of the split queue against a small fake device that reads and writes the rings as
//! raw memory, over DMA memory taken from the heap (bus address = CPU address).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

extern crate std;

mod props;
mod unit;

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::vec::Vec;

use core::ptr::NonNull;

use super::layout::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use super::{QueueFeatures, Segment, SplitQueue};
use crate::hal::{DmaRegion, Hal, PAGE_SIZE};

/// DMA memory from the heap; counts the bytes currently allocated.
#[derive(Clone, Default)]
pub struct HeapHal {
    live: Arc<AtomicUsize>,
}

impl HeapHal {
    pub fn live_bytes(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

fn page_layout(len: usize) -> Layout {
    Layout::from_size_align(len.div_ceil(PAGE_SIZE) * PAGE_SIZE, PAGE_SIZE).unwrap()
}

// SAFETY: each region is a fresh zeroed heap allocation of whole, page-aligned pages, used by
// nothing else until freed; "bus" addresses are the CPU addresses, which the fake device uses.
unsafe impl Hal for HeapHal {
    fn dma_alloc(&self, len: usize) -> Option<DmaRegion> {
        let layout = page_layout(len);
        // SAFETY: the layout has a non-zero size (len > 0 is checked by DmaBuffer::new).
        let virt = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        self.live.fetch_add(layout.size(), Ordering::SeqCst);
        Some(DmaRegion {
            virt,
            phys: virt.as_ptr() as u64,
            len: layout.size(),
        })
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        self.live.fetch_sub(region.len, Ordering::SeqCst);
        // SAFETY: allocated by dma_alloc with this layout (len is already whole pages).
        unsafe { dealloc(region.virt.as_ptr(), page_layout(region.len)) };
    }
}

/// Reads a `T` at CPU address `addr` (the fake device's view of DMA memory).
fn peek<T: Copy>(addr: u64) -> T {
    // SAFETY: tests only pass addresses inside live HeapHal regions, at natural alignment.
    unsafe { (addr as *const T).read_volatile() }
}

/// Writes a `T` at CPU address `addr`.
fn poke<T: Copy>(addr: u64, value: T) {
    // SAFETY: as in `peek`.
    unsafe { (addr as *mut T).write_volatile(value) }
}

/// One segment as the device saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub addr: u64,
    pub len: u32,
    pub writable: bool,
}

/// A chain the device took from the available ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub head: u16,
    pub segments: Vec<Seen>,
    /// Whether the head descriptor pointed to an indirect table.
    pub indirect: bool,
}

/// The device end, written from the virtio spec independently of the driver code.
pub struct FakeDevice {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub next_avail: u16,
    pub next_used: u16,
}

impl FakeDevice {
    pub fn new<H: Hal>(q: &SplitQueue<H>) -> Self {
        Self {
            size: q.size(),
            desc: q.desc_addr(),
            avail: q.avail_addr(),
            used: q.used_addr(),
            next_avail: 0,
            next_used: 0,
        }
    }

    fn read_desc(table: u64, i: u16) -> (u64, u32, u16, u16) {
        let at = table + 16 * u64::from(i);
        (
            u64::from_le(peek(at)),
            u32::from_le(peek(at + 8)),
            u16::from_le(peek(at + 12)),
            u16::from_le(peek(at + 14)),
        )
    }

    pub fn avail_idx(&self) -> u16 {
        u16::from_le(peek(self.avail + 2))
    }

    pub fn avail_flags(&self) -> u16 {
        u16::from_le(peek(self.avail))
    }

    pub fn used_event(&self) -> u16 {
        u16::from_le(peek(self.avail + 4 + 2 * u64::from(self.size)))
    }

    pub fn set_used_flags(&self, flags: u16) {
        poke(self.used, flags.to_le());
    }

    pub fn set_avail_event(&self, value: u16) {
        poke(self.used + 4 + 8 * u64::from(self.size), value.to_le());
    }

    /// Takes the next published chain, following links and indirect tables.
    pub fn pop(&mut self) -> Option<Taken> {
        if self.avail_idx() == self.next_avail {
            return None;
        }
        let slot = self.next_avail % self.size;
        let head = u16::from_le(peek(self.avail + 4 + 2 * u64::from(slot)));
        self.next_avail = self.next_avail.wrapping_add(1);
        let mut segments = Vec::new();
        let (mut table, mut limit) = (self.desc, self.size);
        let mut index = head;
        let mut indirect = false;
        loop {
            assert!(index < limit, "descriptor {index} outside table of {limit}");
            let (addr, len, flags, next) = Self::read_desc(table, index);
            if flags & DESC_F_INDIRECT != 0 {
                assert!(!indirect, "nested indirect table");
                assert_eq!(flags & DESC_F_NEXT, 0, "INDIRECT with NEXT");
                assert_eq!(len % 16, 0);
                indirect = true;
                table = addr;
                limit = (len / 16) as u16;
                index = 0;
                continue;
            }
            if flags & DESC_F_WRITE == 0 {
                assert!(
                    segments.iter().all(|s: &Seen| !s.writable),
                    "readable after writable"
                );
            }
            segments.push(Seen {
                addr,
                len,
                writable: flags & DESC_F_WRITE != 0,
            });
            assert!(segments.len() <= usize::from(limit), "descriptor loop");
            if flags & DESC_F_NEXT == 0 {
                break;
            }
            index = next;
        }
        Some(Taken {
            head,
            segments,
            indirect,
        })
    }

    /// Writes a used element without moving used.idx.
    pub fn write_used_elem(&self, pos: u16, id: u32, len: u32) {
        let at = self.used + 4 + 8 * u64::from(pos % self.size);
        poke(at, id.to_le());
        poke(at + 4, len.to_le());
    }

    pub fn set_used_idx(&self, idx: u16) {
        poke(self.used + 2, idx.to_le());
    }

    /// Returns a chain (or any id: the device may lie) with `len` bytes written.
    pub fn complete(&mut self, id: u32, len: u32) {
        self.write_used_elem(self.next_used, id, len);
        self.next_used = self.next_used.wrapping_add(1);
        self.set_used_idx(self.next_used);
    }
}

/// A new queue with its fake device.
pub fn queue(size: u16, indirect: bool, event_idx: bool) -> (HeapHal, SplitQueue<HeapHal>) {
    let hal = HeapHal::default();
    let q = SplitQueue::new(
        &hal,
        size,
        QueueFeatures {
            indirect,
            event_idx,
        },
    )
    .unwrap();
    (hal, q)
}

/// `n` distinct fake segments (the device never dereferences them in these tests).
pub fn segs(base: u64, n: usize, len: u32) -> Vec<Segment> {
    (0..n as u64)
        .map(|i| Segment {
            addr: base + i * 0x1_0000,
            len,
        })
        .collect()
}
