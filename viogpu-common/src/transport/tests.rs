//! Unit tests of the transport against a small fake register block and a fake config space.
#![allow(clippy::unwrap_used)]

use alloc::vec::Vec;
use core::cell::RefCell;

use spin::Mutex;

use super::*;
use crate::hal::RegisterAccess;
use crate::Error;

// ---------------------------------------------------------------- fake PCI config space

struct FakeConfig(RefCell<[u8; 256]>);

impl FakeConfig {
    fn blank() -> Self {
        let mut b = [0u8; 256];
        b[0..2].copy_from_slice(&VIRTIO_PCI_VENDOR_ID.to_le_bytes());
        b[2..4].copy_from_slice(&VIRTIO_GPU_PCI_DEVICE_ID.to_le_bytes());
        b[6] = 0x10; // status: capability list
        Self(RefCell::new(b))
    }

    /// QEMU-like: caps at 0x40.. chained, BAR 4 holding the structures, MSI-X first.
    fn qemu_like() -> Self {
        let c = Self::blank();
        c.put_msix(0x98, 3, 0x88);
        c.put_virtio(0x88, 0x78, 1, 4, 0x0000, 0x1000, None); // common
        c.put_virtio(0x78, 0x68, 3, 4, 0x1000, 0x1000, None); // isr
        c.put_virtio(0x68, 0x54, 4, 4, 0x2000, 0x1000, None); // device
        c.put_virtio(0x54, 0x40, 2, 4, 0x3000, 0x1000, Some(4)); // notify
        c.put_virtio(0x40, 0x00, 5, 0, 0, 0, Some(0)); // pci cfg access
        c.set(0x34, 0x98);
        c
    }

    fn set(&self, off: usize, v: u8) {
        self.0.borrow_mut()[off] = v;
    }

