//! The PCI and virtio-transport shell of the emulated virtio-gpu-pci (or virtio-vga) function.
//!
//! This is the device end of the virtio PCI modern transport, laid out like QEMU's
//! virtio-gpu-pci: config space with vendor 0x1AF4 / device 0x1050, an MSI-X capability
//! whose table lives in BAR 1, and virtio capabilities pointing into one 64-bit memory BAR 4
//! (common configuration at 0x0000, ISR at 0x1000, device configuration at 0x2000,
//! notifications at 0x3000 with `notify_off_multiplier` 4). With
//! [`ModelConfig::vga_memory`] it is laid out like QEMU's virtio-vga instead
//! (hw/display/virtio-vga.c): class VGA, BAR 0 the VGA memory, the virtio structures in BAR 2
//! moved to its end (common 0x1000 and ISR 0x1800, each 0x800 long, device configuration
//! 0x2000, notifications 0x3000) behind the VGA registers of its first page ([`crate::vga`]),
//! and the MSI-X table in BAR 4. The host shows the VGA picture on scanout 0 until the first
//! SET_SCANOUT and again after a device reset ([`VirtioGpuPci::vga_picture`] and the GPU's
//! `virtio_display_active`). Registers have the spec's
//! semantics: the status handshake (FEATURES_OK is refused for features the device did not
//! offer), feature selects, queue registers programming real `virtio_queue::Queue` objects,
//! the read-to-clear ISR, the config generation and the virtio-gpu configuration.
//!
//! What the device does with buffers is not here: a notify write hands the queue to a
//! [`QueueHandler`] (the GPU command processor plugs in there). Interrupts are not
//! delivered by callback, to avoid re-entering a driver that holds its own locks; they are
//! recorded and the test takes them with [`VirtioGpuPci::take_interrupts`].
//!
//! All state sits behind one `std::sync::Mutex`; [`PciConfigSpace`] and [`BarWindow`] are
//! cheap handles onto it that implement the driver's `PciConfigAccess` and `RegisterAccess`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use viogpu_common::hal::RegisterAccess;
use viogpu_common::transport::{
    Features, PciConfigAccess, Region, RegionWindow, VirtioPciLayout, VirtioPciWindows, NO_VECTOR,
    VIRTIO_GPU_PCI_DEVICE_ID, VIRTIO_PCI_VENDOR_ID,
};
use viogpu_common::Result;
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;

use crate::vga::Vga;

/// Offsets of the virtio structures in BAR 4 of virtio-gpu-pci (as QEMU lays them out;
/// [`BarLayout::GPU_PCI`]).
pub const COMMON_OFFSET: u32 = 0x0000;
/// ISR status offset in BAR 4 (virtio-gpu-pci).
pub const ISR_OFFSET: u32 = 0x1000;
/// Device configuration offset in BAR 4 (virtio-gpu-pci).
pub const DEVICE_OFFSET: u32 = 0x2000;
/// Notification area offset in BAR 4 (virtio-gpu-pci).
pub const NOTIFY_OFFSET: u32 = 0x3000;
/// Length of each structure's region (virtio-gpu-pci).
pub const REGION_LEN: u32 = 0x1000;
/// The BAR holding the virtio structures (virtio-gpu-pci).
pub const VIRTIO_BAR: u8 = 4;
/// The BAR holding the MSI-X table (offset 0) and pending-bit array (offset 0x800)
/// (virtio-gpu-pci).
pub const MSIX_BAR: u8 = 1;
/// Notify offset multiplier: queue `q`'s doorbell is at the notify offset plus `4 * q`.
pub const NOTIFY_OFF_MULTIPLIER: u32 = 4;
/// The VGA memory of QEMU's virtio-vga (it fixes `vram_size_mb` at 8).
pub const VIRTIO_VGA_MEMORY: usize = 8 << 20;
const VIRTIO_BAR_LEN: u64 = 0x4000;
const MSIX_BAR_LEN: u64 = 0x1000;
const MSIX_PBA_OFFSET: u32 = 0x800;
/// Where the firmware put the BARs.
const VGA_BAR_ADDRESS: u32 = 0xFD00_0000;
const MSIX_BAR_ADDRESS: u32 = 0xFEA0_0000;
const VIRTIO_BAR_ADDRESS: u32 = 0xFE80_0000;

/// Which structure of the virtio BAR a register belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Structure {
    Common,
    Isr,
    Device,
    Notify,
}

/// Where the BARs and the virtio structures are: QEMU's virtio-gpu-pci or virtio-vga.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarLayout {
    /// The BAR holding the virtio structures.
    pub virtio_bar: u8,
    /// The BAR holding the MSI-X table (offset 0) and pending-bit array (offset 0x800).
    pub msix_bar: u8,
    /// (offset, length) of the common configuration, ISR, device configuration and
    /// notification area in the virtio BAR.
    pub regions: [(u32, u32); 4],
}

