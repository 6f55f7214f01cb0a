//! A bus observer for the virtio device: what the machine learns by watching the driver's
//! register writes to the common configuration and by reading the rings in DMA memory, without
//! touching any device or driver state.
//!
//! From the writes it knows the negotiated features, each queue's ring addresses, size and
//! MSI-X vector, and when the device is reset. From the rings it answers:
//! - how many requests the device still holds (`avail.idx - used.idx`), so the runner can wait
//!   until the device has given everything back;
//! - whether a used ring moved since the last look, which is when a real device would have
//!   signalled the queue's MSI-X message (the guest has no interrupt path to the runner);
//! - what the driver asked the device to transfer: each new `TRANSFER_TO_HOST_2D` on the
//!   control queue is decoded and its rectangle's bytes counted.
//!
//! Decoding reads the request through the descriptor the avail entry names, so it must happen
//! before the driver reuses that descriptor. The machine scans on every doorbell write and
//! before any interrupt is delivered; a batch that nobody waits for (a present) keeps its
//! descriptors until the DPC reclaims them, which is after such a scan, so its count is exact.
//! A waited-for request whose descriptor was reclaimed and reused before any scan is counted
//! as whatever now sits there (only the counts of presents are reported).

use viogpu_common::protocol::{CommandType, TransferToHost2d};
use viogpu_common::transport::NO_VECTOR;
use viogpu_common::virtqueue::layout::{DESC_F_INDIRECT, DESC_SIZE};
use zerocopy::FromBytes;

use crate::hosted::dma::DevMemHal;

/// Offsets in the virtio 1.0 common configuration (`virtio_pci_common_cfg`).
const DEVICE_FEATURE_SELECT: u32 = 0x00;
const DEVICE_FEATURE: u32 = 0x04;
const DRIVER_FEATURE_SELECT: u32 = 0x08;
const DRIVER_FEATURE: u32 = 0x0c;
const CONFIG_MSIX_VECTOR: u32 = 0x10;
const DEVICE_STATUS: u32 = 0x14;
const QUEUE_SELECT: u32 = 0x16;
const QUEUE_SIZE: u32 = 0x18;
const QUEUE_MSIX_VECTOR: u32 = 0x1a;
const QUEUE_ENABLE: u32 = 0x1c;
const QUEUE_DESC: u32 = 0x20;
const QUEUE_DRIVER: u32 = 0x28;
const QUEUE_DEVICE: u32 = 0x30;

/// Queues watched: virtio-gpu's control (0) and cursor (1) queues.
pub const WATCHED_QUEUES: usize = 2;
/// The control queue.
pub const CONTROL_QUEUE: usize = 0;
/// Bytes per pixel of every resource the driver creates.
const BYTES_PER_PIXEL: u64 = 4;

/// What the driver programmed for one queue.
#[derive(Debug, Default, Clone, Copy)]
struct QueueState {
    size: u16,
    vector: u16,
    desc: u64,
    avail: u64,
    used: u64,
    enabled: bool,
    /// `used.idx` at the last look.
    seen_used: u16,
    /// `avail.idx` up to which requests were decoded.
    scanned_avail: u16,
}

impl QueueState {
    fn reset() -> Self {
        Self {
            vector: NO_VECTOR,
            ..Self::default()
        }
    }
}

/// Transfers the driver asked for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TransferCount {
    /// `TRANSFER_TO_HOST_2D` requests.
    pub transfers: u64,
    /// Pixel bytes they cover.
    pub bytes: u64,
}

/// The observer's state (see the module documentation).
#[derive(Debug)]
pub struct VirtioMonitor {
    device_feature_select: u32,
    driver_feature_select: u32,
    offered: u64,
    negotiated: u64,
    config_vector: u16,
    queue_select: u16,
    queues: [QueueState; WATCHED_QUEUES],
    transfers: TransferCount,
    resets: u64,
}

impl Default for VirtioMonitor {
    fn default() -> Self {
        Self {
            device_feature_select: 0,
            driver_feature_select: 0,
            offered: 0,
            negotiated: 0,
            config_vector: NO_VECTOR,
            queue_select: 0,
            queues: [QueueState::reset(); WATCHED_QUEUES],
            transfers: TransferCount::default(),
            resets: 0,
        }
    }
}

