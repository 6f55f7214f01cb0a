//! Device registers in a memory BAR, reached from user space: the BAR is mapped once through
//! its sysfs `resourceN` file ([`BarMapping`]) and cut into [`RegisterWindow`]s, one per
//! virtio capability, that implement [`RegisterAccess`] with volatile accesses of exactly the
//! requested width.
//!
//! A window never touches memory outside itself: an access that is out of range or not
//! naturally aligned reads all-ones and drops writes, as the `RegisterAccess` contract allows.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::Arc;

use viogpu_common::hal::RegisterAccess;

use super::pci::PciFunction;

/// A whole memory BAR mapped into the process (unmapped on drop).
#[derive(Debug)]
pub struct BarMapping {
    base: NonNull<u8>,
    len: usize,
    bar: u8,
}

// SAFETY: the mapping is plain device memory owned by this value; every access goes through
// volatile reads/writes of whole registers, which the device serialises itself, so sharing and
// sending the pointer between threads adds no data race the hardware does not already define.
unsafe impl Send for BarMapping {}
// SAFETY: as for Send; `&BarMapping` only allows the volatile accesses of `RegisterWindow`.
unsafe impl Sync for BarMapping {}

impl BarMapping {
    /// Maps BAR `bar` of `pci` through sysfs. The function must have memory decoding enabled
    /// before registers are touched ([`PciFunction::enable_memory_and_bus_master`]).
    pub fn map(pci: &PciFunction, bar: u8) -> io::Result<Arc<Self>> {
        let path = pci.resource_file(bar);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::other(format!("{}: too large", path.display())))?;
        if len == 0 {
            return Err(io::Error::other(format!(
                "{}: BAR has size 0",
                path.display()
            )));
        }
        let base = map_shared(file.as_raw_fd(), len, 0)
            .map_err(|e| io::Error::new(e.kind(), format!("mmap {}: {e}", path.display())))?;
        Ok(Arc::new(Self { base, len, bar }))
    }

    /// Length of the BAR in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a zero-sized BAR is refused by [`BarMapping::map`].
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The BAR index.
    pub fn bar(&self) -> u8 {
        self.bar
    }
}

impl Drop for BarMapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly one mapping created by `map_shared` in `map`, and
        // every `RegisterWindow` holds an `Arc` to this value, so no window outlives it.
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

/// A slice `offset..offset + len` of a mapped BAR: one virtio configuration structure.
#[derive(Debug, Clone)]
pub struct RegisterWindow {
    bar: Arc<BarMapping>,
    offset: usize,
    len: usize,
}

impl RegisterWindow {
    /// The window `offset..offset + len` of `bar`; fails if it does not lie inside the BAR
    /// (capability values come from the device and are checked here).
    pub fn new(bar: Arc<BarMapping>, offset: usize, len: usize) -> io::Result<Self> {
        match offset.checked_add(len) {
            Some(end) if end <= bar.len && len > 0 => Ok(Self { bar, offset, len }),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "register window {offset:#x}+{len:#x} outside BAR{} of {:#x} bytes",
                    bar.bar, bar.len
                ),
            )),
        }
    }

    /// Length of the window in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (empty windows are refused by [`RegisterWindow::new`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pointer to a naturally aligned `T` at `offset` inside the window, or `None`.
    fn register<T>(&self, offset: usize) -> Option<*mut T> {
        let size = std::mem::size_of::<T>();
        let end = offset.checked_add(size)?;
        let at = self.offset.checked_add(offset)?;
        // The mapping is page aligned, so `at` decides the pointer's alignment.
        if end > self.len || at % size != 0 {
            return None;
        }
        // SAFETY: `self.offset + offset + size <= self.offset + self.len <= bar.len` (checked
        // here and in `new`), so the pointer stays inside the one mapping.
        Some(unsafe { self.bar.base.as_ptr().add(at) }.cast())
    }

    fn read<T: Copy>(&self, offset: usize, all_ones: T) -> T {
        match self.register::<T>(offset) {
            // SAFETY: `register` returned an in-bounds pointer into the live mapping (we hold
            // an Arc), aligned for T (checked in `register`); device memory is always
            // initialised for integer reads.
            Some(ptr) => unsafe { ptr.read_volatile() },
            None => all_ones,
        }
    }

    fn write<T: Copy>(&self, offset: usize, value: T) {
        if let Some(ptr) = self.register::<T>(offset) {
            // SAFETY: as in `read`; the mapping is writable (PROT_WRITE).
            unsafe { ptr.write_volatile(value) }
        }
    }
}

impl RegisterAccess for RegisterWindow {
    fn read_u8(&self, offset: usize) -> u8 {
        self.read(offset, u8::MAX)
    }

    fn read_u16(&self, offset: usize) -> u16 {
        u16::from_le(self.read(offset, u16::MAX))
    }

    fn read_u32(&self, offset: usize) -> u32 {
        u32::from_le(self.read(offset, u32::MAX))
    }

    fn write_u8(&self, offset: usize, value: u8) {
        self.write(offset, value)
    }

    fn write_u16(&self, offset: usize, value: u16) {
        self.write(offset, value.to_le())
    }

    fn write_u32(&self, offset: usize, value: u32) {
        self.write(offset, value.to_le())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn window(offset: usize, len: usize) -> (Arc<BarMapping>, RegisterWindow) {
        let bar_len = 4096;
        let base = map_anonymous(bar_len).unwrap();
        let bar = Arc::new(BarMapping {
            base,
            len: bar_len,
            bar: 4,
        });
        let window = RegisterWindow::new(Arc::clone(&bar), offset, len).unwrap();
        (bar, window)
    }

    fn byte(bar: &BarMapping, at: usize) -> u8 {
        assert!(at < bar.len);
        // SAFETY: in bounds of the live test mapping.
        unsafe { bar.base.as_ptr().add(at).read_volatile() }
    }

    #[test]
    fn accesses_land_at_window_offset_little_endian() {
        let (bar, w) = window(0x100, 0x40);
        w.write_u32(4, 0x1122_3344);
        w.write_u16(8, 0xaabb);
        w.write_u8(10, 0x5a);
        assert_eq!(
            [0x104, 0x105, 0x106, 0x107].map(|a| byte(&bar, a)),
            [0x44, 0x33, 0x22, 0x11]
        );
        assert_eq!([byte(&bar, 0x108), byte(&bar, 0x109)], [0xbb, 0xaa]);
        assert_eq!(w.read_u32(4), 0x1122_3344);
        assert_eq!(w.read_u16(8), 0xaabb);
        assert_eq!(w.read_u8(10), 0x5a);
    }

    #[test]
    fn out_of_window_or_unaligned_reads_all_ones_and_drops_writes() {
        let (bar, w) = window(0x100, 0x10);
        assert_eq!(w.read_u32(0x10), u32::MAX);
        assert_eq!(w.read_u32(0x0e), u32::MAX); // straddles the end
        assert_eq!(w.read_u16(1), u16::MAX); // unaligned
        assert_eq!(w.read_u8(usize::MAX), u8::MAX);
        w.write_u32(0x10, 0x1234_5678);
        w.write_u32(2, 0x1234_5678);
        assert!((0..bar.len).all(|a| byte(&bar, a) == 0));
    }

    #[test]
    fn windows_outside_the_bar_are_refused() {
        let (bar, _) = window(0, 1);
        assert!(RegisterWindow::new(Arc::clone(&bar), 0xff0, 0x20).is_err());
        assert!(RegisterWindow::new(Arc::clone(&bar), usize::MAX, 2).is_err());
        assert!(RegisterWindow::new(bar, 0, 0).is_err());
    }
}