    fn set32(&self, off: usize, v: u32) {
        self.0.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    #[allow(clippy::too_many_arguments)]
    fn put_virtio(
        &self,
        at: usize,
        next: u8,
        cfg_type: u8,
        bar: u8,
        offset: u32,
        len: u32,
        extra: Option<u32>,
    ) {
        self.set(at, 0x09);
        self.set(at + 1, next);
        self.set(at + 2, if extra.is_some() { 20 } else { 16 });
        self.set(at + 3, cfg_type);
        self.set(at + 4, bar);
        self.set32(at + 8, offset);
        self.set32(at + 12, len);
        if let Some(x) = extra {
            self.set32(at + 16, x);
        }
    }

    fn put_msix(&self, at: usize, table_size: u16, next: u8) {
        self.set(at, 0x11);
        self.set(at + 1, next);
        let control = table_size - 1;
        self.0.borrow_mut()[at + 2..at + 4].copy_from_slice(&control.to_le_bytes());
    }
}

impl PciConfigAccess for FakeConfig {
    fn read_u8(&self, off: u16) -> u8 {
        self.0.borrow()[usize::from(off)]
    }
    fn read_u16(&self, off: u16) -> u16 {
        let b = self.0.borrow();
        let o = usize::from(off);
        u16::from_le_bytes([b[o], b[o + 1]])
    }
    fn read_u32(&self, off: u16) -> u32 {
        let b = self.0.borrow();
        let o = usize::from(off);
        u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
    }
    fn write_u16(&self, _: u16, _: u16) {}
    fn write_u32(&self, _: u16, _: u32) {}
}

struct AllOnesConfig;

impl PciConfigAccess for AllOnesConfig {
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

fn layout() -> VirtioPciLayout {
    VirtioPciLayout::discover(&FakeConfig::qemu_like(), GPU_DEVICE_CFG_LEN).unwrap()
}

// ---------------------------------------------------------------- capability walk

#[test]
fn discover_finds_qemu_layout() {
    let l = layout();
    assert_eq!(
        l.common,
        Region {
            bar: 4,
            offset: 0,
            len: 0x1000
        }
    );
    assert_eq!(
        l.isr,
        Region {
            bar: 4,
            offset: 0x1000,
            len: 0x1000
        }
    );
    assert_eq!(
        l.device,
        Region {
            bar: 4,
            offset: 0x2000,
            len: 0x1000
        }
    );
    assert_eq!(
        l.notify,
        Region {
            bar: 4,
            offset: 0x3000,
            len: 0x1000
        }
    );
    assert_eq!(l.notify_off_multiplier, 4);
    assert_eq!(l.pci_cfg_cap, Some(0x40));
    assert_eq!(l.msix_table_size, Some(3));
    assert_eq!(l.check_bars(|bar| (bar == 4).then_some(0x4000)), Ok(()));
    assert_eq!(
        l.check_bars(|bar| (bar == 4).then_some(0x3fff)),
        Err(Error::BadCapability)
    );
}

#[test]
fn discover_rejects_all_ones_config_space() {
    assert_eq!(
        VirtioPciLayout::discover(&AllOnesConfig, GPU_DEVICE_CFG_LEN),
        Err(Error::BadCapability)
    );
}

#[test]
fn discover_rejects_missing_cap_list_bit() {
    let c = FakeConfig::qemu_like();
    c.set(6, 0);
    assert_eq!(VirtioPciLayout::discover(&c, 16), Err(Error::BadCapability));
}

#[test]
fn discover_rejects_looping_list() {
    let c = FakeConfig::qemu_like();
    c.set(0x55, 0x88); // notify -> common again
    assert_eq!(VirtioPciLayout::discover(&c, 16), Err(Error::BadCapability));
    let c = FakeConfig::qemu_like();
    c.set(0x41, 0x40); // self loop at the tail
    assert_eq!(VirtioPciLayout::discover(&c, 16), Err(Error::BadCapability));
}

#[test]
fn discover_rejects_pointer_into_header() {
    let c = FakeConfig::qemu_like();
    c.set(0x41, 0x10);
    assert_eq!(VirtioPciLayout::discover(&c, 16), Err(Error::BadCapability));
}

#[test]
fn discover_ignores_cap_with_reserved_bar() {
    let c = FakeConfig::qemu_like();
    c.set(0x88 + 4, 7); // common cfg in "BAR 7"
    assert_eq!(VirtioPciLayout::discover(&c, 16), Err(Error::BadCapability));

    // A later valid instance is used instead, as the spec asks.
    c.put_virtio(0xA0, 0x00, 1, 2, 0x400, 0x38, None);
    c.set(0x41, 0xA0);
    let l = VirtioPciLayout::discover(&c, 16).unwrap();
    assert_eq!(
        l.common,
        Region {
            bar: 2,
            offset: 0x400,
            len: 0x38
        }
    );
}

#[test]
fn discover_rejects_short_structures() {
    let c = FakeConfig::qemu_like();
    c.set32(0x88 + 12, 0x37); // common shorter than 0x38
    assert_eq!(VirtioPciLayout::discover(&c, 16), Err(Error::BadCapability));

    let c = FakeConfig::qemu_like();
    c.set32(0x68 + 12, 8); // device cfg shorter than the gpu config
    assert_eq!(VirtioPciLayout::discover(&c, 16), Err(Error::BadCapability));
    assert!(VirtioPciLayout::discover(&c, 8).is_ok());

    let c = FakeConfig::qemu_like();
    c.set(0x54 + 2, 16); // notify cap without room for the multiplier
    assert_eq!(VirtioPciLayout::discover(&c, 16), Err(Error::BadCapability));
}

#[test]
fn discover_rejects_odd_notify_multiplier() {
    let c = FakeConfig::qemu_like();
    c.set32(0x54 + 16, 3);
    assert_eq!(VirtioPciLayout::discover(&c, 16), Err(Error::BadCapability));
    c.set32(0x54 + 16, 0);
    assert_eq!(
        VirtioPciLayout::discover(&c, 16)
            .unwrap()
            .notify_off_multiplier,
        0
    );
}

#[test]
fn discover_rejects_cap_running_off_config_space() {
    let c = FakeConfig::qemu_like();
    // Move the notify cap to 0xF0 where its 20 bytes do not fit.
    c.put_virtio(0xF0, 0x40, 2, 4, 0x3000, 0x1000, None);
    c.set(0xF2, 20);
    c.set(0x69, 0xF0);
    assert_eq!(VirtioPciLayout::discover(&c, 16), Err(Error::BadCapability));
}

#[test]
fn read_bar_decodes_kinds() {
    let c = FakeConfig::blank();
    c.set32(0x10, 0xC001); // I/O
    c.set32(0x14, 0xFE00_0000); // mem32
    c.set32(0x20, 0xFE80_000C); // mem64 prefetchable, low
    c.set32(0x24, 0x1); // high
    assert_eq!(
        read_bar(&c, 0).unwrap(),
        Bar {
            address: 0xC000,
            kind: BarKind::Io,
            prefetchable: false
        }
    );
    assert_eq!(read_bar(&c, 1).unwrap().kind, BarKind::Memory32);
    assert_eq!(
        read_bar(&c, 4).unwrap(),
        Bar {
            address: 0x1_FE80_0000,
            kind: BarKind::Memory64,
            prefetchable: true
        }
    );
    assert_eq!(read_bar(&c, 6), Err(Error::InvalidArgument));
    c.set32(0x24, 0x4); // 64-bit BAR in the last register
    assert_eq!(read_bar(&c, 5), Err(Error::BadCapability));
}

// ---------------------------------------------------------------- fake register block

#[derive(Default, Clone, Copy)]
struct FakeQueue {
    max: u16,
    size: u16,
    msix: u16,
    enable: u16,
    notify_off: u16,
    desc: u64,
    driver: u64,
    device: u64,
}

struct FakeState {
    device_features: u64,
    driver_features: u64,
    dfs: u32,
    drfs: u32,
    status: u8,
    reject_features_ok: bool,
    stuck_status: bool,
    generation: u8,
    unstable_generation: bool,
    config_msix: u16,
    msix_vectors: u16,
    queue_select: u16,
    queues: [FakeQueue; 2],
    isr: u8,
    events_read: u32,
    num_scanouts: u32,
    num_capsets: u32,
    notifies: Vec<(usize, u16)>,
}

struct FakeDevice(Mutex<FakeState>);

impl FakeDevice {
    fn new() -> Self {
        let q = |max, notify_off| FakeQueue {
            max,
            size: max,
            msix: NO_VECTOR,
            notify_off,
            ..Default::default()
        };
        Self(Mutex::new(FakeState {
            device_features: Features::GPU_DRIVER.bits() | Features::ACCESS_PLATFORM.bits(),
            driver_features: 0,
            dfs: 0,
            drfs: 0,
            status: 0,
            reject_features_ok: false,
            stuck_status: false,
            generation: 0,
            unstable_generation: false,
            config_msix: NO_VECTOR,
            msix_vectors: 3,
            queue_select: 0,
            queues: [q(64, 0), q(16, 1)],
            isr: 0,
            events_read: 0,
            num_scanouts: 1,
            num_capsets: 0,
            notifies: Vec::new(),
        }))
    }

