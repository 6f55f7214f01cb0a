//! Each control command's rules, with the exact response codes QEMU gives.

use super::*;

use viogpu_common::protocol::{
    CommandType, GetEdid, ResourceDetachBacking, ResourceFlush, ResourceUnref, RespDisplayInfo,
    RespEdid,
};

use crate::gpu::{PreferredDisplay, MAX_BACKING_ENTRIES};

const OK: ResponseType = ResponseType::OK_NODATA;

#[test]
fn display_info_lists_the_configured_displays() {
    let mut h = Harness::new(GpuConfig {
        num_scanouts: 3,
        displays: vec![
            PreferredDisplay::enabled(1920, 1080),
            PreferredDisplay::DISABLED,
            PreferredDisplay::enabled(800, 600),
        ],
        ..GpuConfig::default()
    });
    let req = CtrlHeader::command(CommandType::GET_DISPLAY_INFO);
    let bytes = h.command_with(&req, &[], 408);
    assert_eq!(bytes.len(), 408);
    let info = RespDisplayInfo::read_from_bytes(&bytes).unwrap();
    assert_eq!(info.hdr.response_type(), ResponseType::OK_DISPLAY_INFO);
    assert_eq!(
        (info.pmodes[0].enabled, info.pmodes[0].r),
        (1, Rect::new(0, 0, 1920, 1080))
    );
    assert_eq!(
        (info.pmodes[1].enabled, info.pmodes[1].r),
        (0, Rect::default())
    );
    assert_eq!(
        (info.pmodes[2].enabled, info.pmodes[2].r),
        (1, Rect::new(0, 0, 800, 600))
    );
    assert!(info.pmodes[3..].iter().all(|m| m.enabled == 0));

    // A hotplug changes the next answer.
    assert!(h.gpu.set_display(1, 1280, 1024, true));
    assert!(h.gpu.set_display(0, 0, 0, false));
    assert!(
        !h.gpu.set_display(3, 640, 480, true),
        "scanout 3 does not exist"
    );
    let info = RespDisplayInfo::read_from_bytes(&h.command_with(&req, &[], 408)).unwrap();
    assert_eq!(info.pmodes[0].enabled, 0);
    assert_eq!(
        (info.pmodes[1].enabled, info.pmodes[1].r),
        (1, Rect::new(0, 0, 1280, 1024))
    );
    assert_eq!(h.gpu.count(CommandType::GET_DISPLAY_INFO), 2);
}

#[test]
fn num_scanouts_is_clamped_and_displays_sized_to_it() {
    let gpu = GpuBackend::new(GpuConfig {
        num_scanouts: 40,
        ..GpuConfig::default()
    });
    assert_eq!(gpu.num_scanouts(), 16);
    assert_eq!(gpu.config().displays.len(), 16);
    assert_eq!(gpu.config().displays[1], PreferredDisplay::DISABLED);
    let gpu = GpuBackend::new(GpuConfig {
        num_scanouts: 0,
        ..GpuConfig::default()
    });
    assert_eq!(gpu.num_scanouts(), 1);
}

/// Width and height of the first detailed timing of an EDID block.
fn dtd_size(edid: &[u8]) -> (u32, u32) {
    let d = &edid[54..72];
    let w = u32::from(d[2]) | (u32::from(d[4] >> 4) << 8);
    let h = u32::from(d[5]) | (u32::from(d[7] >> 4) << 8);
    (w, h)
}

