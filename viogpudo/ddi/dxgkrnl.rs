//! The services dxgkrnl offers the driver: `DXGKRNL_INTERFACE` (handed over in
//! `DxgkDdiStartDevice`; WIN8 set, 256 bytes) and its callbacks, and the structures exchanged
//! around device start and child (monitor output) enumeration: start and device info, the
//! POST/firmware display information, child descriptors and status, device descriptors.
//!
//! The OS fills `DXGKRNL_INTERFACE` for the Windows it runs; its `Size`/`Version` fields say
//! how much of it is valid, and the driver must only use callbacks its `Size` covers.

use core::ffi::c_void;

use super::args::DXGKARGCB_PRESENT_DISPLAYONLY_PROGRESS;
use super::constants::*;
use super::types::*;
use super::vidpn_iface::{DXGK_MONITOR_INTERFACE, DXGK_VIDPN_INTERFACE};

ddi_scalars! {
    const DXGKRNL_SCALARS;
    enum {
        /// Services queried with `DxgkCbQueryServices`.
        DXGK_SERVICES,
        /// Caching of a mapping made with `DxgkCbMapMemory` (`MmNonCached` = 0, `MmCached`
        /// = 1, `MmWriteCombined` = 2 in wdm.h).
        MEMORY_CACHING_TYPE,
        /// Docking state of the adapter in `DXGK_DEVICE_INFO`.
        DOCKING_STATE,
    }
    opaque {
        /// Argument of `DxgkCbGetHandleData`.
        DXGKARGCB_GETHANDLEDATA,
        /// Argument of `DxgkCbEnumHandleChildren`.
        DXGKARGCB_ENUMHANDLECHILDREN,
        /// Argument of `DxgkCbNotifyInterrupt`.
        DXGKARGCB_NOTIFY_INTERRUPT_DATA,
        /// Argument of `DxgkCbGetCaptureAddress`.
        DXGKARGCB_GETCAPTUREADDRESS,
        /// Argument of `DxgkCbCreateContextAllocation`.
        DXGKARGCB_CREATECONTEXTALLOCATION,
    }
}

