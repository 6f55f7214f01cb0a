//! The common configuration structure protocol: reset, the status handshake, feature
//! negotiation, virtqueue setup, MSI-X vector assignment, notification and the ISR byte.
//!
//! The driver's sequence (virtio 1.x, "Device Initialization"):
//! [`VirtioPciTransport::init`] (reset, ACKNOWLEDGE, DRIVER, feature negotiation up to
//! FEATURES_OK), then for each queue [`queue_max_size`](VirtioPciTransport::queue_max_size)
//! and [`setup_queue`](VirtioPciTransport::setup_queue), then
//! [`driver_ok`](VirtioPciTransport::driver_ok). The transport keeps its own copy of the
//! status bits it has set, so a device that reads back garbage cannot make it write bits the
//! driver never chose.

use super::capability::{VirtioPciLayout, COMMON_CFG_LEN};
use super::{DeviceStatus, Features, IsrStatus};
use crate::hal::RegisterAccess;
use crate::{Error, Result};

/// Most virtqueues the transport tracks; queue indices at or above it are refused.
pub const MAX_QUEUES: u16 = 16;
/// The MSI-X "no vector" value; the device also reads it back when it cannot assign one.
pub const NO_VECTOR: u16 = 0xFFFF;
/// Largest split-virtqueue size the spec allows.
const MAX_QUEUE_SIZE: u16 = 32768;
/// Status reads after writing 0 before reset is declared failed. A status read is a trapped
/// MMIO access of a few microseconds, so this bounds reset to some tens of milliseconds.
const RESET_POLL_LIMIT: u32 = 10_000;

// Common configuration structure offsets (virtio 1.x, 4.1.4.3).
const DEVICE_FEATURE_SELECT: usize = 0x00;
const DEVICE_FEATURE: usize = 0x04;
const DRIVER_FEATURE_SELECT: usize = 0x08;
const DRIVER_FEATURE: usize = 0x0c;
const CONFIG_MSIX_VECTOR: usize = 0x10;
const NUM_QUEUES: usize = 0x12;
const DEVICE_STATUS: usize = 0x14;
pub(super) const CONFIG_GENERATION: usize = 0x15;
const QUEUE_SELECT: usize = 0x16;
const QUEUE_SIZE: usize = 0x18;
const QUEUE_MSIX_VECTOR: usize = 0x1a;
const QUEUE_ENABLE: usize = 0x1c;
const QUEUE_NOTIFY_OFF: usize = 0x1e;
const QUEUE_DESC: usize = 0x20;
const QUEUE_DRIVER: usize = 0x28;
const QUEUE_DEVICE: usize = 0x30;
const _: () = assert!(QUEUE_DEVICE + 8 == COMMON_CFG_LEN as usize);

/// The register windows of one device, each starting at its structure's first byte and at
/// least as long as the structure's region in the [`VirtioPciLayout`]. One type for all four
/// so a platform needs one window type (typically
/// [`RegionWindow`](super::RegionWindow) over a BAR mapping).
#[derive(Debug)]
pub struct VirtioPciWindows<R> {
    /// Common configuration.
    pub common: R,
    /// Notification area.
    pub notify: R,
    /// ISR status.
    pub isr: R,
    /// Device-specific configuration.
    pub device: R,
}

/// Where the driver put one virtqueue, for [`VirtioPciTransport::setup_queue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Number of entries: a power of two, at most the device's maximum.
    pub size: u16,
    /// Bus address of the descriptor table (16-byte aligned).
    pub desc: u64,
    /// Bus address of the driver (available) ring (2-byte aligned).
    pub driver: u64,
    /// Bus address of the device (used) ring (4-byte aligned).
    pub device: u64,
    /// MSI-X vector for this queue's interrupts, or [`NO_VECTOR`].
    pub msix_vector: u16,
}

/// What the device accepted for a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSetup {
    /// The queue size in use.
    pub size: u16,
    /// Byte offset of the queue's doorbell in the notify window.
    pub notify_offset: usize,
    /// The vector the device assigned; `None` if it answered [`NO_VECTOR`] (out of vectors,
    /// or none was asked for). A driver using MSI-X must then poll or pick another vector.
    pub msix_vector: Option<u16>,
}

