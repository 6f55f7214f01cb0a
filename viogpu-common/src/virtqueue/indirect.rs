//! The pool of indirect descriptor tables.
//!
//! An indirect chain occupies exactly one ring descriptor, its head, so at most `size`
//! indirect chains are in flight and each head id can own one table: the table of the chain
//! whose head is `h` is table `h` of the pool, and no free list is needed. The pool is
//! allocated once in `SplitQueue::new` (posting must work without allocating, e.g. on the
//! bugcheck path) in chunks of [`TABLES_PER_CHUNK`] tables, so a large queue does not need one
//! huge physically contiguous region. Memory cost: `size * MAX_INDIRECT * 16` bytes (1 KiB per
//! ring entry, 256 KiB for QEMU's 256-entry virtio-gpu queues).

use alloc::vec::Vec;
use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{Immutable, IntoBytes, KnownLayout};

use super::layout::{DESC_F_NEXT, DESC_F_WRITE, DESC_SIZE};
use super::{Segment, MAX_INDIRECT};
use crate::hal::{DmaBuffer, Hal};
use crate::{Error, Result};

/// Tables per DMA chunk: 64 KiB chunks.
const TABLES_PER_CHUNK: usize = 64;
/// Bytes of one table.
const TABLE_BYTES: usize = MAX_INDIRECT * DESC_SIZE;

/// One descriptor in the wire format (virtio is little-endian).
#[derive(IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct WireDesc {
    addr: U64,
    len: U32,
    flags: U16,
    next: U16,
}

/// One preallocated indirect table per ring entry.
pub struct IndirectPool<H: Hal> {
    chunks: Vec<DmaBuffer<H>>,
}

impl<H: Hal> IndirectPool<H> {
    /// Allocates tables for a queue of `size` entries.
    pub fn new(hal: &H, size: u16) -> Result<Self> {
        let tables = usize::from(size);
        let chunk_count = tables.div_ceil(TABLES_PER_CHUNK);
        let mut chunks = Vec::new();
        chunks
            .try_reserve_exact(chunk_count)
            .map_err(|_| Error::NoMemory)?;
        for i in 0..chunk_count {
            let in_chunk = (tables - i * TABLES_PER_CHUNK).min(TABLES_PER_CHUNK);
            crate::fallible::try_push(&mut chunks, DmaBuffer::new(hal, in_chunk * TABLE_BYTES)?)?;
        }
        Ok(Self { chunks })
    }

    /// Writes the table of head `head` for `readable` then `writable` segments (together at
    /// most [`MAX_INDIRECT`], checked by the caller) and returns its bus address and length.
    pub fn write_table(
        &mut self,
        head: u16,
        readable: &[Segment],
        writable: &[Segment],
    ) -> Result<(u64, u32)> {
        let head = usize::from(head);
        let chunk = self
            .chunks
            .get_mut(head / TABLES_PER_CHUNK)
            .ok_or(Error::InvalidArgument)?;
        let base = (head % TABLES_PER_CHUNK) * TABLE_BYTES;
        let count = readable.len() + writable.len();
        if count == 0 || count > MAX_INDIRECT {
            return Err(Error::ChainTooLong);
        }
        let segments = readable
            .iter()
            .map(|s| (s, 0))
            .chain(writable.iter().map(|s| (s, DESC_F_WRITE)));
        for (i, (segment, write)) in segments.enumerate() {
            let last = i + 1 == count;
            let desc = WireDesc {
                addr: U64::new(segment.addr),
                len: U32::new(segment.len),
                flags: U16::new(if last { write } else { write | DESC_F_NEXT }),
                // i + 1 < MAX_INDIRECT fits a u16.
                next: U16::new(if last { 0 } else { (i + 1) as u16 }),
            };
            chunk.write_obj(base + i * DESC_SIZE, &desc)?;
        }
        let phys = chunk.phys_at(base)?;
        Ok((phys, (count * DESC_SIZE) as u32))
    }
}
