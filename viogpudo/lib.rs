//! viogpudo: a WDDM display-only miniport driver (KMDOD) for the virtio-gpu device.
#![no_std]

#[cfg(not(windows))]
extern crate std;

pub mod ddi;
