//! A PCI function seen through Linux sysfs (`/sys/bus/pci/devices/<address>/`): finding it by
//! vendor and device id, reading and writing its configuration space through the `config`
//! file (also as the core's [`PciConfigAccess`], so the core's own capability walk finds the
//! virtio structures), turning on memory decoding and bus mastering, and reading BAR placement
//! from the `resource` file.

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

fn parse_hex_u64(s: &str) -> Result<u64, std::num::ParseIntError> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16)
}

fn read_hex_id(path: &Path) -> io::Result<u16> {
    let text = fs::read_to_string(path)?;
    u16::from_str_radix(text.trim().trim_start_matches("0x"), 16)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))
}
