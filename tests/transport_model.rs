//! The driver's virtio PCI transport against the emulated virtio-gpu-pci function: capability
//! discovery, the status handshake, queue setup into real `virtio_queue::Queue` objects,
//! notifications, interrupts and config changes, and devices that answer garbage.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use viogpu_common::transport::{
    read_bar, BarKind, Features, GpuEvents, IsrStatus, PciConfigAccess, QueueConfig, RegionWindow,
    VirtioPciLayout, VirtioPciTransport, GPU_DEVICE_CFG_LEN, NO_VECTOR,
};
use viogpu_common::Error;
use virtio_gpu_model::pci::{BarWindow, ModelConfig, VirtioGpuPci, EVENT_DISPLAY};
use virtio_gpu_model::{Interrupt, QueueHandler};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

type Transport = VirtioPciTransport<RegionWindow<BarWindow>>;

const CONTROLQ: QueueConfig = QueueConfig {
    size: 64,
    desc: 0x1_0000,
    driver: 0x1_0400,
    device: 0x1_1000,
    msix_vector: 1,
};
const CURSORQ: QueueConfig = QueueConfig {
    size: 16,
    desc: 0x2_0000,
    driver: 0x2_0100,
    device: 0x2_1000,
    msix_vector: 2,
};

fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
}

fn device(config: ModelConfig) -> VirtioGpuPci {
    VirtioGpuPci::new(memory(), config)
}

fn transport(dev: &VirtioGpuPci) -> Result<Transport, Error> {
    let layout = VirtioPciLayout::discover(&dev.config_space(), GPU_DEVICE_CFG_LEN)?;
    Ok(VirtioPciTransport::new(
        layout,
        dev.transport_windows(&layout)?,
    ))
}

/// A device brought to DRIVER_OK with both queues set up.
fn running(dev: &VirtioGpuPci) -> Transport {
    let mut t = transport(dev).unwrap();
    t.init(Features::GPU_DRIVER).unwrap();
    t.setup_queue(0, &CONTROLQ).unwrap();
    t.setup_queue(1, &CURSORQ).unwrap();
    t.driver_ok().unwrap();
    t
}

#[test]
fn layout_matches_qemu() {
    let dev = device(ModelConfig::default());
    let cfg = dev.config_space();
    assert_eq!(cfg.read_u16(2), 0x1050);
    assert_eq!(cfg.read_u8(8), 1, "revision");
    let l = VirtioPciLayout::discover(&cfg, GPU_DEVICE_CFG_LEN).unwrap();
    let at = |r: viogpu_common::transport::Region| (r.bar, r.offset, r.len);
    assert_eq!(at(l.common), (4, 0x0000, 0x1000));
    assert_eq!(at(l.isr), (4, 0x1000, 0x1000));
    assert_eq!(at(l.device), (4, 0x2000, 0x1000));
    assert_eq!(at(l.notify), (4, 0x3000, 0x1000));
    assert_eq!(l.notify_off_multiplier, 4);
    assert_eq!(l.msix_table_size, Some(3));
    assert_eq!(l.pci_cfg_cap, Some(0x84));

    let bar4 = read_bar(&cfg, 4).unwrap();
    assert_eq!(
        (bar4.address, bar4.kind, bar4.prefetchable),
        (0xFE80_0000, BarKind::Memory64, true)
    );
    // BAR sizing as the OS does it: all-ones in, size mask out, flag bits kept.
    cfg.write_u32(0x20, u32::MAX);
    assert_eq!(cfg.read_u32(0x20), 0xFFFF_C00C);
    cfg.write_u32(0x20, 0xFE80_0000);
    assert_eq!(read_bar(&cfg, 4).unwrap().address, 0xFE80_0000);
}

#[test]
fn handshake_reaches_driver_ok_with_exactly_the_negotiated_features() {
    let dev = device(ModelConfig::default());
    let mut t = transport(&dev).unwrap();
    // Ask for more than the device has (virgl, blob) and less than it offers nothing extra.
    let wanted = Features::GPU_DRIVER | Features::GPU_VIRGL | Features::GPU_RESOURCE_BLOB;
    let got = t.init(wanted).unwrap();
    let offered = Features::GPU_DRIVER.difference(Features::GPU_RESOURCE_BLOB);
    assert_eq!(got, offered);
    assert_eq!(dev.driver_features(), offered.bits());
    assert_eq!(dev.status(), 0x0B); // ACKNOWLEDGE | DRIVER | FEATURES_OK
    t.setup_queue(0, &CONTROLQ).unwrap();
    t.setup_queue(1, &CURSORQ).unwrap();
    t.driver_ok().unwrap();
    assert_eq!(dev.status(), 0x0F);
    assert!(!t.needs_reset());
}