/// Replaces the bytes `shift..shift + width` of a 64-bit register image.
fn merge(old: u64, shift: u32, width: u8, value: u32) -> u64 {
    let mask = match width {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => 0xFFFF_FFFF,
    };
    (old & !(mask << shift)) | ((u64::from(value) & mask) << shift)
}

impl VirtioMonitor {
    /// The feature bits the device offered, as the driver read them.
    pub fn offered_features(&self) -> u64 {
        self.offered
    }

    /// The feature bits the driver accepted.
    pub fn negotiated_features(&self) -> u64 {
        self.negotiated
    }

    /// The MSI-X vector of configuration changes (`NO_VECTOR` when none).
    pub fn config_vector(&self) -> u16 {
        self.config_vector
    }

    /// Device resets the driver made (writes of 0 to `device_status`).
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Transfers decoded so far.
    pub fn transfers(&self) -> TransferCount {
        self.transfers
    }

    /// The driver read `value` at `offset` of the common configuration.
    pub fn common_read(&mut self, offset: u32, width: u8, value: u32) {
        match offset {
            DEVICE_FEATURE if width == 4 => {
                let shift = match self.device_feature_select {
                    0 => 0,
                    1 => 32,
                    _ => return,
                };
                self.offered = merge(self.offered, shift, 4, value);
            }
            // A driver that keeps the device's (maximum) size never writes it: what it read
            // is the ring's size.
            QUEUE_SIZE => {
                if let Some(q) = self.queues.get_mut(usize::from(self.queue_select)) {
                    q.size = value as u16;
                }
            }
            _ => {}
        }
    }

    /// The driver wrote `value` at `offset` of the common configuration.
    pub fn common_write(&mut self, offset: u32, width: u8, value: u32) {
        let selected = usize::from(self.queue_select);
        match offset {
            DEVICE_FEATURE_SELECT => self.device_feature_select = value,
            DRIVER_FEATURE_SELECT => self.driver_feature_select = value,
            DRIVER_FEATURE => {
                let shift = match self.driver_feature_select {
                    0 => 0,
                    1 => 32,
                    _ => return,
                };
                self.negotiated = merge(self.negotiated, shift, width, value);
            }
            CONFIG_MSIX_VECTOR => self.config_vector = value as u16,
            DEVICE_STATUS if value & 0xFF == 0 => {
                // Reset: the device forgets queues and features.
                *self = Self {
                    offered: self.offered,
                    transfers: self.transfers,
                    resets: self.resets + 1,
                    ..Self::default()
                };
            }
            QUEUE_SELECT => self.queue_select = value as u16,
            _ => {
                let Some(q) = self.queues.get_mut(selected) else {
                    return;
                };
                match offset {
                    QUEUE_SIZE => q.size = value as u16,
                    QUEUE_MSIX_VECTOR => q.vector = value as u16,
                    QUEUE_ENABLE => {
                        q.enabled = value & 1 != 0;
                        q.seen_used = 0;
                        q.scanned_avail = 0;
                    }
                    o if (QUEUE_DESC..QUEUE_DESC + 8).contains(&o) => {
                        q.desc = merge(q.desc, (o - QUEUE_DESC) * 8, width, value);
                    }
                    o if (QUEUE_DRIVER..QUEUE_DRIVER + 8).contains(&o) => {
                        q.avail = merge(q.avail, (o - QUEUE_DRIVER) * 8, width, value);
                    }
                    o if (QUEUE_DEVICE..QUEUE_DEVICE + 8).contains(&o) => {
                        q.used = merge(q.used, (o - QUEUE_DEVICE) * 8, width, value);
                    }
                    _ => {}
                }
            }
        }
    }

    fn live(&self) -> impl Iterator<Item = (usize, &QueueState)> {
        self.queues
            .iter()
            .enumerate()
            .filter(|(_, q)| q.enabled && q.size != 0)
    }

