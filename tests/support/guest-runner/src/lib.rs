//! The guest side of the QEMU end-to-end tests: a static Linux program started by the
//! initramfs, which drives QEMU's virtio-gpu-pci from user space and answers a line protocol
//! on a serial port (see `main.rs`).
//!
//! [`hosted`] is the guest platform the driver core runs on there: PCI configuration through
//! sysfs, register windows in an mmapped BAR, and DMA memory from a reserved physical range
//! through `/dev/mem`. [`probe`] is a temporary, self-contained virtio-gpu client that proves
//! the plumbing until `viogpu-common`'s transport and virtqueue take its place.
#![cfg(target_os = "linux")]

pub mod hosted;
pub mod probe;
