//! The bugcheck screen: DxgkDdiSystemDisplayEnable and DxgkDdiSystemDisplayWrite.
//!
//! These run when Windows is dying, at HIGH_LEVEL with interrupts off and other processors
//! frozen, perhaps in the middle of a DDI that holds the state lock. So: no allocation, no
//! waiting on events and no lock at all. The framebuffers come from the published table of
//! `screens.rs`, the device from the pointer published for the ISR, and every device command
//! goes out in `WaitMode::Polled` (which only *tries* a queue's ring lock). The picture is
//! written into the current framebuffer of the target (unrotated: the OS gets the
//! framebuffer's own size) and sent to the host with a polled transfer and flush. A target
//! that shows nothing (D3DDDI_ID_UNINITIALIZED, an inactive or unknown target) gets the
//! first scanout that does, so the blue screen appears somewhere.

use core::sync::atomic::Ordering;

use viogpu_common::gpu::WaitMode;
use viogpu_common::protocol::Rect as GpuRect;
use viogpu_common::protocol::VIRTIO_GPU_MAX_SCANOUTS as MAX_SCANOUTS;

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
    /// The scanout the bugcheck screen draws on for `target`: the target itself when it
    /// shows a framebuffer, else the first scanout that does.
    fn bugcheck_screen(&self, target: u32) -> Option<(u32, Screen)> {
        let own = self.screens.screen(target as usize).map(|s| (target, s));
        own.or_else(|| {
            (0..MAX_SCANOUTS).find_map(|i| self.screens.screen(i).map(|s| (i as u32, s)))
        })
    }

    /// DxgkDdiSystemDisplayEnable for `target`.
    pub fn system_display_enable(&self, target: u32) -> DdiResult<SystemDisplay> {
        self.bugcheck.store(true, Ordering::Release);
        let (shown_on, screen) = self.bugcheck_screen(target).ok_or(STATUS_UNSUCCESSFUL)?;
        self.bugcheck_target.store(shown_on, Ordering::Release);
        Ok(SystemDisplay {
            width: screen.width,
            height: screen.height,
            format: D3DDDIFMT_X8R8G8B8,
        })
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
        let id = screen.resource_id;
        self.with_published_hw(|hw| {
            let _ = hw
                .gpu
                .transfer_to_host_2d(id, rect, offset, WaitMode::Polled);
            let _ = hw.gpu.resource_flush(id, rect, WaitMode::Polled);
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
