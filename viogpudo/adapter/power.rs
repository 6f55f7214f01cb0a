//! Device power: DxgkDdiSetPowerState, DxgkDdiResetDevice and the adapter side of Unload.
//!
//! Going to a low-power state (D1..D3) turns the scanouts off, resets the device (it forgets
//! every host resource and stops all DMA) and takes back every request buffer, but keeps the
//! framebuffer memory, the committed modes and the cursor image. Coming back to D0 runs the
//! core's restart over the same rings, then recreates each framebuffer's host resource over
//! its kept memory (cleared: every source is invisible and black until the OS makes it
//! visible, whose next present then brings the whole desktop back) and points the scanout at
//! it; display info is re-read because monitors may have changed.
//! Power requests for a child (a monitor) need nothing from a virtual device.

use core::sync::atomic::Ordering;
use viogpu_common::fallible::Shared;

use viogpu_common::bring_up::{restart, RingAddresses, QUEUES};
use viogpu_common::gpu::WaitMode;
use viogpu_common::protocol::Rect;

use super::lifecycle::Device;
use super::{
    start, Adapter, DdiResult, Hardware, IntoDdi, PointerState, State, BLACK, DISPLAY_ADAPTER_HW_ID,
};
use crate::ddi::*;

impl Adapter {
    /// DxgkDdiSetPowerState. It must not fail (the page: any return value must pass
    /// NT_SUCCESS), so a device that does not come back to D0 is only traced: the adapter
    /// stays powered down (commits are remembered, presents and pointer updates change
    /// nothing), and the next D0 request (after the OS's next power cycle) tries again.
    pub fn set_power_state(&self, uid: u32, power: DEVICE_POWER_STATE) -> DdiResult<()> {
        if uid != DISPLAY_ADAPTER_HW_ID || self.is_removed() {
            return Ok(());
        }
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let on = power == PowerDeviceD0;
        match (&state.device, on) {
            (Device::On(_), false) => self.power_down(state),
            (Device::Off { .. }, true) => {
                if let Err(status) = self.power_up(state) {
                    crate::trace!("power-up failed ({status:#x}): the adapter stays dark");
                }
            }
            // Not started (StartDevice powers up), handed off, or already there.
            _ => {}
        }
        Ok(())
    }

    /// Scanouts off, device reset, host ids released; guest memory kept. The pointer stops
    /// first, so no cursor command races the reset.
    fn power_down(&self, state: &mut State) {
        let Device::On(hw) = core::mem::replace(&mut state.device, Device::Stopped) else {
            return;
        };
        self.screens.hide_all();
        let mut pointer = self.pointer.lock();
        pointer.hw = None;
        let zero = Rect::new(0, 0, 0, 0);
        for head in &state.heads {
            if head.scanout.mode().is_some() {
                let _ = hw
                    .gpu
                    .set_scanout(head.scanout.index(), 0, zero, WaitMode::Wait);
            }
        }
        let reset_confirmed = hw.transport.lock().reset().is_ok();
        if reset_confirmed {
            Self::forget_host_state(&hw, state, &mut pointer);
        } else {
            // The device may still use request buffers and retired framebuffers: they stay
            // as they are until a reset is confirmed (power-up, or teardown, which leaks them
            // if it never is).
            crate::trace!("power-down: device reset not confirmed");
        }
        state.device = Device::Off {
            hw,
            reset_confirmed,
        };
    }

    /// What a confirmed device reset makes free: every request buffer, every host id, the
    /// retired framebuffers. The framebuffer memory and the cursor image are kept.
    fn forget_host_state(hw: &Hardware, state: &mut State, pointer: &mut PointerState) {
        hw.gpu.reset_queues();
        for head in state.heads.iter_mut() {
            head.scanout.suspend_after_reset(&mut state.ids);
        }
        if let Some(c) = pointer.cursor.as_mut() {
            c.forget_after_reset(&mut state.ids);
        }
    }

    /// The core's restart over the kept rings, then framebuffers (in the committed modes)
    /// and cursor back. On error the adapter stays powered down.
    fn power_up(&self, state: &mut State) -> DdiResult<()> {
        let (hw, reset_confirmed) = match &state.device {
            Device::Off {
                hw,
                reset_confirmed,
            } => (Shared::clone(hw), *reset_confirmed),
            _ => return Err(STATUS_DEVICE_NOT_READY),
        };
        if !reset_confirmed {
            // The rings may still be in the device's hands: empty them only after a
            // confirmed reset.
            hw.transport.lock().reset().ddi()?;
            state.device = Device::Off {
                hw: Shared::clone(&hw),
                reset_confirmed: true,
            };
            Self::forget_host_state(&hw, state, &mut self.pointer.lock());
        }
        {
            let mut transport = hw.transport.lock();
            let rings = QUEUES.map(|q| hw.gpu.with_queue(q, |cq| RingAddresses::of(cq.queue())));
            let restarted =
                restart(&mut transport, hw.features, rings, start::vectors(hw.msix)).ddi()?;
            start::trace_refused_vectors(&restarted.queue_info, restarted.config_vector_accepted);
        }
        state.device = Device::On(Shared::clone(&hw));
        // This read covers any display change seen while powered down.
        self.display_stale.store(false, Ordering::Release);
        if let Err(status) = start::read_displays(state) {
            crate::trace!("power-up: display info failed: {status:#x}");
            self.display_stale.store(true, Ordering::Release);
        }
        self.update_connected_mask(state);
        let State { heads, ids, .. } = state;
        for head in heads.iter_mut() {
            let index = head.scanout.index();
            // A commit while powered down is only remembered: show what was committed.
            let committed = head
                .source_mode
                .map(|(w, h)| head.rotation.framebuffer_size(w, h));
            // Back from D3 every source is invisible until the OS says otherwise, showing
            // black (the KMDOD sample does the same): the kept framebuffer is cleared before
            // its resource is made again, so the one transfer sends black.
            head.visible = false;
            head.full_present = false;
            if let Some(fb) = head.scanout.current_mut() {
                fb.backing_mut().fill(BLACK);
            }
            let result = if committed == head.scanout.mode() {
                head.scanout.resume_after_reset(&hw.gpu, ids)
            } else {
                // The kept framebuffer has the wrong size; the device was reset, so its
                // memory can go.
                head.scanout.forget_after_reset(ids);
                match committed {
                    Some((w, h)) => head.scanout.set_mode(&hw.gpu, ids, w, h, BLACK),
                    None => Ok(()),
                }
            };
            if let Err(e) = result {
                crate::trace!("power-up: scanout {index} not restored: {e}");
            }
        }
        self.screens.publish_all(heads);
        let mut pointer = self.pointer.lock();
        pointer.follow_heads(heads);
        if let Some(c) = pointer.cursor.as_mut() {
            if let Err(failure) = c.restore(&hw.gpu, ids) {
                crate::trace!("power-up: cursor not restored: {}", failure.error);
                if failure.backing_in_use {
                    // The host may still use the image memory: the cursor is never freed.
                    core::mem::forget(pointer.cursor.take());
                }
            }
        }
        pointer.hw = Some(hw);
        // A commit while powered down may have turned the pointer's source.
        self.follow_rotation(&mut pointer);
        Ok(())
    }
}
