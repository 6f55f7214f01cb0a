//! Host-side resources: the host image each `RESOURCE_CREATE_2D` allocates, the guest
//! backing pages `RESOURCE_ATTACH_BACKING` gives it, and the copy `TRANSFER_TO_HOST_2D` makes
//! from the one into the other; and guest-memory blobs (`RESOURCE_CREATE_BLOB`), which have
//! no host image: the host reads their backing in place.
//!
//! The backing is kept as the guest-physical entries the driver sent, not as host pointers:
//! every transfer reads guest memory at those addresses at the time of the transfer, so the
//! model sees exactly the bytes the driver had written to its DMA memory by then.

use viogpu_common::protocol::{Format, MemEntry, Rect};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use zerocopy::IntoBytes;

/// Every format the device accepts has four bytes per pixel (see [`Format`]).
pub(crate) const BYTES_PER_PIXEL: u64 = 4;

/// What a test can see of one host resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// The id the driver gave the resource.
    pub id: u32,
    /// The pixel format it was created with.
    pub format: Format,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Host memory the image is accounted for (`width * height * 4`).
    pub hostmem: u64,
    /// Whether guest backing is attached.
    pub has_backing: bool,
    /// Number of `MemEntry` items of the attached backing (0 without backing).
    pub backing_entries: usize,
    /// Total bytes of the attached backing (0 without backing).
    pub backing_len: u64,
    /// `Some(size)` for a guest-memory blob (RESOURCE_CREATE_BLOB), `None` for a 2D resource.
    pub blob_size: Option<u64>,
}

/// The guest pages backing a resource, with the running start offset of each entry so a
/// backing offset maps to an entry by binary search.
#[derive(Clone, Debug)]
pub(crate) struct Backing {
    entries: Vec<MemEntry>,
    /// `starts[i]` is the backing offset of `entries[i]`'s first byte.
    starts: Vec<u64>,
    len: u64,
}

impl Backing {
    /// The backing made of `entries`, in order.
    pub(crate) fn new(entries: Vec<MemEntry>) -> Self {
        let mut starts = Vec::with_capacity(entries.len());
        let mut len = 0u64;
        for entry in &entries {
            starts.push(len);
            len += u64::from(entry.length);
        }
        Self {
            entries,
            starts,
            len,
        }
    }

    /// The entries as the driver sent them.
    pub(crate) fn entries(&self) -> &[MemEntry] {
        &self.entries
    }

    /// Total bytes of the entries.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Copies backing bytes from `offset` into `dst`, as far as the backing reaches, like
    /// QEMU's `iov_to_buf`: a range past the end copies what exists and leaves the rest of
    /// `dst` untouched. Returns the number of bytes copied.
    pub(crate) fn read(&self, mem: &GuestMemoryMmap<()>, offset: u64, dst: &mut [u8]) -> usize {
        let mut copied = 0usize;
        let mut pos = offset;
        // The entry holding `pos`: the last one starting at or before it.
        let mut index = self.starts.partition_point(|&start| start <= pos);
        if index == 0 {
            return 0;
        }
        index -= 1;
        while copied < dst.len() {
            let (Some(entry), Some(&start)) = (self.entries.get(index), self.starts.get(index))
            else {
                break;
            };
            let within = pos - start;
            let available = u64::from(entry.length).saturating_sub(within);
            let want = (dst.len() - copied) as u64;
            let n = available.min(want) as usize;
            if n > 0 {
                let Some(addr) = entry.addr.checked_add(within) else {
                    break;
                };
                let Some(chunk) = dst.get_mut(copied..copied + n) else {
                    break;
                };
                if mem.read_slice(chunk, GuestAddress(addr)).is_err() {
                    break;
                }
                copied += n;
                pos += n as u64;
            }
            index += 1;
        }
        copied
    }
}

/// What a new resource holds before the driver sends it pixels: the virtio spec leaves a new
/// resource's contents undefined, and QEMU's zeroed pixman images would hide a driver that
/// shows a resource before sending it any pixels; this colour, which no test draws, shows it.
pub const UNDEFINED_PIXEL: u32 = 0x00C0_FFEE;

/// One host 2D resource.
#[derive(Clone, Debug)]
pub(crate) struct Resource {
    pub(crate) id: u32,
    pub(crate) format: Format,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) hostmem: u64,
    /// The host image, row-major, `width` pixels per row, each pixel the resource's four
    /// bytes read as a little-endian `u32`.
    pub(crate) image: Vec<u32>,
    pub(crate) backing: Option<Backing>,
    /// For a guest-memory blob, its size in bytes: it has no host image (`image` is empty,
    /// `width` and `height` 0) and is read from its backing in place.
    pub(crate) blob_size: Option<u64>,
    /// For a blob: whether the host could map its pages (QEMU's udmabuf); an unmapped blob
    /// exists but cannot be shown.
    pub(crate) blob_mapped: bool,
}

