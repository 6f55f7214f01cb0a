//! DxgkDdiStartDevice: from the PnP resources to a running virtio-gpu device showing the
//! preferred mode on every enabled scanout.
//!
//! Order: device information and the translated resource list; the virtio capabilities in
//! PCI config space (read through `DxgkCbReadDeviceSpace`); the BARs they name, matched to
//! their memory resources and mapped with `DxgkCbMapMemory`; the core's bring-up sequence
//! (`viogpu_common::bring_up`: features VERSION_1 | RING_INDIRECT_DESC | RING_EVENT_IDX |
//! GPU_EDID, the control and cursor queues, MSI-X vector 0 for everything when the OS granted
//! message interrupts, DRIVER_OK; never VIRTIO_F_ACCESS_PLATFORM: the device is given
//! guest-physical addresses from `MmGetPhysicalAddress`, right only without an IOMMU between
//! it and memory, so a device that requires that feature fails StartDevice with
//! STATUS_NOT_SUPPORTED and a trace line saying why);
//! then GET_DISPLAY_INFO and GET_EDID per scanout, the mode lists, the preferred mode on each
//! enabled scanout (and scanout 0 always, so Windows has a desktop to commit over), and the
//! cursor resource. On a virtio-vga the VGA beside the GPU is found too (`vga.rs`), for the
//! post-display hand-off. Any failure undoes everything (device reset, memory freed, BARs
//! unmapped) and StartDevice fails with the step's status.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use viogpu_common::bring_up::{bring_up, BringUpConfig, QueueInfo, Vectors, QUEUES};
use viogpu_common::fallible::{try_push, try_to_vec, Shared};
use viogpu_common::gpu::WaitMode;
use viogpu_common::resource_id::ResourceIdAllocator;
use viogpu_common::transport::{
    read_bar, BarKind, Features, PciConfigAccess, RegionWindow, VirtioPciLayout, VirtioPciWindows,
    GPU_DEVICE_CFG_LEN,
};

use super::{
    dxgk, resources, Adapter, BarMapping, Cursor, DdiResult, Hardware, Head, IntoDdi, Notifier,
    PointerState, State, Transport, BLACK,
};
use crate::ddi::*;
use crate::os;

/// Largest ring the driver asks for: 256 control requests in flight is far more than a
/// display-only driver ever queues, and each slot costs a 4 KiB request buffer.
const MAX_RING: u16 = 256;
/// The MSI-X message used for the configuration change and both queues.
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

/// Hides the ISR register window again when a start fails before the device is handed to
/// the lifecycle (then teardown does it).
struct IsrWindowGuard<'a>(&'a super::lifecycle::IsrSlot<super::Window>);

impl Drop for IsrWindowGuard<'_> {
    fn drop(&mut self) {
        self.0.retract();
    }
}

