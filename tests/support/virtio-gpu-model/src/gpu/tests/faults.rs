//! Fault injection: refused commands, held and late completions, broken used entries.

use super::*;

use viogpu_common::protocol::{CommandType, ResourceUnref, UpdateCursor};

use crate::gpu::Corruption;

fn create_req(id: u32) -> ResourceCreate2d {
    ResourceCreate2d::new(id, Format::B8G8R8X8_UNORM, 16, 16)
}

#[test]
fn fail_next_answers_with_the_error_without_executing() {
    let mut h = Harness::default();
    h.gpu.fail_next(
        CommandType::RESOURCE_CREATE_2D,
        ResponseType::ERR_OUT_OF_MEMORY,
    );
    assert_eq!(h.command(&create_req(1)), ResponseType::ERR_OUT_OF_MEMORY);
    assert_eq!(h.gpu.resource_count(), 0);
    assert_eq!(h.gpu.hostmem_used(), 0);
    assert_eq!(
        h.command(&create_req(1)),
        ResponseType::OK_NODATA,
        "only once"
    );

    h.gpu.fail_next(
        CommandType::RESOURCE_ATTACH_BACKING,
        ResponseType::ERR_UNSPEC,
    );
    let page = h.alloc(1024);
    assert_eq!(
        h.attach(1, &[MemEntry::new(page, 1024)]),
        ResponseType::ERR_UNSPEC
    );
    assert!(!h.gpu.resource(1).unwrap().has_backing);
    assert_eq!(
        h.attach(1, &[MemEntry::new(page, 1024)]),
        ResponseType::OK_NODATA
    );
    // Other command types are not affected by an armed failure.
    h.gpu
        .fail_next(CommandType::RESOURCE_FLUSH, ResponseType::ERR_UNSPEC);
    assert_eq!(h.command(&ResourceUnref::new(1)), ResponseType::OK_NODATA);
    assert_eq!(h.gpu.count(CommandType::RESOURCE_CREATE_2D), 2);
}

#[test]
fn fail_nth_lets_the_earlier_ones_through() {
    let mut h = Harness::default();
    h.gpu.fail_nth(
        3,
        CommandType::RESOURCE_CREATE_2D,
        ResponseType::ERR_INVALID_PARAMETER,
    );
    h.gpu.fail_next(
        CommandType::RESOURCE_CREATE_2D,
        ResponseType::ERR_OUT_OF_MEMORY,
    );
    let got: Vec<_> = (1..=4).map(|id| h.command(&create_req(id))).collect();
    assert_eq!(
        got,
        vec![
            ResponseType::ERR_OUT_OF_MEMORY,
            ResponseType::OK_NODATA,
            ResponseType::ERR_INVALID_PARAMETER,
            ResponseType::OK_NODATA,
        ]
    );
    let ids: Vec<u32> = h.gpu.resources().iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![2, 4]);
}

#[test]
fn fail_next_keeps_the_fence() {
    let mut h = Harness::default();
    h.gpu.fail_next(
        CommandType::RESOURCE_CREATE_2D,
        ResponseType::ERR_OUT_OF_MEMORY,
    );
    let mut req = create_req(1);
    req.hdr = CtrlHeader::fenced(CommandType::RESOURCE_CREATE_2D, 77);
    let resp = CtrlHeader::read_from_bytes(&h.command_with(&req, &[], 24)).unwrap();
    assert_eq!(resp.response_type(), ResponseType::ERR_OUT_OF_MEMORY);
    assert_eq!((resp.flags, resp.fence_id), (1, 77));
}

