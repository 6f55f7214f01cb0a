//! The core's one bring-up and power-cycle sequence (`viogpu_common::bring_up`), which the
//! driver's StartDevice and return to D0 and the core's testbed all use, against the emulated
//! virtio-gpu-pci function: ring sizes, vector layouts, and what happens to ring memory when a
//! step fails (freed only after a confirmed reset, leaked otherwise).
#![allow(clippy::unwrap_used)]

use viogpu_common::bring_up::{
    bring_up, restart, BringUpConfig, RingAddresses, Started, Vectors, QUEUES,
};
use viogpu_common::transport::{
    DeviceStatus, Features, RegionWindow, VirtioPciLayout, VirtioPciTransport, GPU_DEVICE_CFG_LEN,
    NO_VECTOR,
};
use viogpu_common::Error;
use virtio_gpu_model::guest_memory::GuestMemoryHal;
use virtio_gpu_model::pci::{BarWindow, ModelConfig, VirtioGpuPci};
use virtio_gpu_model::testbed::{GUEST_MEMORY_BASE, GUEST_MEMORY_SIZE};
use virtio_queue::QueueT;

type Transport = VirtioPciTransport<RegionWindow<BarWindow>>;

struct Rig {
    hal: GuestMemoryHal,
    dev: VirtioGpuPci,
    transport: Transport,
}

fn rig(config: ModelConfig) -> Rig {
    let hal = GuestMemoryHal::new(GUEST_MEMORY_BASE, GUEST_MEMORY_SIZE).unwrap();
    let dev = VirtioGpuPci::new(hal.memory().clone(), config);
    let layout = VirtioPciLayout::discover(&dev.config_space(), GPU_DEVICE_CFG_LEN).unwrap();
    let transport = VirtioPciTransport::new(layout, dev.transport_windows(&layout).unwrap());
    Rig {
        hal,
        dev,
        transport,
    }
}

const DRIVER: BringUpConfig = BringUpConfig {
    wanted: Features::GPU_DRIVER,
    max_ring: [256, 256],
    vectors: Vectors::shared(0),
};

fn start(rig: &mut Rig, config: &BringUpConfig) -> Result<Started<GuestMemoryHal>, Error> {
    bring_up(&rig.hal, &mut rig.transport, config)
}

fn ring_state(rig: &Rig, q: u16) -> (u16, u64, bool) {
    rig.dev
        .with_queue(q, |queue| (queue.size(), queue.desc_table(), queue.ready()))
        .unwrap()
}

#[test]
fn driver_layout_reaches_driver_ok_with_one_shared_vector() {
    let mut rig = rig(ModelConfig {
        num_scanouts: 3,
        ..ModelConfig::default()
    });
    let started = start(&mut rig, &DRIVER).unwrap();
    assert_eq!(started.num_scanouts, 3);
    // QEMU's default device has no blob resources; everything else the driver asks for.
    assert_eq!(
        started.features,
        Features::GPU_DRIVER.difference(Features::GPU_RESOURCE_BLOB)
    );
    assert!(DeviceStatus::from_bits_truncate(rig.dev.status()).contains(DeviceStatus::DRIVER_OK));
    // The device's maxima (64, 16) bound the driver's 256.
    assert_eq!(ring_state(&rig, 0).0, 64);
    assert_eq!(ring_state(&rig, 1).0, 16);
    assert_eq!(rig.dev.queue_msix_vector(0), Some(0));
    assert_eq!(rig.dev.queue_msix_vector(1), Some(0));
    assert_eq!(rig.dev.config_msix_vector(), 0);
    assert!(started.config_vector_accepted);
    assert!(started.queue_info.iter().all(|q| q.vector_accepted));
    assert_eq!(
        started.queue_info.map(|q| q.notify_offset),
        QUEUES.map(|q| rig.transport.queue_notify_offset(q).unwrap())
    );
}

