//! Bringing a virtio-gpu device from reset to DRIVER_OK with its two queues, and back to
//! DRIVER_OK over the same rings after a power cycle: the one sequence the driver
//! (StartDevice and the return to D0) and the tests share.
//!
//! Order per the virtio spec (3.1.1): reset, ACKNOWLEDGE, DRIVER, feature negotiation,
//! FEATURES_OK, the device configuration (`num_scanouts`, checked before any ring exists, so a
//! device with a bad count is never told an address), queue setup, the configuration-change
//! vector, DRIVER_OK.
//!
//! Ownership of ring memory follows "a buffer given to the device is never freed before the
//! device gives it back": each queue is owned by the caller's side (a slot here) before the
//! device learns its addresses, and once any address was written a failure resets the device
//! before the rings are dropped. If the device does not confirm that reset it may still read
//! them, so they are leaked instead and the device is marked FAILED.
//!
//! Feature negotiation never accepts VIRTIO_F_ACCESS_PLATFORM (bit 33), whatever
//! [`BringUpConfig::wanted`] says: every address the core gives the device (rings, request
//! buffers, framebuffer chunks) is the guest-physical address its [`Hal`] reports, which is
//! what the device uses only while that feature is not negotiated (no IOMMU translation). A
//! device that insists on it fails FEATURES_OK and the bring-up ends with
//! [`Error::AccessPlatformRequired`], the device reset (no ring exists yet).
//!
//! What the callers choose ([`BringUpConfig`]): the features they want, the largest ring per
//! queue, and the MSI-X vectors ([`Vectors`]; the driver shares one message between the
//! configuration change and both queues, the tests use one vector each as Linux does).

use crate::command::CommandQueue;
use crate::gpu::{GpuDevice, Notify, Platform, CONTROL_QUEUE, CURSOR_QUEUE};
use crate::hal::{Hal, RegisterAccess};
use crate::transport::{Features, QueueConfig, VirtioPciTransport, NO_VECTOR};
use crate::virtqueue::{QueueFeatures, SplitQueue};
use crate::{Error, Result};

/// The queues in the order [`Started::queues`] holds them.
pub const QUEUES: [u16; 2] = [CONTROL_QUEUE, CURSOR_QUEUE];

/// MSI-X vectors to program; [`NO_VECTOR`] where the interrupt is not message-signaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vectors {
    /// Vector of configuration-change interrupts.
    pub config: u16,
    /// Vector of each queue, in [`QUEUES`] order.
    pub queues: [u16; 2],
}

impl Vectors {
    /// Line-based interrupts: no vector anywhere.
    pub const NONE: Self = Self {
        config: NO_VECTOR,
        queues: [NO_VECTOR; 2],
    };

    /// One message for the configuration change and both queues (the driver: its ISR reads
    /// both queues on every interrupt anyway).
    pub const fn shared(vector: u16) -> Self {
        Self {
            config: vector,
            queues: [vector; 2],
        }
    }

    /// One vector each, 0 config, 1 control, 2 cursor, when the device's MSI-X table has at
    /// least three entries (Linux's layout); [`Self::NONE`] otherwise.
    pub fn per_source(msix_table_size: Option<u16>) -> Self {
        match msix_table_size {
            Some(n) if n >= 3 => Self {
                config: 0,
                queues: [1, 2],
            },
            _ => Self::NONE,
        }
    }
}

/// What a caller asks of the bring-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BringUpConfig {
    /// Features the driver supports; the device's offer narrows them.
    pub wanted: Features,
    /// Largest ring per queue, in [`QUEUES`] order (each ring slot costs a request buffer).
    pub max_ring: [u16; 2],
    /// The interrupt vectors.
    pub vectors: Vectors,
}

/// What the device accepted for one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueInfo {
    /// Byte offset of the queue's doorbell in the notify window (a fixed property of the
    /// device's queue, so it holds across resets).
    pub notify_offset: usize,
    /// False when a vector was asked for and the device answered NO_VECTOR: its completions
    /// raise no interrupt and must be polled.
    pub vector_accepted: bool,
}

