//! [`ModelMachine`]: the simulated PC around the in-process virtio-gpu device model.
//!
//! Guest RAM is one `vm-memory` region handed out by [`GuestMemoryHal`]; the device is a
//! [`VirtioGpuPci`] over the same memory, with whatever [`QueueHandler`] executes its commands.
//! BAR mappings get made-up kernel addresses that are never dereferenced: every register
//! access arrives through [`Machine::mmio_read`]/[`Machine::mmio_write`] with such an address
//! and is routed to the BAR it maps. The clock is virtual: it moves only when someone waits.
//! Acting as the PCI bus driver, the machine enables MSI-X in config space when it grants
//! message interrupts, as Windows does before the driver starts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use viogpu_common::hal::{DmaRegion, Hal, RegisterAccess, PAGE_SIZE};
use viogpu_common::transport::{PciConfigAccess, NO_VECTOR};
use virtio_gpu_model::pci::{ModelConfig, QueueHandler, VirtioGpuPci};
use virtio_gpu_model::{GuestMemoryHal, Interrupt};
use virtio_queue::QueueT;
use vm_memory::{Bytes, GuestAddress};

use super::{Bar, InterruptMode, Machine};

/// Conventional PCI configuration space size.
const CONFIG_SPACE_LEN: u32 = 256;
/// PCI capability id of MSI-X.
const CAP_ID_MSIX: u8 = 0x11;
/// MSI-X message control: enable bit.
const MSIX_ENABLE: u16 = 0x8000;
/// Where the made-up kernel addresses of BAR mappings start.
const MAP_BASE: usize = 0x7E00_0000_0000;

/// How to build a [`ModelMachine`].
#[derive(Debug, Clone)]
pub struct ModelMachineConfig {
    /// Guest physical address of RAM (rounded up to a page).
    pub ram_base: u64,
    /// RAM size in bytes (all of it is DMA memory); large modes need large framebuffers.
    pub ram_size: usize,
    /// How the device presents itself.
    pub device: ModelConfig,
    /// What the PCI bus driver grants; `Msix` is clamped to the device's table size.
    pub interrupts: InterruptMode,
    /// The clock is real time (a waiter sleeps a little and time passes for everyone) instead
    /// of virtual (a waiter's timeout jumps the clock). Scenarios that run DDIs on several
    /// threads need it: one thread's wait must not time out another's command.
    pub real_time: bool,
}

impl Default for ModelMachineConfig {
    /// 512 MiB of RAM at 1 MiB (below QEMU's BAR addresses), QEMU's default virtio-gpu-pci,
    /// MSI-X with one message per table entry (what Windows grants a virtio function whose INF
    /// sets MSISupported).
    fn default() -> Self {
        let device = ModelConfig::default();
        let messages = device.msix_table_size;
        Self {
            ram_base: 0x10_0000,
            ram_size: 512 << 20,
            device,
            interrupts: InterruptMode::Msix { messages },
            real_time: false,
        }
    }
}

/// A BAR-range mapping made by [`Machine::map`].
#[derive(Debug, Clone, Copy)]
struct Mapping {
    len: u64,
    bar: u8,
    /// Offset of the mapping's first byte inside its BAR.
    bar_offset: u64,
}

#[derive(Debug, Default)]
struct Maps {
    next: usize,
    live: BTreeMap<usize, Mapping>,
}

/// The simulated PC around the virtio-gpu device model (see the module documentation).
pub struct ModelMachine {
    hal: GuestMemoryHal,
    device: VirtioGpuPci,
    interrupts: InterruptMode,
    maps: Mutex<Maps>,
    clock: AtomicU64,
    /// Set for a real-time clock (see [`ModelMachineConfig::real_time`]).
    started: Option<std::time::Instant>,
    stray_accesses: AtomicU64,
    dropped_interrupts: AtomicU64,
    /// Frees of memory the device could still use (see [`ModelMachine::device_memory_freed`]).
    device_memory_freed: AtomicU64,
    /// The device was pulled out ([`ModelMachine::surprise_remove`]).
    removed: AtomicBool,
    removed_accesses: AtomicU64,
}

impl std::fmt::Debug for ModelMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelMachine")
            .field("interrupts", &self.interrupts)
            .finish_non_exhaustive()
    }
}

