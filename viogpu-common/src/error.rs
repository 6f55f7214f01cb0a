//! The one error type of the core crate.
//!
//! Errors are split by who caused them: the platform (no DMA memory), the OS side of the
//! driver (an argument that breaks a contract, such as a rectangle outside its surface), or the
//! device (a malformed or hostile answer). The driver maps each variant to an NTSTATUS; device
//! errors are bounded, logged failures, never panics.

use core::fmt;

/// Result alias used throughout the crate.
pub type Result<T> = core::result::Result<T, Error>;

/// Everything that can go wrong in the portable core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // --- platform ---
    /// The platform could not provide (contiguous) DMA memory of the requested size.
    NoDmaMemory,
    /// A bookkeeping allocation (heap) failed or a fixed-capacity table is full.
    NoMemory,

    // --- caller (the OS side of the driver) ---
    /// An argument breaks the documented contract (zero size, unaligned, unknown id, ...).
    InvalidArgument,
    /// A rectangle or offset lies (partly) outside the surface or buffer it refers to.
    OutOfBounds,
    /// The requested mode is larger than anything the device or the platform can back.
    ModeTooLarge,
    /// The pixel format is not one the driver supports.
    UnsupportedFormat,
    /// The queue has no room for the request right now; nothing was posted.
    QueueFull,
    /// The request needs more descriptors than the queue can ever hold.
    ChainTooLong,
    /// All resource ids are in use.
    ResourceIdsExhausted,
    /// A lock the polled (bugcheck) path needs is held by a processor that may never release
    /// it; the work was skipped.
    Busy,

    // --- device ---
    /// The device did not complete the request in time. The request was abandoned and its
    /// buffers stay owned by the queue until the device returns them or is reset.
    Timeout,
    /// The device returned a used-ring id that is not a request in flight.
    BadUsedId {
        /// The id the device wrote.
        id: u32,
    },
    /// The device reported more bytes written than the writable part of the request holds.
    BadUsedLength {
        /// The length the device wrote.
        len: u32,
        /// The size of the writable part.
        max: u32,
    },
    /// The device's used index moved by more than the number of requests in flight.
    BadUsedIndex,
    /// The response is shorter than its type requires.
    ShortResponse,
    /// The device answered with an error response (the raw virtio-gpu response type).
    DeviceError(u32),
    /// The device answered with a response type that does not fit the command.
    UnexpectedResponse(u32),
    /// The device rejected the negotiated features or failed its status handshake.
    FeaturesRejected,
    /// The device offers VIRTIO_F_ACCESS_PLATFORM and refused FEATURES_OK without it: it sits
    /// behind an IOMMU (or otherwise translates DMA addresses) and needs addresses from the
    /// platform's DMA API, which this driver does not use (it hands the device guest-physical
    /// addresses; see `transport::Features::ACCESS_PLATFORM`).
    AccessPlatformRequired,
    /// The device set DEVICE_NEEDS_RESET or is otherwise unusable until reset.
    DeviceNeedsReset,
    /// A required virtio PCI capability is missing or malformed.
    BadCapability,
    /// The device does not offer this virtqueue (it reports queue size 0).
    QueueUnavailable(u16),
    /// A device-provided table (EDID, display info) is malformed.
    Malformed(&'static str),
}

impl Error {
    /// True when the fault lies with the device (and should be logged as such), not the caller.
    pub const fn is_device_fault(&self) -> bool {
        matches!(
            self,
            Error::Timeout
                | Error::BadUsedId { .. }
                | Error::BadUsedLength { .. }
                | Error::BadUsedIndex
                | Error::ShortResponse
                | Error::DeviceError(_)
                | Error::UnexpectedResponse(_)
                | Error::FeaturesRejected
                | Error::AccessPlatformRequired
                | Error::DeviceNeedsReset
                | Error::BadCapability
                | Error::QueueUnavailable(_)
                | Error::Malformed(_)
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoDmaMemory => f.write_str("no contiguous DMA memory"),
            Error::NoMemory => f.write_str("out of memory"),
            Error::InvalidArgument => f.write_str("invalid argument"),
            Error::OutOfBounds => f.write_str("rectangle or offset out of bounds"),
            Error::ModeTooLarge => f.write_str("mode too large for the device"),
            Error::UnsupportedFormat => f.write_str("unsupported pixel format"),
            Error::QueueFull => f.write_str("virtqueue full"),
            Error::ChainTooLong => f.write_str("descriptor chain longer than the queue"),
            Error::ResourceIdsExhausted => f.write_str("resource ids exhausted"),
            Error::Busy => f.write_str("queue held by another processor"),
            Error::Timeout => f.write_str("device did not answer in time"),
            Error::BadUsedId { id } => write!(f, "device returned unknown used id {id}"),
            Error::BadUsedLength { len, max } => {
                write!(f, "device wrote {len} bytes into a {max}-byte buffer")
            }
            Error::BadUsedIndex => f.write_str("device used index ran ahead of the driver"),
            Error::ShortResponse => f.write_str("device response too short"),
            Error::DeviceError(t) => write!(f, "device error response {t:#x}"),
            Error::UnexpectedResponse(t) => write!(f, "unexpected device response {t:#x}"),
            Error::FeaturesRejected => f.write_str("device rejected the negotiated features"),
            Error::AccessPlatformRequired => f.write_str(
                "device requires VIRTIO_F_ACCESS_PLATFORM (DMA through an IOMMU); \
                 the driver gives it guest-physical addresses and cannot drive it",
            ),
            Error::DeviceNeedsReset => f.write_str("device needs reset"),
            Error::BadCapability => f.write_str("missing or malformed virtio PCI capability"),
            Error::QueueUnavailable(q) => write!(f, "device does not offer virtqueue {q}"),
            Error::Malformed(what) => write!(f, "malformed device data: {what}"),
        }
    }
}
