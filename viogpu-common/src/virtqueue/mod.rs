//! The split virtqueue, driver side (virtio 1.x, section 2.7).
//!
//! [`SplitQueue`] owns one queue's rings in DMA memory and everything the driver must remember
//! about the requests it posted. A request is a *chain* of [`Segment`]s: device-readable ones
//! first, then device-writable ones. [`SplitQueue::add`] posts a chain and returns its head id
//! (the token the caller uses to match the completion), [`SplitQueue::publish`] makes a batch
//! visible and says whether to notify the device, and [`SplitQueue::pop_used`] returns
//! completed chains in whatever order the device finishes them.
//!
//! The device is not trusted. The driver keeps its own shadow of every descriptor and of the
//! available ring and never reads them back from DMA memory; every used-ring entry is checked
//! (id in range and the head of a published chain in flight, length within the chain's
//! writable bytes, used index not running ahead of the chains in flight) and a bad entry is
//! reported as an [`Error`] without corrupting the queue.
//!
//! With `VIRTIO_F_INDIRECT_DESC` every chain of more than one segment goes through an indirect
//! table (one ring entry per request, as Linux does), taken from a pool allocated in
//! [`SplitQueue::new`]; after `new` nothing allocates, except [`SplitQueue::reset`] which
//! returns a vector. With `VIRTIO_F_EVENT_IDX` notifications and interrupts are suppressed by
//! event indices, otherwise by the ring flags.
//!
//! Ring fields are accessed with single volatile loads and stores (the `ring` module);
//! ordering against the device comes from `core::sync::atomic::fence`, which emits the
//! hardware barrier each target needs (nothing extra on x86 for Release/Acquire, `dmb` on
//! arm64): Release before the avail.idx store that publishes, Acquire after the used.idx load
//! that announces completions, SeqCst where a store must be visible before a following load
//! of the device's suppression state (see [`SplitQueue::publish`]).

mod indirect;
pub mod layout;
mod ring;
mod shadow;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

use crate::hal::{DmaBuffer, Hal};
use crate::{Error, Result};
use indirect::IndirectPool;
use layout::{RingLayout, AVAIL_F_NO_INTERRUPT, DESC_F_INDIRECT, DESC_F_WRITE, USED_F_NO_NOTIFY};
use ring::{Desc, RingMemory};
use shadow::Shadow;

/// Largest queue size virtio allows for a split queue.
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// Most segments one indirect table holds. virtio-gpu requests have two or three segments
/// (the backing-page list of ATTACH_BACKING travels inside one readable buffer), so 64 leaves
/// ample room while keeping a table at 1 KiB. A longer chain is posted as a direct chain if it
/// fits the ring.
pub const MAX_INDIRECT: usize = 64;

/// One buffer of a chain, by bus address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Bus address of the first byte.
    pub addr: u64,
    /// Length in bytes (not zero).
    pub len: u32,
}

/// The ring features negotiated with the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueFeatures {
    /// `VIRTIO_F_INDIRECT_DESC` (bit 28).
    pub indirect: bool,
    /// `VIRTIO_F_EVENT_IDX` (bit 29).
    pub event_idx: bool,
}

/// One completed chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsedElem {
    /// The head id [`SplitQueue::add`] returned for the chain.
    pub id: u16,
    /// Bytes the device says it wrote into the writable segments, or
    /// [`Error::BadUsedLength`] if that is more than they hold. The chain is freed either way.
    pub written: Result<u32>,
}

/// A split virtqueue, driver side.
///
/// Dropping it frees the rings and indirect tables: drop it only after the device was reset
/// (or the queue disabled), like any buffer the device may still access.
pub struct SplitQueue<H: Hal> {
    ring: RingMemory<H>,
    indirect: Option<IndirectPool<H>>,
    shadow: Shadow,
    event_idx: bool,
    /// The next available-ring position `add` fills (the driver's avail.idx).
    avail_idx: u16,
    /// avail.idx as last stored for the device.
    published_idx: u16,
    /// Chains the device can see and has not returned.
    published_in_flight: u16,
    /// Next used-ring position to consume.
    last_used: u16,
    /// The driver's copy of avail.flags.
    avail_flags: u16,
    /// Whether the driver wants interrupts (enable/disable_interrupts).
    interrupts: bool,
    /// `BadUsedIndex` was reported for the current bad used.idx; stay quiet until it is sane.
    used_index_reported: bool,
}

