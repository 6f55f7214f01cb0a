//! DMA memory for a user-space driver in a QEMU guest.
//!
//! The guest kernel is booted with `memmap=SIZE$BASE`, which marks that physical range
//! reserved: Linux never allocates from it, so its bus addresses are stable and contiguous.
//! [`DevMemHal`] maps the range once through `/dev/mem` (allowed under STRICT_DEVMEM because
//! the range is not System RAM) and hands out page-aligned pieces with a first-fit free list
//! that coalesces on free. It implements [`Hal`], so the driver core allocates rings, command
//! buffers and framebuffers from it exactly as it would from the Windows kernel.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

use viogpu_common::hal::{DmaRegion, Hal, PAGE_SIZE};

use super::bar::map_shared;

/// DMA memory carved from a reserved physical range mapped through `/dev/mem`.
#[derive(Clone, Debug)]
pub struct DevMemHal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    base: NonNull<u8>,
    phys: u64,
    len: usize,
    free: Mutex<FreeList>,
}

// SAFETY: `base` points to a process-wide shared mapping owned by `Inner`; the free list that
// decides who may touch which bytes is behind a Mutex, so moving `Inner` to another thread
// cannot create unsynchronised access.
unsafe impl Send for Inner {}
// SAFETY: as for Send: `&Inner` only hands out disjoint regions under the Mutex.
unsafe impl Sync for Inner {}

impl DevMemHal {
    /// Maps `len` bytes of physical memory at `phys` (both page aligned) from `/dev/mem`.
    ///
    /// The caller promises that the range was reserved with `memmap=` and that nothing else
    /// in the guest uses it; this is checked as far as the kernel lets us: the range must
    /// appear as reserved, not System RAM, in `/proc/iomem` (when that file is readable).
    pub fn open(phys: u64, len: usize) -> io::Result<Self> {
        let page = PAGE_SIZE as u64;
        if len == 0 || !phys.is_multiple_of(page) || !len.is_multiple_of(PAGE_SIZE) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("DMA range {phys:#x}+{len:#x} is empty or not page aligned"),
            ));
        }
        check_not_system_ram(phys, len)?;
        let offset = libc::off_t::try_from(phys)
            .map_err(|_| io::Error::other(format!("{phys:#x} does not fit off_t")))?;
        let file = OpenOptions::new().read(true).write(true).open("/dev/mem")?;
        let base = map_shared(file.as_raw_fd(), len, offset)
            .map_err(|e| io::Error::new(e.kind(), format!("mmap /dev/mem at {phys:#x}: {e}")))?;
        Ok(Self::from_mapping(base, phys, len))
    }

    /// Takes ownership of a mapping of `len` bytes (page multiple) whose bus address is
    /// `phys`; it is unmapped when the last clone goes away.
    pub(crate) fn from_mapping(base: NonNull<u8>, phys: u64, len: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                base,
                phys,
                len,
                free: Mutex::new(FreeList::new(len)),
            }),
        }
    }

    /// Physical address of the first byte of the managed range.
    pub fn phys_base(&self) -> u64 {
        self.inner.phys
    }

    /// Length of the managed range.
    pub fn len(&self) -> usize {
        self.inner.len
    }

    /// Always false (empty ranges are refused by [`DevMemHal::open`]).
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// Bytes currently free (for leak checks in tests).
    pub fn free_bytes(&self) -> usize {
        self.inner.free_list().free_bytes()
    }

    /// Bytes currently allocated.
    pub fn allocated_bytes(&self) -> usize {
        self.inner.len - self.free_bytes()
    }

    /// Offset of `phys..phys + len` inside the managed range, if it lies inside.
    fn offset_of(&self, phys: u64, len: usize) -> Option<usize> {
        let offset = usize::try_from(phys.checked_sub(self.inner.phys)?).ok()?;
        (offset.checked_add(len)? <= self.inner.len).then_some(offset)
    }

    /// Copies `buf.len()` bytes at physical address `phys` out of the managed range; false
    /// when the range is not inside it. The device may be writing the same bytes meanwhile
    /// (a snapshot of bytes, each one old or new, is what a bus observer gets too).
    pub fn read_phys(&self, phys: u64, buf: &mut [u8]) -> bool {
        let Some(offset) = self.offset_of(phys, buf.len()) else {
            return false;
        };
        for (i, byte) in buf.iter_mut().enumerate() {
            // SAFETY: `offset + i < offset + buf.len() <= len` (checked by `offset_of`), so the
            // pointer is inside the live mapping; a byte read of shared memory cannot see an
            // invalid value, and volatile keeps the compiler from assuming nobody else writes.
            *byte = unsafe { self.inner.base.as_ptr().add(offset + i).read_volatile() };
        }
        true
    }

    /// Reads the little-endian `u16` at physical address `phys` (2-byte aligned) in one
    /// access, as the device writes ring indices; `None` outside the range or misaligned.
    pub fn read_u16(&self, phys: u64) -> Option<u16> {
        let offset = self.offset_of(phys, 2).filter(|o| o % 2 == 0)?;
        // SAFETY: inside the live mapping (checked by `offset_of`) and 2-byte aligned (the
        // mapping is page aligned and `offset` even).
        let value = unsafe {
            self.inner
                .base
                .as_ptr()
                .add(offset)
                .cast::<u16>()
                .read_volatile()
        };
        Some(u16::from_le(value))
    }
}

