//! The command layer: ownership of every request from the moment it is posted until the
//! device gives it back.
//!
//! A request is a DMA buffer holding the command bytes followed by room for the response. When
//! it is posted, the buffer belongs to the device. A waiter that gives up (timeout) does not
//! free it: it *abandons* the request, and the buffer is reclaimed only when the device
//! completes it or the device is reset. This is exactly the rule whose violation made the C++
//! driver blue-screen with DRIVER_IRQL_NOT_LESS_OR_EQUAL after a timeout.
//!
//! Small requests use buffers from a pool allocated up front (one per ring slot), so the polled
//! mode used by the bugcheck screen never allocates. A request too large for a pool buffer (a
//! long mem-entry list) gets a dedicated DMA buffer, when allocation is allowed.
//!
//! A device that breaks the ring protocol (a used entry naming no request in flight, a length
//! larger than the request's writable part, a used index that runs ahead of the requests in
//! flight) is remembered in [`CommandQueue::ring_fault`] until the device is reset: the queue
//! cannot vouch for the device any more, and its owner should reset it. A used index that ran
//! ahead wedges the queue (no entry can be consumed), so from then on [`CommandQueue::submit`]
//! refuses new requests at once with [`Error::BadUsedIndex`] instead of posting them into a
//! ring nobody reads.
//!
//! [`CommandQueue`] is a plain state machine (`&mut self`); the caller serialises access with
//! the lock of its platform (see [`crate::gpu`]). A [`Ticket`] names one request; it carries a
//! generation so that a stale ticket can never read the response of a later request that
//! happens to reuse the same ring slot.

use alloc::vec::Vec;

use crate::hal::{DmaBuffer, Hal, PAGE_SIZE};
use crate::virtqueue::{Segment, SplitQueue};
use crate::{Error, Result};

/// Size of each pre-allocated request buffer.
pub const POOL_BUFFER_SIZE: usize = PAGE_SIZE;

/// Offset of the response inside a request buffer: after the command, aligned to 64 bytes so a
/// response never shares a cache line with the command the device reads.
fn response_offset(request_len: usize) -> Option<usize> {
    request_len.checked_add(63).map(|n| n & !63)
}

/// Names one posted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    id: u16,
    generation: u32,
}

/// Where a request's bytes live.
enum RequestBuffer<H: Hal> {
    /// Index into the pre-allocated pool.
    Pooled(usize),
    /// A dedicated buffer for a large request.
    Owned(DmaBuffer<H>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// The device owns the buffer; someone waits for the answer.
    Waiting,
    /// The device owns the buffer; nobody waits. Reclaimed at completion.
    Abandoned,
    /// The device gave the buffer back; the response waits to be taken.
    Done,
}

struct Slot<H: Hal> {
    state: SlotState,
    generation: u32,
    buffer: RequestBuffer<H>,
    response_offset: usize,
    response_len: usize,
    /// What the device reported as written, validated by the queue.
    written: Result<u32>,
}

/// What one pass over the used ring found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Completions {
    /// Requests completed for a waiter.
    pub completed: u32,
    /// Abandoned requests whose buffers were reclaimed.
    pub reclaimed: u32,
    /// Used entries the device got wrong (bogus id, bad length, index running ahead).
    pub device_faults: u32,
    /// Abandoned (fire-and-forget) requests whose response carried an error type.
    pub error_responses: u32,
}

/// Whether `submit` may allocate a dedicated DMA buffer for a request too large for the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Normal operation.
    Allowed,
    /// Bugcheck / high-IRQL paths: pool buffers only.
    Forbidden,
}

/// One virtqueue plus the requests in flight on it.
pub struct CommandQueue<H: Hal> {
    hal: H,
    queue: SplitQueue<H>,
    pool: Vec<DmaBuffer<H>>,
    free_pool: Vec<usize>,
    /// The requests, by slot index (what a [`Ticket`] names). A slot lives from submission
    /// until its answer is taken (or it is abandoned and returned), which can be after the
    /// device gave the descriptor chain back and the ring handed the chain's id to another
    /// request: so slots are not indexed by descriptor id. Twice the ring size, since a
    /// finished request can wait for its taker while the ring is full of new ones.
    slots: Vec<Option<Slot<H>>>,
    /// For each descriptor id the device holds: the slot of its request.
    chain_slot: Vec<Option<u16>>,
    next_generation: u32,
    pending_publish: bool,
    /// The first ring-protocol break the device made since the last reset.
    ring_fault: Option<Error>,
}