impl<H: Hal> SplitQueue<H> {
    /// Allocates and zeroes the rings of a queue with `size` entries (a power of two, at most
    /// [`MAX_QUEUE_SIZE`]) and, with indirect descriptors, the table pool.
    pub fn new(hal: &H, size: u16, features: QueueFeatures) -> Result<Self> {
        if size == 0 || size > MAX_QUEUE_SIZE || !size.is_power_of_two() {
            return Err(Error::InvalidArgument);
        }
        let layout = RingLayout::new(size);
        let buf = DmaBuffer::new(hal, layout.total)?;
        let ring = RingMemory::new(buf, layout).ok_or(Error::NoDmaMemory)?;
        let indirect = if features.indirect {
            Some(IndirectPool::new(hal, size)?)
        } else {
            None
        };
        Ok(Self {
            ring,
            indirect,
            shadow: Shadow::new(size)?,
            event_idx: features.event_idx,
            avail_idx: 0,
            published_idx: 0,
            published_in_flight: 0,
            last_used: 0,
            avail_flags: 0,
            interrupts: true,
            used_index_reported: false,
        })
    }

    /// Number of entries.
    pub fn size(&self) -> u16 {
        self.ring.layout().size
    }

    /// Bus address of the descriptor table (for the transport's queue_desc).
    pub fn desc_addr(&self) -> u64 {
        self.ring.phys(0)
    }

    /// Bus address of the available ring (queue_driver).
    pub fn avail_addr(&self) -> u64 {
        self.ring.phys(self.ring.layout().avail)
    }

    /// Bus address of the used ring (queue_device).
    pub fn used_addr(&self) -> u64 {
        self.ring.phys(self.ring.layout().used)
    }

    /// Posts one chain: `readable` segments then device-writable `writable` segments, and
    /// returns its head id (the token [`SplitQueue::pop_used`] gives back). The device does
    /// not see it before [`SplitQueue::publish`].
    ///
    /// Errors (nothing is posted and the queue is unchanged): [`Error::InvalidArgument`] for
    /// an empty chain, a zero-length segment, a segment that wraps the address space, or a
    /// chain of more than 4 GiB; [`Error::ChainTooLong`] if the chain has more segments than
    /// the queue has entries (the virtio limit, indirect or not), or — without indirect
    /// descriptors — could never fit; [`Error::QueueFull`] if it does not fit now.
    pub fn add(&mut self, readable: &[Segment], writable: &[Segment]) -> Result<u16> {
        let count = readable.len() + writable.len();
        if count == 0 {
            return Err(Error::InvalidArgument);
        }
        let mut total = 0u32;
        let mut writable_total = 0u32;
        for (i, s) in readable.iter().chain(writable).enumerate() {
            if s.len == 0 || s.addr.checked_add(u64::from(s.len)).is_none() {
                return Err(Error::InvalidArgument);
            }
            total = total.checked_add(s.len).ok_or(Error::InvalidArgument)?;
            if i >= readable.len() {
                writable_total += s.len; // <= total, cannot overflow
            }
        }
        if count > usize::from(self.size()) {
            return Err(Error::ChainTooLong);
        }
        let use_indirect = self.indirect.is_some() && count > 1 && count <= MAX_INDIRECT;
        let needed = if use_indirect { 1 } else { count };
        if needed > usize::from(self.shadow.num_free()) {
            return Err(Error::QueueFull);
        }

        let ring = &mut self.ring;
        let write = |index: u16, desc: &Desc| ring.write_desc(index, desc);
        let head = match (&mut self.indirect, use_indirect) {
            (Some(pool), true) => {
                // The chain will get the free-list head; its table is that head's table.
                let head = self.shadow.free_head();
                let (addr, len) = pool.write_table(head, readable, writable)?;
                let desc = Desc {
                    addr,
                    len,
                    flags: DESC_F_INDIRECT,
                    next: 0,
                };
                self.shadow
                    .take_chain(1, core::iter::once(desc), writable_total, write)?
            }
            _ => {
                let descs = readable
                    .iter()
                    .map(|s| (s, 0))
                    .chain(writable.iter().map(|s| (s, DESC_F_WRITE)))
                    .map(|(s, flags)| Desc {
                        addr: s.addr,
                        len: s.len,
                        flags,
                        next: 0,
                    });
                self.shadow
                    .take_chain(count, descs, writable_total, write)?
            }
        };
        let slot = self.avail_idx & (self.size() - 1);
        self.shadow.set_avail(self.avail_idx, head);
        self.ring.write_avail_entry(slot, head);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        Ok(head)
    }