impl Adapter {
    /// DxgkDdiStartDevice.
    pub fn start_device(&self, interface: &DXGKRNL_INTERFACE) -> DdiResult<StartInfo> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if state.device.is_started() {
            return Err(STATUS_INVALID_DEVICE_REQUEST);
        }
        let dxgk_copy = *interface;
        state.dxgk = Some(dxgk_copy);
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
        // As both samples do: take the display over from the firmware (or the previous
        // driver), and remember the mode it showed as scanout 0's fallback.
        let firmware_mode = dxgk::acquire_post_display(dxgk_if).and_then(|fb| firmware_mode(&fb));
        let list = info.TranslatedResourceList.cast::<u8>().cast_const();
        if list.is_null() {
            return Err(STATUS_INVALID_PARAMETER);
        }
        // SAFETY: dxgkrnl hands a valid translated CM_RESOURCE_LIST that lives as long as the
        // device is started.
        let len = unsafe { resources::list_len(list) }.ok_or(STATUS_INVALID_PARAMETER)?;
        // SAFETY: the same list spans `len` bytes, its length following from its own counts.
        let bytes = unsafe { core::slice::from_raw_parts(list, len) };
        let res = resources::parse(bytes).ddi()?;

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
            if try_push(&mut maps.virts, virt).is_err() {
                dxgk::unmap_memory(dxgk_if, virt);
                return Err(STATUS_NO_MEMORY);
            }
            // SAFETY: `virt..virt + len` was just mapped by DxgkCbMapMemory for this BAR and
            // stays mapped until `Mappings` unmaps it, after every window over it is dropped.
            let mmio = unsafe { os::Mmio::new(virt, len as usize) }.ok_or(STATUS_UNSUCCESSFUL)?;
            if let Some(slot) = maps.bars.get_mut(index) {
                *slot = Some((mmio, u64::from(len)));
            }
        }
        layout
            .check_bars(|bar| {
                maps.bars
                    .get(usize::from(bar))
                    .and_then(|b| b.as_ref().map(|(_, len)| *len))
            })
            .ddi()?;
        // The VGA beside the virtio-gpu, on a virtio-vga (its registers share BAR 2 with the
        // virtio structures there).
        let register_bar = maps
            .bars
            .get(usize::from(viogpu_common::vga::REGISTER_BAR))
            .and_then(Clone::clone);
        let vga = super::vga::VgaDisplay::find(&cfg, &res, &layout, register_bar, firmware_mode);
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
        // From the handshake on, a line interrupt from the device is ours to dismiss. The
        // guard is declared after `maps`, so on an early return it hides the window before
        // the mappings go.
        let shared_isr = Shared::try_new(window(&layout.isr)?).map_err(|_| STATUS_NO_MEMORY)?;
        self.isr_window.publish(&shared_isr);
        let isr_window = IsrWindowGuard(&self.isr_window);
        let notifier = Notifier::new(window(&layout.notify)?, window(&layout.common)?);
        let msix = res.message_signaled() && layout.msix_table_size.is_some();
        let mut transport = Transport::new(layout, windows);

        let dma = os::Dma::current().ok_or(STATUS_UNSUCCESSFUL)?;
        let platform = os::OsPlatform::current().ok_or(STATUS_UNSUCCESSFUL)?;
        let started = bring_up(&dma, &mut transport, &bring_up_config(msix)).map_err(|e| {
            if e == viogpu_common::Error::AccessPlatformRequired {
                crate::trace!(
                    "device requires VIRTIO_F_ACCESS_PLATFORM (an IOMMU translates its DMA); \
                     this driver gives it guest-physical addresses and does not support it"
                );
            }
            super::status_of(e)
        })?;
        trace_refused_vectors(&started.queue_info, started.config_vector_accepted);
        for (&q, info) in QUEUES.iter().zip(&started.queue_info) {
            notifier.set_offset(q, info.notify_offset);
        }
        let (features, num_scanouts) = (started.features, started.num_scanouts);
        let gpu = started.into_device(dma, platform, notifier);
        let hw = Shared::try_new(Hardware {
            dxgk: *dxgk_if,
            transport: spin::Mutex::new(transport),
            gpu,
            msix,
            features,
            display_probe: spin::Mutex::new(None),
            vga,
        })
        .map_err(|hw| {
            super::give_up_unpublished(hw);
            STATUS_NO_MEMORY
        })?;
        state.mappings = maps.take_virts();
        // Teardown hides the window from now on (after the device's reset).
        core::mem::forget(isr_window);
        self.start_using(state, hw.clone());
        state
            .heads
            .try_reserve_exact(num_scanouts as usize)
            .map_err(|_| STATUS_NO_MEMORY)?;
        for i in 0..num_scanouts {
            // Reserved above: no push here reallocates.
            #[allow(clippy::disallowed_methods)]
            state.heads.push(Head::new(i));
        }
        if let Some(first) = state.heads.first_mut() {
            first.custom = self.persisted_mode;
        }

        match read_displays(state) {
            Ok(()) => {}
            // The heap is the OS's to fail: the start fails with it, as everywhere.
            Err(STATUS_NO_MEMORY) => return Err(STATUS_NO_MEMORY),
            Err(status) => {
                // A device that answers garbage to GET_DISPLAY_INFO (or GET_EDID) still gets
                // a desktop: as without a monitor, scanout 0 at the default mode and the
                // others off; the displays are read again at the OS's next child query (and
                // after every display-change event).
                crate::trace!(
                    "StartDevice: display info unreadable ({status:#x}): scanout 0 at the \
                     default mode, the others off, until it is read again"
                );
                forget_displays(state);
                self.display_stale.store(true, Ordering::Release);
            }
        }
        if let (Some((w, h)), Some(first)) = (firmware_mode, state.heads.first_mut()) {
            if first.display.is_none() && first.edid.is_none() {
                // The device describes no monitor for scanout 0 (no preferred size, no EDID:
                // disabled, or its display info unreadable): keep the firmware's mode rather
                // than a default (the generated EDID then describes it too).
                first.display = Some((w, h));
                first.rebuild_modes();
            }
        }
        self.update_connected_mask(state);
        set_initial_modes(state)?;
        self.screens.publish_all(&state.heads);
        {
            let mut pointer = self.pointer.lock();
            if self.hardware_cursor {
                pointer.cursor = create_cursor(state, &mut pointer);
            }
            pointer.follow_heads(&state.heads);
            pointer.hw = Some(hw);
        }
        self.num_sources.store(num_scanouts, Ordering::Release);
        Ok(StartInfo {
            sources: num_scanouts,
            children: num_scanouts,
        })
    }
}

