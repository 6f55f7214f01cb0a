//! DxgkDdiStopDeviceAndReleasePostDisplayOwnership: the driver stops, but the picture of one
//! target stays on screen for whoever takes over (the Basic Display Driver after a driver
//! update or disable), described by a `DXGK_DISPLAY_INFORMATION`.
//!
//! A virtio-gpu scanout only shows what the host resource holds, and the host resource is
//! backed by the driver's own guest memory. So the device is not reset (that would blank the
//! scanout), and the queues and framebuffers are deliberately leaked (the device, and the
//! next owner through `PhysicAddress`, may still use them). The next StartDevice resets the
//! device. The reported address is the framebuffer's first byte; its first band is
//! physically contiguous, the whole framebuffer only when it has a single band.

use core::sync::atomic::Ordering;

use super::{Adapter, DdiResult};
use crate::ddi::*;

impl Adapter {
    /// Stops the adapter, leaving `target`'s picture visible; returns what is shown.
    pub fn stop_and_release_post_display(
        &self,
        target: u32,
    ) -> DdiResult<DXGK_DISPLAY_INFORMATION> {
        let mut state = self.state.lock();
        let head = state
            .heads
            .get(target as usize)
            .ok_or(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET)?;
        let Some(fb) = head.scanout.current() else {
            // Nothing on screen to hand over: an ordinary stop.
            self.teardown(&mut state, false);
            self.num_sources.store(0, Ordering::Release);
            return Err(STATUS_NOT_SUPPORTED);
        };
        let backing = fb.backing();
        let first = backing.entries().next().map_or(0, |(phys, _)| phys);
        let info = DXGK_DISPLAY_INFORMATION {
            Width: backing.width(),
            Height: backing.height(),
            Pitch: backing.pitch(),
            ColorFormat: D3DDDIFMT_X8R8G8B8,
            PhysicAddress: PHYSICAL_ADDRESS::new(i64::try_from(first).unwrap_or(0)),
            TargetId: target,
            AcpiId: 0,
        };
        state.released = true;
        self.teardown(&mut state, true);
        self.num_sources.store(0, Ordering::Release);
        Ok(info)
    }
}