    /// Makes every chain added since the last call visible to the device and returns whether
    /// the device must be notified. Call once per batch.
    pub fn publish(&mut self) -> bool {
        let new = self.avail_idx;
        let old = self.published_idx;
        let added = new.wrapping_sub(old);
        if added == 0 {
            return false;
        }
        // The descriptors and avail-ring entries must be visible before the index that
        // announces them.
        fence(Ordering::Release);
        self.ring.write_avail_idx(new);
        for pos in 0..added {
            self.shadow.mark_published(old.wrapping_add(pos));
        }
        self.published_idx = new;
        self.published_in_flight = self.published_in_flight.wrapping_add(added);
        // Store-load barrier: the idx store must be globally visible before we read the
        // device's suppression state. Otherwise (store buffers reorder a later load before an
        // earlier store, even on x86) we could read a stale "no notification needed" while the
        // device, about to sleep, re-enables notifications and reads our stale idx: both sides
        // would miss the new request. The device pairs this with its own full fence between
        // writing avail_event/flags and re-reading avail.idx.
        fence(Ordering::SeqCst);
        if self.event_idx {
            let event = self.ring.read_avail_event();
            // vring_need_event: notify iff `event` lies in [old, new) in wrapping u16 space.
            new.wrapping_sub(event).wrapping_sub(1) < added
        } else {
            self.ring.read_used_flags() & USED_F_NO_NOTIFY == 0
        }
    }

    /// Entries the device reports in the used ring that we have not consumed, if that number
    /// is plausible (at most the published chains in flight).
    fn pending_used(&self) -> core::result::Result<u16, ()> {
        let used_idx = self.ring.read_used_idx();
        let pending = used_idx.wrapping_sub(self.last_used);
        if pending > self.published_in_flight {
            Err(())
        } else {
            Ok(pending)
        }
    }

    /// The next completed chain, validated; `None` when there is nothing new.
    ///
    /// `Some(Err(BadUsedId))`: the entry names no published chain in flight (out of range, not
    /// a head, not in flight); it is skipped and nothing is freed. `Some(Err(BadUsedIndex))`:
    /// used.idx is ahead of us by more than the chains in flight; reported once, and nothing
    /// is consumed (`None`) until used.idx is plausible again or the queue is reset.
    pub fn pop_used(&mut self) -> Option<Result<UsedElem>> {
        let pending = self.pending_used();
        // Reads of the used element must not happen before the read of used.idx that
        // announced it.
        fence(Ordering::Acquire);
        match pending {
            Ok(0) => return None,
            Ok(_) => self.used_index_reported = false,
            Err(()) if self.used_index_reported => return None,
            Err(()) => {
                self.used_index_reported = true;
                return Some(Err(Error::BadUsedIndex));
            }
        }
        let slot = self.last_used & (self.size() - 1);
        let (raw_id, len) = self.ring.read_used_elem(slot);
        self.last_used = self.last_used.wrapping_add(1);
        if self.event_idx && self.interrupts {
            // Ask for an interrupt at the next completion, and make the store visible before
            // the next used.idx read (Linux's virtio_store_mb).
            self.ring.write_used_event(self.last_used);
            fence(Ordering::SeqCst);
        }
        let id = match u16::try_from(raw_id) {
            Ok(id) if self.is_published_in_flight(id) => id,
            _ => return Some(Err(Error::BadUsedId { id: raw_id })),
        };
        let chain = self.shadow.free_chain(id);
        self.published_in_flight = self.published_in_flight.saturating_sub(1);
        let written = if len > chain.writable {
            Err(Error::BadUsedLength {
                len,
                max: chain.writable,
            })
        } else {
            Ok(len)
        };
        Some(Ok(UsedElem { id, written }))
    }