#[test]
fn per_source_vectors_and_rings_rounded_down_to_a_power_of_two() {
    let mut rig = rig(ModelConfig::default());
    let config = BringUpConfig {
        max_ring: [48, 16],
        vectors: Vectors::per_source(Some(3)),
        ..DRIVER
    };
    start(&mut rig, &config).unwrap();
    assert_eq!(ring_state(&rig, 0).0, 32);
    assert_eq!(rig.dev.queue_msix_vector(0), Some(1));
    assert_eq!(rig.dev.queue_msix_vector(1), Some(2));
    assert_eq!(rig.dev.config_msix_vector(), 0);
}

#[test]
fn refused_vectors_are_reported_not_fatal() {
    let mut rig = rig(ModelConfig {
        msix_table_size: 1,
        ..ModelConfig::default()
    });
    let config = BringUpConfig {
        vectors: Vectors {
            config: 4,
            queues: [0, 7],
        },
        ..DRIVER
    };
    let started = start(&mut rig, &config).unwrap();
    assert!(started.queue_info[0].vector_accepted);
    assert!(!started.queue_info[1].vector_accepted);
    assert!(!started.config_vector_accepted);
    assert_eq!(rig.dev.queue_msix_vector(1), Some(NO_VECTOR));
}

#[test]
fn bad_scanout_count_fails_before_any_ring_exists() {
    for n in [0, 17, u32::MAX] {
        let mut rig = rig(ModelConfig {
            num_scanouts: n,
            ..ModelConfig::default()
        });
        assert_eq!(
            start(&mut rig, &DRIVER).err(),
            Some(Error::Malformed("num_scanouts"))
        );
        assert_eq!(rig.dev.status(), 0, "left reset");
        assert_eq!(rig.hal.allocated_bytes(), 0, "no ring was allocated");
        assert!(!ring_state(&rig, 0).2, "no queue enabled");
    }
}

#[test]
fn failed_queue_setup_resets_then_frees_the_rings() {
    let mut rig = rig(ModelConfig {
        queue_sizes: vec![64, 0],
        ..ModelConfig::default()
    });
    assert_eq!(
        start(&mut rig, &DRIVER).err(),
        Some(Error::QueueUnavailable(1))
    );
    assert_eq!(rig.dev.status(), 0, "device reset");
    assert!(
        !ring_state(&rig, 0).2,
        "control queue forgotten by the device"
    );
    assert_eq!(rig.hal.allocated_bytes(), 0, "rings freed after the reset");
}

#[test]
fn rings_a_device_may_still_read_are_leaked_when_its_reset_is_not_confirmed() {
    let mut rig = rig(ModelConfig {
        queue_sizes: vec![64, 0],
        ..ModelConfig::default()
    });
    rig.dev.set_hang_on_queue_enable(true);
    assert_eq!(
        start(&mut rig, &DRIVER).err(),
        Some(Error::QueueUnavailable(1))
    );
    assert!(
        ring_state(&rig, 0).2,
        "the hung device still has the control ring"
    );
    assert!(rig.hal.allocated_bytes() > 0, "so its memory was not freed");
    assert!(DeviceStatus::from_bits_truncate(rig.dev.status()).contains(DeviceStatus::FAILED));
}

#[test]
fn restart_programs_the_kept_rings_again() {
    let mut rig = rig(ModelConfig::default());
    let started = start(&mut rig, &DRIVER).unwrap();
    let rings = started
        .queues
        .each_ref()
        .map(|q| RingAddresses::of(q.queue()));
    let before = [ring_state(&rig, 0), ring_state(&rig, 1)];
    rig.transport.reset().unwrap();
    assert!(!ring_state(&rig, 0).2);
    let restarted = restart(&mut rig.transport, started.features, rings, DRIVER.vectors).unwrap();
    assert_eq!([ring_state(&rig, 0), ring_state(&rig, 1)], before);
    assert!(DeviceStatus::from_bits_truncate(rig.dev.status()).contains(DeviceStatus::DRIVER_OK));
    assert_eq!(restarted.queue_info, started.queue_info);
    assert_eq!(rig.dev.queue_msix_vector(1), Some(0));
}

