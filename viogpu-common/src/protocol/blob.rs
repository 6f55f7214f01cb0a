//! Blob resources (virtio 1.2 §5.7.6.8, `VIRTIO_GPU_F_RESOURCE_BLOB`): a resource whose
//! pixels the host reads in place from guest memory, and the scanout command that shows one.
//!
//! Only the guest-memory kind is used: `RESOURCE_CREATE_BLOB` with
//! [`BLOB_MEM_GUEST`] names the guest pages (inline mem entries, as ATTACH_BACKING would), and
//! `SET_SCANOUT_BLOB` tells the host the layout (format, size, stride, offset) to read them
//! with. A present then needs no `TRANSFER_TO_HOST_2D`: the host's picture *is* the guest
//! framebuffer, and `RESOURCE_FLUSH` only says which part changed.

use core::mem::size_of;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{CommandType, CtrlHeader, Format, Rect};

/// `blob_mem`: the resource is guest memory only (no host allocation).
pub const BLOB_MEM_GUEST: u32 = 1;
/// `blob_flags`: the resource may be mapped by the guest (host memory blobs only).
pub const BLOB_FLAG_USE_MAPPABLE: u32 = 1 << 0;
/// `blob_flags`: the resource may be shared (with other contexts, or exported by the host,
/// e.g. as a dma-buf for its display). Linux's driver sets it on its guest-memory scanout
/// buffers, so it is what every device implementing blobs accepts for them.
pub const BLOB_FLAG_USE_SHAREABLE: u32 = 1 << 1;

/// Request for `RESOURCE_CREATE_BLOB` (`virtio_gpu_resource_create_blob`), followed on the
/// wire by `nr_entries` [`MemEntry`](super::MemEntry) items for guest-memory blobs.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct ResourceCreateBlob {
    /// Request header.
    pub hdr: CtrlHeader,
    /// The new resource's id (non-zero, chosen by the driver).
    pub resource_id: u32,
    /// Where the memory lives ([`BLOB_MEM_GUEST`]).
    pub blob_mem: u32,
    /// `BLOB_FLAG_*` bits.
    pub blob_flags: u32,
    /// Number of mem entries that follow.
    pub nr_entries: u32,
    /// Host object id (3D blobs only; 0 here).
    pub blob_id: u64,
    /// Size of the blob in bytes: the sum of the entries' lengths.
    pub size: u64,
}

impl ResourceCreateBlob {
    /// The request header part for a guest-memory blob of `size` bytes in `nr_entries`
    /// entries (the caller appends them).
    pub const fn guest(resource_id: u32, nr_entries: u32, size: u64) -> Self {
        Self {
            hdr: CtrlHeader::command(CommandType::RESOURCE_CREATE_BLOB),
            resource_id,
            blob_mem: BLOB_MEM_GUEST,
            blob_flags: BLOB_FLAG_USE_SHAREABLE,
            nr_entries,
            blob_id: 0,
            size,
        }
    }
}

/// Request for `SET_SCANOUT_BLOB` (`virtio_gpu_set_scanout_blob`): show `r` of a blob read
/// as a `width` x `height` picture in `format`, plane 0 at `offsets[0]` with `strides[0]`
/// bytes per row.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SetScanoutBlob {
    /// Request header.
    pub hdr: CtrlHeader,
    /// The part of the picture to show.
    pub r: Rect,
    /// The scanout to show it on.
    pub scanout_id: u32,
    /// The blob resource (0 disables the scanout).
    pub resource_id: u32,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in rows.
    pub height: u32,
    /// A [`Format`] value.
    pub format: u32,
    /// Reserved, zero.
    pub padding: u32,
    /// Bytes per row of each plane (only plane 0 for the packed formats).
    pub strides: [u32; 4],
    /// Byte offset of each plane in the blob.
    pub offsets: [u32; 4],
}

impl SetScanoutBlob {
    /// Shows `r` of blob `resource_id`, one packed plane at offset 0 with `stride` bytes per
    /// row, on `scanout_id`.
    pub const fn new(
        scanout_id: u32,
        resource_id: u32,
        format: Format,
        (width, height): (u32, u32),
        stride: u32,
        r: Rect,
    ) -> Self {
        Self {
            hdr: CtrlHeader::command(CommandType::SET_SCANOUT_BLOB),
            r,
            scanout_id,
            resource_id,
            width,
            height,
            format: format.0,
            padding: 0,
            strides: [stride, 0, 0, 0],
            offsets: [0; 4],
        }
    }
}

const _: () = assert!(size_of::<ResourceCreateBlob>() == 56);
const _: () = assert!(size_of::<SetScanoutBlob>() == 96);
