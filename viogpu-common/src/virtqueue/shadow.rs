//! The driver's own record of everything it posted.
//!
//! The descriptor table and the available ring live in memory the device can write, so the
//! driver never reads them back: the free list, the chain links, the per-chain byte counts and
//! the list of heads waiting to be published are all kept here, in ordinary memory allocated
//! once when the queue is created.
//!
//! Every index stored here comes from this module and is below `size`; [`Shadow::slot`] masks
//! with `size - 1` (size is a power of two) so that even a broken invariant could only pick a
//! wrong entry, never index out of bounds.

use alloc::vec::Vec;

use super::layout::DESC_F_NEXT;
use super::ring::Desc;
use crate::{Error, Result};

/// What the driver knows about the chain whose head is a given descriptor.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChainInfo {
    /// Posted by `add` and not yet returned.
    pub in_flight: bool,
    /// Made visible to the device by `publish`.
    pub published: bool,
    /// Ring descriptors the chain occupies (1 for an indirect chain).
    pub desc_count: u16,
    /// Total bytes of the device-writable segments.
    pub writable: u32,
}

/// Shadow of the descriptor table, chain bookkeeping, and the free list.
pub struct Shadow {
    /// What was written to each descriptor. While a descriptor is free, `next` links the free
    /// list instead.
    descs: Vec<Desc>,
    /// Indexed by head descriptor.
    chains: Vec<ChainInfo>,
    /// Heads written to the available ring, by ring slot (the driver's copy of avail.ring).
    avail: Vec<u16>,
    mask: u16,
    free_head: u16,
    num_free: u16,
    in_flight: u16,
}

/// Allocates a zero-initialised vector of exactly `len` entries without aborting on failure.
fn vec_of<T: Clone + Default>(len: usize) -> Result<Vec<T>> {
    crate::fallible::try_filled(len, T::default())
}

impl Shadow {
    /// An empty shadow for `size` (a checked power of two) entries, every descriptor free.
    pub fn new(size: u16) -> Result<Self> {
        let n = usize::from(size);
        let mut shadow = Self {
            descs: vec_of(n)?,
            chains: vec_of(n)?,
            avail: vec_of(n)?,
            mask: size.wrapping_sub(1),
            free_head: 0,
            num_free: 0,
            in_flight: 0,
        };
        shadow.clear();
        Ok(shadow)
    }

    /// Forgets every chain and links all descriptors into the free list in order.
    pub fn clear(&mut self) {
        let mask = self.mask;
        for (i, desc) in self.descs.iter_mut().enumerate() {
            *desc = Desc {
                next: (i as u16).wrapping_add(1) & mask,
                ..Desc::default()
            };
        }
        self.chains.fill(ChainInfo::default());
        self.avail.fill(0);
        self.free_head = 0;
        self.num_free = self.mask.wrapping_add(1);
        self.in_flight = 0;
    }

    fn slot(&self, index: u16) -> usize {
        usize::from(index & self.mask)
    }

    /// Free descriptors.
    pub fn num_free(&self) -> u16 {
        self.num_free
    }

    /// The descriptor the next chain will start with.
    pub fn free_head(&self) -> u16 {
        self.free_head
    }

    /// Chains posted and not returned.
    pub fn in_flight(&self) -> u16 {
        self.in_flight
    }

    /// The chain whose head is `head`, if `head` is a valid index.
    pub fn chain(&self, head: u16) -> Option<&ChainInfo> {
        self.chains.get(usize::from(head))
    }

    /// Takes `count` descriptors off the free list, fills them from `descs` (which yields
    /// exactly `count` items) linked into one chain in that order (`DESC_F_NEXT`/`next` set on
    /// all but the last), and records the chain. Calls `write(index, desc)` for each so the
    /// caller can store it in the ring.
    pub fn take_chain(
        &mut self,
        count: usize,
        descs: impl Iterator<Item = Desc>,
        writable: u32,
        mut write: impl FnMut(u16, &Desc),
    ) -> Result<u16> {
        if count == 0 || count > usize::from(self.num_free) {
            return Err(Error::QueueFull);
        }
        let head = self.free_head;
        let mut index = head;
        for (i, mut desc) in descs.take(count).enumerate() {
            let slot = self.slot(index);
            let free_next = self.descs[slot].next;
            let last = i + 1 == count;
            if last {
                desc.flags &= !DESC_F_NEXT;
                desc.next = 0;
            } else {
                desc.flags |= DESC_F_NEXT;
                desc.next = free_next;
            }
            self.descs[slot] = desc;
            write(index, &desc);
            index = free_next;
        }
        // `index` is the free-list successor of the last descriptor taken.
        self.free_head = index;
        self.num_free -= count as u16;
        self.in_flight += 1;
        let slot = self.slot(head);
        self.chains[slot] = ChainInfo {
            in_flight: true,
            published: false,
            desc_count: count as u16,
            writable,
        };
        Ok(head)
    }

    /// Records `head` in available-ring slot `avail_idx % size`.
    pub fn set_avail(&mut self, avail_idx: u16, head: u16) {
        let slot = self.slot(avail_idx);
        self.avail[slot] = head;
    }

    /// Marks the chain in available-ring position `avail_idx` as seen by the device.
    pub fn mark_published(&mut self, avail_idx: u16) {
        let head = self.avail[self.slot(avail_idx)];
        let slot = self.slot(head);
        self.chains[slot].published = true;
    }

    /// Returns the chain with head `head` (in flight, checked by the caller) to the free
    /// list, following the shadow links, and yields its record.
    pub fn free_chain(&mut self, head: u16) -> ChainInfo {
        let slot = self.slot(head);
        let info = self.chains[slot];
        self.chains[slot] = ChainInfo::default();
        let mut last = head;
        // desc_count bounds the walk even if a link were wrong.
        for _ in 1..info.desc_count {
            let desc = self.descs[self.slot(last)];
            if desc.flags & DESC_F_NEXT == 0 {
                break;
            }
            last = desc.next;
        }
        let last_slot = self.slot(last);
        self.descs[last_slot].next = self.free_head;
        self.free_head = head;
        self.num_free = self.num_free.saturating_add(info.desc_count);
        self.in_flight = self.in_flight.saturating_sub(1);
        info
    }

    /// Heads of all chains in flight, in ascending order.
    pub fn in_flight_heads(&self) -> impl Iterator<Item = u16> + '_ {
        self.chains
            .iter()
            .enumerate()
            .filter(|(_, c)| c.in_flight)
            .map(|(i, _)| i as u16)
    }

    /// What was last written to descriptor `index` (for tests and debugging).
    #[cfg(test)]
    pub fn desc(&self, index: u16) -> Desc {
        self.descs[self.slot(index)]
    }
}