ddi_fns! {
    const DXGKRNL_SIGNATURES;
    /// `DxgkCbEvalAcpiMethod`: C parameters `(HANDLE, ULONG, PACPI_EVAL_INPUT_BUFFER_COMPLEX, ULONG, PACPI_EVAL_OUTPUT_BUFFER, ULONG)` returning `NTSTATUS`.
    DXGKCB_EVAL_ACPI_METHOD = fn(HANDLE, u32, *mut ACPI_EVAL_INPUT_BUFFER_COMPLEX_V1, u32, *mut ACPI_EVAL_OUTPUT_BUFFER_V1, u32) -> NTSTATUS;
    /// `DxgkCbGetDeviceInformation`: C parameters `(HANDLE, PDXGK_DEVICE_INFO)` returning `NTSTATUS`.
    DXGKCB_GET_DEVICE_INFORMATION = fn(HANDLE, *mut DXGK_DEVICE_INFO) -> NTSTATUS;
    /// `DxgkCbIndicateChildStatus`: C parameters `(HANDLE, PDXGK_CHILD_STATUS)` returning `NTSTATUS`.
    DXGKCB_INDICATE_CHILD_STATUS = fn(HANDLE, *mut DXGK_CHILD_STATUS) -> NTSTATUS;
    /// `DxgkCbMapMemory`: C parameters `(HANDLE, PHYSICAL_ADDRESS, ULONG, BOOLEAN, BOOLEAN, MEMORY_CACHING_TYPE, PVOID *)` returning `NTSTATUS`.
    DXGKCB_MAP_MEMORY = fn(HANDLE, PHYSICAL_ADDRESS, u32, BOOLEAN, BOOLEAN, MEMORY_CACHING_TYPE, *mut *mut c_void) -> NTSTATUS;
    /// `DxgkCbQueueDpc`: C parameters `(HANDLE)` returning `BOOLEAN`.
    DXGKCB_QUEUE_DPC = fn(HANDLE) -> BOOLEAN;
    /// `DxgkCbQueryServices`: C parameters `(HANDLE, DXGK_SERVICES, PINTERFACE)` returning `NTSTATUS`.
    DXGKCB_QUERY_SERVICES = fn(HANDLE, DXGK_SERVICES, *mut INTERFACE) -> NTSTATUS;
    /// `DxgkCbReadDeviceSpace`: C parameters `(HANDLE, ULONG, PVOID, ULONG, ULONG, PULONG)` returning `NTSTATUS`.
    DXGKCB_READ_DEVICE_SPACE = fn(HANDLE, u32, *mut c_void, u32, u32, *mut u32) -> NTSTATUS;
    /// `DxgkCbSynchronizeExecution`: C parameters `(HANDLE, PKSYNCHRONIZE_ROUTINE, PVOID, ULONG, PBOOLEAN)` returning `NTSTATUS`.
    DXGKCB_SYNCHRONIZE_EXECUTION = fn(HANDLE, Option<unsafe extern "system" fn(*mut c_void) -> BOOLEAN>, *mut c_void, u32, *mut BOOLEAN) -> NTSTATUS;
    /// `DxgkCbUnmapMemory`: C parameters `(HANDLE, PVOID)` returning `NTSTATUS`.
    DXGKCB_UNMAP_MEMORY = fn(HANDLE, *mut c_void) -> NTSTATUS;
    /// `DxgkCbWriteDeviceSpace`: C parameters `(HANDLE, ULONG, PVOID, ULONG, ULONG, PULONG)` returning `NTSTATUS`.
    DXGKCB_WRITE_DEVICE_SPACE = fn(HANDLE, u32, *mut c_void, u32, u32, *mut u32) -> NTSTATUS;
    /// `DxgkCbIsDevicePresent`: C parameters `(HANDLE, PPCI_DEVICE_PRESENCE_PARAMETERS, PBOOLEAN)` returning `NTSTATUS`.
    DXGKCB_IS_DEVICE_PRESENT = fn(HANDLE, *mut PCI_DEVICE_PRESENCE_PARAMETERS, *mut BOOLEAN) -> NTSTATUS;
    /// `DxgkCbGetHandleData`: C parameters `(IN_CONST_PDXGKARGCB_GETHANDLEDATA)` returning `void *`.
    DXGKCB_GETHANDLEDATA = fn(*const DXGKARGCB_GETHANDLEDATA) -> *mut c_void;
    /// `DxgkCbGetHandleParent`: C parameters `(IN_D3DKMT_HANDLE)` returning `D3DKMT_HANDLE`.
    DXGKCB_GETHANDLEPARENT = fn(u32) -> u32;
    /// `DxgkCbEnumHandleChildren`: C parameters `(IN_CONST_PDXGKARGCB_ENUMHANDLECHILDREN)` returning `D3DKMT_HANDLE`.
    DXGKCB_ENUMHANDLECHILDREN = fn(*const DXGKARGCB_ENUMHANDLECHILDREN) -> u32;
    /// `DxgkCbNotifyInterrupt`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARGCB_NOTIFY_INTERRUPT_DATA)` returning `void`.
    DXGKCB_NOTIFY_INTERRUPT = fn(HANDLE, *mut DXGKARGCB_NOTIFY_INTERRUPT_DATA);
    /// `DxgkCbNotifyDpc`: C parameters `(IN_CONST_HANDLE)` returning `void`.
    DXGKCB_NOTIFY_DPC = fn(HANDLE);
    /// `DxgkCbQueryVidPnInterface`: C parameters `(IN_CONST_D3DKMDT_HVIDPN, IN_CONST_DXGK_VIDPN_INTERFACE_VERSION, DEREF_OUT_CONST_PPDXGK_VIDPN_INTERFACE)` returning `NTSTATUS`.
    DXGKCB_QUERYVIDPNINTERFACE = fn(D3DKMDT_HVIDPN, DXGK_VIDPN_INTERFACE_VERSION, *mut *const DXGK_VIDPN_INTERFACE) -> NTSTATUS;
    /// `DxgkCbQueryMonitorInterface`: C parameters `(IN_CONST_HANDLE, IN_CONST_DXGK_MONITOR_INTERFACE_VERSION, DEREF_OUT_CONST_PPDXGK_MONITOR_INTERFACE)` returning `NTSTATUS`.
    DXGKCB_QUERYMONITORINTERFACE = fn(HANDLE, DXGK_MONITOR_INTERFACE_VERSION, *mut *const DXGK_MONITOR_INTERFACE) -> NTSTATUS;
    /// `DxgkCbGetCaptureAddress`: C parameters `(INOUT_PDXGKARGCB_GETCAPTUREADDRESS)` returning `NTSTATUS`.
    DXGKCB_GETCAPTUREADDRESS = fn(*mut DXGKARGCB_GETCAPTUREADDRESS) -> NTSTATUS;
    /// `DxgkCbLogEtwEvent`: C parameters `(const LPCGUID, UCHAR, USHORT, PVOID)` returning `void`.
    DXGKCB_LOG_ETW_EVENT = fn(*const GUID, u8, u16, *mut c_void);
    /// `DxgkCbExcludeAdapterAccess`: C parameters `(HANDLE, ULONG, DXGKDDI_PROTECTED_CALLBACK, PVOID)` returning `NTSTATUS`.
    DXGKCB_EXCLUDE_ADAPTER_ACCESS = fn(HANDLE, u32, Option<unsafe extern "system" fn(*mut c_void, *mut c_void, NTSTATUS)>, *mut c_void) -> NTSTATUS;
    /// `DxgkCbCreateContextAllocation`: C parameters `(INOUT_PDXGKARGCB_CREATECONTEXTALLOCATION)` returning `NTSTATUS`.
    DXGKCB_CREATECONTEXTALLOCATION = fn(*mut DXGKARGCB_CREATECONTEXTALLOCATION) -> NTSTATUS;
    /// `DxgkCbDestroyContextAllocation`: C parameters `(IN_CONST_HANDLE, IN_CONST_HANDLE)` returning `NTSTATUS`.
    DXGKCB_DESTROYCONTEXTALLOCATION = fn(HANDLE, HANDLE) -> NTSTATUS;
    /// `DxgkCbSetPowerComponentActive`: C parameters `(IN_CONST_HANDLE, UINT)` returning `void`.
    DXGKCB_SETPOWERCOMPONENTACTIVE = fn(HANDLE, u32);
    /// `DxgkCbSetPowerComponentIdle`: C parameters `(IN_CONST_HANDLE, UINT)` returning `void`.
    DXGKCB_SETPOWERCOMPONENTIDLE = fn(HANDLE, u32);
    /// `DxgkCbAcquirePostDisplayOwnership`: C parameters `(HANDLE, PDXGK_DISPLAY_INFORMATION)` returning `NTSTATUS`.
    DXGKCB_ACQUIRE_POST_DISPLAY_OWNERSHIP = fn(HANDLE, *mut DXGK_DISPLAY_INFORMATION) -> NTSTATUS;
    /// `DxgkCbPowerRuntimeControlRequest`: C parameters `(IN_CONST_HANDLE, LPCGUID, PVOID, SIZE_T, PVOID, SIZE_T, PSIZE_T)` returning `NTSTATUS`.
    DXGKCB_POWERRUNTIMECONTROLREQUEST = fn(HANDLE, *const GUID, *mut c_void, usize, *mut c_void, usize, *mut usize) -> NTSTATUS;
    /// `DxgkCbSetPowerComponentLatency`: C parameters `(IN_CONST_HANDLE, UINT, ULONGLONG)` returning `void`.
    DXGKCB_SETPOWERCOMPONENTLATENCY = fn(HANDLE, u32, u64);
    /// `DxgkCbSetPowerComponentResidency`: C parameters `(IN_CONST_HANDLE, UINT, ULONGLONG)` returning `void`.
    DXGKCB_SETPOWERCOMPONENTRESIDENCY = fn(HANDLE, u32, u64);
    /// `DxgkCbCompleteFStateTransition`: C parameters `(IN_CONST_HANDLE, UINT)` returning `void`.
    DXGKCB_COMPLETEFSTATETRANSITION = fn(HANDLE, u32);
    /// `pfnPresentDisplayOnlyProgress`: C parameters `(IN_CONST_HANDLE, IN_CONST_PDXGKARGCB_PRESENT_DISPLAYONLY_PROGRESS)` returning `void`.
    DXGKCB_PRESENT_DISPLAYONLY_PROGRESS = fn(HANDLE, *const DXGKARGCB_PRESENT_DISPLAYONLY_PROGRESS);
}

