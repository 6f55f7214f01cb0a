//! The virtio-gpu wire protocol (virtio 1.2 §5.7), 2D, guest-blob and cursor subset: request and
//! response structures, command/response/format codes, feature bits, the device config
//! layout, and the one checked way to read a response the device wrote.
//!
//! Byte order: the spec defines every field as little-endian. The structures use native
//! `u32`/`u64` fields instead of `zerocopy::little_endian` wrappers, because every target this
//! driver runs on (x86_64 and aarch64 Windows, the Linux test hosts) is little-endian; this
//! keeps field access plain. A big-endian build is refused at compile time below rather than
//! silently speaking the wrong byte order.
//!
//! Guest-memory blob resources and their scanout command are in `blob`; 3D commands
//! (contexts, capsets, host blobs) are not modelled beyond their codes.

mod blob;
mod codes;
mod wire;

use core::mem::size_of;

use zerocopy::{FromBytes, Immutable, KnownLayout};

use crate::modes::MAX_DIMENSION;
use crate::{Error, Result};

pub use blob::{
    ResourceCreateBlob, SetScanoutBlob, BLOB_FLAG_USE_MAPPABLE, BLOB_FLAG_USE_SHAREABLE,
    BLOB_MEM_GUEST,
};
pub use codes::{CommandType, Format, ResponseType};
pub use wire::{
    CtrlHeader, CursorPos, DisplayOne, GetEdid, GpuConfig, MemEntry, Rect, ResourceAttachBacking,
    ResourceCreate2d, ResourceDetachBacking, ResourceFlush, ResourceUnref, RespDisplayInfo,
    RespEdid, SetScanout, TransferToHost2d, UpdateCursor,
};

#[cfg(not(target_endian = "little"))]
compile_error!("viogpu-common's wire types assume a little-endian target (see protocol docs)");

/// The virtio device id of a GPU.
pub const VIRTIO_ID_GPU: u16 = 16;
/// Index of the control queue.
pub const CONTROL_QUEUE: u16 = 0;
/// Index of the cursor queue.
pub const CURSOR_QUEUE: u16 = 1;

/// The most scanouts a device can have; the size of [`RespDisplayInfo::pmodes`].
pub const VIRTIO_GPU_MAX_SCANOUTS: usize = 16;

/// Header flag: complete the request only after the command executed, echoing `fence_id`.
pub const VIRTIO_GPU_FLAG_FENCE: u32 = 1 << 0;
/// Header flag: `ring_idx` is valid (3D contexts only).
pub const VIRTIO_GPU_FLAG_INFO_RING_IDX: u32 = 1 << 1;

/// `events_read` bit: the display configuration changed; send `GET_DISPLAY_INFO` again.
pub const VIRTIO_GPU_EVENT_DISPLAY: u32 = 1 << 0;

/// Feature bit number (not mask): 3D mode (virgl).
pub const VIRTIO_GPU_F_VIRGL: u32 = 0;
/// Feature bit number: `GET_EDID` is supported.
pub const VIRTIO_GPU_F_EDID: u32 = 1;
/// Feature bit number: `RESOURCE_ASSIGN_UUID` is supported.
pub const VIRTIO_GPU_F_RESOURCE_UUID: u32 = 2;
/// Feature bit number: blob resources are supported.
pub const VIRTIO_GPU_F_RESOURCE_BLOB: u32 = 3;
/// Feature bit number: multiple context types and ring indexes.
pub const VIRTIO_GPU_F_CONTEXT_INIT: u32 = 4;

/// A response structure the device writes, tied to the OK type that announces it.
pub trait Response: FromBytes + KnownLayout + Immutable + Sized {
    /// The response type a successful answer carries.
    const OK: ResponseType;
}

/// `OK_NODATA`: the header alone.
impl Response for CtrlHeader {
    const OK: ResponseType = ResponseType::OK_NODATA;
}

impl Response for RespDisplayInfo {
    const OK: ResponseType = ResponseType::OK_DISPLAY_INFO;
}

impl Response for RespEdid {
    const OK: ResponseType = ResponseType::OK_EDID;
}

/// Reads a response of type `T` from the bytes the device wrote (`bytes` must be only the
/// written part, i.e. cut to the used length the device reported).
///
/// The header is checked first, because an error answer is only a header, whatever the
/// command:
/// - fewer than 24 bytes: [`Error::ShortResponse`];
/// - an error type (`0x1200..0x1300`): [`Error::DeviceError`] with the raw type;
/// - any type other than `T::OK`: [`Error::UnexpectedResponse`] with the raw type;
/// - an OK of the right type but shorter than `T`: [`Error::ShortResponse`].
///
/// Extra trailing bytes are ignored.
pub fn parse_response<T: Response>(bytes: &[u8]) -> Result<T> {
    let (hdr, _) = CtrlHeader::read_from_prefix(bytes).map_err(|_| Error::ShortResponse)?;
    let ty = hdr.response_type();
    if ty.is_error() {
        return Err(Error::DeviceError(ty.0));
    }
    if ty != T::OK {
        return Err(Error::UnexpectedResponse(ty.0));
    }
    if bytes.len() < size_of::<T>() {
        return Err(Error::ShortResponse);
    }
    T::read_from_prefix(bytes)
        .map(|(t, _)| t)
        .map_err(|_| Error::ShortResponse)
}

/// Checks an `OK_NODATA` answer (the response of most 2D commands).
pub fn check_nodata(bytes: &[u8]) -> Result<()> {
    parse_response::<CtrlHeader>(bytes).map(|_| ())
}

/// A connected scanout with a usable preferred size, from [`RespDisplayInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnabledDisplay {
    /// The scanout index (`< 16`).
    pub scanout_id: u32,
    /// The preferred position and size, both sides in `1..=MAX_DIMENSION`.
    pub rect: Rect,
}

impl RespDisplayInfo {
    /// The enabled scanouts among the first `num_scanouts` (bounded by 16, since the value
    /// comes from the device), skipping any whose size is zero or larger than
    /// [`MAX_DIMENSION`] on a side.
    pub fn enabled_displays(&self, num_scanouts: u32) -> impl Iterator<Item = EnabledDisplay> + '_ {
        let count = usize::try_from(num_scanouts)
            .unwrap_or(0)
            .min(VIRTIO_GPU_MAX_SCANOUTS);
        self.pmodes
            .iter()
            .take(count)
            .zip(0u32..)
            .filter(|(one, _)| one.enabled != 0 && sane_size(one.r.width, one.r.height))
            .map(|(one, scanout_id)| EnabledDisplay {
                scanout_id,
                rect: one.r,
            })
    }

    /// The preferred `(width, height)` of `scanout_id` if it is enabled and sane.
    pub fn preferred_size(&self, scanout_id: u32) -> Option<(u32, u32)> {
        let one = self.pmodes.get(usize::try_from(scanout_id).ok()?)?;
        (one.enabled != 0 && sane_size(one.r.width, one.r.height))
            .then_some((one.r.width, one.r.height))
    }
}

fn sane_size(width: u32, height: u32) -> bool {
    (1..=MAX_DIMENSION).contains(&width) && (1..=MAX_DIMENSION).contains(&height)
}

#[cfg(test)]
mod tests;
