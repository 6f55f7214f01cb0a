//! TEMPORARY PROBE — a minimal, self-contained virtio-gpu client that proves the end-to-end
//! plumbing (sysfs PCI, BAR registers, /dev/mem DMA, QMP screendump) before the driver exists:
//! modern virtio initialisation with only VERSION_1, one control queue ([`ring`]), and the
//! handful of 2D commands needed to put a solid color on scanout 0.
//!
//! Everything here is to be replaced by `viogpu_common`'s transport, virtqueue and command
//! layer once they are merged; only the [`crate::hosted`] platform stays.

mod ring;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use viogpu_common::hal::{DmaBuffer, RegisterAccess};
use viogpu_common::{Error, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::hosted::bar::{BarMapping, RegisterWindow};
use crate::hosted::dma::DevMemHal;
use crate::hosted::pci::{first_of, PciFunction, VirtioCfgType};

use ring::ProbeQueue;

/// Offsets in the virtio PCI common configuration structure (virtio 1.x §4.1.4.3).
mod common_cfg {
    pub const DEVICE_FEATURE_SELECT: usize = 0;
    pub const DEVICE_FEATURE: usize = 4;
    pub const DRIVER_FEATURE_SELECT: usize = 8;
    pub const DRIVER_FEATURE: usize = 12;
    pub const DEVICE_STATUS: usize = 20;
    pub const QUEUE_SELECT: usize = 22;
    pub const QUEUE_SIZE: usize = 24;
    pub const QUEUE_ENABLE: usize = 28;
    pub const QUEUE_NOTIFY_OFF: usize = 30;
    pub const QUEUE_DESC: usize = 32;
    pub const QUEUE_DRIVER: usize = 40;
    pub const QUEUE_DEVICE: usize = 48;
    /// Size of the structure up to and including queue_device.
    pub const LEN: usize = 56;
}

const STATUS_ACKNOWLEDGE: u8 = 1;
const STATUS_DRIVER: u8 = 2;
const STATUS_DRIVER_OK: u8 = 4;
const STATUS_FEATURES_OK: u8 = 8;
const STATUS_NEEDS_RESET: u8 = 64;
const STATUS_FAILED: u8 = 128;
const FEATURE_VERSION_1: u64 = 1 << 32;

const CMD_GET_DISPLAY_INFO: u32 = 0x0100;
const CMD_RESOURCE_CREATE_2D: u32 = 0x0101;
const CMD_SET_SCANOUT: u32 = 0x0103;
const CMD_RESOURCE_FLUSH: u32 = 0x0104;
const CMD_TRANSFER_TO_HOST_2D: u32 = 0x0105;
const CMD_RESOURCE_ATTACH_BACKING: u32 = 0x0106;
const RESP_OK_NODATA: u32 = 0x1100;
const RESP_OK_DISPLAY_INFO: u32 = 0x1101;
/// Bytes in memory order B, G, R, X.
const FORMAT_B8G8R8X8_UNORM: u32 = 2;
const MAX_SCANOUTS: usize = 16;
/// Largest surface the probe will create (keeps the DMA range within bounds).
const MAX_DIMENSION: u32 = 8192;
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
const RESOURCE_ID: u32 = 1;

// Wire structures (virtio-gpu §5.7.6). Plain integers: the guest is little-endian x86_64.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Default)]
#[repr(C)]
struct CtrlHeader {
    kind: u32,
    flags: u32,
    fence_id: u64,
    ctx_id: u32,
    ring_idx: u8,
    padding: [u8; 3],
}

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Default)]
#[repr(C)]
struct Rect {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Default)]
#[repr(C)]
struct ResourceCreate2d {
    header: CtrlHeader,
    resource_id: u32,
    format: u32,
    width: u32,
    height: u32,
}

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Default)]
#[repr(C)]
struct AttachBacking {
    header: CtrlHeader,
    resource_id: u32,
    nr_entries: u32,
    addr: u64,
    length: u32,
    padding: u32,
}

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Default)]
#[repr(C)]
struct SetScanout {
    header: CtrlHeader,
    rect: Rect,
    scanout_id: u32,
    resource_id: u32,
}

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Default)]
#[repr(C)]
struct TransferToHost2d {
    header: CtrlHeader,
    rect: Rect,
    offset: u64,
    resource_id: u32,
    padding: u32,
}

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Default)]
#[repr(C)]
struct ResourceFlush {
    header: CtrlHeader,
    rect: Rect,
    resource_id: u32,
    padding: u32,
}

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Default)]
#[repr(C)]
struct DisplayOne {
    rect: Rect,
    enabled: u32,
    flags: u32,
}

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Default)]
#[repr(C)]
struct DisplayInfo {
    header: CtrlHeader,
    modes: [DisplayOne; MAX_SCANOUTS],
}

