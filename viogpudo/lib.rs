//! viogpudo: a WDDM display-only miniport driver (KMDOD) for the virtio-gpu device.
#![no_std]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(not(windows))]
extern crate std;

pub mod ddi;
pub mod os;
pub mod vidpn;
