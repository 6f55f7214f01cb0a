//! DxgkDdiStartDevice: from the PnP resources to a running virtio-gpu device showing the
//! preferred mode on every enabled scanout.
//!
//! Order: device information and the translated resource list; the virtio capabilities in
//! PCI config space (read through `DxgkCbReadDeviceSpace`); the BARs they name, matched to
//! their memory resources and mapped with `DxgkCbMapMemory`; the transport (features
//! VERSION_1 | RING_INDIRECT_DESC | RING_EVENT_IDX | GPU_EDID), the control and cursor
//! queues, MSI-X vector 0 for everything when the OS granted message interrupts, DRIVER_OK;
//! then GET_DISPLAY_INFO and GET_EDID per scanout, the mode lists, the preferred mode on each
//! enabled scanout (and scanout 0 always, so Windows has a desktop to commit over), and the
//! cursor resource. Any failure undoes everything (device reset, memory freed, BARs
//! unmapped) and StartDevice fails with the step's status.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use viogpu_common::command::CommandQueue;
use viogpu_common::gpu::{WaitMode, CONTROL_QUEUE, CURSOR_QUEUE};
use viogpu_common::hal::DmaBuffer;
use viogpu_common::protocol::Format;
use viogpu_common::resource_id::ResourceIdAllocator;
use viogpu_common::transport::{
    read_bar, BarKind, Features, PciConfigAccess, QueueConfig, RegionWindow, VirtioPciLayout,
    VirtioPciWindows, GPU_DEVICE_CFG_LEN, NO_VECTOR,
};
use viogpu_common::virtqueue::{QueueFeatures, SplitQueue};
use viogpu_common::Error;

use super::{
    dxgk, resources, Adapter, BarMapping, CursorImage, DdiResult, Hardware, Head, IntoDdi,
    Notifier, State, Transport, BLACK,
};
use crate::ddi::*;
use crate::os;
use viogpu_common::blit::Rotation;
use viogpu_common::cursor::{CURSOR_BYTES, CURSOR_SIZE};

/// Largest ring the driver asks for: 256 control requests in flight is far more than a
/// display-only driver ever queues, and each slot costs a 4 KiB request buffer.
const MAX_RING: u16 = 256;
/// The MSI-X vector used for the configuration change and both queues.
const MSIX_VECTOR: u16 = 0;

/// PCI config space through `DxgkCbReadDeviceSpace`, one callback per read. The driver never
/// writes config space; writes are dropped.
struct DxgkConfigSpace<'a> {
    dxgk: &'a DXGKRNL_INTERFACE,
}

impl DxgkConfigSpace<'_> {
    fn read<const N: usize>(&self, offset: u16) -> [u8; N] {
        let mut buf = [0xFF; N];
        if !dxgk::read_config(self.dxgk, u32::from(offset), &mut buf) {
            buf = [0xFF; N];
        }
        buf
    }
}

impl PciConfigAccess for DxgkConfigSpace<'_> {
    fn read_u8(&self, offset: u16) -> u8 {
        u8::from_le_bytes(self.read::<1>(offset))
    }
    fn read_u16(&self, offset: u16) -> u16 {
        u16::from_le_bytes(self.read::<2>(offset))
    }
    fn read_u32(&self, offset: u16) -> u32 {
        u32::from_le_bytes(self.read::<4>(offset))
    }
    fn write_u16(&self, _offset: u16, _value: u16) {}
    fn write_u32(&self, _offset: u16, _value: u32) {}
}

/// What StartDevice tells dxgkrnl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartInfo {
    /// `NumberOfVideoPresentSources`.
    pub sources: u32,
    /// `NumberOfChildren`.
    pub children: u32,
}

/// The BAR mappings made so far, unmapped on drop unless handed over.
struct Mappings<'a> {
    dxgk: &'a DXGKRNL_INTERFACE,
    bars: [Option<(BarMapping, u64)>; 6],
    virts: Vec<usize>,
}

