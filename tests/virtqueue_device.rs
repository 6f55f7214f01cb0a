//! The driver's split virtqueue against an independent device end: rust-vmm's `virtio-queue`
//! over `vm-memory` guest RAM. Covers request/response data on both ends, indirect chains,
//! event-index notification in both directions across the u16 wrap, out-of-order completion,
//! a full queue, reset, and a hostile device writing bad used-ring entries by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::sync::atomic::Ordering;

use viogpu_common::hal::DmaBuffer;
use viogpu_common::virtqueue::{QueueFeatures, Segment, SplitQueue, UsedElem};
use viogpu_common::Error;
use virtio_gpu_model::GuestMemoryHal;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Driver queue, device queue and the guest RAM they share.
struct Rig {
    hal: GuestMemoryHal,
    q: SplitQueue<GuestMemoryHal>,
    dev: Queue,
}

fn features(indirect: bool, event_idx: bool) -> QueueFeatures {
    QueueFeatures {
        indirect,
        event_idx,
    }
}

/// Programs a device queue the way a transport would after the driver set it up.
fn device_queue(q: &SplitQueue<GuestMemoryHal>, event_idx: bool, mem: &GuestMemoryMmap) -> Queue {
    let mut dev = Queue::new(q.size()).unwrap();
    dev.try_set_size(q.size()).unwrap();
    dev.try_set_desc_table_address(GuestAddress(q.desc_addr()))
        .unwrap();
    dev.try_set_avail_ring_address(GuestAddress(q.avail_addr()))
        .unwrap();
    dev.try_set_used_ring_address(GuestAddress(q.used_addr()))
        .unwrap();
    dev.set_event_idx(event_idx);
    dev.set_ready(true);
    assert!(dev.is_valid(mem));
    dev
}

impl Rig {
    fn new(size: u16, f: QueueFeatures) -> Self {
        // Not at 0, so a bus/CPU address mix-up cannot go unnoticed.
        let hal = GuestMemoryHal::new(0x4000_0000, 32 << 20).unwrap();
        let q = SplitQueue::new(&hal, size, f).unwrap();
        let dev = device_queue(&q, f.event_idx, hal.memory());
        Rig { hal, q, dev }
    }

    fn mem(&self) -> &GuestMemoryMmap {
        self.hal.memory()
    }

    fn buffer(&self, len: usize) -> DmaBuffer<GuestMemoryHal> {
        DmaBuffer::new(&self.hal, len).unwrap()
    }

    /// Device: serves the next available chain: reads all readable bytes, writes them back
    /// reversed into the writable part (as much as fits), returns (head, request bytes,
    /// bytes written). Does not add the used entry.
    fn serve(&mut self) -> Option<(u16, Vec<u8>, u32)> {
        let mem = self.hal.memory();
        let chain = self.dev.pop_descriptor_chain(mem)?;
        let head = chain.head_index();
        let mut request = Vec::new();
        chain
            .clone()
            .reader(mem)
            .unwrap()
            .read_to_end(&mut request)
            .unwrap();
        let mut writer = chain.writer(mem).unwrap();
        let n = writer.available_bytes().min(request.len());
        let reply: Vec<u8> = request.iter().rev().take(n).copied().collect();
        writer.write_all(&reply).unwrap();
        Some((head, request, n as u32))
    }

    fn complete(&mut self, head: u16, len: u32) {
        let mem = self.hal.memory();
        self.dev.add_used(mem, head, len).unwrap();
    }

    /// Hostile device: writes a used element and bumps used.idx by hand, keeping the
    /// `virtio-queue` end's own index in step.
    fn inject_used(&mut self, id: u32, len: u32) {
        let next = self.dev.next_used();
        let at = self.q.used_addr() + 4 + 8 * u64::from(next % self.q.size());
        self.mem().write_obj(id.to_le(), GuestAddress(at)).unwrap();
        self.mem()
            .write_obj(len.to_le(), GuestAddress(at + 4))
            .unwrap();
        self.set_used_idx(next.wrapping_add(1));
        self.dev.set_next_used(next.wrapping_add(1));
    }

    fn set_used_idx(&self, idx: u16) {
        self.mem()
            .store(
                idx.to_le(),
                GuestAddress(self.q.used_addr() + 2),
                Ordering::Release,
            )
            .unwrap();
    }

    fn avail_event(&self) -> u16 {
        let at = self.q.used_addr() + 4 + 8 * u64::from(self.q.size());
        u16::from_le(self.mem().read_obj(GuestAddress(at)).unwrap())
    }

