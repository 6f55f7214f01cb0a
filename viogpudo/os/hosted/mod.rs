//! The hosted backend: kernel services over std, for the Linux tests and the QEMU guest.
//!
//! There is no kernel here, so the caller provides the machine: a [`HostEnvironment`] gives DMA
//! memory with bus addresses, register access for the ranges the simulated dxgkrnl mapped, a
//! clock and a way to wait. The in-process simulator backs it with the virtio-gpu device model
//! (and a virtual clock, so timeout tests take no real time); the QEMU guest runner backs it
//! with `/dev/mem` and the mmapped PCI BAR.
//!
//! The environment is installed per thread with [`install`] before the driver's AddDevice runs
//! (and on every other thread the simulator calls the driver from); every object the driver
//! creates afterwards carries its own handle to it, so drivers on different test threads never
//! see each other's machine.
//!
//! This backend stands for the kernel, not for the driver: its own heap use (messages about
//! broken rules, bookkeeping) is exempt from the driver crates' ban on aborting allocations.
//!
//! Windows' rules are checked here too: each service stands for a kernel routine and checks
//! the thread's [`irql`] against that routine's documented maximum, and the state lock is a
//! [`PassiveMutex`] that reports misuse. A broken rule goes to
//! [`HostEnvironment::rule_broken`], which the simulator records so that the test fails.
//!
//! User-mode memory (a present's `pSource`) is the environment's too: it says which addresses
//! are user memory ([`HostEnvironment::is_user_address`]) and makes them readable only while
//! [`probe_and_lock`] holds them ([`HostEnvironment::probe_and_lock_read`], as
//! MmProbeAndLockPages). The simulator maps such sources PROT_NONE until then, so a read that
//! bypasses the probe is a SIGSEGV in the test instead of a bugcheck on Windows.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

extern crate std;

pub mod irql;
mod lock;

pub use lock::{PassiveGuard, PassiveMutex};

use std::cell::RefCell;
use std::sync::Arc;

use viogpu_common::blit::Simd;
use viogpu_common::hal::{DmaRegion, Hal, RegisterAccess};

use super::STATUS_ACCESS_VIOLATION;
use crate::ddi::NTSTATUS;

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
    /// The driver broke a rule Windows enforces (an IRQL rule, a lock misuse): on Windows a
    /// bugcheck or a hang. The environment records it so the test fails.
    fn rule_broken(&self, what: &str);
    /// Whether `address` is user-mode memory (below `MM_USER_PROBE_ADDRESS` on Windows): memory
    /// the user can decommit at any moment, which the driver reads only through
    /// [`probe_and_lock`]. Anything else is kernel memory that the caller vouches for and the
    /// driver reads directly. The default: no user memory.
    fn is_user_address(&self, _address: usize) -> bool {
        false
    }
    /// `MmProbeAndLockPages(UserMode, IoReadAccess)` of `len` (> 0) bytes at the user address
    /// `address`: on success the bytes are readable until [`unlock_pages`](Self::unlock_pages)
    /// of the same range; otherwise the exception code the probe raised
    /// (`STATUS_ACCESS_VIOLATION` for a range that is not entirely valid user memory), and
    /// nothing stays locked.
    fn probe_and_lock_read(&self, _address: usize, _len: usize) -> Result<(), NTSTATUS> {
        Ok(())
    }
    /// `MmUnlockPages` of a range [`probe_and_lock_read`](Self::probe_and_lock_read) locked.
    fn unlock_pages(&self, _address: usize, _len: usize) {}
    /// The driver saved the AVX state (`KeSaveExtendedProcessorState`) at `irql`, to run a
    /// copy with YMM registers; the simulator records it.
    fn avx_state_saved(&self, _irql: irql::Irql) {}
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

/// Reports a broken rule to this thread's environment. Without one (a unit test that builds
/// driver objects by hand) there is nobody to record it: it fails the calling test directly.
pub fn rule_broken(what: &str) {
    match current() {
        Some(env) => env.rule_broken(what),
        #[allow(clippy::panic)] // hosted test backend only
        None => panic!("viogpudo broke a Windows rule: {what}"),
    }
}

