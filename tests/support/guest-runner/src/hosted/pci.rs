//! A PCI function seen through Linux sysfs (`/sys/bus/pci/devices/<address>/`): finding it by
//! vendor and device id, reading and writing its configuration space through the `config`
//! file, turning on memory decoding and bus mastering, reading BAR placement from the
//! `resource` file, and locating the virtio vendor capabilities that say which BAR slice holds
//! the common, notify, ISR and device configuration of a modern virtio device.
//!
//! Configuration space is device-provided data: capability pointers and lengths are bounded
//! before use, and a malformed list is an error, never a loop or a panic.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Vendor id of virtio PCI devices.
pub const VIRTIO_VENDOR_ID: u16 = 0x1af4;
/// Device id of a modern virtio-gpu (0x1040 + device type 16).
pub const VIRTIO_GPU_DEVICE_ID: u16 = 0x1050;

/// Where sysfs lists PCI functions.
pub const SYSFS_PCI_DEVICES: &str = "/sys/bus/pci/devices";

const CONFIG_COMMAND: u64 = 0x04;
const CONFIG_STATUS: u64 = 0x06;
const CONFIG_CAPABILITIES_POINTER: u64 = 0x34;
const COMMAND_MEMORY_SPACE: u16 = 1 << 1;
const COMMAND_BUS_MASTER: u16 = 1 << 2;
const STATUS_CAPABILITIES_LIST: u16 = 1 << 4;
const CAP_ID_VENDOR: u8 = 0x09;
/// Standard configuration space size; capabilities live in it (not in extended space).
const CONFIG_STANDARD_SIZE: u8 = 0xff;
/// More capabilities than fit in standard config space means the list loops.
const MAX_CAPABILITIES: usize = 48;

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

    /// Walks the capability list and returns the virtio vendor capabilities, in list order.
    pub fn virtio_capabilities(&self) -> io::Result<Vec<VirtioCapability>> {
        if self.read_config_u16(CONFIG_STATUS)? & STATUS_CAPABILITIES_LIST == 0 {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let mut pointer = self.read_config_u8(CONFIG_CAPABILITIES_POINTER)? & 0xfc;
        let mut visited = 0;
        while pointer != 0 {
            visited += 1;
            // Capabilities sit after the 64-byte header and must fit in standard space.
            if visited > MAX_CAPABILITIES
                || !(0x40..=CONFIG_STANDARD_SIZE - VirtioCapability::MIN_LEN).contains(&pointer)
            {
                return Err(invalid(format!(
                    "{}: malformed capability list at {pointer:#x}",
                    self.address()
                )));
            }
            let mut cap = [0u8; 20];
            let readable = usize::from(CONFIG_STANDARD_SIZE - pointer) + 1;
            let cap_bytes = cap.get_mut(..readable.min(20)).unwrap_or(&mut []);
            self.read_config(u64::from(pointer), cap_bytes)?;
            if cap[0] == CAP_ID_VENDOR {
                if let Some(parsed) = VirtioCapability::parse(&cap) {
                    found.push(parsed);
                }
            }
            pointer = cap[1] & 0xfc;
        }
        Ok(found)
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

/// What a virtio vendor capability describes (`cfg_type`, virtio 1.x §4.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioCfgType {
    /// Common configuration (features, status, queue setup).
    Common,
    /// Queue notification area.
    Notify,
    /// ISR status byte.
    Isr,
    /// Device-specific configuration (for virtio-gpu: events, num_scanouts, ...).
    Device,
    /// The PCI configuration access window (not a BAR region).
    PciCfg,
    /// A type this code does not know (ignored, as the spec asks).
    Other(u8),
}

impl From<u8> for VirtioCfgType {
    fn from(raw: u8) -> Self {
        match raw {
            1 => Self::Common,
            2 => Self::Notify,
            3 => Self::Isr,
            4 => Self::Device,
            5 => Self::PciCfg,
            other => Self::Other(other),
        }
    }
}

/// One virtio vendor capability: a slice of a BAR with a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioCapability {
    /// What the slice holds.
    pub cfg_type: VirtioCfgType,
    /// BAR index (0..=5 for a usable capability).
    pub bar: u8,
    /// Offset of the slice within the BAR.
    pub offset: u32,
    /// Length of the slice.
    pub length: u32,
    /// For [`VirtioCfgType::Notify`]: bytes between the notify addresses of two queues.
    pub notify_off_multiplier: Option<u32>,
}

impl VirtioCapability {
    const MIN_LEN: u8 = 16;
    const NOTIFY_LEN: u8 = 20;

    /// Parses a vendor capability starting at `cap[0]` (the capability id), or `None` if it
    /// is too short or names no valid BAR.
    pub fn parse(cap: &[u8; 20]) -> Option<Self> {
        let cap_len = cap[2];
        if cap_len < Self::MIN_LEN || cap[4] > 5 {
            return None;
        }
        let u32_at = |at: usize| -> Option<u32> {
            let bytes = cap.get(at..at + 4)?;
            Some(u32::from_le_bytes(bytes.try_into().ok()?))
        };
        let cfg_type = VirtioCfgType::from(cap[3]);
        let notify_off_multiplier = if cfg_type == VirtioCfgType::Notify {
            if cap_len < Self::NOTIFY_LEN {
                return None;
            }
            Some(u32_at(16)?)
        } else {
            None
        };
        Some(Self {
            cfg_type,
            bar: cap[4],
            offset: u32_at(8)?,
            length: u32_at(12)?,
            notify_off_multiplier,
        })
    }
}

/// The first capability of a type, as the virtio spec says to pick.
pub fn first_of(caps: &[VirtioCapability], cfg_type: VirtioCfgType) -> Option<VirtioCapability> {
    caps.iter().copied().find(|c| c.cfg_type == cfg_type)
}

fn parse_hex_u64(s: &str) -> Result<u64, std::num::ParseIntError> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16)
}

fn read_hex_id(path: &Path) -> io::Result<u16> {
    let text = fs::read_to_string(path)?;
    u16::from_str_radix(text.trim().trim_start_matches("0x"), 16)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cap(cfg_type: u8, bar: u8, offset: u32, length: u32, cap_len: u8) -> [u8; 20] {
        let mut c = [0u8; 20];
        c[0] = CAP_ID_VENDOR;
        c[2] = cap_len;
        c[3] = cfg_type;
        c[4] = bar;
        c[8..12].copy_from_slice(&offset.to_le_bytes());
        c[12..16].copy_from_slice(&length.to_le_bytes());
        c[16..20].copy_from_slice(&4u32.to_le_bytes());
        c
    }

    #[test]
    fn parses_common_and_notify_capabilities() {
        let common = VirtioCapability::parse(&cap(1, 4, 0, 0x1000, 16)).unwrap();
        assert_eq!(common.cfg_type, VirtioCfgType::Common);
        assert_eq!((common.bar, common.offset, common.length), (4, 0, 0x1000));
        assert_eq!(common.notify_off_multiplier, None);
        let notify = VirtioCapability::parse(&cap(2, 4, 0x3000, 0x1000, 20)).unwrap();
        assert_eq!(notify.notify_off_multiplier, Some(4));
    }

    #[test]
    fn rejects_short_or_bad_bar_capabilities() {
        assert_eq!(VirtioCapability::parse(&cap(1, 4, 0, 0x1000, 15)), None);
        assert_eq!(VirtioCapability::parse(&cap(1, 6, 0, 0x1000, 16)), None);
        // A notify capability without room for the multiplier is unusable.
        assert_eq!(VirtioCapability::parse(&cap(2, 4, 0, 0x1000, 16)), None);
    }
}
