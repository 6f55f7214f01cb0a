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
//!
//! **A device that breaks the virtqueue protocol** (a used entry naming no request in flight,
//! a length beyond its buffer, a used index that runs ahead of the requests in flight, which
//! wedges the queue for good) goes through the same two halves, back to back, the next time a
//! DDI that uses the device takes the state lock ([`Adapter::recover_if_ring_broken`]):
//! device reset, every request buffer taken back only once the reset is confirmed, the core's
//! restart over the kept rings, framebuffers and cursor recreated. Unlike a return from D3 the
//! framebuffers keep their contents and the sources their visibility, so the picture comes
//! back as it was. Each recovery is traced and counted ([`Adapter::ring_recoveries`]).

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

/// What power-up shows on the kept framebuffers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Picture {
    /// Black, sources invisible (the return to D0).
    Blank,
    /// What they held (the recovery of a device that broke the ring protocol).
    Keep,
}

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
            (Device::On(_), false) => self.power_down(state, true),
            (Device::Off { .. }, true) => {
                if let Err(status) = self.power_up(state, Picture::Blank) {
                    crate::trace!("power-up failed ({status:#x}): the adapter stays dark");
                }
            }
            // Not started (StartDevice powers up), handed off, or already there.
            _ => {}
        }
        Ok(())
    }

    /// A device that broke the virtqueue protocol since the last reset (see the module docs)
    /// is reset and brought back with its picture; returns true if that happened and worked.
    /// If the reset is not confirmed or the device does not come back, the adapter stays
    /// powered down (dark, as after a failed return to D0) until the OS's next power cycle.
    pub(super) fn recover_if_ring_broken(&self, state: &mut State) -> bool {
        let Some(fault) = state.device.powered().and_then(|hw| hw.gpu.ring_fault()) else {
            return false;
        };
        let n = self
            .ring_recoveries
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        crate::trace!(
            "device broke the virtqueue protocol ({fault}): reset and re-initialised \
             (recovery {n})"
        );
        // No scanout-off commands: a wedged queue refuses them anyway, and the reset turns
        // every scanout off.
        self.power_down(state, false);
        match self.power_up(state, Picture::Keep) {
            Ok(()) => true,
            Err(status) => {
                crate::trace!("recovery failed ({status:#x}): the adapter stays dark");
                false
            }
        }
    }

    /// How many times a device that broke the virtqueue protocol was reset and brought back.
    pub fn ring_recoveries(&self) -> u32 {
        self.ring_recoveries.load(Ordering::Relaxed)
    }

    /// Scanouts off (when `scanouts_off`), device reset, host ids released; guest memory
    /// kept. The pointer stops first, so no cursor command races the reset.
    fn power_down(&self, state: &mut State, scanouts_off: bool) {
        let Device::On(hw) = core::mem::replace(&mut state.device, Device::Stopped) else {
            return;
        };
        self.screens.hide_all();
        let mut pointer = self.pointer.lock();
        pointer.hw = None;
        let zero = Rect::new(0, 0, 0, 0);
        for head in state.heads.iter().filter(|_| scanouts_off) {
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
        pointer.retired_cursor = None;
    }

    /// The core's restart over the kept rings, then framebuffers (in the committed modes)
    /// and cursor back. On error the adapter stays powered down.
    fn power_up(&self, state: &mut State, picture: Picture) -> DdiResult<()> {
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
        match start::read_displays(state) {
            Ok(()) => self.update_connected_mask(state),
            Err(status) => {
                // The connections stay as last indicated to the OS, not as the stale display
                // info says (see `refresh_displays_if_stale`).
                crate::trace!("power-up: display info failed: {status:#x}");
                self.display_stale.store(true, Ordering::Release);
            }
        }
        let State { heads, ids, .. } = state;
        for head in heads.iter_mut() {
            let index = head.scanout.index();
            // A commit while powered down is only remembered: show what was committed.
            let committed = head
                .source_mode
                .map(|(w, h)| head.rotation.framebuffer_size(w, h));
            // Back from D3 every source is invisible until the OS says otherwise, showing
            // black (the KMDOD sample does the same): the kept framebuffer is cleared before
            // its resource is made again, so the one transfer sends black. A recovery keeps
            // the picture and the visibility as they were.
            if picture == Picture::Blank {
                head.visible = false;
                head.full_present = false;
                if let Some(fb) = head.scanout.current_mut() {
                    fb.backing_mut().fill(BLACK);
                }
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
                    // The host may still use the image memory: kept until a confirmed reset.
                    let stuck = pointer.cursor.take();
                    pointer.retire_cursor(stuck);
                }
            }
        }
        pointer.hw = Some(hw);
        // A commit while powered down may have turned the pointer's source.
        self.follow_rotation(&mut pointer);
        Ok(())
    }
}