impl BarLayout {
    /// QEMU's virtio-gpu-pci.
    pub const GPU_PCI: Self = Self {
        virtio_bar: VIRTIO_BAR,
        msix_bar: MSIX_BAR,
        regions: [
            (COMMON_OFFSET, REGION_LEN),
            (ISR_OFFSET, REGION_LEN),
            (DEVICE_OFFSET, REGION_LEN),
            (NOTIFY_OFFSET, REGION_LEN),
        ],
    };
    /// QEMU's virtio-vga (page-per-vq off: common and ISR halved to make room for the VGA
    /// registers at the start of the BAR).
    pub const VGA: Self = Self {
        virtio_bar: 2,
        msix_bar: 4,
        regions: [
            (0x1000, 0x0800),
            (0x1800, 0x0800),
            (0x2000, 0x1000),
            (0x3000, 0x1000),
        ],
    };

    /// The structure at `offset` of the virtio BAR and the offset inside it.
    fn structure_at(&self, offset: u32) -> Option<(Structure, u32)> {
        let kinds = [
            Structure::Common,
            Structure::Isr,
            Structure::Device,
            Structure::Notify,
        ];
        kinds
            .into_iter()
            .zip(self.regions)
            .find(|&(_, (start, len))| offset >= start && offset - start < len)
            .map(|(kind, (start, _))| (kind, offset - start))
    }
}

// Capability placement, as `lspci` shows it for QEMU's virtio-gpu-pci.
const CAP_MSIX: usize = 0x98;
const CAP_PCI_CFG: usize = 0x84;
const CAP_NOTIFY: usize = 0x70;
const CAP_DEVICE: usize = 0x60;
const CAP_ISR: usize = 0x50;
const CAP_COMMON: usize = 0x40;

const STATUS_FEATURES_OK: u8 = 8;
const STATUS_DRIVER_OK: u8 = 4;
const ISR_QUEUE: u8 = 1;
const ISR_CONFIG: u8 = 2;
/// virtio-gpu `VIRTIO_GPU_EVENT_DISPLAY`.
pub const EVENT_DISPLAY: u32 = 1;

/// How the emulated device presents itself; [`Default`] is QEMU's virtio-gpu-pci.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// Feature bits offered.
    pub device_features: u64,
    /// Maximum size of each queue (controlq, cursorq). 0 means "queue absent"; a value that
    /// is not a power of two is reported as is (a garbage device).
    pub queue_sizes: Vec<u16>,
    /// `num_scanouts` in the device configuration (any value, for garbage tests).
    pub num_scanouts: u32,
    /// `num_capsets` in the device configuration.
    pub num_capsets: u32,
    /// MSI-X table entries; vectors at or above it are refused with NO_VECTOR.
    pub msix_table_size: u16,
    /// Refuse FEATURES_OK whatever the driver asks for.
    pub reject_features: bool,
    /// A device behind an IOMMU, as QEMU's `iommu_platform=on`: VIRTIO_F_ACCESS_PLATFORM is
    /// offered (whatever [`device_features`](Self::device_features) says) and FEATURES_OK is
    /// refused unless the driver accepted it (QEMU's `virtio_validate_features`; the spec
    /// lets such a device fail to operate without it).
    pub require_access_platform: bool,
    /// A virtio-vga with this many bytes of VGA memory (QEMU: [`VIRTIO_VGA_MEMORY`]) instead
    /// of a virtio-gpu-pci; `None`: virtio-gpu-pci.
    pub vga_memory: Option<usize>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            device_features: (Features::VERSION_1
                | Features::RING_INDIRECT_DESC
                | Features::RING_EVENT_IDX
                | Features::GPU_EDID)
                .bits(),
            queue_sizes: vec![64, 16],
            num_scanouts: 1,
            num_capsets: 0,
            msix_table_size: 3,
            reject_features: false,
            require_access_platform: false,
            vga_memory: None,
        }
    }
}

impl ModelConfig {
    /// This device with `VIRTIO_GPU_F_RESOURCE_BLOB` offered (QEMU's `blob=true`); the GPU
    /// backend behind it needs [`GpuConfig::blob`](crate::gpu::GpuConfig) too.
    pub fn with_blob(mut self) -> Self {
        self.device_features |= Features::GPU_RESOURCE_BLOB.bits();
        self
    }

    /// QEMU's virtio-vga (8 MiB of VGA memory), otherwise as [`Default`].
    pub fn virtio_vga() -> Self {
        Self {
            vga_memory: Some(VIRTIO_VGA_MEMORY),
            ..Self::default()
        }
    }

    /// Where the BARs and virtio structures are.
    pub fn layout(&self) -> BarLayout {
        if self.vga_memory.is_some() {
            BarLayout::VGA
        } else {
            BarLayout::GPU_PCI
        }
    }
}

/// The GPU side of the device: what happens when the driver kicks a queue.
pub trait QueueHandler: Send {
    /// Queue `q` was notified; `queue` is ready and `mem` is guest memory. The handler pops
    /// chains and adds used entries; the shell raises the interrupt afterwards if the used
    /// ring moved and the driver wants one. The device lock is held during the call: the
    /// handler must not call back into the [`VirtioGpuPci`].
    fn queue_notify(&mut self, q: u16, queue: &mut Queue, mem: &GuestMemoryMmap);

