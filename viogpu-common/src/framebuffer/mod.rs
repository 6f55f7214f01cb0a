//! Framebuffer backing: the guest memory behind one host resource, sized to the current mode.
//!
//! A mode up to 16384x16384 needs up to 1 GiB, and an 8K mode 127 MiB; the Windows kernel
//! rarely has that much physically contiguous memory. So the backing is a list of physically
//! contiguous chunks, each attached to the host resource as one mem entry of
//! RESOURCE_ATTACH_BACKING. QEMU refuses more than 16,384 entries per attach, so chunks are
//! large (16 MiB by default) and only fall back to smaller sizes when the platform cannot find
//! large ones (see [`AllocPolicy`]).
//!
//! **Bands.** Every chunk holds a whole number of pixel rows: chunk k holds rows
//! `first_row_k .. first_row_k + rows_k`, stored at the pitch `width * 4` with no padding
//! between rows. The host sees the resource's backing as the concatenation of the mem entries
//! `(phys_k, rows_k * pitch)`, so the TRANSFER_TO_HOST_2D offset `y * pitch + x * 4` is a
//! plain linear offset, and on the CPU side a row never straddles two chunks: a blit works
//! band by band on ordinary slices and needs no virtually contiguous mapping. The bytes of a
//! chunk past `rows_k * pitch` (page rounding) belong to no row and are never given to the
//! host.
//!
//! **Pixels** are 32-bit B8G8R8X8: a pixel is the little-endian `u32` `0xXXRRGGBB`.

mod allocate;
#[cfg(test)]
pub(crate) mod test_hal;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::ptr::NonNull;

use crate::hal::{DmaBuffer, Hal};
use crate::{Error, Result};

/// Bytes per pixel of every framebuffer (B8G8R8X8).
pub const BYTES_PER_PIXEL: u32 = 4;

/// Largest width or height accepted (the virtio-gpu and Windows limit in practice; it keeps
/// every size computation of a framebuffer below 1 GiB).
pub const MAX_DIMENSION: u32 = 16384;

/// QEMU's limit on mem entries in one RESOURCE_ATTACH_BACKING.
pub const QEMU_MAX_MEM_ENTRIES: usize = 16384;

/// How [`FramebufferBacking::allocate`] carves a framebuffer into chunks.
///
/// Chunk sizes are rounded to whole pages; a chunk always holds at least one row, so a row
/// wider than `min_chunk` raises the minimum to one row rounded up to pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocPolicy {
    /// First chunk size tried, in bytes. Default 16 MiB: an 8K mode (127 MiB) takes 8 entries,
    /// and 16 MiB contiguous allocations usually still succeed on a booted Windows guest.
    pub max_chunk: usize,
    /// Smallest chunk size tried after repeated allocation failures (each failure halves the
    /// size). Default 64 KiB.
    pub min_chunk: usize,
    /// Most mem entries (chunks) the backing may have. Default 4096: even when every large
    /// allocation fails, an 8K mode still fits at 64 KiB chunks (2160 entries), and the entry
    /// array (16 bytes per entry, 64 KiB) stays a quarter of [`QEMU_MAX_MEM_ENTRIES`].
    pub max_entries: usize,
    /// Every chunk but the last holds exactly a whole number of pages of rows, so the chunks
    /// given to the host as whole pages ([`FramebufferBacking::blob_entries`]) concatenate to
    /// the framebuffer with no gap: what a blob resource needs, since hosts map a blob's
    /// pages, not byte ranges (QEMU's udmabuf refuses entries that are not whole pages).
    /// It costs larger minimum chunks: a row count that is a multiple of
    /// `4096 / gcd(pitch, 4096)` (8 rows at 1920 wide, up to 1024 for an odd width).
    /// Default false.
    pub whole_pages: bool,
}

impl AllocPolicy {
    /// The default policy (field docs give the reasons).
    pub const DEFAULT: Self = Self {
        max_chunk: 16 << 20,
        min_chunk: 64 << 10,
        max_entries: 4096,
        whole_pages: false,
    };

    /// This policy with chunks of whole pages (see [`whole_pages`](Self::whole_pages)).
    pub const fn in_whole_pages(self) -> Self {
        Self {
            whole_pages: true,
            ..self
        }
    }

    /// A policy that allows only one physically contiguous chunk of `bytes` (rounded up to
    /// whole pages): for a framebuffer someone else reads linearly through its first byte's
    /// address (the next owner of the display after the driver stops). Allocation fails with
    /// [`Error::NoDmaMemory`] when the platform has no such block, and with
    /// [`Error::ModeTooLarge`] for a framebuffer larger than `bytes`.
    pub const fn contiguous(bytes: usize) -> Self {
        Self {
            max_chunk: bytes,
            min_chunk: bytes,
            max_entries: 1,
            whole_pages: false,
        }
    }