/// A device at DRIVER_OK with both queues.
pub struct Started<H: Hal> {
    /// The features both sides agreed on.
    pub features: Features,
    /// The scanout count from the device configuration (1..=16).
    pub num_scanouts: u32,
    /// The control and cursor queues.
    pub queues: [CommandQueue<H>; 2],
    /// What the device accepted per queue, in [`QUEUES`] order.
    pub queue_info: [QueueInfo; 2],
    /// False when a configuration-change vector was asked for and refused.
    pub config_vector_accepted: bool,
}

impl<H: Hal> Started<H> {
    /// The device layer over the started queues (using blob framebuffers when
    /// `VIRTIO_GPU_F_RESOURCE_BLOB` was negotiated).
    pub fn into_device<P: Platform, N: Notify>(
        self,
        hal: H,
        platform: P,
        notify: N,
    ) -> GpuDevice<H, P, N> {
        let [control, cursor] = self.queues;
        GpuDevice::new(hal, platform, notify, control, cursor)
            .with_blob(self.features.contains(Features::GPU_RESOURCE_BLOB))
    }
}

/// Where one queue's rings are, copied from its [`SplitQueue`] (so a restart needs no queue
/// lock held while it talks to the device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingAddresses {
    /// Number of entries (a power of two).
    pub size: u16,
    /// Descriptor table.
    pub desc: u64,
    /// Driver (available) ring.
    pub driver: u64,
    /// Device (used) ring.
    pub device: u64,
}

impl RingAddresses {
    /// The addresses of `ring`.
    pub fn of<H: Hal>(ring: &SplitQueue<H>) -> Self {
        Self {
            size: ring.size(),
            desc: ring.desc_addr(),
            driver: ring.avail_addr(),
            device: ring.used_addr(),
        }
    }
}

/// What a restart over kept rings reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restarted {
    /// What the device accepted per queue, in [`QUEUES`] order.
    pub queue_info: [QueueInfo; 2],
    /// False when a configuration-change vector was asked for and refused.
    pub config_vector_accepted: bool,
}

/// Resets the device and brings it up with both queues (see the module docs).
pub fn bring_up<H: Hal, R: RegisterAccess>(
    hal: &H,
    transport: &mut VirtioPciTransport<R>,
    config: &BringUpConfig,
) -> Result<Started<H>> {
    let features = match transport.init(config.wanted) {
        Ok(features) => features,
        Err(e) => {
            // Refused features (FAILED was set) or an unconfirmed reset. No ring exists: a
            // reset only leaves the device clean for the next driver; its result changes
            // nothing here.
            let _ = transport.reset();
            return Err(e);
        }
    };
    let num_scanouts = match transport.num_scanouts() {
        Ok(n) => n,
        Err(e) => {
            // No ring exists yet: the reset only leaves the device clean.
            let _ = transport.reset();
            return Err(e);
        }
    };
    let queue_features = QueueFeatures {
        indirect: features.contains(Features::RING_INDIRECT_DESC),
        event_idx: features.contains(Features::RING_EVENT_IDX),
    };
    let mut slots: [Option<CommandQueue<H>>; 2] = [None, None];
    let mut queue_info = [QueueInfo {
        notify_offset: 0,
        vector_accepted: true,
    }; 2];
    let started = (|| {
        for (i, (&q, slot)) in QUEUES.iter().zip(slots.iter_mut()).enumerate() {
            let max = config.max_ring.get(i).copied().unwrap_or(0);
            let vector = config.vectors.queues.get(i).copied().unwrap_or(NO_VECTOR);
            let size = largest_power_of_two_at_most(transport.queue_max_size(q)?.min(max));
            let ring = SplitQueue::new(hal, size, queue_features)?;
            // Owned by the slot before the device learns the addresses.
            let queue = slot.insert(CommandQueue::new(hal, ring)?);
            if let Some(info) = queue_info.get_mut(i) {
                *info = program_queue(transport, q, RingAddresses::of(queue.queue()), vector)?;
            }
        }
        let config_vector_accepted = program_config_vector(transport, config.vectors.config);
        transport.driver_ok()?;
        Ok(config_vector_accepted)
    })();
    match (started, slots) {
        (Ok(config_vector_accepted), [Some(control), Some(cursor)]) => Ok(Started {
            features,
            num_scanouts,
            queues: [control, cursor],
            queue_info,
            config_vector_accepted,
        }),
        (result, slots) => {
            give_up(transport, slots);
            Err(result.err().unwrap_or(Error::InvalidArgument))
        }
    }
}