    /// The driver reset the device; forget everything the device holds.
    fn reset(&mut self) {}

    /// True if the device still uses guest memory in `start..end` (buffers of requests it
    /// has not completed, pages attached to its resources): freeing it would be a driver bug.
    /// The default device keeps nothing.
    fn holds_memory(&self, _start: u64, _end: u64) -> bool {
        false
    }
}

/// The handler used until one is installed: leaves every buffer alone.
struct IgnoreQueues;

impl QueueHandler for IgnoreQueues {
    fn queue_notify(&mut self, _: u16, _: &mut Queue, _: &GuestMemoryMmap) {}
}

/// An interrupt the device raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// Used buffers on a queue, with the queue's MSI-X vector (NO_VECTOR: INTx only).
    Queue {
        /// Queue index.
        queue: u16,
        /// The queue's MSI-X vector at the time.
        vector: u16,
    },
    /// A configuration change, with the config MSI-X vector.
    Config {
        /// The config MSI-X vector at the time.
        vector: u16,
    },
}

/// One virtqueue of the device and its transport registers.
struct QueueSlot {
    queue: Queue,
    /// The size the device reports before the driver writes one.
    max_size: u16,
    /// What the `queue_size` register reads.
    size_reg: u16,
    msix_vector: u16,
    notify_off: u16,
}

impl QueueSlot {
    fn new(max_size: u16, index: u16) -> Self {
        // A garbage size still needs some Queue behind it; the driver must refuse to use it.
        let backing = Queue::new(max_size)
            .or_else(|_| Queue::new(32768))
            .unwrap_or_else(|_| unreachable!("32768 is a valid queue size"));
        Self {
            queue: backing,
            max_size,
            size_reg: max_size,
            msix_vector: NO_VECTOR,
            notify_off: index,
        }
    }

    fn reset(&mut self) {
        self.queue.reset();
        self.size_reg = self.max_size;
        self.msix_vector = NO_VECTOR;
    }
}

/// Everything the device holds, behind the mutex.
struct DeviceState {
    config: ModelConfig,
    mem: GuestMemoryMmap,
    handler: Box<dyn QueueHandler>,
    pci: [u8; 256],
    /// Writable bits of each config-space byte.
    pci_wmask: [u8; 256],
    msix_table: Vec<u8>,
    device_feature_select: u32,
    driver_feature_select: u32,
    driver_features: u64,
    config_msix_vector: u16,
    status: u8,
    config_generation: u8,
    queue_select: u16,
    queues: Vec<QueueSlot>,
    isr: u8,
    events_read: u32,
    interrupts: Vec<Interrupt>,
    /// (queue index from the doorbell address, value written) for every notify write.
    notifies: Vec<(u16, u16)>,
    /// A hung device: writing 0 to the status does not reset it.
    ignore_reset: bool,
    /// Becomes a hung device (`ignore_reset`) as soon as the driver enables a queue.
    hang_on_queue_enable: bool,
    /// Configuration-change events raised the moment the driver sets DRIVER_OK (0: none).
    events_on_driver_ok: u32,
    layout: BarLayout,
    /// The VGA of a virtio-vga.
    vga: Option<Vga>,
}

/// The emulated virtio-gpu-pci function. Clones share the device.
#[derive(Clone)]
pub struct VirtioGpuPci {
    state: Arc<Mutex<DeviceState>>,
}

impl std::fmt::Debug for VirtioGpuPci {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioGpuPci").finish_non_exhaustive()
    }
}