ddi_types! {
    const DXGKRNL_TYPES;

    /// The callbacks dxgkrnl offers (WIN8 set). `DeviceHandle` is the first argument of most.
    pub struct DXGKRNL_INTERFACE {
        pub Size: u32,
        pub Version: u32,
        pub DeviceHandle: HANDLE,
        pub DxgkCbEvalAcpiMethod: DXGKCB_EVAL_ACPI_METHOD,
        pub DxgkCbGetDeviceInformation: DXGKCB_GET_DEVICE_INFORMATION,
        pub DxgkCbIndicateChildStatus: DXGKCB_INDICATE_CHILD_STATUS,
        pub DxgkCbMapMemory: DXGKCB_MAP_MEMORY,
        pub DxgkCbQueueDpc: DXGKCB_QUEUE_DPC,
        pub DxgkCbQueryServices: DXGKCB_QUERY_SERVICES,
        pub DxgkCbReadDeviceSpace: DXGKCB_READ_DEVICE_SPACE,
        pub DxgkCbSynchronizeExecution: DXGKCB_SYNCHRONIZE_EXECUTION,
        pub DxgkCbUnmapMemory: DXGKCB_UNMAP_MEMORY,
        pub DxgkCbWriteDeviceSpace: DXGKCB_WRITE_DEVICE_SPACE,
        pub DxgkCbIsDevicePresent: DXGKCB_IS_DEVICE_PRESENT,
        pub DxgkCbGetHandleData: DXGKCB_GETHANDLEDATA,
        pub DxgkCbGetHandleParent: DXGKCB_GETHANDLEPARENT,
        pub DxgkCbEnumHandleChildren: DXGKCB_ENUMHANDLECHILDREN,
        pub DxgkCbNotifyInterrupt: DXGKCB_NOTIFY_INTERRUPT,
        pub DxgkCbNotifyDpc: DXGKCB_NOTIFY_DPC,
        pub DxgkCbQueryVidPnInterface: DXGKCB_QUERYVIDPNINTERFACE,
        pub DxgkCbQueryMonitorInterface: DXGKCB_QUERYMONITORINTERFACE,
        pub DxgkCbGetCaptureAddress: DXGKCB_GETCAPTUREADDRESS,
        pub DxgkCbLogEtwEvent: DXGKCB_LOG_ETW_EVENT,
        pub DxgkCbExcludeAdapterAccess: DXGKCB_EXCLUDE_ADAPTER_ACCESS,
        pub DxgkCbCreateContextAllocation: DXGKCB_CREATECONTEXTALLOCATION,
        pub DxgkCbDestroyContextAllocation: DXGKCB_DESTROYCONTEXTALLOCATION,
        pub DxgkCbSetPowerComponentActive: DXGKCB_SETPOWERCOMPONENTACTIVE,
        pub DxgkCbSetPowerComponentIdle: DXGKCB_SETPOWERCOMPONENTIDLE,
        pub DxgkCbAcquirePostDisplayOwnership: DXGKCB_ACQUIRE_POST_DISPLAY_OWNERSHIP,
        pub DxgkCbPowerRuntimeControlRequest: DXGKCB_POWERRUNTIMECONTROLREQUEST,
        pub DxgkCbSetPowerComponentLatency: DXGKCB_SETPOWERCOMPONENTLATENCY,
        pub DxgkCbSetPowerComponentResidency: DXGKCB_SETPOWERCOMPONENTRESIDENCY,
        pub DxgkCbCompleteFStateTransition: DXGKCB_COMPLETEFSTATETRANSITION,
    }

    /// Start information given to `DxgkDdiStartDevice`.
    pub struct DXGK_START_INFO {
        pub RequiredDmaQueueEntry: u32,
        pub AdapterGuid: GUID,
        pub AdapterLuid: LUID,
    }
    nested {
        "AdapterGuid.Data4" => AdapterGuid.Data4,
        "AdapterLuid.HighPart" => AdapterLuid.HighPart,
    }

    /// Device information returned by `DxgkCbGetDeviceInformation`.
    pub struct DXGK_DEVICE_INFO {
        pub MiniportDeviceContext: *mut c_void,
        pub PhysicalDeviceObject: *mut DEVICE_OBJECT,
        pub DeviceRegistryPath: UNICODE_STRING,
        pub TranslatedResourceList: *mut CM_RESOURCE_LIST,
        pub SystemMemorySize: LARGE_INTEGER,
        pub HighestPhysicalAddress: PHYSICAL_ADDRESS,
        pub AgpApertureBase: PHYSICAL_ADDRESS,
        pub AgpApertureSize: usize,
        pub DockingState: DOCKING_STATE,
    }
    nested {
        "DeviceRegistryPath.Buffer" => DeviceRegistryPath.Buffer,
        "SystemMemorySize.QuadPart" => SystemMemorySize.QuadPart,
        "HighestPhysicalAddress.QuadPart" => HighestPhysicalAddress.QuadPart,
    }

    /// The framebuffer the firmware (or the previous driver) left on screen; also what the
    /// driver hands back in `DxgkDdiStopDeviceAndReleasePostDisplayOwnership`.
    pub struct DXGK_DISPLAY_INFORMATION {
        pub Width: u32,
        pub Height: u32,
        pub Pitch: u32,
        pub ColorFormat: D3DDDIFORMAT,
        pub PhysicAddress: PHYSICAL_ADDRESS,
        pub TargetId: D3DDDI_VIDEO_PRESENT_TARGET_ID,
        pub AcpiId: u32,
    }

    /// Capabilities of a video-output child.
    pub struct DXGK_VIDEO_OUTPUT_CAPABILITIES {
        pub InterfaceTechnology: D3DKMDT_VIDEO_OUTPUT_TECHNOLOGY,
        pub MonitorOrientationAwareness: D3DKMDT_MONITOR_ORIENTATION_AWARENESS,
        pub SupportsSdtvModes: BOOLEAN,
    }

    /// Capabilities of a child device.
    pub struct DXGK_CHILD_CAPABILITIES {
        /// C union of `VideoOutput`, `Other` and `IntegratedDisplayChild`; a display-only
        /// driver's children are video outputs (`TypeVideoOutput`), the largest member.
        pub Type: DXGK_VIDEO_OUTPUT_CAPABILITIES,
        pub HpdAwareness: DXGK_CHILD_DEVICE_HPD_AWARENESS,
    }
    nested {
        "Type.VideoOutput" => Type,
        "Type.VideoOutput.InterfaceTechnology" => Type.InterfaceTechnology,
        "Type.VideoOutput.MonitorOrientationAwareness" => Type.MonitorOrientationAwareness,
        "Type.VideoOutput.SupportsSdtvModes" => Type.SupportsSdtvModes,
        "Type.Other.MustBeZero" => Type.InterfaceTechnology,
    }

    /// One child the driver reports from `DxgkDdiQueryChildRelations`.
    pub struct DXGK_CHILD_DESCRIPTOR {
        pub ChildDeviceType: DXGK_CHILD_DEVICE_TYPE,
        pub ChildCapabilities: DXGK_CHILD_CAPABILITIES,
        pub AcpiUid: u32,
        /// The child's id; for video outputs also its VidPN target id.
        pub ChildUid: u32,
    }
    nested {
        "ChildCapabilities.Type.VideoOutput.InterfaceTechnology" => ChildCapabilities.Type.InterfaceTechnology,
        "ChildCapabilities.Type.VideoOutput.SupportsSdtvModes" => ChildCapabilities.Type.SupportsSdtvModes,
        "ChildCapabilities.HpdAwareness" => ChildCapabilities.HpdAwareness,
    }

    /// A child status queried by `DxgkDdiQueryChildStatus` or indicated with
    /// `DxgkCbIndicateChildStatus` (WIN8 size, 12 bytes: no Miracast member).
    pub struct DXGK_CHILD_STATUS {
        pub Type: DXGK_CHILD_STATUS_TYPE,
        pub ChildUid: u32,
        /// C union of `HotPlug.Connected` (`StatusConnection`) and `Rotation.Angle`
        /// (`StatusRotation`), both one byte; see the accessors.
        pub Status: u8 => "(anon union)",
    }
    nested {
        "HotPlug" => Status,
        "HotPlug.Connected" => Status,
        "Rotation" => Status,
        "Rotation.Angle" => Status,
    }

    /// A device descriptor (EDID) request of `DxgkDdiQueryDeviceDescriptor`.
    pub struct DXGK_DEVICE_DESCRIPTOR {
        pub DescriptorOffset: u32,
        pub DescriptorLength: u32,
        pub DescriptorBuffer: *mut c_void,
    }

    /// The container id of a child (`DxgkDdiGetChildContainerId`).
    pub struct DXGK_CHILD_CONTAINER_ID {
        pub ContainerId: GUID,
        pub EldInfo: DXGK_CHILD_CONTAINER_ID_ELD_INFO,
    }
    nested {
        "EldInfo.PortId" => EldInfo.PortId,
        "EldInfo.ManufacturerName" => EldInfo.ManufacturerName,
        "EldInfo.ProductCode" => EldInfo.ProductCode,
    }

    /// The ELD part of a container id (anonymous in C).
    pub struct DXGK_CHILD_CONTAINER_ID_ELD_INFO in "DXGK_CHILD_CONTAINER_ID" at "EldInfo" {
        pub PortId: u64,
        pub ManufacturerName: u16,
        pub ProductCode: u16,
    }
}

impl DXGK_CHILD_STATUS {
    /// `HotPlug.Connected`, meaningful when `Type == StatusConnection`.
    pub const fn hot_plug_connected(&self) -> bool {
        self.Status != 0
    }

    /// Sets `HotPlug.Connected`.
    pub fn set_hot_plug_connected(&mut self, connected: bool) {
        self.Status = u8::from(connected);
    }

    /// `Rotation.Angle`, meaningful when `Type == StatusRotation`.
    pub const fn rotation_angle(&self) -> u8 {
        self.Status
    }

    /// Sets `Rotation.Angle`.
    pub fn set_rotation_angle(&mut self, angle: u8) {
        self.Status = angle;
    }
}
