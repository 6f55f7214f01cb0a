//! The framebuffers as the bugcheck screen sees them: a lock-free, published description of
//! each scanout's current framebuffer (host resource, size, where its rows live).
//!
//! The bugcheck screen runs at HIGH_LEVEL with the other processors frozen, possibly in the
//! middle of a DDI that holds the state lock (a commit waiting for the device). It cannot take
//! that lock, ever. So whatever changes a scanout's framebuffer also keeps this table true,
//! with one rule: **an entry is hidden before the memory it names can be freed, and published
//! only while that memory is the scanout's current framebuffer.** A mode change publishes the
//! new framebuffer right after the scanout switched to it, before the old one is freed; a
//! power-down, hand-off or teardown hides every entry first.
//!
//! Each entry is a small sequence lock: `seq` is odd while the entry is being rewritten; a
//! reader takes a copy only when it saw the same even `seq` before and after. At HIGH_LEVEL
//! nothing else runs, so the copy is always stable; an entry frozen in the middle of a rewrite
//! (odd) is simply not used.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use viogpu_common::protocol::VIRTIO_GPU_MAX_SCANOUTS as MAX_SCANOUTS;
use viogpu_common::scanout::{Framebuffer, ShownFramebuffer};

use super::Head;
use crate::os;

/// Most chunks a published framebuffer may have (an 8K framebuffer has 8). A framebuffer made
/// of more (memory so fragmented that the allocator fell back to small chunks) is not
/// published: the bugcheck screen skips that scanout.
pub const MAX_BANDS: usize = 32;

/// One scanout's entry.
struct Entry {
    seq: AtomicU32,
    /// Host resource of the framebuffer; 0: nothing to show.
    resource_id: AtomicU32,
    width: AtomicU32,
    height: AtomicU32,
    pitch: AtomicU32,
    /// 1 for a blob the host reads in place (no transfers).
    blob: AtomicU32,
    band_count: AtomicU32,
    band_base: [AtomicUsize; MAX_BANDS],
    band_first_row: [AtomicU32; MAX_BANDS],
    band_rows: [AtomicU32; MAX_BANDS],
}

impl Entry {
    const fn new() -> Self {
        Self {
            seq: AtomicU32::new(0),
            resource_id: AtomicU32::new(0),
            width: AtomicU32::new(0),
            height: AtomicU32::new(0),
            pitch: AtomicU32::new(0),
            blob: AtomicU32::new(0),
            band_count: AtomicU32::new(0),
            band_base: [const { AtomicUsize::new(0) }; MAX_BANDS],
            band_first_row: [const { AtomicU32::new(0) }; MAX_BANDS],
            band_rows: [const { AtomicU32::new(0) }; MAX_BANDS],
        }
    }

    /// Rewrites the entry with `f` between an odd and an even `seq`.
    fn rewrite(&self, f: impl FnOnce(&Self)) {
        self.seq.fetch_add(1, Ordering::AcqRel);
        core::sync::atomic::fence(Ordering::Release);
        f(self);
        self.seq.fetch_add(1, Ordering::Release);
    }
}

/// A stable copy of one entry, taken by the bugcheck screen.
#[derive(Clone, Copy)]
pub struct Screen {
    /// Host resource to transfer and flush.
    pub resource_id: u32,
    /// Framebuffer width in pixels.
    pub width: u32,
    /// Framebuffer height in rows.
    pub height: u32,
    /// Bytes per row.
    pub pitch: u32,
    /// A blob the host reads in place: nothing to transfer, a flush shows new pixels.
    pub blob: bool,
    bands: [(usize, u32, u32); MAX_BANDS],
    band_count: usize,
}

impl Screen {
    /// What the host needs to show this framebuffer.
    pub fn shown(&self) -> ShownFramebuffer {
        ShownFramebuffer {
            resource_id: self.resource_id,
            size: (self.width, self.height),
            pitch: self.pitch,
            blob: self.blob,
        }
    }

    /// Where row `y` starts, if the framebuffer has that row.
    pub fn row(&self, y: u32) -> Option<NonNull<u8>> {
        let bands = self.bands.get(..self.band_count)?;
        let &(base, first, _) = bands
            .iter()
            .find(|&&(_, first, rows)| y >= first && y - first < rows)?;
        let offset = (y - first) as usize * self.pitch as usize;
        NonNull::new(base.wrapping_add(offset) as *mut u8)
    }
}

