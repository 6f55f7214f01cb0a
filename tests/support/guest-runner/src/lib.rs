//! The guest side of the QEMU end-to-end tests: a static Linux program started by the
//! initramfs, which loads the driver (`viogpudo`) through the dxgkrnl simulator
//! (`dxgkrnl-sim`) onto QEMU's real virtio-gpu-pci and answers a line protocol on a serial
//! port (see `main.rs`).
//!
//! [`hosted`] is the simulated PC's hardware there: PCI configuration through sysfs, BAR
//! ranges mmapped from sysfs, DMA memory from a reserved physical range through `/dev/mem`,
//! and the [`hosted::machine::GuestMachine`] the simulator runs on. [`scene`] defines what the
//! runner draws, shared with the host tests that check the pixels.
#![cfg(target_os = "linux")]
// Test doubles of OS and device memory: raw-pointer sequences here keep one SAFETY comment
// per block; the shipped crates (the driver, viogpu-common) split every unsafe operation.
#![allow(clippy::multiple_unsafe_ops_per_block)]

pub mod hosted;
pub mod scene;