    /// Requests the device holds, per watched queue (0 for a queue not set up).
    pub fn in_flight(&self, dma: &DevMemHal) -> [u16; WATCHED_QUEUES] {
        let mut busy = [0; WATCHED_QUEUES];
        for (i, q) in self.live() {
            let (Some(avail), Some(used)) = (dma.read_u16(q.avail + 2), dma.read_u16(q.used + 2))
            else {
                continue;
            };
            if let Some(slot) = busy.get_mut(i) {
                *slot = avail.wrapping_sub(used);
            }
        }
        busy
    }

    /// Requests the driver has published on `queue` so far (`avail.idx`, wrapping).
    pub fn published(&self, dma: &DevMemHal, queue: usize) -> u16 {
        self.queues
            .get(queue)
            .filter(|q| q.enabled)
            .and_then(|q| dma.read_u16(q.avail + 2))
            .unwrap_or(0)
    }

    /// The MSI-X vectors of the queues whose used ring moved since the last call.
    pub fn moved_queues(&mut self, dma: &DevMemHal) -> Vec<u16> {
        let mut vectors = Vec::new();
        for q in self.queues.iter_mut().filter(|q| q.enabled && q.size != 0) {
            let Some(used) = dma.read_u16(q.used + 2) else {
                continue;
            };
            if used != q.seen_used {
                q.seen_used = used;
                vectors.push(q.vector);
            }
        }
        vectors
    }

    /// Decodes the requests published on the control queue since the last scan.
    pub fn scan(&mut self, dma: &DevMemHal) {
        let Some(q) = self
            .queues
            .get(CONTROL_QUEUE)
            .copied()
            .filter(|q| q.enabled && q.size != 0)
        else {
            return;
        };
        let Some(avail_idx) = dma.read_u16(q.avail + 2) else {
            return;
        };
        let mut at = q.scanned_avail;
        // A ring never holds more than `size` new entries; anything else is not worth reading.
        if avail_idx.wrapping_sub(at) > q.size {
            at = avail_idx;
        }
        while at != avail_idx {
            let slot = u64::from(at % q.size);
            if let Some(head) = dma.read_u16(q.avail + 4 + 2 * slot) {
                if let Some(t) = transfer_of(dma, &q, head) {
                    self.transfers.transfers += 1;
                    self.transfers.bytes +=
                        u64::from(t.r.width) * u64::from(t.r.height) * BYTES_PER_PIXEL;
                }
            }
            at = at.wrapping_add(1);
        }
        if let Some(control) = self.queues.get_mut(CONTROL_QUEUE) {
            control.scanned_avail = avail_idx;
        }
    }
}

/// One split-ring descriptor.
struct Descriptor {
    addr: u64,
    len: u32,
    flags: u16,
}

fn descriptor(dma: &DevMemHal, table: u64, index: u16) -> Option<Descriptor> {
    let mut raw = [0u8; DESC_SIZE];
    dma.read_phys(table + u64::from(index) * DESC_SIZE as u64, &mut raw)
        .then(|| Descriptor {
            addr: u64::from_le_bytes([
                raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
            ]),
            len: u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]),
            flags: u16::from_le_bytes([raw[12], raw[13]]),
        })
}

