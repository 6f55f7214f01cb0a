//! The portable core of viogpudo: everything the driver says to a virtio-gpu device, and
//! everything it computes about pixels and modes, without any Windows dependency.
//!
//! The same code runs in the Windows kernel (through the `nt` platform of the driver), in a
//! Linux test process against an independent virtio device, and in a small QEMU guest against
//! QEMU's own virtio-gpu. The platform reaches this crate only through the two traits in
//! [`hal`]: DMA memory and register access. Every value read back from the device is treated
//! as untrusted input and bounded before use; no code path reachable from device input panics.
#![no_std]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
// No heap operation that aborts when the allocator fails (clippy.toml lists them); a
// failed allocation must be an NTSTATUS (issue 8, rule 8).
#![cfg_attr(not(test), deny(clippy::disallowed_methods, clippy::disallowed_macros))]

extern crate alloc;

pub mod blit;
pub mod bring_up;
pub mod command;
pub mod cursor;
pub mod edid;
pub mod error;
pub mod escape;
pub mod fallible;
pub mod framebuffer;
pub mod gpu;
pub mod hal;
pub mod hardware_cursor;
pub mod modes;
pub mod present;
pub mod protocol;
pub mod resource_id;
pub mod scanout;
pub mod transfer_plan;
pub mod transport;
pub mod vga;
pub mod virtqueue;

pub use error::{Error, Result};
