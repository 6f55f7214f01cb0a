//! The resolution agent of viogpudo: makes the guest's display follow the host window.
//!
//! QEMU tells the virtio-gpu device the size of the window a display is shown in; the driver
//! reports it through its escape (`viogpu_common::escape`) and re-plugs the monitor on a
//! host display-change event, but Windows keeps the mode it remembers for a known monitor.
//! The agent closes that gap: it asks the driver for the host's preferred size per display,
//! makes that size a mode (the custom-mode escape) and switches the display to it.
//!
//! Everything that decides is portable and tested on Linux against the real driver in the
//! dxgkrnl simulator (`tests/agent_follow.rs`):
//! - [`follow`]: what size to set when (debouncing a window being dragged, the driver's
//!   limits, several monitors, rotation, a size the driver refuses), against two small traits
//!   for the driver and the display configuration;
//! - [`driver`]: the escape protocol over any transport that carries the bytes;
//! - [`supervisor`]: when the service starts, stops and restarts the helper in the user's
//!   session;
//! - [`settings`]: the registry switch that turns following off, and the timings.
//!
//! The Windows calls (service control, sessions and tokens, `D3DKMTEscape`, display
//! settings, device notifications, the registry) are a thin layer in `windows` (Windows
//! builds only).

pub mod driver;
pub mod error;
pub mod follow;
pub mod settings;
pub mod supervisor;
#[cfg(windows)]
pub mod windows;

pub use error::{Error, Result};
