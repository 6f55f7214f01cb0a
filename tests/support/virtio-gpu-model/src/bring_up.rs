//! Bringing a virtio-gpu device from reset to a running [`GpuDevice`] for the core's tests.
//! The driver has its own sequence (`viogpudo/adapter/start.rs`: its doorbell bookkeeping,
//! one MSI-X vector, rings kept across power cycles); this one is the plain spec order the
//! testbed needs.
//!
//! Order per the virtio spec (3.1.1): reset, ACKNOWLEDGE, DRIVER, feature negotiation,
//! FEATURES_OK, queue setup, DRIVER_OK. A failure at any step sets FAILED and returns the error;
//! the queues built so far are dropped only after the device was reset, so no ring memory the
//! device might still read is freed early.

use viogpu_common::command::CommandQueue;
use viogpu_common::gpu::{GpuDevice, Notify, Platform, CONTROL_QUEUE, CURSOR_QUEUE};
use viogpu_common::hal::{Hal, RegisterAccess};
use viogpu_common::transport::{Features, QueueConfig, VirtioPciTransport, NO_VECTOR};
use viogpu_common::virtqueue::{QueueFeatures, SplitQueue};
use viogpu_common::{Error, Result};

/// Largest control queue the driver asks for (QEMU offers 64).
pub const CONTROL_QUEUE_SIZE: u16 = 64;
/// Largest cursor queue the driver asks for (QEMU offers 16).
pub const CURSOR_QUEUE_SIZE: u16 = 16;

/// MSI-X vectors to program: config changes, control queue, cursor queue. `NO_VECTOR` for
/// line-based interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vectors {
    /// Vector of configuration-change interrupts.
    pub config: u16,
    /// Vector of the control queue.
    pub control: u16,
    /// Vector of the cursor queue.
    pub cursor: u16,
}

impl Vectors {
    /// The layout of the C++ driver and of Linux: 0 config, 1 control, 2 cursor, when the
    /// device has at least 3 MSI-X entries; no vectors otherwise.
    pub fn for_table_size(msix_table_size: Option<u16>) -> Self {
        match msix_table_size {
            Some(n) if n >= 3 => Self {
                config: 0,
                control: 1,
                cursor: 2,
            },
            _ => Self {
                config: NO_VECTOR,
                control: NO_VECTOR,
                cursor: NO_VECTOR,
            },
        }
    }
}

/// Resets the device and brings it up with both queues. Returns the running device and the
/// features both sides agreed on.
pub fn bring_up<H: Hal, P: Platform, N: Notify, R: RegisterAccess>(
    hal: &H,
    platform: P,
    notify: N,
    transport: &mut VirtioPciTransport<R>,
) -> Result<(GpuDevice<H, P, N>, Features)> {
    let result = bring_up_inner(hal, platform, notify, transport);
    if result.is_err() {
        transport.fail();
    }
    result
}

fn bring_up_inner<H: Hal, P: Platform, N: Notify, R: RegisterAccess>(
    hal: &H,
    platform: P,
    notify: N,
    transport: &mut VirtioPciTransport<R>,
) -> Result<(GpuDevice<H, P, N>, Features)> {
    let features = transport.init(Features::GPU_DRIVER)?;
    let queue_features = QueueFeatures {
        indirect: features.contains(Features::RING_INDIRECT_DESC),
        event_idx: features.contains(Features::RING_EVENT_IDX),
    };
    let vectors = Vectors::for_table_size(transport.layout().msix_table_size);
    let control = setup_queue(
        hal,
        transport,
        CONTROL_QUEUE,
        CONTROL_QUEUE_SIZE,
        vectors.control,
        queue_features,
    );
    let cursor = setup_queue(
        hal,
        transport,
        CURSOR_QUEUE,
        CURSOR_QUEUE_SIZE,
        vectors.cursor,
        queue_features,
    );
    let (control, cursor) = match (control, cursor) {
        (Ok(control), Ok(cursor)) => (control, cursor),
        (control, cursor) => {
            // The device may have seen the addresses of a queue that was set up: reset it
            // before the rings are freed (when `control` and `cursor` drop).
            let _ = transport.reset();
            let error = control
                .err()
                .or(cursor.err())
                .unwrap_or(Error::InvalidArgument);
            return Err(error);
        }
    };
    if vectors.config != NO_VECTOR {
        let _ = transport.set_config_msix_vector(vectors.config);
    }
    if let Err(e) = transport.driver_ok() {
        let _ = transport.reset();
        return Err(e);
    }
    Ok((
        GpuDevice::new(hal.clone(), platform, notify, control, cursor),
        features,
    ))
}

fn setup_queue<H: Hal, R: RegisterAccess>(
    hal: &H,
    transport: &mut VirtioPciTransport<R>,
    index: u16,
    wanted: u16,
    vector: u16,
    features: QueueFeatures,
) -> Result<CommandQueue<H>> {
    let size = largest_power_of_two_at_most(transport.queue_max_size(index)?.min(wanted));
    let queue = SplitQueue::new(hal, size, features)?;
    let config = QueueConfig {
        size,
        desc: queue.desc_addr(),
        driver: queue.avail_addr(),
        device: queue.used_addr(),
        msix_vector: vector,
    };
    let commands = CommandQueue::new(hal, queue)?;
    transport.setup_queue(index, &config)?;
    Ok(commands)
}

/// The device may offer a queue size that is not a power of two only in packed mode; for a
/// split queue take the largest power of two it allows.
fn largest_power_of_two_at_most(n: u16) -> u16 {
    if n == 0 {
        0
    } else {
        1 << (15 - n.leading_zeros())
    }
}
