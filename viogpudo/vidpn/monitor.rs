//! `DxgkDdiRecommendMonitorModes`: adds the sizes the adapter offers on a target to the
//! monitor's source mode set, so the OS can pick them even when the monitor's descriptor
//! (EDID) does not list them.

use super::cofunc::target_modes;
use super::iface::monitor_modes;
use super::modes::fill_monitor_mode;
use super::{status_of, VidPnHost};
use crate::ddi::*;

/// `DxgkDdiRecommendMonitorModes`: every size of the target's mode list that the set does not
/// already have (same active size), at 60 Hz. The list's first (preferred) size is marked
/// preferred unless the set already has a preferred mode.
///
/// # Safety
/// `args` is the argument of the current DDI call: its mode-set handle and interface pointer
/// are the OS's.
pub unsafe fn recommend_monitor_modes(
    host: &dyn VidPnHost,
    _dxgk: &DXGKRNL_INTERFACE,
    args: &DXGKARG_RECOMMENDMONITORMODES,
) -> NTSTATUS {
    let target = args.VideoPresentTargetId;
    status_of((|| {
        let modes = target_modes(host, target)?;
        // SAFETY: the caller's contract.
        let set = unsafe {
            monitor_modes(
                args.hMonitorSourceModeSet,
                args.pMonitorSourceModeSetInterface,
            )
        }?;
        let present = set.modes()?;
        let has_preferred = set.special()?.is_some();
        for (index, mode) in modes.iter().enumerate() {
            let size = (mode.width, mode.height);
            if present.iter().any(|m| {
                let active = m.VideoSignalInfo.ActiveSize;
                (active.cx, active.cy) == size
            }) {
                continue;
            }
            let preferred = index == 0 && !has_preferred;
            set.add(|m| fill_monitor_mode(m, size, preferred))?;
        }
        Ok(())
    })())
}
