//! `KMDDOD_INITIALIZATION_DATA`, the DDI table a display-only driver hands to
//! `DxgkInitializeDisplayOnlyDriver` from `DriverEntry`, and the function-pointer type of every
//! entry (WIN8 set: 328 bytes, up to `DxgkDdiNotifySurpriseRemoval`).
//!
//! The first parameter of each device DDI is the driver's own adapter context (the pointer
//! `DxgkDdiAddDevice` returned), passed back by the OS as `*mut c_void` / `HANDLE`.

use core::ffi::c_void;

use super::args::*;
use super::constants::*;
use super::dxgkrnl::*;
use super::types::*;

ddi_fns! {
    const INIT_SIGNATURES;
    /// `DxgkDdiAddDevice`: C parameters `(IN_CONST_PDEVICE_OBJECT, OUT_PPVOID)` returning `NTSTATUS`.
    PDXGKDDI_ADD_DEVICE = fn(*mut DEVICE_OBJECT, *mut *mut c_void) -> NTSTATUS;
    /// `DxgkDdiStartDevice`: C parameters `(IN_CONST_PVOID, IN_PDXGK_START_INFO, IN_PDXGKRNL_INTERFACE, OUT_PULONG, OUT_PULONG)` returning `NTSTATUS`.
    PDXGKDDI_START_DEVICE = fn(*mut c_void, *mut DXGK_START_INFO, *mut DXGKRNL_INTERFACE, *mut u32, *mut u32) -> NTSTATUS;
    /// `DxgkDdiStopDevice`: C parameters `(IN_CONST_PVOID)` returning `NTSTATUS`.
    PDXGKDDI_STOP_DEVICE = fn(*mut c_void) -> NTSTATUS;
    /// `DxgkDdiRemoveDevice`: C parameters `(IN_CONST_PVOID)` returning `NTSTATUS`.
    PDXGKDDI_REMOVE_DEVICE = fn(*mut c_void) -> NTSTATUS;
    /// `DxgkDdiDispatchIoRequest`: C parameters `(IN_CONST_PVOID, IN_ULONG, IN_PVIDEO_REQUEST_PACKET)` returning `NTSTATUS`.
    PDXGKDDI_DISPATCH_IO_REQUEST = fn(*mut c_void, u32, *mut VIDEO_REQUEST_PACKET) -> NTSTATUS;
    /// `DxgkDdiInterruptRoutine`: C parameters `(IN_CONST_PVOID, IN_ULONG)` returning `BOOLEAN`.
    PDXGKDDI_INTERRUPT_ROUTINE = fn(*mut c_void, u32) -> BOOLEAN;
    /// `DxgkDdiDpcRoutine`: C parameters `(IN_CONST_PVOID)` returning `void`.
    PDXGKDDI_DPC_ROUTINE = fn(*mut c_void);
    /// `DxgkDdiQueryChildRelations`: C parameters `(IN_CONST_PVOID, PDXGK_CHILD_DESCRIPTOR, ULONG)` returning `NTSTATUS`.
    PDXGKDDI_QUERY_CHILD_RELATIONS = fn(*mut c_void, *mut DXGK_CHILD_DESCRIPTOR, u32) -> NTSTATUS;
    /// `DxgkDdiQueryChildStatus`: C parameters `(IN_CONST_PVOID, INOUT_PDXGK_CHILD_STATUS, IN_BOOLEAN)` returning `NTSTATUS`.
    PDXGKDDI_QUERY_CHILD_STATUS = fn(*mut c_void, *mut DXGK_CHILD_STATUS, BOOLEAN) -> NTSTATUS;
    /// `DxgkDdiQueryDeviceDescriptor`: C parameters `(IN_CONST_PVOID, IN_ULONG, INOUT_PDXGK_DEVICE_DESCRIPTOR)` returning `NTSTATUS`.
    PDXGKDDI_QUERY_DEVICE_DESCRIPTOR = fn(*mut c_void, u32, *mut DXGK_DEVICE_DESCRIPTOR) -> NTSTATUS;
    /// `DxgkDdiSetPowerState`: C parameters `(IN_CONST_PVOID, IN_ULONG, IN_DEVICE_POWER_STATE, IN_POWER_ACTION)` returning `NTSTATUS`.
    PDXGKDDI_SET_POWER_STATE = fn(*mut c_void, u32, DEVICE_POWER_STATE, POWER_ACTION) -> NTSTATUS;
    /// `DxgkDdiNotifyAcpiEvent`: C parameters `(IN_CONST_PVOID, IN_DXGK_EVENT_TYPE, IN_ULONG, IN_PVOID, OUT_PULONG)` returning `NTSTATUS`.
    PDXGKDDI_NOTIFY_ACPI_EVENT = fn(*mut c_void, DXGK_EVENT_TYPE, u32, *mut c_void, *mut u32) -> NTSTATUS;
    /// `DxgkDdiResetDevice`: C parameters `(IN_CONST_PVOID)` returning `void`.
    PDXGKDDI_RESET_DEVICE = fn(*mut c_void);
    /// `DxgkDdiUnload`: C parameters `()` returning `void`.
    PDXGKDDI_UNLOAD = fn();
    /// `DxgkDdiQueryInterface`: C parameters `(IN_CONST_PVOID, IN_PQUERY_INTERFACE)` returning `NTSTATUS`.
    PDXGKDDI_QUERY_INTERFACE = fn(*mut c_void, *mut QUERY_INTERFACE) -> NTSTATUS;
    /// `DxgkDdiControlEtwLogging`: C parameters `(IN_BOOLEAN, IN_ULONG, IN_UCHAR)` returning `void`.
    PDXGKDDI_CONTROL_ETW_LOGGING = fn(BOOLEAN, u32, u8);
    /// `DxgkDdiQueryAdapterInfo`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_QUERYADAPTERINFO)` returning `NTSTATUS`.
    PDXGKDDI_QUERYADAPTERINFO = fn(HANDLE, *const DXGKARG_QUERYADAPTERINFO) -> NTSTATUS;
    /// `DxgkDdiSetPalette`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_SETPALETTE)` returning `NTSTATUS`.
    PDXGKDDI_SETPALETTE = fn(HANDLE, *const DXGKARG_SETPALETTE) -> NTSTATUS;
    /// `DxgkDdiSetPointerPosition`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_SETPOINTERPOSITION)` returning `NTSTATUS`.
    PDXGKDDI_SETPOINTERPOSITION = fn(HANDLE, *const DXGKARG_SETPOINTERPOSITION) -> NTSTATUS;
    /// `DxgkDdiSetPointerShape`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_SETPOINTERSHAPE)` returning `NTSTATUS`.
    PDXGKDDI_SETPOINTERSHAPE = fn(HANDLE, *const DXGKARG_SETPOINTERSHAPE) -> NTSTATUS;
    /// `DxgkDdiEscape`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_ESCAPE)` returning `NTSTATUS`.
    PDXGKDDI_ESCAPE = fn(HANDLE, *const DXGKARG_ESCAPE) -> NTSTATUS;
    /// `DxgkDdiCollectDbgInfo`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_COLLECTDBGINFO)` returning `NTSTATUS`.
    PDXGKDDI_COLLECTDBGINFO = fn(HANDLE, *const DXGKARG_COLLECTDBGINFO) -> NTSTATUS;
    /// `DxgkDdiIsSupportedVidPn`: C parameters `(IN_CONST_HANDLE, INOUT_PDXGKARG_ISSUPPORTEDVIDPN)` returning `NTSTATUS`.
    PDXGKDDI_ISSUPPORTEDVIDPN = fn(HANDLE, *mut DXGKARG_ISSUPPORTEDVIDPN) -> NTSTATUS;
    /// `DxgkDdiRecommendFunctionalVidPn`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_RECOMMENDFUNCTIONALVIDPN_CONST)` returning `NTSTATUS`.
    PDXGKDDI_RECOMMENDFUNCTIONALVIDPN = fn(HANDLE, *const DXGKARG_RECOMMENDFUNCTIONALVIDPN) -> NTSTATUS;
    /// `DxgkDdiEnumVidPnCofuncModality`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_ENUMVIDPNCOFUNCMODALITY_CONST)` returning `NTSTATUS`.
    PDXGKDDI_ENUMVIDPNCOFUNCMODALITY = fn(HANDLE, *const DXGKARG_ENUMVIDPNCOFUNCMODALITY) -> NTSTATUS;
    /// `DxgkDdiSetVidPnSourceVisibility`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_SETVIDPNSOURCEVISIBILITY)` returning `NTSTATUS`.
    PDXGKDDI_SETVIDPNSOURCEVISIBILITY = fn(HANDLE, *const DXGKARG_SETVIDPNSOURCEVISIBILITY) -> NTSTATUS;
    /// `DxgkDdiCommitVidPn`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_COMMITVIDPN_CONST)` returning `NTSTATUS`.
    PDXGKDDI_COMMITVIDPN = fn(HANDLE, *const DXGKARG_COMMITVIDPN) -> NTSTATUS;
    /// `DxgkDdiUpdateActiveVidPnPresentPath`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_UPDATEACTIVEVIDPNPRESENTPATH_CONST)` returning `NTSTATUS`.
    PDXGKDDI_UPDATEACTIVEVIDPNPRESENTPATH = fn(HANDLE, *const DXGKARG_UPDATEACTIVEVIDPNPRESENTPATH) -> NTSTATUS;
    /// `DxgkDdiRecommendMonitorModes`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_RECOMMENDMONITORMODES_CONST)` returning `NTSTATUS`.
    PDXGKDDI_RECOMMENDMONITORMODES = fn(HANDLE, *const DXGKARG_RECOMMENDMONITORMODES) -> NTSTATUS;
    /// `DxgkDdiGetScanLine`: C parameters `(IN_CONST_HANDLE, INOUT_PDXGKARG_GETSCANLINE)` returning `NTSTATUS`.
    PDXGKDDI_GETSCANLINE = fn(HANDLE, *mut DXGKARG_GETSCANLINE) -> NTSTATUS;
    /// `DxgkDdiQueryVidPnHWCapability`: C parameters `(IN_CONST_HANDLE, INOUT_PDXGKARG_QUERYVIDPNHWCAPABILITY)` returning `NTSTATUS`.
    PDXGKDDI_QUERYVIDPNHWCAPABILITY = fn(HANDLE, *mut DXGKARG_QUERYVIDPNHWCAPABILITY) -> NTSTATUS;
    /// `DxgkDdiPresentDisplayOnly`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARG_PRESENT_DISPLAYONLY)` returning `NTSTATUS`.
    PDXGKDDI_PRESENTDISPLAYONLY = fn(HANDLE, *const DXGKARG_PRESENT_DISPLAYONLY) -> NTSTATUS;
    /// `DxgkDdiStopDeviceAndReleasePostDisplayOwnership`: C parameters `(PVOID, D3DDDI_VIDEO_PRESENT_TARGET_ID, PDXGK_DISPLAY_INFORMATION)` returning `NTSTATUS`.
    PDXGKDDI_STOP_DEVICE_AND_RELEASE_POST_DISPLAY_OWNERSHIP = fn(*mut c_void, D3DDDI_VIDEO_PRESENT_TARGET_ID, *mut DXGK_DISPLAY_INFORMATION) -> NTSTATUS;
    /// `DxgkDdiSystemDisplayEnable`: C parameters `(PVOID, D3DDDI_VIDEO_PRESENT_TARGET_ID, PDXGKARG_SYSTEM_DISPLAY_ENABLE_FLAGS, UINT *, UINT *, D3DDDIFORMAT *)` returning `NTSTATUS`.
    PDXGKDDI_SYSTEM_DISPLAY_ENABLE = fn(*mut c_void, D3DDDI_VIDEO_PRESENT_TARGET_ID, *mut DXGKARG_SYSTEM_DISPLAY_ENABLE_FLAGS, *mut u32, *mut u32, *mut D3DDDIFORMAT) -> NTSTATUS;
    /// `DxgkDdiSystemDisplayWrite`: C parameters `(PVOID, PVOID, UINT, UINT, UINT, UINT, UINT)` returning `void`.
    PDXGKDDI_SYSTEM_DISPLAY_WRITE = fn(*mut c_void, *mut c_void, u32, u32, u32, u32, u32);
    /// `DxgkDdiGetChildContainerId`: C parameters `(PVOID, ULONG, PDXGK_CHILD_CONTAINER_ID)` returning `NTSTATUS`.
    PDXGKDDI_GET_CHILD_CONTAINER_ID = fn(*mut c_void, u32, *mut DXGK_CHILD_CONTAINER_ID) -> NTSTATUS;
    /// `DxgkDdiControlInterrupt`: C parameters `(IN_CONST_HANDLE, IN_CONST_DXGK_INTERRUPT_TYPE, IN_BOOLEAN)` returning `NTSTATUS`.
    PDXGKDDI_CONTROLINTERRUPT = fn(HANDLE, DXGK_INTERRUPT_TYPE, BOOLEAN) -> NTSTATUS;
    /// `DxgkDdiSetPowerComponentFState`: C parameters `(IN_CONST_HANDLE, UINT, UINT)` returning `NTSTATUS`.
    PDXGKDDISETPOWERCOMPONENTFSTATE = fn(HANDLE, u32, u32) -> NTSTATUS;
    /// `DxgkDdiPowerRuntimeControlRequest`: C parameters `(IN_CONST_HANDLE, LPCGUID, PVOID, SIZE_T, PVOID, SIZE_T, PSIZE_T)` returning `NTSTATUS`.
    PDXGKDDIPOWERRUNTIMECONTROLREQUEST = fn(HANDLE, *const GUID, *mut c_void, usize, *mut c_void, usize, *mut usize) -> NTSTATUS;
    /// `DxgkDdiNotifySurpriseRemoval`: C parameters `(PVOID, DXGK_SURPRISE_REMOVAL_TYPE)` returning `NTSTATUS`.
    PDXGKDDI_NOTIFY_SURPRISE_REMOVAL = fn(*mut c_void, DXGK_SURPRISE_REMOVAL_TYPE) -> NTSTATUS;
}