impl ModelMachine {
    /// A machine as `config` says, whose device executes commands with `handler`.
    pub fn new(config: ModelMachineConfig, handler: Box<dyn QueueHandler>) -> Result<Self, String> {
        let hal = GuestMemoryHal::new(config.ram_base, config.ram_size)
            .map_err(|e| format!("guest RAM: {e}"))?;
        let table_size = config.device.msix_table_size;
        let device = VirtioGpuPci::new(hal.memory().clone(), config.device);
        device.set_handler(handler);
        let interrupts = match config.interrupts {
            InterruptMode::Msix { messages } if messages > 0 && table_size > 0 => {
                InterruptMode::Msix {
                    messages: messages.min(table_size),
                }
            }
            _ => InterruptMode::Line,
        };
        let machine = Self {
            hal,
            device,
            interrupts,
            maps: Mutex::new(Maps {
                next: MAP_BASE,
                live: BTreeMap::new(),
            }),
            clock: AtomicU64::new(0),
            started: config.real_time.then(std::time::Instant::now),
            stray_accesses: AtomicU64::new(0),
            dropped_interrupts: AtomicU64::new(0),
            device_memory_freed: AtomicU64::new(0),
            removed: AtomicBool::new(false),
            removed_accesses: AtomicU64::new(0),
        };
        if let InterruptMode::Msix { .. } = interrupts {
            machine.enable_msix()?;
        }
        Ok(machine)
    }

    /// The device model.
    pub fn device(&self) -> &VirtioGpuPci {
        &self.device
    }

    /// The guest RAM allocator (also the device's memory).
    pub fn hal(&self) -> &GuestMemoryHal {
        &self.hal
    }

    /// Register accesses at addresses no mapping covers (each one is a driver bug).
    pub fn stray_accesses(&self) -> u64 {
        self.stray_accesses.load(Ordering::Relaxed)
    }

    /// Interrupts the device raised that could not be delivered (no MSI-X vector assigned,
    /// or a vector beyond the granted messages).
    pub fn dropped_interrupts(&self) -> u64 {
        self.dropped_interrupts.load(Ordering::Relaxed)
    }

    /// Frees of DMA memory the device could still use (device status not reset): a ring of a
    /// queue it has enabled, a buffer of a request it has not completed, pages attached to one
    /// of its resources. The device could have read or written freed memory. Each one is a
    /// driver bug.
    pub fn device_memory_freed(&self) -> u64 {
        self.device_memory_freed.load(Ordering::Relaxed)
    }

    /// The device is pulled out of the machine (a surprise removal): from now on its
    /// registers read all-ones and ignore writes, as a PCI read of an absent function does,
    /// it raises no interrupts, and it can no longer reach guest memory.
    pub fn surprise_remove(&self) {
        self.removed.store(true, Ordering::SeqCst);
    }

    /// Register accesses (reads and writes) made after [`surprise_remove`](Self::surprise_remove).
    pub fn removed_accesses(&self) -> u64 {
        self.removed_accesses.load(Ordering::Relaxed)
    }

    fn is_removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    /// True if the device may still use `region`: it holds the start of a ring of a queue the
    /// device has enabled, or memory the device's GPU side still uses (a request it has not
    /// completed, a resource's backing; see `QueueHandler::holds_memory`).
    fn device_uses(&self, region: &DmaRegion) -> bool {
        if self.is_removed() || self.device.status() == 0 {
            return false;
        }
        let start = region.phys;
        let end = start.saturating_add(region.len as u64);
        if self.device.holds_memory(start, end) {
            return true;
        }
        (0..2u16).any(|q| {
            self.device
                .with_queue(q, |queue| {
                    queue.ready()
                        && [queue.desc_table(), queue.avail_ring(), queue.used_ring()]
                            .iter()
                            .any(|&a| (start..end).contains(&a))
                })
                .unwrap_or(false)
        })
    }