    fn is_published_in_flight(&self, id: u16) -> bool {
        self.shadow
            .chain(id)
            .is_some_and(|c| c.in_flight && c.published)
    }

    /// Free descriptors in the ring.
    pub fn num_free(&self) -> u16 {
        self.shadow.num_free()
    }

    /// Chains posted (published or not) and not returned.
    pub fn in_flight(&self) -> u16 {
        self.shadow.in_flight()
    }

    /// Whether `id` is the head of a chain posted and not returned.
    pub fn is_in_flight(&self, id: u16) -> bool {
        self.shadow.chain(id).is_some_and(|c| c.in_flight)
    }

    /// Asks the device for interrupts again: with EVENT_IDX, used_event = the next used
    /// position (interrupt on the next completion), otherwise the NO_INTERRUPT flag cleared.
    /// A completion may have arrived while interrupts were off; check [`SplitQueue::has_used`]
    /// afterwards (the store is fenced before that read).
    pub fn enable_interrupts(&mut self) {
        self.interrupts = true;
        if self.event_idx {
            self.ring.write_used_event(self.last_used);
        } else {
            self.avail_flags &= !AVAIL_F_NO_INTERRUPT;
            self.ring.write_avail_flags(self.avail_flags);
        }
        fence(Ordering::SeqCst);
    }

    /// Tells the device interrupts are not needed (a hint; the device may still send some).
    /// With EVENT_IDX the flags must stay 0 (virtio 2.7.7.1), so used_event is moved to the
    /// position just behind us: the device would have to complete 65535 chains to reach it.
    pub fn disable_interrupts(&mut self) {
        self.interrupts = false;
        if self.event_idx {
            self.ring.write_used_event(self.last_used.wrapping_sub(1));
        } else {
            self.avail_flags |= AVAIL_F_NO_INTERRUPT;
            self.ring.write_avail_flags(self.avail_flags);
        }
    }

    /// True while used.idx is ahead of us by more than the chains in flight: the device broke
    /// the ring protocol (a duplicated or invented used entry) and nothing can be consumed
    /// again until the queue is reset, since no entry of the ring can be told genuine.
    pub fn used_index_ran_ahead(&self) -> bool {
        self.pending_used().is_err()
    }

    /// True if the device has used entries we have not popped (and their number is
    /// plausible: a used.idx that ran ahead reads as false, so an ISR/DPC loop cannot spin on
    /// it; [`SplitQueue::pop_used`] reports it).
    pub fn has_used(&self) -> bool {
        matches!(self.pending_used(), Ok(n) if n > 0)
    }

    /// After the device was reset: forgets every chain in flight, rebuilds the free list,
    /// zeroes the rings (interrupts enabled again) and returns the ids that were in flight,
    /// whose buffers the owner may now free. This is the one call that allocates; if even
    /// that small allocation fails the list comes back empty and the owner's buffers leak
    /// (never freed while in use).
    pub fn reset(&mut self) -> Vec<u16> {
        let mut ids = Vec::new();
        if ids
            .try_reserve_exact(usize::from(self.shadow.in_flight()))
            .is_ok()
        {
            ids.extend(self.shadow.in_flight_heads());
        }
        self.shadow.clear();
        self.ring.zero();
        self.avail_idx = 0;
        self.published_idx = 0;
        self.published_in_flight = 0;
        self.last_used = 0;
        self.avail_flags = 0;
        self.interrupts = true;
        self.used_index_reported = false;
        ids
    }
}

impl<H: Hal> core::fmt::Debug for SplitQueue<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SplitQueue")
            .field("size", &self.size())
            .field("num_free", &self.num_free())
            .field("in_flight", &self.in_flight())
            .field("avail_idx", &self.avail_idx)
            .field("last_used", &self.last_used)
            .finish()
    }
}