ddi_types! {
    const INIT_TYPES;

    /// The DDI table of a display-only miniport. `Version` must be
    /// [`DXGKDDI_INTERFACE_VERSION_WIN8`]
    /// for this (328-byte) layout; entries the driver does not implement stay `None`.
    pub struct KMDDOD_INITIALIZATION_DATA {
        pub Version: u32,
        pub DxgkDdiAddDevice: PDXGKDDI_ADD_DEVICE,
        pub DxgkDdiStartDevice: PDXGKDDI_START_DEVICE,
        pub DxgkDdiStopDevice: PDXGKDDI_STOP_DEVICE,
        pub DxgkDdiRemoveDevice: PDXGKDDI_REMOVE_DEVICE,
        pub DxgkDdiDispatchIoRequest: PDXGKDDI_DISPATCH_IO_REQUEST,
        pub DxgkDdiInterruptRoutine: PDXGKDDI_INTERRUPT_ROUTINE,
        pub DxgkDdiDpcRoutine: PDXGKDDI_DPC_ROUTINE,
        pub DxgkDdiQueryChildRelations: PDXGKDDI_QUERY_CHILD_RELATIONS,
        pub DxgkDdiQueryChildStatus: PDXGKDDI_QUERY_CHILD_STATUS,
        pub DxgkDdiQueryDeviceDescriptor: PDXGKDDI_QUERY_DEVICE_DESCRIPTOR,
        pub DxgkDdiSetPowerState: PDXGKDDI_SET_POWER_STATE,
        pub DxgkDdiNotifyAcpiEvent: PDXGKDDI_NOTIFY_ACPI_EVENT,
        pub DxgkDdiResetDevice: PDXGKDDI_RESET_DEVICE,
        pub DxgkDdiUnload: PDXGKDDI_UNLOAD,
        pub DxgkDdiQueryInterface: PDXGKDDI_QUERY_INTERFACE,
        pub DxgkDdiControlEtwLogging: PDXGKDDI_CONTROL_ETW_LOGGING,
        pub DxgkDdiQueryAdapterInfo: PDXGKDDI_QUERYADAPTERINFO,
        pub DxgkDdiSetPalette: PDXGKDDI_SETPALETTE,
        pub DxgkDdiSetPointerPosition: PDXGKDDI_SETPOINTERPOSITION,
        pub DxgkDdiSetPointerShape: PDXGKDDI_SETPOINTERSHAPE,
        pub DxgkDdiEscape: PDXGKDDI_ESCAPE,
        pub DxgkDdiCollectDbgInfo: PDXGKDDI_COLLECTDBGINFO,
        pub DxgkDdiIsSupportedVidPn: PDXGKDDI_ISSUPPORTEDVIDPN,
        pub DxgkDdiRecommendFunctionalVidPn: PDXGKDDI_RECOMMENDFUNCTIONALVIDPN,
        pub DxgkDdiEnumVidPnCofuncModality: PDXGKDDI_ENUMVIDPNCOFUNCMODALITY,
        pub DxgkDdiSetVidPnSourceVisibility: PDXGKDDI_SETVIDPNSOURCEVISIBILITY,
        pub DxgkDdiCommitVidPn: PDXGKDDI_COMMITVIDPN,
        pub DxgkDdiUpdateActiveVidPnPresentPath: PDXGKDDI_UPDATEACTIVEVIDPNPRESENTPATH,
        pub DxgkDdiRecommendMonitorModes: PDXGKDDI_RECOMMENDMONITORMODES,
        pub DxgkDdiGetScanLine: PDXGKDDI_GETSCANLINE,
        pub DxgkDdiQueryVidPnHWCapability: PDXGKDDI_QUERYVIDPNHWCAPABILITY,
        pub DxgkDdiPresentDisplayOnly: PDXGKDDI_PRESENTDISPLAYONLY,
        pub DxgkDdiStopDeviceAndReleasePostDisplayOwnership: PDXGKDDI_STOP_DEVICE_AND_RELEASE_POST_DISPLAY_OWNERSHIP,
        pub DxgkDdiSystemDisplayEnable: PDXGKDDI_SYSTEM_DISPLAY_ENABLE,
        pub DxgkDdiSystemDisplayWrite: PDXGKDDI_SYSTEM_DISPLAY_WRITE,
        pub DxgkDdiGetChildContainerId: PDXGKDDI_GET_CHILD_CONTAINER_ID,
        pub DxgkDdiControlInterrupt: PDXGKDDI_CONTROLINTERRUPT,
        pub DxgkDdiSetPowerComponentFState: PDXGKDDISETPOWERCOMPONENTFSTATE,
        pub DxgkDdiPowerRuntimeControlRequest: PDXGKDDIPOWERRUNTIMECONTROLREQUEST,
        pub DxgkDdiNotifySurpriseRemoval: PDXGKDDI_NOTIFY_SURPRISE_REMOVAL,
    }
}
