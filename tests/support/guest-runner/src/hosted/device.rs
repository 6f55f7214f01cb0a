//! The virtio-gpu PCI function made ready for the core: found in sysfs, memory decoding and
//! bus mastering on, its capabilities walked by the core ([`VirtioPciLayout::discover`]), each
//! BAR the layout names mapped once, and the core's [`VirtioPciTransport`] built over
//! [`RegionWindow`]s cut from those mappings. [`TransportNotifier`] rings the doorbell for the
//! core's device layer through the same transport.
//!
//! This is the guest's StartDevice up to (not including) the core's `bring_up`.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use viogpu_common::gpu::{GpuDevice, Notify};
use viogpu_common::transport::{
    Region, RegionWindow, VirtioPciLayout, VirtioPciTransport, VirtioPciWindows,
    GPU_DEVICE_CFG_LEN, VIRTIO_GPU_PCI_DEVICE_ID, VIRTIO_PCI_VENDOR_ID,
};

use super::bar::{BarMapping, RegisterWindow};
use super::dma::DevMemHal;
use super::pci::PciFunction;
use super::platform::PollingPlatform;

/// One register window of the transport: a virtio structure inside a mapped BAR.
pub type HostedWindow = RegionWindow<RegisterWindow>;
/// The core's transport over the guest's BAR mappings.
pub type HostedTransport = VirtioPciTransport<HostedWindow>;
/// The core's device layer as the guest runs it.
pub type HostedGpu = GpuDevice<DevMemHal, PollingPlatform, TransportNotifier>;

/// The transport shared between its owner (reset, bring-up) and the doorbell.
#[derive(Debug, Clone)]
pub struct SharedTransport(Arc<Mutex<HostedTransport>>);

impl SharedTransport {
    /// Locks the transport. Nothing panics while holding it, and a poisoned lock holds a
    /// transport in a defined state anyway, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, HostedTransport> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A doorbell for the core's device layer.
    pub fn notifier(&self) -> TransportNotifier {
        TransportNotifier(Arc::clone(&self.0))
    }
}

/// Rings a queue's doorbell through the transport.
#[derive(Debug, Clone)]
pub struct TransportNotifier(Arc<Mutex<HostedTransport>>);

impl Notify for TransportNotifier {
    fn notify(&self, queue: u16) {
        let transport = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = transport.notify(queue);
    }
}

/// The virtio-gpu function with its transport.
#[derive(Debug)]
pub struct VirtioGpuFunction {
    /// The PCI function (sysfs).
    pub pci: PciFunction,
    /// Where the virtio structures are, as the core found them.
    pub layout: VirtioPciLayout,
    /// The transport, shared with the doorbell.
    pub transport: SharedTransport,
}

impl VirtioGpuFunction {
    /// Finds the first modern virtio-gpu function and builds the core's transport over it.
    /// The device is not touched beyond config space and reading `num_queues`.
    pub fn open() -> io::Result<Self> {
        let pci = PciFunction::find(VIRTIO_PCI_VENDOR_ID, VIRTIO_GPU_PCI_DEVICE_ID)?;
        pci.enable_memory_and_bus_master()?;
        let layout = VirtioPciLayout::discover(&pci, GPU_DEVICE_CFG_LEN)
            .map_err(|e| io::Error::other(format!("{}: {e}", pci.address())))?;

        // Each BAR once, however many structures live in it.
        let mut bars: BTreeMap<u8, RegisterWindow> = BTreeMap::new();
        for region in layout.regions() {
            if let std::collections::btree_map::Entry::Vacant(slot) = bars.entry(region.bar) {
                let mapping = BarMapping::map(&pci, region.bar)?;
                let len = mapping.len();
                slot.insert(RegisterWindow::new(mapping, 0, len)?);
            }
        }
        layout
            .check_bars(|bar| bars.get(&bar).map(|w| w.len() as u64))
            .map_err(|e| io::Error::other(format!("{}: {e}", pci.address())))?;
        let window = |region: &Region| -> io::Result<HostedWindow> {
            let bar = bars
                .get(&region.bar)
                .ok_or_else(|| io::Error::other(format!("BAR {} not mapped", region.bar)))?;
            RegionWindow::for_region(bar.clone(), region)
                .map_err(|e| io::Error::other(e.to_string()))
        };
        let windows = VirtioPciWindows {
            common: window(&layout.common)?,
            notify: window(&layout.notify)?,
            isr: window(&layout.isr)?,
            device: window(&layout.device)?,
        };
        let transport = VirtioPciTransport::new(layout, windows);
        Ok(Self {
            pci,
            layout,
            transport: SharedTransport(Arc::new(Mutex::new(transport))),
        })
    }
}