/// A virtio device behind the PCI modern transport.
#[derive(Debug)]
pub struct VirtioPciTransport<R: RegisterAccess> {
    pub(super) common: R,
    pub(super) notify: R,
    pub(super) isr: R,
    pub(super) device: R,
    pub(super) layout: VirtioPciLayout,
    num_queues: u16,
    /// The status bits the driver has set since the last reset.
    status: DeviceStatus,
    features: Features,
    notify_offsets: [Option<usize>; MAX_QUEUES as usize],
}

impl<R: RegisterAccess> VirtioPciTransport<R> {
    /// A transport over the windows of a device whose capabilities were found as `layout`.
    /// Does not touch the device beyond reading `num_queues`.
    pub fn new(layout: VirtioPciLayout, windows: VirtioPciWindows<R>) -> Self {
        let num_queues = windows.common.read_u16(NUM_QUEUES).min(MAX_QUEUES);
        Self {
            common: windows.common,
            notify: windows.notify,
            isr: windows.isr,
            device: windows.device,
            layout,
            num_queues,
            status: DeviceStatus::empty(),
            features: Features::empty(),
            notify_offsets: [None; MAX_QUEUES as usize],
        }
    }

    /// The capability layout the transport was built from.
    pub fn layout(&self) -> &VirtioPciLayout {
        &self.layout
    }

    /// Number of queues the device offers, capped at [`MAX_QUEUES`].
    pub fn num_queues(&self) -> u16 {
        self.num_queues
    }

