//! The 2D and cursor request and response structures, byte for byte as the spec lays them out.
//!
//! Every struct is `#[repr(C)]` with explicit padding fields, so zerocopy can prove it has no
//! hidden padding (`IntoBytes`) and accepts any bit pattern (`FromBytes`); sizes are checked at
//! compile time against the spec. Fields are native `u32`/`u64`: see the module docs of
//! [`protocol`](super) for why that is little-endian.

use core::mem::size_of;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{CommandType, Format, ResponseType, VIRTIO_GPU_FLAG_FENCE};

/// The header that starts every request and every response (`virtio_gpu_ctrl_hdr`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct CtrlHeader {
    /// Command type in requests ([`CommandType`]), response type in responses
    /// ([`ResponseType`]).
    pub ty: u32,
    /// `VIRTIO_GPU_FLAG_*` bits.
    pub flags: u32,
    /// Fence id; with `VIRTIO_GPU_FLAG_FENCE` the device completes the request only after
    /// the command has been executed, and echoes the id.
    pub fence_id: u64,
    /// 3D context id (0 for 2D).
    pub ctx_id: u32,
    /// Context ring index (with `VIRTIO_GPU_FLAG_INFO_RING_IDX`; 3D only).
    pub ring_idx: u8,
    /// Reserved, zero.
    pub padding: [u8; 3],
}

impl CtrlHeader {
    /// A request header for `ty`, no fence, no context.
    pub const fn command(ty: CommandType) -> Self {
        Self {
            ty: ty.0,
            flags: 0,
            fence_id: 0,
            ctx_id: 0,
            ring_idx: 0,
            padding: [0; 3],
        }
    }

    /// A request header for `ty` that asks the device to complete it only after execution.
    pub const fn fenced(ty: CommandType, fence_id: u64) -> Self {
        Self {
            ty: ty.0,
            flags: VIRTIO_GPU_FLAG_FENCE,
            fence_id,
            ctx_id: 0,
            ring_idx: 0,
            padding: [0; 3],
        }
    }

    /// A response header of type `ty` (what a device writes; used by device models and tests).
    pub const fn response(ty: ResponseType) -> Self {
        Self {
            ty: ty.0,
            flags: 0,
            fence_id: 0,
            ctx_id: 0,
            ring_idx: 0,
            padding: [0; 3],
        }
    }

    /// `ty` read as a command type.
    pub const fn command_type(&self) -> CommandType {
        CommandType(self.ty)
    }

    /// `ty` read as a response type.
    pub const fn response_type(&self) -> ResponseType {
        ResponseType(self.ty)
    }
}

/// A rectangle in scanout or resource pixels (`virtio_gpu_rect`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Rect {
    /// A rectangle from its position and size.
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }
}

/// One scanout's entry in [`RespDisplayInfo`] (`virtio_gpu_display_one`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct DisplayOne {
    /// The preferred position and size of the scanout (the host window size).
    pub r: Rect,
    /// Non-zero when a display is connected to the scanout.
    pub enabled: u32,
    /// Reserved flags.
    pub flags: u32,
}

/// Response to `GET_DISPLAY_INFO` (`virtio_gpu_resp_display_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RespDisplayInfo {
    /// Response header (`OK_DISPLAY_INFO`).
    pub hdr: CtrlHeader,
    /// One entry per possible scanout; only the first `num_scanouts` are meaningful.
    pub pmodes: [DisplayOne; super::VIRTIO_GPU_MAX_SCANOUTS],
}

/// Request for `GET_EDID` (`virtio_gpu_get_edid`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GetEdid {
    /// Request header.
    pub hdr: CtrlHeader,
    /// The scanout whose EDID is wanted.
    pub scanout: u32,
    /// Reserved, zero.
    pub padding: u32,
}

impl GetEdid {
    /// The request for scanout `scanout`.
    pub const fn new(scanout: u32) -> Self {
        Self {
            hdr: CtrlHeader::command(CommandType::GET_EDID),
            scanout,
            padding: 0,
        }
    }
}

/// Response to `GET_EDID` (`virtio_gpu_resp_edid`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RespEdid {
    /// Response header (`OK_EDID`).
    pub hdr: CtrlHeader,
    /// Number of valid bytes in `edid` (device-written; see [`RespEdid::edid_bytes`]).
    pub size: u32,
    /// Reserved.
    pub padding: u32,
    /// The EDID blob, `size` bytes of it valid.
    pub edid: [u8; 1024],
}

impl RespEdid {
    /// The valid part of the EDID. A `size` beyond the 1024-byte array is a device fault.
    pub fn edid_bytes(&self) -> crate::Result<&[u8]> {
        usize::try_from(self.size)
            .ok()
            .and_then(|n| self.edid.get(..n))
            .ok_or(crate::Error::Malformed(
                "EDID size larger than the response",
            ))
    }
}