impl Mappings<'_> {
    /// Hands the mappings over (to `State::mappings`) instead of unmapping them.
    fn take_virts(mut self) -> Vec<usize> {
        self.bars = Default::default();
        core::mem::take(&mut self.virts)
    }
}

impl Drop for Mappings<'_> {
    fn drop(&mut self) {
        self.bars = Default::default();
        for virt in self.virts.drain(..) {
            dxgk::unmap_memory(self.dxgk, virt);
        }
    }
}

impl Adapter {
    /// DxgkDdiStartDevice.
    pub fn start_device(&self, interface: &DXGKRNL_INTERFACE) -> DdiResult<StartInfo> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if state.hw.is_some() {
            return Err(STATUS_INVALID_DEVICE_REQUEST);
        }
        let dxgk_copy = *interface;
        state.dxgk = Some(dxgk_copy);
        state.released = false;
        match self.bring_up(state, &dxgk_copy) {
            Ok(info) => Ok(info),
            Err(status) => {
                crate::trace!("StartDevice failed: {status:#x}");
                self.teardown(state, false);
                // A failed start leaves a stopped device: DDIs that need the interface
                // answer STATUS_DEVICE_NOT_READY.
                state.dxgk = None;
                Err(status)
            }
        }
    }

    fn bring_up(&self, state: &mut State, dxgk_if: &DXGKRNL_INTERFACE) -> DdiResult<StartInfo> {
        let info = dxgk::device_information(dxgk_if)?;
        let list = info.TranslatedResourceList.cast::<u8>().cast_const();
        if list.is_null() {
            return Err(STATUS_INVALID_PARAMETER);
        }
        // SAFETY: dxgkrnl hands a valid translated CM_RESOURCE_LIST that lives as long as the
        // device is started; its length follows from its own counts.
        let res = unsafe {
            let len = resources::list_len(list).ok_or(STATUS_INVALID_PARAMETER)?;
            resources::parse(core::slice::from_raw_parts(list, len))
        }
        .ddi()?;

        let cfg = DxgkConfigSpace { dxgk: dxgk_if };
        let layout = VirtioPciLayout::discover(&cfg, GPU_DEVICE_CFG_LEN).ddi()?;

        let mut maps = Mappings {
            dxgk: dxgk_if,
            bars: Default::default(),
            virts: Vec::new(),
        };
        for region in layout.regions() {
            let index = usize::from(region.bar);
            if maps.bars.get(index).is_some_and(Option::is_some) {
                continue;
            }
            let bar = read_bar(&cfg, region.bar).ddi()?;
            if bar.kind == BarKind::Io {
                return Err(STATUS_DEVICE_HARDWARE_ERROR);
            }
            let mem = res
                .memory_at(bar.address)
                .ok_or(STATUS_DEVICE_HARDWARE_ERROR)?;
            let len = u32::try_from(mem.length).unwrap_or(u32::MAX);
            let virt = dxgk::map_memory(dxgk_if, mem.start, len)?;
            maps.virts.push(virt);
            // SAFETY: `virt..virt + len` was just mapped by DxgkCbMapMemory for this BAR and
            // stays mapped until `Mappings` unmaps it, after every window over it is dropped.
            let mmio = unsafe { os::Mmio::new(virt, len as usize) }.ok_or(STATUS_UNSUCCESSFUL)?;
            if let Some(slot) = maps.bars.get_mut(index) {
                *slot = Some((Arc::new(mmio), u64::from(len)));
            }
        }
        layout
            .check_bars(|bar| {
                maps.bars
                    .get(usize::from(bar))
                    .and_then(|b| b.as_ref().map(|(_, len)| *len))
            })
            .ddi()?;
        let bar_of = |bar: u8| -> DdiResult<BarMapping> {
            maps.bars
                .get(usize::from(bar))
                .and_then(|b| b.as_ref().map(|(m, _)| m.clone()))
                .ok_or(STATUS_DEVICE_HARDWARE_ERROR)
        };
        let window = |region: &viogpu_common::transport::Region| -> DdiResult<super::Window> {
            RegionWindow::for_region(bar_of(region.bar)?, region).ddi()
        };
        let windows = VirtioPciWindows {
            common: window(&layout.common)?,
            notify: window(&layout.notify)?,
            isr: window(&layout.isr)?,
            device: window(&layout.device)?,
        };
        let isr = window(&layout.isr)?;
        let notifier = Notifier::new(window(&layout.notify)?);
        let msix = res.message_signaled() && layout.msix_table_size.is_some();
        let mut transport = Transport::new(layout, windows);

        let dma = os::Dma::current().ok_or(STATUS_UNSUCCESSFUL)?;
        let platform = os::OsPlatform::current().ok_or(STATUS_UNSUCCESSFUL)?;
        let (features, [control_q, cursor_q], num_scanouts) =
            init_device(&mut transport, &notifier, &dma, msix)?;
        let gpu = super::Gpu::new(dma.clone(), platform, notifier, control_q, cursor_q);
        state.hw = Some(Box::new(Hardware {
            dxgk: *dxgk_if,
            transport: spin::Mutex::new(transport),
            isr,
            gpu,
            msix,
            features,
            display_probe: spin::Mutex::new(None),
        }));
        state.mappings = maps.take_virts();
        self.publish(state);
        for i in 0..num_scanouts {
            state.heads.push(Head::new(i));
        }
        if let Some(first) = state.heads.first_mut() {
            first.custom = self.persisted_mode;
        }

        read_displays(state)?;
        self.update_connected_mask(state);
        set_initial_modes(state)?;
        self.screens.publish_all(&state.heads);
        {
            let mut pointer = self.pointer.lock();
            if self.hardware_cursor {
                pointer.cursor = create_cursor(state, &dma).ok();
            }
            pointer.follow_heads(&state.heads);
            pointer.device_on = true;
        }
        self.num_sources.store(num_scanouts, Ordering::Release);
        state.power = PowerDeviceD0;
        self.ready.store(true, Ordering::Release);
        Ok(StartInfo {
            sources: num_scanouts,
            children: num_scanouts,
        })
    }
}

