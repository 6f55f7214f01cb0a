//! A whole virtio-gpu machine for tests of the core: guest memory, the PCI function with the
//! GPU backend behind it, the core's transport brought up with the core's own bring-up
//! sequence, and a [`GpuDevice`] over a virtual clock.
//!
//! The device processes requests synchronously when notified, so a test is deterministic: a
//! command the driver sends is answered before the notify register write returns, unless the
//! test told the backend to hold completions. Time is virtual: a waiter that "waits" advances
//! the clock, so timeout tests take no real time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use viogpu_common::bring_up::{bring_up, BringUpConfig, Vectors};
use viogpu_common::gpu::{GpuDevice, Notify, Platform};
use viogpu_common::transport::{
    Features, RegionWindow, VirtioPciLayout, VirtioPciTransport, GPU_DEVICE_CFG_LEN,
};
use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use crate::gpu::{GpuBackend, GpuConfig};
use crate::guest_memory::GuestMemoryHal;
use crate::pci::{BarWindow, ModelConfig, QueueHandler, VirtioGpuPci};

/// Guest physical address where test guest memory starts.
pub const GUEST_MEMORY_BASE: u64 = 0x1000_0000;
/// Size of test guest memory: room for an 8K framebuffer twice plus rings.
pub const GUEST_MEMORY_SIZE: usize = 512 << 20;

/// The GPU backend shared between the PCI shell (as its queue handler) and the test.
#[derive(Clone)]
pub struct SharedBackend(pub Arc<Mutex<GpuBackend>>);

impl SharedBackend {
    /// Locks the backend for inspection or fault injection.
    pub fn lock(&self) -> MutexGuard<'_, GpuBackend> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl QueueHandler for SharedBackend {
    fn queue_notify(&mut self, q: u16, queue: &mut Queue, mem: &GuestMemoryMmap) {
        self.lock().consume_queue(q, queue, mem);
    }

    fn reset(&mut self) {
        self.lock().reset();
    }

    fn holds_memory(&self, start: u64, end: u64) -> bool {
        self.lock().holds_memory(start, end)
    }
}

/// A virtual monotonic clock; waiting advances it, unless it is frozen (as the kernel's
/// interrupt time is during a bugcheck, with the clock interrupt off).
#[derive(Clone, Default)]
pub struct VirtualClock(Arc<AtomicU64>, Arc<std::sync::atomic::AtomicBool>);

impl VirtualClock {
    /// Current virtual time in microseconds.
    pub fn now_us(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Moves time forward (not while frozen).
    pub fn advance(&self, us: u64) {
        if !self.1.load(Ordering::SeqCst) {
            self.0.fetch_add(us.max(1), Ordering::SeqCst);
        }
    }

    /// Stops (or restarts) the clock.
    pub fn freeze(&self, frozen: bool) {
        self.1.store(frozen, Ordering::SeqCst);
    }
}

/// Largest control queue the testbed asks for (QEMU offers 64).
pub const CONTROL_QUEUE_SIZE: u16 = 64;
/// Largest cursor queue the testbed asks for (QEMU offers 16).
pub const CURSOR_QUEUE_SIZE: u16 = 16;

/// The platform of the core's device layer in tests: virtual time, no IRQL.
#[derive(Clone, Default)]
pub struct TestPlatform {
    /// The clock waiters advance.
    pub clock: VirtualClock,
}

impl Platform for TestPlatform {
    type RaiseGuard = ();

    fn raise(&self, _queue: u16) -> Self::RaiseGuard {}

    fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    fn wait_for_completion(&self, timeout_us: u64) {
        self.clock.advance(timeout_us);
    }

    fn signal_completion(&self) {}

    fn stall_us(&self, us: u32) {
        self.clock.advance(u64::from(us));
    }
}

/// The transport type of the test machine.
pub type TestTransport = VirtioPciTransport<RegionWindow<BarWindow>>;

/// Rings the doorbell through the transport.
#[derive(Clone)]
pub struct TransportNotifier(pub Arc<Mutex<TestTransport>>);

impl Notify for TransportNotifier {
    fn notify(&self, queue: u16) {
        if let Ok(transport) = self.0.lock() {
            let _ = transport.notify(queue);
        }
    }
}

/// The device layer of the test machine.
pub type TestGpu = GpuDevice<GuestMemoryHal, TestPlatform, TransportNotifier>;

/// A running virtio-gpu machine.
pub struct Testbed {
    /// DMA memory (counts bytes in use).
    pub hal: GuestMemoryHal,
    /// The PCI function.
    pub pci: VirtioGpuPci,
    /// The host side of the GPU.
    pub backend: SharedBackend,
    /// The transport (shared with the notifier).
    pub transport: Arc<Mutex<TestTransport>>,
    /// The platform (virtual clock).
    pub platform: TestPlatform,
    /// The core's device layer.
    pub gpu: TestGpu,
    /// Features negotiated.
    pub features: Features,
}

impl Testbed {
    /// A machine with one 1024x768 scanout.
    pub fn new() -> Self {
        Self::with_config(GpuConfig::default())
    }

    /// A machine whose GPU backend has `config`.
    pub fn with_config(config: GpuConfig) -> Self {
        let hal = GuestMemoryHal::new(GUEST_MEMORY_BASE, GUEST_MEMORY_SIZE)
            .expect("guest memory for the testbed");
        let mut model = ModelConfig {
            num_scanouts: config.num_scanouts,
            ..ModelConfig::default()
        };
        if config.blob {
            model = model.with_blob();
        }
        let pci = VirtioGpuPci::new(hal.memory().clone(), model);
        let backend = SharedBackend(Arc::new(Mutex::new(GpuBackend::new(config))));
        pci.set_handler(Box::new(backend.clone()));
        let layout = VirtioPciLayout::discover(&pci.config_space(), GPU_DEVICE_CFG_LEN)
            .expect("virtio capabilities");
        let windows = pci.transport_windows(&layout).expect("transport windows");
        let transport = Arc::new(Mutex::new(VirtioPciTransport::new(layout, windows)));
        let platform = TestPlatform::default();
        let started = {
            let mut t = transport.lock().expect("transport lock");
            let config = BringUpConfig {
                wanted: Features::GPU_DRIVER,
                max_ring: [CONTROL_QUEUE_SIZE, CURSOR_QUEUE_SIZE],
                vectors: Vectors::per_source(t.layout().msix_table_size),
            };
            bring_up(&hal, &mut t, &config).expect("device bring-up")
        };
        let features = started.features;
        let gpu = started.into_device(
            hal.clone(),
            platform.clone(),
            TransportNotifier(transport.clone()),
        );
        Self {
            hal,
            pci,
            backend,
            transport,
            platform,
            gpu,
            features,
        }
    }

    /// Completes requests the backend held back (the "late answer"), raising interrupts as the
    /// device would.
    pub fn release_held(&self, queue: u16) {
        let backend = self.backend.clone();
        self.pci.service_queue(queue, |_, q, mem| {
            backend.lock().release_held(queue, q, mem);
        });
    }

    /// DMA bytes in use right now.
    pub fn dma_bytes(&self) -> usize {
        self.hal.allocated_bytes()
    }
}

impl Default for Testbed {
    fn default() -> Self {
        Self::new()
    }
}