impl VirtioGpuPci {
    /// A device over `mem`, presenting itself as `config` says.
    pub fn new(mem: GuestMemoryMmap, config: ModelConfig) -> Self {
        let queues = (0u16..)
            .zip(&config.queue_sizes)
            .map(|(i, &size)| QueueSlot::new(size, i))
            .collect();
        let layout = config.layout();
        let vga = config.vga_memory.map(Vga::new);
        let (pci, pci_wmask) =
            build_config_space(config.msix_table_size, layout, config.vga_memory);
        let table_len = usize::from(config.msix_table_size) * 16;
        let state = DeviceState {
            mem,
            handler: Box::new(IgnoreQueues),
            pci,
            pci_wmask,
            msix_table: vec![0; table_len],
            device_feature_select: 0,
            driver_feature_select: 0,
            driver_features: 0,
            config_msix_vector: NO_VECTOR,
            status: 0,
            config_generation: 0,
            queue_select: 0,
            queues,
            isr: 0,
            events_read: 0,
            interrupts: Vec::new(),
            notifies: Vec::new(),
            ignore_reset: false,
            hang_on_queue_enable: false,
            events_on_driver_ok: 0,
            layout,
            vga,
            config,
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// QEMU's default virtio-gpu-pci over `mem`.
    pub fn with_memory(mem: GuestMemoryMmap) -> Self {
        Self::new(mem, ModelConfig::default())
    }

    fn lock(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Installs the GPU side that processes notified queues.
    /// Lets the device work on queue `q` outside a notification (a delayed completion), with
    /// the same interrupt rules as a notification.
    pub fn service_queue(
        &self,
        q: u16,
        work: impl FnOnce(&mut dyn QueueHandler, &mut Queue, &GuestMemoryMmap),
    ) {
        self.lock().service(q, work);
    }

    /// Whether the device behind the queues still uses guest memory in `start..end` (see
    /// [`QueueHandler::holds_memory`]); a reset device uses none.
    pub fn holds_memory(&self, start: u64, end: u64) -> bool {
        let state = self.lock();
        state.status != 0 && state.handler.holds_memory(start, end)
    }

    /// Installs the device behind the queues.
    pub fn set_handler(&self, handler: Box<dyn QueueHandler>) {
        self.lock().handler = handler;
    }

    /// The function's configuration space.
    pub fn config_space(&self) -> PciConfigSpace {
        PciConfigSpace {
            state: Arc::clone(&self.state),
        }
    }

    /// A mapping of BAR `index` (virtio-gpu-pci: 1 the MSI-X table, 4 the virtio structures;
    /// virtio-vga: 0 the VGA memory, 2 the VGA registers and virtio structures, 4 the MSI-X
    /// table; others read all-ones).
    pub fn bar(&self, index: u8) -> BarWindow {
        BarWindow {
            state: Arc::clone(&self.state),
            bar: index,
        }
    }

    /// Mapped length of BAR `index`, `None` for an unimplemented BAR.
    pub fn bar_len(&self, index: u8) -> Option<u64> {
        let s = self.lock();
        match index {
            i if i == s.layout.msix_bar => Some(MSIX_BAR_LEN),
            i if i == s.layout.virtio_bar => Some(VIRTIO_BAR_LEN),
            0 => s.vga.as_ref().map(Vga::memory_len),
            _ => None,
        }
    }

    /// Where the BARs and virtio structures are.
    pub fn layout(&self) -> BarLayout {
        self.lock().layout
    }

    /// What the VGA of a virtio-vga shows (`None`: no VGA, or nothing shown; see
    /// [`Vga::picture`]). The host shows it instead of the virtio scanout 0 while the GPU's
    /// virtio display is inactive.
    pub fn vga_picture(&self) -> Option<crate::gpu::Image> {
        self.lock().vga.as_ref().and_then(Vga::picture)
    }

    /// Reads the VGA memory at `offset` (what BAR 0 holds); false without a VGA or out of
    /// range.
    pub fn read_vga_memory(&self, offset: u64, buf: &mut [u8]) -> bool {
        self.lock()
            .vga
            .as_ref()
            .is_some_and(|v| v.read_memory(offset, buf))
    }

    /// Writes the VGA memory at `offset`, as a CPU writing through BAR 0; false without a VGA
    /// or out of range.
    pub fn write_vga_memory(&self, offset: u64, data: &[u8]) -> bool {
        self.lock()
            .vga
            .as_mut()
            .is_some_and(|v| v.write_memory(offset, data))
    }

    /// Changes the VGA of a virtio-vga (fault injection: [`Vga::set_frozen`],
    /// [`Vga::set_id`]); nothing without a VGA.
    pub fn edit_vga(&self, edit: impl FnOnce(&mut Vga)) {
        if let Some(vga) = self.lock().vga.as_mut() {
            edit(vga);
        }
    }

    /// VGA register accesses the model does not implement (0 without a VGA).
    pub fn vga_unmodelled_accesses(&self) -> u64 {
        self.lock().vga.as_ref().map_or(0, Vga::unmodelled_accesses)
    }

    /// The four register windows a transport needs, cut from the BAR mappings as a platform
    /// would cut them.
    pub fn transport_windows(
        &self,
        layout: &VirtioPciLayout,
    ) -> Result<VirtioPciWindows<RegionWindow<BarWindow>>> {
        layout.check_bars(|bar| self.bar_len(bar))?;
        let window = |region: Region| RegionWindow::for_region(self.bar(region.bar), &region);
        Ok(VirtioPciWindows {
            common: window(layout.common)?,
            notify: window(layout.notify)?,
            isr: window(layout.isr)?,
            device: window(layout.device)?,
        })
    }

    /// Edits the raw config space (for building broken devices).
    pub fn edit_config_space(&self, edit: impl FnOnce(&mut [u8; 256])) {
        edit(&mut self.lock().pci);
    }

    /// Sets what `queue_notify_off` reads for queue `q` (for out-of-region tests).
    pub fn set_queue_notify_off(&self, q: u16, notify_off: u16) {
        if let Some(slot) = self.lock().queues.get_mut(usize::from(q)) {
            slot.notify_off = notify_off;
        }
    }

    /// Refuse FEATURES_OK from now on (`true`), or accept it again (`false`), as
    /// [`ModelConfig::reject_features`] does from the start.
    pub fn set_reject_features(&self, reject: bool) {
        self.lock().config.reject_features = reject;
    }

    /// A hung device (`true`): a status write of 0 is ignored, so a reset never completes
    /// and the device keeps its queues; `false` makes it reset normally again.
    pub fn set_ignore_reset(&self, ignore: bool) {
        self.lock().ignore_reset = ignore;
    }

    /// A device that hangs (stops confirming resets, as [`Self::set_ignore_reset`]) the moment
    /// the driver enables one of its queues: the driver has then told it ring addresses it may
    /// keep using.
    pub fn set_hang_on_queue_enable(&self, hang: bool) {
        self.lock().hang_on_queue_enable = hang;
    }

    /// A device that raises a configuration change with `events` (0: none) the moment the
    /// driver sets DRIVER_OK, as a host whose display changed during the handshake does.
    pub fn set_events_on_driver_ok(&self, events: u32) {
        self.lock().events_on_driver_ok = events;
    }

    /// Whether the ISR status is non-zero: with a line interrupt, the device holds the line
    /// asserted until the driver reads (and so clears) it.
    pub fn isr_pending(&self) -> bool {
        self.lock().isr != 0
    }

    /// Insist on VIRTIO_F_ACCESS_PLATFORM from now on (`true`), as
    /// [`ModelConfig::require_access_platform`] does from the start, or stop (`false`).
    pub fn set_require_access_platform(&self, require: bool) {
        self.lock().config.require_access_platform = require;
    }

    /// Changes the feature bits offered from now on (a different or changed device).
    pub fn set_device_features(&self, features: u64) {
        self.lock().config.device_features = features;
    }

    /// Changes `num_scanouts` as the device reports it.
    pub fn set_num_scanouts(&self, n: u32) {
        self.lock().config.num_scanouts = n;
    }

    /// Runs `inspect` on queue `q`'s `virtio_queue::Queue`.
    pub fn with_queue<T>(&self, q: u16, inspect: impl FnOnce(&Queue) -> T) -> Option<T> {
        self.lock()
            .queues
            .get(usize::from(q))
            .map(|slot| inspect(&slot.queue))
    }

    /// Queue `q`'s MSI-X vector register.
    pub fn queue_msix_vector(&self, q: u16) -> Option<u16> {
        self.lock()
            .queues
            .get(usize::from(q))
            .map(|slot| slot.msix_vector)
    }

    /// The device status register.
    pub fn status(&self) -> u8 {
        self.lock().status
    }

    /// The features the driver wrote.
    pub fn driver_features(&self) -> u64 {
        self.lock().driver_features
    }

    /// The config MSI-X vector register.
    pub fn config_msix_vector(&self) -> u16 {
        self.lock().config_msix_vector
    }

    /// Pending `events_read` bits.
    pub fn events_read(&self) -> u32 {
        self.lock().events_read
    }

    /// Every notify write so far: (queue of the doorbell address, value written).
    pub fn notifies(&self) -> Vec<(u16, u16)> {
        self.lock().notifies.clone()
    }

    /// Takes the interrupts raised since the last call.
    pub fn take_interrupts(&self) -> Vec<Interrupt> {
        std::mem::take(&mut self.lock().interrupts)
    }

    /// True if the driver enabled MSI-X in the capability.
    pub fn msix_enabled(&self) -> bool {
        self.lock().pci[CAP_MSIX + 3] & 0x80 != 0
    }

    /// Signals a configuration change: sets `events` in `events_read`, bumps the config
    /// generation, sets ISR bit 1 and raises a config interrupt.
    pub fn raise_config_change(&self, events: u32) {
        self.lock().config_change(events);
    }
}

/// Builds QEMU's virtio-gpu-pci (or virtio-vga) config space and its writable-bit mask.
fn build_config_space(
    msix_table_size: u16,
    layout: BarLayout,
    vga_memory: Option<usize>,
) -> ([u8; 256], [u8; 256]) {
    let mut c = [0u8; 256];
    let mut w = [0u8; 256];
    let put16 =
        |c: &mut [u8; 256], at: usize, v: u16| c[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |c: &mut [u8; 256], at: usize, v: u32| c[at..at + 4].copy_from_slice(&v.to_le_bytes());

    put16(&mut c, 0x00, VIRTIO_PCI_VENDOR_ID);
    put16(&mut c, 0x02, VIRTIO_GPU_PCI_DEVICE_ID);
    put16(&mut w, 0x04, 0x0407); // command: I/O, memory, bus master, INTx disable
    put16(&mut c, 0x06, 0x0010); // status: capability list
    c[0x08] = 1; // revision
                 // Class display; subclass other display controller, or VGA-compatible for virtio-vga.
    c[0x0A] = if vga_memory.is_some() { 0x00 } else { 0x80 };
    c[0x0B] = 0x03;
    let bar_reg = |index: u8| 0x10 + 4 * usize::from(index);
    // The MSI-X BAR: 32-bit memory. The virtio BAR: 64-bit prefetchable memory. The VGA
    // memory (virtio-vga): BAR 0, 32-bit prefetchable memory.
    put32(&mut c, bar_reg(layout.msix_bar), MSIX_BAR_ADDRESS);
    put32(&mut w, bar_reg(layout.msix_bar), !(MSIX_BAR_LEN as u32 - 1));
    put32(&mut c, bar_reg(layout.virtio_bar), VIRTIO_BAR_ADDRESS | 0xC);
    put32(
        &mut w,
        bar_reg(layout.virtio_bar),
        !(VIRTIO_BAR_LEN as u32 - 1),
    );
    put32(&mut w, bar_reg(layout.virtio_bar) + 4, u32::MAX);
    if let Some(len) = vga_memory {
        put32(&mut c, bar_reg(0), VGA_BAR_ADDRESS | 0x8);
        put32(&mut w, bar_reg(0), !(len as u32 - 1));
    }
    put16(&mut c, 0x2C, VIRTIO_PCI_VENDOR_ID); // subsystem vendor
    put16(&mut c, 0x2E, 0x1100); // subsystem id
    c[0x34] = CAP_MSIX as u8;
    w[0x3C] = 0xFF; // interrupt line
    c[0x3D] = 1; // INTA

    // MSI-X: table in BAR 1 at 0, PBA in BAR 1 at 0x800; enable and function mask writable.
    c[CAP_MSIX] = 0x11;
    c[CAP_MSIX + 1] = CAP_PCI_CFG as u8;
    put16(
        &mut c,
        CAP_MSIX + 2,
        msix_table_size.saturating_sub(1) & 0x7FF,
    );
    put16(&mut w, CAP_MSIX + 2, 0xC000);
    put32(&mut c, CAP_MSIX + 4, u32::from(layout.msix_bar));
    put32(
        &mut c,
        CAP_MSIX + 8,
        MSIX_PBA_OFFSET | u32::from(layout.msix_bar),
    );

    let [common, isr, device, notify] = layout.regions;
    let mut vendor_cap =
        |at: usize, next: usize, cfg_type: u8, region: (u32, u32), extra: Option<u32>| {
            c[at] = 0x09;
            c[at + 1] = next as u8;
            c[at + 2] = if extra.is_some() { 20 } else { 16 };
            c[at + 3] = cfg_type;
            c[at + 4] = if cfg_type == 5 { 0 } else { layout.virtio_bar };
            if cfg_type != 5 {
                put32(&mut c, at + 8, region.0);
                put32(&mut c, at + 12, region.1);
            }
            if let Some(x) = extra {
                put32(&mut c, at + 16, x);
            }
        };
    vendor_cap(CAP_PCI_CFG, CAP_NOTIFY, 5, (0, 0), Some(0));
    vendor_cap(
        CAP_NOTIFY,
        CAP_DEVICE,
        2,
        notify,
        Some(NOTIFY_OFF_MULTIPLIER),
    );
    vendor_cap(CAP_DEVICE, CAP_ISR, 4, device, None);
    vendor_cap(CAP_ISR, CAP_COMMON, 3, isr, None);
    vendor_cap(CAP_COMMON, 0, 1, common, None);
    (c, w)
}

/// A handle on the function's configuration space.
#[derive(Clone)]
pub struct PciConfigSpace {
    state: Arc<Mutex<DeviceState>>,
}

impl PciConfigSpace {
    fn read(&self, offset: u16, width: usize) -> u32 {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let at = usize::from(offset);
        match s.pci.get(at..at + width) {
            Some(bytes) => bytes
                .iter()
                .rev()
                .fold(0, |acc, &b| (acc << 8) | u32::from(b)),
            None => u32::MAX,
        }
    }

    fn write(&self, offset: u16, width: usize, value: u32) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let s = &mut *s;
        let at = usize::from(offset);
        let (Some(bytes), Some(mask)) = (
            s.pci.get_mut(at..at + width),
            s.pci_wmask.get(at..at + width),
        ) else {
            return;
        };
        for ((byte, &mask), new) in bytes.iter_mut().zip(mask).zip(value.to_le_bytes()) {
            *byte = (*byte & !mask) | (new & mask);
        }
    }
}

impl PciConfigAccess for PciConfigSpace {
    fn read_u8(&self, offset: u16) -> u8 {
        self.read(offset, 1) as u8
    }
    fn read_u16(&self, offset: u16) -> u16 {
        self.read(offset, 2) as u16
    }
    fn read_u32(&self, offset: u16) -> u32 {
        self.read(offset, 4)
    }
    fn write_u16(&self, offset: u16, value: u16) {
        self.write(offset, 2, value.into())
    }
    fn write_u32(&self, offset: u16, value: u32) {
        self.write(offset, 4, value)
    }
}

/// A mapping of one BAR of the device.
#[derive(Clone)]
pub struct BarWindow {
    state: Arc<Mutex<DeviceState>>,
    bar: u8,
}

impl BarWindow {
    fn read(&self, offset: usize, width: usize) -> u32 {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Ok(offset) = u32::try_from(offset) else {
            return u32::MAX;
        };
        let layout = s.layout;
        match self.bar {
            bar if bar == layout.msix_bar => {
                let at = offset as usize;
                match s.msix_table.get(at..at + width) {
                    Some(bytes) => bytes
                        .iter()
                        .rev()
                        .fold(0, |acc, &b| (acc << 8) | u32::from(b)),
                    // Pending bits and the unused rest of the BAR.
                    None if u64::from(offset) < MSIX_BAR_LEN => 0,
                    None => u32::MAX,
                }
            }
            bar if bar == layout.virtio_bar => {
                if let (Some(vga), true) = (s.vga.as_mut(), Vga::claims(offset)) {
                    return vga.read_register(offset, width);
                }
                match layout.structure_at(offset) {
                    Some((Structure::Common, off)) => s.read_common(off),
                    Some((Structure::Isr, 0)) => u32::from(std::mem::take(&mut s.isr)),
                    Some((Structure::Device, off)) => s.read_device_config(off),
                    Some(_) => 0,
                    None if u64::from(offset) < VIRTIO_BAR_LEN => 0,
                    None => u32::MAX,
                }
            }
            0 => {
                let mut bytes = [0u8; 4];
                let read = match (s.vga.as_ref(), bytes.get_mut(..width)) {
                    (Some(vga), Some(buf)) => vga.read_memory(u64::from(offset), buf),
                    _ => false,
                };
                if read {
                    u32::from_le_bytes(bytes)
                } else {
                    u32::MAX
                }
            }
            _ => u32::MAX,
        }
    }

    fn write(&self, offset: usize, width: usize, value: u32) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Ok(offset) = u32::try_from(offset) else {
            return;
        };
        let layout = s.layout;
        match self.bar {
            bar if bar == layout.msix_bar => {
                let at = offset as usize;
                if let Some(bytes) = s.msix_table.get_mut(at..at + width) {
                    bytes.copy_from_slice(&value.to_le_bytes()[..width]);
                }
            }
            bar if bar == layout.virtio_bar => {
                if let (Some(vga), true) = (s.vga.as_mut(), Vga::claims(offset)) {
                    vga.write_register(offset, width, value);
                    return;
                }
                match layout.structure_at(offset) {
                    Some((Structure::Common, off)) => s.write_common(off, value),
                    Some((Structure::Device, off)) => s.write_device_config(off, value),
                    Some((Structure::Notify, off)) => s.notify(off, value as u16),
                    _ => {}
                }
            }
            0 => {
                if let Some(vga) = s.vga.as_mut() {
                    vga.write_memory(u64::from(offset), &value.to_le_bytes()[..width]);
                }
            }
            _ => {}
        }
    }
}

impl RegisterAccess for BarWindow {
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
        self.write(offset, 1, value.into())
    }
    fn write_u16(&self, offset: usize, value: u16) {
        self.write(offset, 2, value.into())
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.write(offset, 4, value)
    }
}

/// The (low, high) arguments of `Queue::set_*_address` that replace one half of an address.
fn half(high: bool, value: u32) -> (Option<u32>, Option<u32>) {
    if high {
        (None, Some(value))
    } else {
        (Some(value), None)
    }
}

impl DeviceState {
    fn selected(&self) -> Option<&QueueSlot> {
        self.queues.get(usize::from(self.queue_select))
    }