    /// Writes `data` at physical address `phys` as a CPU does: into guest RAM, or into the
    /// memory a BAR maps (the VGA memory of a virtio-vga). False when the range is neither.
    pub fn write_phys(&self, phys: u64, data: &[u8]) -> bool {
        if self
            .hal
            .memory()
            .write_slice(data, GuestAddress(phys))
            .is_ok()
        {
            return true;
        }
        let end = phys.checked_add(data.len() as u64);
        self.bars().into_iter().any(|bar| {
            bar.index == 0
                && phys >= bar.phys
                && end.is_some_and(|e| e <= bar.phys + bar.len)
                && self.device.write_vga_memory(phys - bar.phys, data)
        })
    }

    /// Number of live BAR mappings.
    pub fn live_mappings(&self) -> usize {
        self.maps().live.len()
    }

    fn maps(&self) -> MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the MSI-X enable bit, as the PCI bus driver does when it grants messages.
    fn enable_msix(&self) -> Result<(), String> {
        let cfg = self.device.config_space();
        let mut at = cfg.read_u8(0x34) & 0xFC;
        // A capability list is at most 48 entries long in 256 bytes.
        for _ in 0..48 {
            if at == 0 {
                break;
            }
            if cfg.read_u8(u16::from(at)) == CAP_ID_MSIX {
                let control = cfg.read_u16(u16::from(at) + 2);
                cfg.write_u16(u16::from(at) + 2, control | MSIX_ENABLE);
                return Ok(());
            }
            at = cfg.read_u8(u16::from(at) + 1) & 0xFC;
        }
        Err("MSI-X granted but the device has no MSI-X capability".into())
    }

    /// The mapping that covers `address..address + width`, as (BAR, offset in the BAR).
    fn resolve(&self, address: usize, width: u8) -> Option<(u8, usize)> {
        let maps = self.maps();
        let (&start, m) = maps.live.range(..=address).next_back()?;
        let inside = (address - start) as u64;
        if inside.checked_add(u64::from(width))? > m.len {
            return None;
        }
        let offset = usize::try_from(m.bar_offset.checked_add(inside)?).ok()?;
        Some((m.bar, offset))
    }

    fn message_of(&self, vector: u16) -> Option<u32> {
        match self.interrupts {
            InterruptMode::Msix { messages } if self.device.msix_enabled() => {
                (vector != NO_VECTOR && vector < messages).then_some(u32::from(vector))
            }
            _ => Some(0),
        }
    }
}

impl Machine for ModelMachine {
    fn config_space_len(&self) -> u32 {
        CONFIG_SPACE_LEN
    }

    fn config_read(&self, offset: u32, buf: &mut [u8]) -> usize {
        let cfg = self.device.config_space();
        let mut n = 0;
        for (at, byte) in (offset..CONFIG_SPACE_LEN).zip(buf.iter_mut()) {
            // `at` < 256 by the range bound.
            *byte = cfg.read_u8(at as u16);
            n += 1;
        }
        n
    }

    fn config_write(&self, offset: u32, data: &[u8]) -> usize {
        // The model takes 16- and 32-bit writes; a byte write is a read-modify-write of its
        // aligned 16-bit word (the other byte is written back unchanged).
        let cfg = self.device.config_space();
        let mut n = 0;
        for (at, &byte) in (offset..CONFIG_SPACE_LEN).zip(data) {
            let word_at = (at & !1) as u16;
            let word = cfg.read_u16(word_at);
            let shift = (at & 1) * 8;
            let word = (word & !(0xFF << shift)) | (u16::from(byte) << shift);
            cfg.write_u16(word_at, word);
            n += 1;
        }
        n
    }

    fn bars(&self) -> Vec<Bar> {
        let cfg = self.device.config_space();
        let mut bars = Vec::new();
        let mut index = 0u8;
        while index < 6 {
            let reg = cfg.read_u32(0x10 + 4 * u16::from(index));
            let is_io = reg & 1 != 0;
            let is_64bit = !is_io && (reg >> 1) & 3 == 2;
            let mut phys = u64::from(reg & !0xF);
            if is_64bit {
                phys |= u64::from(cfg.read_u32(0x14 + 4 * u16::from(index))) << 32;
            }
            if let (false, Some(len)) = (is_io, self.device.bar_len(index)) {
                bars.push(Bar {
                    index,
                    phys,
                    len,
                    is_64bit,
                    prefetchable: reg & 8 != 0,
                });
            }
            index += if is_64bit { 2 } else { 1 };
        }
        bars
    }