fn header(kind: u32) -> CtrlHeader {
    CtrlHeader {
        kind,
        ..CtrlHeader::default()
    }
}

/// One scanout as GET_DISPLAY_INFO reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanout {
    /// Scanout index.
    pub id: u32,
    /// Preferred width.
    pub width: u32,
    /// Preferred height.
    pub height: u32,
    /// Whether a monitor is connected.
    pub enabled: bool,
}

/// The device, initialised by the probe, with its control queue and the one framebuffer.
pub struct ProbeDevice {
    common: RegisterWindow,
    hal: DevMemHal,
    control: ProbeQueue,
    framebuffer: Option<DmaBuffer<DevMemHal>>,
}

impl ProbeDevice {
    /// Resets the device and brings it to DRIVER_OK with only VERSION_1 and the control queue.
    pub fn init(pci: &PciFunction, hal: &DevMemHal) -> io::Result<Self> {
        let caps = pci.virtio_capabilities()?;
        let common_cap =
            first_of(&caps, VirtioCfgType::Common).ok_or_else(|| missing_cap("common"))?;
        let notify_cap =
            first_of(&caps, VirtioCfgType::Notify).ok_or_else(|| missing_cap("notify"))?;
        pci.enable_memory_and_bus_master()?;
        let common_bar = BarMapping::map(pci, common_cap.bar)?;
        let notify_bar = if notify_cap.bar == common_cap.bar {
            Arc::clone(&common_bar)
        } else {
            BarMapping::map(pci, notify_cap.bar)?
        };
        let common = RegisterWindow::new(
            common_bar,
            common_cap.offset as usize,
            (common_cap.length as usize).max(common_cfg::LEN),
        )?;
        let notify = RegisterWindow::new(
            notify_bar,
            notify_cap.offset as usize,
            notify_cap.length as usize,
        )?;
        let multiplier = notify_cap.notify_off_multiplier.unwrap_or(0);
        init_device(&common, hal, notify, multiplier).map_err(to_io)
    }

    /// Asks the device for its scanouts (GET_DISPLAY_INFO).
    pub fn display_info(&mut self) -> Result<Vec<Scanout>> {
        let answer = self.control.call(
            header(CMD_GET_DISPLAY_INFO).as_bytes(),
            std::mem::size_of::<DisplayInfo>(),
            COMMAND_TIMEOUT,
        )?;
        let info = DisplayInfo::read_from_prefix(&answer)
            .map(|(info, _)| info)
            .map_err(|_| Error::ShortResponse)?;
        if info.header.kind != RESP_OK_DISPLAY_INFO {
            return Err(response_error(info.header.kind));
        }
        Ok(info
            .modes
            .iter()
            .zip(0u32..)
            .map(|(mode, id)| Scanout {
                id,
                width: mode.rect.width,
                height: mode.rect.height,
                enabled: mode.enabled != 0,
            })
            .collect())
    }

    /// Shows a solid `rgb` color on scanout 0 at its preferred size (1024x768 when the device
    /// reports none): CREATE_2D, ATTACH_BACKING, SET_SCANOUT, fill, TRANSFER, FLUSH. Returns
    /// the size used.
    pub fn fill_scanout0(&mut self, rgb: [u8; 3]) -> Result<(u32, u32)> {
        if self.framebuffer.is_some() {
            // One resource per device lifetime keeps the probe trivial; reinit to fill again.
            return Err(Error::InvalidArgument);
        }
        let first = self.display_info()?.first().copied();
        let (width, height) = match first {
            Some(s)
                if s.enabled
                    && (1..=MAX_DIMENSION).contains(&s.width)
                    && (1..=MAX_DIMENSION).contains(&s.height) =>
            {
                (s.width, s.height)
            }
            _ => (1024, 768),
        };
        let stride = width as usize * 4;
        let len = stride * height as usize;
        let rect = Rect {
            x: 0,
            y: 0,
            width,
            height,
        };
        self.command(&ResourceCreate2d {
            header: header(CMD_RESOURCE_CREATE_2D),
            resource_id: RESOURCE_ID,
            format: FORMAT_B8G8R8X8_UNORM,
            width,
            height,
        })?;
        let mut framebuffer = DmaBuffer::new(&self.hal, len)?;
        let row: Vec<u8> = std::iter::repeat_n([rgb[2], rgb[1], rgb[0], 0xff], width as usize)
            .flatten()
            .collect();
        for line in framebuffer.as_mut_slice().chunks_exact_mut(stride) {
            line.copy_from_slice(&row);
        }
        let addr = framebuffer.phys();
        // Kept before the device sees it: the device reads it until reset.
        self.framebuffer = Some(framebuffer);
        self.command(&AttachBacking {
            header: header(CMD_RESOURCE_ATTACH_BACKING),
            resource_id: RESOURCE_ID,
            nr_entries: 1,
            addr,
            length: len as u32,
            padding: 0,
        })?;
        self.command(&SetScanout {
            header: header(CMD_SET_SCANOUT),
            rect,
            scanout_id: 0,
            resource_id: RESOURCE_ID,
        })?;
        self.command(&TransferToHost2d {
            header: header(CMD_TRANSFER_TO_HOST_2D),
            rect,
            offset: 0,
            resource_id: RESOURCE_ID,
            padding: 0,
        })?;
        self.command(&ResourceFlush {
            header: header(CMD_RESOURCE_FLUSH),
            rect,
            resource_id: RESOURCE_ID,
            padding: 0,
        })?;
        Ok((width, height))
    }

