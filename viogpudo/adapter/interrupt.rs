//! The interrupt path: DxgkDdiInterruptRoutine and DxgkDdiDpcRoutine.
//!
//! Neither takes the adapter's state lock (module docs of `adapter`). The ISR only reads the
//! ISR status byte (read-to-clear) and queues the DPC. With a line interrupt a zero byte means
//! the interrupt belongs to another device on the shared line, so the ISR returns FALSE; with
//! MSI-X the byte reads 0 and the message alone identifies us, so the ISR always claims it.
//!
//! After a surprise removal the ISR claims nothing and the DPC does nothing; an ISR byte
//! that reads all-ones is what a PCI read of an absent device returns, so it is not ours
//! either (and not worth a DPC that would touch the device).
//!
//! The DPC reclaims and completes what both queues returned (which wakes waiters), then
//! looks for a display-change event in the device configuration: it clears the event, marks
//! display info stale (re-read at PASSIVE_LEVEL by the next child-status, descriptor or
//! monitor-mode query) and posts a GET_DISPLAY_INFO without waiting for it (a DPC must not
//! wait). The DPC that finds its answer indicates each child's real connection: a scanout
//! the device reports disabled is disconnected (unless it is child 0 or has a custom size),
//! an enabled one connected, and a child that was connected is first indicated unplugged so
//! the OS re-reads its EDID. If the request cannot even be posted, every child is indicated
//! connected so that the OS asks (QueryChildStatus answers from a fresh read).

use core::sync::atomic::Ordering;

use viogpu_common::gpu::CONTROL_QUEUE;
use viogpu_common::protocol::RespDisplayInfo;
use viogpu_common::transport::{GpuEvents, IsrStatus};

use super::{dxgk, Adapter};

impl Adapter {
    /// DxgkDdiInterruptRoutine: true when the interrupt was ours.
    pub fn interrupt(&self, _message_number: u32) -> bool {
        if self.is_removed() {
            return false;
        }
        // The status is read (and so cleared) exactly once, through the register window that
        // is published from the BAR mapping until after the teardown reset: a wider span than
        // the started hardware's, so that a level-triggered line raised while the device is
        // ours but not (or no longer) started is still dismissed.
        let Some(Some(isr)) = self.isr_window.with(isr_status) else {
            // No device of ours, or one that reads all-ones (gone).
            return false;
        };
        if isr.contains(IsrStatus::CONFIG) {
            // Checked by the next DPC (or, before the start, by its own display read).
            self.config_changed.store(true, Ordering::Release);
        }
        self.with_published_hw(|hw| {
            if !hw.msix && isr.is_empty() {
                return false;
            }
            dxgk::queue_dpc(&hw.dxgk);
            true
        })
        // Not started: no DPC to run, but a non-zero status was this device's interrupt.
        .unwrap_or(!isr.is_empty())
    }

    /// DxgkDdiDpcRoutine.
    pub fn dpc(&self) {
        if self.is_removed() {
            return;
        }
        let changed = self.with_published_hw(|hw| {
            hw.gpu.process_completions();
            dxgk::notify_dpc(&hw.dxgk);
            let check = hw.msix || self.config_changed.swap(false, Ordering::AcqRel);
            if !check {
                return None;
            }
            // The transport lock is only held at PASSIVE_LEVEL during start and power
            // transitions, which re-read display info themselves; skip the check then.
            let transport = hw.transport.try_lock()?;
            let events = transport.events_read().ok()?;
            if !events.contains(GpuEvents::DISPLAY) {
                return None;
            }
            let _ = transport.events_clear(events);
            Some(hw.dxgk)
        });
        if let Some(Some(dxgk_if)) = changed {
            self.display_stale.store(true, Ordering::Release);
            let posted = self.with_published_hw(|hw| {
                let ticket = hw.gpu.post_get_display_info().ok()?;
                if let Some(old) = hw.display_probe.lock().replace(ticket) {
                    hw.gpu.abandon(CONTROL_QUEUE, old);
                }
                Some(())
            });
            if posted.flatten().is_none() {
                for child in 0..self.num_sources() {
                    dxgk::indicate_connection(&dxgk_if, child, true);
                }
            }
        }
        self.indicate_probed_displays();
    }

    /// Takes the answer of the GET_DISPLAY_INFO a display change posted, if it came, and
    /// indicates every child's connection from it (module docs).
    fn indicate_probed_displays(&self) {
        let answer = self.with_published_hw(|hw| {
            let mut probe = hw.display_probe.try_lock()?;
            let ticket = (*probe)?;
            let answer = hw
                .gpu
                .take_answer::<RespDisplayInfo>(CONTROL_QUEUE, ticket)?;
            *probe = None;
            Some((hw.dxgk, answer))
        });
        let Some(Some((dxgk_if, answer))) = answer else {
            return;
        };
        let was = self.connected_mask.load(Ordering::Acquire);
        let forced = self.forced_mask.load(Ordering::Acquire);
        let mut indicated = 0u32;
        for child in 0..self.num_sources().min(u32::BITS) {
            let bit = 1u32 << child;
            let connected = match &answer {
                Ok(info) => forced & bit != 0 || info.preferred_size(child).is_some(),
                // No answer (device reset, error): let the OS ask at PASSIVE_LEVEL.
                Err(_) => true,
            };
            if was & bit != 0 {
                dxgk::indicate_connection(&dxgk_if, child, false);
            }
            if connected {
                dxgk::indicate_connection(&dxgk_if, child, true);
                indicated |= bit;
            }
        }
        // What the OS now believes, when the device answered: a commit's connectivity check
        // must agree with it even if the re-read of the displays at PASSIVE_LEVEL fails.
        // Without an answer the "connected" indications only make the OS ask; the
        // connections stay as they were until a read succeeds.
        if answer.is_ok() {
            self.connected_mask.store(indicated, Ordering::Release);
        }
    }
}

/// Reads (and clears) the ISR status byte at `window`; `None` when it reads all-ones (the
/// device is gone: only bits 0 and 1 are defined).
fn isr_status(window: &super::Window) -> Option<IsrStatus> {
    use viogpu_common::hal::RegisterAccess;
    let raw = window.read_u8(0);
    (raw != u8::MAX).then(|| IsrStatus::from_bits_truncate(raw))
}