impl Inner {
    fn free_list(&self) -> MutexGuard<'_, FreeList> {
        // A panic while holding the lock cannot leave the list half-updated (each update is
        // one Vec operation), so a poisoned lock is still usable.
        self.free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: one mapping made in `DevMemHal::open`; the last clone is going away, and
        // every DmaBuffer holds a clone, so no region is still in use.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

// SAFETY: regions are disjoint pieces of one reserved, physically contiguous range mapped
// MAP_SHARED at its physical address, so `virt` and `phys` name the same bytes; pieces are
// page aligned (range and sizes are multiples of PAGE_SIZE), zeroed before being handed out,
// at least the requested size, and tracked by the free list under a Mutex so no two live
// regions overlap.
unsafe impl Hal for DevMemHal {
    fn dma_alloc(&self, len: usize) -> Option<DmaRegion> {
        let len = len.checked_next_multiple_of(PAGE_SIZE)?.max(PAGE_SIZE);
        let offset = self.inner.free_list().take(len)?;
        // SAFETY: `offset + len <= self.inner.len` (it came from a free extent), so the
        // pointer stays inside the mapping.
        let virt = unsafe { self.inner.base.as_ptr().add(offset) };
        // SAFETY: the bytes are in the mapping, writable, and now exclusively ours (removed
        // from the free list above).
        unsafe { virt.write_bytes(0, len) };
        Some(DmaRegion {
            virt: NonNull::new(virt)?,
            phys: self.inner.phys + offset as u64,
            len,
        })
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        let base = self.inner.base.as_ptr() as usize;
        let Some(offset) = (region.virt.as_ptr() as usize).checked_sub(base) else {
            return;
        };
        let in_range = offset
            .checked_add(region.len)
            .is_some_and(|end| end <= self.inner.len);
        if !in_range || region.len == 0 || offset % PAGE_SIZE != 0 {
            // Not one of ours: leaking is the only safe answer.
            return;
        }
        self.inner.free_list().give_back(offset, region.len);
    }
}

/// First-fit allocator state: free extents `(offset, len)` sorted by offset, coalesced so
/// that no two are adjacent.
#[derive(Debug)]
struct FreeList {
    extents: Vec<(usize, usize)>,
}

impl FreeList {
    fn new(len: usize) -> Self {
        Self {
            extents: vec![(0, len)],
        }
    }

    fn free_bytes(&self) -> usize {
        self.extents.iter().map(|&(_, len)| len).sum()
    }

    /// Takes `len` bytes from the first extent large enough; returns their offset.
    fn take(&mut self, len: usize) -> Option<usize> {
        let index = self.extents.iter().position(|&(_, extent)| extent >= len)?;
        let (offset, extent) = *self.extents.get(index)?;
        if extent == len {
            self.extents.remove(index);
        } else {
            self.extents[index] = (offset + len, extent - len);
        }
        Some(offset)
    }

