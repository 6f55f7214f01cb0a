//! The device-specific configuration: consistent reads under the config generation counter,
//! and the virtio-gpu fields (events, scanouts, capsets).
//!
//! A device may change its configuration at any time; the generation counter in the common
//! configuration changes with it. A read is consistent when the generation is the same
//! before and after it, so [`VirtioPciTransport::read_device_config`] retries a bounded
//! number of times and then gives up rather than spin on a device that never settles.

use super::pci_transport::{VirtioPciTransport, CONFIG_GENERATION};
use crate::hal::RegisterAccess;
use crate::{Error, Result};

/// Most scanouts a virtio-gpu device may report (VIRTIO_GPU_MAX_SCANOUTS).
pub const MAX_SCANOUTS: u32 = 16;
/// Most capability sets the driver accepts from a device; more is treated as garbage.
pub const MAX_CAPSETS: u32 = 64;
/// Attempts at a consistent read before giving up.
const CONFIG_READ_ATTEMPTS: u32 = 16;

// virtio-gpu device configuration offsets (struct virtio_gpu_config).
const EVENTS_READ: usize = 0;
const EVENTS_CLEAR: usize = 4;
const NUM_SCANOUTS: usize = 8;
const NUM_CAPSETS: usize = 12;

bitflags::bitflags! {
    /// Pending virtio-gpu events (`events_read`, `events_clear`). Unknown bits are kept so
    /// that clearing what was read clears everything.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct GpuEvents: u32 {
        /// The display configuration changed; the driver should re-read display info.
        const DISPLAY = 1;
    }
}

/// A bounds-checked view of the device-specific configuration, for one consistent read.
#[derive(Debug)]
pub struct DeviceConfig<'a, R> {
    regs: &'a R,
    len: usize,
}

impl<R: RegisterAccess> DeviceConfig<'_, R> {
    fn check(&self, offset: usize, width: usize) -> Result<()> {
        match offset.checked_add(width) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::OutOfBounds),
        }
    }

    /// Reads a byte at `offset`; [`Error::OutOfBounds`] outside the region.
    pub fn read_u8(&self, offset: usize) -> Result<u8> {
        self.check(offset, 1)?;
        Ok(self.regs.read_u8(offset))
    }

    /// Reads a 16-bit field at `offset`; [`Error::OutOfBounds`] outside the region.
    pub fn read_u16(&self, offset: usize) -> Result<u16> {
        self.check(offset, 2)?;
        Ok(self.regs.read_u16(offset))
    }

    /// Reads a 32-bit field at `offset`; [`Error::OutOfBounds`] outside the region.
    pub fn read_u32(&self, offset: usize) -> Result<u32> {
        self.check(offset, 4)?;
        Ok(self.regs.read_u32(offset))
    }
}

/// The virtio-gpu configuration, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuConfig {
    /// Pending events.
    pub events_read: GpuEvents,
    /// Number of scanouts, 1..=[`MAX_SCANOUTS`].
    pub num_scanouts: u32,
    /// Number of capability sets, 0..=[`MAX_CAPSETS`].
    pub num_capsets: u32,
}

impl<R: RegisterAccess> VirtioPciTransport<R> {
    /// The configuration generation counter.
    pub fn config_generation(&self) -> u8 {
        self.common.read_u8(CONFIG_GENERATION)
    }

    /// Runs `read` over the device configuration until the generation counter is the same
    /// before and after. [`Error::Malformed`] if it never is within a bounded number of
    /// attempts; errors from `read` are returned as they are.
    pub fn read_device_config<T>(
        &self,
        read: impl Fn(&DeviceConfig<'_, R>) -> Result<T>,
    ) -> Result<T> {
        let view = DeviceConfig {
            regs: &self.device,
            len: usize::try_from(self.layout.device.len).unwrap_or(usize::MAX),
        };
        for _ in 0..CONFIG_READ_ATTEMPTS {
            let before = self.config_generation();
            let value = read(&view)?;
            if self.config_generation() == before {
                return Ok(value);
            }
        }
        Err(Error::Malformed("config generation never settles"))
    }

    /// Writes a 32-bit field of the device configuration; [`Error::OutOfBounds`] outside the
    /// region.
    pub fn write_device_config_u32(&self, offset: usize, value: u32) -> Result<()> {
        let end = offset.checked_add(4).ok_or(Error::OutOfBounds)?;
        if u64::try_from(end).map_or(true, |end| end > u64::from(self.layout.device.len)) {
            return Err(Error::OutOfBounds);
        }
        self.device.write_u32(offset, value);
        Ok(())
    }

    /// The whole virtio-gpu configuration in one consistent read, bounded:
    /// [`Error::Malformed`] for num_scanouts outside 1..=16 or num_capsets above
    /// [`MAX_CAPSETS`].
    pub fn gpu_config(&self) -> Result<GpuConfig> {
        let (events, num_scanouts, num_capsets) = self.read_device_config(|cfg| {
            Ok((
                cfg.read_u32(EVENTS_READ)?,
                cfg.read_u32(NUM_SCANOUTS)?,
                cfg.read_u32(NUM_CAPSETS)?,
            ))
        })?;
        Ok(GpuConfig {
            events_read: GpuEvents::from_bits_retain(events),
            num_scanouts: check_scanouts(num_scanouts)?,
            num_capsets: check_capsets(num_capsets)?,
        })
    }

    /// Number of scanouts, 1..=16; [`Error::Malformed`] otherwise.
    pub fn num_scanouts(&self) -> Result<u32> {
        check_scanouts(self.read_device_config(|cfg| cfg.read_u32(NUM_SCANOUTS))?)
    }

    /// Number of capability sets, at most [`MAX_CAPSETS`]; [`Error::Malformed`] otherwise.
    pub fn num_capsets(&self) -> Result<u32> {
        check_capsets(self.read_device_config(|cfg| cfg.read_u32(NUM_CAPSETS))?)
    }

    /// The pending events.
    pub fn events_read(&self) -> Result<GpuEvents> {
        self.read_device_config(|cfg| cfg.read_u32(EVENTS_READ))
            .map(GpuEvents::from_bits_retain)
    }

    /// Acknowledges the events in `mask`.
    pub fn events_clear(&self, mask: GpuEvents) -> Result<()> {
        self.write_device_config_u32(EVENTS_CLEAR, mask.bits())
    }
}

fn check_scanouts(n: u32) -> Result<u32> {
    if (1..=MAX_SCANOUTS).contains(&n) {
        Ok(n)
    } else {
        Err(Error::Malformed("num_scanouts"))
    }
}

fn check_capsets(n: u32) -> Result<u32> {
    if n <= MAX_CAPSETS {
        Ok(n)
    } else {
        Err(Error::Malformed("num_capsets"))
    }
}