    fn read_common(&self, off: u32) -> u32 {
        let queue = self.selected();
        let addr_half = |addr: u64| {
            if off % 8 == 4 {
                (addr >> 32) as u32
            } else {
                addr as u32
            }
        };
        match off {
            0x00 => self.device_feature_select,
            0x04 => match self.device_feature_select {
                0 => self.offered_features() as u32,
                1 => (self.offered_features() >> 32) as u32,
                _ => 0,
            },
            0x08 => self.driver_feature_select,
            0x0c => match self.driver_feature_select {
                0 => self.driver_features as u32,
                1 => (self.driver_features >> 32) as u32,
                _ => 0,
            },
            0x10 => self.config_msix_vector.into(),
            0x12 => self.queues.len() as u32,
            0x14 => self.status.into(),
            0x15 => self.config_generation.into(),
            0x16 => self.queue_select.into(),
            0x18 => queue.map_or(0, |q| q.size_reg.into()),
            0x1a => queue.map_or(NO_VECTOR, |q| q.msix_vector).into(),
            0x1c => queue.map_or(0, |q| u32::from(q.queue.ready())),
            0x1e => queue.map_or(0, |q| q.notify_off.into()),
            0x20 | 0x24 => queue.map_or(0, |q| addr_half(q.queue.desc_table())),
            0x28 | 0x2c => queue.map_or(0, |q| addr_half(q.queue.avail_ring())),
            0x30 | 0x34 => queue.map_or(0, |q| addr_half(q.queue.used_ring())),
            _ => 0,
        }
    }