/// Request for `RESOURCE_CREATE_2D` (`virtio_gpu_resource_create_2d`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct ResourceCreate2d {
    /// Request header.
    pub hdr: CtrlHeader,
    /// The new resource's id (non-zero, chosen by the driver).
    pub resource_id: u32,
    /// A [`Format`] value.
    pub format: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl ResourceCreate2d {
    /// The request to create resource `resource_id`.
    pub const fn new(resource_id: u32, format: Format, width: u32, height: u32) -> Self {
        Self {
            hdr: CtrlHeader::command(CommandType::RESOURCE_CREATE_2D),
            resource_id,
            format: format.0,
            width,
            height,
        }
    }
}

/// Request for `RESOURCE_UNREF` (`virtio_gpu_resource_unref`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct ResourceUnref {
    /// Request header.
    pub hdr: CtrlHeader,
    /// The resource to destroy.
    pub resource_id: u32,
    /// Reserved, zero.
    pub padding: u32,
}

impl ResourceUnref {
    /// The request to destroy `resource_id`.
    pub const fn new(resource_id: u32) -> Self {
        Self {
            hdr: CtrlHeader::command(CommandType::RESOURCE_UNREF),
            resource_id,
            padding: 0,
        }
    }
}

/// Request for `SET_SCANOUT` (`virtio_gpu_set_scanout`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SetScanout {
    /// Request header.
    pub hdr: CtrlHeader,
    /// The part of the resource to show.
    pub r: Rect,
    /// The scanout to show it on.
    pub scanout_id: u32,
    /// The resource; 0 disables the scanout.
    pub resource_id: u32,
}

impl SetScanout {
    /// The request to show `r` of `resource_id` on `scanout_id`.
    pub const fn new(scanout_id: u32, resource_id: u32, r: Rect) -> Self {
        Self {
            hdr: CtrlHeader::command(CommandType::SET_SCANOUT),
            r,
            scanout_id,
            resource_id,
        }
    }
}

/// Request for `RESOURCE_FLUSH` (`virtio_gpu_resource_flush`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct ResourceFlush {
    /// Request header.
    pub hdr: CtrlHeader,
    /// The changed rectangle, in resource pixels.
    pub r: Rect,
    /// The resource that changed.
    pub resource_id: u32,
    /// Reserved, zero.
    pub padding: u32,
}

impl ResourceFlush {
    /// The request to flush `r` of `resource_id` to every scanout showing it.
    pub const fn new(resource_id: u32, r: Rect) -> Self {
        Self {
            hdr: CtrlHeader::command(CommandType::RESOURCE_FLUSH),
            r,
            resource_id,
            padding: 0,
        }
    }
}

/// Request for `TRANSFER_TO_HOST_2D` (`virtio_gpu_transfer_to_host_2d`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct TransferToHost2d {
    /// Request header.
    pub hdr: CtrlHeader,
    /// The rectangle to copy, in resource pixels.
    pub r: Rect,
    /// Byte offset of the rectangle's first pixel in the backing store.
    pub offset: u64,
    /// The destination resource.
    pub resource_id: u32,
    /// Reserved, zero.
    pub padding: u32,
}

impl TransferToHost2d {
    /// The request to copy `r` (starting at backing byte `offset`) into `resource_id`.
    pub const fn new(resource_id: u32, r: Rect, offset: u64) -> Self {
        Self {
            hdr: CtrlHeader::command(CommandType::TRANSFER_TO_HOST_2D),
            r,
            offset,
            resource_id,
            padding: 0,
        }
    }
}

/// Request for `RESOURCE_ATTACH_BACKING` (`virtio_gpu_resource_attach_backing`), followed
/// on the wire by `nr_entries` [`MemEntry`] items.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct ResourceAttachBacking {
    /// Request header.
    pub hdr: CtrlHeader,
    /// The resource getting the backing.
    pub resource_id: u32,
    /// Number of [`MemEntry`] items that follow.
    pub nr_entries: u32,
}

impl ResourceAttachBacking {
    /// The request header part; the caller appends `nr_entries` entries.
    pub const fn new(resource_id: u32, nr_entries: u32) -> Self {
        Self {
            hdr: CtrlHeader::command(CommandType::RESOURCE_ATTACH_BACKING),
            resource_id,
            nr_entries,
        }
    }
}

/// One guest-physical range of a resource's backing store (`virtio_gpu_mem_entry`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct MemEntry {
    /// Guest physical (bus) address.
    pub addr: u64,
    /// Length in bytes.
    pub length: u32,
    /// Reserved, zero.
    pub padding: u32,
}

impl MemEntry {
    /// The range `addr..addr + length`.
    pub const fn new(addr: u64, length: u32) -> Self {
        Self {
            addr,
            length,
            padding: 0,
        }
    }
}

/// Request for `RESOURCE_DETACH_BACKING` (`virtio_gpu_resource_detach_backing`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct ResourceDetachBacking {
    /// Request header.
    pub hdr: CtrlHeader,
    /// The resource losing its backing.
    pub resource_id: u32,
    /// Reserved, zero.
    pub padding: u32,
}

