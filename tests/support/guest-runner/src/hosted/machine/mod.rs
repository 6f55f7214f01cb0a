//! [`GuestMachine`]: the dxgkrnl simulator's [`Machine`] over the real virtio-gpu-pci function
//! of the QEMU guest, so the driver runs on real hardware through the same simulator as the
//! in-process scenarios.
//!
//! - Configuration space is the sysfs `config` file; the BARs come from sysfs `resource`.
//! - `map` mmaps the pages of `resourceN` that hold the range and returns the real process
//!   address; `mmio_read`/`mmio_write` are volatile accesses at such an address, checked
//!   against the live mappings (an address no mapping covers reads all-ones and drops the
//!   write, and is counted as a stray access).
//! - DMA memory is [`DevMemHal`] (the `memmap=`-reserved range through `/dev/mem`).
//! - The clock is `CLOCK_MONOTONIC` (`Instant`); `advance` sleeps briefly, which is what the
//!   simulator does while the driver waits: the vCPU idles and QEMU works.
//! - Interrupts: the function is granted MSI-X as Windows' PCI bus driver would grant it, but
//!   the guest has no path from the device's messages to this process (the table stays masked).
//!   A [`VirtioMonitor`] watches the driver's common-configuration writes and the rings in DMA
//!   memory, and [`Machine::take_interrupts`] synthesises the message of every queue whose used
//!   ring moved since the last call and of a configuration change when the device's
//!   `events_read` turned non-zero — the moments the device itself signals. Reading the used
//!   index and `events_read` consumes nothing the driver needs (unlike the read-to-clear ISR
//!   byte, which the machine never reads).

mod monitor;

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use dxgkrnl_sim::{Bar, InterruptMode, Machine};
use viogpu_common::hal::{DmaRegion, Hal};
use viogpu_common::transport::{
    Region, VirtioPciLayout, GPU_DEVICE_CFG_LEN, NO_VECTOR, VIRTIO_GPU_PCI_DEVICE_ID,
    VIRTIO_PCI_VENDOR_ID,
};

use super::bar::BarMapping;
use super::dma::DevMemHal;
use super::pci::PciFunction;

pub use monitor::{TransferCount, VirtioMonitor, WATCHED_QUEUES};

/// Longest single sleep of [`Machine::advance`]: QEMU answers from its main-loop thread while
/// the guest's vCPU sleeps, so short sleeps keep the added latency per command small.
const MAX_SLEEP: Duration = Duration::from_micros(100);
/// Below this an `advance` only yields (a sleep would cost the kernel's timer slack).
const YIELD_BELOW_US: u64 = 20;
/// Offset of `device_status` in the common configuration.
const DEVICE_STATUS: usize = 0x14;
/// Offset of `events_read` in the virtio-gpu device configuration.
const EVENTS_READ: usize = 0;

/// A live mapping made by [`Machine::map`].
#[derive(Debug)]
struct LiveMapping {
    mapping: BarMapping,
    /// Offset of the returned address inside `mapping`.
    in_mapping: usize,
    /// Length the driver asked for.
    len: usize,
}

/// Where an access lands: a BAR and the offset inside it.
#[derive(Debug, Clone, Copy)]
struct BarAccess {
    bar: u8,
    offset: u64,
}

impl BarAccess {
    /// The offset of this access inside `region`, if it lies there.
    fn inside(&self, region: &Region, width: u8) -> Option<u32> {
        let start = u64::from(region.offset);
        let end = self.offset.checked_add(u64::from(width))?;
        (self.bar == region.bar && self.offset >= start && end <= region.end())
            .then(|| (self.offset - start) as u32)
    }
}

/// The simulator's machine over the guest's virtio-gpu-pci (see the module documentation).
pub struct GuestMachine {
    pci: PciFunction,
    layout: VirtioPciLayout,
    bars: Vec<Bar>,
    msix_messages: u16,
    dma: DevMemHal,
    /// The machine's own view of the common and device configuration, for side-effect-free
    /// reads (device status, `events_read`).
    common: BarMapping,
    device_cfg: BarMapping,
    maps: Mutex<BTreeMap<usize, LiveMapping>>,
    monitor: Mutex<VirtioMonitor>,
    /// `events_read` at the last look.
    seen_events: AtomicU64,
    stray_accesses: AtomicU64,
    started: Instant,
}