/// The published framebuffers of every scanout.
pub struct Screens {
    entries: [Entry; MAX_SCANOUTS],
}

impl Screens {
    /// Every entry hidden.
    pub const fn new() -> Self {
        Self {
            entries: [const { Entry::new() }; MAX_SCANOUTS],
        }
    }

    /// Hides scanout `index`: called before its framebuffer memory may be freed.
    pub fn hide(&self, index: usize) {
        if let Some(entry) = self.entries.get(index) {
            entry.rewrite(|e| e.resource_id.store(0, Ordering::Relaxed));
        }
    }

    /// Hides every scanout.
    pub fn hide_all(&self) {
        (0..MAX_SCANOUTS).for_each(|i| self.hide(i));
    }

    /// Publishes `fb` as scanout `index`'s current framebuffer (hidden for `None`, for a
    /// framebuffer without a host resource, or for one of more than [`MAX_BANDS`] chunks).
    /// The caller guarantees `fb` stays allocated until it hides or republishes the entry.
    pub fn publish(&self, index: usize, fb: Option<&Framebuffer<os::Dma>>) {
        let Some(entry) = self.entries.get(index) else {
            return;
        };
        entry.rewrite(|e| {
            e.resource_id.store(0, Ordering::Relaxed);
            let Some(fb) = fb.filter(|fb| fb.resource_id() != 0) else {
                return;
            };
            let backing = fb.backing();
            if backing.entry_count() > MAX_BANDS {
                return;
            }
            let mut count = 0u32;
            for (i, band) in backing.raw_bands().enumerate() {
                if let (Some(base), Some(first), Some(rows)) = (
                    e.band_base.get(i),
                    e.band_first_row.get(i),
                    e.band_rows.get(i),
                ) {
                    base.store(band.base.as_ptr() as usize, Ordering::Relaxed);
                    first.store(band.first_row, Ordering::Relaxed);
                    rows.store(band.rows, Ordering::Relaxed);
                    count += 1;
                }
            }
            e.band_count.store(count, Ordering::Relaxed);
            e.width.store(backing.width(), Ordering::Relaxed);
            e.height.store(backing.height(), Ordering::Relaxed);
            e.pitch.store(backing.pitch(), Ordering::Relaxed);
            e.blob.store(u32::from(fb.is_blob()), Ordering::Relaxed);
            e.resource_id.store(fb.resource_id(), Ordering::Relaxed);
        });
    }

    /// Publishes every head's current framebuffer (after a start, power-up or hand-off
    /// attempt rebuilt them).
    pub fn publish_all(&self, heads: &[Head]) {
        for (index, head) in heads.iter().enumerate() {
            self.publish(index, head.scanout.current());
        }
    }

    /// A stable copy of scanout `index`'s entry, if it shows something.
    pub fn screen(&self, index: usize) -> Option<Screen> {
        let e = self.entries.get(index)?;
        let before = e.seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            return None;
        }
        let mut screen = Screen {
            resource_id: e.resource_id.load(Ordering::Relaxed),
            width: e.width.load(Ordering::Relaxed),
            height: e.height.load(Ordering::Relaxed),
            pitch: e.pitch.load(Ordering::Relaxed),
            blob: e.blob.load(Ordering::Relaxed) != 0,
            bands: [(0, 0, 0); MAX_BANDS],
            band_count: (e.band_count.load(Ordering::Relaxed) as usize).min(MAX_BANDS),
        };
        for (i, slot) in screen.bands.iter_mut().enumerate() {
            if let (Some(base), Some(first), Some(rows)) = (
                e.band_base.get(i),
                e.band_first_row.get(i),
                e.band_rows.get(i),
            ) {
                *slot = (
                    base.load(Ordering::Relaxed),
                    first.load(Ordering::Relaxed),
                    rows.load(Ordering::Relaxed),
                );
            }
        }
        core::sync::atomic::fence(Ordering::Acquire);
        let stable = e.seq.load(Ordering::Relaxed) == before;
        (stable && screen.resource_id != 0).then_some(screen)
    }
}
