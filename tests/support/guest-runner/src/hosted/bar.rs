//! Device registers in a memory BAR, reached from user space: a page-aligned range of the BAR
//! mapped through its sysfs `resourceN` file ([`BarMapping`]), read and written with volatile
//! accesses of exactly the requested width.
//!
//! A mapping never touches memory outside itself: an access that is out of range or not
//! naturally aligned is refused (`None` / `false`), and the caller decides what the device
//! "answers" (the machine reads all-ones and drops the write, as a PCI master abort does).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

use viogpu_common::hal::PAGE_SIZE;

use super::pci::PciFunction;

/// A page-aligned range of one memory BAR mapped into the process (unmapped on drop).
#[derive(Debug)]
pub struct BarMapping {
    base: NonNull<u8>,
    len: usize,
    bar: u8,
    /// Offset of the first mapped byte inside the BAR (a page multiple).
    bar_offset: u64,
}

// SAFETY: the mapping is plain device memory owned by this value; every access goes through
// volatile reads/writes of whole registers, which the device serialises itself, so sharing and
// sending the pointer between threads adds no data race the hardware does not already define.
unsafe impl Send for BarMapping {}
// SAFETY: as for Send; `&BarMapping` only allows the volatile register accesses below.
unsafe impl Sync for BarMapping {}

impl BarMapping {
    /// Maps the pages of BAR `bar` of `pci` that hold `offset..offset + len` (through sysfs
    /// `resourceN`). The function must have memory decoding enabled before registers are
    /// touched ([`PciFunction::enable_memory_and_bus_master`]).
    pub fn map(pci: &PciFunction, bar: u8, offset: u64, len: u64) -> io::Result<Self> {
        let path = pci.resource_file(bar);
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(named)?;
        let bar_len = file.metadata().map_err(named)?.len();
        let page = PAGE_SIZE as u64;
        let first = offset - offset % page;
        let end = offset
            .checked_add(len)
            .filter(|&end| len > 0 && end <= bar_len)
            .ok_or_else(|| {
                io::Error::other(format!(
                    "{}: range {offset:#x}+{len:#x} is empty or outside the {bar_len:#x}-byte BAR",
                    path.display()
                ))
            })?;
        let span = usize::try_from(end.div_ceil(page) * page - first)
            .map_err(|_| io::Error::other(format!("{}: range too large", path.display())))?;
        let file_offset = libc::off_t::try_from(first)
            .map_err(|_| io::Error::other(format!("{}: offset too large", path.display())))?;
        let base = map_shared(file.as_raw_fd(), span, file_offset).map_err(named)?;
        Ok(Self {
            base,
            len: span,
            bar,
            bar_offset: first,
        })
    }

    /// Length of the mapping in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: an empty range is refused by [`BarMapping::map`].
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The BAR index.
    pub fn bar(&self) -> u8 {
        self.bar
    }

    /// Offset of the mapping's first byte inside the BAR.
    pub fn bar_offset(&self) -> u64 {
        self.bar_offset
    }

