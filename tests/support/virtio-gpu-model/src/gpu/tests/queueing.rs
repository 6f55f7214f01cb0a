//! How requests arrive and leave: split and indirect chains, batches, short response
//! buffers, interrupts with and without event idx, reset.

use super::*;

use viogpu_common::protocol::{CommandType, ResourceUnref, RespDisplayInfo};

#[test]
fn request_split_at_odd_boundaries_is_reassembled() {
    let mut h = Harness::default();
    let req = ResourceCreate2d::new(42, Format::B8G8R8X8_UNORM, 20, 10);
    let bytes = req.as_bytes();
    let segs = vec![
        Seg::Out(bytes[..3].to_vec()),
        Seg::Out(bytes[3..24].to_vec()),
        Seg::Out(bytes[24..25].to_vec()),
        Seg::Out(bytes[25..].to_vec()),
        Seg::In(10),
        Seg::In(14),
    ];
    let resp = h.roundtrip(&segs, false);
    assert_eq!(resp.len(), 24, "the header spans both writable buffers");
    assert_eq!(resp_type(&resp), ResponseType::OK_NODATA);
    assert_eq!(h.gpu.resource(42).unwrap().width, 20);
}

#[test]
fn indirect_chain_is_read_and_answered() {
    let mut h = Harness::default();
    h.create(1, 16, 16);
    let page = h.alloc(4096);
    let mut bytes = ResourceAttachBacking::new(1, 2).as_bytes().to_vec();
    bytes.extend_from_slice(MemEntry::new(page, 2048).as_bytes());
    bytes.extend_from_slice(MemEntry::new(page + 2048, 2048).as_bytes());
    let segs = vec![
        Seg::Out(bytes[..40].to_vec()),
        Seg::Out(bytes[40..].to_vec()),
        Seg::In(24),
    ];
    let resp = h.roundtrip(&segs, true);
    assert_eq!(resp_type(&resp), ResponseType::OK_NODATA);
    assert_eq!(h.gpu.resource(1).unwrap().backing_entries, 2);
}

#[test]
fn response_is_cut_to_the_writable_space() {
    let mut h = Harness::default();
    let req = CtrlHeader::command(CommandType::GET_DISPLAY_INFO);
    let sub = h.submit(
        CONTROL_QUEUE,
        &[Seg::Out(req.as_bytes().to_vec()), Seg::In(100)],
        false,
    );
    assert!(h.process(CONTROL_QUEUE));
    let used = h.take_used(CONTROL_QUEUE);
    assert_eq!(
        used,
        vec![Used {
            id: u32::from(sub.head),
            len: 100
        }]
    );
    let full = h.response_of(&sub, 100);
    assert_eq!(resp_type(&full), ResponseType::OK_DISPLAY_INFO);
    // A roomier buffer gets exactly the structure, and the rest stays untouched.
    let sub = h.submit(
        CONTROL_QUEUE,
        &[Seg::Out(req.as_bytes().to_vec()), Seg::In(500)],
        false,
    );
    h.process(CONTROL_QUEUE);
    assert_eq!(h.take_used(CONTROL_QUEUE)[0].len, 408);
    let all = h.response_of(&sub, 500);
    assert!(RespDisplayInfo::read_from_bytes(&all[..408]).is_ok());
    assert!(all[408..].iter().all(|&b| b == POISON));
}

#[test]
fn a_batch_completes_in_order_with_one_call() {
    let mut h = Harness::default();
    let fmt = Format::B8G8R8X8_UNORM;
    let subs: Vec<_> = (1..=5)
        .map(|id| {
            let req = ResourceCreate2d::new(id % 4, fmt, 16, 16); // ids 1,2,3,0,1
            h.submit(
                CONTROL_QUEUE,
                &[Seg::Out(req.as_bytes().to_vec()), Seg::In(24)],
                false,
            )
        })
        .collect();
    assert!(h.process(CONTROL_QUEUE));
    let used = h.take_used(CONTROL_QUEUE);
    let ids: Vec<u32> = used.iter().map(|u| u.id).collect();
    assert_eq!(
        ids,
        subs.iter().map(|s| u32::from(s.head)).collect::<Vec<_>>()
    );
    let types: Vec<_> = subs
        .iter()
        .zip(&used)
        .map(|(s, u)| resp_type(&h.response_of(s, u.len)))
        .collect();
    let ok = ResponseType::OK_NODATA;
    let bad_id = ResponseType::ERR_INVALID_RESOURCE_ID;
    assert_eq!(types, vec![ok, ok, ok, bad_id, bad_id]);
    // Nothing new: nothing to do, no interrupt.
    assert!(!h.process(CONTROL_QUEUE));
    assert_eq!(h.gpu.count(CommandType::RESOURCE_CREATE_2D), 5);
}

