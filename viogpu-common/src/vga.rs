//! The VGA side of `virtio-vga`: a linear framebuffer the host shows whenever the device is
//! not in virtio mode, programmed through the Bochs VBE "DISPI" registers.
//!
//! QEMU's `virtio-vga` is a virtio-gpu with a standard VGA beside it (hw/display/virtio-vga.c):
//! BAR 0 is the VGA memory (8 MiB), and the first page of the BAR that holds the virtio
//! structures (BAR 2) carries the VGA registers as MMIO, as the `-device VGA` stdvga lays them
//! out (hw/display/vga-pci.c): the VGA I/O ports `0x3C0..0x3DF` at offset `0x400`
//! ([`VGA_PORTS_OFFSET`]) and the DISPI registers at `0x500 + 2 * index`
//! ([`DISPI_OFFSET`]), each a 16-bit register. (QEMU decodes the legacy I/O ports too: DISPI
//! index/data at `0x1CE`/`0x1CF`, the VGA at `0x3C0..0x3DF`; the MMIO copy needs no I/O port
//! resource and goes through the mapping the driver has anyway.) The host shows the VGA
//! picture on scanout 0 until the driver's first SET_SCANOUT of a resource, and again after
//! every device reset (QEMU's `virtio_gpu_base_reset` clears the virtio display's `enable`,
//! which only `virtio_gpu_do_set_scanout` sets; disabling a scanout leaves it set).
//!
//! [`set_linear_mode`] is the one mode-set sequence: every DISPI register written (display
//! off first, so the mode takes effect at the enable), read back and checked (the device
//! rounds a width down to a multiple of 8 and is untrusted), and the attribute controller's
//! "palette address source" bit set, without which a VGA shows nothing (the VGA BIOS and
//! OVMF's QemuVideoDxe set it; a guest without a VGA BIOS leaves it clear). The register window
//! it takes starts at [`VGA_PORTS_OFFSET`] and spans [`REGISTER_WINDOW_LEN`] bytes.

use crate::hal::RegisterAccess;
use crate::{Error, Result};

/// Offset of the VGA I/O ports (`0x3C0` first) in the register BAR.
pub const VGA_PORTS_OFFSET: u32 = 0x400;
/// Offset of the DISPI registers in the register BAR.
pub const DISPI_OFFSET: u32 = 0x500;
/// Bytes from [`VGA_PORTS_OFFSET`] to the end of the DISPI registers (11 of them).
pub const REGISTER_WINDOW_LEN: u32 = DISPI_OFFSET - VGA_PORTS_OFFSET + 2 * DISPI_REGISTERS;
/// The BAR QEMU's virtio-vga (and stdvga) put the VGA registers in.
pub const REGISTER_BAR: u8 = 2;
/// The BAR that holds the VGA memory.
pub const FRAMEBUFFER_BAR: u8 = 0;
/// PCI class code / subclass of a VGA-compatible display controller.
pub const PCI_CLASS_DISPLAY: u8 = 0x03;
/// PCI subclass of a VGA-compatible controller.
pub const PCI_SUBCLASS_VGA: u8 = 0x00;

/// Number of DISPI registers.
const DISPI_REGISTERS: u32 = 11;

/// DISPI register indices.
pub mod dispi {
    /// Interface id, `0xB0C0..=0xB0C5` on Bochs/QEMU.
    pub const ID: u16 = 0;
    /// Visible width in pixels.
    pub const XRES: u16 = 1;
    /// Visible height in pixels.
    pub const YRES: u16 = 2;
    /// Bits per pixel.
    pub const BPP: u16 = 3;
    /// [`ENABLED`], [`LFB_ENABLED`], [`NOCLEARMEM`].
    pub const ENABLE: u16 = 4;
    /// 64 KiB bank of the legacy window.
    pub const BANK: u16 = 5;
    /// Width of the virtual screen: the pitch is this times the bytes per pixel.
    pub const VIRT_WIDTH: u16 = 6;
    /// Height of the virtual screen.
    pub const VIRT_HEIGHT: u16 = 7;
    /// Horizontal pan.
    pub const X_OFFSET: u16 = 8;
    /// Vertical pan.
    pub const Y_OFFSET: u16 = 9;
    /// VGA memory size in 64 KiB units.
    pub const VIDEO_MEMORY_64K: u16 = 10;