#[test]
fn edid_has_the_preferred_size_and_a_valid_checksum() {
    let mut h = Harness::new(GpuConfig {
        num_scanouts: 2,
        displays: vec![
            PreferredDisplay::enabled(1920, 1200),
            PreferredDisplay::enabled(3840, 2160),
        ],
        ..GpuConfig::default()
    });
    for (scanout, size) in [(0, (1920, 1200)), (1, (3840, 2160))] {
        let bytes = h.command_with(&GetEdid::new(scanout), &[], 1056);
        let resp = RespEdid::read_from_bytes(&bytes).unwrap();
        assert_eq!(resp.hdr.response_type(), ResponseType::OK_EDID);
        let edid = resp.edid_bytes().unwrap();
        assert_eq!(edid.len(), 128);
        assert_eq!(&edid[..8], &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
        assert_eq!(edid.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        assert_eq!(dtd_size(edid), size);
    }
    // After a display change, the EDID follows.
    h.gpu.set_display(0, 1024, 768, true);
    let resp = RespEdid::read_from_bytes(&h.command_with(&GetEdid::new(0), &[], 1056)).unwrap();
    assert_eq!(dtd_size(resp.edid_bytes().unwrap()), (1024, 768));

    let bytes = h.command_with(&GetEdid::new(2), &[], 1056);
    assert_eq!(bytes.len(), 24, "an error is a bare header");
    assert_eq!(resp_type(&bytes), ResponseType::ERR_INVALID_PARAMETER);
}

#[test]
fn create_2d_rules() {
    let mut h = Harness::default();
    let fmt = Format::B8G8R8X8_UNORM;
    assert_eq!(
        h.command(&ResourceCreate2d::new(0, fmt, 64, 64)),
        ResponseType::ERR_INVALID_RESOURCE_ID
    );
    assert_eq!(h.command(&ResourceCreate2d::new(1, fmt, 64, 64)), OK);
    assert_eq!(
        h.command(&ResourceCreate2d::new(1, fmt, 32, 32)),
        ResponseType::ERR_INVALID_RESOURCE_ID,
        "id in use"
    );
    assert_eq!(
        h.command(&ResourceCreate2d::new(2, Format(5), 64, 64)),
        ResponseType::ERR_INVALID_PARAMETER
    );
    for format in [
        Format::B8G8R8A8_UNORM,
        Format::R8G8B8X8_UNORM,
        Format::A8B8G8R8_UNORM,
    ] {
        let id = 10 + format.0;
        assert_eq!(h.command(&ResourceCreate2d::new(id, format, 16, 16)), OK);
    }
    assert_eq!(h.gpu.resource_count(), 4);
    let info = h.gpu.resource(1).unwrap();
    assert_eq!((info.width, info.height, info.format), (64, 64, fmt));
    assert_eq!(
        (info.hostmem, info.has_backing, info.backing_entries),
        (64 * 64 * 4, false, 0)
    );
}

#[test]
fn hostmem_is_accounted_and_limited_like_qemu() {
    // 1 MiB limit: QEMU creates a resource only while the total stays *below* the limit.
    let mut h = Harness::new(GpuConfig {
        max_hostmem: 1 << 20,
        ..GpuConfig::default()
    });
    let fmt = Format::B8G8R8X8_UNORM;
    assert_eq!(
        h.command(&ResourceCreate2d::new(1, fmt, 512, 512)),
        ResponseType::ERR_OUT_OF_MEMORY,
        "exactly the limit is refused"
    );
    assert_eq!(h.command(&ResourceCreate2d::new(1, fmt, 256, 512)), OK);
    assert_eq!(h.gpu.hostmem_used(), 512 << 10);
    assert_eq!(h.command(&ResourceCreate2d::new(2, fmt, 256, 511)), OK);
    assert_eq!(h.gpu.hostmem_used(), (512 << 10) + 256 * 511 * 4);
    assert_eq!(
        h.command(&ResourceCreate2d::new(3, fmt, 1, 256)),
        ResponseType::ERR_OUT_OF_MEMORY
    );
    assert_eq!(h.gpu.resource_count(), 2);
    // Sizes whose product overflows are out of memory, not a wrap-around.
    assert_eq!(
        h.command(&ResourceCreate2d::new(4, fmt, u32::MAX, u32::MAX)),
        ResponseType::ERR_OUT_OF_MEMORY
    );
    // Unref gives the memory back.
    assert_eq!(h.command(&ResourceUnref::new(1)), OK);
    assert_eq!(h.gpu.hostmem_used(), 256 * 511 * 4);
    assert_eq!(h.command(&ResourceCreate2d::new(3, fmt, 1, 256)), OK);
}

#[test]
fn unref_rules() {
    let mut h = Harness::default();
    assert_eq!(
        h.command(&ResourceUnref::new(7)),
        ResponseType::ERR_INVALID_RESOURCE_ID
    );
    assert_eq!(
        h.command(&ResourceUnref::new(0)),
        ResponseType::ERR_INVALID_RESOURCE_ID
    );
    h.framebuffer(0, 7, 64, 32);
    assert_eq!(h.gpu.scanout_resource(0), Some(7));
    assert_eq!(h.command(&ResourceUnref::new(7)), OK);
    assert_eq!(h.gpu.resource_count(), 0);
    assert_eq!(h.gpu.hostmem_used(), 0);
    assert_eq!(
        h.gpu.scanout_resource(0),
        None,
        "unref disables the scanout showing it"
    );
    assert_eq!(h.gpu.scanout_image(0), None);
    assert_eq!(
        h.command(&ResourceUnref::new(7)),
        ResponseType::ERR_INVALID_RESOURCE_ID
    );
}

#[test]
fn attach_backing_rules() {
    let mut h = Harness::default();
    let page = h.alloc(4096);
    let entry = MemEntry::new(page, 4096);
    assert_eq!(h.attach(3, &[entry]), ResponseType::ERR_INVALID_RESOURCE_ID);
    h.create(3, 32, 32);
    // Outside guest memory, straddling its end, or empty: QEMU cannot map it.
    let end = MEM_SIZE as u64;
    for bad in [
        MemEntry::new(end + 0x1000, 4096),
        MemEntry::new(end - 0x800, 4096),
        MemEntry::new(u64::MAX - 100, 4096),
        MemEntry::new(page, 0),
    ] {
        assert_eq!(
            h.attach(3, &[entry, bad]),
            ResponseType::ERR_UNSPEC,
            "{bad:?}"
        );
        assert!(!h.gpu.resource(3).unwrap().has_backing);
    }
    // An entry list shorter than nr_entries says.
    let req = ResourceAttachBacking::new(3, 2);
    let bytes = h.command_with(&req, entry.as_bytes(), 24);
    assert_eq!(resp_type(&bytes), ResponseType::ERR_UNSPEC);
    // Zero entries: accepted, but the resource still has no backing (QEMU keeps no iov).
    assert_eq!(h.attach(3, &[]), OK);
    assert!(!h.gpu.resource(3).unwrap().has_backing);
    let r = TransferToHost2d::new(3, Rect::new(0, 0, 32, 32), 0);
    assert_eq!(h.command(&r), ResponseType::ERR_UNSPEC);

    let entries = [MemEntry::new(page, 2048), MemEntry::new(page + 2048, 2048)];
    assert_eq!(h.attach(3, &entries), OK);
    let info = h.gpu.resource(3).unwrap();
    assert_eq!(
        (info.has_backing, info.backing_entries, info.backing_len),
        (true, 2, 4096)
    );
    assert_eq!(
        h.attach(3, &[entry]),
        ResponseType::ERR_UNSPEC,
        "backing already attached"
    );
    assert_eq!(h.gpu.count(CommandType::RESOURCE_ATTACH_BACKING), 9);
}

#[test]
fn attach_backing_accepts_16384_entries_and_refuses_more() {
    let mut h = Harness::default();
    h.create(1, 256, 256);
    h.create(2, 256, 256);
    let page = h.alloc(4096);
    let entries = vec![MemEntry::new(page, 16); MAX_BACKING_ENTRIES as usize + 1];
    assert_eq!(h.attach(1, &entries), ResponseType::ERR_UNSPEC);
    assert!(!h.gpu.resource(1).unwrap().has_backing);
    let max = &entries[..MAX_BACKING_ENTRIES as usize];
    assert_eq!(h.attach(2, max), OK);
    let info = h.gpu.resource(2).unwrap();
    assert_eq!(info.backing_entries, 16384);
    assert_eq!(info.backing_len, 16384 * 16);
}

#[test]
fn detach_backing_rules() {
    let mut h = Harness::default();
    assert_eq!(
        h.command(&ResourceDetachBacking::new(4)),
        ResponseType::ERR_INVALID_RESOURCE_ID
    );
    h.create(4, 16, 16);
    assert_eq!(
        h.command(&ResourceDetachBacking::new(4)),
        ResponseType::ERR_UNSPEC
    );
    h.attach_new(4, 16 * 16 * 4);
    assert_eq!(h.command(&ResourceDetachBacking::new(4)), OK);
    assert!(!h.gpu.resource(4).unwrap().has_backing);
    let r = TransferToHost2d::new(4, Rect::new(0, 0, 16, 16), 0);
    assert_eq!(
        h.command(&r),
        ResponseType::ERR_UNSPEC,
        "no backing to copy from"
    );
    // After a detach, a new backing can be attached.
    h.attach_new(4, 16 * 16 * 4);
    assert_eq!(h.command(&r), OK);
}

#[test]
fn set_scanout_rules() {
    let mut h = Harness::new(GpuConfig {
        num_scanouts: 2,
        ..GpuConfig::default()
    });
    let full = Rect::new(0, 0, 64, 48);
    assert_eq!(
        h.command(&SetScanout::new(2, 1, full)),
        ResponseType::ERR_INVALID_SCANOUT_ID
    );
    assert_eq!(
        h.command(&SetScanout::new(0, 1, full)),
        ResponseType::ERR_INVALID_RESOURCE_ID
    );
    h.create(1, 64, 48);
    assert_eq!(
        h.command(&SetScanout::new(0, 1, full)),
        ResponseType::ERR_UNSPEC,
        "no backing"
    );
    h.attach_new(1, 64 * 48 * 4);
    for bad in [
        Rect::new(0, 0, 65, 48),
        Rect::new(0, 1, 64, 48),
        Rect::new(49, 0, 16, 16),
        Rect::new(u32::MAX, 0, 16, 16),
        Rect::new(0, 0, 15, 48),
        Rect::new(0, 0, 64, 15),
    ] {
        assert_eq!(
            h.command(&SetScanout::new(0, 1, bad)),
            ResponseType::ERR_INVALID_PARAMETER,
            "{bad:?}"
        );
    }
    assert_eq!(h.gpu.scanout_resource(0), None);
    let part = Rect::new(8, 4, 16, 16);
    assert_eq!(h.command(&SetScanout::new(1, 1, part)), OK);
    assert_eq!(h.gpu.scanout_resource(1), Some(1));
    assert_eq!(h.gpu.scanout_rect(1), Some(part));
    assert_eq!(h.command(&SetScanout::new(0, 1, full)), OK);
    // Resource 0 disables just that scanout; scanout id is checked first even then.
    assert_eq!(
        h.command(&SetScanout::new(9, 0, Rect::default())),
        ResponseType::ERR_INVALID_SCANOUT_ID
    );
    assert_eq!(h.command(&SetScanout::new(1, 0, Rect::default())), OK);
    assert_eq!(h.gpu.scanout_resource(1), None);
    assert_eq!(h.gpu.scanout_resource(0), Some(1));
}

#[test]
fn transfer_rules() {
    let mut h = Harness::default();
    let r = Rect::new(0, 0, 32, 32);
    assert_eq!(
        h.command(&TransferToHost2d::new(5, r, 0)),
        ResponseType::ERR_INVALID_RESOURCE_ID
    );
    h.create(5, 32, 32);
    assert_eq!(
        h.command(&TransferToHost2d::new(5, r, 0)),
        ResponseType::ERR_UNSPEC
    );
    h.attach_new(5, 32 * 32 * 4);
    for bad in [
        Rect::new(0, 0, 33, 32),
        Rect::new(31, 0, 2, 1),
        Rect::new(0, 32, 1, 1),
        Rect::new(1, u32::MAX, 1, 2),
    ] {
        assert_eq!(
            h.command(&TransferToHost2d::new(5, bad, 0)),
            ResponseType::ERR_INVALID_PARAMETER,
            "{bad:?}"
        );
    }
    assert_eq!(
        h.gpu.transfers().len(),
        0,
        "failed transfers are not logged"
    );
    assert_eq!(h.command(&TransferToHost2d::new(5, r, 0)), OK);
    assert_eq!(h.gpu.transfers().len(), 1);
}

#[test]
fn flush_rules() {
    let mut h = Harness::default();
    let r = Rect::new(0, 0, 16, 16);
    assert_eq!(
        h.command(&ResourceFlush::new(6, r)),
        ResponseType::ERR_INVALID_RESOURCE_ID
    );
    h.create(6, 16, 16);
    // Flush needs no backing.
    assert_eq!(h.command(&ResourceFlush::new(6, r)), OK);
    assert_eq!(
        h.command(&ResourceFlush::new(6, Rect::new(8, 8, 9, 8))),
        ResponseType::ERR_INVALID_PARAMETER
    );
    assert_eq!(h.command(&ResourceFlush::new(6, Rect::new(8, 8, 8, 8))), OK);
    let flushed: Vec<_> = h.gpu.flushes().map(|f| (f.resource_id, f.rect)).collect();
    assert_eq!(flushed, vec![(6, r), (6, Rect::new(8, 8, 8, 8))]);
    assert_eq!(h.gpu.count(CommandType::RESOURCE_FLUSH), 4);
}

#[test]
fn unknown_and_short_requests_get_err_unspec() {
    let mut h = Harness::default();
    for ty in [
        CommandType(0x999),
        CommandType::GET_CAPSET_INFO,
        CommandType::UPDATE_CURSOR,
        CommandType::RESOURCE_ASSIGN_UUID,
    ] {
        assert_eq!(
            h.command(&CtrlHeader::command(ty)),
            ResponseType::ERR_UNSPEC,
            "{ty:?}"
        );
    }
    assert_eq!(
        h.command(&CtrlHeader::command(CommandType::RESOURCE_CREATE_BLOB)),
        ResponseType::ERR_INVALID_PARAMETER,
        "QEMU without blob support"
    );
    // Shorter than a header.
    let bytes = h.roundtrip(&[Seg::Out(vec![1; 10]), Seg::In(24)], false);
    assert_eq!(resp_type(&bytes), ResponseType::ERR_UNSPEC);
    // A header but not the whole command.
    let req = ResourceCreate2d::new(1, Format::B8G8R8X8_UNORM, 16, 16);
    let short = req.as_bytes()[..36].to_vec();
    let bytes = h.roundtrip(&[Seg::Out(short), Seg::In(24)], false);
    assert_eq!(resp_type(&bytes), ResponseType::ERR_UNSPEC);
    assert_eq!(h.gpu.resource_count(), 0);
    assert_eq!(h.gpu.count(CommandType::RESOURCE_CREATE_2D), 1);
    // No readable part at all.
    let bytes = h.roundtrip(&[Seg::In(24)], false);
    assert_eq!(resp_type(&bytes), ResponseType::ERR_UNSPEC);
    let last = h.gpu.log().last().copied().unwrap();
    assert_eq!(
        (last.command, last.response),
        (None, Some(ResponseType::ERR_UNSPEC))
    );
}

#[test]
fn fence_is_echoed_only_when_asked() {
    let mut h = Harness::default();
    let mut req = ResourceCreate2d::new(1, Format::B8G8R8X8_UNORM, 16, 16);
    req.hdr = CtrlHeader::fenced(CommandType::RESOURCE_CREATE_2D, 0x1234_5678_9abc);
    req.hdr.ctx_id = 3;
    let resp = CtrlHeader::read_from_bytes(&h.command_with(&req, &[], 24)).unwrap();
    assert_eq!(resp.response_type(), OK);
    assert_eq!(
        resp.flags & viogpu_common::protocol::VIRTIO_GPU_FLAG_FENCE,
        1
    );
    assert_eq!((resp.fence_id, resp.ctx_id), (0x1234_5678_9abc, 3));
    // Errors are fenced too.
    let resp = CtrlHeader::read_from_bytes(&h.command_with(&req, &[], 24)).unwrap();
    assert_eq!(resp.response_type(), ResponseType::ERR_INVALID_RESOURCE_ID);
    assert_eq!((resp.flags, resp.fence_id), (1, 0x1234_5678_9abc));
    // Unfenced: flags and fence id stay zero even if the request had a fence id.
    let mut plain = ResourceUnref::new(1);
    plain.hdr.fence_id = 99;
    let resp = CtrlHeader::read_from_bytes(&h.command_with(&plain, &[], 24)).unwrap();
    assert_eq!(
        (resp.response_type(), resp.flags, resp.fence_id),
        (OK, 0, 0)
    );
    let fences: Vec<_> = h.gpu.log().map(|r| r.fence_id).collect();
    assert_eq!(
        fences,
        vec![Some(0x1234_5678_9abc), Some(0x1234_5678_9abc), None]
    );
}
