//! PCI configuration space: the capability walk that finds the virtio structures and the
//! MSI-X table size, and the decoding of a BAR register.
//!
//! The walk trusts nothing: the list is followed at most [`MAX_CAPS`] steps, every pointer
//! must lie in the device-specific part of config space (0x40..=0xFC) and may be visited
//! once, and every virtio capability must fit in config space and name a BAR 0..=5 with a
//! structure long enough for what the transport reads from it. A capability that breaks a
//! per-structure rule is ignored, as the virtio spec asks; a structure that ends up missing,
//! or a list that is itself broken, is [`Error::BadCapability`].

use crate::{Error, Result};

/// PCI vendor id of every virtio device.
pub const VIRTIO_PCI_VENDOR_ID: u16 = 0x1AF4;
/// PCI device id of a modern (non-transitional) virtio-gpu device (0x1040 + device type 16).
pub const VIRTIO_GPU_PCI_DEVICE_ID: u16 = 0x1050;
/// Length of the virtio 1.0 common configuration structure; the transport reads nothing
/// beyond it.
pub const COMMON_CFG_LEN: u32 = 0x38;
/// Length of the virtio-gpu device configuration (events_read, events_clear, num_scanouts,
/// num_capsets).
pub const GPU_DEVICE_CFG_LEN: u32 = 16;

/// Most capabilities a walk follows: one per dword from 0x40 to 0xFC.
const MAX_CAPS: usize = 48;
/// Config-space offsets of the type 0 header fields the walk reads.
const PCI_VENDOR_ID: u16 = 0x00;
const PCI_STATUS: u16 = 0x06;
const PCI_STATUS_CAP_LIST: u16 = 1 << 4;
const PCI_CAPABILITY_LIST: u16 = 0x34;
const PCI_BAR0: u16 = 0x10;
/// First offset after the standard header, where capabilities may live.
const CAP_AREA_START: u16 = 0x40;
/// Size of the conventional config space the list lives in.
const CONFIG_SPACE_LEN: u16 = 0x100;

const CAP_ID_VENDOR: u8 = 0x09;
const CAP_ID_MSIX: u8 = 0x11;
const MSIX_TABLE_SIZE_MASK: u16 = 0x7FF;

const VIRTIO_CAP_COMMON: u8 = 1;
const VIRTIO_CAP_NOTIFY: u8 = 2;
const VIRTIO_CAP_ISR: u8 = 3;
const VIRTIO_CAP_DEVICE: u8 = 4;
const VIRTIO_CAP_PCI: u8 = 5;
/// `struct virtio_pci_cap` is 16 bytes; the notify and PCI-config variants add a dword.
const VIRTIO_CAP_LEN: u8 = 16;
const VIRTIO_CAP_EXTENDED_LEN: u8 = 20;
const MAX_BAR: u8 = 5;

/// Access to one PCI function's configuration space, provided by the platform
/// (`DxgkCbReadDeviceSpace`/`DxgkCbWriteDeviceSpace` on Windows, the sysfs `config` file on
/// Linux, an emulated array in tests). Offsets are bytes from the start of config space;
/// multi-byte values are little-endian and naturally aligned. An implementation returns
/// all-ones for a read it cannot perform.
pub trait PciConfigAccess {
    /// Reads one byte.
    fn read_u8(&self, offset: u16) -> u8;
    /// Reads a 16-bit value.
    fn read_u16(&self, offset: u16) -> u16;
    /// Reads a 32-bit value.
    fn read_u32(&self, offset: u16) -> u32;
    /// Writes a 16-bit value.
    fn write_u16(&self, offset: u16, value: u16);
    /// Writes a 32-bit value.
    fn write_u32(&self, offset: u16, value: u32);
}

impl<T: PciConfigAccess + ?Sized> PciConfigAccess for &T {
    fn read_u8(&self, offset: u16) -> u8 {
        (**self).read_u8(offset)
    }
    fn read_u16(&self, offset: u16) -> u16 {
        (**self).read_u16(offset)
    }
    fn read_u32(&self, offset: u16) -> u32 {
        (**self).read_u32(offset)
    }
    fn write_u16(&self, offset: u16, value: u16) {
        (**self).write_u16(offset, value)
    }
    fn write_u32(&self, offset: u16, value: u32) {
        (**self).write_u32(offset, value)
    }
}