    fn used_event(&self) -> u16 {
        let at = self.q.avail_addr() + 4 + 2 * u64::from(self.q.size());
        u16::from_le(self.mem().read_obj(GuestAddress(at)).unwrap())
    }
}

/// A request the driver posted, with the buffers it must keep until completion.
struct Request {
    id: u16,
    payload: Vec<u8>,
    req: DmaBuffer<GuestMemoryHal>,
    resp: DmaBuffer<GuestMemoryHal>,
    resp_len: u32,
}

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).wrapping_add(seed) as u8 ^ (seed >> 8) as u8)
        .collect()
}

/// Driver: posts `payload` as one readable segment with a `resp_len` writable segment.
fn post(rig: &mut Rig, payload: Vec<u8>, resp_len: u32) -> Request {
    let mut req = rig.buffer(payload.len());
    req.write_bytes(0, &payload).unwrap();
    let resp = rig.buffer(resp_len as usize);
    let id = rig
        .q
        .add(
            &[Segment {
                addr: req.phys(),
                len: payload.len() as u32,
            }],
            &[Segment {
                addr: resp.phys(),
                len: resp_len,
            }],
        )
        .unwrap();
    Request {
        id,
        payload,
        req,
        resp,
        resp_len,
    }
}

/// Driver: checks the device's reply in the response buffer.
fn check_reply(r: &Request, written: u32) {
    let n = (r.resp_len as usize).min(r.payload.len());
    assert_eq!(written as usize, n);
    let mut got = vec![0u8; n];
    r.resp.read_bytes(0, &mut got).unwrap();
    let expect: Vec<u8> = r.payload.iter().rev().take(n).copied().collect();
    assert_eq!(got, expect, "reply of request {}", r.id);
}

/// A full round trip that must succeed; used to show the queue still works.
fn round_trip(rig: &mut Rig, seed: u32) {
    let r = post(rig, pattern(seed, 300), 128);
    rig.q.publish();
    let (head, request, n) = rig.serve().unwrap();
    assert_eq!((head, &request), (r.id, &r.payload));
    rig.complete(head, n);
    let used = rig.q.pop_used().unwrap().unwrap();
    assert_eq!(used.id, r.id);
    check_reply(&r, used.written.unwrap());
    assert!(rig.q.pop_used().is_none());
    drop(r.req);
}

#[test]
fn request_and_response_bytes_on_both_ends() {
    let mut rig = Rig::new(64, features(false, false));
    let baseline = rig.hal.allocated_bytes();
    let r = post(&mut rig, pattern(7, 1000), 600);
    assert!(rig.q.publish(), "device did not suppress notifications");
    let (head, request, n) = rig.serve().unwrap();
    assert_eq!(head, r.id);
    assert_eq!(request, r.payload, "device read exactly the request bytes");
    rig.complete(head, n);
    assert!(rig.q.has_used());
    let used = rig.q.pop_used().unwrap().unwrap();
    assert_eq!(used.id, r.id);
    assert_eq!(used.written, Ok(600));
    check_reply(&r, 600);
    assert_eq!((rig.q.num_free(), rig.q.in_flight()), (64, 0));
    drop(r);
    assert_eq!(
        rig.hal.allocated_bytes(),
        baseline,
        "request buffers returned"
    );
    drop(rig.q);
    assert_eq!(rig.hal.allocated_bytes(), 0, "rings returned");
}

