//! The hosted backend: kernel services over std, for the Linux tests and the QEMU guest.
//!
//! There is no kernel here, so the caller provides the machine: a [`HostEnvironment`] gives DMA
//! memory with bus addresses, register access for the ranges the simulated dxgkrnl mapped, a
//! clock and a way to wait. The in-process simulator backs it with the virtio-gpu device model
//! (and a virtual clock, so timeout tests take no real time); the QEMU guest runner backs it
//! with `/dev/mem` and the mmapped PCI BAR.
//!
//! The environment is installed per thread with [`install`] before the driver's AddDevice runs;
//! every object the driver creates afterwards carries its own handle to it, so drivers on
//! different test threads never see each other's machine.

extern crate std;

use std::cell::RefCell;
use std::sync::Arc;

use viogpu_common::hal::{DmaRegion, Hal, RegisterAccess};

/// The machine the hosted driver runs on.
pub trait HostEnvironment: Send + Sync {
    /// Physically contiguous, zeroed, page-aligned DMA memory (see [`Hal::dma_alloc`]).
    fn dma_alloc(&self, len: usize) -> Option<DmaRegion>;
    /// Returns DMA memory.
    ///
    /// # Safety
    /// As [`Hal::dma_free`].
    unsafe fn dma_free(&self, region: DmaRegion);
    /// Reads a device register of `width` bytes (1, 2 or 4) at a mapped virtual address.
    fn mmio_read(&self, address: usize, width: u8) -> u32;
    /// Writes a device register of `width` bytes at a mapped virtual address.
    fn mmio_write(&self, address: usize, width: u8, value: u32);
    /// A monotonic clock in microseconds.
    fn now_us(&self) -> u64;
    /// Lets time pass (and the device work) for up to `timeout_us`, or until signalled.
    fn wait(&self, timeout_us: u64);
    /// Wakes a waiter.
    fn signal(&self) {}
    /// Whether the thread that called the current DDI (an escape) may change the display
    /// configuration (on Windows: holds the TCB privilege, as a LocalSystem service does).
    fn caller_is_trusted(&self) -> bool {
        true
    }
    /// A DWORD value of the driver's registry key, if set.
    fn registry_dword(&self, _name: &str) -> Option<u32> {
        None
    }
    /// One line of trace output.
    fn trace(&self, line: &str) {
        std::eprintln!("{line}");
    }
}

std::thread_local! {
    static CURRENT: RefCell<Option<Arc<dyn HostEnvironment>>> = const { RefCell::new(None) };
}

/// Makes `env` the machine of drivers created on this thread from now on.
pub fn install(env: Arc<dyn HostEnvironment>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(env));
}

/// Removes this thread's machine.
pub fn uninstall() {
    CURRENT.with(|c| *c.borrow_mut() = None);
}

/// This thread's machine, if one is installed.
pub fn current() -> Option<Arc<dyn HostEnvironment>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Writes one trace line to this thread's environment (stderr when none).
pub fn trace_str(line: &str) {
    match current() {
        Some(env) => env.trace(line),
        None => std::eprintln!("{line}"),
    }
}

/// Whether the caller of the current escape may change the display configuration.
pub fn caller_may_configure() -> bool {
    current().is_some_and(|env| env.caller_is_trusted())
}

/// Reads a DWORD setting of the driver.
pub fn registry_dword(name: &str) -> Option<u32> {
    current().and_then(|env| env.registry_dword(name))
}

/// DMA memory of the hosted machine.
#[derive(Clone)]
pub struct Dma {
    env: Arc<dyn HostEnvironment>,
}

impl Dma {
    /// The DMA allocator of this thread's machine.
    pub fn current() -> Option<Self> {
        current().map(|env| Self { env })
    }
}

// SAFETY: the environment's dma_alloc carries the same contract as Hal::dma_alloc (documented
// on HostEnvironment), and we forward unchanged.
unsafe impl Hal for Dma {
    fn dma_alloc(&self, len: usize) -> Option<DmaRegion> {
        self.env.dma_alloc(len)
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        // SAFETY: the caller keeps Hal::dma_free's contract, which is the environment's.
        unsafe { self.env.dma_free(region) }
    }
}

/// A register window mapped by the (simulated) dxgkrnl.
pub struct Mmio {
    env: Arc<dyn HostEnvironment>,
    base: usize,
    len: usize,
}

impl Mmio {
    /// The window `base..base + len` of the current machine.
    ///
    /// # Safety
    /// `base..base + len` was returned by the dxgkrnl memory-mapping callback for a device
    /// register range and stays mapped while the `Mmio` lives.
    pub unsafe fn new(base: usize, len: usize) -> Option<Self> {
        current().map(|env| Self { env, base, len })
    }

    fn address(&self, offset: usize, width: usize) -> Option<usize> {
        let end = offset.checked_add(width)?;
        (end <= self.len).then(|| self.base + offset)
    }

    fn read(&self, offset: usize, width: u8) -> u32 {
        match self.address(offset, usize::from(width)) {
            Some(a) => self.env.mmio_read(a, width),
            None => u32::MAX,
        }
    }

    fn write(&self, offset: usize, width: u8, value: u32) {
        if let Some(a) = self.address(offset, usize::from(width)) {
            self.env.mmio_write(a, width, value);
        }
    }
}

impl RegisterAccess for Mmio {
    fn read_u8(&self, offset: usize) -> u8 {
        self.read(offset, 1) as u8
    }
    fn read_u16(&self, offset: usize) -> u16 {
        self.read(offset, 2) as u16
    }
    fn read_u32(&self, offset: usize) -> u32 {
        self.read(offset, 4)
    }
    fn write_u8(&self, offset: usize, value: u8) {
        self.write(offset, 1, value.into());
    }
    fn write_u16(&self, offset: usize, value: u16) {
        self.write(offset, 2, value.into());
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.write(offset, 4, value);
    }
}

/// Waiting, time and "IRQL" of the hosted machine.
#[derive(Clone)]
pub struct OsPlatform {
    env: Arc<dyn HostEnvironment>,
}

impl OsPlatform {
    /// The platform of this thread's machine.
    pub fn current() -> Option<Self> {
        current().map(|env| Self { env })
    }
}

impl viogpu_common::gpu::Platform for OsPlatform {
    type RaiseGuard = ();

    fn raise(&self) -> Self::RaiseGuard {}

    fn now_us(&self) -> u64 {
        self.env.now_us()
    }

    fn wait_for_completion(&self, timeout_us: u64) {
        self.env.wait(timeout_us);
    }

    fn signal_completion(&self) {
        self.env.signal();
    }

    fn stall_us(&self, us: u32) {
        self.env.wait(u64::from(us));
    }
}