#[test]
fn held_requests_execute_but_complete_only_when_released() {
    let mut h = Harness::default();
    h.gpu.hold_completions(true);
    let a = h.submit(
        CONTROL_QUEUE,
        &[Seg::Out(create_req(1).as_bytes().to_vec()), Seg::In(24)],
        false,
    );
    let b = h.submit(
        CONTROL_QUEUE,
        &[Seg::Out(create_req(1).as_bytes().to_vec()), Seg::In(24)],
        false,
    );
    assert!(!h.process(CONTROL_QUEUE), "nothing completed, no interrupt");
    assert_eq!(h.take_used(CONTROL_QUEUE), vec![]);
    assert_eq!(h.gpu.held_count(), 2);
    assert_eq!(h.gpu.resource_count(), 1, "executed already");
    assert!(
        h.response_of(&a, 24).iter().all(|&x| x == POISON),
        "no response yet"
    );

    // Holding stops, but the held ones wait for release_held (the late answer).
    h.gpu.hold_completions(false);
    assert!(!h.release(CURSOR_QUEUE), "nothing held on the cursor queue");
    assert!(h.release(CONTROL_QUEUE));
    let used = h.take_used(CONTROL_QUEUE);
    assert_eq!(
        used,
        vec![
            Used {
                id: u32::from(a.head),
                len: 24
            },
            Used {
                id: u32::from(b.head),
                len: 24
            },
        ]
    );
    assert_eq!(resp_type(&h.response_of(&a, 24)), ResponseType::OK_NODATA);
    assert_eq!(
        resp_type(&h.response_of(&b, 24)),
        ResponseType::ERR_INVALID_RESOURCE_ID
    );
    assert_eq!(h.gpu.held_count(), 0);
}

#[test]
fn cursor_requests_can_be_held_too() {
    let mut h = Harness::default();
    h.gpu.hold_completions(true);
    let sub = h.submit(
        CURSOR_QUEUE,
        &[Seg::Out(UpdateCursor::move_to(0, 5, 5).as_bytes().to_vec())],
        false,
    );
    assert!(!h.process(CURSOR_QUEUE));
    assert_eq!(h.gpu.cursor(0).unwrap().x, 5);
    assert!(!h.release(CONTROL_QUEUE));
    assert!(h.release(CURSOR_QUEUE));
    assert_eq!(
        h.take_used(CURSOR_QUEUE),
        vec![Used {
            id: u32::from(sub.head),
            len: 0
        }]
    );
}

/// Sends one unref of a missing resource and returns its head and used elements.
fn one_command(h: &mut Harness) -> (Submitted, Vec<Used>) {
    let sub = h.submit(
        CONTROL_QUEUE,
        &[
            Seg::Out(ResourceUnref::new(1).as_bytes().to_vec()),
            Seg::In(24),
        ],
        false,
    );
    assert!(h.process(CONTROL_QUEUE));
    let used = h.take_used(CONTROL_QUEUE);
    (sub, used)
}

#[test]
fn corrupted_used_length() {
    let mut h = Harness::default();
    h.gpu.corrupt_next_response(Corruption::UsedLength(3));
    let (sub, used) = one_command(&mut h);
    assert_eq!(
        used,
        vec![Used {
            id: u32::from(sub.head),
            len: 3
        }]
    );
    // The bytes are there; only the length lies.
    assert_eq!(
        resp_type(&h.response_of(&sub, 24)),
        ResponseType::ERR_INVALID_RESOURCE_ID
    );
    // One completion only.
    let (sub, used) = one_command(&mut h);
    assert_eq!(
        used,
        vec![Used {
            id: u32::from(sub.head),
            len: 24
        }]
    );
}

#[test]
fn corrupted_used_id() {
    let mut h = Harness::default();
    h.gpu.corrupt_next_response(Corruption::BogusUsedId);
    h.gpu.corrupt_next_response(Corruption::WrongUsedId(9));
    let (_, used) = one_command(&mut h);
    assert_eq!(
        used,
        vec![Used {
            id: u32::from(QUEUE_SIZE) + 5,
            len: 24
        }]
    );
    let (_, used) = one_command(&mut h);
    assert_eq!(used, vec![Used { id: 9, len: 24 }]);
    // The device's ring state stays consistent: the next completion is normal.
    let (sub, used) = one_command(&mut h);
    assert_eq!(
        used,
        vec![Used {
            id: u32::from(sub.head),
            len: 24
        }]
    );
}