impl std::fmt::Debug for GuestMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestMachine")
            .field("pci", &self.pci.address())
            .field("bars", &self.bars)
            .field("msix_messages", &self.msix_messages)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GuestMachine {
    /// Finds the first modern virtio-gpu function, turns on memory decoding, bus mastering
    /// and MSI-X (what the PCI bus driver does before a driver starts), and finds its virtio
    /// structures; DMA memory comes from `dma`.
    pub fn open(dma: DevMemHal) -> io::Result<Self> {
        let pci = PciFunction::find(VIRTIO_PCI_VENDOR_ID, VIRTIO_GPU_PCI_DEVICE_ID)?;
        pci.enable_memory_and_bus_master()?;
        let layout = VirtioPciLayout::discover(&pci, GPU_DEVICE_CFG_LEN)
            .map_err(|e| io::Error::other(format!("{}: {e}", pci.address())))?;
        let bars = pci
            .memory_bars()?
            .into_iter()
            .map(|(index, r)| Bar {
                index,
                phys: r.start,
                len: r.len,
                is_64bit: r.is_64bit(),
                prefetchable: r.is_prefetchable(),
            })
            .collect();
        let msix_messages = pci.enable_msix()?;
        let map_region =
            |r: &Region| BarMapping::map(&pci, r.bar, u64::from(r.offset), u64::from(r.len));
        let common = map_region(&layout.common)?;
        let device_cfg = map_region(&layout.device)?;
        Ok(Self {
            layout,
            bars,
            msix_messages,
            dma,
            common,
            device_cfg,
            maps: Mutex::new(BTreeMap::new()),
            monitor: Mutex::new(VirtioMonitor::default()),
            seen_events: AtomicU64::new(0),
            stray_accesses: AtomicU64::new(0),
            started: Instant::now(),
            pci,
        })
    }

    /// The PCI function.
    pub fn pci(&self) -> &PciFunction {
        &self.pci
    }

    /// Where the virtio structures are.
    pub fn layout(&self) -> &VirtioPciLayout {
        &self.layout
    }

    /// The DMA memory.
    pub fn dma(&self) -> &DevMemHal {
        &self.dma
    }

    /// What the bus observer saw (features, queues, transfers).
    pub fn monitor(&self) -> MutexGuard<'_, VirtioMonitor> {
        lock(&self.monitor)
    }

    /// Requests the device holds, per watched queue.
    pub fn in_flight(&self) -> [u16; WATCHED_QUEUES] {
        self.monitor().in_flight(&self.dma)
    }

    /// Requests the driver has published on `queue` so far (wrapping).
    pub fn published(&self, queue: usize) -> u16 {
        self.monitor().published(&self.dma, queue)
    }

    /// The device status register (0 after a reset).
    pub fn device_status(&self) -> u8 {
        self.common
            .read(self.common_offset(DEVICE_STATUS), 1)
            .map_or(0xFF, |v| v as u8)
    }

    /// Register accesses at addresses no mapping covers (each one is a driver bug).
    pub fn stray_accesses(&self) -> u64 {
        self.stray_accesses.load(Ordering::Relaxed)
    }

    /// Number of live mappings.
    pub fn live_mappings(&self) -> usize {
        lock(&self.maps).len()
    }

    /// Offset of `offset` of the common configuration inside the machine's own mapping.
    fn common_offset(&self, offset: usize) -> usize {
        (u64::from(self.layout.common.offset) - self.common.bar_offset()) as usize + offset
    }

    /// `events_read` of the device configuration.
    fn events_read(&self) -> u32 {
        let at = (u64::from(self.layout.device.offset) - self.device_cfg.bar_offset()) as usize;
        self.device_cfg.read(at + EVENTS_READ, 4).unwrap_or(0)
    }

    /// Runs `access` on the mapping that covers `address..address + width`, with the offset
    /// inside that mapping and where the access lands in the BAR.
    fn with_mapping<R>(
        &self,
        address: usize,
        width: u8,
        access: impl FnOnce(&BarMapping, usize, BarAccess) -> R,
    ) -> Option<R> {
        let maps = lock(&self.maps);
        let (&start, live) = maps.range(..=address).next_back()?;
        let inside = address - start;
        if inside.checked_add(usize::from(width))? > live.len {
            return None;
        }
        let offset = live.in_mapping.checked_add(inside)?;
        let at = BarAccess {
            bar: live.mapping.bar(),
            offset: live.mapping.bar_offset().checked_add(offset as u64)?,
        };
        Some(access(&live.mapping, offset, at))
    }

    /// The message a device signal on MSI-X `vector` arrives as, if the vector is granted.
    fn message_of(&self, vector: u16) -> Option<u32> {
        (vector != NO_VECTOR && vector < self.msix_messages).then_some(u32::from(vector))
    }
}

