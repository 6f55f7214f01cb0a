//! The VGA of a `virtio-vga`: found at StartDevice, and given back, showing a cleared linear
//! mode, by the post-display hand-off (`post_display.rs`).
//!
//! QEMU's virtio-vga is a virtio-gpu with a VGA beside it (`viogpu_common::vga` has the
//! layout). The host shows the VGA on scanout 0 whenever the device is not in virtio mode:
//! before the driver's first SET_SCANOUT and after every device reset. Its memory is BAR 0,
//! so what the next owner of the display writes there is on screen without any command.
//!
//! The driver takes a device for a virtio-vga only when all of it is there: PCI class VGA;
//! BAR 0 a memory BAR that holds no virtio structure and has a memory resource; BAR 2 mapped
//! by the driver already (it holds the virtio structures, as on QEMU) with the VGA registers
//! `0x400..0x516` inside it and clear of every virtio structure; and the DISPI interface id
//! answering there. Anything else (virtio-gpu-pci, another layout) is no VGA: the hand-off then
//! keeps the guest-RAM framebuffer it has always handed over.

use viogpu_common::hal::RegisterAccess;
use viogpu_common::transport::{
    read_bar, BarKind, PciConfigAccess, Region, RegionWindow, VirtioPciLayout,
};
use viogpu_common::vga::{self, LinearMode};

use super::resources::{MemoryResource, Resources};
use super::{dxgk, BarMapping, DdiResult, Window};
use crate::ddi::*;
use crate::os;

/// PCI config offsets of the subclass and class code.
const PCI_SUBCLASS: u16 = 0x0A;
const PCI_CLASS: u16 = 0x0B;

/// Modes tried, in order, after the shown one and the firmware's, when those do not fit the
/// VGA memory.
const FALLBACK_MODES: [(u32, u32); 3] = [(1024, 768), (800, 600), (640, 480)];

/// The VGA of a virtio-vga.
pub struct VgaDisplay {
    /// The VGA ports and DISPI registers (`vga::VGA_PORTS_OFFSET` of BAR 2 onwards).
    regs: Window,
    /// The VGA memory (BAR 0) as the PnP manager translated it.
    memory: MemoryResource,
    /// The mode the firmware showed, if it told (DxgkCbAcquirePostDisplayOwnership).
    firmware_mode: Option<(u32, u32)>,
}

impl VgaDisplay {
    /// The VGA of the device whose config space is `cfg`, if it is a virtio-vga (module
    /// docs); `register_bar` is the driver's mapping of BAR 2 and its length, if it has one.
    pub fn find<C: PciConfigAccess + ?Sized>(
        cfg: &C,
        res: &Resources,
        layout: &VirtioPciLayout,
        register_bar: Option<(BarMapping, u64)>,
        firmware_mode: Option<(u32, u32)>,
    ) -> Option<Self> {
        if cfg.read_u8(PCI_CLASS) != vga::PCI_CLASS_DISPLAY
            || cfg.read_u8(PCI_SUBCLASS) != vga::PCI_SUBCLASS_VGA
            || layout
                .regions()
                .iter()
                .any(|r| r.bar == vga::FRAMEBUFFER_BAR)
        {
            return None;
        }
        let bar = read_bar(cfg, vga::FRAMEBUFFER_BAR).ok()?;
        if bar.kind == BarKind::Io {
            return None;
        }
        let memory = res.memory_at(bar.address)?;
        let window = Region {
            bar: vga::REGISTER_BAR,
            offset: vga::VGA_PORTS_OFFSET,
            len: vga::REGISTER_WINDOW_LEN,
        };
        let (mapping, mapped) = register_bar?;
        let overlaps = |r: &Region| {
            r.bar == window.bar
                && u64::from(r.offset) < window.end()
                && u64::from(window.offset) < r.end()
        };
        if window.end() > mapped || layout.regions().iter().any(overlaps) {
            return None;
        }
        let regs = RegionWindow::for_region(mapping, &window).ok()?;
        if !vga::probe(&regs) {
            crate::trace!("a VGA-class device without a DISPI interface: no VGA hand-off");
            return None;
        }
        Some(Self {
            regs,
            memory,
            firmware_mode,
        })
    }

    /// Sets the VGA to the first of `shown` (the handed-over framebuffer's size), the
    /// firmware's mode and [`FALLBACK_MODES`] that fits its memory, and clears what that
    /// mode shows. The device is still in virtio mode, so nothing of this is on screen until
    /// its reset. Returns the display the next owner gets.
    pub fn prepare(
        &self,
        dxgk_if: &DXGKRNL_INTERFACE,
        shown: Option<(u32, u32)>,
    ) -> DdiResult<DXGK_DISPLAY_INFORMATION> {
        let memory = self.memory.length;
        let (w, h) = shown
            .into_iter()
            .chain(self.firmware_mode)
            .chain(FALLBACK_MODES)
            .find(|&(w, h)| vga::mode_for(w, h, memory).is_some())
            .ok_or(STATUS_NOT_SUPPORTED)?;
        let mode = vga::set_linear_mode(&self.regs, w, h, memory).map_err(|e| {
            crate::trace!("post-display: the VGA did not take {w}x{h}: {e}");
            STATUS_DEVICE_HARDWARE_ERROR
        })?;
        self.clear(dxgk_if, &mode)?;
        let address = i64::try_from(self.memory.start).map_err(|_| STATUS_UNSUCCESSFUL)?;
        Ok(DXGK_DISPLAY_INFORMATION {
            Width: mode.width,
            Height: mode.height,
            Pitch: mode.pitch,
            ColorFormat: D3DDDIFMT_X8R8G8B8,
            PhysicAddress: PHYSICAL_ADDRESS::new(address),
            TargetId: 0,
            AcpiId: 0,
        })
    }

    /// Paints black what `mode` shows of the VGA memory, through a mapping of it made for
    /// this (the driver maps no VGA memory otherwise).
    fn clear(&self, dxgk_if: &DXGKRNL_INTERFACE, mode: &LinearMode) -> DdiResult<()> {
        let len = u32::try_from(mode.size_bytes()).map_err(|_| STATUS_UNSUCCESSFUL)?;
        let virt = dxgk::map_memory(dxgk_if, self.memory.start, len)?;
        // SAFETY: `virt..virt + len` was just mapped by DxgkCbMapMemory over the VGA memory
        // and stays mapped until the unmap below, after this window is dropped.
        let cleared = match unsafe { os::Mmio::new(virt, len as usize) } {
            Some(fb) => {
                for at in (0..len as usize).step_by(4) {
                    fb.write_u32(at, 0);
                }
                true
            }
            None => false,
        };
        dxgk::unmap_memory(dxgk_if, virt);
        cleared.then_some(()).ok_or(STATUS_UNSUCCESSFUL)
    }
}