#[test]
fn indirect_chains_of_forty_segments() {
    let mut rig = Rig::new(64, features(true, false));
    // 20 readable then 20 writable segments of different lengths, scattered in one buffer.
    let mut data = rig.buffer(64 * 1024);
    let lens: Vec<u32> = (0..40).map(|i| 50 + 7 * i).collect();
    let segments: Vec<Segment> = lens
        .iter()
        .enumerate()
        .map(|(i, &len)| Segment {
            addr: data.phys() + 1024 * i as u64 + i as u64,
            len,
        })
        .collect();
    let mut payload = Vec::new();
    for (i, s) in segments[..20].iter().enumerate() {
        let bytes = pattern(i as u32, s.len as usize);
        data.write_bytes((s.addr - data.phys()) as usize, &bytes)
            .unwrap();
        payload.extend(bytes);
    }
    let writable_total: u32 = lens[20..].iter().sum();

    // Fill the whole ring with such requests: one descriptor each.
    let ids: Vec<u16> = (0..64)
        .map(|_| rig.q.add(&segments[..20], &segments[20..]).unwrap())
        .collect();
    assert_eq!(rig.q.num_free(), 0);
    assert_eq!(
        rig.q.add(&segments[..20], &segments[20..]),
        Err(Error::QueueFull)
    );
    rig.q.publish();

    let mem = rig.hal.memory();
    for &id in &ids {
        let chain = rig.dev.pop_descriptor_chain(mem).unwrap();
        assert_eq!(chain.head_index(), id);
        let seen: Vec<(u64, u32, bool)> = chain
            .clone()
            .map(|d| (d.addr().0, d.len(), d.is_write_only()))
            .collect();
        let expect: Vec<(u64, u32, bool)> = segments
            .iter()
            .enumerate()
            .map(|(i, s)| (s.addr, s.len, i >= 20))
            .collect();
        assert_eq!(seen, expect, "virtio-queue walked the indirect table");
        let mut request = Vec::new();
        chain
            .clone()
            .reader(mem)
            .unwrap()
            .read_to_end(&mut request)
            .unwrap();
        assert_eq!(request, payload);
        let mut writer = chain.writer(mem).unwrap();
        assert_eq!(writer.available_bytes() as u32, writable_total);
        if id == ids[0] {
            let reply = pattern(99, writable_total as usize);
            writer.write_all(&reply).unwrap();
            rig.dev.add_used(mem, id, writable_total).unwrap();
            let used = rig.q.pop_used().unwrap().unwrap();
            assert_eq!((used.id, used.written), (id, Ok(writable_total)));
            // The reply landed across the 20 writable segments in order.
            let mut got = Vec::new();
            for s in &segments[20..] {
                let mut part = vec![0u8; s.len as usize];
                data.read_bytes((s.addr - data.phys()) as usize, &mut part)
                    .unwrap();
                got.extend(part);
            }
            assert_eq!(got, reply);
        } else {
            rig.dev.add_used(mem, id, 0).unwrap();
        }
    }
    let mut returned = 1;
    while let Some(used) = rig.q.pop_used() {
        assert_eq!(used.unwrap().written, Ok(0));
        returned += 1;
    }
    assert_eq!(returned, 64);
    assert_eq!((rig.q.num_free(), rig.q.in_flight()), (64, 0));
}

/// vring_need_event, written out as "event lies in [old, new) modulo 2^16".
fn event_in_batch(event: u16, old: u16, new: u16) -> bool {
    let mut i = old;
    while i != new {
        if i == event {
            return true;
        }
        i = i.wrapping_add(1);
    }
    false
}

#[test]
fn event_idx_both_directions_across_index_wrap() {
    let mut rig = Rig::new(16, features(true, true));
    let mut seed = 0x1234_5678u32;
    let mut rand = move |n: u32| {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (seed >> 16) % n
    };
    let mut requests: u64 = 0;
    let mut published: u16 = 0;
    let mut device_asleep = true;
    let mut interrupts = true;
    let mut deferred = 0u16; // completions the driver has not popped yet
    let (mut kicks, mut interrupts_seen) = (0u32, 0u32);
    let mut reqs: Vec<Request> = Vec::new();

    while requests < 70_000 {
        if rand(8) == 0 {
            interrupts = !interrupts;
            if interrupts {
                rig.q.enable_interrupts();
                // Completions that arrived while interrupts were off must be visible now.
                assert_eq!(rig.q.has_used(), deferred > 0);
            } else {
                rig.q.disable_interrupts();
            }
        }
        let batch = 1 + rand(4) as u16;
        for _ in 0..batch {
            let seed = requests as u32;
            reqs.push(post(&mut rig, pattern(seed, 24), 16));
            requests += 1;
        }
        let new = published.wrapping_add(batch);
        let event = rig.avail_event();
        let kick = rig.q.publish();
        assert_eq!(
            kick,
            event_in_batch(event, published, new),
            "request {requests}"
        );
        if device_asleep {
            assert!(kick, "a sleeping device must be woken");
        }
        kicks += u32::from(kick);
        published = new;

        // The device serves the batch, then either goes to sleep (re-enabling
        // notifications at its position) or stays busy (polling, no notification wanted).
        let old_used = rig.dev.next_used();
        while let Some((head, _, n)) = rig.serve() {
            rig.complete(head, n);
        }
        let mem = rig.hal.memory();
        let irq = rig.dev.needs_notification(mem).unwrap();
        let used_event = rig.used_event();
        assert_eq!(
            irq,
            event_in_batch(used_event, old_used, rig.dev.next_used()),
            "device follows used_event"
        );
        // What the driver asked for: an interrupt for this batch iff interrupts are on and it
        // had consumed everything before it (otherwise it is still working through the
        // previous one and will see this batch too).
        assert_eq!(irq, interrupts && deferred == 0, "request {requests}");
        interrupts_seen += u32::from(irq);
        device_asleep = rand(2) == 0;
        if device_asleep {
            assert!(!rig.dev.enable_notification(mem).unwrap(), "ring drained");
        } else {
            rig.dev.disable_notification(mem).unwrap();
        }

        deferred += batch;
        // Pop now, or leave this batch for later (never more than the ring holds).
        if rand(3) != 0 || deferred > 8 {
            while let Some(used) = rig.q.pop_used() {
                let used = used.unwrap();
                let pos = reqs.iter().position(|r| r.id == used.id).unwrap();
                let r = reqs.swap_remove(pos);
                check_reply(&r, used.written.unwrap());
                deferred -= 1;
            }
            assert_eq!(deferred, 0);
        }
    }
    assert!(rig.dev.next_used() < 10_000, "used index wrapped");
    assert!(published < 10_000, "avail index wrapped");
    // Both suppressions did something, and both notifications happened.
    assert!(kicks > 1000 && (kicks as u64) < requests);
    assert!(interrupts_seen > 1000 && (interrupts_seen as u64) < requests);
}

