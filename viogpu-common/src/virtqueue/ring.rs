//! Volatile, little-endian access to the ring fields in DMA memory.
//!
//! The device reads and writes the rings concurrently with the driver, so every access is a
//! single volatile load or store of the field's natural width at its natural alignment; the
//! compiler may neither merge, split, elide nor cache them. Ordering against the other side
//! is the caller's business (fences in `SplitQueue`). Each accessor checks its offset against
//! the region and the alignment of the field; a failing check cannot happen for offsets from
//! [`RingLayout`] (the region is at least `layout.total` bytes and page aligned), and is turned
//! into a dropped store or a zero load rather than undefined behaviour or a panic.

use super::layout::RingLayout;
use crate::hal::{DmaBuffer, Hal};

/// One descriptor as the driver wrote it (and keeps in its shadow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Desc {
    /// Bus address of the buffer (or of the indirect table).
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// `DESC_F_*` bits.
    pub flags: u16,
    /// Next descriptor of the chain when `DESC_F_NEXT` is set.
    pub next: u16,
}

/// The DMA region holding descriptor table, available ring and used ring.
pub struct RingMemory<H: Hal> {
    buf: DmaBuffer<H>,
    layout: RingLayout,
}

impl<H: Hal> RingMemory<H> {
    /// Wraps a region of at least `layout.total` bytes.
    pub fn new(buf: DmaBuffer<H>, layout: RingLayout) -> Option<Self> {
        (buf.len() >= layout.total).then_some(Self { buf, layout })
    }

    /// The field offsets.
    pub fn layout(&self) -> &RingLayout {
        &self.layout
    }

    /// Bus address of byte `offset` of the region.
    pub fn phys(&self, offset: usize) -> u64 {
        self.buf.phys() + offset as u64
    }

    /// Pointer to a `T` at `offset`, if it lies inside the region and is aligned.
    fn field<T>(&self, offset: usize) -> Option<*mut T> {
        let size = core::mem::size_of::<T>();
        let end = offset.checked_add(size)?;
        let fits = end <= self.buf.len() && offset.is_multiple_of(core::mem::align_of::<T>());
        debug_assert!(
            fits,
            "ring field at {offset} outside the region or unaligned"
        );
        if !fits {
            return None;
        }
        // SAFETY: offset + size <= len, so the result stays inside the region (Hal contract:
        // valid for len bytes); the region is page aligned, so offset alignment is pointer
        // alignment.
        Some(unsafe { self.buf.as_ptr().as_ptr().add(offset) }.cast::<T>())
    }

    fn store_u16(&mut self, offset: usize, value: u16) {
        if let Some(p) = self.field::<u16>(offset) {
            // SAFETY: in bounds and aligned (checked by `field`); the region is ours.
            unsafe { p.write_volatile(value.to_le()) }
        }
    }

    fn store_u32(&mut self, offset: usize, value: u32) {
        if let Some(p) = self.field::<u32>(offset) {
            // SAFETY: in bounds and aligned (checked by `field`); the region is ours.
            unsafe { p.write_volatile(value.to_le()) }
        }
    }

    fn store_u64(&mut self, offset: usize, value: u64) {
        if let Some(p) = self.field::<u64>(offset) {
            // SAFETY: in bounds and aligned (checked by `field`); the region is ours.
            unsafe { p.write_volatile(value.to_le()) }
        }
    }

    fn load_u16(&self, offset: usize) -> u16 {
        match self.field::<u16>(offset) {
            // SAFETY: in bounds and aligned (checked by `field`); any bit pattern is a u16.
            Some(p) => u16::from_le(unsafe { p.read_volatile() }),
            None => 0,
        }
    }

    fn load_u32(&self, offset: usize) -> u32 {
        match self.field::<u32>(offset) {
            // SAFETY: in bounds and aligned (checked by `field`); any bit pattern is a u32.
            Some(p) => u32::from_le(unsafe { p.read_volatile() }),
            None => 0,
        }
    }

    /// Writes descriptor `index` of the table.
    pub fn write_desc(&mut self, index: u16, desc: &Desc) {
        let at = self.layout.desc(index);
        self.store_u64(at, desc.addr);
        self.store_u32(at + 8, desc.len);
        self.store_u16(at + 12, desc.flags);
        self.store_u16(at + 14, desc.next);
    }

    /// Writes the available ring's `flags`.
    pub fn write_avail_flags(&mut self, flags: u16) {
        self.store_u16(self.layout.avail_flags(), flags);
    }

    /// Writes the available ring's `idx`.
    pub fn write_avail_idx(&mut self, idx: u16) {
        self.store_u16(self.layout.avail_idx(), idx);
    }

    /// Writes available-ring entry `slot` (`slot < size`).
    pub fn write_avail_entry(&mut self, slot: u16, head: u16) {
        self.store_u16(self.layout.avail_entry(slot), head);
    }

    /// Writes `used_event`.
    pub fn write_used_event(&mut self, value: u16) {
        self.store_u16(self.layout.used_event(), value);
    }

    /// Reads the used ring's `flags` (device-written).
    pub fn read_used_flags(&self) -> u16 {
        self.load_u16(self.layout.used_flags())
    }

    /// Reads the used ring's `idx` (device-written).
    pub fn read_used_idx(&self) -> u16 {
        self.load_u16(self.layout.used_idx())
    }

    /// Reads used-ring element `slot` (`slot < size`) as `(id, len)` (device-written).
    pub fn read_used_elem(&self, slot: u16) -> (u32, u32) {
        let at = self.layout.used_elem(slot);
        (self.load_u32(at), self.load_u32(at + 4))
    }

    /// Reads `avail_event` (device-written).
    pub fn read_avail_event(&self) -> u16 {
        self.load_u16(self.layout.avail_event())
    }

    /// Zeroes all three parts.
    pub fn zero(&mut self) {
        let len = self.buf.len();
        // The whole region: cannot fail, the range is exactly the buffer.
        let _ = self.buf.fill(0, len, 0);
    }
}
