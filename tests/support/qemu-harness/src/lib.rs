//! Host side of the QEMU end-to-end tests: boots a tiny Linux guest under
//! `qemu-system-x86_64 -accel tcg` with QEMU's real `virtio-gpu-pci`, talks to the guest runner
//! (`tests/support/guest-runner`) over a serial line, and reads the heads back with QMP
//! `screendump` so tests can assert pixels.
//!
//! ```no_run
//! use qemu_harness::{Guest, GuestConfig};
//! let mut guest = Guest::boot(GuestConfig::default())?;
//! assert!(guest.command("info")?.contains("id=1af4:1050"));
//! let screen = guest.screendump(0)?;
//! println!("{}x{}", screen.width(), screen.height());
//! # Ok::<(), qemu_harness::HarnessError>(())
//! ```
//!
//! Prerequisites come from `scripts/setup-e2e` (QEMU, a static busybox, the kernel in
//! `target/e2e/kernel/`); a missing one is an error that says so, never a skipped test. The
//! guest runner is built by the harness itself, statically linked, in `target/e2e/cargo`.
//!
//! The guest: `-nodefaults -machine q35 -m 1G`, the kernel's uncompressed vmlinux booted
//! through PVH, an initramfs without kernel modules (so no guest driver binds the GPU), and
//! `memmap=` reserving [`DMA_RESERVED_LEN`] bytes at [`DMA_RESERVED_BASE`] that the runner
//! uses as DMA memory through `/dev/mem`.

pub mod artifacts;
pub mod cpio;
#[cfg(unix)]
mod guest;
pub mod image;
pub mod json;
#[cfg(unix)]
mod lines;
#[cfg(unix)]
mod qmp;
#[cfg(unix)]
pub mod rfb;

#[cfg(unix)]
pub use guest::{Guest, GuestConfig, GuestProgram, UdmabufLimits, GPU_ID};
pub use image::RgbImage;

/// Physical base of the range the guest kernel is told to leave alone (`memmap=`).
pub const DMA_RESERVED_BASE: u64 = 0x3000_0000;
/// Size of the reserved range; with `-m 1G` it ends at the top of guest RAM.
pub const DMA_RESERVED_LEN: u64 = 256 << 20;
/// The part of the range the runner allocates from: the top is left alone because the
/// firmware puts its tables at the top of RAM.
pub const DMA_RUNNER_LEN: u64 = 192 << 20;

/// A harness failure, with enough context (QEMU log, guest console tail) to act on.
#[derive(Clone, PartialEq, Eq)]
pub struct HarnessError(String);

impl HarnessError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug shows the message as is, so `unwrap()` in a test prints readable multi-line logs.
impl std::fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

/// Result of harness operations.
pub type Result<T> = std::result::Result<T, HarnessError>;
