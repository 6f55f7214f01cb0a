//! The VGA half of an emulated `virtio-vga`: the VGA memory of BAR 0, the VGA I/O ports and
//! the Bochs DISPI registers that QEMU maps into the first page of the virtio BAR
//! (hw/display/vga-pci.c, `pci_std_vga_mmio_region_init`), and the picture a VGA shows.
//!
//! Only what a driver handing the display back to the VGA touches is modelled, with QEMU's
//! rules (hw/display/vga.c): the DISPI registers (interface id `0xB0C5`; the width rounded
//! down to a multiple of 8 and the height clamped to the memory; enabling clears the memory
//! unless `NOCLEARMEM`), the miscellaneous output register (its colour bit decides whether
//! input status 1 answers at `0x3DA`), and the attribute controller's index/data flip-flop,
//! which a read of input status 1 resets, and whose index bit 5 (palette address source)
//! blanks the display when clear. A VGA shows its picture only with that bit set and a
//! 32-bit DISPI mode on; text mode is not modelled (no picture).
//!
//! The device starts as a VGA after power-on with no VGA BIOS: display blanked (index bit 5
//! clear), the flip-flop on "data" (a driver that skips the `0x3DA` read writes a palette
//! entry, not the index), and the memory holding what a firmware left (a non-zero fill), so
//! a hand-over that does not clear it shows.

use viogpu_common::protocol::Format;
use viogpu_common::vga::{dispi, port, DISPI_OFFSET, VGA_PORTS_OFFSET};

use crate::gpu::Image;

/// What the VGA memory holds at power-on: anything but black.
pub const FIRMWARE_FILL: u8 = 0x5A;
/// QEMU's `VBE_DISPI_ID5`.
const DISPI_ID: u16 = 0xB0C5;
/// Number of DISPI registers.
const DISPI_COUNT: usize = 11;
/// Length of the VGA port block (`0x3C0..0x3DF`).
const PORTS_LEN: u32 = 0x20;
/// `VBE_DISPI_MAX_XRES` / `VBE_DISPI_MAX_YRES`.
const MAX_XRES: u16 = 16000;
const MAX_YRES: u16 = 12000;

/// The VGA state of the device (see the module documentation).
#[derive(Debug, Clone)]
pub struct Vga {
    memory: Vec<u8>,
    dispi: [u16; DISPI_COUNT],
    misc_output: u8,
    attribute_index: u8,
    /// The attribute port's next write is data (true) or an index (false).
    attribute_data_next: bool,
    /// Register accesses this model does not implement (each one a driver surprise).
    unmodelled: u64,
    /// A broken VGA: DISPI writes are ignored.
    frozen: bool,
}

impl Vga {
    /// A VGA with `memory` bytes of VGA memory, as after power-on.
    pub fn new(memory: usize) -> Self {
        let mut dispi = [0u16; DISPI_COUNT];
        dispi[usize::from(dispi::ID)] = DISPI_ID;
        dispi[usize::from(dispi::BPP)] = 8;
        dispi[usize::from(dispi::VIDEO_MEMORY_64K)] = u16::try_from(memory >> 16).unwrap_or(0);
        Self {
            memory: vec![FIRMWARE_FILL; memory],
            dispi,
            misc_output: 0,
            attribute_index: 0,
            attribute_data_next: true,
            unmodelled: 0,
            frozen: false,
        }
    }

    /// Bytes of VGA memory (the length of BAR 0).
    pub fn memory_len(&self) -> u64 {
        self.memory.len() as u64
    }

    /// Reads VGA memory at `offset` into `buf`; false when out of range.
    pub fn read_memory(&self, offset: u64, buf: &mut [u8]) -> bool {
        let Some(src) = range(offset, buf.len(), self.memory.len()) else {
            return false;
        };
        buf.copy_from_slice(&self.memory[src]);
        true
    }

    /// Writes `data` into VGA memory at `offset`; false when out of range.
    pub fn write_memory(&mut self, offset: u64, data: &[u8]) -> bool {
        let Some(dst) = range(offset, data.len(), self.memory.len()) else {
            return false;
        };
        self.memory[dst].copy_from_slice(data);
        true
    }

    /// Whether `offset` of the register BAR is one of the VGA registers.
    pub fn claims(offset: u32) -> bool {
        (VGA_PORTS_OFFSET..VGA_PORTS_OFFSET + PORTS_LEN).contains(&offset)
            || (DISPI_OFFSET..DISPI_OFFSET + 2 * DISPI_COUNT as u32).contains(&offset)
    }

    /// A register read of `width` bytes at `offset` of the register BAR.
    pub fn read_register(&mut self, offset: u32, width: usize) -> u32 {
        if offset >= DISPI_OFFSET {
            return u32::from(self.read_dispi(((offset - DISPI_OFFSET) / 2) as u16));
        }
        let port = offset - VGA_PORTS_OFFSET;
        (0..width.min(2) as u32).fold(0, |acc, i| {
            acc | (u32::from(self.read_port(port + i)) << (8 * i))
        })
    }

    /// A register write of `width` bytes at `offset` of the register BAR.
    pub fn write_register(&mut self, offset: u32, width: usize, value: u32) {
        if offset >= DISPI_OFFSET {
            self.write_dispi(((offset - DISPI_OFFSET) / 2) as u16, value as u16);
            return;
        }
        let port = offset - VGA_PORTS_OFFSET;
        // QEMU updates the bytes of a word access in little-endian order.
        for i in 0..width.min(2) as u32 {
            self.write_port(port + i, (value >> (8 * i)) as u8);
        }
    }