    /// Sends a command whose only good answer is OK_NODATA.
    fn command<T: IntoBytes + Immutable>(&mut self, request: &T) -> Result<()> {
        let answer = self.control.call(
            request.as_bytes(),
            std::mem::size_of::<CtrlHeader>(),
            COMMAND_TIMEOUT,
        )?;
        let reply = CtrlHeader::read_from_prefix(&answer)
            .map(|(h, _)| h)
            .map_err(|_| Error::ShortResponse)?;
        if reply.kind != RESP_OK_NODATA {
            return Err(response_error(reply.kind));
        }
        Ok(())
    }
}

impl Drop for ProbeDevice {
    fn drop(&mut self) {
        // Reset before the ring and framebuffer memory is freed (fields drop after this), so
        // the device never touches memory that went back to the allocator.
        let _ = reset(&self.common);
    }
}

fn response_error(kind: u32) -> Error {
    if (0x1200..0x1300).contains(&kind) {
        Error::DeviceError(kind)
    } else {
        Error::UnexpectedResponse(kind)
    }
}

/// `viogpu_common::Error` as an `io::Error` (it implements Display, not std's Error).
pub fn to_io(error: Error) -> io::Error {
    io::Error::other(error.to_string())
}

fn missing_cap(what: &str) -> io::Error {
    io::Error::other(format!("virtio {what} capability missing"))
}

/// The device features (64 bits) as offered in the common configuration.
pub fn device_features(common: &impl RegisterAccess) -> u64 {
    common.write_u32(common_cfg::DEVICE_FEATURE_SELECT, 0);
    let low = common.read_u32(common_cfg::DEVICE_FEATURE);
    common.write_u32(common_cfg::DEVICE_FEATURE_SELECT, 1);
    let high = common.read_u32(common_cfg::DEVICE_FEATURE);
    u64::from(high) << 32 | u64::from(low)
}

fn reset(common: &RegisterWindow) -> Result<()> {
    common.write_u8(common_cfg::DEVICE_STATUS, 0);
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    while common.read_u8(common_cfg::DEVICE_STATUS) != 0 {
        if Instant::now() > deadline {
            return Err(Error::Timeout);
        }
        std::thread::yield_now();
    }
    Ok(())
}

fn init_device(
    common: &RegisterWindow,
    hal: &DevMemHal,
    notify: RegisterWindow,
    notify_multiplier: u32,
) -> Result<ProbeDevice> {
    reset(common)?;
    let mut status = STATUS_ACKNOWLEDGE;
    common.write_u8(common_cfg::DEVICE_STATUS, status);
    status |= STATUS_DRIVER;
    common.write_u8(common_cfg::DEVICE_STATUS, status);
    if device_features(common) & FEATURE_VERSION_1 == 0 {
        return Err(Error::FeaturesRejected);
    }
    common.write_u32(common_cfg::DRIVER_FEATURE_SELECT, 0);
    common.write_u32(common_cfg::DRIVER_FEATURE, 0);
    common.write_u32(common_cfg::DRIVER_FEATURE_SELECT, 1);
    common.write_u32(common_cfg::DRIVER_FEATURE, (FEATURE_VERSION_1 >> 32) as u32);
    status |= STATUS_FEATURES_OK;
    common.write_u8(common_cfg::DEVICE_STATUS, status);
    if common.read_u8(common_cfg::DEVICE_STATUS) & STATUS_FEATURES_OK == 0 {
        common.write_u8(common_cfg::DEVICE_STATUS, status | STATUS_FAILED);
        return Err(Error::FeaturesRejected);
    }
    let control = ProbeQueue::new(hal, common, notify, notify_multiplier, 0)?;
    // From here on the device knows the ring addresses: dropping `device` on an error path
    // resets it before the ring memory is freed.
    let device = ProbeDevice {
        common: common.clone(),
        hal: hal.clone(),
        control,
        framebuffer: None,
    };
    status |= STATUS_DRIVER_OK;
    common.write_u8(common_cfg::DEVICE_STATUS, status);
    if common.read_u8(common_cfg::DEVICE_STATUS) & STATUS_NEEDS_RESET != 0 {
        return Err(Error::DeviceNeedsReset);
    }
    Ok(device)
}