    fn interrupt_mode(&self) -> InterruptMode {
        self.interrupts
    }

    fn line_asserted(&self) -> bool {
        self.interrupts == InterruptMode::Line && !self.is_removed() && self.device.isr_pending()
    }

    fn map(&self, phys: u64, len: u64) -> Option<usize> {
        if len == 0 {
            return None;
        }
        let bar = self.bars().into_iter().find(|b| {
            phys >= b.phys && phys.checked_add(len).is_some_and(|e| e <= b.phys + b.len)
        })?;
        let page = PAGE_SIZE as u64;
        let in_page = phys % page;
        let span = (in_page + len).div_ceil(page) * page;
        let mut maps = self.maps();
        let base = maps.next;
        // One unmapped guard page after each mapping, so an overrun never lands in another.
        maps.next = base.checked_add(usize::try_from(span + page).ok()?)?;
        let address = base + in_page as usize;
        maps.live.insert(
            address,
            Mapping {
                len,
                bar: bar.index,
                bar_offset: phys - bar.phys,
            },
        );
        Some(address)
    }

    fn unmap(&self, address: usize) -> bool {
        self.maps().live.remove(&address).is_some()
    }

    fn mmio_read(&self, address: usize, width: u8) -> u32 {
        if self.is_removed() {
            self.removed_accesses.fetch_add(1, Ordering::Relaxed);
            return u32::MAX;
        }
        let Some((bar, offset)) = self.resolve(address, width) else {
            self.stray_accesses.fetch_add(1, Ordering::Relaxed);
            return u32::MAX;
        };
        let window = self.device.bar(bar);
        match width {
            1 => window.read_u8(offset).into(),
            2 => window.read_u16(offset).into(),
            4 => window.read_u32(offset),
            _ => {
                self.stray_accesses.fetch_add(1, Ordering::Relaxed);
                u32::MAX
            }
        }
    }

    fn mmio_write(&self, address: usize, width: u8, value: u32) {
        if self.is_removed() {
            self.removed_accesses.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some((bar, offset)) = self.resolve(address, width) else {
            self.stray_accesses.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let window = self.device.bar(bar);
        match width {
            1 => window.write_u8(offset, value as u8),
            2 => window.write_u16(offset, value as u16),
            4 => window.write_u32(offset, value),
            _ => {
                self.stray_accesses.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn dma_alloc(&self, len: usize) -> Option<DmaRegion> {
        self.hal.dma_alloc(len)
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        if self.device_uses(&region) {
            self.device_memory_freed.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller keeps Hal::dma_free's contract (same as ours).
        unsafe { self.hal.dma_free(region) }
    }

    fn dma_allocated_bytes(&self) -> usize {
        self.hal.allocated_bytes()
    }

    fn read_phys(&self, phys: u64, buf: &mut [u8]) -> bool {
        self.hal
            .memory()
            .read_slice(buf, GuestAddress(phys))
            .is_ok()
    }

    fn take_interrupts(&self) -> Vec<u32> {
        let mut messages: Vec<u32> = Vec::new();
        if self.is_removed() {
            drop(self.device.take_interrupts());
            return messages;
        }
        for interrupt in self.device.take_interrupts() {
            let vector = match interrupt {
                Interrupt::Queue { vector, .. } | Interrupt::Config { vector } => vector,
            };
            match self.message_of(vector) {
                // An interrupt already pending on the same message is not raised twice.
                Some(m) if !messages.contains(&m) => messages.push(m),
                Some(_) => {}
                None => {
                    self.dropped_interrupts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        messages
    }

    fn now_us(&self) -> u64 {
        match self.started {
            Some(t) => u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX),
            None => self.clock.load(Ordering::SeqCst),
        }
    }

    /// Virtual: jumps the clock. Real time: sleeps at most 200 µs (a wait may return early),
    /// so the waiter looks again soon.
    fn advance(&self, us: u64) {
        match self.started {
            Some(_) => std::thread::sleep(std::time::Duration::from_micros(us.min(200))),
            None => {
                self.clock.fetch_add(us, Ordering::SeqCst);
            }
        }
    }
}