/// A virtio structure inside a BAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// BAR index, 0..=5.
    pub bar: u8,
    /// Offset of the first byte from the start of the BAR.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

impl Region {
    /// Offset one past the last byte, from the start of the BAR.
    pub fn end(&self) -> u64 {
        u64::from(self.offset) + u64::from(self.len)
    }
}

/// Where the virtio structures of a device live, as found in its capability list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioPciLayout {
    /// Common configuration (at least [`COMMON_CFG_LEN`] bytes).
    pub common: Region,
    /// Notification area (at least 2 bytes).
    pub notify: Region,
    /// Queue `q`'s doorbell is at `notify + queue_notify_off(q) * notify_off_multiplier`;
    /// 0 (all queues share one doorbell) or a power of two.
    pub notify_off_multiplier: u32,
    /// ISR status byte (at least 1 byte).
    pub isr: Region,
    /// Device-specific configuration.
    pub device: Region,
    /// Config-space offset of the PCI-configuration-access capability, if present.
    pub pci_cfg_cap: Option<u8>,
    /// Number of MSI-X table entries, if the function has an MSI-X capability.
    pub msix_table_size: Option<u16>,
}

impl VirtioPciLayout {
    /// Walks the capability list of the function behind `cfg`.
    ///
    /// `min_device_cfg_len` is how much device-specific configuration the caller will read
    /// ([`GPU_DEVICE_CFG_LEN`] for virtio-gpu). Fails with [`Error::BadCapability`] when the
    /// function is not a virtio device, has no capability list, the list loops or leaves the
    /// capability area, or a required structure is missing or too short.
    pub fn discover<C: PciConfigAccess + ?Sized>(cfg: &C, min_device_cfg_len: u32) -> Result<Self> {
        if cfg.read_u16(PCI_VENDOR_ID) != VIRTIO_PCI_VENDOR_ID {
            return Err(Error::BadCapability);
        }
        if cfg.read_u16(PCI_STATUS) & PCI_STATUS_CAP_LIST == 0 {
            return Err(Error::BadCapability);
        }

        let mut found = Found::default();
        let mut visited: u64 = 0;
        let mut ptr = u16::from(cfg.read_u8(PCI_CAPABILITY_LIST) & 0xFC);
        let mut steps = 0;
        while ptr != 0 {
            if !(CAP_AREA_START..CONFIG_SPACE_LEN).contains(&ptr) || steps >= MAX_CAPS {
                return Err(Error::BadCapability);
            }
            let bit = 1u64 << ((ptr - CAP_AREA_START) / 4);
            if visited & bit != 0 {
                return Err(Error::BadCapability);
            }
            visited |= bit;
            steps += 1;

            match cfg.read_u8(ptr) {
                CAP_ID_VENDOR => found.virtio_cap(cfg, ptr, min_device_cfg_len),
                CAP_ID_MSIX if found.msix_table_size.is_none() => {
                    let control = cfg.read_u16(ptr + 2);
                    found.msix_table_size = Some((control & MSIX_TABLE_SIZE_MASK) + 1);
                }
                _ => {}
            }
            ptr = u16::from(cfg.read_u8(ptr + 1) & 0xFC);
        }

        let (notify, notify_off_multiplier) = found.notify.ok_or(Error::BadCapability)?;
        Ok(Self {
            common: found.common.ok_or(Error::BadCapability)?,
            notify,
            notify_off_multiplier,
            isr: found.isr.ok_or(Error::BadCapability)?,
            device: found.device.ok_or(Error::BadCapability)?,
            pci_cfg_cap: found.pci_cfg_cap,
            msix_table_size: found.msix_table_size,
        })
    }

    /// The regions in the order common, notify, isr, device.
    pub fn regions(&self) -> [Region; 4] {
        [self.common, self.notify, self.isr, self.device]
    }

    /// Checks every region against the BAR sizes the platform mapped (`bar_len(n)` is the
    /// mapped length of BAR `n`, `None` if unmapped), so that windows cut with
    /// [`RegionWindow`](super::RegionWindow) lie inside their mappings.
    pub fn check_bars(&self, bar_len: impl Fn(u8) -> Option<u64>) -> Result<()> {
        for region in self.regions() {
            match bar_len(region.bar) {
                Some(len) if region.end() <= len => {}
                _ => return Err(Error::BadCapability),
            }
        }
        Ok(())
    }
}

