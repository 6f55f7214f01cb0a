//! The `hosted` guest platform: what a user-space driver in a small Linux guest needs to drive
//! a PCI virtio device without a kernel driver and without interrupts.
//!
//! - [`pci`]: the PCI function through sysfs (find it, enable memory decoding and bus
//!   mastering, configuration space as the core's `PciConfigAccess`).
//! - [`bar`]: a BAR mapped through sysfs `resourceN`, as a [`bar::RegisterWindow`] that
//!   implements [`viogpu_common::hal::RegisterAccess`].
//! - [`dma`]: [`dma::DevMemHal`], DMA memory in a physical range reserved with `memmap=` on the
//!   kernel command line, mapped through `/dev/mem`, implementing [`viogpu_common::hal::Hal`].
//! - [`platform`]: [`platform::PollingPlatform`], the core's `Platform` with a monotonic
//!   clock and polling instead of interrupts.
//! - [`device`]: the virtio-gpu function opened and its core transport built
//!   ([`device::VirtioGpuFunction`]), ready for `viogpu_common::bring_up::bring_up`.
//!
//! Setup steps return `std::io::Error`s with messages that name the file and the value that
//! was wrong; the core traits keep their own no-panic contracts.

pub mod bar;
pub mod device;
pub mod dma;
pub mod pci;
pub mod platform;
