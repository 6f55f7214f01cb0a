//! A dxgkrnl simulator: loads a WDDM display-only miniport driver through its
//! `KMDDOD_INITIALIZATION_DATA` and plays the Windows graphics kernel around it — the
//! `DXGKRNL_INTERFACE` callbacks, the VidPN and monitor interfaces, interrupt and DPC delivery,
//! and the DDI call sequences of boot, mode change, present, pointer, power, bugcheck and
//! stop/remove — on a simulated PC.
//!
//! Layers:
//! - [`machine`]: what the PC provides (config space, BARs and their mappings, DMA memory,
//!   interrupts, a clock). [`ModelMachine`] is the in-process PC around the virtio-gpu device
//!   model; a machine over a real virtio-gpu-pci function serves the QEMU guest runner.
//! - the hosted OS environment ([`SimEnv`]): the driver's `os::hosted` services over the
//!   machine, where waiting lets the device's interrupts preempt the driver.
//! - [`user_memory`]: the simulated process's user-mode memory, where present surfaces live
//!   (`PROT_NONE` until the driver probes and locks them).
//! - [`Sim`]: dxgkrnl itself, with the callbacks (private `callbacks` module), the resource
//!   list ([`resources`]) and the VidPN object model ([`vidpn`]).
//!
//! Windows' rules: every DDI runs at its documented IRQL and synchronization level (`sync`),
//! callbacks and the hosted kernel services check the IRQL they are called at, and a broken
//! rule ([`Event::Violation`]) fails the test when the [`Sim`] is dropped. [`OsThread`] calls
//! the driver from other threads, as Windows does.
//!
//! A scenario: `Sim::load(viogpudo::entry::initialization_data(), machine)?`, then
//! [`Sim::boot`], [`Sim::set_mode`], [`Sim::present`], ... and checks on
//! [`Sim::machine`] (pixels, host resources, DMA bytes) and on the recorded [`Event`]s.
// Test doubles of OS and device memory: raw-pointer sequences here keep one SAFETY comment
// per block; the shipped crates (the driver, viogpu-common) split every unsafe operation.
#![allow(clippy::multiple_unsafe_ops_per_block)]

mod adapter;
mod callbacks;
mod env;
pub mod machine;
pub mod resources;
pub mod scripted;
mod sim;
mod sync;
pub mod user_memory;
pub mod vidpn;

#[cfg(test)]
mod tests;

pub use adapter::{ChildStatus, Event, Mapping, PostDisplay};
pub use callbacks::{
    DXGK_WHICHSPACE_BRIDGE, DXGK_WHICHSPACE_CONFIG, DXGK_WHICHSPACE_MCH, DXGK_WHICHSPACE_ROM,
};
pub use env::SimEnv;
pub use machine::{Bar, InterruptMode, Machine, ModelMachine, ModelMachineConfig};
pub use sim::{
    preferred_mode, rect, Child, DeviceBoot, OsThread, Phase, PointerShape, Sim, SimError,
    SimOptions, Surface, ThreadEnv, DISPLAY_ADAPTER_HW_ID, EDID_BLOCK, FALLBACK_MODE,
    POWER_ACTION_NONE, POWER_ACTION_SLEEP,
};
pub use user_memory::UserBuffer;