impl<H: Hal> CommandQueue<H> {
    /// Wraps a queue and allocates one pool buffer per ring slot.
    pub fn new(hal: &H, queue: SplitQueue<H>) -> Result<Self> {
        let size = usize::from(queue.size());
        let mut pool = Vec::new();
        pool.try_reserve_exact(size).map_err(|_| Error::NoMemory)?;
        for _ in 0..size {
            crate::fallible::try_push(&mut pool, DmaBuffer::new(hal, POOL_BUFFER_SIZE)?)?;
        }
        let mut free_pool = Vec::new();
        free_pool
            .try_reserve_exact(size)
            .map_err(|_| Error::NoMemory)?;
        free_pool.extend((0..size).rev());
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(2 * size)
            .map_err(|_| Error::NoMemory)?;
        #[allow(clippy::disallowed_methods)] // reserved just above: no allocation
        slots.resize_with(2 * size, || None);
        let mut chain_slot = Vec::new();
        chain_slot
            .try_reserve_exact(size)
            .map_err(|_| Error::NoMemory)?;
        #[allow(clippy::disallowed_methods)] // reserved just above: no allocation
        chain_slot.resize(size, None);
        Ok(Self {
            hal: hal.clone(),
            queue,
            pool,
            free_pool,
            slots,
            chain_slot,
            next_generation: 1,
            pending_publish: false,
            ring_fault: None,
        })
    }

    /// The underlying ring (addresses for queue setup, interrupt suppression).
    pub fn queue(&self) -> &SplitQueue<H> {
        &self.queue
    }

    /// Mutable access to the ring, for interrupt suppression.
    pub fn queue_mut(&mut self) -> &mut SplitQueue<H> {
        &mut self.queue
    }

    /// The first way the device broke the ring protocol since the last reset (a bad used id,
    /// length or index), if it did: the device should be reset.
    pub fn ring_fault(&self) -> Option<Error> {
        self.ring_fault
    }

    /// True while the device's used index ran ahead of the requests in flight: nothing is
    /// consumed from this ring again until the device is reset.
    pub fn is_wedged(&self) -> bool {
        self.queue.used_index_ran_ahead()
    }

    fn note_fault(&mut self, e: Error) {
        if self.ring_fault.is_none() {
            self.ring_fault = Some(e);
        }
    }