    fn read_port(&mut self, port_offset: u32) -> u8 {
        match port_offset as usize {
            port::INPUT_STATUS_1 if self.misc_output & port::MISC_COLOR != 0 => {
                self.attribute_data_next = false;
                0
            }
            // 0x3DA without colour decoding: nobody answers.
            port::INPUT_STATUS_1 => 0xFF,
            port::ATTRIBUTE => self.attribute_index,
            _ => {
                self.unmodelled += 1;
                0
            }
        }
    }

    fn write_port(&mut self, port_offset: u32, value: u8) {
        match port_offset as usize {
            port::MISC_OUTPUT => self.misc_output = value,
            port::ATTRIBUTE if self.attribute_data_next => self.attribute_data_next = false,
            port::ATTRIBUTE => {
                self.attribute_index = value & 0x3F;
                self.attribute_data_next = true;
            }
            _ => self.unmodelled += 1,
        }
    }

    fn read_dispi(&self, index: u16) -> u16 {
        self.dispi.get(usize::from(index)).copied().unwrap_or(0)
    }

    fn enabled(&self) -> bool {
        self.read_dispi(dispi::ENABLE) & dispi::ENABLED != 0
    }

    /// A broken VGA: from now on DISPI register writes are ignored (`true`), or taken again.
    pub fn set_frozen(&mut self, frozen: bool) {
        self.frozen = frozen;
    }

    /// Makes the interface id read `id` (0: no DISPI interface).
    pub fn set_id(&mut self, id: u16) {
        self.dispi[usize::from(dispi::ID)] = id;
    }

    fn write_dispi(&mut self, index: u16, value: u16) {
        if self.frozen {
            return;
        }
        match index {
            dispi::ID | dispi::VIDEO_MEMORY_64K | dispi::VIRT_HEIGHT => {}
            dispi::ENABLE => {
                let turning_on = value & dispi::ENABLED != 0 && !self.enabled();
                self.dispi[usize::from(dispi::ENABLE)] = value;
                if turning_on {
                    self.fix_up();
                    if value & dispi::NOCLEARMEM == 0 {
                        let end = self.line_bytes() * usize::from(self.read_dispi(dispi::YRES));
                        let end = end.min(self.memory.len());
                        self.memory[..end].fill(0);
                    }
                }
            }
            _ => {
                if let Some(r) = self.dispi.get_mut(usize::from(index)) {
                    *r = value;
                }
                if self.enabled() {
                    self.fix_up();
                }
            }
        }
    }

    fn bits_per_pixel(&self) -> usize {
        match self.read_dispi(dispi::BPP) {
            15 => 16,
            b @ (4 | 8 | 16 | 24 | 32) => usize::from(b),
            _ => 8,
        }
    }

    fn line_bytes(&self) -> usize {
        usize::from(self.read_dispi(dispi::VIRT_WIDTH)) * self.bits_per_pixel() / 8
    }

    /// QEMU's `vbe_fixup_regs`.
    fn fix_up(&mut self) {
        let bpp = self.bits_per_pixel() as u16;
        let r = &mut self.dispi;
        r[usize::from(dispi::BPP)] = bpp;
        let x = &mut r[usize::from(dispi::XRES)];
        *x = (*x & !7).clamp(8, MAX_XRES);
        let xres = *x;
        let v = &mut r[usize::from(dispi::VIRT_WIDTH)];
        *v = (*v & !7).min(MAX_XRES).max(xres);
        let line = usize::from(*v) * usize::from(bpp) / 8;
        let max_y = u16::try_from(self.memory.len() / line.max(1)).unwrap_or(u16::MAX);
        let y = &mut r[usize::from(dispi::YRES)];
        *y = (*y).clamp(1, MAX_YRES.min(max_y));
        r[usize::from(dispi::VIRT_HEIGHT)] = max_y;
    }

    /// Register accesses to VGA registers this model does not implement.
    pub fn unmodelled_accesses(&self) -> u64 {
        self.unmodelled
    }

    /// What a viewer of the VGA sees: the 32-bit DISPI mode's pixels, or `None` while the
    /// display is blanked, DISPI is off (text mode) or the mode is not 32 bpp.
    pub fn picture(&self) -> Option<Image> {
        if self.attribute_index & port::ATTRIBUTE_DISPLAY_ON == 0
            || !self.enabled()
            || self.bits_per_pixel() != 32
        {
            return None;
        }
        let (w, h) = (
            usize::from(self.read_dispi(dispi::XRES)),
            usize::from(self.read_dispi(dispi::YRES)),
        );
        let line = self.line_bytes();
        let start = (usize::from(self.read_dispi(dispi::Y_OFFSET)) * line)
            + usize::from(self.read_dispi(dispi::X_OFFSET)) * 4;
        let mut pixels = Vec::with_capacity(w * h);
        for y in 0..h {
            let row = start + y * line;
            let bytes = self.memory.get(row..row + 4 * w)?;
            pixels.extend(
                bytes
                    .chunks_exact(4)
                    .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]])),
            );
        }
        Some(Image {
            width: w as u32,
            height: h as u32,
            format: Format::B8G8R8X8_UNORM,
            pixels,
        })
    }
}

fn range(offset: u64, len: usize, total: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(len)?;
    (end <= total).then_some(start..end)
}