    fn windows(&self) -> VirtioPciWindows<FakeWindow<'_>> {
        let w = |kind| FakeWindow { dev: self, kind };
        VirtioPciWindows {
            common: w(Kind::Common),
            notify: w(Kind::Notify),
            isr: w(Kind::Isr),
            device: w(Kind::Device),
        }
    }

    fn transport(&self) -> VirtioPciTransport<FakeWindow<'_>> {
        VirtioPciTransport::new(layout(), self.windows())
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Common,
    Notify,
    Isr,
    Device,
}

struct FakeWindow<'a> {
    dev: &'a FakeDevice,
    kind: Kind,
}

impl FakeWindow<'_> {
    fn read(&self, off: usize) -> u32 {
        let mut s = self.dev.0.lock();
        let sel = usize::from(s.queue_select);
        match self.kind {
            Kind::Common => {
                let q = s.queues.get(sel).copied().unwrap_or_default();
                match off {
                    0x00 => s.dfs,
                    0x04 => match s.dfs {
                        0 => s.device_features as u32,
                        1 => (s.device_features >> 32) as u32,
                        _ => 0,
                    },
                    0x10 => u32::from(s.config_msix),
                    0x12 => 2,
                    0x14 => u32::from(s.status),
                    0x15 => {
                        if s.unstable_generation {
                            s.generation = s.generation.wrapping_add(1);
                        }
                        u32::from(s.generation)
                    }
                    0x16 => u32::from(s.queue_select),
                    0x18 => u32::from(q.size),
                    0x1a => u32::from(q.msix),
                    0x1c => u32::from(q.enable),
                    0x1e => u32::from(q.notify_off),
                    _ => 0,
                }
            }
            Kind::Isr => core::mem::take(&mut s.isr).into(),
            Kind::Device => match off {
                0 => s.events_read,
                8 => s.num_scanouts,
                12 => s.num_capsets,
                _ => 0,
            },
            Kind::Notify => 0,
        }
    }

    fn write(&self, off: usize, v: u32) {
        let mut s = self.dev.0.lock();
        let s = &mut *s;
        let sel = usize::from(s.queue_select);
        match self.kind {
            Kind::Common => match off {
                0x00 => s.dfs = v,
                0x08 => s.drfs = v,
                0x0c => match s.drfs {
                    0 => s.driver_features = (s.driver_features & !0xFFFF_FFFF) | u64::from(v),
                    1 => {
                        s.driver_features = (s.driver_features & 0xFFFF_FFFF) | (u64::from(v) << 32)
                    }
                    _ => {}
                },
                0x10 => {
                    s.config_msix = if (v as u16) < s.msix_vectors {
                        v as u16
                    } else {
                        NO_VECTOR
                    }
                }
                0x14 => {
                    let mut v = v as u8;
                    if v == 0 {
                        if s.stuck_status {
                            return;
                        }
                        s.queues.iter_mut().for_each(|q| {
                            *q = FakeQueue {
                                max: q.max,
                                size: q.max,
                                msix: NO_VECTOR,
                                notify_off: q.notify_off,
                                ..Default::default()
                            }
                        });
                        s.driver_features = 0;
                        s.isr = 0;
                    }
                    if v & 8 != 0 && s.status & 8 == 0 {
                        let subset = s.driver_features & !s.device_features == 0;
                        if s.reject_features_ok || !subset {
                            v &= !8;
                        }
                    }
                    s.status = v;
                }
                0x16 => s.queue_select = v as u16,
                _ => {
                    let vectors = s.msix_vectors;
                    let Some(q) = s.queues.get_mut(sel) else {
                        return;
                    };
                    let set_half = |field: &mut u64, high: bool| {
                        if high {
                            *field = (*field & 0xFFFF_FFFF) | (u64::from(v) << 32);
                        } else {
                            *field = (*field & !0xFFFF_FFFF) | u64::from(v);
                        }
                    };
                    match off {
                        0x18 => q.size = v as u16,
                        0x1a => {
                            q.msix = if (v as u16) < vectors {
                                v as u16
                            } else {
                                NO_VECTOR
                            }
                        }
                        0x1c => q.enable = v as u16,
                        0x20 | 0x24 => set_half(&mut q.desc, off == 0x24),
                        0x28 | 0x2c => set_half(&mut q.driver, off == 0x2c),
                        0x30 | 0x34 => set_half(&mut q.device, off == 0x34),
                        _ => {}
                    }
                }
            },
            Kind::Notify => s.notifies.push((off, v as u16)),
            Kind::Device => {
                if off == 4 {
                    s.events_read &= !v;
                }
            }
            Kind::Isr => {}
        }
    }
}

