//! Test support: a virtio-gpu device model over virtio-queue and vm-memory.
//!
//! [`gpu`] is the host side of the device: it executes the 2D and cursor commands the way
//! QEMU does, keeps what each scanout shows, and injects faults on request.

pub mod gpu;

pub use gpu::{
    CommandRecord, Corruption, CursorState, FlushRecord, GpuBackend, GpuConfig, Image,
    PreferredDisplay, ResourceInfo, TransferRecord,
};
