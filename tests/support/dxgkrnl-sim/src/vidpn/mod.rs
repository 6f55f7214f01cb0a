//! Placeholder for the simulator's VidPN object model (owned by the "vidpn" helper, who
//! replaces this module): until then both interface queries answer `STATUS_NOT_IMPLEMENTED`.

use viogpudo::ddi::{
    D3DKMDT_HVIDPN, DXGK_MONITOR_INTERFACE, DXGK_MONITOR_INTERFACE_VERSION, DXGK_VIDPN_INTERFACE,
    DXGK_VIDPN_INTERFACE_VERSION, HANDLE, NTSTATUS, STATUS_NOT_IMPLEMENTED,
};

/// `DxgkCbQueryVidPnInterface`.
///
/// # Safety
/// Called by the driver with the DDI's arguments.
pub unsafe extern "system" fn query_vidpn_interface(
    _vidpn: D3DKMDT_HVIDPN,
    _version: DXGK_VIDPN_INTERFACE_VERSION,
    _interface: *mut *const DXGK_VIDPN_INTERFACE,
) -> NTSTATUS {
    STATUS_NOT_IMPLEMENTED
}

/// `DxgkCbQueryMonitorInterface`.
///
/// # Safety
/// Called by the driver with the DDI's arguments.
pub unsafe extern "system" fn query_monitor_interface(
    _device: HANDLE,
    _version: DXGK_MONITOR_INTERFACE_VERSION,
    _interface: *mut *const DXGK_MONITOR_INTERFACE,
) -> NTSTATUS {
    STATUS_NOT_IMPLEMENTED
}