impl RegisterAccess for FakeWindow<'_> {
    fn read_u8(&self, off: usize) -> u8 {
        self.read(off) as u8
    }
    fn read_u16(&self, off: usize) -> u16 {
        self.read(off) as u16
    }
    fn read_u32(&self, off: usize) -> u32 {
        self.read(off)
    }
    fn write_u8(&self, off: usize, v: u8) {
        self.write(off, v.into())
    }
    fn write_u16(&self, off: usize, v: u16) {
        self.write(off, v.into())
    }
    fn write_u32(&self, off: usize, v: u32) {
        self.write(off, v)
    }
}

struct AllOnesRegs;

impl RegisterAccess for AllOnesRegs {
    fn read_u8(&self, _: usize) -> u8 {
        0xFF
    }
    fn read_u16(&self, _: usize) -> u16 {
        0xFFFF
    }
    fn read_u32(&self, _: usize) -> u32 {
        u32::MAX
    }
    fn write_u8(&self, _: usize, _: u8) {}
    fn write_u16(&self, _: usize, _: u16) {}
    fn write_u32(&self, _: usize, _: u32) {}
}

fn controlq(size: u16) -> QueueConfig {
    QueueConfig {
        size,
        desc: 0x1_2345_6000,
        driver: 0x1_2345_7000,
        device: 0x1_2345_8000,
        msix_vector: 1,
    }
}