    /// The process address of the mapping's first byte.
    pub fn address(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// Pointer to a naturally aligned `T` at `offset` inside the mapping, or `None`.
    fn register<T>(&self, offset: usize) -> Option<*mut T> {
        let size = std::mem::size_of::<T>();
        let end = offset.checked_add(size)?;
        // The mapping is page aligned, so `offset` decides the pointer's alignment.
        if end > self.len || !offset.is_multiple_of(size) {
            return None;
        }
        // SAFETY: `offset + size <= self.len` (checked above), so the pointer stays inside
        // the one mapping.
        Some(unsafe { self.base.as_ptr().add(offset) }.cast())
    }

    fn read_as<T: Copy>(&self, offset: usize) -> Option<T> {
        let ptr = self.register::<T>(offset)?;
        // SAFETY: `register` returned an in-bounds pointer into the live mapping, aligned for
        // T; device memory is always initialised for integer reads.
        Some(unsafe { ptr.read_volatile() })
    }

    fn write_as<T: Copy>(&self, offset: usize, value: T) -> bool {
        let Some(ptr) = self.register::<T>(offset) else {
            return false;
        };
        // SAFETY: as in `read_as`; the mapping is writable (PROT_WRITE).
        unsafe { ptr.write_volatile(value) };
        true
    }

    /// Reads a little-endian register of `width` bytes (1, 2 or 4) at `offset`; `None` when
    /// the access is outside the mapping, misaligned or of another width.
    pub fn read(&self, offset: usize, width: u8) -> Option<u32> {
        match width {
            1 => self.read_as::<u8>(offset).map(u32::from),
            2 => self
                .read_as::<u16>(offset)
                .map(|v| u32::from(u16::from_le(v))),
            4 => self.read_as::<u32>(offset).map(u32::from_le),
            _ => None,
        }
    }

    /// Writes a little-endian register of `width` bytes (1, 2 or 4) at `offset` (the low
    /// bytes of `value`); false when refused as for [`read`](Self::read).
    pub fn write(&self, offset: usize, width: u8, value: u32) -> bool {
        match width {
            1 => self.write_as(offset, value as u8),
            2 => self.write_as(offset, (value as u16).to_le()),
            4 => self.write_as(offset, value.to_le()),
            _ => false,
        }
    }
}

impl Drop for BarMapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly one mapping created by `map_shared` in `map`, and
        // nothing keeps a pointer into it beyond an access.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// Maps `len` bytes of anonymous memory, shared and readable/writable (stands in for device
/// memory in unit tests).
#[cfg(test)]
pub(crate) fn map_anonymous(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh anonymous mapping chosen by the kernel cannot alias any Rust object;
    // checked for MAP_FAILED before use.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// Maps `len` bytes of `fd` at `offset`, shared and readable/writable.
pub(crate) fn map_shared(fd: i32, len: usize, offset: libc::off_t) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh mapping chosen by the kernel (null hint) cannot alias any Rust object;
    // the result is checked for MAP_FAILED before use.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            offset,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mapping() -> BarMapping {
        let len = PAGE_SIZE;
        BarMapping {
            base: map_anonymous(len).unwrap(),
            len,
            bar: 4,
            bar_offset: 0x1000,
        }
    }

    fn byte(m: &BarMapping, at: usize) -> u8 {
        assert!(at < m.len);
        // SAFETY: in bounds of the live test mapping.
        unsafe { m.base.as_ptr().add(at).read_volatile() }
    }

    #[test]
    fn accesses_land_at_their_offset_little_endian() {
        let m = mapping();
        assert!(m.write(0x104, 4, 0x1122_3344));
        assert!(m.write(0x108, 2, 0xaabb));
        assert!(m.write(0x10a, 1, 0x5a));
        assert_eq!(
            [0x104, 0x105, 0x106, 0x107].map(|a| byte(&m, a)),
            [0x44, 0x33, 0x22, 0x11]
        );
        assert_eq!([byte(&m, 0x108), byte(&m, 0x109)], [0xbb, 0xaa]);
        assert_eq!(m.read(0x104, 4), Some(0x1122_3344));
        assert_eq!(m.read(0x108, 2), Some(0xaabb));
        assert_eq!(m.read(0x10a, 1), Some(0x5a));
    }

    #[test]
    fn out_of_range_misaligned_or_odd_width_accesses_are_refused() {
        let m = mapping();
        assert_eq!(m.read(PAGE_SIZE, 4), None);
        assert_eq!(m.read(PAGE_SIZE - 2, 4), None); // straddles the end
        assert_eq!(m.read(1, 2), None); // misaligned
        assert_eq!(m.read(0, 8), None);
        assert_eq!(m.read(usize::MAX, 1), None);
        assert!(!m.write(PAGE_SIZE, 4, 0x1234_5678));
        assert!(!m.write(2, 4, 0x1234_5678));
        assert!(!m.write(0, 3, 0x1234_5678));
        assert!((0..m.len).all(|a| byte(&m, a) == 0));
    }
}