/// Command queues of a freshly initialised device.
type Queues = [CommandQueue<os::Dma>; 2];

/// Reset, feature negotiation, the scanout count, both queues, DRIVER_OK.
///
/// The device configuration is readable from FEATURES_OK on, so `num_scanouts` is checked
/// before any ring exists: a device with a bad count is never told an address. Once a queue's
/// addresses were written, every failure resets the device before the queue memory is
/// dropped; if the reset is not confirmed (the device may still use the rings) the memory is
/// leaked instead of freed.
fn init_device(
    transport: &mut Transport,
    notifier: &Notifier,
    dma: &os::Dma,
    msix: bool,
) -> DdiResult<(Features, Queues, u32)> {
    let features = transport.init(Features::GPU_DRIVER).ddi()?;
    let num_scanouts = match transport.num_scanouts() {
        Ok(n) => n,
        Err(e) => {
            // No queue exists yet: the reset only leaves the device clean.
            let _ = transport.reset();
            return Err(super::status_of(e));
        }
    };
    let qf = QueueFeatures {
        indirect: features.contains(Features::RING_INDIRECT_DESC),
        event_idx: features.contains(Features::RING_EVENT_IDX),
    };
    let mut slots: [Option<CommandQueue<os::Dma>>; 2] = [None, None];
    let started = start_queues(transport, notifier, dma, msix, qf, &mut slots);
    match (started, slots) {
        (Ok(()), [Some(control), Some(cursor)]) => Ok((features, [control, cursor], num_scanouts)),
        (result, slots) => {
            let status = result.err().unwrap_or(STATUS_UNSUCCESSFUL);
            if transport.reset().is_err() {
                // The device did not confirm the reset and may still read the rings.
                core::mem::forget(slots);
            }
            Err(status)
        }
    }
}