#[test]
fn out_of_order_completion() {
    let mut rig = Rig::new(16, features(false, false));
    let reqs: Vec<Request> = (0..8)
        .map(|i| post(&mut rig, pattern(i, 40 + i as usize), 64))
        .collect();
    rig.q.publish();
    let mut served = Vec::new();
    while let Some(s) = rig.serve() {
        served.push(s);
    }
    assert_eq!(served.len(), 8);
    for order in [3usize, 7, 0, 5, 1, 6, 2, 4] {
        let (head, ref request, n) = served[order];
        assert_eq!(head, reqs[order].id);
        assert_eq!(request, &reqs[order].payload);
        rig.complete(head, n);
        let used = rig.q.pop_used().unwrap().unwrap();
        assert_eq!(used.id, reqs[order].id);
        check_reply(&reqs[order], used.written.unwrap());
        assert!(!rig.q.is_in_flight(used.id));
        // Reuse freed descriptors while others are still out.
        if order % 2 == 0 {
            round_trip(&mut rig, order as u32);
        }
    }
    assert_eq!((rig.q.num_free(), rig.q.in_flight()), (16, 0));
}

#[test]
fn full_queue_posts_nothing() {
    let mut rig = Rig::new(8, features(false, false));
    let reqs: Vec<Request> = (0..4).map(|i| post(&mut rig, pattern(i, 8), 8)).collect();
    assert_eq!(rig.q.num_free(), 0);
    let spare = rig.buffer(8);
    let seg = Segment {
        addr: spare.phys(),
        len: 8,
    };
    assert_eq!(rig.q.add(&[seg], &[]), Err(Error::QueueFull));
    assert_eq!(rig.q.add(&[seg; 9], &[]), Err(Error::ChainTooLong));
    assert_eq!(rig.q.in_flight(), 4);
    rig.q.publish();
    let mem = rig.hal.memory();
    assert_eq!(rig.dev.avail_idx(mem, Ordering::Acquire).unwrap().0, 4);
    let heads: Vec<u16> = rig.dev.iter(mem).unwrap().map(|c| c.head_index()).collect();
    assert_eq!(heads, reqs.iter().map(|r| r.id).collect::<Vec<_>>());
}

#[test]
fn reset_returns_all_chains_in_flight_and_the_queue_starts_over() {
    let mut rig = Rig::new(16, features(true, true));
    let baseline = rig.hal.allocated_bytes();
    let mut reqs: Vec<Request> = (0..6).map(|i| post(&mut rig, pattern(i, 32), 32)).collect();
    rig.q.publish();
    reqs.push(post(&mut rig, pattern(9, 32), 32)); // never published
                                                   // The device finishes one, takes two more, then the device is reset.
    let (head, _, n) = rig.serve().unwrap();
    rig.complete(head, n);
    rig.serve().unwrap();
    rig.serve().unwrap();
    let done = rig.q.pop_used().unwrap().unwrap().id;
    reqs.retain(|r| r.id != done);

    let mut ids = rig.q.reset();
    ids.sort_unstable();
    let mut expect: Vec<u16> = reqs.iter().map(|r| r.id).collect();
    expect.sort_unstable();
    assert_eq!(ids, expect);
    assert_eq!((rig.q.num_free(), rig.q.in_flight()), (16, 0));
    // The owner may now free the buffers.
    drop(reqs);
    assert_eq!(rig.hal.allocated_bytes(), baseline);

    rig.dev.reset();
    rig.dev = device_queue(&rig.q, true, rig.hal.memory());
    for seed in 0..40 {
        round_trip(&mut rig, seed);
    }
}

