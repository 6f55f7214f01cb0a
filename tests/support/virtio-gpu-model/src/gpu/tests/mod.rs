//! Tests of the command processor through real split virtqueues in guest memory: a small
//! driver side written here lays out descriptor tables, available and used rings by hand
//! (including requests split over descriptors and indirect tables), and virtio-queue's
//! `Queue` is the device side, as the PCI shell will use it.

mod commands;
mod faults;
mod queueing;
mod render;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use viogpu_common::protocol::{
    CtrlHeader, Format, MemEntry, Rect, ResourceAttachBacking, ResourceCreate2d, ResponseType,
    SetScanout, TransferToHost2d, CONTROL_QUEUE, CURSOR_QUEUE,
};

use super::{GpuBackend, GpuConfig};

const MEM_SIZE: usize = 64 << 20;
const QUEUE_SIZE: u16 = 64;
/// Where the two rings live; buffers are allocated above `HEAP_START`.
const RING_BASE: [u64; 2] = [0x0, 0x2000];
const HEAP_START: u64 = 0x10000;

const VIRTQ_DESC_F_NEXT: u16 = 1;
const VIRTQ_DESC_F_WRITE: u16 = 2;
const VIRTQ_DESC_F_INDIRECT: u16 = 4;

/// Byte written into response buffers before submission, to see what the device wrote.
const POISON: u8 = 0xee;

/// The driver's view of one split ring.
struct DriverRing {
    desc: u64,
    avail: u64,
    used: u64,
    next_desc: u16,
    avail_idx: u16,
    used_seen: u16,
}

impl DriverRing {
    fn new(base: u64) -> Self {
        Self {
            desc: base,
            avail: base + 16 * u64::from(QUEUE_SIZE),
            used: base + 0x1000,
            next_desc: 0,
            avail_idx: 0,
            used_seen: 0,
        }
    }

    fn device_queue(&self) -> Queue {
        let mut q = Queue::new(QUEUE_SIZE).unwrap();
        q.set_size(QUEUE_SIZE);
        q.set_desc_table_address(Some(self.desc as u32), Some((self.desc >> 32) as u32));
        q.set_avail_ring_address(Some(self.avail as u32), Some((self.avail >> 32) as u32));
        q.set_used_ring_address(Some(self.used as u32), Some((self.used >> 32) as u32));
        q.set_ready(true);
        q
    }
}

/// One buffer of a request: bytes the device reads, or room the device writes.
#[derive(Clone, Debug)]
enum Seg {
    Out(Vec<u8>),
    In(u32),
}

/// A submitted request: its head index and where its writable buffers are.
#[derive(Clone, Debug)]
struct Submitted {
    head: u16,
    ins: Vec<(u64, u32)>,
}

/// A used-ring element as the device wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Used {
    id: u32,
    len: u32,
}

/// The device under test, its guest memory and queues, and a driver side.
struct Harness {
    mem: GuestMemoryMmap<()>,
    gpu: GpuBackend,
    queues: [Queue; 2],
    rings: [DriverRing; 2],
    heap: u64,
}

