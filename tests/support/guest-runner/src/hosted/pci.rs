//! A PCI function seen through Linux sysfs (`/sys/bus/pci/devices/<address>/`): finding it by
//! vendor and device id, reading and writing its configuration space through the `config`
//! file (also as the core's [`PciConfigAccess`], so the core's own capability walk finds the
//! virtio structures), turning on memory decoding and bus mastering and MSI-X (the PCI bus
//! driver's part of granting the device its resources), and reading BAR placement from the
//! `resource` file.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use viogpu_common::transport::PciConfigAccess;

/// Where sysfs lists PCI functions.
pub const SYSFS_PCI_DEVICES: &str = "/sys/bus/pci/devices";

const CONFIG_COMMAND: u64 = 0x04;
const COMMAND_MEMORY_SPACE: u16 = 1 << 1;
const COMMAND_BUS_MASTER: u16 = 1 << 2;
const CONFIG_STATUS: u64 = 0x06;
const STATUS_CAP_LIST: u16 = 1 << 4;
const CONFIG_CAP_POINTER: u64 = 0x34;
const CAP_ID_MSIX: u8 = 0x11;
/// MSI-X message control: enable bit.
const MSIX_ENABLE: u16 = 1 << 15;
/// MSI-X message control: the table size minus one.
const MSIX_TABLE_SIZE_MASK: u16 = 0x07FF;
/// The kernel's `IORESOURCE_MEM`.
const IORESOURCE_MEM: u64 = 0x0000_0200;
/// The kernel's `IORESOURCE_PREFETCH`.
const IORESOURCE_PREFETCH: u64 = 0x0000_2000;
/// The kernel's `IORESOURCE_MEM_64`.
const IORESOURCE_MEM_64: u64 = 0x0010_0000;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// One PCI function, with its sysfs `config` file open for reading and writing.
#[derive(Debug)]
pub struct PciFunction {
    dir: PathBuf,
    config: File,
}