impl ResourceDetachBacking {
    /// The request to detach `resource_id`'s backing.
    pub const fn new(resource_id: u32) -> Self {
        Self {
            hdr: CtrlHeader::command(CommandType::RESOURCE_DETACH_BACKING),
            resource_id,
            padding: 0,
        }
    }
}

/// A cursor position on a scanout (`virtio_gpu_cursor_pos`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct CursorPos {
    /// The scanout the cursor is on.
    pub scanout_id: u32,
    /// Left edge of the cursor image (the hot spot is added by the host).
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Reserved, zero.
    pub padding: u32,
}

/// Request for `UPDATE_CURSOR` and `MOVE_CURSOR` (`virtio_gpu_update_cursor`), on the cursor
/// queue.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct UpdateCursor {
    /// Request header (`UPDATE_CURSOR` or `MOVE_CURSOR`).
    pub hdr: CtrlHeader,
    /// Where the cursor is.
    pub pos: CursorPos,
    /// The 64x64 cursor image resource; 0 hides the cursor. Ignored by `MOVE_CURSOR`.
    pub resource_id: u32,
    /// Hot spot x within the image. Ignored by `MOVE_CURSOR`.
    pub hot_x: u32,
    /// Hot spot y within the image. Ignored by `MOVE_CURSOR`.
    pub hot_y: u32,
    /// Reserved, zero.
    pub padding: u32,
}

impl UpdateCursor {
    /// `UPDATE_CURSOR`: new image `resource_id` (0 hides it) with hot spot, at `(x, y)`.
    pub const fn update(
        scanout_id: u32,
        x: u32,
        y: u32,
        resource_id: u32,
        hot_x: u32,
        hot_y: u32,
    ) -> Self {
        Self {
            hdr: CtrlHeader::command(CommandType::UPDATE_CURSOR),
            pos: CursorPos {
                scanout_id,
                x,
                y,
                padding: 0,
            },
            resource_id,
            hot_x,
            hot_y,
            padding: 0,
        }
    }

    /// `MOVE_CURSOR`: the current image to `(x, y)`.
    pub const fn move_to(scanout_id: u32, x: u32, y: u32) -> Self {
        Self {
            hdr: CtrlHeader::command(CommandType::MOVE_CURSOR),
            pos: CursorPos {
                scanout_id,
                x,
                y,
                padding: 0,
            },
            resource_id: 0,
            hot_x: 0,
            hot_y: 0,
            padding: 0,
        }
    }
}

/// The device-specific configuration space (`virtio_gpu_config`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GpuConfig {
    /// Pending `VIRTIO_GPU_EVENT_*` bits (read-only).
    pub events_read: u32,
    /// Write bits here to clear them in `events_read`.
    pub events_clear: u32,
    /// Number of scanouts, 1..=16 per spec (device-written: bound before use).
    pub num_scanouts: u32,
    /// Number of 3D capability sets.
    pub num_capsets: u32,
}

impl GpuConfig {
    /// Byte offset of `events_read` in the device config window.
    pub const EVENTS_READ_OFFSET: usize = core::mem::offset_of!(GpuConfig, events_read);
    /// Byte offset of `events_clear` in the device config window.
    pub const EVENTS_CLEAR_OFFSET: usize = core::mem::offset_of!(GpuConfig, events_clear);
    /// Byte offset of `num_scanouts` in the device config window.
    pub const NUM_SCANOUTS_OFFSET: usize = core::mem::offset_of!(GpuConfig, num_scanouts);
    /// Byte offset of `num_capsets` in the device config window.
    pub const NUM_CAPSETS_OFFSET: usize = core::mem::offset_of!(GpuConfig, num_capsets);
}

const _: () = assert!(size_of::<CtrlHeader>() == 24);
const _: () = assert!(size_of::<Rect>() == 16);
const _: () = assert!(size_of::<DisplayOne>() == 24);
const _: () = assert!(size_of::<RespDisplayInfo>() == 408);
const _: () = assert!(size_of::<GetEdid>() == 32);
const _: () = assert!(size_of::<RespEdid>() == 1056);
const _: () = assert!(size_of::<ResourceCreate2d>() == 40);
const _: () = assert!(size_of::<ResourceUnref>() == 32);
const _: () = assert!(size_of::<SetScanout>() == 48);
const _: () = assert!(size_of::<ResourceFlush>() == 48);
const _: () = assert!(size_of::<TransferToHost2d>() == 56);
const _: () = assert!(size_of::<ResourceAttachBacking>() == 32);
const _: () = assert!(size_of::<MemEntry>() == 16);
const _: () = assert!(size_of::<ResourceDetachBacking>() == 32);
const _: () = assert!(size_of::<CursorPos>() == 16);
const _: () = assert!(size_of::<UpdateCursor>() == 56);
const _: () = assert!(size_of::<GpuConfig>() == 16);