/// The request behind descriptor `head`, if it is a `TRANSFER_TO_HOST_2D`.
fn transfer_of(dma: &DevMemHal, q: &QueueState, head: u16) -> Option<TransferToHost2d> {
    if head >= q.size {
        return None;
    }
    let mut first = descriptor(dma, q.desc, head)?;
    if first.flags & DESC_F_INDIRECT != 0 {
        first = descriptor(dma, first.addr, 0)?;
    }
    let len = std::mem::size_of::<TransferToHost2d>();
    if (first.len as usize) < len {
        return None;
    }
    let mut raw = vec![0u8; len];
    if !dma.read_phys(first.addr, &mut raw) {
        return None;
    }
    let request = TransferToHost2d::read_from_bytes(&raw).ok()?;
    (u32::from_le(request.hdr.ty) == CommandType::TRANSFER_TO_HOST_2D.0).then_some(request)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use viogpu_common::hal::{DmaBuffer, PAGE_SIZE};
    use viogpu_common::protocol::{CtrlHeader, Rect};
    use zerocopy::IntoBytes;

    const BASE: u64 = 0x3000_0000;
    const SIZE: u16 = 8;

    /// A control queue of `SIZE` entries in fake DMA memory, programmed as a driver does.
    struct Ring {
        hal: DevMemHal,
        desc: DmaBuffer<DevMemHal>,
        avail: DmaBuffer<DevMemHal>,
        used: DmaBuffer<DevMemHal>,
        monitor: VirtioMonitor,
    }

    impl Ring {
        fn new() -> Self {
            let len = 16 * PAGE_SIZE;
            let base = crate::hosted::bar::map_anonymous(len).unwrap();
            let hal = DevMemHal::from_mapping(base, BASE, len);
            let desc = DmaBuffer::new(&hal, PAGE_SIZE).unwrap();
            let avail = DmaBuffer::new(&hal, PAGE_SIZE).unwrap();
            let used = DmaBuffer::new(&hal, PAGE_SIZE).unwrap();
            let mut monitor = VirtioMonitor::default();
            monitor.common_write(QUEUE_SELECT, 2, 0);
            monitor.common_read(QUEUE_SIZE, 2, u32::from(SIZE));
            for (reg, addr) in [
                (QUEUE_DESC, desc.phys()),
                (QUEUE_DRIVER, avail.phys()),
                (QUEUE_DEVICE, used.phys()),
            ] {
                monitor.common_write(reg, 4, addr as u32);
                monitor.common_write(reg + 4, 4, (addr >> 32) as u32);
            }
            monitor.common_write(QUEUE_MSIX_VECTOR, 2, 0);
            monitor.common_write(QUEUE_ENABLE, 2, 1);
            Self {
                hal,
                desc,
                avail,
                used,
                monitor,
            }
        }

        fn set_desc(
            &mut self,
            table: Option<&mut DmaBuffer<DevMemHal>>,
            i: u16,
            d: (u64, u32, u16),
        ) {
            let table = table.unwrap_or(&mut self.desc);
            let mut raw = [0u8; DESC_SIZE];
            raw[0..8].copy_from_slice(&d.0.to_le_bytes());
            raw[8..12].copy_from_slice(&d.1.to_le_bytes());
            raw[12..14].copy_from_slice(&d.2.to_le_bytes());
            table.write_bytes(usize::from(i) * DESC_SIZE, &raw).unwrap();
        }

        /// Publishes descriptor `head` as the next avail entry.
        fn publish(&mut self, head: u16) {
            let idx = self.hal.read_u16(self.avail.phys() + 2).unwrap();
            let slot = 4 + 2 * usize::from(idx % SIZE);
            self.avail.write_bytes(slot, &head.to_le_bytes()).unwrap();
            self.avail
                .write_bytes(2, &idx.wrapping_add(1).to_le_bytes())
                .unwrap();
        }

        fn complete(&mut self, n: u16) {
            self.used.write_bytes(2, &n.to_le_bytes()).unwrap();
        }
    }

    fn request(hal: &DevMemHal, ty: CommandType, r: Rect) -> DmaBuffer<DevMemHal> {
        let mut buffer = DmaBuffer::new(hal, PAGE_SIZE).unwrap();
        let req = TransferToHost2d {
            hdr: CtrlHeader::command(ty),
            r,
            offset: 0,
            resource_id: 1,
            padding: 0,
        };
        buffer.write_bytes(0, req.as_bytes()).unwrap();
        buffer
    }

    #[test]
    fn transfers_are_decoded_direct_and_indirect_and_completions_seen_once() {
        let mut ring = Ring::new();
        let len = std::mem::size_of::<TransferToHost2d>() as u32;
        let a = request(
            &ring.hal,
            CommandType::TRANSFER_TO_HOST_2D,
            Rect::new(0, 0, 10, 20),
        );
        let b = request(
            &ring.hal,
            CommandType::RESOURCE_FLUSH,
            Rect::new(0, 0, 10, 20),
        );
        let c = request(
            &ring.hal,
            CommandType::TRANSFER_TO_HOST_2D,
            Rect::new(5, 5, 3, 7),
        );
        let mut table = DmaBuffer::new(&ring.hal, PAGE_SIZE).unwrap();
        ring.set_desc(None, 0, (a.phys(), len, 0));
        ring.set_desc(None, 1, (b.phys(), len, 0));
        ring.set_desc(Some(&mut table), 0, (c.phys(), len, 0));
        ring.set_desc(
            None,
            2,
            (table.phys(), 2 * DESC_SIZE as u32, DESC_F_INDIRECT),
        );
        for head in [0, 1, 2] {
            ring.publish(head);
        }
        assert_eq!(ring.monitor.in_flight(&ring.hal), [3, 0]);
        assert_eq!(ring.monitor.published(&ring.hal, CONTROL_QUEUE), 3);
        ring.monitor.scan(&ring.hal);
        ring.monitor.scan(&ring.hal);
        assert_eq!(
            ring.monitor.transfers(),
            TransferCount {
                transfers: 2,
                bytes: (10 * 20 + 3 * 7) * 4
            }
        );
        assert_eq!(ring.monitor.moved_queues(&ring.hal), Vec::<u16>::new());
        ring.complete(2);
        assert_eq!(ring.monitor.in_flight(&ring.hal), [1, 0]);
        assert_eq!(ring.monitor.moved_queues(&ring.hal), vec![0]);
        assert_eq!(ring.monitor.moved_queues(&ring.hal), Vec::<u16>::new());
        ring.complete(3);
        assert_eq!(ring.monitor.in_flight(&ring.hal), [0, 0]);
    }

    #[test]
    fn descriptors_outside_dma_memory_or_the_ring_are_not_decoded() {
        let mut ring = Ring::new();
        ring.set_desc(None, 0, (0x1000, 56, 0));
        ring.publish(0);
        ring.publish(SIZE);
        ring.monitor.scan(&ring.hal);
        assert_eq!(ring.monitor.transfers(), TransferCount::default());
    }

    #[test]
    fn writes_build_queue_addresses_features_and_reset_clears_them() {
        let mut m = VirtioMonitor::default();
        m.common_write(DEVICE_FEATURE_SELECT, 4, 1);
        m.common_read(DEVICE_FEATURE, 4, 0x1);
        m.common_write(DEVICE_FEATURE_SELECT, 4, 0);
        m.common_read(DEVICE_FEATURE, 4, 0x3000_0002);
        assert_eq!(m.offered_features(), 0x1_3000_0002);
        m.common_write(DRIVER_FEATURE_SELECT, 4, 1);
        m.common_write(DRIVER_FEATURE, 4, 0x1);
        m.common_write(DRIVER_FEATURE_SELECT, 4, 0);
        m.common_write(DRIVER_FEATURE, 4, 0x2000_0002);
        assert_eq!(m.negotiated_features(), 0x1_2000_0002);
        m.common_write(QUEUE_SELECT, 2, 0);
        m.common_read(QUEUE_SIZE, 2, 256);
        assert_eq!(m.queues[0].size, 256);
        m.common_write(QUEUE_SELECT, 2, 1);
        m.common_read(QUEUE_SIZE, 2, 256);
        m.common_write(QUEUE_SIZE, 2, 64);
        m.common_write(QUEUE_MSIX_VECTOR, 2, 0);
        m.common_write(QUEUE_DEVICE, 4, 0x3000_2000);
        m.common_write(QUEUE_DEVICE + 4, 4, 0x1);
        m.common_write(QUEUE_ENABLE, 2, 1);
        m.common_write(CONFIG_MSIX_VECTOR, 2, 0);
        let q = m.queues[1];
        assert_eq!(
            (q.size, q.vector, q.used, q.enabled),
            (64, 0, 0x1_3000_2000, true)
        );
        assert_eq!(m.config_vector(), 0);
        m.common_write(DEVICE_STATUS, 1, 0);
        assert_eq!(m.resets(), 1);
        assert!(!m.queues[1].enabled);
        assert_eq!(m.config_vector(), NO_VECTOR);
        assert_eq!(m.negotiated_features(), 0);
        assert_eq!(m.offered_features(), 0x1_3000_0002);
    }
}
