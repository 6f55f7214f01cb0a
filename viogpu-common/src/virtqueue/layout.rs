//! Where each part of a split virtqueue lives inside its one DMA region, and the bit values
//! of the ring flags (virtio 1.x, section 2.7 "Split Virtqueues").
//!
//! The three parts share one allocation: the descriptor table (16 bytes per entry, 16-byte
//! aligned) at offset 0, the available ring (flags, idx, `N` entries, `used_event`) right
//! after it, and the used ring (flags, idx, `N` elements, `avail_event`) at the next 4-byte
//! boundary. The device is told each part's bus address separately, so no legacy 4096-byte
//! padding between the rings is needed.

/// The descriptor continues in the `next` field.
pub const DESC_F_NEXT: u16 = 1;
/// The buffer is device-writable (otherwise device-readable).
pub const DESC_F_WRITE: u16 = 2;
/// The buffer holds an indirect descriptor table.
pub const DESC_F_INDIRECT: u16 = 4;
/// Available-ring flag: the driver does not want interrupts (only without EVENT_IDX).
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used-ring flag: the device does not want notifications (only without EVENT_IDX).
pub const USED_F_NO_NOTIFY: u16 = 1;

/// Size in bytes of one descriptor, in the ring and in indirect tables.
pub const DESC_SIZE: usize = 16;
/// Size in bytes of one used-ring element (`id: u32, len: u32`).
const USED_ELEM_SIZE: usize = 8;
/// Size of the `flags` + `idx` header of both rings.
const RING_HEADER: usize = 4;

/// Byte offsets of every ring field for one queue size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLayout {
    /// Number of entries (a power of two).
    pub size: u16,
    /// Offset of the available ring.
    pub avail: usize,
    /// Offset of the used ring.
    pub used: usize,
    /// Bytes needed for all three parts.
    pub total: usize,
}

impl RingLayout {
    /// Layout for `size` entries. `size` has been checked (a power of two, at most 32768), so
    /// none of the sums below can overflow a `usize`.
    pub const fn new(size: u16) -> Self {
        let n = size as usize;
        let avail = DESC_SIZE * n;
        let avail_len = RING_HEADER + 2 * n + 2;
        let used = (avail + avail_len + 3) & !3;
        let used_len = RING_HEADER + USED_ELEM_SIZE * n + 2;
        Self {
            size,
            avail,
            used,
            total: used + used_len,
        }
    }

    /// Offset of descriptor `index`.
    pub const fn desc(&self, index: u16) -> usize {
        DESC_SIZE * index as usize
    }

    /// Offset of the available ring's `flags`.
    pub const fn avail_flags(&self) -> usize {
        self.avail
    }

    /// Offset of the available ring's `idx`.
    pub const fn avail_idx(&self) -> usize {
        self.avail + 2
    }

    /// Offset of available-ring entry `slot`.
    pub const fn avail_entry(&self, slot: u16) -> usize {
        self.avail + RING_HEADER + 2 * slot as usize
    }

    /// Offset of `used_event` (the entry after the last available-ring slot).
    pub const fn used_event(&self) -> usize {
        self.avail_entry(self.size)
    }

    /// Offset of the used ring's `flags`.
    pub const fn used_flags(&self) -> usize {
        self.used
    }

    /// Offset of the used ring's `idx`.
    pub const fn used_idx(&self) -> usize {
        self.used + 2
    }

    /// Offset of used-ring element `slot` (its `id`; `len` follows 4 bytes later).
    pub const fn used_elem(&self, slot: u16) -> usize {
        self.used + RING_HEADER + USED_ELEM_SIZE * slot as usize
    }

    /// Offset of `avail_event` (the element after the last used-ring slot).
    pub const fn avail_event(&self) -> usize {
        self.used_elem(self.size)
    }
}