// ---------------------------------------------------------------- handshake

#[test]
fn init_negotiates_the_common_subset() {
    let dev = FakeDevice::new();
    let mut t = dev.transport();
    let wanted = Features::GPU_DRIVER | Features::GPU_VIRGL;
    let got = t.init(wanted).unwrap();
    assert_eq!(got, Features::GPU_DRIVER);
    assert_eq!(t.features(), Features::GPU_DRIVER);
    let s = dev.0.lock();
    assert_eq!(s.driver_features, Features::GPU_DRIVER.bits());
    assert_eq!(s.status, 0b1011); // ACKNOWLEDGE | DRIVER | FEATURES_OK
}

#[test]
fn driver_ok_after_queues() {
    let dev = FakeDevice::new();
    let mut t = dev.transport();
    assert_eq!(t.driver_ok(), Err(Error::InvalidArgument));
    t.init(Features::GPU_DRIVER).unwrap();
    t.driver_ok().unwrap();
    assert_eq!(dev.0.lock().status, 0b1111);
    assert!(!t.needs_reset());
    assert_eq!(t.setup_queue(0, &controlq(64)), Err(Error::InvalidArgument));
}

#[test]
fn negotiate_requires_version_1() {
    let dev = FakeDevice::new();
    dev.0.lock().device_features = Features::GPU_EDID.bits();
    let mut t = dev.transport();
    assert_eq!(t.init(Features::GPU_DRIVER), Err(Error::FeaturesRejected));
    assert_eq!(dev.0.lock().status & 0x80, 0x80, "FAILED is set");
    assert_eq!(dev.0.lock().status & 0x08, 0, "FEATURES_OK never written");
}

#[test]
fn device_refusing_features_ok_is_reported() {
    let dev = FakeDevice::new();
    dev.0.lock().reject_features_ok = true;
    // A device that does not offer ACCESS_PLATFORM: a plain refusal.
    dev.0.lock().device_features = Features::GPU_DRIVER.bits();
    let mut t = dev.transport();
    assert_eq!(t.init(Features::GPU_DRIVER), Err(Error::FeaturesRejected));
    assert_eq!(dev.0.lock().status, 0x80 | 0x03);
    assert_eq!(t.features(), Features::empty());
    // One that offers it (never accepted): the refusal is put down to that.
    dev.0.lock().device_features = Features::GPU_DRIVER.union(Features::ACCESS_PLATFORM).bits();
    assert_eq!(
        t.init(Features::GPU_DRIVER),
        Err(Error::AccessPlatformRequired)
    );
    assert_eq!(
        dev.0.lock().driver_features & Features::ACCESS_PLATFORM.bits(),
        0
    );
}

#[test]
fn negotiate_out_of_order_is_refused() {
    let dev = FakeDevice::new();
    let mut t = dev.transport();
    assert_eq!(
        t.negotiate(Features::GPU_DRIVER),
        Err(Error::InvalidArgument)
    );
}

#[test]
fn reset_that_never_completes_fails() {
    let dev = FakeDevice::new();
    let mut t = dev.transport();
    t.init(Features::GPU_DRIVER).unwrap();
    dev.0.lock().stuck_status = true;
    assert_eq!(t.reset(), Err(Error::DeviceNeedsReset));
}

#[test]
fn reset_forgets_queues() {
    let dev = FakeDevice::new();
    let mut t = dev.transport();
    t.init(Features::GPU_DRIVER).unwrap();
    t.setup_queue(0, &controlq(64)).unwrap();
    t.reset().unwrap();
    assert_eq!(dev.0.lock().queues[0].enable, 0);
    assert_eq!(t.notify(0), Err(Error::InvalidArgument));
}