impl PciFunction {
    /// Opens the function whose sysfs directory is `dir` (needs root to write config space).
    pub fn open(dir: &Path) -> io::Result<Self> {
        let config_path = dir.join("config");
        let config = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&config_path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", config_path.display())))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
        })
    }

    /// Finds the first function with this vendor and device id in sysfs.
    pub fn find(vendor: u16, device: u16) -> io::Result<Self> {
        let mut entries: Vec<PathBuf> = fs::read_dir(SYSFS_PCI_DEVICES)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for dir in entries {
            let id = |name: &str| read_hex_id(&dir.join(name));
            if id("vendor").ok() == Some(vendor) && id("device").ok() == Some(device) {
                return Self::open(&dir);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no PCI function {vendor:04x}:{device:04x} in {SYSFS_PCI_DEVICES}"),
        ))
    }

    /// The PCI address (`0000:00:01.0`), i.e. the sysfs directory name.
    pub fn address(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The sysfs directory of the function.
    pub fn sysfs_dir(&self) -> &Path {
        &self.dir
    }

    /// Fills `buf` from configuration space at `offset`.
    pub fn read_config(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.config.read_exact_at(buf, offset)
    }

    /// Reads one byte of configuration space.
    pub fn read_config_u8(&self, offset: u64) -> io::Result<u8> {
        let mut b = [0u8; 1];
        self.read_config(offset, &mut b)?;
        Ok(b[0])
    }

    /// Reads a little-endian 16-bit configuration register.
    pub fn read_config_u16(&self, offset: u64) -> io::Result<u16> {
        let mut b = [0u8; 2];
        self.read_config(offset, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Reads a little-endian 32-bit configuration register.
    pub fn read_config_u32(&self, offset: u64) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.read_config(offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Writes a little-endian 16-bit configuration register (sysfs turns a 2-byte aligned
    /// write into one config cycle of that width).
    pub fn write_config_u16(&self, offset: u64, value: u16) -> io::Result<()> {
        let written = self.config.write_at(&value.to_le_bytes(), offset)?;
        if written != 2 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short config write at {offset:#x}"),
            ));
        }
        Ok(())
    }

    /// Size of configuration space as the kernel exposes it (256, or 4096 with PCIe
    /// extended space).
    pub fn config_len(&self) -> io::Result<u64> {
        Ok(self.config.metadata()?.len())
    }

    /// Writes `data` to configuration space at `offset`; returns the bytes written.
    pub fn write_config(&self, offset: u64, data: &[u8]) -> io::Result<usize> {
        self.config.write_at(data, offset)
    }

    /// Vendor id from configuration space.
    pub fn vendor_id(&self) -> io::Result<u16> {
        self.read_config_u16(0x00)
    }

    /// Device id from configuration space.
    pub fn device_id(&self) -> io::Result<u16> {
        self.read_config_u16(0x02)
    }

    /// Turns on memory-space decoding and bus mastering (DMA), which nobody else does because
    /// no kernel driver binds the device.
    pub fn enable_memory_and_bus_master(&self) -> io::Result<()> {
        let command = self.read_config_u16(CONFIG_COMMAND)?;
        let wanted = command | COMMAND_MEMORY_SPACE | COMMAND_BUS_MASTER;
        if wanted != command {
            self.write_config_u16(CONFIG_COMMAND, wanted)?;
        }
        let now = self.read_config_u16(CONFIG_COMMAND)?;
        if now & wanted != wanted {
            return Err(invalid(format!(
                "{}: PCI command register is {now:#06x} after writing {wanted:#06x}",
                self.address()
            )));
        }
        Ok(())
    }

    /// Config-space offset of the MSI-X capability, if the function has one.
    fn msix_capability(&self) -> io::Result<Option<u64>> {
        if self.read_config_u16(CONFIG_STATUS)? & STATUS_CAP_LIST == 0 {
            return Ok(None);
        }
        let mut at = self.read_config_u8(CONFIG_CAP_POINTER)? & 0xFC;
        // 48 capabilities fill the 192 bytes after the header: a longer list loops.
        for _ in 0..48 {
            if at == 0 {
                break;
            }
            if self.read_config_u8(u64::from(at))? == CAP_ID_MSIX {
                return Ok(Some(u64::from(at)));
            }
            at = self.read_config_u8(u64::from(at) + 1)? & 0xFC;
        }
        Ok(None)
    }

    /// Turns MSI-X on, as the PCI bus driver does when it grants a driver message interrupts,
    /// and returns the number of table entries. The table is left as the device reset it
    /// (every entry masked), so no message is ever written anywhere: a masked vector only
    /// sets its pending bit. The virtio device then signals through its vectors instead of
    /// the INTx line that no guest driver would acknowledge.
    pub fn enable_msix(&self) -> io::Result<u16> {
        let cap = self
            .msix_capability()?
            .ok_or_else(|| invalid(format!("{}: no MSI-X capability", self.address())))?;
        let control = self.read_config_u16(cap + 2)?;
        if control & MSIX_ENABLE == 0 {
            self.write_config_u16(cap + 2, control | MSIX_ENABLE)?;
        }
        if self.read_config_u16(cap + 2)? & MSIX_ENABLE == 0 {
            return Err(invalid(format!(
                "{}: MSI-X enable bit does not stick",
                self.address()
            )));
        }
        Ok((control & MSIX_TABLE_SIZE_MASK) + 1)
    }

    /// Turns MSI-X off again (the device falls back to INTx).
    pub fn disable_msix(&self) -> io::Result<()> {
        if let Some(cap) = self.msix_capability()? {
            let control = self.read_config_u16(cap + 2)?;
            self.write_config_u16(cap + 2, control & !MSIX_ENABLE)?;
        }
        Ok(())
    }

    /// The memory BARs the kernel assigned, in BAR order (a 64-bit BAR has the index of its
    /// low half; I/O BARs and unassigned ones are left out).
    pub fn memory_bars(&self) -> io::Result<Vec<(u8, BarResource)>> {
        let mut bars = Vec::new();
        let mut index = 0u8;
        while index < 6 {
            let bar = self.bar_resource(index)?;
            let is_64bit = bar.flags & IORESOURCE_MEM_64 != 0;
            if bar.flags & IORESOURCE_MEM != 0 && bar.len != 0 {
                bars.push((index, bar));
            }
            index += if is_64bit { 2 } else { 1 };
        }
        Ok(bars)
    }

    /// Placement of BAR `bar` as the kernel assigned it (sysfs `resource`, one line per BAR).
    pub fn bar_resource(&self, bar: u8) -> io::Result<BarResource> {
        let path = self.dir.join("resource");
        let text = fs::read_to_string(&path)?;
        let line = text
            .lines()
            .nth(usize::from(bar))
            .ok_or_else(|| invalid(format!("{}: no line for BAR {bar}", path.display())))?;
        let mut fields = line.split_whitespace().map(parse_hex_u64);
        let (Some(Ok(start)), Some(Ok(end)), Some(Ok(flags))) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(invalid(format!("{}: bad line {line:?}", path.display())));
        };
        let len = if start == 0 && end == 0 {
            0
        } else {
            end.checked_sub(start)
                .and_then(|d| d.checked_add(1))
                .ok_or_else(|| invalid(format!("{}: bad range {line:?}", path.display())))?
        };
        Ok(BarResource { start, len, flags })
    }

    /// The sysfs file that maps BAR `bar`.
    pub fn resource_file(&self, bar: u8) -> PathBuf {
        self.dir.join(format!("resource{bar}"))
    }
}

/// The core's view of configuration space ([`VirtioPciLayout::discover`] walks it): reads go
/// through the sysfs `config` file, and a read the kernel refuses (out of range, device gone)
/// gives all-ones, as the trait asks.
///
/// [`VirtioPciLayout::discover`]: viogpu_common::transport::VirtioPciLayout::discover
impl PciConfigAccess for PciFunction {
    fn read_u8(&self, offset: u16) -> u8 {
        self.read_config_u8(u64::from(offset)).unwrap_or(u8::MAX)
    }

    fn read_u16(&self, offset: u16) -> u16 {
        self.read_config_u16(u64::from(offset)).unwrap_or(u16::MAX)
    }

    fn read_u32(&self, offset: u16) -> u32 {
        self.read_config_u32(u64::from(offset)).unwrap_or(u32::MAX)
    }

    fn write_u16(&self, offset: u16, value: u16) {
        let _ = self.write_config_u16(u64::from(offset), value);
    }

    fn write_u32(&self, offset: u16, value: u32) {
        let _ = self
            .config
            .write_at(&value.to_le_bytes(), u64::from(offset));
    }
}

/// A BAR as assigned by the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarResource {
    /// Physical (bus) address of the BAR, 0 when unassigned.
    pub start: u64,
    /// Length in bytes, 0 when unassigned.
    pub len: u64,
    /// The kernel's `IORESOURCE_*` flags.
    pub flags: u64,
}

impl BarResource {
    /// A 64-bit memory BAR.
    pub fn is_64bit(&self) -> bool {
        self.flags & IORESOURCE_MEM_64 != 0
    }

    /// A prefetchable memory BAR.
    pub fn is_prefetchable(&self) -> bool {
        self.flags & IORESOURCE_PREFETCH != 0
    }
}

fn parse_hex_u64(s: &str) -> Result<u64, std::num::ParseIntError> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16)
}

fn read_hex_id(path: &Path) -> io::Result<u16> {
    let text = fs::read_to_string(path)?;
    u16::from_str_radix(text.trim().trim_start_matches("0x"), 16)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))
}
