//! Device power: DxgkDdiSetPowerState, DxgkDdiResetDevice and the adapter side of Unload.
//!
//! Going to a low-power state (D1..D3) turns the scanouts off, resets the device (it forgets
//! every host resource and stops all DMA) and takes back every request buffer, but keeps the
//! framebuffer memory, the committed modes and the cursor image. Coming back to D0 runs the
//! transport handshake again over the same rings, then recreates each framebuffer's host
//! resource over its kept memory and points the scanout at it, so the picture is back before
//! the OS presents again; display info is re-read because monitors may have changed.
//! Power requests for a child (a monitor) need nothing from a virtual device.

use core::sync::atomic::Ordering;

use viogpu_common::gpu::{WaitMode, CONTROL_QUEUE, CURSOR_QUEUE};
use viogpu_common::protocol::{CursorPos, Rect};

use super::{start, Adapter, DdiResult, IntoDdi, State, DISPLAY_ADAPTER_HW_ID};
use crate::ddi::*;
use viogpu_common::cursor::CURSOR_SIZE;

impl Adapter {
    /// DxgkDdiSetPowerState.
    pub fn set_power_state(&self, uid: u32, power: DEVICE_POWER_STATE) -> DdiResult<()> {
        if uid != DISPLAY_ADAPTER_HW_ID {
            return Ok(());
        }
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if state.hw.is_none() {
            // Not started: just remember.
            state.power = power;
            return Ok(());
        }
        let on = power == PowerDeviceD0;
        let was_on = state.power == PowerDeviceD0;
        let result = match (was_on, on) {
            (true, false) => {
                self.ready.store(false, Ordering::Release);
                self.power_down(state);
                Ok(())
            }
            (false, true) => {
                let r = self.power_up(state);
                if r.is_ok() {
                    self.ready.store(true, Ordering::Release);
                }
                r
            }
            _ => Ok(()),
        };
        state.power = power;
        result
    }

    /// Scanouts off, device reset, host ids released; guest memory kept.
    fn power_down(&self, state: &mut State) {
        let State {
            hw,
            heads,
            ids,
            cursor,
            ..
        } = state;
        let Some(hw) = hw.as_deref() else {
            return;
        };
        let zero = Rect::new(0, 0, 0, 0);
        for head in heads.iter() {
            if head.scanout.mode().is_some() {
                let _ = hw
                    .gpu
                    .set_scanout(head.scanout.index(), 0, zero, WaitMode::Wait);
            }
        }
        let _ = hw.transport.lock().reset();
        hw.gpu.reset_queues();
        for head in heads.iter_mut() {
            head.scanout.suspend_after_reset(ids);
        }
        if let Some(c) = cursor.as_mut() {
            if c.resource_id != 0 {
                let _ = ids.free(c.resource_id);
                c.resource_id = 0;
            }
        }
    }

    /// Transport handshake over the kept rings, then framebuffers and cursor back.
    fn power_up(&self, state: &mut State) -> DdiResult<()> {
        {
            let hw = state.hw.as_deref().ok_or(STATUS_DEVICE_NOT_READY)?;
            let mut transport = hw.transport.lock();
            let features = transport.init(hw.features).ddi()?;
            if features != hw.features {
                // The same device must offer the same features; anything else is a fault.
                transport.fail();
                return Err(STATUS_DEVICE_HARDWARE_ERROR);
            }
            for q in [CONTROL_QUEUE, CURSOR_QUEUE] {
                hw.gpu.with_queue(q, |cq| {
                    start::setup_queue(&mut transport, None, q, cq.queue(), hw.msix)
                })?;
            }
            if hw.msix {
                let _ = transport.set_config_msix_vector(0);
            }
            transport.driver_ok().ddi()?;
        }
        if let Err(status) = start::read_displays(state) {
            crate::trace!("power-up: display info failed: {status:#x}");
        }
        self.update_connected_mask(state);
        let State {
            hw,
            heads,
            ids,
            cursor,
            ..
        } = state;
        let hw = hw.as_deref().ok_or(STATUS_DEVICE_NOT_READY)?;
        for head in heads.iter_mut() {
            if let Err(e) = head.scanout.resume_after_reset(&hw.gpu, ids) {
                crate::trace!(
                    "power-up: scanout {} not restored: {e}",
                    head.scanout.index()
                );
            }
        }
        if let Some(c) = cursor.as_mut() {
            match start::create_cursor_resource(hw, ids, c) {
                Ok(()) if c.has_shape => {
                    let full = Rect::new(0, 0, CURSOR_SIZE, CURSOR_SIZE);
                    let _ = hw
                        .gpu
                        .transfer_to_host_2d(c.resource_id, full, 0, WaitMode::Wait);
                    if c.visible {
                        let (scanout_id, x, y) = c.pos;
                        let pos = CursorPos {
                            scanout_id,
                            x,
                            y,
                            padding: 0,
                        };
                        let _ = hw.gpu.update_cursor(
                            pos,
                            c.resource_id,
                            c.hot.0,
                            c.hot.1,
                            WaitMode::Wait,
                        );
                    }
                }
                Ok(()) => {}
                Err(status) => crate::trace!("power-up: cursor not restored: {status:#x}"),
            }
        }
        Ok(())
    }
}