    /// The device status register as the device reports it now.
    pub fn status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_retain(self.common.read_u8(DEVICE_STATUS))
    }

    /// The features negotiated by the last successful [`negotiate`](Self::negotiate).
    pub fn features(&self) -> Features {
        self.features
    }

    /// True when the device status reads all-ones, which no device reports (bits 4 and 5 are
    /// reserved): the PCI read found no device, i.e. it was surprise-removed. Such a device
    /// cannot reach guest memory any more either.
    pub fn is_absent(&self) -> bool {
        status_register_absent(&self.common)
    }

    /// Resets the device: writes 0 to the status and waits (bounded) until it reads 0.
    /// Afterwards the device has forgotten all queues, features and vectors.
    /// [`Error::DeviceNeedsReset`] if it never reads 0 (hung or surprise-removed device).
    pub fn reset(&mut self) -> Result<()> {
        self.status = DeviceStatus::empty();
        self.features = Features::empty();
        self.notify_offsets = [None; MAX_QUEUES as usize];
        self.common.write_u8(DEVICE_STATUS, 0);
        for _ in 0..RESET_POLL_LIMIT {
            if self.common.read_u8(DEVICE_STATUS) == 0 {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(Error::DeviceNeedsReset)
    }

    /// Adds `bits` to the status the driver has set and writes the result.
    fn set_status(&mut self, bits: DeviceStatus) {
        self.status |= bits;
        self.common.write_u8(DEVICE_STATUS, self.status.bits());
    }

    /// Reset, ACKNOWLEDGE, DRIVER, then [`negotiate`](Self::negotiate)`(wanted)`. On success
    /// the device is at FEATURES_OK, ready for queue setup.
    pub fn init(&mut self, wanted: Features) -> Result<Features> {
        self.reset()?;
        self.set_status(DeviceStatus::ACKNOWLEDGE);
        self.set_status(DeviceStatus::DRIVER);
        self.negotiate(wanted)
    }

    /// All 64 feature bits the device offers.
    pub fn device_features(&mut self) -> Features {
        self.common.write_u32(DEVICE_FEATURE_SELECT, 0);
        let low = self.common.read_u32(DEVICE_FEATURE);
        self.common.write_u32(DEVICE_FEATURE_SELECT, 1);
        let high = self.common.read_u32(DEVICE_FEATURE);
        Features::from_bits_retain(u64::from(low) | (u64::from(high) << 32))
    }

    /// Accepts the features in both `wanted` and the device's offer, writes them, sets
    /// FEATURES_OK and checks that the device kept it. VERSION_1 is required.
    ///
    /// VIRTIO_F_ACCESS_PLATFORM is never accepted, even when `wanted` names it: the driver
    /// gives the device guest-physical addresses, which are right only while the device is
    /// not told to go through the platform's address translation
    /// ([`Features::ACCESS_PLATFORM`]). The spec lets a device that offers it fail
    /// FEATURES_OK when the driver does not accept it; that case is
    /// [`Error::AccessPlatformRequired`], so callers can say why the device is refused.
    ///
    /// [`Error::FeaturesRejected`] (and the FAILED status bit) if the device does not offer
    /// VERSION_1 or clears FEATURES_OK for another reason;
    /// [`Error::AccessPlatformRequired`] (and FAILED) as above; [`Error::InvalidArgument`]
    /// if called before DRIVER or after FEATURES_OK.
    pub fn negotiate(&mut self, wanted: Features) -> Result<Features> {
        if !self
            .status
            .contains(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER)
            || self.status.contains(DeviceStatus::FEATURES_OK)
        {
            return Err(Error::InvalidArgument);
        }
        let offered = self.device_features();
        let accepted = offered & wanted.difference(Features::ACCESS_PLATFORM);
        if !accepted.contains(Features::VERSION_1) {
            self.fail();
            return Err(Error::FeaturesRejected);
        }
        let bits = accepted.bits();
        self.common.write_u32(DRIVER_FEATURE_SELECT, 0);
        self.common.write_u32(DRIVER_FEATURE, bits as u32);
        self.common.write_u32(DRIVER_FEATURE_SELECT, 1);
        self.common.write_u32(DRIVER_FEATURE, (bits >> 32) as u32);
        self.set_status(DeviceStatus::FEATURES_OK);

        let status = self.status();
        if status.contains(DeviceStatus::DEVICE_NEEDS_RESET)
            || !status.contains(DeviceStatus::FEATURES_OK)
        {
            self.fail();
            if offered.contains(Features::ACCESS_PLATFORM) {
                return Err(Error::AccessPlatformRequired);
            }
            return Err(Error::FeaturesRejected);
        }
        self.features = accepted;
        Ok(accepted)
    }

    /// Sets DRIVER_OK: the device may now use the queues. [`Error::InvalidArgument`] before
    /// FEATURES_OK; [`Error::DeviceNeedsReset`] if the device reports it needs a reset.
    pub fn driver_ok(&mut self) -> Result<()> {
        if !self.status.contains(DeviceStatus::FEATURES_OK) {
            return Err(Error::InvalidArgument);
        }
        self.set_status(DeviceStatus::DRIVER_OK);
        if self.needs_reset() {
            return Err(Error::DeviceNeedsReset);
        }
        Ok(())
    }

    /// Tells the device the driver gave up on it (sets FAILED).
    pub fn fail(&mut self) {
        self.set_status(DeviceStatus::FAILED);
    }

    /// True when the device set DEVICE_NEEDS_RESET (an all-ones read, as from a removed
    /// device, counts as set).
    pub fn needs_reset(&self) -> bool {
        self.status().contains(DeviceStatus::DEVICE_NEEDS_RESET)
    }

    /// Selects queue `q` after checking it exists.
    fn select_queue(&self, q: u16) -> Result<()> {
        if q >= self.num_queues {
            return Err(Error::InvalidArgument);
        }
        self.common.write_u16(QUEUE_SELECT, q);
        Ok(())
    }

    /// The largest size the device supports for queue `q`.
    ///
    /// [`Error::InvalidArgument`] for a queue index the device does not have,
    /// [`Error::QueueUnavailable`] if the device reports size 0, [`Error::Malformed`] if the
    /// size is not a power of two.
    pub fn queue_max_size(&mut self, q: u16) -> Result<u16> {
        self.select_queue(q)?;
        let size = self.common.read_u16(QUEUE_SIZE);
        if size == 0 {
            return Err(Error::QueueUnavailable(q));
        }
        if !size.is_power_of_two() || size > MAX_QUEUE_SIZE {
            return Err(Error::Malformed("queue size not a power of two"));
        }
        Ok(size)
    }

    /// Programs queue `q` with the rings in `config` and enables it. Must run between
    /// FEATURES_OK and DRIVER_OK.
    ///
    /// Checks before writing anything: the queue was not set up already since the last reset,
    /// the size is a power of two no larger than the device's maximum and the ring addresses
    /// are aligned ([`Error::InvalidArgument`]); the
    /// queue is not already enabled ([`Error::Malformed`]); its doorbell lies inside the
    /// notify region ([`Error::BadCapability`]).
    pub fn setup_queue(&mut self, q: u16, config: &QueueConfig) -> Result<QueueSetup> {
        if !self.status.contains(DeviceStatus::FEATURES_OK)
            || self.status.contains(DeviceStatus::DRIVER_OK)
        {
            return Err(Error::InvalidArgument);
        }
        if self.queue_notify_offset(q).is_some() {
            return Err(Error::InvalidArgument);
        }
        let max = self.queue_max_size(q)?;
        if !config.size.is_power_of_two()
            || config.size > max
            || !config.desc.is_multiple_of(16)
            || !config.driver.is_multiple_of(2)
            || !config.device.is_multiple_of(4)
        {
            return Err(Error::InvalidArgument);
        }
        if self.common.read_u16(QUEUE_ENABLE) != 0 {
            return Err(Error::Malformed("queue enabled before setup"));
        }
        let notify_offset = self.doorbell_offset(self.common.read_u16(QUEUE_NOTIFY_OFF))?;
        let slot = self
            .notify_offsets
            .get_mut(usize::from(q))
            .ok_or(Error::InvalidArgument)?;

        if config.size != max {
            self.common.write_u16(QUEUE_SIZE, config.size);
        }
        write_u64(&self.common, QUEUE_DESC, config.desc);
        write_u64(&self.common, QUEUE_DRIVER, config.driver);
        write_u64(&self.common, QUEUE_DEVICE, config.device);
        self.common.write_u16(QUEUE_MSIX_VECTOR, config.msix_vector);
        let msix_vector =
            accepted_vector(config.msix_vector, self.common.read_u16(QUEUE_MSIX_VECTOR));
        self.common.write_u16(QUEUE_ENABLE, 1);
        *slot = Some(notify_offset);

        Ok(QueueSetup {
            size: config.size,
            notify_offset,
            msix_vector,
        })
    }

    /// Offset of a doorbell in the notify window, checked so that a 16-bit write fits.
    fn doorbell_offset(&self, queue_notify_off: u16) -> Result<usize> {
        let offset = u64::from(queue_notify_off) * u64::from(self.layout.notify_off_multiplier);
        match offset.checked_add(2) {
            Some(end) if end <= u64::from(self.layout.notify.len) => {
                usize::try_from(offset).map_err(|_| Error::BadCapability)
            }
            _ => Err(Error::BadCapability),
        }
    }

    /// Doorbell offset of queue `q`, once it is set up.
    pub fn queue_notify_offset(&self, q: u16) -> Option<usize> {
        self.notify_offsets.get(usize::from(q)).copied().flatten()
    }

    /// Tells the device that queue `q` has new available buffers.
    /// [`Error::InvalidArgument`] if the queue was not set up.
    pub fn notify(&self, q: u16) -> Result<()> {
        let offset = self.queue_notify_offset(q).ok_or(Error::InvalidArgument)?;
        self.notify.write_u16(offset, q);
        Ok(())
    }

    /// Assigns the MSI-X vector for configuration-change interrupts; returns the vector the
    /// device accepted, `None` if it answered [`NO_VECTOR`].
    pub fn set_config_msix_vector(&mut self, vector: u16) -> Option<u16> {
        self.common.write_u16(CONFIG_MSIX_VECTOR, vector);
        accepted_vector(vector, self.common.read_u16(CONFIG_MSIX_VECTOR))
    }

    /// The configuration-change MSI-X vector as the device reports it.
    pub fn config_msix_vector(&self) -> u16 {
        self.common.read_u16(CONFIG_MSIX_VECTOR)
    }

    /// Reads and thereby clears the ISR status. Unknown bits are dropped. (A removed device
    /// reads all-ones, which shows as both bits set.)
    pub fn read_isr(&self) -> IsrStatus {
        IsrStatus::from_bits_truncate(self.isr.read_u8(0))
    }
}

/// Writes a 64-bit register as two 32-bit halves, low first: a device need not accept 64-bit
/// accesses (virtio 1.x, 4.1.3.1).
fn write_u64<R: RegisterAccess>(regs: &R, offset: usize, value: u64) {
    regs.write_u32(offset, value as u32);
    regs.write_u32(offset + 4, (value >> 32) as u32);
}

/// The vector the device accepted, given what was written and what reads back.
fn accepted_vector(written: u16, read_back: u16) -> Option<u16> {
    (written != NO_VECTOR && read_back == written).then_some(written)
}

/// [`VirtioPciTransport::is_absent`] on a common-configuration window, for code that holds
/// only the window (the doorbell side of the driver).
pub fn status_register_absent<R: RegisterAccess>(common: &R) -> bool {
    common.read_u8(DEVICE_STATUS) == u8::MAX
}