/// Builds both queues into `slots` (each one stored before the device learns its addresses,
/// so the caller owns every ring the device may know), then DRIVER_OK.
fn start_queues(
    transport: &mut Transport,
    notifier: &Notifier,
    dma: &os::Dma,
    msix: bool,
    qf: QueueFeatures,
    slots: &mut [Option<CommandQueue<os::Dma>>; 2],
) -> DdiResult<()> {
    for (q, slot) in [CONTROL_QUEUE, CURSOR_QUEUE]
        .into_iter()
        .zip(slots.iter_mut())
    {
        let size = transport.queue_max_size(q).ddi()?.min(MAX_RING);
        let ring = SplitQueue::new(dma, size, qf).ddi()?;
        let queue = slot.insert(CommandQueue::new(dma, ring).ddi()?);
        setup_queue(transport, Some(notifier), q, queue.queue(), msix)?;
    }
    if msix && transport.set_config_msix_vector(MSIX_VECTOR).is_none() {
        crate::trace!("device refused MSI-X vector for config changes");
    }
    transport.driver_ok().ddi()
}

/// Programs queue `q` with `ring`'s addresses and records its doorbell in `notifier`.
pub(super) fn setup_queue(
    transport: &mut Transport,
    notifier: Option<&Notifier>,
    q: u16,
    ring: &SplitQueue<os::Dma>,
    msix: bool,
) -> DdiResult<()> {
    let config = QueueConfig {
        size: ring.size(),
        desc: ring.desc_addr(),
        driver: ring.avail_addr(),
        device: ring.used_addr(),
        msix_vector: if msix { MSIX_VECTOR } else { NO_VECTOR },
    };
    let setup = transport.setup_queue(q, &config).ddi()?;
    if msix && setup.msix_vector.is_none() {
        crate::trace!("device refused MSI-X vector for queue {q}; completions are polled");
    }
    // A doorbell offset is a fixed property of the device's queue, so after a reset
    // (`notifier` None) the recorded one still holds.
    if let Some(notifier) = notifier {
        notifier.set_offset(q, setup.notify_offset);
    }
    Ok(())
}

/// GET_DISPLAY_INFO, then GET_EDID for every scanout (when negotiated), and the mode lists.
pub(super) fn read_displays(state: &mut State) -> DdiResult<()> {
    let hw = state.hw.as_deref().ok_or(STATUS_DEVICE_NOT_READY)?;
    let info = hw.gpu.get_display_info(WaitMode::Wait).ddi()?;
    let edid = hw.features.contains(Features::GPU_EDID);
    for (index, head) in (0u32..).zip(state.heads.iter_mut()) {
        head.display = info.preferred_size(index);
        head.edid = if edid {
            hw.gpu
                .get_edid(index, WaitMode::Wait)
                .ok()
                .and_then(|r| r.edid_bytes().ok().map(<[u8]>::to_vec))
                .filter(|b| !b.is_empty())
        } else {
            None
        };
        head.rebuild_modes();
    }
    Ok(())
}

/// Shows the preferred mode on every enabled scanout and on scanout 0. A custom (persisted)
/// size the device cannot show on scanout 0 is dropped and the monitor's own preferred mode
/// tried instead, so a bad setting never keeps the driver from starting.
fn set_initial_modes(state: &mut State) -> DdiResult<()> {
    let State { hw, heads, ids, .. } = state;
    let hw = hw.as_deref().ok_or(STATUS_DEVICE_NOT_READY)?;
    for (index, head) in heads.iter_mut().enumerate() {
        if index != 0 && head.display.is_none() {
            continue;
        }
        let mut result = set_preferred_mode(hw, ids, head);
        if let (Err(e), Some((w, h))) = (result, head.custom) {
            crate::trace!("scanout {index}: custom mode {w}x{h} failed ({e}); dropped");
            head.custom = None;
            head.rebuild_modes();
            result = set_preferred_mode(hw, ids, head);
        }
        match result {
            Ok(()) => {}
            Err(e) if index == 0 => return Err(super::status_of(e)),
            Err(e) => crate::trace!("scanout {index}: initial mode failed: {e}"),
        }
    }
    Ok(())
}

