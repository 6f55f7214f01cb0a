//! The bugcheck screen: DxgkDdiSystemDisplayEnable and DxgkDdiSystemDisplayWrite.
//!
//! These run when Windows is dying, at high IRQL with interrupts off and other processors
//! frozen. So: no allocation, no waiting on events, no lock that a frozen thread may hold
//! (the state lock is only tried; if it is held the screen is left as it is), and every
//! device command goes out in `WaitMode::Polled`. The picture is written into the current
//! framebuffer of the target (unrotated: the OS gets the framebuffer's own size) and sent to
//! the host with a polled transfer and flush.

use core::sync::atomic::Ordering;

use viogpu_common::gpu::WaitMode;
use viogpu_common::protocol::Rect as GpuRect;

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
    /// DxgkDdiSystemDisplayEnable for `target`.
    pub fn system_display_enable(&self, target: u32) -> DdiResult<SystemDisplay> {
        self.bugcheck.store(true, Ordering::Release);
        self.bugcheck_target.store(target, Ordering::Release);
        let state = self.state.try_lock().ok_or(STATUS_UNSUCCESSFUL)?;
        let head = state
            .heads
            .get(target as usize)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        let (width, height) = head.scanout.mode().ok_or(STATUS_UNSUCCESSFUL)?;
        Ok(SystemDisplay {
            width,
            height,
            format: D3DDDIFMT_X8R8G8B8,
        })
    }

    /// DxgkDdiSystemDisplayWrite on the target enable named: `source` is `height` rows of `stride` bytes of `width`
    /// 32-bit pixels, placed at `(x, y)` of the surface reported by enable; whatever lies
    /// outside the framebuffer is clipped.
    pub fn system_display_write(
        &self,
        source: &[u8],
        width: u32,
        height: u32,
        stride: u32,
        x: u32,
        y: u32,
    ) {
        let target = self.bugcheck_target.load(Ordering::Acquire);
        if self.is_removed() {
            return;
        }
        let Some(mut state) = self.state.try_lock() else {
            return;
        };
        let state = &mut *state;
        let Some(hw) = state.hw.as_deref() else {
            return;
        };
        let Some(fb) = state
            .heads
            .get_mut(target as usize)
            .and_then(|h| h.scanout.current_mut())
        else {
            return;
        };
        let backing = fb.backing_mut();
        let (fb_w, fb_h) = (backing.width(), backing.height());
        if x >= fb_w || y >= fb_h {
            return;
        }
        let w = width.min(fb_w - x);
        let h = height.min(fb_h - y);
        for row in 0..h {
            let src_at = row as usize * stride as usize;
            let Some(src) = source.get(src_at..src_at + w as usize * 4) else {
                return;
            };
            let dst_at = x as usize * 4;
            if let Some(dst) = backing
                .row_mut(y + row)
                .and_then(|r| r.get_mut(dst_at..dst_at + w as usize * 4))
            {
                dst.copy_from_slice(src);
            }
        }
        let resource_id = fb.resource_id();
        if resource_id == 0 || w == 0 || h == 0 {
            return;
        }
        let rect = GpuRect::new(x, y, w, h);
        let offset = u64::from(y) * u64::from(fb.backing().pitch()) + u64::from(x) * 4;
        let _ = hw
            .gpu
            .transfer_to_host_2d(resource_id, rect, offset, WaitMode::Polled);
        let _ = hw.gpu.resource_flush(resource_id, rect, WaitMode::Polled);
    }
}