impl Harness {
    fn new(config: GpuConfig) -> Self {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).unwrap();
        let rings = [DriverRing::new(RING_BASE[0]), DriverRing::new(RING_BASE[1])];
        let queues = [rings[0].device_queue(), rings[1].device_queue()];
        Self {
            mem,
            gpu: GpuBackend::new(config),
            queues,
            rings,
            heap: HEAP_START,
        }
    }

    fn default() -> Self {
        Self::new(GpuConfig::default())
    }

    /// Guest memory for `len` bytes, 16-byte aligned, never reused.
    fn alloc(&mut self, len: u64) -> u64 {
        let addr = self.heap;
        self.heap = (self.heap + len.max(1) + 15) & !15;
        assert!(self.heap <= MEM_SIZE as u64, "test heap exhausted");
        addr
    }

    fn write(&self, addr: u64, bytes: &[u8]) {
        self.mem.write_slice(bytes, GuestAddress(addr)).unwrap();
    }

    fn read(&self, addr: u64, len: u32) -> Vec<u8> {
        let mut buf = vec![0; len as usize];
        self.mem.read_slice(&mut buf, GuestAddress(addr)).unwrap();
        buf
    }

    fn put_desc(&self, table: u64, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..16].copy_from_slice(&next.to_le_bytes());
        self.write(table + 16 * u64::from(index), &raw);
    }

    /// Places `segs` in guest memory, chains them (directly in the ring, or through one
    /// indirect table) and makes the chain available on queue `q`. Does not notify.
    fn submit(&mut self, q: u16, segs: &[Seg], indirect: bool) -> Submitted {
        let mut bufs = Vec::new();
        let mut ins = Vec::new();
        for seg in segs {
            match seg {
                Seg::Out(bytes) => {
                    let addr = self.alloc(bytes.len() as u64);
                    self.write(addr, bytes);
                    bufs.push((addr, bytes.len() as u32, 0));
                }
                Seg::In(len) => {
                    let addr = self.alloc(u64::from(*len));
                    self.write(addr, &vec![POISON; *len as usize]);
                    bufs.push((addr, *len, VIRTQ_DESC_F_WRITE));
                    ins.push((addr, *len));
                }
            }
        }
        let ring_desc = self.rings[q as usize].desc;
        let head;
        if indirect {
            let table = self.alloc(16 * bufs.len() as u64);
            for (i, &(addr, len, flags)) in bufs.iter().enumerate() {
                let last = i + 1 == bufs.len();
                let flags = if last {
                    flags
                } else {
                    flags | VIRTQ_DESC_F_NEXT
                };
                self.put_desc(table, i as u16, addr, len, flags, i as u16 + 1);
            }
            head = self.take_desc(q, 1)[0];
            let table_len = 16 * bufs.len() as u32;
            self.put_desc(ring_desc, head, table, table_len, VIRTQ_DESC_F_INDIRECT, 0);
        } else {
            let indices = self.take_desc(q, bufs.len());
            for (i, &(addr, len, flags)) in bufs.iter().enumerate() {
                let next = indices.get(i + 1).copied();
                let flags = if next.is_some() {
                    flags | VIRTQ_DESC_F_NEXT
                } else {
                    flags
                };
                self.put_desc(ring_desc, indices[i], addr, len, flags, next.unwrap_or(0));
            }
            head = indices[0];
        }
        let ring = &mut self.rings[q as usize];
        let slot = ring.avail + 4 + 2 * u64::from(ring.avail_idx % QUEUE_SIZE);
        ring.avail_idx = ring.avail_idx.wrapping_add(1);
        let (avail, idx) = (ring.avail, ring.avail_idx);
        self.write(slot, &head.to_le_bytes());
        self.write(avail + 2, &idx.to_le_bytes());
        Submitted { head, ins }
    }

    /// `n` descriptor indices, round robin (tests never have a full ring in flight).
    fn take_desc(&mut self, q: u16, n: usize) -> Vec<u16> {
        let ring = &mut self.rings[q as usize];
        (0..n)
            .map(|_| {
                let i = ring.next_desc;
                ring.next_desc = (ring.next_desc + 1) % QUEUE_SIZE;
                i
            })
            .collect()
    }

    /// The device's notification handler for queue `q`.
    fn process(&mut self, q: u16) -> bool {
        self.gpu
            .process_queue(q, &mut self.queues[q as usize], &self.mem)
    }

    fn release(&mut self, q: u16) -> bool {
        self.gpu
            .release_held(q, &mut self.queues[q as usize], &self.mem)
    }

    /// Used elements added since the last call.
    fn take_used(&mut self, q: u16) -> Vec<Used> {
        let ring = &self.rings[q as usize];
        let mut idx = [0u8; 2];
        self.mem
            .read_slice(&mut idx, GuestAddress(ring.used + 2))
            .unwrap();
        let idx = u16::from_le_bytes(idx);
        let mut out = Vec::new();
        let mut seen = ring.used_seen;
        while seen != idx {
            let at = ring.used + 4 + 8 * u64::from(seen % QUEUE_SIZE);
            let raw = self.read(at, 8);
            out.push(Used {
                id: u32::from_le_bytes(raw[..4].try_into().unwrap()),
                len: u32::from_le_bytes(raw[4..].try_into().unwrap()),
            });
            seen = seen.wrapping_add(1);
        }
        self.rings[q as usize].used_seen = idx;
        out
    }

    /// The bytes the device wrote into a request's writable buffers, cut to `len`.
    fn response_of(&self, sub: &Submitted, len: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for &(addr, cap) in &sub.ins {
            out.extend(self.read(addr, cap));
        }
        out.truncate(len as usize);
        out
    }

    /// Sends `segs` on the control queue, runs the device, and returns the response bytes
    /// (checking the request came back exactly once with its own head).
    fn roundtrip(&mut self, segs: &[Seg], indirect: bool) -> Vec<u8> {
        let sub = self.submit(CONTROL_QUEUE, segs, indirect);
        assert!(self.process(CONTROL_QUEUE), "a completion must interrupt");
        let used = self.take_used(CONTROL_QUEUE);
        assert_eq!(used.len(), 1, "exactly one completion");
        assert_eq!(used[0].id, u32::from(sub.head));
        self.response_of(&sub, used[0].len)
    }

    /// Sends `req` (plus `extra` bytes) with room for `resp_len` bytes of response.
    fn command_with<T: IntoBytes + Immutable>(
        &mut self,
        req: &T,
        extra: &[u8],
        resp_len: u32,
    ) -> Vec<u8> {
        let mut bytes = req.as_bytes().to_vec();
        bytes.extend_from_slice(extra);
        self.roundtrip(&[Seg::Out(bytes), Seg::In(resp_len)], false)
    }

    /// Sends a command that answers with a bare header and returns its type.
    fn command<T: IntoBytes + Immutable>(&mut self, req: &T) -> ResponseType {
        resp_type(&self.command_with(req, &[], 24))
    }

    /// Sends a cursor-queue request and checks it completes with length 0.
    fn cursor_command<T: IntoBytes + Immutable>(&mut self, req: &T) {
        let sub = self.submit(
            CURSOR_QUEUE,
            &[Seg::Out(req.as_bytes().to_vec()), Seg::In(24)],
            false,
        );
        assert!(self.process(CURSOR_QUEUE));
        assert_eq!(
            self.take_used(CURSOR_QUEUE),
            vec![Used {
                id: u32::from(sub.head),
                len: 0
            }]
        );
    }

    /// Creates a B8G8R8X8 resource, asserting success.
    fn create(&mut self, id: u32, width: u32, height: u32) {
        let req = ResourceCreate2d::new(id, Format::B8G8R8X8_UNORM, width, height);
        assert_eq!(self.command(&req), ResponseType::OK_NODATA);
    }

    /// Attaches `entries` as backing and returns the response type.
    fn attach(&mut self, id: u32, entries: &[MemEntry]) -> ResponseType {
        let req = ResourceAttachBacking::new(id, entries.len() as u32);
        resp_type(&self.command_with(&req, entries.as_bytes(), 24))
    }

    /// Allocates one contiguous backing of `len` bytes for `id`, attaches it, returns it.
    fn attach_new(&mut self, id: u32, len: u64) -> u64 {
        let addr = self.alloc(len);
        assert_eq!(
            self.attach(id, &[MemEntry::new(addr, len as u32)]),
            ResponseType::OK_NODATA
        );
        addr
    }

    /// Creates a `width` x `height` resource with backing, shown on `scanout` whole.
    fn framebuffer(&mut self, scanout: u32, id: u32, width: u32, height: u32) -> u64 {
        self.create(id, width, height);
        let addr = self.attach_new(id, u64::from(width) * u64::from(height) * 4);
        let req = SetScanout::new(scanout, id, Rect::new(0, 0, width, height));
        assert_eq!(self.command(&req), ResponseType::OK_NODATA);
        addr
    }

    /// Transfers `r` from backing offset `offset`, asserting success.
    fn transfer(&mut self, id: u32, r: Rect, offset: u64) {
        let req = TransferToHost2d::new(id, r, offset);
        assert_eq!(self.command(&req), ResponseType::OK_NODATA);
    }
}

/// The response type of a response (panics on fewer than 24 bytes).
fn resp_type(bytes: &[u8]) -> ResponseType {
    CtrlHeader::read_from_prefix(bytes)
        .unwrap()
        .0
        .response_type()
}

/// Writes `pixel(x, y)` for every pixel of a `width` x `height` image with `stride` bytes
/// per row at `addr`.
fn paint(
    h: &Harness,
    addr: u64,
    width: u32,
    height: u32,
    stride: u32,
    pixel: impl Fn(u32, u32) -> u32,
) {
    for y in 0..height {
        let row: Vec<u8> = (0..width).flat_map(|x| pixel(x, y).to_le_bytes()).collect();
        h.write(addr + u64::from(y) * u64::from(stride), &row);
    }
}
