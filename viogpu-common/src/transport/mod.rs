//! The virtio PCI modern transport: how the driver finds, resets, negotiates with and talks
//! to a virtio device over PCI, independent of any operating system.
//!
//! The transport owns three things: the capability walk that locates the virtio structures in
//! PCI config space ([`VirtioPciLayout::discover`], over the [`PciConfigAccess`] trait), the
//! register protocol of the common configuration structure (status handshake, feature
//! negotiation, virtqueue setup, MSI-X vectors; [`VirtioPciTransport`]), and the consistent
//! reading of the device-specific configuration (config generation, the virtio-gpu fields).
//!
//! Mapping BARs is the platform's job. The platform maps each BAR that the layout names (the
//! Windows driver with `DxgkCbMapMemory` of the BAR's translated resource, a Linux guest with
//! `mmap` of `/sys/bus/pci/devices/*/resourceN`) and hands the transport one
//! [`RegisterAccess`](crate::hal::RegisterAccess) window per structure, each starting at the
//! structure's first byte. [`RegionWindow`] cuts such a window out of a whole-BAR mapping, so
//! a platform only ever needs "a mapping of BAR n". Every device-provided value (capability
//! offsets and lengths, queue sizes, notify offsets, num_scanouts) is bounded before use: a
//! device that answers garbage gets an [`Error`](crate::Error), never a panic or an access
//! outside its windows.

mod capability;
mod gpu_config;
mod pci_transport;
mod window;

#[cfg(test)]
mod tests;

pub use capability::{
    read_bar, Bar, BarKind, PciConfigAccess, Region, VirtioPciLayout, COMMON_CFG_LEN,
    GPU_DEVICE_CFG_LEN, VIRTIO_GPU_PCI_DEVICE_ID, VIRTIO_PCI_VENDOR_ID,
};
pub use gpu_config::{DeviceConfig, GpuConfig, GpuEvents, MAX_CAPSETS, MAX_SCANOUTS};
pub use pci_transport::{
    status_register_absent, QueueConfig, QueueSetup, VirtioPciTransport, VirtioPciWindows,
    MAX_QUEUES, NO_VECTOR,
};
pub use window::RegionWindow;

bitflags::bitflags! {
    /// Virtio feature bits (device-independent ones and the virtio-gpu ones).
    ///
    /// Unknown bits are kept (`from_bits_retain`) when reading what a device offers, so a
    /// feature word round-trips unchanged.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Features: u64 {
        /// virtio-gpu: 3D mode (virgl). Never requested by a display-only driver.
        const GPU_VIRGL = 1 << 0;
        /// virtio-gpu: the device answers GET_EDID.
        const GPU_EDID = 1 << 1;
        /// virtio-gpu: resources can carry UUIDs.
        const GPU_RESOURCE_UUID = 1 << 2;
        /// virtio-gpu: blob resources. The driver takes it when offered: its framebuffers are
        /// then guest-memory blobs the host reads in place (no TRANSFER_TO_HOST_2D).
        const GPU_RESOURCE_BLOB = 1 << 3;
        /// virtio-gpu: context init.
        const GPU_CONTEXT_INIT = 1 << 4;
        /// The driver may use indirect descriptors.
        const RING_INDIRECT_DESC = 1 << 28;
        /// used_event / avail_event notification suppression.
        const RING_EVENT_IDX = 1 << 29;
        /// Virtio 1.x (non-legacy) device; required.
        const VERSION_1 = 1 << 32;
        /// VIRTIO_F_ACCESS_PLATFORM: the device's memory accesses are translated or limited
        /// by the platform (an IOMMU, or memory encryption), so the driver must give it
        /// addresses from the platform's DMA API.
        ///
        /// **Never negotiated**, whatever a caller asks for
        /// ([`VirtioPciTransport::negotiate`] strips it): the driver gives the device the
        /// guest-physical addresses of its memory (on Windows `MmGetPhysicalAddress`, which
        /// its page says not to use for DMA), and that is correct only while the device sees
        /// guest-physical addresses, which the spec promises exactly when this bit is not
        /// negotiated. A device that offers it but works without it (FEATURES_OK kept) is
        /// driven with guest-physical addresses; one that refuses FEATURES_OK without it
        /// (QEMU's `iommu_platform=on`) is refused with [`Error::AccessPlatformRequired`].
        ///
        /// [`Error::AccessPlatformRequired`]: crate::Error::AccessPlatformRequired
        const ACCESS_PLATFORM = 1 << 33;
        /// Packed virtqueue layout. Not requested.
        const RING_PACKED = 1 << 34;
        /// Buffers are used in the order they are made available. Not requested.
        const IN_ORDER = 1 << 35;
        /// Memory ordering as on the real platform. Not requested.
        const ORDER_PLATFORM = 1 << 36;
        /// SR-IOV. Not requested.
        const SR_IOV = 1 << 37;
        /// The driver passes extra data in notifications. Not requested (notify writes
        /// only the queue index).
        const NOTIFICATION_DATA = 1 << 38;
        /// Device-chosen notification data. Not requested.
        const NOTIF_CONFIG_DATA = 1 << 39;
        /// Per-queue reset. Not requested.
        const RING_RESET = 1 << 40;
    }
}

impl Features {
    /// What the display-only driver asks a virtio-gpu device for (never
    /// [`ACCESS_PLATFORM`](Self::ACCESS_PLATFORM): see there).
    pub const GPU_DRIVER: Features = Features::VERSION_1
        .union(Features::RING_INDIRECT_DESC)
        .union(Features::RING_EVENT_IDX)
        .union(Features::GPU_EDID)
        .union(Features::GPU_RESOURCE_BLOB);
}

bitflags::bitflags! {
    /// The device status register (common configuration `device_status`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct DeviceStatus: u8 {
        /// The driver has found the device.
        const ACKNOWLEDGE = 1;
        /// The driver knows how to drive the device.
        const DRIVER = 2;
        /// The driver is set up and ready to drive the device.
        const DRIVER_OK = 4;
        /// Feature negotiation is complete.
        const FEATURES_OK = 8;
        /// The device hit an error it cannot recover from without a reset.
        const DEVICE_NEEDS_RESET = 0x40;
        /// The driver gave up on the device.
        const FAILED = 0x80;
    }
}

bitflags::bitflags! {
    /// The ISR status byte (read-to-clear). Only meaningful for INTx; with MSI-X the vector
    /// says which event fired.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct IsrStatus: u8 {
        /// A virtqueue has used buffers.
        const QUEUE = 1;
        /// The device configuration changed.
        const CONFIG = 2;
    }
}