/// The size of a framebuffer the firmware left, when it is one the driver can show (a 32-bit
/// format, a size the mode rules accept).
fn firmware_mode(fb: &DXGK_DISPLAY_INFORMATION) -> Option<(u32, u32)> {
    let format_ok = fb.ColorFormat == D3DDDIFMT_X8R8G8B8 || fb.ColorFormat == D3DDDIFMT_A8R8G8B8;
    let (w, h) = (fb.Width, fb.Height);
    (format_ok && viogpu_common::modes::check_size(w, h, super::MAX_FRAMEBUFFER_BYTES).is_ok())
        .then_some((w, h))
}

/// The device bring-up the driver asks of the core's sequence (`viogpu_common::bring_up`):
/// the features it implements, rings of at most [`MAX_RING`], and one MSI-X message for
/// everything when the OS granted message-signaled interrupts.
pub(super) fn bring_up_config(msix: bool) -> BringUpConfig {
    BringUpConfig {
        wanted: Features::GPU_DRIVER,
        max_ring: [MAX_RING; 2],
        vectors: vectors(msix),
    }
}

/// The interrupt vectors the driver programs.
pub(super) fn vectors(msix: bool) -> Vectors {
    if msix {
        Vectors::shared(MSIX_VECTOR)
    } else {
        Vectors::NONE
    }
}

/// Logs what the device refused of the vectors: its completions are then found by polling
/// (every command waits with a timeout and re-checks its queue).
pub(super) fn trace_refused_vectors(queues: &[QueueInfo; 2], config_accepted: bool) {
    for (q, info) in QUEUES.iter().zip(queues) {
        if !info.vector_accepted {
            crate::trace!("device refused MSI-X vector for queue {q}; completions are polled");
        }
    }
    if !config_accepted {
        crate::trace!("device refused MSI-X vector for config changes");
    }
}

/// GET_DISPLAY_INFO, then GET_EDID for every scanout (when negotiated), and the mode lists.
pub(super) fn read_displays(state: &mut State) -> DdiResult<()> {
    let hw = state.device.powered().ok_or(STATUS_DEVICE_NOT_READY)?;
    let info = hw.gpu.get_display_info(WaitMode::Wait).ddi()?;
    let edid = hw.features.contains(Features::GPU_EDID);
    for (index, head) in (0u32..).zip(state.heads.iter_mut()) {
        head.display = info.preferred_size(index);
        let answer = edid
            .then(|| hw.gpu.get_edid(index, WaitMode::Wait).ok())
            .flatten();
        let bytes = answer
            .as_ref()
            .and_then(|r| r.edid_bytes().ok())
            .filter(|b| !b.is_empty());
        // Only an EDID the driver's own parser accepts is kept (and ever shown to Windows);
        // a broken one (bad checksum, bad extension block) counts as none.
        let bytes = bytes.filter(|b| match viogpu_common::edid::parse(b) {
            Ok(_) => true,
            Err(e) => {
                crate::trace!(
                    "scanout {index}: device EDID rejected ({e}); a generated one is used"
                );
                false
            }
        });
        // A heap failure fails the read (the caller retries or fails its DDI), not the OS.
        head.edid = bytes.map(try_to_vec).transpose().ddi()?;
        head.rebuild_modes();
    }
    Ok(())
}

/// What the driver assumes when the displays cannot be read: no monitor information at all
/// (scanout 0 is connected anyway and gets the default mode; the others are off).
fn forget_displays(state: &mut State) {
    for head in state.heads.iter_mut() {
        head.display = None;
        head.edid = None;
        head.rebuild_modes();
    }
}

/// Shows the preferred mode on every enabled scanout and on scanout 0. A custom (persisted)
/// size the device cannot show on scanout 0 is dropped and the monitor's own preferred mode
/// tried instead, so a bad setting never keeps the driver from starting.
fn set_initial_modes(state: &mut State) -> DdiResult<()> {
    let State {
        device, heads, ids, ..
    } = state;
    let hw = device.powered().ok_or(STATUS_DEVICE_NOT_READY)?;
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

/// The hardware cursor with its host resource made; `None` (the OS draws the pointer) when
/// it cannot be had.
fn create_cursor(state: &mut State, pointer: &mut PointerState) -> Option<Cursor> {
    let hw = state.device.powered()?;
    let mut cursor = match Cursor::new(hw.gpu.hal()) {
        Ok(cursor) => cursor,
        Err(e) => {
            crate::trace!("no hardware cursor: {e}");
            return None;
        }
    };
    match cursor.create(&hw.gpu, &mut state.ids) {
        Ok(()) => Some(cursor),
        Err(failure) => {
            crate::trace!("no hardware cursor: {}", failure.error);
            if failure.backing_in_use {
                // The host may still have the image memory attached: kept until a reset.
                pointer.retire_cursor(Some(cursor));
            }
            None
        }
    }
}
