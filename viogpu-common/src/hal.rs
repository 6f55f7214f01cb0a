//! The platform boundary: DMA memory and device registers.
//!
//! The core never allocates device-visible memory or touches a register by itself. A platform
//! (the Windows kernel, a test process over `vm-memory`, a QEMU guest over `/dev/mem`)
//! implements [`Hal`] to hand out physically contiguous, zeroed DMA regions with their bus
//! addresses, and [`RegisterAccess`] for each mapped register window of the device.
//!
//! [`DmaBuffer`] is the owned form of a region: it frees the region when dropped, so the one
//! rule that matters — a buffer the device may still write is never freed — is kept by keeping
//! the `DmaBuffer` alive (the command layer parks buffers of abandoned requests until the
//! device returns them or is reset).

use core::ptr::NonNull;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::{Error, Result};

/// Size of a page; DMA regions are aligned to and sized in multiples of it.
pub const PAGE_SIZE: usize = 4096;

/// One physically contiguous region of DMA memory, as the platform hands it out.
#[derive(Debug)]
pub struct DmaRegion {
    /// Where the CPU reaches the first byte.
    pub virt: NonNull<u8>,
    /// The device (bus) address of the first byte.
    pub phys: u64,
    /// Length in bytes, a multiple of [`PAGE_SIZE`].
    pub len: usize,
}

/// DMA memory provided by the platform.
///
/// # Safety
/// An implementation guarantees, for each region returned by [`Hal::dma_alloc`] until it is
/// passed to [`Hal::dma_free`]:
/// - `virt` is valid for reads and writes of `len` bytes and is not aliased by any other
///   region or Rust object;
/// - `phys..phys + len` is the physically contiguous bus address range of those same bytes;
/// - the region is zero-filled, `PAGE_SIZE`-aligned both virtually and physically, and `len`
///   is at least the requested size rounded up to whole pages.
pub unsafe trait Hal: Clone + Send + Sync {
    /// Allocates a zeroed, physically contiguous region of at least `len` bytes, or `None`.
    /// Must not block when called at DISPATCH_LEVEL-like contexts; may fail at any time.
    fn dma_alloc(&self, len: usize) -> Option<DmaRegion>;

    /// Returns a region to the platform.
    ///
    /// # Safety
    /// `region` was returned by `dma_alloc` of this platform, is freed once, and the device no
    /// longer accesses it (it gave the buffer back, or was reset).
    unsafe fn dma_free(&self, region: DmaRegion);
}

/// An owned DMA region; freed on drop.
pub struct DmaBuffer<H: Hal> {
    region: DmaRegion,
    hal: H,
}

// SAFETY: the buffer exclusively owns its region (Hal contract: not aliased), and H is Send.
unsafe impl<H: Hal> Send for DmaBuffer<H> {}
// SAFETY: shared references only allow reads through `read_*`, which copy out.
unsafe impl<H: Hal> Sync for DmaBuffer<H> {}

impl<H: Hal> DmaBuffer<H> {
    /// Allocates at least `len` bytes (rounded up to pages) of zeroed DMA memory.
    pub fn new(hal: &H, len: usize) -> Result<Self> {
        if len == 0 {
            return Err(Error::InvalidArgument);
        }
        let region = hal.dma_alloc(len).ok_or(Error::NoDmaMemory)?;
        if region.len < len {
            // A platform bug; give the region back rather than overrun it.
            // SAFETY: just allocated by this hal, never shown to the device.
            unsafe { hal.dma_free(region) };
            return Err(Error::NoDmaMemory);
        }
        Ok(Self {
            region,
            hal: hal.clone(),
        })
    }