    /// ENABLE: the DISPI mode is on.
    pub const ENABLED: u16 = 0x01;
    /// ENABLE: the linear framebuffer (BAR 0) is on.
    pub const LFB_ENABLED: u16 = 0x40;
    /// ENABLE: do not clear the VGA memory when enabling.
    pub const NOCLEARMEM: u16 = 0x80;
    /// Lowest interface id of a DISPI interface.
    pub const ID_FIRST: u16 = 0xB0C0;
    /// Highest interface id this driver knows (`VBE_DISPI_ID5`).
    pub const ID_LAST: u16 = 0xB0C5;
}

/// VGA I/O ports used here, as offsets from port `0x3C0` (and so from the window's start).
pub mod port {
    /// `0x3C0`: attribute controller index (and data, alternately).
    pub const ATTRIBUTE: usize = 0x00;
    /// `0x3C2`: miscellaneous output (write).
    pub const MISC_OUTPUT: usize = 0x02;
    /// `0x3DA`: input status 1 (colour); reading it resets the attribute flip-flop.
    pub const INPUT_STATUS_1: usize = 0x1A;

    /// Miscellaneous output: the CRTC at `0x3Dx` (colour), so `0x3DA` decodes.
    pub const MISC_COLOR: u8 = 0x01;
    /// Attribute index bit 5: palette address source, i.e. the display is on.
    pub const ATTRIBUTE_DISPLAY_ON: u8 = 0x20;
}

/// Bytes per pixel of the mode set here (32 bpp, X8R8G8B8 in memory as B, G, R, X).
pub const BYTES_PER_PIXEL: u32 = 4;
/// Largest side the DISPI interface takes (QEMU's `VBE_DISPI_MAX_XRES`; YRES allows 12000).
pub const MAX_SIDE: u32 = 16000;

/// A linear 32-bit mode as the device shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearMode {
    /// Visible width in pixels.
    pub width: u32,
    /// Visible height in pixels.
    pub height: u32,
    /// Bytes from one row to the next.
    pub pitch: u32,
}

impl LinearMode {
    /// Bytes from the first pixel to the end of the last row.
    pub fn size_bytes(&self) -> u64 {
        u64::from(self.pitch) * u64::from(self.height)
    }
}

/// The mode `width` x `height` would be, or `None` when the DISPI interface cannot show it in
/// `memory` bytes of VGA memory (the width is rounded down to a multiple of 8, as the device
/// does).
pub fn mode_for(width: u32, height: u32, memory: u64) -> Option<LinearMode> {
    let width = width & !7;
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return None;
    }
    let mode = LinearMode {
        width,
        height,
        pitch: width.checked_mul(BYTES_PER_PIXEL)?,
    };
    (mode.size_bytes() <= memory).then_some(mode)
}

fn dispi_at(index: u16) -> usize {
    (DISPI_OFFSET - VGA_PORTS_OFFSET) as usize + 2 * usize::from(index)
}

fn read_dispi<R: RegisterAccess + ?Sized>(regs: &R, index: u16) -> u16 {
    regs.read_u16(dispi_at(index))
}

fn write_dispi<R: RegisterAccess + ?Sized>(regs: &R, index: u16, value: u16) {
    regs.write_u16(dispi_at(index), value);
}

/// Whether `regs` (the window at [`VGA_PORTS_OFFSET`]) answers as a DISPI interface.
pub fn probe<R: RegisterAccess + ?Sized>(regs: &R) -> bool {
    (dispi::ID_FIRST..=dispi::ID_LAST).contains(&read_dispi(regs, dispi::ID))
}