    /// Requests posted and not yet given back by the device (waited for or abandoned).
    pub fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|s| s.state != SlotState::Done)
            .count()
    }

    /// Abandoned requests whose buffers the device still holds.
    pub fn abandoned(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|s| s.state == SlotState::Abandoned)
            .count()
    }

    /// Bytes of dedicated (non-pool) DMA memory held by requests.
    pub fn dedicated_bytes(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .map(|s| match &s.buffer {
                RequestBuffer::Owned(b) => b.len(),
                RequestBuffer::Pooled(_) => 0,
            })
            .sum()
    }

    /// Posts a request made of the concatenation of `parts`, with `response_len` bytes of
    /// writable room for the answer. Not visible to the device until [`Self::publish`].
    ///
    /// `Err(QueueFull)` means nothing was posted and the caller should wait for completions;
    /// the request is never silently dropped. `Err(BadUsedIndex)`: the queue is wedged (see
    /// [`Self::is_wedged`]); nothing was posted.
    pub fn submit(
        &mut self,
        parts: &[&[u8]],
        response_len: usize,
        allocation: Allocation,
    ) -> Result<Ticket> {
        let request_len = parts
            .iter()
            .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
            .ok_or(Error::InvalidArgument)?;
        if request_len == 0 || response_len == 0 {
            return Err(Error::InvalidArgument);
        }
        let resp_off = response_offset(request_len).ok_or(Error::InvalidArgument)?;
        let total = resp_off
            .checked_add(response_len)
            .ok_or(Error::InvalidArgument)?;
        let req_len32 = u32::try_from(request_len).map_err(|_| Error::InvalidArgument)?;
        let resp_len32 = u32::try_from(response_len).map_err(|_| Error::InvalidArgument)?;
        if self.is_wedged() {
            self.note_fault(Error::BadUsedIndex);
            return Err(Error::BadUsedIndex);
        }
        if self.queue.num_free() == 0 {
            return Err(Error::QueueFull);
        }
        // A free slot (finished requests may still hold theirs until taken).
        let Some(slot_index) = self.slots.iter().position(Option::is_none) else {
            return Err(Error::QueueFull);
        };
        let ticket_id = u16::try_from(slot_index).map_err(|_| Error::QueueFull)?;

        let mut buffer = if total <= POOL_BUFFER_SIZE {
            match self.free_pool.pop() {
                Some(index) => RequestBuffer::Pooled(index),
                None => return Err(Error::QueueFull),
            }
        } else if allocation == Allocation::Allowed {
            RequestBuffer::Owned(DmaBuffer::new(&self.hal, total)?)
        } else {
            return Err(Error::NoMemory);
        };

        let result = self.fill_and_post(&mut buffer, parts, resp_off, req_len32, resp_len32);
        let id = match result {
            Ok(id) => id,
            Err(e) => {
                self.release_buffer(buffer);
                return Err(e);
            }
        };
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let (Some(chain), Some(slot)) = (
            self.chain_slot.get_mut(usize::from(id)),
            self.slots.get_mut(slot_index),
        ) else {
            // The queue handed out an id outside its own size: a bug in the queue, not the
            // device. The chain is posted; keep its buffer forever rather than free it.
            core::mem::forget(buffer);
            return Err(Error::InvalidArgument);
        };
        *chain = Some(ticket_id);
        *slot = Some(Slot {
            state: SlotState::Waiting,
            generation,
            buffer,
            response_offset: resp_off,
            response_len,
            written: Ok(0),
        });
        self.pending_publish = true;
        Ok(Ticket {
            id: ticket_id,
            generation,
        })
    }

    fn buffer_mut<'a>(
        pool: &'a mut [DmaBuffer<H>],
        buffer: &'a mut RequestBuffer<H>,
    ) -> Result<&'a mut DmaBuffer<H>> {
        match buffer {
            RequestBuffer::Pooled(i) => pool.get_mut(*i).ok_or(Error::InvalidArgument),
            RequestBuffer::Owned(b) => Ok(b),
        }
    }

    fn buffer_ref<'a>(
        pool: &'a [DmaBuffer<H>],
        buffer: &'a RequestBuffer<H>,
    ) -> Option<&'a DmaBuffer<H>> {
        match buffer {
            RequestBuffer::Pooled(i) => pool.get(*i),
            RequestBuffer::Owned(b) => Some(b),
        }
    }

    fn fill_and_post(
        &mut self,
        buffer: &mut RequestBuffer<H>,
        parts: &[&[u8]],
        resp_off: usize,
        req_len: u32,
        resp_len: u32,
    ) -> Result<u16> {
        let dma = Self::buffer_mut(&mut self.pool, buffer)?;
        let mut offset = 0usize;
        for part in parts {
            dma.write_bytes(offset, part)?;
            offset += part.len();
        }
        // A response area that still holds an earlier answer must not be mistaken for a fresh
        // one if the device reports fewer bytes than it should.
        dma.fill(resp_off, resp_len as usize, 0)?;
        let readable = [Segment {
            addr: dma.phys(),
            len: req_len,
        }];
        let writable = [Segment {
            addr: dma.phys_at(resp_off)?,
            len: resp_len,
        }];
        self.queue.add(&readable, &writable)
    }

    fn release_buffer(&mut self, buffer: RequestBuffer<H>) {
        match buffer {
            // Capacity for every pool index was reserved in `new`, so this never allocates.
            #[allow(clippy::disallowed_methods)]
            RequestBuffer::Pooled(i) => self.free_pool.push(i),
            RequestBuffer::Owned(b) => drop(b),
        }
    }

    /// Makes every request submitted since the last call visible to the device. Returns true
    /// if the device must be notified (one notification per batch).
    pub fn publish(&mut self) -> bool {
        if !self.pending_publish {
            return false;
        }
        self.pending_publish = false;
        self.queue.publish()
    }

    /// Takes everything the device has returned. Waiters' requests become `Done`; abandoned
    /// requests are reclaimed. Bounded by the ring size, so a device that keeps writing cannot
    /// hold the caller here.
    pub fn process_used(&mut self) -> Completions {
        let mut stats = Completions::default();
        let bound = usize::from(self.queue.size()) * 2;
        for _ in 0..bound {
            let used = match self.queue.pop_used() {
                None => break,
                Some(Err(e)) => {
                    self.note_fault(e);
                    stats.device_faults += 1;
                    continue;
                }
                Some(Ok(used)) => used,
            };
            if let Err(e) = used.written {
                self.note_fault(e);
                stats.device_faults += 1;
            }
            let slot_index = self
                .chain_slot
                .get_mut(usize::from(used.id))
                .and_then(Option::take);
            let Some(entry) = slot_index.and_then(|i| self.slots.get_mut(usize::from(i))) else {
                self.note_fault(Error::BadUsedId {
                    id: u32::from(used.id),
                });
                stats.device_faults += 1;
                continue;
            };
            let Some(slot) = entry.as_mut() else {
                // The queue said it was in flight but we have no record: count, keep going.
                self.note_fault(Error::BadUsedId {
                    id: u32::from(used.id),
                });
                stats.device_faults += 1;
                continue;
            };
            match slot.state {
                SlotState::Waiting => {
                    slot.state = SlotState::Done;
                    slot.written = used.written;
                    stats.completed += 1;
                }
                SlotState::Abandoned => {
                    if let Some(slot) = entry.take() {
                        if Self::response_is_error(&self.pool, &slot, used.written) {
                            stats.error_responses += 1;
                        }
                        self.release_buffer(slot.buffer);
                    }
                    stats.reclaimed += 1;
                }
                SlotState::Done => {
                    self.ring_fault.get_or_insert(Error::BadUsedId {
                        id: u32::from(used.id),
                    });
                    stats.device_faults += 1;
                }
            }
        }
        stats
    }

    /// Reads the response type (first 4 bytes of every virtio-gpu response) of a completed
    /// request and tells whether it is an error (0x1200..0x12ff).
    fn response_is_error(pool: &[DmaBuffer<H>], slot: &Slot<H>, written: Result<u32>) -> bool {
        let Ok(written) = written else { return true };
        if written == 0 {
            // The cursor queue carries no response: QEMU (and the device model) complete its
            // requests with a used length of 0, as Linux expects.
            return false;
        }
        if written < 4 {
            return true;
        }
        let Some(dma) = Self::buffer_ref(pool, &slot.buffer) else {
            return true;
        };
        let mut ty = [0u8; 4];
        if dma.read_bytes(slot.response_offset, &mut ty).is_err() {
            return true;
        }
        (0x1200..0x1300).contains(&u32::from_le_bytes(ty))
    }

    fn slot_for(&mut self, ticket: Ticket) -> Option<&mut Option<Slot<H>>> {
        let entry = self.slots.get_mut(usize::from(ticket.id))?;
        match entry {
            Some(slot) if slot.generation == ticket.generation => Some(entry),
            _ => None,
        }
    }

    /// If the request is done, copies its response (at most `out.len()` bytes) into `out`,
    /// frees the request and returns the number of bytes the device wrote. `None` while the
    /// device still holds it. An unknown or stale ticket gives `Err(InvalidArgument)`.
    pub fn take_response(&mut self, ticket: Ticket, out: &mut [u8]) -> Option<Result<usize>> {
        let Some(entry) = self.slot_for(ticket) else {
            return Some(Err(Error::InvalidArgument));
        };
        match entry.as_ref().map(|s| s.state) {
            Some(SlotState::Done) => {}
            Some(SlotState::Waiting) => return None,
            _ => return Some(Err(Error::InvalidArgument)),
        }
        let slot = entry.take()?;
        let result = slot.written.and_then(|written| {
            let n = (written as usize).min(out.len()).min(slot.response_len);
            let dma = Self::buffer_ref(&self.pool, &slot.buffer).ok_or(Error::InvalidArgument)?;
            let dst = out.get_mut(..n).ok_or(Error::InvalidArgument)?;
            dma.read_bytes(slot.response_offset, dst)?;
            Ok(written as usize)
        });
        self.release_buffer(slot.buffer);
        Some(result)
    }

    /// Gives up waiting for a request. If the device already returned it, it is freed now;
    /// otherwise its buffer stays with the device and is reclaimed at completion or reset.
    pub fn abandon(&mut self, ticket: Ticket) {
        let Some(entry) = self.slot_for(ticket) else {
            return;
        };
        match entry.as_ref().map(|s| s.state) {
            Some(SlotState::Done) => {
                if let Some(slot) = entry.take() {
                    self.release_buffer(slot.buffer);
                }
            }
            Some(SlotState::Waiting) => {
                if let Some(slot) = entry.as_mut() {
                    slot.state = SlotState::Abandoned;
                }
            }
            _ => {}
        }
    }

    /// After the device was reset it holds no buffer any more: every request is given back.
    /// Waiters' requests complete with `DeviceNeedsReset`.
    pub fn reset_after_device_reset(&mut self) {
        let _ = self.queue.reset();
        self.chain_slot.iter_mut().for_each(|c| *c = None);
        self.pending_publish = false;
        self.ring_fault = None;
        for i in 0..self.slots.len() {
            let Some(entry) = self.slots.get_mut(i) else {
                continue;
            };
            let waiting = matches!(entry, Some(s) if s.state == SlotState::Waiting);
            if waiting {
                if let Some(slot) = entry.as_mut() {
                    slot.state = SlotState::Done;
                    slot.written = Err(Error::DeviceNeedsReset);
                }
            } else if matches!(entry, Some(s) if s.state == SlotState::Abandoned) {
                if let Some(slot) = entry.take() {
                    self.release_buffer(slot.buffer);
                }
            }
        }
    }
}
