//! DxgkDdiStopDeviceAndReleasePostDisplayOwnership: the driver stops and hands one target's
//! display to whoever takes over (the Basic Display Driver after a driver update or disable),
//! described by a `DXGK_DISPLAY_INFORMATION`.
//!
//! The duties, from the DDI page and the KMDOD sample (which blacks the screen out and keeps
//! it visible before it reports the mode), as the virtio-gpu-pci path meets them (the
//! virtio-vga path below meets them with the VGA):
//! - **Which target.** The asked target if it has a monitor (connectivity, as the children
//!   were last reported) and shows a framebuffer; otherwise another active target that does,
//!   reported in `TargetId`. With none, STATUS_NOT_SUPPORTED, and nothing is changed or reset
//!   (the OS then calls DxgkDdiStopDevice, which does that).
//! - **A cleared surface.** The handed-over framebuffer is painted black and sent to the host,
//!   so the screen is black and visible until the next owner draws.
//! - **The other displays** are turned off (SET_SCANOUT to no resource), and the hardware
//!   pointer is hidden: the next owner draws its own.
//!
//! **On a virtio-vga** (`vga.rs` says how it is recognised) the display handed over is the
//! VGA, as virtio-win's viogpudo hands over the firmware's framebuffer: its DISPI registers are
//! set to the mode scanout 0 shows (or, when that does not fit the 8 MiB of VGA memory or its
//! width is not a multiple of 8, the nearest the VGA can show: the firmware's mode, then
//! 1024x768, 800x600, 640x480; the width rounded down to a multiple of 8), what that mode
//! shows is cleared, and the device is reset, which takes it out of virtio mode: from then on
//! the host shows the VGA on scanout 0, and what the next owner writes at `PhysicAddress`
//! (BAR 0) is on screen with no command sent. The target is always 0 (the VGA is where
//! scanout 0 is; target 0 always counts as connected), and everything of the virtio side is
//! freed, as at StopDevice. A VGA that does not take the mode fails the call before anything
//! visible changed.
//!
//! **On a virtio-gpu-pci** there is no VGA, and nothing shows guest memory by itself: a
//! virtio-gpu scanout only shows what the host resource holds after a TRANSFER_TO_HOST_2D,
//! which the next owner does not send. The driver still hands over its framebuffer, black and
//! visible: the DDI page asks the driver to stop the device but keep the target's display on
//! and visible, and reserves the failure for a target without a monitor (after which the OS
//! calls DxgkDdiStopDevice, which would reset the device and blank the screen). So what the
//! next owner draws does not reach the screen until this driver starts again (README, Known
//! gaps). The device is not reset (that would blank the scanout), and the queues and
//! framebuffers are deliberately leaked (the device, and the next owner through
//! `PhysicAddress`, may still use them). The next StartDevice resets the device.
//!
//! On that path, the next owner writes `Height * Pitch` bytes linearly from `PhysicAddress`,
//! but a large framebuffer (or one allocated after a fallback to small chunks) is several physically
//! separate bands. Such a framebuffer is first rebuilt as one physically contiguous block and
//! shown; its first byte is what is reported. If that block cannot be had, no address is
//! handed over: the call fails and the driver stays as it was. The same holds without a
//! powered, present device.

use core::sync::atomic::Ordering;

use viogpu_common::framebuffer::AllocPolicy;

use super::{child, status_of, Adapter, DdiResult, Ending, PointerState, State, BLACK};
use crate::ddi::*;
use crate::os;
use viogpu_common::framebuffer::FramebufferBacking;
use viogpu_common::gpu::WaitMode;