#[test]
fn event_idx_suppresses_the_interrupt_until_used_event() {
    let mut h = Harness::default();
    h.queues[0].set_event_idx(true);
    // used_event (after the avail ring) = 2: interrupt when used idx passes 2.
    let used_event = h.rings[0].avail + 4 + 2 * u64::from(QUEUE_SIZE);
    h.write(used_event, &2u16.to_le_bytes());
    let req = CtrlHeader::command(CommandType::GET_DISPLAY_INFO);
    let seg = || vec![Seg::Out(req.as_bytes().to_vec()), Seg::In(408)];
    h.submit(CONTROL_QUEUE, &seg(), false);
    assert!(
        !h.gpu.process_queue(0, &mut h.queues[0], &h.mem),
        "used idx 1"
    );
    h.submit(CONTROL_QUEUE, &seg(), false);
    assert!(
        !h.gpu.process_queue(0, &mut h.queues[0], &h.mem),
        "used idx 2"
    );
    h.submit(CONTROL_QUEUE, &seg(), false);
    assert!(
        h.gpu.process_queue(0, &mut h.queues[0], &h.mem),
        "used idx 3 passes 2"
    );
    assert_eq!(h.take_used(CONTROL_QUEUE).len(), 3);
}

#[test]
fn other_queue_indexes_complete_without_executing() {
    let mut h = Harness::default();
    let req = ResourceCreate2d::new(1, Format::B8G8R8X8_UNORM, 16, 16);
    // Reuse the cursor ring's memory but tell the device it is queue 7.
    let sub = h.submit(
        CURSOR_QUEUE,
        &[Seg::Out(req.as_bytes().to_vec()), Seg::In(24)],
        false,
    );
    assert!(h.gpu.process_queue(7, &mut h.queues[1], &h.mem));
    assert_eq!(
        h.take_used(CURSOR_QUEUE),
        vec![Used {
            id: u32::from(sub.head),
            len: 0
        }]
    );
    assert_eq!(h.gpu.resource_count(), 0);
}

#[test]
fn reset_forgets_resources_scanouts_cursor_and_held_requests() {
    let mut h = Harness::default();
    h.framebuffer(0, 1, 32, 32);
    h.create(2, 64, 64);
    h.cursor_command(&viogpu_common::protocol::UpdateCursor::update(
        0, 1, 1, 2, 0, 0,
    ));
    h.gpu.hold_completions(true);
    h.submit(
        CONTROL_QUEUE,
        &[
            Seg::Out(ResourceUnref::new(2).as_bytes().to_vec()),
            Seg::In(24),
        ],
        false,
    );
    assert!(!h.process(CONTROL_QUEUE));
    assert_eq!(h.gpu.held_count(), 1);

    h.gpu.reset();
    assert_eq!(h.gpu.resource_count(), 0);
    assert_eq!(h.gpu.hostmem_used(), 0);
    assert_eq!(h.gpu.scanout_resource(0), None);
    assert_eq!(
        h.gpu.cursor(0).unwrap(),
        &crate::gpu::CursorState::default()
    );
    assert_eq!(h.gpu.held_count(), 0);
    assert!(!h.release(CONTROL_QUEUE));
    // Counters survive a reset; the ids are free again.
    assert_eq!(h.gpu.count(CommandType::RESOURCE_CREATE_2D), 2);
}

#[test]
fn consume_queue_leaves_the_interrupt_decision_to_the_caller() {
    // A PCI shell that calls needs_notification itself, with event idx: a corrupted used
    // id still counts as a completion for the interrupt decision.
    let mut h = Harness::default();
    h.queues[0].set_event_idx(true);
    let used_event = h.rings[0].avail + 4 + 2 * u64::from(QUEUE_SIZE);
    h.write(used_event, &0u16.to_le_bytes());
    h.gpu
        .corrupt_next_response(crate::gpu::Corruption::BogusUsedId);
    let req = ResourceUnref::new(1);
    h.submit(
        CONTROL_QUEUE,
        &[Seg::Out(req.as_bytes().to_vec()), Seg::In(24)],
        false,
    );
    let before = h.queues[0].next_used();
    assert!(h.gpu.consume_queue(0, &mut h.queues[0], &h.mem));
    assert_eq!(h.queues[0].next_used(), before.wrapping_add(1));
    assert!(h.queues[0].needs_notification(&h.mem).unwrap());
    assert_eq!(
        h.take_used(CONTROL_QUEUE),
        vec![Used {
            id: u32::from(QUEUE_SIZE) + 5,
            len: 24
        }]
    );
    // Nothing new: nothing consumed.
    assert!(!h.gpu.consume_queue(0, &mut h.queues[0], &h.mem));
}