/// Writes one trace line to this thread's environment (stderr when none). As the `nt`
/// backend, nothing is written at CLOCK_LEVEL or above (the bugcheck screen), where
/// DbgPrintEx could deadlock.
pub fn trace_str(line: &str) {
    if irql::current() > irql::CLOCK_LEVEL - 1 {
        return;
    }
    match current() {
        Some(env) => env.trace(line),
        None => std::eprintln!("{line}"),
    }
}

/// Whether the caller of the current escape may change the display configuration.
pub fn caller_may_configure() -> bool {
    irql::require_at_most(irql::PASSIVE_LEVEL, "SeSinglePrivilegeCheck");
    current().is_some_and(|env| env.caller_is_trusted())
}

/// Reads a DWORD setting of the driver.
pub fn registry_dword(name: &str) -> Option<u32> {
    irql::require_at_most(irql::PASSIVE_LEVEL, "RtlQueryRegistryValues");
    current().and_then(|env| env.registry_dword(name))
}

/// Runs `f` with the AVX state saved, as `KeSaveExtendedProcessorState(XSTATE_MASK_AVX)` and
/// `KeRestoreExtendedProcessorState` around it do on Windows, and lets it use AVX2
/// ([`Simd::avx2_state_saved`]). A user-mode process needs no save, so here this checks the
/// kernel's rules instead: `RtlGetEnabledExtendedFeatures` (asked first, as on Windows) at
/// PASSIVE_LEVEL, the save at most at DISPATCH_LEVEL, the restore at the save's IRQL. The
/// environment is told of each save.
///
/// # Safety
///
/// As on Windows: `f` uses the [`Simd`] it gets only for copies that end before `f` returns,
/// and neither returns it nor keeps it anywhere (a copy made with it later would run without
/// the saved state).
pub unsafe fn with_avx_state<R>(f: impl FnOnce(Simd) -> R) -> R {
    irql::require_at_most(irql::PASSIVE_LEVEL, "RtlGetEnabledExtendedFeatures");
    irql::require_at_most(irql::DISPATCH_LEVEL, "KeSaveExtendedProcessorState");
    let saved_at = irql::current();
    if let Some(env) = current() {
        env.avx_state_saved(saved_at);
    }
    // SAFETY: a user-mode process (the simulator's) has no YMM state of another thread to
    // keep, so any use of the value is sound here; the kernel's rules for the save are
    // checked above and below, and the caller keeps the value inside `f` (contract).
    let result = f(unsafe { Simd::avx2_state_saved() });
    let now = irql::current();
    if now != saved_at {
        rule_broken(&std::format!(
            "KeRestoreExtendedProcessorState at {} after KeSaveExtendedProcessorState at {}: \
             a restore must run at its save's IRQL",
            irql::name(now),
            irql::name(saved_at)
        ));
    }
    result
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
        irql::require_at_most(
            irql::DISPATCH_LEVEL,
            "MmAllocateContiguousMemorySpecifyCache",
        );
        self.env.dma_alloc(len)
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        // Windows Server 2008 and later allow DISPATCH_LEVEL (older ones APC_LEVEL).
        irql::require_at_most(irql::DISPATCH_LEVEL, "MmFreeContiguousMemory");
        // SAFETY: the caller keeps Hal::dma_free's contract, which is the environment's.
        unsafe { self.env.dma_free(region) }
    }
}

/// A register window mapped by the (simulated) dxgkrnl. Copies are views of the same mapping
/// (cloning allocates nothing).
#[derive(Clone)]
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

/// Waiting, time and IRQL of the hosted machine.
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
    type RaiseGuard = irql::IrqlGuard;

    /// KeAcquireSpinLockRaiseToDpc: at most DISPATCH_LEVEL, and DISPATCH_LEVEL while held.
    fn raise(&self, _queue: u16) -> Self::RaiseGuard {
        irql::raise_to(irql::DISPATCH_LEVEL, "KeAcquireSpinLockRaiseToDpc")
    }

    fn now_us(&self) -> u64 {
        self.env.now_us()
    }

    fn wait_for_completion(&self, timeout_us: u64) {
        irql::require_at_most(irql::APC_LEVEL, "KeWaitForSingleObject (with a timeout)");
        self.env.wait(timeout_us);
    }

    fn signal_completion(&self) {
        irql::require_at_most(irql::DISPATCH_LEVEL, "KeSetEvent");
        self.env.signal();
    }

    fn stall_us(&self, us: u32) {
        self.env.wait(u64::from(us));
    }
}