    /// Returns `offset..offset + len` (which the caller took earlier) and merges neighbours.
    fn give_back(&mut self, offset: usize, len: usize) {
        let index = self.extents.partition_point(|&(o, _)| o < offset);
        self.extents.insert(index, (offset, len));
        if let (Some(&(o, l)), Some(&(next_o, next_l))) =
            (self.extents.get(index), self.extents.get(index + 1))
        {
            if o + l == next_o {
                self.extents[index] = (o, l + next_l);
                self.extents.remove(index + 1);
            }
        }
        if let Some(prev) = index.checked_sub(1) {
            if let (Some(&(prev_o, prev_l)), Some(&(o, l))) =
                (self.extents.get(prev), self.extents.get(index))
            {
                if prev_o + prev_l == o {
                    self.extents[prev] = (prev_o, prev_l + l);
                    self.extents.remove(index);
                }
            }
        }
    }
}

/// Refuses a range that the kernel lists as System RAM: mapping it would hand out memory
/// the kernel also uses. Missing or unreadable `/proc/iomem` is not an error (the mmap will
/// then fail on its own if the kernel forbids the range).
fn check_not_system_ram(phys: u64, len: usize) -> io::Result<()> {
    let Ok(iomem) = std::fs::read_to_string("/proc/iomem") else {
        return Ok(());
    };
    let end = phys + len as u64 - 1;
    for line in iomem.lines().filter(|l| !l.starts_with(' ')) {
        let Some((range, name)) = line.split_once(" : ") else {
            continue;
        };
        let Some((start, stop)) = range.trim().split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(stop)) = (
            u64::from_str_radix(start, 16),
            u64::from_str_radix(stop, 16),
        ) else {
            continue;
        };
        if name == "System RAM" && start <= end && phys <= stop && stop != 0 {
            return Err(io::Error::other(format!(
                "DMA range {phys:#x}..={end:#x} overlaps System RAM {start:#x}..={stop:#x}; \
                 boot the guest with memmap={len:#x}${phys:#x}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use viogpu_common::hal::DmaBuffer;

    #[test]
    fn hal_hands_out_zeroed_page_aligned_regions_with_matching_bus_addresses() {
        let len = 8 * PAGE_SIZE;
        let base = crate::hosted::bar::map_anonymous(len).unwrap();
        let hal = DevMemHal::from_mapping(base, 0x3000_0000, len);
        let mut a = DmaBuffer::new(&hal, 100).unwrap();
        assert_eq!((a.phys(), a.len()), (0x3000_0000, PAGE_SIZE));
        a.fill(0, PAGE_SIZE, 0xee).unwrap();
        let b = DmaBuffer::new(&hal, PAGE_SIZE + 1).unwrap();
        assert_eq!(
            (b.phys(), b.len()),
            (0x3000_0000 + PAGE_SIZE as u64, 2 * PAGE_SIZE)
        );
        assert_eq!(hal.free_bytes(), 5 * PAGE_SIZE);
        drop(a);
        // The freed page comes back zeroed although it was dirtied.
        let c = DmaBuffer::new(&hal, PAGE_SIZE).unwrap();
        assert_eq!(c.phys(), 0x3000_0000);
        assert!(c.as_slice().iter().all(|&byte| byte == 0));
        assert!(DmaBuffer::new(&hal, 6 * PAGE_SIZE).is_err());
        assert_eq!(hal.allocated_bytes(), 3 * PAGE_SIZE);
        drop((b, c));
        assert_eq!(hal.free_bytes(), len);
    }

    #[test]
    fn physical_reads_see_the_bytes_and_refuse_foreign_ranges() {
        let len = 2 * PAGE_SIZE;
        let base = crate::hosted::bar::map_anonymous(len).unwrap();
        let hal = DevMemHal::from_mapping(base, 0x3000_0000, len);
        let mut a = DmaBuffer::new(&hal, PAGE_SIZE).unwrap();
        a.write_bytes(6, &[0x34, 0x12, 0xab]).unwrap();
        let mut buf = [0u8; 3];
        assert!(hal.read_phys(0x3000_0006, &mut buf));
        assert_eq!(buf, [0x34, 0x12, 0xab]);
        assert_eq!(hal.read_u16(0x3000_0006), Some(0x1234));
        assert_eq!(hal.read_u16(0x3000_0007), None);
        assert_eq!(hal.read_u16(0x3000_0000 + len as u64 - 1), None);
        assert!(!hal.read_phys(0x2fff_ffff, &mut buf));
        assert!(!hal.read_phys(0x3000_0000 + len as u64 - 2, &mut buf));
    }

    #[test]
    fn freeing_a_foreign_region_is_ignored() {
        let len = 2 * PAGE_SIZE;
        let base = crate::hosted::bar::map_anonymous(len).unwrap();
        let hal = DevMemHal::from_mapping(base, 0, len);
        let mut outside = [0u8; 16];
        let region = DmaRegion {
            virt: NonNull::new(outside.as_mut_ptr()).unwrap(),
            phys: 0,
            len: PAGE_SIZE,
        };
        // SAFETY: exercising the defensive path; the region is never touched by dma_free.
        unsafe { hal.dma_free(region) };
        assert_eq!(hal.free_bytes(), len);
    }

    #[test]
    fn first_fit_takes_from_the_front_and_fails_when_full() {
        let mut list = FreeList::new(4 * PAGE_SIZE);
        assert_eq!(list.take(PAGE_SIZE), Some(0));
        assert_eq!(list.take(2 * PAGE_SIZE), Some(PAGE_SIZE));
        assert_eq!(list.take(2 * PAGE_SIZE), None);
        assert_eq!(list.take(PAGE_SIZE), Some(3 * PAGE_SIZE));
        assert_eq!(list.free_bytes(), 0);
        assert_eq!(list.take(PAGE_SIZE), None);
    }

    #[test]
    fn freed_neighbours_coalesce_into_one_extent() {
        let mut list = FreeList::new(3 * PAGE_SIZE);
        let a = list.take(PAGE_SIZE).unwrap();
        let b = list.take(PAGE_SIZE).unwrap();
        let c = list.take(PAGE_SIZE).unwrap();
        list.give_back(a, PAGE_SIZE);
        list.give_back(c, PAGE_SIZE);
        assert_eq!(list.extents, vec![(a, PAGE_SIZE), (c, PAGE_SIZE)]);
        // A two-page request fits nowhere until the middle page comes back.
        assert_eq!(list.take(2 * PAGE_SIZE), None);
        list.give_back(b, PAGE_SIZE);
        assert_eq!(list.extents, vec![(0, 3 * PAGE_SIZE)]);
        assert_eq!(list.take(3 * PAGE_SIZE), Some(0));
    }
}
