//! The argument structures of the display-only (KMDOD) DDIs: adapter info and driver caps,
//! pointer shape/position, escape, the VidPN negotiation calls (is-supported, recommend,
//! cofunctional modality, commit, path update, monitor modes, hardware capability), present,
//! scan-line and palette, and the flag words they carry (as integer storage with accessors).

use core::ffi::c_void;

use super::constants::*;
use super::dxgkrnl::DXGKCB_PRESENT_DISPLAYONLY_PROGRESS;
use super::types::*;
use super::vidpn::*;
use super::vidpn_iface::DXGK_MONITORSOURCEMODESET_INTERFACE;

ddi_scalars! {
    const ARG_SCALARS;
    enum {
        /// The WDDM version a driver reports in `DXGK_DRIVERCAPS::WDDMVersion`.
        DXGK_WDDMVERSION,
    }
    opaque {
        /// Extension of `DXGKARG_COLLECTDBGINFO` (WDDM 2.x).
        DXGKARG_COLLECTDBGINFO_EXT,
        /// A palette entry table given to `DxgkDdiSetPalette`.
        D3DKMDT_PALETTEDATA,
    }
}

ddi_types! {
    const ARG_TYPES;

    /// Argument of `DxgkDdiQueryAdapterInfo` (WIN8 size: no `Flags`, no `hKmdProcessHandle`).
    pub struct DXGKARG_QUERYADAPTERINFO {
        pub Type: DXGK_QUERYADAPTERINFOTYPE,
        pub pInputData: *mut c_void,
        pub InputDataSize: u32,
        pub pOutputData: *mut c_void,
        pub OutputDataSize: u32,
    }

    /// Pointer kinds (`DXGK_DRIVERCAPS::PointerCaps`, `DXGKARG_SETPOINTERSHAPE::Flags`).
    pub struct DXGK_POINTERFLAGS {
        pub Value: u32,
    }
    bits {
        "Monochrome" => monochrome, set_monochrome: bool = 0x1 in Value,
        "Color" => color, set_color: bool = 0x2 in Value,
        "MaskedColor" => masked_color, set_masked_color: bool = 0x4 in Value,
    }

    /// Argument of `DxgkDdiSetPointerShape`.
    pub struct DXGKARG_SETPOINTERSHAPE {
        pub Flags: DXGK_POINTERFLAGS,
        pub Width: u32,
        /// For monochrome pointers: twice the shape height (AND mask, then XOR mask).
        pub Height: u32,
        pub Pitch: u32,
        pub VidPnSourceId: D3DDDI_VIDEO_PRESENT_SOURCE_ID,
        pub pPixels: *const c_void,
        pub XHot: u32,
        pub YHot: u32,
    }
    nested {
        "Flags.Value" => Flags.Value,
    }

    /// Flags of `DxgkDdiSetPointerPosition`.
    pub struct DXGK_SETPOINTERPOSITIONFLAGS {
        pub Value: u32,
    }
    bits {
        "Visible" => visible, set_visible: bool = 0x1 in Value,
        "Procedural" => procedural, set_procedural: bool = 0x2 in Value,
    }

    /// Argument of `DxgkDdiSetPointerPosition`.
    pub struct DXGKARG_SETPOINTERPOSITION {
        pub VidPnSourceId: D3DDDI_VIDEO_PRESENT_SOURCE_ID,
        pub X: i32,
        pub Y: i32,
        pub Flags: DXGK_SETPOINTERPOSITIONFLAGS,
    }
    nested {
        "Flags.Value" => Flags.Value,
    }

    /// Flags of `DxgkDdiEscape` (WIN8 bits).
    pub struct D3DDDI_ESCAPEFLAGS {
        pub Value: u32,
    }
    bits {
        "HardwareAccess" => hardware_access, set_hardware_access: bool = 0x1 in Value,
        "DeviceStatusQuery" => device_status_query, set_device_status_query: bool = 0x2 in Value,
        "ChangeFrameLatency" => change_frame_latency, set_change_frame_latency: bool = 0x4 in Value,
    }

    /// Argument of `DxgkDdiEscape` (WIN8 size: no `hKmdProcessHandle`).
    pub struct DXGKARG_ESCAPE {
        pub hDevice: HANDLE,
        pub Flags: D3DDDI_ESCAPEFLAGS,
        pub pPrivateDriverData: *mut c_void,
        pub PrivateDriverDataSize: u32,
        pub hContext: HANDLE,
    }

    /// Argument of `DxgkDdiCollectDbgInfo`.
    pub struct DXGKARG_COLLECTDBGINFO {
        pub Reason: u32,
        pub pBuffer: *mut c_void,
        pub BufferSize: usize,
        pub pExtension: *mut DXGKARG_COLLECTDBGINFO_EXT,
    }

    /// Argument of `DxgkDdiIsSupportedVidPn`.
    pub struct DXGKARG_ISSUPPORTEDVIDPN {
        pub hDesiredVidPn: D3DKMDT_HVIDPN,
        pub IsVidPnSupported: BOOLEAN,
    }

    /// Argument of `DxgkDdiRecommendFunctionalVidPn`.
    pub struct DXGKARG_RECOMMENDFUNCTIONALVIDPN {
        pub NumberOfVidPnTargets: u32,
        pub pVidPnTargetPrioritizationVector: *const D3DDDI_VIDEO_PRESENT_TARGET_ID,
        pub hRecommendedFunctionalVidPn: D3DKMDT_HVIDPN,
        pub RequestReason: DXGK_RECOMMENDFUNCTIONALVIDPN_REASON,
        pub pPrivateDriverData: *mut c_void,
        pub PrivateDriverDataSize: u32,
    }

    /// The source or target an enumeration pivots on.
    pub struct DXGK_ENUM_PIVOT {
        pub VidPnSourceId: D3DDDI_VIDEO_PRESENT_SOURCE_ID,
        pub VidPnTargetId: D3DDDI_VIDEO_PRESENT_TARGET_ID,
    }

    /// Argument of `DxgkDdiEnumVidPnCofuncModality`.
    pub struct DXGKARG_ENUMVIDPNCOFUNCMODALITY {
        pub hConstrainingVidPn: D3DKMDT_HVIDPN,
        pub EnumPivotType: D3DKMDT_ENUMCOFUNCMODALITY_PIVOT_TYPE,
        pub EnumPivot: DXGK_ENUM_PIVOT,
    }
    nested {
        "EnumPivot.VidPnSourceId" => EnumPivot.VidPnSourceId,
        "EnumPivot.VidPnTargetId" => EnumPivot.VidPnTargetId,
    }

    /// Argument of `DxgkDdiSetVidPnSourceVisibility`.
    pub struct DXGKARG_SETVIDPNSOURCEVISIBILITY {
        pub VidPnSourceId: D3DDDI_VIDEO_PRESENT_SOURCE_ID,
        pub Visible: BOOLEAN,
    }

    /// Flags of `DxgkDdiCommitVidPn` (C bitfield struct).
    pub struct DXGKARG_COMMITVIDPN_FLAGS {
        pub Bits: u32 => "(bitfield unit)",
    }
    bits {
        "PathPowerTransition" => path_power_transition, set_path_power_transition: bool = 0x1 in Bits,
        "PathPoweredOff" => path_powered_off, set_path_powered_off: bool = 0x2 in Bits,
    }

    /// Argument of `DxgkDdiCommitVidPn`.
    pub struct DXGKARG_COMMITVIDPN {
        pub hFunctionalVidPn: D3DKMDT_HVIDPN,
        /// `D3DDDI_ID_ALL` when every source is affected.
        pub AffectedVidPnSourceId: D3DDDI_VIDEO_PRESENT_SOURCE_ID,
        pub MonitorConnectivityChecks: D3DKMDT_MONITOR_CONNECTIVITY_CHECKS,
        pub hPrimaryAllocation: HANDLE,
        pub Flags: DXGKARG_COMMITVIDPN_FLAGS,
    }

    /// Argument of `DxgkDdiUpdateActiveVidPnPresentPath`.
    pub struct DXGKARG_UPDATEACTIVEVIDPNPRESENTPATH {
        pub VidPnPresentPathInfo: D3DKMDT_VIDPN_PRESENT_PATH,
    }
    nested {
        "VidPnPresentPathInfo.ContentTransformation.Rotation" => VidPnPresentPathInfo.ContentTransformation.Rotation,
        "VidPnPresentPathInfo.GammaRamp.Data" => VidPnPresentPathInfo.GammaRamp.Data,
    }

    /// Argument of `DxgkDdiRecommendMonitorModes`.
    pub struct DXGKARG_RECOMMENDMONITORMODES {
        pub VideoPresentTargetId: D3DDDI_VIDEO_PRESENT_TARGET_ID,
        pub hMonitorSourceModeSet: D3DKMDT_HMONITORSOURCEMODESET,
        pub pMonitorSourceModeSetInterface: *const DXGK_MONITORSOURCEMODESET_INTERFACE,
    }

    /// Which path transformations the driver performs itself (C bitfield struct).
    pub struct D3DKMDT_VIDPN_HW_CAPABILITY {
        pub Bits: u32 => "(bitfield unit)",
    }
    bits {
        "DriverRotation" => driver_rotation, set_driver_rotation: bool = 0x1 in Bits,
        "DriverScaling" => driver_scaling, set_driver_scaling: bool = 0x2 in Bits,
        "DriverCloning" => driver_cloning, set_driver_cloning: bool = 0x4 in Bits,
        "DriverColorConvert" => driver_color_convert, set_driver_color_convert: bool = 0x8 in Bits,
        "DriverLinkedAdapaterOutput" => driver_linked_adapter_output, set_driver_linked_adapter_output: bool = 0x10 in Bits,
        "DriverRemoteDisplay" => driver_remote_display, set_driver_remote_display: bool = 0x20 in Bits,
    }

    /// Argument of `DxgkDdiQueryVidPnHWCapability`.
    pub struct DXGKARG_QUERYVIDPNHWCAPABILITY {
        pub hFunctionalVidPn: D3DKMDT_HVIDPN,
        pub SourceId: D3DDDI_VIDEO_PRESENT_SOURCE_ID,
        pub TargetId: D3DDDI_VIDEO_PRESENT_TARGET_ID,
        pub VidPnHWCaps: D3DKMDT_VIDPN_HW_CAPABILITY,
    }

    /// Argument of `DxgkDdiGetScanLine`.
    pub struct DXGKARG_GETSCANLINE {
        pub VidPnTargetId: D3DDDI_VIDEO_PRESENT_TARGET_ID,
        pub InVerticalBlank: BOOLEAN,
        pub ScanLine: u32,
    }

    /// Flags of `DxgkDdiPresentDisplayOnly`.
    pub struct D3DKMT_PRESENT_DISPLAY_ONLY_FLAGS {
        pub Value: u32,
    }
    bits {
        "Rotate" => rotate, set_rotate: bool = 0x1 in Value,
    }

    /// A screen-to-screen move: copy `DestRect`'s size from `SourcePoint` to `DestRect`.
    pub struct D3DKMT_MOVE_RECT {
        pub SourcePoint: POINT,
        pub DestRect: RECT,
    }
    nested {
        "SourcePoint.y" => SourcePoint.y,
        "DestRect.left" => DestRect.left,
        "DestRect.bottom" => DestRect.bottom,
    }

    /// Argument of `DxgkDdiPresentDisplayOnly`: moves first, then dirty rectangles, from the
    /// system-memory surface `pSource`.
    pub struct DXGKARG_PRESENT_DISPLAYONLY {
        pub VidPnSourceId: D3DDDI_VIDEO_PRESENT_SOURCE_ID,
        pub pSource: *mut c_void,
        pub BytesPerPixel: u32,
        pub Pitch: i32,
        pub Flags: D3DKMT_PRESENT_DISPLAY_ONLY_FLAGS,
        pub NumMoves: u32,
        pub pMoves: *mut D3DKMT_MOVE_RECT,
        pub NumDirtyRects: u32,
        pub pDirtyRect: *mut RECT,
        pub pfnPresentDisplayOnlyProgress: DXGKCB_PRESENT_DISPLAYONLY_PROGRESS,
    }
    nested {
        "Flags.Value" => Flags.Value,
    }

    /// Argument of the present-progress callback.
    pub struct DXGKARGCB_PRESENT_DISPLAYONLY_PROGRESS {
        pub VidPnSourceId: D3DDDI_VIDEO_PRESENT_SOURCE_ID,
        pub ProgressId: DXGK_PRESENT_DISPLAY_ONLY_PROGRESS_ID,
    }

    /// Argument of `DxgkDdiSetPalette`.
    pub struct DXGKARG_SETPALETTE {
        pub VidPnSourceId: D3DDDI_VIDEO_PRESENT_SOURCE_ID,
        pub FirstEntry: u32,
        pub NumEntries: u32,
        pub pLookupTable: *mut D3DKMDT_PALETTEDATA,
    }

    /// Flags of `DxgkDdiSystemDisplayEnable` (all bits reserved).
    pub struct DXGKARG_SYSTEM_DISPLAY_ENABLE_FLAGS {
        pub Value: u32,
    }
}