#[test]
fn all_ones_device_gives_errors() {
    let windows = VirtioPciWindows {
        common: AllOnesRegs,
        notify: AllOnesRegs,
        isr: AllOnesRegs,
        device: AllOnesRegs,
    };
    let mut t = VirtioPciTransport::new(layout(), windows);
    assert_eq!(t.num_queues(), MAX_QUEUES);
    assert!(t.needs_reset());
    assert_eq!(t.reset(), Err(Error::DeviceNeedsReset));
    assert_eq!(
        t.queue_max_size(0),
        Err(Error::Malformed("queue size not a power of two"))
    );
    assert_eq!(t.num_scanouts(), Err(Error::Malformed("num_scanouts")));
    assert_eq!(t.num_capsets(), Err(Error::Malformed("num_capsets")));
    assert_eq!(t.read_isr(), IsrStatus::QUEUE | IsrStatus::CONFIG);
}

// ---------------------------------------------------------------- queues

#[test]
fn setup_queue_programs_the_device() {
    let dev = FakeDevice::new();
    let mut t = dev.transport();
    t.init(Features::GPU_DRIVER).unwrap();
    assert_eq!(t.queue_max_size(0), Ok(64));
    let setup = t.setup_queue(0, &controlq(32)).unwrap();
    assert_eq!(
        setup,
        QueueSetup {
            size: 32,
            notify_offset: 0,
            msix_vector: Some(1)
        }
    );

    let cursor = QueueConfig {
        msix_vector: 7,
        ..controlq(16)
    };
    let setup = t.setup_queue(1, &cursor).unwrap();
    assert_eq!(
        setup,
        QueueSetup {
            size: 16,
            notify_offset: 4,
            msix_vector: None
        }
    );

    let s = dev.0.lock();
    let q = s.queues[0];
    assert_eq!((q.size, q.enable, q.msix), (32, 1, 1));
    assert_eq!(
        (q.desc, q.driver, q.device),
        (0x1_2345_6000, 0x1_2345_7000, 0x1_2345_8000)
    );
    assert_eq!(
        (s.queues[1].size, s.queues[1].enable, s.queues[1].msix),
        (16, 1, NO_VECTOR)
    );
}

#[test]
fn setup_queue_checks_arguments() {
    let dev = FakeDevice::new();
    let mut t = dev.transport();
    t.init(Features::GPU_DRIVER).unwrap();
    assert_eq!(
        t.setup_queue(0, &controlq(128)),
        Err(Error::InvalidArgument)
    );
    assert_eq!(t.setup_queue(0, &controlq(48)), Err(Error::InvalidArgument));
    let unaligned = QueueConfig {
        desc: 0x1008,
        ..controlq(64)
    };
    assert_eq!(t.setup_queue(0, &unaligned), Err(Error::InvalidArgument));
    assert_eq!(t.setup_queue(2, &controlq(64)), Err(Error::InvalidArgument));
    assert_eq!(dev.0.lock().queues[0].enable, 0);
    t.setup_queue(0, &controlq(64)).unwrap();
    assert_eq!(t.setup_queue(0, &controlq(64)), Err(Error::InvalidArgument));
}

#[test]
fn garbage_queue_sizes_are_errors() {
    let dev = FakeDevice::new();
    let mut t = dev.transport();
    t.init(Features::GPU_DRIVER).unwrap();
    dev.0.lock().queues[0].size = 0;
    assert_eq!(t.queue_max_size(0), Err(Error::QueueUnavailable(0)));
    assert_eq!(
        t.setup_queue(0, &controlq(64)),
        Err(Error::QueueUnavailable(0))
    );
    dev.0.lock().queues[1].size = 48;
    assert_eq!(
        t.queue_max_size(1),
        Err(Error::Malformed("queue size not a power of two"))
    );
}

#[test]
fn notify_offset_outside_region_is_refused_before_any_write() {
    let dev = FakeDevice::new();
    let mut t = dev.transport();
    t.init(Features::GPU_DRIVER).unwrap();
    // 0x400 * 4 = 0x1000: the 2-byte doorbell would end past the 0x1000-byte region.
    dev.0.lock().queues[1].notify_off = 0x400;
    assert_eq!(t.setup_queue(1, &controlq(16)), Err(Error::BadCapability));
    let q = dev.0.lock().queues[1];
    assert_eq!((q.enable, q.desc), (0, 0));
    // The last in-bounds doorbell is fine.
    dev.0.lock().queues[1].notify_off = 0x3ff;
    assert_eq!(
        t.setup_queue(1, &controlq(16)).unwrap().notify_offset,
        0xffc
    );
}