/// Sets `width` x `height` at 32 bpp with the linear framebuffer on, panned to its first
/// byte, in `memory` bytes of VGA memory, and turns the VGA display on; returns the mode the
/// device reports back. The VGA memory is not cleared by this (the caller clears what it
/// hands over).
///
/// [`Error::ModeTooLarge`] when the mode cannot fit; [`Error::Malformed`] when the device is
/// no DISPI interface or reports back something else than asked (the registers are left as
/// written: the VGA picture is not shown while the device is in virtio mode).
pub fn set_linear_mode<R: RegisterAccess + ?Sized>(
    regs: &R,
    width: u32,
    height: u32,
    memory: u64,
) -> Result<LinearMode> {
    let mode = mode_for(width, height, memory).ok_or(Error::ModeTooLarge)?;
    if !probe(regs) {
        return Err(Error::Malformed("no DISPI interface"));
    }
    let (w, h) = (
        u16::try_from(mode.width).map_err(|_| Error::ModeTooLarge)?,
        u16::try_from(mode.height).map_err(|_| Error::ModeTooLarge)?,
    );
    write_dispi(regs, dispi::ENABLE, 0);
    for (index, value) in [
        (dispi::BPP, (BYTES_PER_PIXEL * 8) as u16),
        (dispi::XRES, w),
        (dispi::YRES, h),
        (dispi::BANK, 0),
        (dispi::VIRT_WIDTH, w),
        (dispi::VIRT_HEIGHT, h),
        (dispi::X_OFFSET, 0),
        (dispi::Y_OFFSET, 0),
    ] {
        write_dispi(regs, index, value);
    }
    write_dispi(
        regs,
        dispi::ENABLE,
        dispi::ENABLED | dispi::LFB_ENABLED | dispi::NOCLEARMEM,
    );
    let enable = read_dispi(regs, dispi::ENABLE);
    let shown = (
        read_dispi(regs, dispi::XRES),
        read_dispi(regs, dispi::YRES),
        read_dispi(regs, dispi::BPP),
        read_dispi(regs, dispi::VIRT_WIDTH),
        read_dispi(regs, dispi::X_OFFSET),
        read_dispi(regs, dispi::Y_OFFSET),
    );
    let on = dispi::ENABLED | dispi::LFB_ENABLED;
    if enable & on != on || shown != (w, h, (BYTES_PER_PIXEL * 8) as u16, w, 0, 0) {
        return Err(Error::Malformed("DISPI mode not taken"));
    }
    display_on(regs);
    Ok(mode)
}

/// Sets the attribute controller's palette-address-source bit (the VGA display on): colour
/// decoding first so that input status 1 is at `0x3DA`, whose read puts the attribute
/// flip-flop on "index", then the index write with bit 5 set.
fn display_on<R: RegisterAccess + ?Sized>(regs: &R) {
    regs.write_u8(port::MISC_OUTPUT, port::MISC_COLOR);
    let _ = regs.read_u8(port::INPUT_STATUS_1);
    regs.write_u8(port::ATTRIBUTE, port::ATTRIBUTE_DISPLAY_ON);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mode_fits_with_its_width_rounded_down_to_eight() {
        let eight_mib = 8 << 20;
        assert_eq!(
            mode_for(1366, 768, eight_mib),
            Some(LinearMode {
                width: 1360,
                height: 768,
                pitch: 5440
            })
        );
        assert_eq!(mode_for(1920, 1080, eight_mib).map(|m| m.pitch), Some(7680));
        assert_eq!(mode_for(2560, 1600, eight_mib), None, "16 MB in 8 MiB");
        assert_eq!(mode_for(7, 100, eight_mib), None);
        assert_eq!(mode_for(16008, 1, u64::MAX), None);
        assert_eq!(REGISTER_WINDOW_LEN, 0x116);
    }
}