/// Source bytes the driver may read: kernel memory as it is, or user memory probed and locked
/// (readable until the guard is dropped, which unlocks it). The hosted twin of the `nt`
/// backend's MDL guard.
pub struct LockedPages {
    /// The machine that locked user memory; `None` for kernel memory (nothing to unlock).
    env: Option<Arc<dyn HostEnvironment>>,
    address: *const u8,
    len: usize,
}

impl LockedPages {
    /// The locked bytes, valid while the guard lives.
    pub fn bytes(&self) -> &[u8] {
        if self.address.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: `probe_and_lock` built the guard over `len` bytes at `address` that are
        // either kernel memory its caller vouched for while the guard lives, or user memory the
        // environment made readable until `unlock_pages`, which only `drop` calls.
        unsafe { core::slice::from_raw_parts(self.address, self.len) }
    }
}

impl Drop for LockedPages {
    fn drop(&mut self) {
        if let Some(env) = self.env.take() {
            irql::require_at_most(irql::DISPATCH_LEVEL, "MmUnlockPages");
            env.unlock_pages(self.address as usize, self.len);
        }
    }
}

/// Makes `len` bytes at `offset` into the surface at `surface` readable for the life of the
/// returned guard: user memory is probed and locked for reading
/// (`MmProbeAndLockPages(UserMode, IoReadAccess)`, at most APC_LEVEL), kernel memory is used as
/// it is. Whether it is user memory is decided by `surface`, the OS's pointer, never by the
/// offset address, which a bad pitch could push anywhere. A user range that is not entirely
/// valid user memory gives the probe's exception code (`STATUS_ACCESS_VIOLATION`) and locks
/// nothing.
///
/// # Safety
/// If `surface` is kernel memory (not user memory of this machine), `len` bytes at `offset`
/// into it are valid for reads while the guard lives (as the OS guarantees for a kernel-mode
/// `pSource`). A user surface needs no promise: the probe checks the range.
pub unsafe fn probe_and_lock(
    surface: *const u8,
    offset: usize,
    len: usize,
) -> Result<LockedPages, NTSTATUS> {
    let address = surface.wrapping_add(offset);
    let env = match current() {
        Some(env) if env.is_user_address(surface as usize) => env,
        // Kernel memory: used as it is.
        _ => {
            return Ok(LockedPages {
                env: None,
                address,
                len,
            })
        }
    };
    if len == 0 {
        // Nothing to read, nothing to lock.
        return Ok(LockedPages {
            env: None,
            address,
            len,
        });
    }
    irql::require_at_most(irql::DISPATCH_LEVEL, "IoAllocateMdl");
    irql::require_at_most(irql::APC_LEVEL, "MmProbeAndLockPages (user memory)");
    let in_range = (surface as usize)
        .checked_add(offset)
        .and_then(|start| start.checked_add(len));
    if in_range.is_none() {
        return Err(STATUS_ACCESS_VIOLATION);
    }
    env.probe_and_lock_read(address as usize, len)?;
    Ok(LockedPages {
        env: Some(env),
        address,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_avx_state_is_saved_at_passive_level() {
        // SAFETY: the closure returns a bool, not the `Simd`.
        assert!(unsafe { with_avx_state(|simd| simd.allows_avx2()) });
    }

    /// RtlGetEnabledExtendedFeatures is documented for PASSIVE_LEVEL only (without an
    /// environment a broken rule fails the calling test).
    #[test]
    #[should_panic(expected = "RtlGetEnabledExtendedFeatures called at DISPATCH_LEVEL")]
    fn the_avx_state_is_not_asked_for_at_dispatch_level() {
        let _dispatch = irql::run_at(irql::DISPATCH_LEVEL);
        // SAFETY: the closure returns a bool, not the `Simd`.
        unsafe { with_avx_state(|simd| simd.allows_avx2()) };
    }

    #[test]
    #[should_panic(expected = "a restore must run at its save's IRQL")]
    fn a_restore_at_another_irql_is_a_broken_rule() {
        // SAFETY: the closure does not use the `Simd`.
        unsafe { with_avx_state(|_| core::mem::forget(irql::run_at(irql::DISPATCH_LEVEL))) };
    }
}