    fn write_common(&mut self, off: u32, value: u32) {
        match off {
            0x00 => self.device_feature_select = value,
            0x08 => self.driver_feature_select = value,
            0x0c if self.status & STATUS_FEATURES_OK == 0 => match self.driver_feature_select {
                0 => {
                    self.driver_features = (self.driver_features & !0xFFFF_FFFF) | u64::from(value)
                }
                1 => {
                    self.driver_features =
                        (self.driver_features & 0xFFFF_FFFF) | (u64::from(value) << 32)
                }
                _ => {}
            },
            0x10 => self.config_msix_vector = self.accept_vector(value as u16),
            0x14 => self.write_status(value as u8),
            0x16 => self.queue_select = value as u16,
            _ => self.write_queue_register(off, value),
        }
    }

    fn accept_vector(&self, vector: u16) -> u16 {
        if vector < self.config.msix_table_size {
            vector
        } else {
            NO_VECTOR
        }
    }

    fn config_change(&mut self, events: u32) {
        self.events_read |= events;
        self.config_generation = self.config_generation.wrapping_add(1);
        self.isr |= ISR_CONFIG;
        let vector = self.config_msix_vector;
        self.interrupts.push(Interrupt::Config { vector });
    }

    fn write_status(&mut self, value: u8) {
        if value == 0 {
            if !self.ignore_reset {
                self.reset();
            }
            return;
        }
        let mut value = value;
        if value & STATUS_FEATURES_OK != 0 && self.status & STATUS_FEATURES_OK == 0 {
            let offered = self.driver_features & !self.offered_features() == 0;
            let version_1 = self.driver_features & Features::VERSION_1.bits() != 0;
            let platform = self.driver_features & Features::ACCESS_PLATFORM.bits() != 0;
            let platform_ok = platform || !self.config.require_access_platform;
            if self.config.reject_features || !offered || !version_1 || !platform_ok {
                value &= !STATUS_FEATURES_OK;
            }
        }
        let driver_ok_now = value & STATUS_DRIVER_OK != 0 && self.status & STATUS_DRIVER_OK == 0;
        self.status = value;
        if driver_ok_now && self.events_on_driver_ok != 0 {
            self.config_change(self.events_on_driver_ok);
        }
    }