impl Drop for GuestMachine {
    fn drop(&mut self) {
        // Back to INTx, as when no driver holds the device.
        let _ = self.pci.disable_msix();
    }
}

impl Machine for GuestMachine {
    fn config_space_len(&self) -> u32 {
        self.pci
            .config_len()
            .ok()
            .and_then(|l| u32::try_from(l).ok())
            .unwrap_or(256)
    }

    fn config_read(&self, offset: u32, buf: &mut [u8]) -> usize {
        let len = self.config_space_len();
        let n = buf.len().min(len.saturating_sub(offset) as usize);
        let Some(part) = buf.get_mut(..n) else {
            return 0;
        };
        match self.pci.read_config(u64::from(offset), part) {
            Ok(()) => n,
            Err(_) => 0,
        }
    }

    fn config_write(&self, offset: u32, data: &[u8]) -> usize {
        let len = self.config_space_len();
        let n = data.len().min(len.saturating_sub(offset) as usize);
        let Some(part) = data.get(..n) else {
            return 0;
        };
        self.pci.write_config(u64::from(offset), part).unwrap_or(0)
    }

    fn bars(&self) -> Vec<Bar> {
        self.bars.clone()
    }

    fn interrupt_mode(&self) -> InterruptMode {
        InterruptMode::Msix {
            messages: self.msix_messages,
        }
    }

    fn map(&self, phys: u64, len: u64) -> Option<usize> {
        let bar = self.bars.iter().find(|b| {
            phys >= b.phys && phys.checked_add(len).is_some_and(|e| e <= b.phys + b.len)
        })?;
        let offset = phys - bar.phys;
        let mapping = BarMapping::map(&self.pci, bar.index, offset, len).ok()?;
        let in_mapping = usize::try_from(offset - mapping.bar_offset()).ok()?;
        let address = mapping.address().checked_add(in_mapping)?;
        let live = LiveMapping {
            mapping,
            in_mapping,
            len: usize::try_from(len).ok()?,
        };
        lock(&self.maps).insert(address, live);
        Some(address)
    }

    fn unmap(&self, address: usize) -> bool {
        // Dropping the mapping unmaps it.
        lock(&self.maps).remove(&address).is_some()
    }

    fn mmio_read(&self, address: usize, width: u8) -> u32 {
        let value = self.with_mapping(address, width, |mapping, offset, at| {
            let value = mapping.read(offset, width)?;
            if let Some(common) = at.inside(&self.layout.common, width) {
                self.monitor().common_read(common, width, value);
            }
            Some(value)
        });
        match value.flatten() {
            Some(v) => v,
            None => {
                self.stray_accesses.fetch_add(1, Ordering::Relaxed);
                u32::MAX
            }
        }
    }

    fn mmio_write(&self, address: usize, width: u8, value: u32) {
        let written = self.with_mapping(address, width, |mapping, offset, at| {
            if let Some(common) = at.inside(&self.layout.common, width) {
                self.monitor().common_write(common, width, value);
            }
            let written = mapping.write(offset, width, value);
            if at.inside(&self.layout.notify, width).is_some() {
                // A doorbell: the requests it announces are intact now.
                self.monitor().scan(&self.dma);
            }
            written
        });
        if written != Some(true) {
            self.stray_accesses.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn dma_alloc(&self, len: usize) -> Option<DmaRegion> {
        self.dma.dma_alloc(len)
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        // SAFETY: the caller keeps Hal::dma_free's contract (same as ours).
        unsafe { self.dma.dma_free(region) }
    }

    fn dma_allocated_bytes(&self) -> usize {
        self.dma.allocated_bytes()
    }

    fn read_phys(&self, phys: u64, buf: &mut [u8]) -> bool {
        self.dma.read_phys(phys, buf)
    }

    fn take_interrupts(&self) -> Vec<u32> {
        let mut messages = Vec::new();
        let mut push = |message: Option<u32>| {
            if let Some(m) = message.filter(|m| !messages.contains(m)) {
                messages.push(m);
            }
        };
        let config_vector = {
            let mut monitor = self.monitor();
            // Before the DPC reclaims anything.
            monitor.scan(&self.dma);
            for vector in monitor.moved_queues(&self.dma) {
                push(self.message_of(vector));
            }
            monitor.config_vector()
        };
        if config_vector != NO_VECTOR {
            let events = u64::from(self.events_read());
            let before = self.seen_events.swap(events, Ordering::Relaxed);
            if events != 0 && events != before {
                push(self.message_of(config_vector));
            }
        }
        messages
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn advance(&self, us: u64) {
        if us < YIELD_BELOW_US {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(us).min(MAX_SLEEP));
        }
    }
}