/// The first acceptable instance of each structure seen so far.
#[derive(Default)]
struct Found {
    common: Option<Region>,
    notify: Option<(Region, u32)>,
    isr: Option<Region>,
    device: Option<Region>,
    pci_cfg_cap: Option<u8>,
    msix_table_size: Option<u16>,
}

impl Found {
    /// Records the vendor capability at `ptr` if it is a virtio structure this driver can
    /// use; ignores it otherwise.
    fn virtio_cap<C: PciConfigAccess + ?Sized>(&mut self, cfg: &C, ptr: u16, min_device: u32) {
        let cap_len = cfg.read_u8(ptr + 2);
        if cap_len < VIRTIO_CAP_LEN || ptr + u16::from(cap_len) > CONFIG_SPACE_LEN {
            return;
        }
        let cfg_type = cfg.read_u8(ptr + 3);
        let bar = cfg.read_u8(ptr + 4);
        if bar > MAX_BAR {
            return;
        }
        let region = Region {
            bar,
            offset: cfg.read_u32(ptr + 8),
            len: cfg.read_u32(ptr + 12),
        };
        match cfg_type {
            VIRTIO_CAP_COMMON if self.common.is_none() && region.len >= COMMON_CFG_LEN => {
                self.common = Some(region);
            }
            VIRTIO_CAP_NOTIFY
                if self.notify.is_none()
                    && cap_len >= VIRTIO_CAP_EXTENDED_LEN
                    && region.len >= 2 =>
            {
                let multiplier = cfg.read_u32(ptr + 16);
                // The spec allows 0 or an even power of two; anything else would put
                // doorbells at unaligned or nonsensical offsets.
                if multiplier == 0 || (multiplier.is_power_of_two() && multiplier >= 2) {
                    self.notify = Some((region, multiplier));
                }
            }
            VIRTIO_CAP_ISR if self.isr.is_none() && region.len >= 1 => {
                self.isr = Some(region);
            }
            VIRTIO_CAP_DEVICE if self.device.is_none() && region.len >= min_device => {
                self.device = Some(region);
            }
            VIRTIO_CAP_PCI if self.pci_cfg_cap.is_none() && cap_len >= VIRTIO_CAP_EXTENDED_LEN => {
                // ptr < 0x100 was checked by the walk.
                self.pci_cfg_cap = u8::try_from(ptr).ok();
            }
            _ => {}
        }
    }
}

/// What kind of address space a BAR decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    /// 32-bit memory BAR.
    Memory32,
    /// 64-bit memory BAR (occupies this BAR register and the next).
    Memory64,
    /// I/O port BAR.
    Io,
}

/// A decoded BAR register: what the platform compares against its resource list to find
/// which translated resource belongs to which BAR index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// Bus address the BAR is programmed with (flag bits removed).
    pub address: u64,
    /// Memory or I/O, 32 or 64 bits.
    pub kind: BarKind,
    /// Prefetchable memory.
    pub prefetchable: bool,
}

/// Decodes BAR `index` (0..=5) from config space. A 64-bit BAR must be read through its low
/// register. Fails with [`Error::InvalidArgument`] for an index above 5 and
/// [`Error::BadCapability`] for a reserved memory type or a 64-bit BAR in register 5.
pub fn read_bar<C: PciConfigAccess + ?Sized>(cfg: &C, index: u8) -> Result<Bar> {
    if index > MAX_BAR {
        return Err(Error::InvalidArgument);
    }
    let reg = PCI_BAR0 + u16::from(index) * 4;
    let low = cfg.read_u32(reg);
    if low & 1 != 0 {
        return Ok(Bar {
            address: u64::from(low & !0x3),
            kind: BarKind::Io,
            prefetchable: false,
        });
    }
    let prefetchable = low & 0x8 != 0;
    let base = u64::from(low & !0xF);
    match (low >> 1) & 0x3 {
        0 => Ok(Bar {
            address: base,
            kind: BarKind::Memory32,
            prefetchable,
        }),
        2 if index < MAX_BAR => {
            let high = cfg.read_u32(reg + 4);
            Ok(Bar {
                address: base | (u64::from(high) << 32),
                kind: BarKind::Memory64,
                prefetchable,
            })
        }
        _ => Err(Error::BadCapability),
    }
}
