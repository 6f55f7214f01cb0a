//! Carving a framebuffer into chunks: sizes, the fallback to smaller chunks, and the entry
//! budget.
//!
//! The allocator starts at `max_chunk`, halves the chunk size whenever the platform refuses an
//! allocation, and stays at the smaller size for the remaining chunks (once a size failed,
//! asking again for it would most likely fail again and cost time). It gives up with
//! [`Error::NoDmaMemory`] when the minimum size fails, or as soon as the remaining rows can no
//! longer fit in the entry budget at the current size (smaller chunks would only need more
//! entries). A mode that does not fit the budget even at `max_chunk` is refused up front with
//! [`Error::ModeTooLarge`], before any memory is taken. On every error the chunks taken so far
//! are dropped, which frees them.

use alloc::vec::Vec;

use super::{AllocPolicy, Chunk, FramebufferBacking, BYTES_PER_PIXEL, MAX_DIMENSION};
use crate::hal::{DmaBuffer, Hal, PAGE_SIZE};
use crate::{Error, Result};

const PAGE_MASK: usize = PAGE_SIZE - 1;

fn round_up_pages(n: usize) -> usize {
    // Saturates at the largest page multiple: a chunk size that large only means "everything".
    n.saturating_add(PAGE_MASK) & !PAGE_MASK
}

fn round_down_pages(n: usize) -> usize {
    n & !PAGE_MASK
}

/// The sizes derived from a mode and a policy.
pub(super) struct Geometry {
    pub(super) pitch: u32,
    pub(super) row_bytes: usize,
    /// Smallest chunk size: `min_chunk` or one row, whichever is larger, in whole pages.
    pub(super) min_chunk: usize,
    /// First chunk size tried: `max_chunk` in whole pages, at least `min_chunk`.
    pub(super) max_chunk: usize,
    /// Every chunk but the last holds a multiple of this many rows: 1, or with
    /// [`AllocPolicy::whole_pages`] the fewest rows that fill whole pages.
    row_quantum: u32,
}

impl Geometry {
    pub(super) fn new(width: u32, height: u32, policy: &AllocPolicy) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidArgument);
        }
        if width > MAX_DIMENSION || height > MAX_DIMENSION {
            return Err(Error::ModeTooLarge);
        }
        let pitch = width
            .checked_mul(BYTES_PER_PIXEL)
            .ok_or(Error::ModeTooLarge)?;
        let row_bytes = usize::try_from(pitch).map_err(|_| Error::ModeTooLarge)?;
        // The whole framebuffer must be addressable; with MAX_DIMENSION it is at most 1 GiB.
        u32::try_from(u64::from(pitch) * u64::from(height)).map_err(|_| Error::ModeTooLarge)?;
        // PAGE_SIZE is a power of two: gcd(row_bytes, PAGE_SIZE) is the largest power of two
        // dividing both, and that many bytes of rows end on a page boundary every
        // PAGE_SIZE / gcd rows.
        let row_quantum = if policy.whole_pages {
            let gcd = 1usize << row_bytes.trailing_zeros().min(PAGE_SIZE.trailing_zeros());
            u32::try_from(PAGE_SIZE / gcd).map_err(|_| Error::ModeTooLarge)?
        } else {
            1
        };
        let quantum_bytes = row_bytes
            .checked_mul(row_quantum as usize)
            .ok_or(Error::ModeTooLarge)?;
        let min_chunk = round_up_pages(policy.min_chunk).max(round_up_pages(quantum_bytes));
        let max_chunk = round_down_pages(policy.max_chunk).max(min_chunk);
        Ok(Self {
            pitch,
            row_bytes,
            min_chunk,
            max_chunk,
            row_quantum,
        })
    }

    /// Rows in a chunk of `chunk_size` bytes: a multiple of the row quantum, at least one
    /// quantum (sizes from `min_chunk` up hold one).
    fn rows_per_chunk(&self, chunk_size: usize) -> u32 {
        let rows = chunk_size.checked_div(self.row_bytes).unwrap_or(0);
        let rows = u32::try_from(rows).unwrap_or(u32::MAX);
        let q = self.row_quantum.max(1);
        (rows - rows % q).max(q)
    }

    /// Chunks of `chunk_size` bytes needed for `rows` rows.
    pub(super) fn chunks_needed(&self, rows: u32, chunk_size: usize) -> usize {
        rows.div_ceil(self.rows_per_chunk(chunk_size)) as usize
    }
}

impl<H: Hal> FramebufferBacking<H> {
    /// Allocates the backing of a `width` x `height` framebuffer; the memory is zeroed
    /// (black). Chunks of `policy.max_chunk` are tried first; each refused allocation halves
    /// the size (down to `policy.min_chunk`, or one row if that is larger), and the smaller
    /// size is kept for the remaining chunks.
    ///
    /// Errors: [`Error::InvalidArgument`] for a zero dimension; [`Error::ModeTooLarge`] for a
    /// dimension above [`MAX_DIMENSION`] or a mode that needs more than `policy.max_entries`
    /// chunks even at `policy.max_chunk`; [`Error::NoDmaMemory`] when the platform cannot
    /// provide the memory within the entry budget; [`Error::NoMemory`] if the chunk list
    /// cannot be allocated. On error nothing stays allocated.
    pub fn allocate(hal: &H, width: u32, height: u32, policy: &AllocPolicy) -> Result<Self> {
        let geometry = Geometry::new(width, height, policy)?;
        let needed = geometry.chunks_needed(height, geometry.max_chunk);
        if needed > policy.max_entries {
            return Err(Error::ModeTooLarge);
        }
        let mut chunks: Vec<Chunk<H>> = Vec::new();
        chunks
            .try_reserve_exact(needed)
            .map_err(|_| Error::NoMemory)?;

        let mut chunk_size = geometry.max_chunk;
        let mut next_row = 0u32;
        while next_row < height {
            let rows_left = height - next_row;
            let rows = rows_left.min(geometry.rows_per_chunk(chunk_size));
            // rows * pitch <= height * pitch, which Geometry::new bounded to u32.
            let len = rows
                .checked_mul(geometry.pitch)
                .ok_or(Error::ModeTooLarge)?;
            match DmaBuffer::new(hal, len as usize) {
                Ok(buf) => {
                    crate::fallible::try_push(
                        &mut chunks,
                        Chunk {
                            buf,
                            first_row: next_row,
                            rows,
                            len,
                        },
                    )?;
                    next_row += rows;
                }
                Err(_) => {
                    let tried = round_up_pages(len as usize);
                    if tried <= geometry.min_chunk {
                        return Err(Error::NoDmaMemory);
                    }
                    // Halve until the next request is smaller than the refused one (the
                    // refused one may have been a short last chunk). Sizes stay page
                    // multiples, and `tried > min_chunk` makes the loop end below `tried`.
                    while chunk_size >= tried && chunk_size > geometry.min_chunk {
                        chunk_size = round_down_pages(chunk_size / 2).max(geometry.min_chunk);
                    }
                    let budget = policy.max_entries.saturating_sub(chunks.len());
                    if geometry.chunks_needed(rows_left, chunk_size) > budget {
                        return Err(Error::NoDmaMemory);
                    }
                }
            }
        }
        Ok(Self {
            width,
            height,
            pitch: geometry.pitch,
            chunks,
        })
    }
}