impl Resource {
    /// A resource whose pixels are all [`UNDEFINED_PIXEL`]: the virtio spec leaves a new
    /// resource's contents undefined. QEMU's pixman images start zeroed, which would hide a
    /// driver that shows a resource before sending it any pixels; this colour shows it.
    pub(crate) fn new(id: u32, format: Format, width: u32, height: u32, hostmem: u64) -> Self {
        let pixels = (width as usize).saturating_mul(height as usize);
        Self {
            id,
            format,
            width,
            height,
            hostmem,
            image: vec![UNDEFINED_PIXEL; pixels],
            backing: None,
            blob_size: None,
            blob_mapped: false,
        }
    }

    /// A guest-memory blob of `size` bytes over `backing`, which the host could map or not.
    pub(crate) fn blob(id: u32, backing: Backing, size: u64, mapped: bool) -> Self {
        Self {
            id,
            format: Format(0),
            width: 0,
            height: 0,
            hostmem: 0,
            image: Vec::new(),
            backing: Some(backing),
            blob_size: Some(size),
            blob_mapped: mapped,
        }
    }

    /// True if an attached backing page lies in `range` (guest physical addresses).
    pub(crate) fn backing_overlaps(&self, range: &std::ops::Range<u64>) -> bool {
        self.backing.as_ref().is_some_and(|b| {
            b.entries().iter().any(|e| {
                let (addr, len) = (e.addr, u64::from(e.length));
                addr < range.end && range.start < addr.saturating_add(len)
            })
        })
    }

    /// The public view of this resource.
    pub(crate) fn info(&self) -> ResourceInfo {
        ResourceInfo {
            id: self.id,
            format: self.format,
            width: self.width,
            height: self.height,
            hostmem: self.hostmem,
            has_backing: self.backing.is_some(),
            backing_entries: self.backing.as_ref().map_or(0, |b| b.entries().len()),
            backing_len: self.backing.as_ref().map_or(0, |b| b.len),
            blob_size: self.blob_size,
        }
    }

    /// Whether `r` lies inside the resource (QEMU's bounds test for transfer and flush).
    pub(crate) fn contains(&self, r: &Rect) -> bool {
        rect_within(r, self.width, self.height)
    }

    /// `TRANSFER_TO_HOST_2D` of `r` (already checked to be inside): row `h` of the rectangle
    /// comes from backing offset `offset + h * stride`, where the stride is the host image's
    /// (`width * 4`) — QEMU's rule, which makes `offset` the backing offset of the
    /// rectangle's first pixel in a backing laid out like the host image. A full-width
    /// rectangle is one contiguous copy, which is the same bytes.
    pub(crate) fn transfer(&mut self, mem: &GuestMemoryMmap<()>, r: &Rect, offset: u64) {
        let Some(backing) = self.backing.as_ref() else {
            return;
        };
        let stride = u64::from(self.width) * BYTES_PER_PIXEL;
        let width = self.width as usize;
        let (x, y) = (r.x as usize, r.y as usize);
        let (w, h) = (r.width as usize, r.height as usize);
        if r.x == 0 && r.width == self.width {
            let first = y * width;
            if let Some(rows) = self.image.get_mut(first..first + w * h) {
                backing.read(mem, offset, rows.as_mut_bytes());
            }
            return;
        }
        for row in 0..h {
            let first = (y + row) * width + x;
            let Some(pixels) = self.image.get_mut(first..first + w) else {
                break;
            };
            backing.read(mem, offset + stride * row as u64, pixels.as_mut_bytes());
        }
    }

    /// The pixels of `r` (inside the resource), row by row.
    pub(crate) fn copy_rect(&self, r: &Rect) -> Vec<u32> {
        let width = self.width as usize;
        let mut out = Vec::with_capacity(r.width as usize * r.height as usize);
        for row in 0..r.height as usize {
            let first = (r.y as usize + row) * width + r.x as usize;
            if let Some(pixels) = self.image.get(first..first + r.width as usize) {
                out.extend_from_slice(pixels);
            }
        }
        out
    }
}

/// Whether `r` lies inside a `width` x `height` surface, computed without overflow.
pub(crate) fn rect_within(r: &Rect, width: u32, height: u32) -> bool {
    u64::from(r.x) + u64::from(r.width) <= u64::from(width)
        && u64::from(r.y) + u64::from(r.height) <= u64::from(height)
}

/// Whether every entry is a non-empty range inside guest memory. QEMU maps each entry with
/// `dma_memory_map`, which refuses zero lengths and anything that is not RAM.
pub(crate) fn entries_in_memory(mem: &GuestMemoryMmap<()>, entries: &[MemEntry]) -> bool {
    entries.iter().all(|entry| {
        entry.length != 0
            && GuestMemoryBackend::check_range(mem, GuestAddress(entry.addr), entry.length as usize)
    })
}