#[test]
fn notify_writes_queue_index_at_its_doorbell() {
    let dev = FakeDevice::new();
    let mut t = dev.transport();
    t.init(Features::GPU_DRIVER).unwrap();
    assert_eq!(t.notify(0), Err(Error::InvalidArgument));
    t.setup_queue(0, &controlq(64)).unwrap();
    t.setup_queue(1, &controlq(16)).unwrap();
    t.driver_ok().unwrap();
    t.notify(1).unwrap();
    t.notify(0).unwrap();
    assert_eq!(dev.0.lock().notifies, [(4, 1), (0, 0)]);
    assert_eq!(t.queue_notify_offset(1), Some(4));
}

#[test]
fn config_vector_read_back() {
    let dev = FakeDevice::new();
    let mut t = dev.transport();
    assert_eq!(t.set_config_msix_vector(0), Some(0));
    assert_eq!(t.config_msix_vector(), 0);
    assert_eq!(t.set_config_msix_vector(3), None);
    assert_eq!(t.config_msix_vector(), NO_VECTOR);
}

// ---------------------------------------------------------------- device config and ISR

#[test]
fn config_change_is_read_and_cleared() {
    let dev = FakeDevice::new();
    let t = dev.transport();
    {
        let mut s = dev.0.lock();
        s.events_read = 1;
        s.isr = 2;
        s.num_scanouts = 2;
        s.num_capsets = 1;
    }
    assert_eq!(t.read_isr(), IsrStatus::CONFIG);
    assert_eq!(t.read_isr(), IsrStatus::empty(), "ISR is read-to-clear");
    assert_eq!(
        t.gpu_config().unwrap(),
        GpuConfig {
            events_read: GpuEvents::DISPLAY,
            num_scanouts: 2,
            num_capsets: 1
        }
    );
    let events = t.events_read().unwrap();
    t.events_clear(events).unwrap();
    assert_eq!(dev.0.lock().events_read, 0);
    assert_eq!(t.events_read(), Ok(GpuEvents::empty()));
}

#[test]
fn num_scanouts_is_bounded() {
    let dev = FakeDevice::new();
    let t = dev.transport();
    for (n, ok) in [(0, false), (1, true), (16, true), (17, false), (200, false)] {
        dev.0.lock().num_scanouts = n;
        assert_eq!(t.num_scanouts().is_ok(), ok, "num_scanouts {n}");
    }
    dev.0.lock().num_capsets = 65;
    assert_eq!(t.num_capsets(), Err(Error::Malformed("num_capsets")));
}

#[test]
fn unstable_generation_gives_up() {
    let dev = FakeDevice::new();
    let t = dev.transport();
    dev.0.lock().unstable_generation = true;
    assert_eq!(
        t.num_scanouts(),
        Err(Error::Malformed("config generation never settles"))
    );
}

#[test]
fn device_config_reads_are_bounded_by_the_region() {
    let dev = FakeDevice::new();
    let t = dev.transport();
    assert_eq!(
        t.read_device_config(|c| c.read_u32(0xffd)),
        Err(Error::OutOfBounds)
    );
    assert_eq!(t.read_device_config(|c| c.read_u32(0xffc)), Ok(0));
    assert_eq!(
        t.write_device_config_u32(usize::MAX - 1, 0),
        Err(Error::OutOfBounds)
    );
}

// ---------------------------------------------------------------- windows

#[test]
fn region_window_stays_inside() {
    let dev = FakeDevice::new();
    let bar = FakeWindow {
        dev: &dev,
        kind: Kind::Notify,
    };
    let w = RegionWindow::new(&bar, 0x10, 8).unwrap();
    w.write_u16(6, 0xAB);
    w.write_u16(7, 0xCD); // straddles the end: dropped
    w.write_u32(8, 1); // past the end: dropped
    assert_eq!(dev.0.lock().notifies, [(0x16, 0xAB)]);
    assert_eq!(w.read_u32(5), u32::MAX);
    assert_eq!(w.read_u8(usize::MAX), u8::MAX);
    assert!(RegionWindow::new(&bar, usize::MAX, 2).is_err());
    let r = Region {
        bar: 4,
        offset: 0x3000,
        len: 0x1000,
    };
    assert_eq!(RegionWindow::for_region(&bar, &r).unwrap().len(), 0x1000);
}