    /// Number of mem entries a `width` x `height` framebuffer takes when every chunk gets the
    /// full `max_chunk` size: the fewest possible. A mode list can drop modes for which this
    /// fails.
    ///
    /// Fails with [`Error::InvalidArgument`] for a zero dimension, and with
    /// [`Error::ModeTooLarge`] for a dimension above [`MAX_DIMENSION`] or more than
    /// `max_entries` entries.
    pub fn entries_for(&self, width: u32, height: u32) -> Result<usize> {
        let geometry = allocate::Geometry::new(width, height, self)?;
        let entries = geometry.chunks_needed(height, geometry.max_chunk);
        if entries > self.max_entries {
            return Err(Error::ModeTooLarge);
        }
        Ok(entries)
    }
}

impl Default for AllocPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The rows one chunk holds (see the module docs on bands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    /// First framebuffer row in the chunk.
    pub first_row: u32,
    /// Number of rows in the chunk (at least 1).
    pub rows: u32,
}

/// Where one chunk's rows live, as a raw pointer: for a reader that cannot borrow the
/// framebuffer (the bugcheck screen, which takes no lock) and keeps the memory alive by other
/// means. Row `first_row + i` starts at `base + i * pitch`; `rows * pitch` bytes in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawBand {
    /// CPU address of the band's first byte.
    pub base: NonNull<u8>,
    /// First framebuffer row in the chunk.
    pub first_row: u32,
    /// Number of rows in the chunk.
    pub rows: u32,
}

/// The rows one chunk holds, with their pixels.
#[derive(Debug)]
pub struct BandMut<'a> {
    /// First framebuffer row in the chunk.
    pub first_row: u32,
    /// Number of rows in the chunk (at least 1).
    pub rows: u32,
    /// The rows' bytes: exactly `rows * pitch`, row `first_row + i` at `i * pitch`.
    pub bytes: &'a mut [u8],
}

/// One physically contiguous chunk holding a band of rows.
struct Chunk<H: Hal> {
    buf: DmaBuffer<H>,
    first_row: u32,
    rows: u32,
    /// `rows * pitch`: the bytes of the chunk that are framebuffer (and the mem entry length).
    len: u32,
}

impl<H: Hal> Chunk<H> {
    fn end_row(&self) -> u32 {
        self.first_row.saturating_add(self.rows)
    }

    fn bytes(&self) -> &[u8] {
        // `len` never exceeds the buffer: DmaBuffer::new checked the region against it.
        self.buf
            .as_slice()
            .get(..self.len as usize)
            .unwrap_or_default()
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len as usize;
        self.buf.as_mut_slice().get_mut(..len).unwrap_or_default()
    }

    fn band_mut(&mut self) -> BandMut<'_> {
        BandMut {
            first_row: self.first_row,
            rows: self.rows,
            bytes: self.bytes_mut(),
        }
    }
}

/// The guest memory behind one host resource: `height` rows of `pitch` bytes in bands of
/// physically contiguous chunks (module docs). All memory is freed on drop; the owner keeps
/// the backing alive while the host may still read it (until DETACH_BACKING or UNREF of the
/// resource has completed, or the device is reset).
pub struct FramebufferBacking<H: Hal> {
    width: u32,
    height: u32,
    pitch: u32,
    /// In row order; the bands cover rows `0..height` exactly once.
    chunks: Vec<Chunk<H>>,
}

impl<H: Hal> FramebufferBacking<H> {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels (rows).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes per row: `width * 4`, no padding.
    pub fn pitch(&self) -> u32 {
        self.pitch
    }

    /// Framebuffer size as the host sees it: `height * pitch`, the sum of the entry lengths.
    pub fn size_bytes(&self) -> u64 {
        u64::from(self.height) * u64::from(self.pitch)
    }