    /// The feature bits the device offers.
    fn offered_features(&self) -> u64 {
        if self.config.require_access_platform {
            self.config.device_features | Features::ACCESS_PLATFORM.bits()
        } else {
            self.config.device_features
        }
    }

    fn reset(&mut self) {
        self.status = 0;
        self.device_feature_select = 0;
        self.driver_feature_select = 0;
        self.driver_features = 0;
        self.config_msix_vector = NO_VECTOR;
        self.queue_select = 0;
        self.isr = 0;
        self.events_read = 0;
        self.queues.iter_mut().for_each(QueueSlot::reset);
        self.handler.reset();
    }

    fn write_queue_register(&mut self, off: u32, value: u32) {
        let vector = self.accept_vector(value as u16);
        let event_idx = self.driver_features & Features::RING_EVENT_IDX.bits() != 0;
        let Some(slot) = self.queues.get_mut(usize::from(self.queue_select)) else {
            return;
        };
        let high = off % 8 == 4;
        match off {
            0x18 => {
                slot.size_reg = value as u16;
                slot.queue.set_size(value as u16);
            }
            0x1a => slot.msix_vector = vector,
            0x1c => {
                slot.queue.set_event_idx(event_idx);
                slot.queue.set_ready(value == 1);
                if value == 1 && self.hang_on_queue_enable {
                    self.ignore_reset = true;
                }
            }
            0x20 | 0x24 => {
                let (lo, hi) = half(high, value);
                slot.queue.set_desc_table_address(lo, hi);
            }
            0x28 | 0x2c => {
                let (lo, hi) = half(high, value);
                slot.queue.set_avail_ring_address(lo, hi);
            }
            0x30 | 0x34 => {
                let (lo, hi) = half(high, value);
                slot.queue.set_used_ring_address(lo, hi);
            }
            _ => {}
        }
    }

