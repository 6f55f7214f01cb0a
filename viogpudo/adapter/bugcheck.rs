//! The bugcheck screen: DxgkDdiSystemDisplayEnable and DxgkDdiSystemDisplayWrite.
//!
//! These run when Windows is dying, at HIGH_LEVEL with interrupts off and other processors
//! frozen, perhaps in the middle of a DDI that holds the state lock. So: no allocation, no
//! waiting on events and no lock at all. The framebuffers come from the published table of
//! `screens.rs`, the device from the hardware published for the ISR, connectivity from the
//! children mask the DPC uses, and every device command goes out in `WaitMode::Polled` (which
//! only *tries* a queue's ring lock).
//!
//! SystemDisplayEnable does what its page requires, in its order:
//! - **GPU idle.** The bugcheck latch stops every other path from sending commands (the other
//!   processors are frozen anyway); a virtio-gpu device has no GPU work to cancel, and a reset
//!   would blank the scanout the picture must appear on.
//! - **Connectivity.** A target without a monitor (disconnected, or not a target of this
//!   adapter) answers STATUS_NOT_SUPPORTED. D3DDDI_ID_UNINITIALIZED names no target: the first
//!   scanout that shows a framebuffer is used. A connected target whose scanout shows nothing
//!   (its path is off) also gets the first scanout that does, so the blue screen appears
//!   somewhere; with none at all the answer is STATUS_NOT_SUPPORTED too.
//! - **The other displays.** Every other scanout is disabled (SET_SCANOUT to no resource) and
//!   the hardware pointer is hidden on the chosen one, so only the bugcheck picture is shown.
//!
//! The chosen scanout's current framebuffer is sent whole and shown (SET_SCANOUT), then the
//! picture is written into it (unrotated: the OS gets the framebuffer's own size) and sent to
//! the host with a polled transfer and flush.

use core::sync::atomic::Ordering;

use viogpu_common::gpu::WaitMode;
use viogpu_common::protocol::VIRTIO_GPU_MAX_SCANOUTS as MAX_SCANOUTS;
use viogpu_common::protocol::{CursorPos, Rect as GpuRect};

use super::screens::Screen;
use super::{Adapter, DdiResult};
use crate::ddi::*;

/// What SystemDisplayEnable reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemDisplay {
    /// Width of the surface the OS draws on.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Pixel format.
    pub format: D3DDDIFORMAT,
}

impl Adapter {
    /// The scanout the bugcheck screen draws on for `target` (module docs), or `None` when
    /// the answer is STATUS_NOT_SUPPORTED.
    fn bugcheck_screen(&self, target: u32) -> Option<(u32, Screen)> {
        let first_shown =
            || (0..MAX_SCANOUTS).find_map(|i| self.screens.screen(i).map(|s| (i as u32, s)));
        if target == D3DDDI_ID_UNINITIALIZED {
            return first_shown();
        }
        let connected = target < self.num_sources().min(u32::BITS)
            && self.connected_mask.load(Ordering::Acquire) & (1 << target) != 0;
        if !connected {
            return None;
        }
        let own = self.screens.screen(target as usize).map(|s| (target, s));
        own.or_else(first_shown)
    }

    /// DxgkDdiSystemDisplayEnable for `target`.
    pub fn system_display_enable(&self, target: u32) -> DdiResult<SystemDisplay> {
        self.bugcheck.store(true, Ordering::Release);
        let (shown_on, screen) = self.bugcheck_screen(target).ok_or(STATUS_NOT_SUPPORTED)?;
        self.bugcheck_target.store(shown_on, Ordering::Release);
        if !self.is_removed() {
            self.only_show(shown_on);
            self.show_whole(shown_on, &screen);
        }
        Ok(SystemDisplay {
            width: screen.width,
            height: screen.height,
            format: D3DDDIFMT_X8R8G8B8,
        })
    }

