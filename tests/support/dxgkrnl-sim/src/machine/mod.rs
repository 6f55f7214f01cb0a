//! The simulated PC the driver runs on, as the simulator needs it: the display device's PCI
//! configuration space and BARs, kernel virtual mappings of BAR ranges, DMA memory, pending
//! device interrupts and a clock.
//!
//! The simulator (dxgkrnl's callbacks and the hosted OS environment) reaches hardware only
//! through [`Machine`], so the same simulator drives the in-process device model
//! ([`ModelMachine`]) and, inside a QEMU guest, a real virtio-gpu-pci function (a machine over
//! sysfs config space, mmapped BARs and `/dev/mem` DMA memory).

mod model;

pub use model::{ModelMachine, ModelMachineConfig};

use viogpu_common::hal::DmaRegion;

/// One memory BAR of the device, as the firmware assigned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// BAR index 0..=5 (a 64-bit BAR has the index of its low half).
    pub index: u8,
    /// Physical address of the first byte.
    pub phys: u64,
    /// Length in bytes.
    pub len: u64,
    /// A 64-bit BAR (two BAR registers).
    pub is_64bit: bool,
    /// A prefetchable BAR.
    pub prefetchable: bool,
}

/// How the device's interrupts reach the CPU, i.e. what the PCI bus driver granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterruptMode {
    /// A level-triggered, shared INTx line: every interrupt arrives as message number 0.
    Line,
    /// MSI-X with this many messages: an interrupt on MSI-X vector `v` arrives as message
    /// number `v`.
    Msix {
        /// Number of messages granted (at most the device's table size).
        messages: u16,
    },
}

/// What the simulated PC provides to the simulator. Implementations are shared between the
/// simulator, the callbacks and the hosted OS environment, so they take `&self`.
pub trait Machine: Send + Sync {
    /// Size of the device's configuration space (256, or 4096 for PCIe extended space).
    fn config_space_len(&self) -> u32;

    /// Reads configuration space at `offset` into `buf`; returns the number of bytes read
    /// (fewer than `buf.len()` when the range runs past the end).
    fn config_read(&self, offset: u32, buf: &mut [u8]) -> usize;

    /// Writes `data` to configuration space at `offset`; returns the number of bytes written.
    fn config_write(&self, offset: u32, data: &[u8]) -> usize;

    /// The device's memory BARs, in BAR order.
    fn bars(&self) -> Vec<Bar>;

    /// The interrupts the device was granted.
    fn interrupt_mode(&self) -> InterruptMode;

    /// Maps `len` bytes of device memory at physical address `phys` into the "kernel" address
    /// space; returns the address the driver will use, or `None` when the range is not inside
    /// one BAR (or the mapping fails).
    fn map(&self, phys: u64, len: u64) -> Option<usize>;

    /// Removes a mapping made by [`map`](Self::map); false when `address` is not the start of
    /// one.
    fn unmap(&self, address: usize) -> bool;

    /// Reads a device register of `width` bytes (1, 2 or 4) at a mapped address.
    fn mmio_read(&self, address: usize, width: u8) -> u32;

    /// Writes a device register of `width` bytes (1, 2 or 4) at a mapped address.
    fn mmio_write(&self, address: usize, width: u8, value: u32);

    /// Physically contiguous, zeroed, page-aligned DMA memory (the contract of
    /// `viogpu_common::hal::Hal::dma_alloc`).
    fn dma_alloc(&self, len: usize) -> Option<DmaRegion>;

    /// Returns DMA memory.
    ///
    /// # Safety
    /// As `viogpu_common::hal::Hal::dma_free`: `region` came from [`dma_alloc`](Self::dma_alloc)
    /// of this machine, is freed once, and the device no longer uses it.
    unsafe fn dma_free(&self, region: DmaRegion);

    /// DMA bytes currently allocated (for "everything came back" checks).
    fn dma_allocated_bytes(&self) -> usize;

    /// Copies guest physical memory at `phys` into `buf`; false when the range is not RAM.
    fn read_phys(&self, phys: u64, buf: &mut [u8]) -> bool;

    /// Takes the interrupts the device raised since the last call, as message numbers (see
    /// [`InterruptMode`]), oldest first.
    fn take_interrupts(&self) -> Vec<u32>;

    /// With a level-triggered line interrupt: whether the device holds the line asserted now
    /// (its interrupt status is not yet read and cleared). Always false for messages.
    fn line_asserted(&self) -> bool {
        false
    }

    /// A monotonic clock in microseconds.
    fn now_us(&self) -> u64;

    /// Lets `us` microseconds pass (a virtual clock jumps; real hardware sleeps).
    fn advance(&self, us: u64);
}
