//! DxgkDdiStopDeviceAndReleasePostDisplayOwnership: the driver stops, but the picture of one
//! target stays on screen for whoever takes over (the Basic Display Driver after a driver
//! update or disable), described by a `DXGK_DISPLAY_INFORMATION`.
//!
//! A virtio-gpu scanout only shows what the host resource holds, and the host resource is
//! backed by the driver's own guest memory. So the device is not reset (that would blank the
//! scanout), and the queues and framebuffers are deliberately leaked (the device, and the
//! next owner through `PhysicAddress`, may still use them). The next StartDevice resets the
//! device.
//!
//! The next owner writes `Height * Pitch` bytes linearly from `PhysicAddress`, but a large
//! framebuffer (or one allocated after a fallback to small chunks) is several physically
//! separate bands. Such a framebuffer is first rebuilt as one physically contiguous block
//! holding the same picture and shown; its first byte is what is reported. If that block
//! cannot be had, no address is handed over: the call fails and the driver stays as it was
//! (the OS then calls DxgkDdiStopDevice, as the DDI page says). The same holds without a
//! powered, present device or when the framebuffer has no host resource: the scanout does not
//! show it. The hardware pointer is hidden before the hand-off.

use core::sync::atomic::Ordering;

use viogpu_common::framebuffer::AllocPolicy;

use super::{status_of, Adapter, DdiResult, PointerState, State};
use crate::ddi::*;

impl Adapter {
    /// Stops the adapter, leaving `target`'s picture visible; returns what is shown.
    pub fn stop_and_release_post_display(
        &self,
        target: u32,
    ) -> DdiResult<DXGK_DISPLAY_INFORMATION> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if self.is_removed() || state.device.powered().is_none() {
            // No device that shows a picture: nothing to hand over, nothing changed.
            return Err(STATUS_DEVICE_NOT_READY);
        }
        let head = state
            .heads
            .get(target as usize)
            .ok_or(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET)?;
        let Some(fb) = head.scanout.current() else {
            // Nothing on screen to hand over: an ordinary stop.
            self.teardown(state, false);
            self.num_sources.store(0, Ordering::Release);
            return Err(STATUS_NOT_SUPPORTED);
        };
        if fb.resource_id() == 0 {
            // Its host resource is gone (not restored after a power-up): the scanout does
            // not show this memory.
            return Err(STATUS_UNSUCCESSFUL);
        }
        if fb.backing().entry_count() > 1 {
            // The old framebuffer is freed once the new one shows.
            self.screens.hide(target as usize);
            let made = self.make_contiguous(state, target);
            self.screens.publish_all(&state.heads);
            made?;
        }
        let backing = state
            .heads
            .get(target as usize)
            .and_then(|head| head.scanout.current())
            .map(|fb| fb.backing())
            .ok_or(STATUS_UNSUCCESSFUL)?;
        let (first, single) = {
            let mut entries = backing.entries();
            (entries.next(), entries.next().is_none())
        };
        let address = first
            .filter(|_| single)
            .and_then(|(phys, _)| i64::try_from(phys).ok())
            .ok_or(STATUS_UNSUCCESSFUL)?;
        let info = DXGK_DISPLAY_INFORMATION {
            Width: backing.width(),
            Height: backing.height(),
            Pitch: backing.pitch(),
            ColorFormat: D3DDDIFMT_X8R8G8B8,
            PhysicAddress: PHYSICAL_ADDRESS::new(address),
            TargetId: target,
            AcpiId: 0,
        };
        hide_cursor(state, &mut self.pointer.lock());
        self.teardown(state, true);
        self.num_sources.store(0, Ordering::Release);
        Ok(info)
    }

    /// Replaces `target`'s framebuffer by one physically contiguous copy of it, shown on the
    /// scanout. On failure the old framebuffer is still shown and the state is unchanged.
    fn make_contiguous(&self, state: &mut State, target: u32) -> DdiResult<()> {
        let State {
            device, heads, ids, ..
        } = state;
        // No device to show a new framebuffer.
        let hw = device
            .powered()
            .filter(|_| !self.is_removed())
            .ok_or(STATUS_UNSUCCESSFUL)?;
        let head = heads
            .get_mut(target as usize)
            .ok_or(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET)?;
        let bytes = head
            .scanout
            .current()
            .and_then(|fb| usize::try_from(fb.backing().size_bytes()).ok())
            .ok_or(STATUS_UNSUCCESSFUL)?;
        head.scanout
            .reallocate(&hw.gpu, ids, &AllocPolicy::contiguous(bytes))
            .map_err(|e| {
                crate::trace!("post-display: no contiguous framebuffer for target {target}: {e}");
                status_of(e)
            })
    }
}

/// Hides the hardware pointer: the next owner draws its own, and a frozen hardware one
/// would show as a second pointer.
fn hide_cursor(state: &State, pointer: &mut PointerState) {
    let (Some(hw), Some(c)) = (state.device.powered(), pointer.cursor.as_mut()) else {
        return;
    };
    if let Err(e) = c.hide(&hw.gpu) {
        crate::trace!("post-display: hardware cursor not hidden: {e}");
    }
}