    /// Length in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.region.len
    }

    /// Always false: a buffer has at least one page.
    pub fn is_empty(&self) -> bool {
        self.region.len == 0
    }

    /// Bus address of the first byte.
    pub fn phys(&self) -> u64 {
        self.region.phys
    }

    /// Bus address of byte `offset`, if inside the buffer.
    pub fn phys_at(&self, offset: usize) -> Result<u64> {
        if offset >= self.region.len {
            return Err(Error::OutOfBounds);
        }
        Ok(self.region.phys + offset as u64)
    }

    /// Raw CPU pointer to the first byte, for code that needs volatile access (rings).
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.region.virt
    }

    fn check(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.region.len => Ok(()),
            _ => Err(Error::OutOfBounds),
        }
    }

    /// Copies `src` into the buffer at `offset`.
    pub fn write_bytes(&mut self, offset: usize, src: &[u8]) -> Result<()> {
        self.check(offset, src.len())?;
        // SAFETY: `offset + src.len() <= len` (checked above), so `offset` stays inside the
        // region's allocation or one past its end.
        let dst = unsafe { self.region.virt.as_ptr().add(offset) };
        // SAFETY: range checked above; the region is valid for writes (Hal contract) and we
        // hold it exclusively (&mut self); src cannot overlap DMA memory owned by us.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        Ok(())
    }

    /// Copies bytes at `offset` out into `dst`. The device may write the buffer concurrently;
    /// the bytes are a snapshot and must be validated by the caller.
    pub fn read_bytes(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        self.check(offset, dst.len())?;
        // SAFETY: `offset + dst.len() <= len` (checked above), so `offset` stays inside the
        // region's allocation or one past its end.
        let src = unsafe { self.region.virt.as_ptr().add(offset) };
        // SAFETY: range checked; region valid for reads (Hal contract); dst is ordinary memory.
        unsafe { core::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Writes a wire value at `offset`.
    pub fn write_obj<T: IntoBytes + Immutable>(&mut self, offset: usize, value: &T) -> Result<()> {
        self.write_bytes(offset, value.as_bytes())
    }

    /// Reads a wire value from `offset` (any bit pattern is a valid `T`).
    pub fn read_obj<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T> {
        let mut value = T::new_zeroed();
        self.read_bytes(offset, value.as_mut_bytes())?;
        Ok(value)
    }

    /// Fills `len` bytes at `offset` with `byte`.
    pub fn fill(&mut self, offset: usize, len: usize, byte: u8) -> Result<()> {
        self.check(offset, len)?;
        // SAFETY: `offset + len <= self.region.len` (checked above), so `offset` stays inside
        // the region's allocation or one past its end.
        let dst = unsafe { self.region.virt.as_ptr().add(offset) };
        // SAFETY: range checked; exclusive access through &mut self.
        unsafe { core::ptr::write_bytes(dst, byte, len) };
        Ok(())
    }

    /// The whole buffer as a mutable byte slice, for the CPU side of memory the device only
    /// reads (framebuffers, cursor images).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the region is valid for `len` bytes and exclusively ours (&mut self). The
        // device may read it concurrently (a transfer in progress), which at worst shows a
        // torn frame; it never writes memory we hand it as readable.
        unsafe { core::slice::from_raw_parts_mut(self.region.virt.as_ptr(), self.region.len) }
    }

    /// The whole buffer as a byte slice (see [`DmaBuffer::as_mut_slice`]).
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: as in as_mut_slice; shared access only reads.
        unsafe { core::slice::from_raw_parts(self.region.virt.as_ptr(), self.region.len) }
    }
}

impl<H: Hal> Drop for DmaBuffer<H> {
    fn drop(&mut self) {
        let region = DmaRegion {
            virt: self.region.virt,
            phys: self.region.phys,
            len: self.region.len,
        };
        // SAFETY: allocated by this hal in `new`, dropped once; owners that hand the buffer to
        // the device keep the DmaBuffer alive until the device returns it (module docs).
        unsafe { self.hal.dma_free(region) };
    }
}

impl<H: Hal> core::fmt::Debug for DmaBuffer<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DmaBuffer")
            .field("phys", &self.region.phys)
            .field("len", &self.region.len)
            .finish()
    }
}

/// One mapped register window of the device (a slice of a PCI BAR), addressed by byte offset
/// from the start of the window.
///
/// Implementations perform real, uncached, volatile accesses of exactly the given width. The
/// transport only uses offsets it has checked against the window length taken from the
/// device's capability list; an implementation may still return all-ones for reads and drop
/// writes outside its window, and must never touch memory outside it.
pub trait RegisterAccess: Send + Sync {
    /// Reads one byte.
    fn read_u8(&self, offset: usize) -> u8;
    /// Reads a little-endian 16-bit register.
    fn read_u16(&self, offset: usize) -> u16;
    /// Reads a little-endian 32-bit register.
    fn read_u32(&self, offset: usize) -> u32;
    /// Writes one byte.
    fn write_u8(&self, offset: usize, value: u8);
    /// Writes a little-endian 16-bit register.
    fn write_u16(&self, offset: usize, value: u16);
    /// Writes a little-endian 32-bit register.
    fn write_u32(&self, offset: usize, value: u32);
}
