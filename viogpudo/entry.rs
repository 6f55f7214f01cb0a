//! The driver's entry: the KMDOD DDI table and, on Windows, `DriverEntry`.
//!
//! [`initialization_data`] is host-independent so the simulator registers the driver
//! exactly as dxgkrnl does: it fills `KMDDOD_INITIALIZATION_DATA` at the WIN8 interface
//! version with every DDI slot of that version pointing at a thunk in [`crate::thunks`].
//! `DriverEntry` hands the table to `DxgkInitializeDisplayOnlyDriver` (from displib).

use crate::ddi::*;
use crate::thunks::*;

/// The DDI table of this driver.
pub fn initialization_data() -> KMDDOD_INITIALIZATION_DATA {
    KMDDOD_INITIALIZATION_DATA {
        Version: DXGKDDI_INTERFACE_VERSION_WIN8,
        DxgkDdiAddDevice: Some(ddi_add_device),
        DxgkDdiStartDevice: Some(ddi_start_device),
        DxgkDdiStopDevice: Some(ddi_stop_device),
        DxgkDdiRemoveDevice: Some(ddi_remove_device),
        DxgkDdiDispatchIoRequest: Some(ddi_dispatch_io_request),
        DxgkDdiInterruptRoutine: Some(ddi_interrupt_routine),
        DxgkDdiDpcRoutine: Some(ddi_dpc_routine),
        DxgkDdiQueryChildRelations: Some(ddi_query_child_relations),
        DxgkDdiQueryChildStatus: Some(ddi_query_child_status),
        DxgkDdiQueryDeviceDescriptor: Some(ddi_query_device_descriptor),
        DxgkDdiSetPowerState: Some(ddi_set_power_state),
        DxgkDdiNotifyAcpiEvent: Some(ddi_notify_acpi_event),
        DxgkDdiResetDevice: Some(ddi_reset_device),
        DxgkDdiUnload: Some(ddi_unload),
        DxgkDdiQueryInterface: Some(ddi_query_interface),
        DxgkDdiControlEtwLogging: Some(ddi_control_etw_logging),
        DxgkDdiQueryAdapterInfo: Some(ddi_query_adapter_info),
        DxgkDdiSetPalette: Some(ddi_set_palette),
        DxgkDdiSetPointerPosition: Some(ddi_set_pointer_position),
        DxgkDdiSetPointerShape: Some(ddi_set_pointer_shape),
        DxgkDdiEscape: Some(ddi_escape),
        DxgkDdiCollectDbgInfo: Some(ddi_collect_dbg_info),
        DxgkDdiIsSupportedVidPn: Some(ddi_is_supported_vidpn),
        DxgkDdiRecommendFunctionalVidPn: Some(ddi_recommend_functional_vidpn),
        DxgkDdiEnumVidPnCofuncModality: Some(ddi_enum_vidpn_cofunc_modality),
        DxgkDdiSetVidPnSourceVisibility: Some(ddi_set_vidpn_source_visibility),
        DxgkDdiCommitVidPn: Some(ddi_commit_vidpn),
        DxgkDdiUpdateActiveVidPnPresentPath: Some(ddi_update_active_vidpn_present_path),
        DxgkDdiRecommendMonitorModes: Some(ddi_recommend_monitor_modes),
        // No VSync control: dxgkrnl simulates VSync and the scan line from the mode (as for
        // the KMDOD sample); providing these two would oblige the driver to report a VSync
        // interrupt at the refresh rate, or the VSync watchdog resets the adapter.
        DxgkDdiGetScanLine: None,
        DxgkDdiQueryVidPnHWCapability: Some(ddi_query_vidpn_hw_capability),
        DxgkDdiPresentDisplayOnly: Some(ddi_present_display_only),
        DxgkDdiStopDeviceAndReleasePostDisplayOwnership: Some(
            ddi_stop_device_and_release_post_display_ownership,
        ),
        DxgkDdiSystemDisplayEnable: Some(ddi_system_display_enable),
        DxgkDdiSystemDisplayWrite: Some(ddi_system_display_write),
        DxgkDdiGetChildContainerId: Some(ddi_get_child_container_id),
        DxgkDdiControlInterrupt: None,
        DxgkDdiSetPowerComponentFState: Some(ddi_set_power_component_fstate),
        DxgkDdiPowerRuntimeControlRequest: Some(ddi_power_runtime_control_request),
        DxgkDdiNotifySurpriseRemoval: Some(ddi_notify_surprise_removal),
    }
}

#[cfg(windows)]
mod windows_entry {
    use core::ffi::c_void;

    use super::initialization_data;
    use crate::ddi::*;

    extern "system" {
        /// From displib: registers a display-only miniport with dxgkrnl.
        fn DxgkInitializeDisplayOnlyDriver(
            driver_object: *mut c_void,
            registry_path: *mut UNICODE_STRING,
            data: *mut KMDDOD_INITIALIZATION_DATA,
        ) -> NTSTATUS;
    }

    /// The driver's entry point.
    ///
    /// # Safety
    /// Called once by the I/O manager with a valid driver object and registry path.
    #[export_name = "DriverEntry"]
    pub unsafe extern "system" fn driver_entry(
        driver_object: *mut c_void,
        registry_path: *mut UNICODE_STRING,
    ) -> NTSTATUS {
        if driver_object.is_null() || registry_path.is_null() {
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: DriverEntry runs once at PASSIVE_LEVEL before any adapter exists, and
        // `registry_path` is the I/O manager's valid UNICODE_STRING (same layout as wdk-sys's).
        unsafe { crate::os::nt::init(registry_path.cast()) };
        let mut data = initialization_data();
        // SAFETY: the I/O manager's arguments are passed through unchanged; `data` lives
        // across the call (dxgkrnl copies the table).
        unsafe { DxgkInitializeDisplayOnlyDriver(driver_object, registry_path, &mut data) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_win8() {
        assert_eq!(initialization_data().Version, 0x300E);
    }

    #[test]
    fn every_slot_but_the_vsync_pair_is_filled() {
        let data = initialization_data();
        let size = core::mem::size_of::<KMDDOD_INITIALIZATION_DATA>();
        assert_eq!(size, 328);
        // After the 4-byte Version (padded to 8), every 8-byte word is a function pointer.
        // SAFETY: offset 8 is inside the 328-byte struct.
        let first = unsafe {
            (&data as *const KMDDOD_INITIALIZATION_DATA)
                .cast::<u8>()
                .add(8)
                .cast::<usize>()
        };
        // SAFETY: KMDDOD_INITIALIZATION_DATA is repr(C): u32 + padding, then Option<fn>
        // fields, each 8 bytes with `None` = 0; reading the words after offset 8 reads
        // initialised pointer fields.
        let words: &[usize] = unsafe { core::slice::from_raw_parts(first, (size - 8) / 8) };
        assert_eq!(words.len(), 40);
        let empty: usize = words.iter().filter(|&&w| w == 0).count();
        // GetScanLine and ControlInterrupt stay NULL: no VSync control (see above).
        assert_eq!(empty, 2);
        assert!(data.DxgkDdiGetScanLine.is_none() && data.DxgkDdiControlInterrupt.is_none());
    }
}