#[test]
fn device_refusing_features_ok_is_features_rejected() {
    let dev = device(ModelConfig {
        reject_features: true,
        ..ModelConfig::default()
    });
    let mut t = transport(&dev).unwrap();
    assert_eq!(t.init(Features::GPU_DRIVER), Err(Error::FeaturesRejected));
    assert_eq!(dev.status(), 0x83, "FAILED set, FEATURES_OK not kept");
}

#[test]
fn device_without_version_1_is_features_rejected() {
    let dev = device(ModelConfig {
        device_features: Features::GPU_EDID.bits(),
        ..ModelConfig::default()
    });
    let mut t = transport(&dev).unwrap();
    assert_eq!(t.init(Features::GPU_DRIVER), Err(Error::FeaturesRejected));
    assert_eq!(dev.driver_features(), 0);
}

#[test]
fn queue_setup_programs_the_model_queues() {
    let dev = device(ModelConfig::default());
    let mut t = transport(&dev).unwrap();
    t.init(Features::GPU_DRIVER).unwrap();
    assert_eq!(t.queue_max_size(0), Ok(64));
    assert_eq!(t.queue_max_size(1), Ok(16));
    let small = QueueConfig {
        size: 32,
        ..CONTROLQ
    };
    let setup = t.setup_queue(0, &small).unwrap();
    assert_eq!(
        (setup.size, setup.notify_offset, setup.msix_vector),
        (32, 0, Some(1))
    );
    // Vector 5 is beyond the 3-entry MSI-X table: the device answers NO_VECTOR.
    let cursor = QueueConfig {
        msix_vector: 5,
        ..CURSORQ
    };
    let setup = t.setup_queue(1, &cursor).unwrap();
    assert_eq!(
        (setup.size, setup.notify_offset, setup.msix_vector),
        (16, 4, None)
    );
    assert_eq!(dev.queue_msix_vector(1), Some(NO_VECTOR));

    let state = |q: &Queue| {
        (
            q.size(),
            q.desc_table(),
            q.avail_ring(),
            q.used_ring(),
            q.ready(),
            q.event_idx_enabled(),
        )
    };
    assert_eq!(
        dev.with_queue(0, state),
        Some((32, 0x1_0000, 0x1_0400, 0x1_1000, true, true))
    );
    assert_eq!(
        dev.with_queue(1, state),
        Some((16, 0x2_0000, 0x2_0100, 0x2_1000, true, true))
    );
    assert!(dev.with_queue(0, |q| q.is_valid(&memory())).unwrap());
}

#[test]
fn reset_clears_the_model() {
    let dev = device(ModelConfig::default());
    let mut t = running(&dev);
    t.reset().unwrap();
    assert_eq!(dev.status(), 0);
    assert_eq!(dev.driver_features(), 0);
    assert_eq!(
        dev.with_queue(0, |q| (q.ready(), q.desc_table())),
        Some((false, 0))
    );
    assert_eq!(t.notify(0), Err(Error::InvalidArgument));
}

/// Records notifies; for each available chain on the queue, returns it used with length 0.
struct Recorder(Arc<Mutex<Vec<u16>>>);

impl QueueHandler for Recorder {
    fn queue_notify(&mut self, q: u16, queue: &mut Queue, mem: &GuestMemoryMmap) {
        self.0.lock().unwrap().push(q);
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            queue.add_used(mem, chain.head_index(), 0).unwrap();
        }
    }
}

/// Makes descriptor 0 (one 16-byte readable buffer) available on a queue laid out as
/// `config`.
fn post_one_buffer(mem: &GuestMemoryMmap, config: &QueueConfig) {
    let at = |addr: u64| GuestAddress(addr);
    mem.write_obj(0x8_0000u64, at(config.desc)).unwrap();
    mem.write_obj(16u32, at(config.desc + 8)).unwrap();
    mem.write_obj(0u16, at(config.desc + 12)).unwrap(); // flags
    mem.write_obj(0u16, at(config.driver + 4)).unwrap(); // ring[0] = head 0
    mem.write_obj(1u16, at(config.driver + 2)).unwrap(); // idx = 1
}

