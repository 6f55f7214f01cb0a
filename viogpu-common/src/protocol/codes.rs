//! Command, response and pixel-format codes of the virtio-gpu control protocol.
//!
//! Each code is a newtype over the raw `u32` on the wire, not a Rust `enum`: a device can
//! write any value, and an unknown value must stay representable (and printable) instead of
//! being undefined behaviour or a parse failure.

use core::fmt;

/// A control or cursor command type (`VIRTIO_GPU_CMD_*`), the `ty` of a request header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandType(pub u32);

impl CommandType {
    /// Query the scanouts' enabled state and preferred sizes.
    pub const GET_DISPLAY_INFO: Self = Self(0x100);
    /// Create a host-side 2D resource.
    pub const RESOURCE_CREATE_2D: Self = Self(0x101);
    /// Destroy a resource.
    pub const RESOURCE_UNREF: Self = Self(0x102);
    /// Show a rectangle of a resource on a scanout (resource 0 disables the scanout).
    pub const SET_SCANOUT: Self = Self(0x103);
    /// Tell the host a rectangle of a resource changed on screen.
    pub const RESOURCE_FLUSH: Self = Self(0x104);
    /// Copy a rectangle from guest backing memory into the host resource.
    pub const TRANSFER_TO_HOST_2D: Self = Self(0x105);
    /// Give a resource its guest backing pages.
    pub const RESOURCE_ATTACH_BACKING: Self = Self(0x106);
    /// Take a resource's guest backing pages away.
    pub const RESOURCE_DETACH_BACKING: Self = Self(0x107);
    /// Query a capability set (3D only; listed so it can be named in logs).
    pub const GET_CAPSET_INFO: Self = Self(0x108);
    /// Fetch a capability set (3D only).
    pub const GET_CAPSET: Self = Self(0x109);
    /// Fetch a scanout's EDID (needs `VIRTIO_GPU_F_EDID`).
    pub const GET_EDID: Self = Self(0x10a);
    /// Assign a UUID to a resource (needs `VIRTIO_GPU_F_RESOURCE_UUID`).
    pub const RESOURCE_ASSIGN_UUID: Self = Self(0x10b);
    /// Create a blob resource (needs `VIRTIO_GPU_F_RESOURCE_BLOB`).
    pub const RESOURCE_CREATE_BLOB: Self = Self(0x10c);
    /// Show a blob resource on a scanout (needs `VIRTIO_GPU_F_RESOURCE_BLOB`).
    pub const SET_SCANOUT_BLOB: Self = Self(0x10d);
    /// Set the cursor image and position (cursor queue).
    pub const UPDATE_CURSOR: Self = Self(0x300);
    /// Move the cursor without changing its image (cursor queue).
    pub const MOVE_CURSOR: Self = Self(0x301);

    const NAMES: [(Self, &'static str); 16] = [
        (Self::GET_DISPLAY_INFO, "GET_DISPLAY_INFO"),
        (Self::RESOURCE_CREATE_2D, "RESOURCE_CREATE_2D"),
        (Self::RESOURCE_UNREF, "RESOURCE_UNREF"),
        (Self::SET_SCANOUT, "SET_SCANOUT"),
        (Self::RESOURCE_FLUSH, "RESOURCE_FLUSH"),
        (Self::TRANSFER_TO_HOST_2D, "TRANSFER_TO_HOST_2D"),
        (Self::RESOURCE_ATTACH_BACKING, "RESOURCE_ATTACH_BACKING"),
        (Self::RESOURCE_DETACH_BACKING, "RESOURCE_DETACH_BACKING"),
        (Self::GET_CAPSET_INFO, "GET_CAPSET_INFO"),
        (Self::GET_CAPSET, "GET_CAPSET"),
        (Self::GET_EDID, "GET_EDID"),
        (Self::RESOURCE_ASSIGN_UUID, "RESOURCE_ASSIGN_UUID"),
        (Self::RESOURCE_CREATE_BLOB, "RESOURCE_CREATE_BLOB"),
        (Self::SET_SCANOUT_BLOB, "SET_SCANOUT_BLOB"),
        (Self::UPDATE_CURSOR, "UPDATE_CURSOR"),
        (Self::MOVE_CURSOR, "MOVE_CURSOR"),
    ];

    /// The spec name of a known command, `None` for any other value.
    pub fn name(self) -> Option<&'static str> {
        lookup(&Self::NAMES, self)
    }
}

impl fmt::Debug for CommandType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "CommandType({:#x})", self.0),
        }
    }
}

/// A response type (`VIRTIO_GPU_RESP_*`), the `ty` of a response header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResponseType(pub u32);