#[test]
fn restart_refuses_a_device_that_changed_its_features() {
    let mut rig = rig(ModelConfig::default());
    let started = start(&mut rig, &DRIVER).unwrap();
    let rings = started
        .queues
        .each_ref()
        .map(|q| RingAddresses::of(q.queue()));
    rig.transport.reset().unwrap();
    // The device now offers less than before (no EDID).
    let fewer = started.features - Features::GPU_EDID;
    rig.dev.set_device_features(fewer.bits());
    assert_eq!(
        restart(&mut rig.transport, started.features, rings, DRIVER.vectors).err(),
        Some(Error::FeaturesRejected)
    );
    assert!(DeviceStatus::from_bits_truncate(rig.dev.status()).contains(DeviceStatus::FAILED));
    assert!(
        !ring_state(&rig, 0).2,
        "no ring programmed into a changed device"
    );
}

/// Rule: the driver hands the device guest-physical addresses, right only without
/// VIRTIO_F_ACCESS_PLATFORM. A device that offers the bit but works without it is driven as
/// usual, and the bit is not accepted even when a caller asks for it.
#[test]
fn access_platform_is_never_negotiated() {
    let mut rig = rig(ModelConfig {
        device_features: Features::GPU_DRIVER.union(Features::ACCESS_PLATFORM).bits(),
        ..ModelConfig::default()
    });
    let greedy = BringUpConfig {
        wanted: Features::GPU_DRIVER.union(Features::ACCESS_PLATFORM),
        ..DRIVER
    };
    let started = start(&mut rig, &greedy).unwrap();
    assert_eq!(started.features, Features::GPU_DRIVER);
    assert_eq!(
        rig.dev.driver_features() & Features::ACCESS_PLATFORM.bits(),
        0,
        "ACCESS_PLATFORM written to the device"
    );
    assert!(DeviceStatus::from_bits_truncate(rig.dev.status()).contains(DeviceStatus::DRIVER_OK));
}

/// A device that insists on ACCESS_PLATFORM (QEMU's iommu_platform=on) refuses FEATURES_OK:
/// the bring-up names the reason, resets the device, and no ring exists or leaks.
#[test]
fn a_device_that_requires_access_platform_is_refused_and_reset() {
    let mut rig = rig(ModelConfig {
        require_access_platform: true,
        ..ModelConfig::default()
    });
    assert_eq!(
        start(&mut rig, &DRIVER).err(),
        Some(Error::AccessPlatformRequired)
    );
    assert_eq!(rig.dev.status(), 0, "the device is left reset");
    assert_eq!(
        rig.hal.allocated_bytes(),
        0,
        "no ring memory allocated or kept"
    );
    assert!(!ring_state(&rig, 0).2 && !ring_state(&rig, 1).2);

    // The same device without the requirement comes up (the refusal was about that bit).
    rig.dev.set_require_access_platform(false);
    assert!(start(&mut rig, &DRIVER).is_ok());
}

/// The transport alone: FEATURES_OK refused by a device that offered ACCESS_PLATFORM is
/// reported as that, with FAILED set, and never as a generic feature rejection.
#[test]
fn transport_names_access_platform_as_the_reason() {
    let mut rig = rig(ModelConfig {
        require_access_platform: true,
        ..ModelConfig::default()
    });
    assert_eq!(
        rig.transport.init(Features::GPU_DRIVER),
        Err(Error::AccessPlatformRequired)
    );
    assert!(DeviceStatus::from_bits_truncate(rig.dev.status()).contains(DeviceStatus::FAILED));
    assert_eq!(
        rig.dev.driver_features() & Features::ACCESS_PLATFORM.bits(),
        0
    );
}