#[test]
fn corrupted_response_type_and_duplicate_used() {
    let mut h = Harness::default();
    h.gpu
        .corrupt_next_response(Corruption::ResponseType(0xdead));
    let (sub, used) = one_command(&mut h);
    assert_eq!(
        resp_type(&h.response_of(&sub, used[0].len)),
        ResponseType(0xdead)
    );
    h.gpu.corrupt_next_response(Corruption::DuplicateUsed);
    let (sub, used) = one_command(&mut h);
    let once = Used {
        id: u32::from(sub.head),
        len: 24,
    };
    assert_eq!(used, vec![once, once]);
}

#[test]
fn corruption_applies_to_released_completions() {
    let mut h = Harness::default();
    h.gpu.hold_completions(true);
    let sub = h.submit(
        CONTROL_QUEUE,
        &[
            Seg::Out(ResourceUnref::new(1).as_bytes().to_vec()),
            Seg::In(24),
        ],
        false,
    );
    h.process(CONTROL_QUEUE);
    h.gpu.corrupt_next_response(Corruption::UsedLength(0));
    assert!(h.release(CONTROL_QUEUE));
    assert_eq!(
        h.take_used(CONTROL_QUEUE),
        vec![Used {
            id: u32::from(sub.head),
            len: 0
        }]
    );
}

#[test]
fn clear_faults_disarms_everything() {
    let mut h = Harness::default();
    h.gpu.fail_next(
        CommandType::RESOURCE_CREATE_2D,
        ResponseType::ERR_OUT_OF_MEMORY,
    );
    h.gpu.corrupt_next_response(Corruption::BogusUsedId);
    h.gpu.hold_completions(true);
    h.gpu.clear_faults();
    assert_eq!(h.command(&create_req(1)), ResponseType::OK_NODATA);
}

/// What the device reports it still uses (the check behind `device_memory_freed`): the
/// backing attached to a resource until it is detached, and the buffers and indirect table
/// of a request it holds until it completes it; a held request's head made available again
/// is counted as reused.
#[test]
fn the_device_reports_the_memory_it_still_uses_and_reuse_while_held() {
    let mut h = Harness::default();
    h.create(1, 16, 16);
    let backing = h.attach_new(1, 1024);
    assert!(h.gpu.holds_memory(backing + 1000, backing + 1001));
    assert!(!h.gpu.holds_memory(backing + 1024, backing + 4096));
    let detach = viogpu_common::protocol::ResourceDetachBacking::new(1);
    assert_eq!(h.command(&detach), ResponseType::OK_NODATA);
    assert!(!h.gpu.holds_memory(backing, backing + 1024), "detached");

    h.gpu.hold_completions(true);
    let hdr = CtrlHeader::command(CommandType::GET_DISPLAY_INFO);
    let sub = h.submit(
        CONTROL_QUEUE,
        &[Seg::Out(hdr.as_bytes().to_vec()), Seg::In(64)],
        true,
    );
    h.process(CONTROL_QUEUE);
    let (response, _) = sub.ins[0];
    assert!(h.gpu.holds_memory(response, response + 64), "a held buffer");
    let table = {
        let raw = h.read(RING_BASE[0] + 16 * u64::from(sub.head), 8);
        u64::from_le_bytes(raw.try_into().unwrap())
    };
    assert!(h.gpu.holds_memory(table, table + 1), "its indirect table");
    assert_eq!(h.gpu.reused_while_held(), 0);

    // The driver makes the same head available again before the device gave it back.
    let ring = &mut h.rings[CONTROL_QUEUE as usize];
    let slot = ring.avail + 4 + 2 * u64::from(ring.avail_idx % QUEUE_SIZE);
    ring.avail_idx = ring.avail_idx.wrapping_add(1);
    let (avail, idx) = (ring.avail, ring.avail_idx);
    h.write(slot, &sub.head.to_le_bytes());
    h.write(avail + 2, &idx.to_le_bytes());
    h.process(CONTROL_QUEUE);
    assert_eq!(h.gpu.reused_while_held(), 1);

    // Completed (and after a reset): nothing is in use any more.
    h.gpu.hold_completions(false);
    h.release(CONTROL_QUEUE);
    assert!(!h.gpu.holds_memory(response, response + 64));
    h.gpu.reset();
    assert!(!h.gpu.holds_memory(0, u64::MAX));
}