/// Brings a device that was reset (a power cycle) back to DRIVER_OK over the rings it had,
/// which the caller emptied after the reset. The device must offer the same `features` as
/// before: anything else is a different or broken device ([`Error::FeaturesRejected`], and the
/// device is marked FAILED). On failure the caller keeps the rings and must not free them
/// unless a later reset is confirmed.
pub fn restart<R: RegisterAccess>(
    transport: &mut VirtioPciTransport<R>,
    features: Features,
    rings: [RingAddresses; 2],
    vectors: Vectors,
) -> Result<Restarted> {
    // `init` starts with a reset and fails unless the device confirms it.
    let offered = transport.init(features)?;
    if offered != features {
        transport.fail();
        return Err(Error::FeaturesRejected);
    }
    let mut queue_info = [QueueInfo {
        notify_offset: 0,
        vector_accepted: true,
    }; 2];
    for (i, (&q, ring)) in QUEUES.iter().zip(rings).enumerate() {
        let vector = vectors.queues.get(i).copied().unwrap_or(NO_VECTOR);
        if let Some(info) = queue_info.get_mut(i) {
            *info = program_queue(transport, q, ring, vector)?;
        }
    }
    let config_vector_accepted = program_config_vector(transport, vectors.config);
    transport.driver_ok()?;
    Ok(Restarted {
        queue_info,
        config_vector_accepted,
    })
}

/// Tells the device where queue `q`'s rings are and which vector it signals.
fn program_queue<R: RegisterAccess>(
    transport: &mut VirtioPciTransport<R>,
    q: u16,
    ring: RingAddresses,
    vector: u16,
) -> Result<QueueInfo> {
    let config = QueueConfig {
        size: ring.size,
        desc: ring.desc,
        driver: ring.driver,
        device: ring.device,
        msix_vector: vector,
    };
    let setup = transport.setup_queue(q, &config)?;
    Ok(QueueInfo {
        notify_offset: setup.notify_offset,
        vector_accepted: vector == NO_VECTOR || setup.msix_vector.is_some(),
    })
}

/// Programs the configuration-change vector (nothing for [`NO_VECTOR`]); false if refused.
fn program_config_vector<R: RegisterAccess>(
    transport: &mut VirtioPciTransport<R>,
    vector: u16,
) -> bool {
    vector == NO_VECTOR || transport.set_config_msix_vector(vector).is_some()
}

/// After a failed bring-up: reset so the rings can be freed, or, if the device does not
/// confirm the reset (it may still read them), leak them and mark the device FAILED.
fn give_up<H: Hal, R: RegisterAccess>(
    transport: &mut VirtioPciTransport<R>,
    slots: [Option<CommandQueue<H>>; 2],
) {
    if transport.reset().is_err() {
        core::mem::forget(slots);
        transport.fail();
    }
}

/// A split queue's size is a power of two: the largest one `n` allows (0 for 0).
fn largest_power_of_two_at_most(n: u16) -> u16 {
    match n {
        0 => 0,
        _ => 1 << (15 - n.leading_zeros()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_round_down_to_a_power_of_two() {
        assert_eq!(largest_power_of_two_at_most(0), 0);
        assert_eq!(largest_power_of_two_at_most(1), 1);
        assert_eq!(largest_power_of_two_at_most(255), 128);
        assert_eq!(largest_power_of_two_at_most(256), 256);
        assert_eq!(largest_power_of_two_at_most(u16::MAX), 32768);
    }

    #[test]
    fn vector_layouts() {
        assert_eq!(Vectors::per_source(Some(2)), Vectors::NONE);
        assert_eq!(Vectors::per_source(None), Vectors::NONE);
        assert_eq!(
            Vectors::per_source(Some(3)),
            Vectors {
                config: 0,
                queues: [1, 2]
            }
        );
        assert_eq!(Vectors::shared(0).queues, [0, 0]);
    }
}