    /// DMA memory held, including each chunk's page rounding: what is freed on drop.
    pub fn dma_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.buf.len() as u64).sum()
    }

    /// Number of mem entries (chunks).
    pub fn entry_count(&self) -> usize {
        self.chunks.len()
    }

    /// The mem entries for RESOURCE_ATTACH_BACKING, in order: `(bus address, length)`. Their
    /// concatenation is the framebuffer, row 0 first.
    pub fn entries(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.chunks.iter().map(|c| (c.buf.phys(), c.len))
    }

    /// The mem entries of a blob resource over this framebuffer: [`entries`](Self::entries)
    /// with each length rounded up to whole pages (within the chunk's memory), and the blob's
    /// size, their sum. `None` unless the concatenation of the rounded entries is still the
    /// framebuffer, row `y` at `y * pitch`: every entry but the last must already be whole
    /// pages (one chunk always qualifies; more need [`AllocPolicy::whole_pages`]).
    pub fn blob_entries(&self) -> Option<(impl Iterator<Item = (u64, u32)> + '_, u64)> {
        let last = self.chunks.len().checked_sub(1)?;
        let mut size = 0u64;
        for (index, chunk) in self.chunks.iter().enumerate() {
            let whole = blob_entry_len(chunk);
            if index != last && whole != chunk.len {
                return None;
            }
            size = size.checked_add(u64::from(whole))?;
        }
        let entries = self
            .chunks
            .iter()
            .map(|c| (c.buf.phys(), blob_entry_len(c)));
        Some((entries, size))
    }

    /// The bands, in row order (one per entry).
    pub fn bands(&self) -> impl Iterator<Item = Band> + '_ {
        self.chunks.iter().map(|c| Band {
            first_row: c.first_row,
            rows: c.rows,
        })
    }

    /// The bands with raw pointers to their memory, in row order.
    pub fn raw_bands(&self) -> impl Iterator<Item = RawBand> + '_ {
        self.chunks.iter().map(|c| RawBand {
            base: c.buf.as_ptr(),
            first_row: c.first_row,
            rows: c.rows,
        })
    }

    /// The bands with their pixels, in row order.
    pub fn bands_mut(&mut self) -> impl Iterator<Item = BandMut<'_>> {
        self.chunks.iter_mut().map(Chunk::band_mut)
    }

    fn chunk_index(&self, row: u32) -> Option<usize> {
        if row >= self.height {
            return None;
        }
        let index = self.chunks.partition_point(|c| c.end_row() <= row);
        let chunk = self.chunks.get(index)?;
        (chunk.first_row <= row).then_some(index)
    }

    /// The band holding `row`, or `None` if `row >= height`.
    pub fn band_for_row(&mut self, row: u32) -> Option<BandMut<'_>> {
        let index = self.chunk_index(row)?;
        self.chunks.get_mut(index).map(Chunk::band_mut)
    }

    /// The `pitch` bytes of row `y`, or `None` if `y >= height`.
    pub fn row(&self, y: u32) -> Option<&[u8]> {
        let chunk = self.chunks.get(self.chunk_index(y)?)?;
        let start = (y - chunk.first_row) as usize * self.pitch as usize;
        chunk.bytes().get(start..start + self.pitch as usize)
    }

    /// The `pitch` bytes of row `y` for writing, or `None` if `y >= height`.
    pub fn row_mut(&mut self, y: u32) -> Option<&mut [u8]> {
        let pitch = self.pitch as usize;
        let index = self.chunk_index(y)?;
        let chunk = self.chunks.get_mut(index)?;
        let start = (y - chunk.first_row) as usize * pitch;
        chunk.bytes_mut().get_mut(start..start + pitch)
    }

    /// Sets every pixel to `bgrx`.
    pub fn fill(&mut self, bgrx: u32) {
        let pixel = bgrx.to_le_bytes();
        // Black (and any grey whose four bytes match) is a plain byte fill: one memset per
        // band instead of a loop over 33 million pixels at 8K.
        let same_bytes = pixel.iter().all(|&b| b == pixel[0]);
        for band in self.bands_mut() {
            if same_bytes {
                band.bytes.fill(pixel[0]);
                continue;
            }
            for p in band.bytes.chunks_exact_mut(BYTES_PER_PIXEL as usize) {
                p.copy_from_slice(&pixel);
            }
        }
    }

    fn pixel_range(&self, x: u32) -> Option<core::ops::Range<usize>> {
        if x >= self.width {
            return None;
        }
        let start = x as usize * BYTES_PER_PIXEL as usize;
        Some(start..start + BYTES_PER_PIXEL as usize)
    }

    /// The pixel at `(x, y)`, or `None` outside the framebuffer.
    pub fn read_pixel(&self, x: u32, y: u32) -> Option<u32> {
        let bytes = self.row(y)?.get(self.pixel_range(x)?)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }

    /// Sets the pixel at `(x, y)`; [`Error::OutOfBounds`] outside the framebuffer.
    pub fn write_pixel(&mut self, x: u32, y: u32, bgrx: u32) -> Result<()> {
        let range = self.pixel_range(x).ok_or(Error::OutOfBounds)?;
        let bytes = self
            .row_mut(y)
            .and_then(|row| row.get_mut(range))
            .ok_or(Error::OutOfBounds)?;
        bytes.copy_from_slice(&bgrx.to_le_bytes());
        Ok(())
    }

    /// Copies the area both framebuffers share (the top-left `min(width) x min(height)`) from
    /// `other`, so a new mode shows the old picture until the next present instead of black.
    pub fn copy_rows_from(&mut self, other: &FramebufferBacking<H>) {
        let rows = self.height.min(other.height);
        let len = self.pitch.min(other.pitch) as usize;
        for y in 0..rows {
            let (Some(src), Some(dst)) = (other.row(y), self.row_mut(y)) else {
                return;
            };
            if let (Some(src), Some(dst)) = (src.get(..len), dst.get_mut(..len)) {
                dst.copy_from_slice(src);
            }
        }
    }
}

/// A chunk's length rounded up to whole pages, never past its memory (which the platform
/// hands out in whole pages).
fn blob_entry_len<H: Hal>(chunk: &Chunk<H>) -> u32 {
    let pages = (chunk.len as usize).div_ceil(crate::hal::PAGE_SIZE) * crate::hal::PAGE_SIZE;
    u32::try_from(pages.min(chunk.buf.len())).unwrap_or(chunk.len)
}

impl<H: Hal> core::fmt::Debug for FramebufferBacking<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FramebufferBacking")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("pitch", &self.pitch)
            .field("entries", &self.chunks.len())
            .finish()
    }
}
