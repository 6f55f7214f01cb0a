//! The `hosted` guest platform: what the dxgkrnl simulator needs to run the driver on a PCI
//! virtio device from user space in a small Linux guest, without a kernel driver and without
//! interrupts.
//!
//! - [`pci`]: the PCI function through sysfs (find it, enable memory decoding, bus mastering
//!   and MSI-X, configuration space, BAR placement).
//! - [`bar`]: a range of a BAR mapped through sysfs `resourceN`, with bounds-checked volatile
//!   register accesses.
//! - [`dma`]: [`dma::DevMemHal`], DMA memory in a physical range reserved with `memmap=` on the
//!   kernel command line, mapped through `/dev/mem`.
//! - [`machine`]: [`machine::GuestMachine`], the simulator's `Machine` over all of the above,
//!   with interrupts synthesised from what the device wrote to the rings.
//!
//! Setup steps return `std::io::Error`s with messages that name the file and the value that
//! was wrong; the machine's trait methods keep the simulator's no-panic contracts.

pub mod bar;
pub mod dma;
pub mod machine;
pub mod pci;
