//! Basic Windows kernel types the display-miniport ABI is built from (LLP64 x86_64: `ULONG`
//! = `u32`, `LONG` = `i32`, `SIZE_T` = `usize`, `BOOLEAN` = `u8`, pointers 8 bytes), the
//! opaque OS objects the driver only holds by pointer, and the handle types of VidPN objects.

use core::ffi::c_void;

ddi_scalars! {
    const SCALAR_TYPES;
    alias {
        /// Kernel status code; see [`super::status`].
        NTSTATUS = i32,
        /// One-byte kernel boolean: 0 is false, anything else true.
        BOOLEAN = u8,
        /// Four-byte Win32 boolean.
        BOOL = i32,
        /// An opaque OS or driver handle.
        HANDLE = *mut c_void,
        /// Id of a VidPN source (a scanout the driver drives).
        D3DDDI_VIDEO_PRESENT_SOURCE_ID = u32,
        /// Id of a VidPN target (a monitor output, i.e. a child `ChildUid`).
        D3DDDI_VIDEO_PRESENT_TARGET_ID = u32,
        /// Id of a mode within a VidPN source mode set.
        D3DKMDT_VIDEO_PRESENT_SOURCE_MODE_ID = u32,
        /// Id of a mode within a VidPN target mode set.
        D3DKMDT_VIDEO_PRESENT_TARGET_MODE_ID = u32,
        /// Handle of a VidPN owned by the OS.
        D3DKMDT_HVIDPN = *mut D3DKMDT_HVIDPN__,
        /// Handle of a VidPN topology.
        D3DKMDT_HVIDPNTOPOLOGY = *mut D3DKMDT_HVIDPNTOPOLOGY__,
        /// Handle of a VidPN source mode set.
        D3DKMDT_HVIDPNSOURCEMODESET = *mut D3DKMDT_HVIDPNSOURCEMODESET__,
        /// Handle of a VidPN target mode set.
        D3DKMDT_HVIDPNTARGETMODESET = *mut D3DKMDT_HVIDPNTARGETMODESET__,
        /// Handle of a monitor source mode set.
        D3DKMDT_HMONITORSOURCEMODESET = *mut D3DKMDT_HMONITORSOURCEMODESET__,
        /// Handle of a monitor frequency range set.
        D3DKMDT_HMONITORFREQUENCYRANGESET = *mut D3DKMDT_HMONITORFREQUENCYRANGESET__,
        /// Handle of a monitor descriptor set.
        D3DKMDT_HMONITORDESCRIPTORSET = *mut D3DKMDT_HMONITORDESCRIPTORSET__,
        /// A physical address (a `LARGE_INTEGER` in C).
        PHYSICAL_ADDRESS = LARGE_INTEGER,
    }
    opaque {
        /// The PnP physical device object of the adapter.
        DEVICE_OBJECT,
        /// The translated hardware resources (BARs, interrupt) of the adapter.
        CM_RESOURCE_LIST,
        /// The I/O status block of a `VIDEO_REQUEST_PACKET`.
        STATUS_BLOCK,
        /// Input of an ACPI method evaluation.
        ACPI_EVAL_INPUT_BUFFER_COMPLEX_V1,
        /// Output of an ACPI method evaluation.
        ACPI_EVAL_OUTPUT_BUFFER_V1,
        /// Parameters of a PCI device-presence query.
        PCI_DEVICE_PRESENCE_PARAMETERS,
        /// Target of a [`D3DKMDT_HVIDPN`].
        D3DKMDT_HVIDPN__,
        /// Target of a [`D3DKMDT_HVIDPNTOPOLOGY`].
        D3DKMDT_HVIDPNTOPOLOGY__,
        /// Target of a [`D3DKMDT_HVIDPNSOURCEMODESET`].
        D3DKMDT_HVIDPNSOURCEMODESET__,
        /// Target of a [`D3DKMDT_HVIDPNTARGETMODESET`].
        D3DKMDT_HVIDPNTARGETMODESET__,
        /// Target of a [`D3DKMDT_HMONITORSOURCEMODESET`].
        D3DKMDT_HMONITORSOURCEMODESET__,
        /// Target of a [`D3DKMDT_HMONITORFREQUENCYRANGESET`].
        D3DKMDT_HMONITORFREQUENCYRANGESET__,
        /// Target of a [`D3DKMDT_HMONITORDESCRIPTORSET`].
        D3DKMDT_HMONITORDESCRIPTORSET__,
    }
}

ddi_types! {
    const BASIC_TYPES;

    /// A locally unique id (the adapter LUID).
    pub struct LUID {
        pub LowPart: u32,
        pub HighPart: i32,
    }

    /// A GUID.
    pub struct GUID {
        pub Data1: u32,
        pub Data2: u16,
        pub Data3: u16,
        pub Data4: [u8; 8],
    }

    /// A 64-bit signed integer with 8-byte alignment. C declares it as a union of `QuadPart`
    /// and a `LowPart`/`HighPart` pair; the pair is available through methods.
    pub struct LARGE_INTEGER {
        pub QuadPart: i64,
    }

    /// A counted UTF-16 string; `Length` and `MaximumLength` are in bytes.
    pub struct UNICODE_STRING {
        pub Length: u16,
        pub MaximumLength: u16,
        pub Buffer: *mut u16,
    }

    /// A rectangle; `right` and `bottom` are exclusive.
    pub struct RECT {
        pub left: i32,
        pub top: i32,
        pub right: i32,
        pub bottom: i32,
    }

    /// A point.
    pub struct POINT {
        pub x: i32,
        pub y: i32,
    }

    /// Header of every interface returned by `DxgkDdiQueryInterface`.
    pub struct INTERFACE {
        pub Size: u16,
        pub Version: u16,
        pub Context: *mut c_void,
        /// `PINTERFACE_REFERENCE`.
        pub InterfaceReference: Option<unsafe extern "system" fn(*mut c_void)>,
        /// `PINTERFACE_DEREFERENCE`.
        pub InterfaceDereference: Option<unsafe extern "system" fn(*mut c_void)>,
    }

    /// Argument of `DxgkDdiQueryInterface` (WIN8 size: no `DeviceUid`).
    pub struct QUERY_INTERFACE {
        pub InterfaceType: *const GUID,
        pub Size: u16,
        pub Version: u16,
        pub Interface: *mut INTERFACE,
        pub InterfaceSpecificData: *mut c_void,
    }

    /// Argument of `DxgkDdiDispatchIoRequest`.
    pub struct VIDEO_REQUEST_PACKET {
        pub IoControlCode: u32,
        pub StatusBlock: *mut STATUS_BLOCK,
        pub InputBuffer: *mut c_void,
        pub InputBufferLength: u32,
        pub OutputBuffer: *mut c_void,
        pub OutputBufferLength: u32,
    }
}

impl LARGE_INTEGER {
    /// A `LARGE_INTEGER` holding `value`.
    pub const fn new(value: i64) -> Self {
        LARGE_INTEGER { QuadPart: value }
    }

    /// The low 32 bits (C `LowPart`).
    pub const fn low_part(&self) -> u32 {
        // Truncation is the definition of LowPart.
        self.QuadPart as u32
    }

    /// The high 32 bits (C `HighPart`).
    pub const fn high_part(&self) -> i32 {
        (self.QuadPart >> 32) as i32
    }
}
