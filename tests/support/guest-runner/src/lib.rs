//! The guest side of the QEMU end-to-end tests: a static Linux program started by the
//! initramfs, which drives QEMU's virtio-gpu-pci from user space with the driver core
//! (`viogpu-common`) and answers a line protocol on a serial port (see `main.rs`).
//!
//! [`hosted`] is the guest platform the core runs on there: PCI configuration through sysfs,
//! register windows in an mmapped BAR, DMA memory from a reserved physical range through
//! `/dev/mem`, and a polling `Platform` (no interrupts). [`scene`] defines what the runner
//! draws, shared with the host tests that check the pixels.
#![cfg(target_os = "linux")]

pub mod hosted;
pub mod scene;