#[test]
fn notify_reaches_the_right_queue_and_raises_its_interrupt() {
    let mem = memory();
    let dev = VirtioGpuPci::new(mem.clone(), ModelConfig::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    dev.set_handler(Box::new(Recorder(Arc::clone(&seen))));
    let t = running(&dev);

    t.notify(1).unwrap();
    assert_eq!(*seen.lock().unwrap(), [1]);
    assert_eq!(dev.notifies(), [(1, 1)]);
    assert!(
        dev.take_interrupts().is_empty(),
        "nothing used, no interrupt"
    );

    post_one_buffer(&mem, &CONTROLQ);
    t.notify(0).unwrap();
    assert_eq!(*seen.lock().unwrap(), [1, 0]);
    assert_eq!(dev.notifies(), [(1, 1), (0, 0)]);
    assert_eq!(
        dev.take_interrupts(),
        [Interrupt::Queue {
            queue: 0,
            vector: 1
        }]
    );
    let used_idx: u16 = mem.read_obj(GuestAddress(CONTROLQ.device + 2)).unwrap();
    assert_eq!(used_idx, 1);
    assert_eq!(t.read_isr(), IsrStatus::QUEUE);
    assert_eq!(t.read_isr(), IsrStatus::empty());
}

#[test]
fn config_change_is_seen_and_acknowledged() {
    let dev = device(ModelConfig {
        num_scanouts: 2,
        ..ModelConfig::default()
    });
    let mut t = running(&dev);
    assert_eq!(t.set_config_msix_vector(0), Some(0));
    assert_eq!(t.set_config_msix_vector(3), None, "table has 3 entries");
    assert_eq!(t.set_config_msix_vector(0), Some(0));
    let generation = t.config_generation();

    dev.raise_config_change(EVENT_DISPLAY);
    assert_eq!(dev.take_interrupts(), [Interrupt::Config { vector: 0 }]);
    assert_ne!(t.config_generation(), generation);
    assert_eq!(t.read_isr(), IsrStatus::CONFIG);
    let config = t.gpu_config().unwrap();
    assert_eq!(config.events_read, GpuEvents::DISPLAY);
    assert_eq!(config.num_scanouts, 2);
    t.events_clear(config.events_read).unwrap();
    assert_eq!(dev.events_read(), 0);
    assert_eq!(t.events_read(), Ok(GpuEvents::empty()));
}

// ------------------------------------------------------------------------ garbage devices

struct AllOnes;

impl PciConfigAccess for AllOnes {
    fn read_u8(&self, _: u16) -> u8 {
        0xFF
    }
    fn read_u16(&self, _: u16) -> u16 {
        0xFFFF
    }
    fn read_u32(&self, _: u16) -> u32 {
        u32::MAX
    }
    fn write_u16(&self, _: u16, _: u16) {}
    fn write_u32(&self, _: u16, _: u32) {}
}

#[test]
fn all_ones_config_space_is_bad_capability() {
    assert_eq!(
        VirtioPciLayout::discover(&AllOnes, GPU_DEVICE_CFG_LEN),
        Err(Error::BadCapability)
    );
}

#[test]
fn looping_capability_list_is_bad_capability() {
    let dev = device(ModelConfig::default());
    dev.edit_config_space(|c| c[0x41] = 0x98); // common cap (last) -> MSI-X (first)
    assert_eq!(transport(&dev).err(), Some(Error::BadCapability));
}

#[test]
fn capability_with_bar_7_is_bad_capability() {
    let dev = device(ModelConfig::default());
    dev.edit_config_space(|c| c[0x40 + 4] = 7); // common cap's BAR
    assert_eq!(transport(&dev).err(), Some(Error::BadCapability));
}

#[test]
fn region_beyond_the_bar_is_bad_capability() {
    let dev = device(ModelConfig::default());
    dev.edit_config_space(|c| c[0x70 + 9] = 0x40); // notify at 0x4000: past the 16 KiB BAR
    assert_eq!(transport(&dev).err(), Some(Error::BadCapability));
}

#[test]
fn notify_offset_outside_region_is_bad_capability() {
    let dev = device(ModelConfig::default());
    dev.set_queue_notify_off(1, 0x400); // 0x400 * 4 = 0x1000: one past the region
    let mut t = transport(&dev).unwrap();
    t.init(Features::GPU_DRIVER).unwrap();
    assert_eq!(t.setup_queue(1, &CURSORQ), Err(Error::BadCapability));
    assert_eq!(
        dev.with_queue(1, |q| (q.ready(), q.desc_table())),
        Some((false, 0))
    );
}

#[test]
fn absent_and_odd_queue_sizes_are_errors() {
    let dev = device(ModelConfig {
        queue_sizes: vec![0, 48],
        ..ModelConfig::default()
    });
    let mut t = transport(&dev).unwrap();
    t.init(Features::GPU_DRIVER).unwrap();
    assert_eq!(t.setup_queue(0, &CONTROLQ), Err(Error::QueueUnavailable(0)));
    assert!(matches!(t.queue_max_size(1), Err(Error::Malformed(_))));
    assert_eq!(t.setup_queue(2, &CONTROLQ), Err(Error::InvalidArgument));
}

#[test]
fn scanout_counts_out_of_range_are_malformed() {
    let dev = device(ModelConfig::default());
    let t = running(&dev);
    for n in [0, 17, 200, u32::MAX] {
        dev.set_num_scanouts(n);
        assert_eq!(
            t.num_scanouts(),
            Err(Error::Malformed("num_scanouts")),
            "{n}"
        );
        assert!(t.gpu_config().is_err());
    }
    dev.set_num_scanouts(16);
    assert_eq!(t.num_scanouts(), Ok(16));
}
