//! Test support: an emulated virtio-gpu PCI device over rust-vmm's `virtio-queue` and
//! `vm-memory`, so the driver's transport and queues run against a device end written by
//! someone else.
//!
//! [`pci`] is the PCI function and virtio transport shell (config space, BAR registers,
//! queue objects, interrupts); [`gpu`] is the host side of virtio-gpu with QEMU's rules
//! (resources, backing, scanouts, cursor, rendering, fault injection), plugged into the shell
//! as its [`QueueHandler`]. [`GuestMemoryHal`] provides DMA memory out of `vm-memory` guest
//! RAM, which the device side reads and writes by guest physical address. [`testbed`] puts
//! them together with the core's device layer.
// Test doubles of OS and device memory: raw-pointer sequences here keep one SAFETY comment
// per block; the shipped crates (the driver, viogpu-common) split every unsafe operation.
#![allow(clippy::multiple_unsafe_ops_per_block)]

pub mod gpu;
pub mod guest_memory;
pub mod pci;
pub mod testbed;
pub mod vga;

pub use gpu::{
    CommandRecord, Corruption, CursorState, EdidFault, FlushRecord, GpuBackend, GpuConfig, Image,
    PreferredDisplay, ResourceInfo, TransferRecord,
};
pub use guest_memory::GuestMemoryHal;
pub use pci::{
    BarWindow, Interrupt, ModelConfig, PciConfigSpace, QueueHandler, VirtioGpuPci, EVENT_DISPLAY,
};