// --- hostile device ---

/// A queue with one request `a` in flight (taken by the device), two descriptors long.
fn hostile_rig() -> (Rig, Request) {
    let mut rig = Rig::new(16, features(false, false));
    let a = post(&mut rig, pattern(1, 64), 32);
    rig.q.publish();
    let (head, _, _) = rig.serve().unwrap();
    assert_eq!(head, a.id);
    (rig, a)
}

/// After a rejected entry: `a` is untouched, completes normally, and so does a new request.
fn still_works(mut rig: Rig, a: Request) {
    assert!(rig.q.is_in_flight(a.id));
    assert_eq!((rig.q.in_flight(), rig.q.num_free()), (1, 14));
    rig.complete(a.id, 32);
    let used = rig.q.pop_used().unwrap().unwrap();
    assert_eq!(used.id, a.id);
    check_reply(&a, used.written.unwrap());
    round_trip(&mut rig, 77);
    assert_eq!((rig.q.in_flight(), rig.q.num_free()), (0, 16));
}

#[test]
fn hostile_id_out_of_range() {
    for bad in [16u32, 0x1_0000, u32::MAX] {
        let (mut rig, a) = hostile_rig();
        rig.inject_used(bad, 0);
        assert_eq!(rig.q.pop_used(), Some(Err(Error::BadUsedId { id: bad })));
        assert_eq!(rig.q.pop_used(), None);
        still_works(rig, a);
    }
}

#[test]
fn hostile_id_not_in_flight() {
    let (mut rig, a) = hostile_rig();
    let bad = u32::from(a.id) + 5;
    rig.inject_used(bad, 0);
    assert_eq!(rig.q.pop_used(), Some(Err(Error::BadUsedId { id: bad })));
    still_works(rig, a);
}

#[test]
fn hostile_id_of_a_non_head_descriptor() {
    let (mut rig, a) = hostile_rig();
    // The second descriptor of a's chain, as the device sees it in the table.
    let at = rig.q.desc_addr() + 16 * u64::from(a.id);
    let next: u16 = rig.mem().read_obj(GuestAddress(at + 14)).unwrap();
    let flags: u16 = rig.mem().read_obj(GuestAddress(at + 12)).unwrap();
    assert_eq!(u16::from_le(flags) & 1, 1, "head has NEXT");
    let non_head = u32::from(u16::from_le(next));
    assert_ne!(non_head, u32::from(a.id));
    rig.inject_used(non_head, 0);
    assert_eq!(
        rig.q.pop_used(),
        Some(Err(Error::BadUsedId { id: non_head }))
    );
    still_works(rig, a);
}

#[test]
fn hostile_length_beyond_the_writable_part() {
    let (mut rig, a) = hostile_rig();
    rig.complete(a.id, 33);
    assert_eq!(
        rig.q.pop_used(),
        Some(Ok(UsedElem {
            id: a.id,
            written: Err(Error::BadUsedLength { len: 33, max: 32 })
        }))
    );
    // The chain is freed all the same.
    assert_eq!((rig.q.in_flight(), rig.q.num_free()), (0, 16));
    round_trip(&mut rig, 5);
}

#[test]
fn hostile_used_index_jumps_ahead() {
    let (mut rig, a) = hostile_rig();
    let next = rig.dev.next_used();
    rig.set_used_idx(next.wrapping_add(1000));
    assert_eq!(rig.q.pop_used(), Some(Err(Error::BadUsedIndex)));
    // Reported once; nothing is consumed while the index is implausible.
    assert_eq!(rig.q.pop_used(), None);
    assert!(!rig.q.has_used());
    assert!(rig.q.is_in_flight(a.id));
    // The device comes back to its senses: its next add_used rewrites used.idx.
    still_works(rig, a);
}
