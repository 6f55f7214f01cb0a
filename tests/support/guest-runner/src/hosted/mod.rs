//! The `hosted` guest platform: what a user-space driver in a small Linux guest needs to drive
//! a PCI virtio device without a kernel driver.
//!
//! - [`pci`]: the PCI function through sysfs (find it, enable memory decoding and bus
//!   mastering, read the virtio vendor capabilities).
//! - [`bar`]: a BAR mapped through sysfs `resourceN`, cut into [`bar::RegisterWindow`]s that
//!   implement [`viogpu_common::hal::RegisterAccess`].
//! - [`dma`]: [`dma::DevMemHal`], DMA memory in a physical range reserved with `memmap=` on the
//!   kernel command line, mapped through `/dev/mem`, implementing [`viogpu_common::hal::Hal`].
//!
//! Setup steps return `std::io::Error`s with messages that name the file and the value that
//! was wrong; the two traits keep their own no-panic contracts.

pub mod bar;
pub mod dma;
pub mod pci;
