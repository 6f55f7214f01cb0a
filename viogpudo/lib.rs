//! viogpudo: a WDDM display-only miniport driver (KMDOD) for the virtio-gpu device.
#![no_std]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

extern crate alloc;
#[cfg(not(windows))]
extern crate std;

#[cfg(windows)]
extern crate wdk_panic;

/// Kernel pool allocator for `alloc` on Windows.
#[cfg(windows)]
#[global_allocator]
static GLOBAL_ALLOCATOR: wdk_alloc::WdkAllocator = wdk_alloc::WdkAllocator;

pub mod adapter;
pub mod ddi;
pub mod entry;
pub mod os;
pub mod thunks;