    fn read_device_config(&self, off: u32) -> u32 {
        match off {
            0 => self.events_read,
            8 => self.config.num_scanouts,
            12 => self.config.num_capsets,
            _ => 0,
        }
    }

    fn write_device_config(&mut self, off: u32, value: u32) {
        if off == 4 {
            self.events_read &= !value;
        }
    }

    /// A doorbell write at `off` in the notify area.
    fn notify(&mut self, off: u32, value: u16) {
        let doorbell = (off / NOTIFY_OFF_MULTIPLIER) as u16;
        self.notifies.push((doorbell, value));
        if self.status & STATUS_DRIVER_OK == 0 {
            return;
        }
        let Some(q) = self
            .queues
            .iter()
            .position(|slot| slot.notify_off == doorbell)
        else {
            return;
        };
        self.service(q as u16, |handler, queue, mem| {
            handler.queue_notify(q as u16, queue, mem)
        });
    }

    /// Runs `work` on queue `q` as the device (the handler, the queue, guest memory), then
    /// raises the queue interrupt if the used ring moved and the driver wants to hear of it.
    fn service(
        &mut self,
        q: u16,
        work: impl FnOnce(&mut dyn QueueHandler, &mut Queue, &GuestMemoryMmap),
    ) {
        let Self {
            handler,
            queues,
            mem,
            isr,
            interrupts,
            ..
        } = self;
        let Some(slot) = queues.get_mut(usize::from(q)) else {
            return;
        };
        if !slot.queue.ready() {
            return;
        }
        let used_before = slot.queue.next_used();
        work(handler.as_mut(), &mut slot.queue, mem);
        if slot.queue.next_used() != used_before
            && slot.queue.needs_notification(mem).unwrap_or(true)
        {
            *isr |= ISR_QUEUE;
            interrupts.push(Interrupt::Queue {
                queue: q,
                vector: slot.msix_vector,
            });
        }
    }
}