impl Adapter {
    /// Stops the adapter, handing a black, visible display to the next owner; returns what
    /// it is.
    pub fn stop_and_release_post_display(
        &self,
        target: u32,
    ) -> DdiResult<DXGK_DISPLAY_INFORMATION> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let gone = |hw| self.is_removed() || self.note_if_gone(hw);
        if state.device.powered().is_none_or(gone) {
            // No device that shows a picture (powered down, or unplugged): nothing to hand
            // over, nothing changed.
            return Err(STATUS_DEVICE_NOT_READY);
        }
        if state.device.powered().is_some_and(|hw| hw.vga.is_some()) {
            return self.release_to_vga(state);
        }
        let target = hand_off_target(state, target).ok_or(STATUS_NOT_SUPPORTED)?;
        if head_backing(state, target).is_some_and(|b| b.entry_count() > 1) {
            // The old framebuffer is freed once the new one shows.
            self.screens.hide(target as usize);
            let made = self.make_contiguous(state, target);
            self.screens.publish_all(&state.heads);
            made?;
        }
        let (first, single) = {
            let backing = head_backing(state, target).ok_or(STATUS_UNSUCCESSFUL)?;
            let mut entries = backing.entries();
            (entries.next(), entries.next().is_none())
        };
        let address = first
            .filter(|_| single)
            .and_then(|(phys, _)| i64::try_from(phys).ok())
            .ok_or(STATUS_UNSUCCESSFUL)?;
        self.blank_for_hand_off(state, target)?;
        let backing = head_backing(state, target).ok_or(STATUS_UNSUCCESSFUL)?;
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

    /// The hand-off on a virtio-vga (module docs): the VGA prepared, then the device reset.
    fn release_to_vga(&self, state: &mut State) -> DdiResult<DXGK_DISPLAY_INFORMATION> {
        let info = {
            let hw = state.device.powered().ok_or(STATUS_DEVICE_NOT_READY)?;
            let vga = hw.vga.as_ref().ok_or(STATUS_NOT_SUPPORTED)?;
            let shown = head_backing(state, 0).map(|b| (b.width(), b.height()));
            vga.prepare(&hw.dxgk, shown)?
        };
        // The reset takes the device out of virtio mode: the host shows the VGA from here on.
        self.end_device(state, Ending::HandOffReset);
        self.num_sources.store(0, Ordering::Release);
        Ok(info)
    }

    /// Paints `target` black (shown and sent to the host) and turns every other scanout off.
    /// Only a failure to paint the handed-over display fails the hand-off.
    fn blank_for_hand_off(&self, state: &mut State, target: u32) -> DdiResult<()> {
        let State {
            device, heads, ids, ..
        } = state;
        let hw = device.powered().ok_or(STATUS_DEVICE_NOT_READY)?;
        let zero = viogpu_common::protocol::Rect::new(0, 0, 0, 0);
        for (index, head) in (0u32..).zip(heads.iter_mut()) {
            if index == target {
                head.scanout.paint(&hw.gpu, ids, BLACK).map_err(status_of)?;
            } else if head.scanout.mode().is_some() {
                // Off for the next owner; the framebuffer itself is leaked with the rest.
                self.screens.hide(index as usize);
                if let Err(e) = hw.gpu.set_scanout(index, 0, zero, WaitMode::Wait) {
                    crate::trace!("post-display: scanout {index} not turned off: {e}");
                }
            }
        }
        Ok(())
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

/// The target to hand over: `asked` when it has a monitor and shows a framebuffer with a host
/// resource, else the first other target that does (module docs).
fn hand_off_target(state: &State, asked: u32) -> Option<u32> {
    let usable = |index: usize| {
        let head = state.heads.get(index)?;
        let shown = head.scanout.current()?;
        (child::is_connected(index, head) && shown.resource_id() != 0).then_some(index as u32)
    };
    usable(asked as usize).or_else(|| (0..state.heads.len()).find_map(usable))
}

/// The guest memory of `target`'s shown framebuffer.
fn head_backing(state: &State, target: u32) -> Option<&FramebufferBacking<os::Dma>> {
    state
        .heads
        .get(target as usize)?
        .scanout
        .current()
        .map(|fb| fb.backing())
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