    /// Disables every scanout but `kept` and hides the hardware pointer on it (polled; a
    /// command that cannot go out is skipped: the picture matters more).
    fn only_show(&self, kept: u32) {
        let zero = GpuRect::new(0, 0, 0, 0);
        self.with_published_hw(|hw| {
            for scanout in (0..self.num_sources()).filter(|&s| s != kept) {
                if self.screens.screen(scanout as usize).is_some() {
                    let _ = hw.gpu.set_scanout(scanout, 0, zero, WaitMode::Polled);
                    self.screens.hide(scanout as usize);
                }
            }
            let nowhere = CursorPos {
                scanout_id: kept,
                x: 0,
                y: 0,
                padding: 0,
            };
            let _ = hw.gpu.update_cursor(nowhere, 0, 0, 0, WaitMode::Polled);
        });
    }

    /// Sends all of `screen` to the host and points scanout `on` at it (polled, best effort).
    /// A mode change points the scanout at its new framebuffer only with the first present
    /// (the core's scanout module): one that came just before the bugcheck would otherwise
    /// leave the host showing the old one, and parts of the new resource never sent.
    fn show_whole(&self, on: u32, screen: &Screen) {
        let shown = screen.shown();
        let rect = shown.full_rect();
        self.with_published_hw(|hw| {
            let _ = shown.send(&hw.gpu, rect, 0, WaitMode::Polled);
            let _ = shown.show_on(&hw.gpu, on, WaitMode::Polled);
            let _ = hw
                .gpu
                .resource_flush(shown.resource_id, rect, WaitMode::Polled);
        });
    }

    /// DxgkDdiSystemDisplayWrite on the scanout enable chose: `source` is `height` rows of
    /// `stride` bytes of `width` 32-bit pixels, placed at `(x, y)` of the surface reported by
    /// enable; whatever lies outside the framebuffer is clipped.
    pub fn system_display_write(
        &self,
        source: &[u8],
        width: u32,
        height: u32,
        stride: u32,
        x: u32,
        y: u32,
    ) {
        if self.is_removed() {
            return;
        }
        let target = self.bugcheck_target.load(Ordering::Acquire);
        let Some(screen) = self.screens.screen(target as usize) else {
            return;
        };
        if x >= screen.width || y >= screen.height {
            return;
        }
        let w = width.min(screen.width - x);
        let h = height.min(screen.height - y);
        let row_bytes = w as usize * 4;
        for row in 0..h {
            let src_at = row as usize * stride as usize;
            let Some(src) = source.get(src_at..src_at + row_bytes) else {
                return;
            };
            let Some(dst) = screen.row(y + row) else {
                return;
            };
            // SAFETY: the published entry names the scanout's current framebuffer, which stays
            // allocated while it is published (screens.rs); row `y + row` has `pitch` bytes and
            // `x * 4 + row_bytes <= width * 4 <= pitch` (clipped above). Nothing else writes
            // the framebuffer now: the other processors are frozen.
            unsafe { write_row(dst, x as usize * 4, src) };
        }
        if w == 0 || h == 0 {
            return;
        }
        let rect = GpuRect::new(x, y, w, h);
        let offset = u64::from(y) * u64::from(screen.pitch) + u64::from(x) * 4;
        self.with_published_hw(|hw| {
            let _ = screen
                .shown()
                .send_and_flush(&hw.gpu, rect, offset, WaitMode::Polled);
        });
    }
}

/// Copies `src` to `row + offset`.
///
/// # Safety
/// `row + offset .. + src.len()` is writable memory that nothing else uses meanwhile.
unsafe fn write_row(row: core::ptr::NonNull<u8>, offset: usize, src: &[u8]) {
    // SAFETY: the caller's contract: `row + offset` lies inside the writable range.
    let dst = unsafe { row.as_ptr().add(offset) };
    // SAFETY: the caller's contract; `src` is ordinary memory, not the framebuffer.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
}