/// Shows the first mode of `head`'s list (nothing to do without one).
fn set_preferred_mode(
    hw: &Hardware,
    ids: &mut ResourceIdAllocator,
    head: &mut Head,
) -> viogpu_common::Result<()> {
    let Some(mode) = head.modes.preferred() else {
        return Ok(());
    };
    head.scanout
        .set_mode(&hw.gpu, ids, mode.width, mode.height, BLACK)?;
    head.source_mode = Some((mode.width, mode.height));
    Ok(())
}

/// The 64x64 cursor resource with its backing attached.
pub(super) fn create_cursor(state: &mut State, dma: &os::Dma) -> DdiResult<CursorImage> {
    let buffer = DmaBuffer::new(dma, CURSOR_BYTES).ddi()?;
    let mut shape = Vec::new();
    shape
        .try_reserve_exact(CURSOR_BYTES)
        .map_err(|_| STATUS_NO_MEMORY)?;
    shape.resize(CURSOR_BYTES, 0);
    let mut cursor = CursorImage {
        resource_id: 0,
        buffer,
        shape,
        shape_size: (0, 0),
        shape_hot: (0, 0),
        rotation: Rotation::Identity,
        has_shape: false,
        visible: false,
        hot: (0, 0),
        pos: (0, 0, 0),
        os_pos: (0, 0, 0),
    };
    let hw = state.hw.as_deref().ok_or(STATUS_DEVICE_NOT_READY)?;
    match create_cursor_resource(hw, &mut state.ids, &mut cursor) {
        Ok(()) => Ok(cursor),
        Err(failure) => {
            if failure.backing_in_use {
                // The host may still have the image memory attached: it is never freed.
                core::mem::forget(cursor);
            }
            Err(failure.status)
        }
    }
}

/// Why the cursor resource could not be made.
pub(super) struct CursorFailure {
    /// What the DDI reports.
    pub status: NTSTATUS,
    /// The device did not confirm that the backing was detached again: the host may still
    /// use the cursor's memory, so it must not be freed before a confirmed reset.
    pub backing_in_use: bool,
}

/// (Re)creates the cursor's host resource over its existing backing. On failure the steps
/// that happened are undone; only a definite error answer means a step did not happen, so
/// an id whose resource the device may still hold stays allocated.
pub(super) fn create_cursor_resource(
    hw: &Hardware,
    ids: &mut ResourceIdAllocator,
    cursor: &mut CursorImage,
) -> core::result::Result<(), CursorFailure> {
    let id = ids.alloc().map_err(|e| CursorFailure {
        status: super::status_of(e),
        backing_in_use: false,
    })?;
    let gpu = &hw.gpu;
    // A command the device did not answer may still be carried out later.
    let happened = |r: &viogpu_common::Result<()>| !matches!(r, Err(Error::DeviceError(_)));
    let r = gpu.resource_create_2d(
        id,
        Format::B8G8R8A8_UNORM,
        CURSOR_SIZE,
        CURSOR_SIZE,
        WaitMode::Wait,
    );
    let created = happened(&r);
    let mut attached = false;
    let built = r.and_then(|()| {
        let entry = (cursor.buffer.phys(), CURSOR_BYTES as u32);
        let r = gpu.attach_backing(id, core::iter::once(entry), WaitMode::Wait);
        attached = happened(&r);
        r
    });
    let Err(e) = built else {
        cursor.resource_id = id;
        return Ok(());
    };
    let failure = |backing_in_use| CursorFailure {
        status: super::status_of(e),
        backing_in_use,
    };
    // An error answer to an undo step means the host has nothing (left) to undo.
    let confirmed = |r: viogpu_common::Result<()>| matches!(r, Ok(()) | Err(Error::DeviceError(_)));
    if attached && !confirmed(gpu.detach_backing(id, WaitMode::Wait)) {
        return Err(failure(true));
    }
    if created && !confirmed(gpu.resource_unref(id, WaitMode::Wait)) {
        // The host may still know the id: it is not handed out again.
        return Err(failure(false));
    }
    let _ = ids.free(id);
    Err(failure(false))
}