impl ResponseType {
    /// Success without payload.
    pub const OK_NODATA: Self = Self(0x1100);
    /// Success, payload is [`RespDisplayInfo`](super::RespDisplayInfo).
    pub const OK_DISPLAY_INFO: Self = Self(0x1101);
    /// Success, payload is a capset info (3D).
    pub const OK_CAPSET_INFO: Self = Self(0x1102);
    /// Success, payload is a capset (3D).
    pub const OK_CAPSET: Self = Self(0x1103);
    /// Success, payload is [`RespEdid`](super::RespEdid).
    pub const OK_EDID: Self = Self(0x1104);
    /// Success, payload is a resource UUID.
    pub const OK_RESOURCE_UUID: Self = Self(0x1105);
    /// Success, payload is blob mapping info.
    pub const OK_MAP_INFO: Self = Self(0x1106);
    /// Unspecified failure.
    pub const ERR_UNSPEC: Self = Self(0x1200);
    /// The host ran out of memory.
    pub const ERR_OUT_OF_MEMORY: Self = Self(0x1201);
    /// The scanout id does not exist.
    pub const ERR_INVALID_SCANOUT_ID: Self = Self(0x1202);
    /// The resource id does not exist (or is already in use, for create).
    pub const ERR_INVALID_RESOURCE_ID: Self = Self(0x1203);
    /// The 3D context id does not exist.
    pub const ERR_INVALID_CONTEXT_ID: Self = Self(0x1204);
    /// A parameter is out of range (rectangle outside the resource, bad format, ...).
    pub const ERR_INVALID_PARAMETER: Self = Self(0x1205);

    const NAMES: [(Self, &'static str); 13] = [
        (Self::OK_NODATA, "OK_NODATA"),
        (Self::OK_DISPLAY_INFO, "OK_DISPLAY_INFO"),
        (Self::OK_CAPSET_INFO, "OK_CAPSET_INFO"),
        (Self::OK_CAPSET, "OK_CAPSET"),
        (Self::OK_EDID, "OK_EDID"),
        (Self::OK_RESOURCE_UUID, "OK_RESOURCE_UUID"),
        (Self::OK_MAP_INFO, "OK_MAP_INFO"),
        (Self::ERR_UNSPEC, "ERR_UNSPEC"),
        (Self::ERR_OUT_OF_MEMORY, "ERR_OUT_OF_MEMORY"),
        (Self::ERR_INVALID_SCANOUT_ID, "ERR_INVALID_SCANOUT_ID"),
        (Self::ERR_INVALID_RESOURCE_ID, "ERR_INVALID_RESOURCE_ID"),
        (Self::ERR_INVALID_CONTEXT_ID, "ERR_INVALID_CONTEXT_ID"),
        (Self::ERR_INVALID_PARAMETER, "ERR_INVALID_PARAMETER"),
    ];

    /// True for the success range `0x1100..0x1200` (including OK codes this driver does not
    /// know).
    pub const fn is_ok(self) -> bool {
        self.0 >= 0x1100 && self.0 < 0x1200
    }

    /// True for the error range `0x1200..0x1300`. A value in neither range is garbage: it is
    /// neither OK nor an error, and [`parse_response`](super::parse_response) reports it as
    /// unexpected.
    pub const fn is_error(self) -> bool {
        self.0 >= 0x1200 && self.0 < 0x1300
    }

    /// The spec name of a known response, `None` for any other value.
    pub fn name(self) -> Option<&'static str> {
        lookup(&Self::NAMES, self)
    }
}

impl fmt::Debug for ResponseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ResponseType({:#x})", self.0),
        }
    }
}

/// A 2D resource pixel format (`VIRTIO_GPU_FORMAT_*`).
///
/// The names give the byte order in memory (`B8G8R8A8` = bytes B, G, R, A), as in the spec.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Format(pub u32);

impl Format {
    /// Bytes B, G, R, A. With `X` variants the fourth byte is ignored by the host.
    pub const B8G8R8A8_UNORM: Self = Self(1);
    /// Bytes B, G, R, unused; the format Windows desktops use (`D3DDDIFMT_X8R8G8B8`).
    pub const B8G8R8X8_UNORM: Self = Self(2);
    /// Bytes A, R, G, B.
    pub const A8R8G8B8_UNORM: Self = Self(3);
    /// Bytes unused, R, G, B.
    pub const X8R8G8B8_UNORM: Self = Self(4);
    /// Bytes R, G, B, A.
    pub const R8G8B8A8_UNORM: Self = Self(67);
    /// Bytes unused, B, G, R.
    pub const X8B8G8R8_UNORM: Self = Self(68);
    /// Bytes A, B, G, R.
    pub const A8B8G8R8_UNORM: Self = Self(121);
    /// Bytes R, G, B, unused.
    pub const R8G8B8X8_UNORM: Self = Self(134);

    const NAMES: [(Self, &'static str); 8] = [
        (Self::B8G8R8A8_UNORM, "B8G8R8A8_UNORM"),
        (Self::B8G8R8X8_UNORM, "B8G8R8X8_UNORM"),
        (Self::A8R8G8B8_UNORM, "A8R8G8B8_UNORM"),
        (Self::X8R8G8B8_UNORM, "X8R8G8B8_UNORM"),
        (Self::R8G8B8A8_UNORM, "R8G8B8A8_UNORM"),
        (Self::X8B8G8R8_UNORM, "X8B8G8R8_UNORM"),
        (Self::A8B8G8R8_UNORM, "A8B8G8R8_UNORM"),
        (Self::R8G8B8X8_UNORM, "R8G8B8X8_UNORM"),
    ];

    /// Bytes per pixel of a known format (all of them are 4), `None` for any other value.
    pub fn bytes_per_pixel(self) -> Option<u32> {
        self.name().map(|_| 4)
    }

    /// The spec name of a known format, `None` for any other value.
    pub fn name(self) -> Option<&'static str> {
        lookup(&Self::NAMES, self)
    }
}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Format({})", self.0),
        }
    }
}

fn lookup<T: PartialEq + Copy>(table: &[(T, &'static str)], value: T) -> Option<&'static str> {
    table.iter().find(|(v, _)| *v == value).map(|(_, n)| *n)
}
