//! Test support: an emulated virtio-gpu PCI device over rust-vmm's `virtio-queue` and
//! `vm-memory`, so the driver's transport and queues run against a device end written by
//! someone else.
//!
//! [`pci`] is the PCI function and virtio transport shell (config space, BAR registers,
//! queue objects, interrupts); GPU command processing plugs in through [`QueueHandler`].
//! [`GuestMemoryHal`] provides DMA memory out of `vm-memory` guest RAM, which the device side
//! reads and writes by guest physical address.

pub mod guest_memory;
pub mod pci;

pub use guest_memory::GuestMemoryHal;
pub use pci::{
    BarWindow, Interrupt, ModelConfig, PciConfigSpace, QueueHandler, VirtioGpuPci, EVENT_DISPLAY,
};
