#![allow(clippy::unwrap_used)]

use alloc::format;
use alloc::vec::Vec;

use zerocopy::{FromZeros, IntoBytes};

use super::*;

fn display_info(entries: &[(u32, u32, u32)]) -> RespDisplayInfo {
    let mut info = RespDisplayInfo::new_zeroed();
    info.hdr = CtrlHeader::response(ResponseType::OK_DISPLAY_INFO);
    for (slot, &(enabled, w, h)) in info.pmodes.iter_mut().zip(entries) {
        slot.enabled = enabled;
        slot.r = Rect::new(0, 0, w, h);
    }
    info
}

#[test]
fn header_bytes_are_spec_layout() {
    let hdr = CtrlHeader::fenced(CommandType::RESOURCE_FLUSH, 0x1122_3344_5566_7788);
    let mut expected = Vec::new();
    expected.extend_from_slice(&0x104u32.to_le_bytes());
    expected.extend_from_slice(&1u32.to_le_bytes());
    expected.extend_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    expected.extend_from_slice(&[0; 8]);
    assert_eq!(hdr.as_bytes(), expected.as_slice());
}

#[test]
fn transfer_request_bytes() {
    let req = TransferToHost2d::new(7, Rect::new(1, 2, 3, 4), 0x1_0000_0010);
    let b = req.as_bytes();
    assert_eq!(b.len(), 56);
    assert_eq!(&b[0..4], &0x105u32.to_le_bytes());
    assert_eq!(&b[24..40], [1u32, 2, 3, 4].as_bytes());
    assert_eq!(&b[40..48], &0x1_0000_0010u64.to_le_bytes());
    assert_eq!(&b[48..52], &7u32.to_le_bytes());
    assert_eq!(&b[52..56], &[0; 4]);
}

#[test]
fn cursor_requests() {
    let up = UpdateCursor::update(1, 10, 20, 5, 3, 4);
    assert_eq!(
        up.as_bytes()[24..],
        *[1u32, 10, 20, 0, 5, 3, 4, 0].as_bytes()
    );
    assert_eq!(up.hdr.command_type(), CommandType::UPDATE_CURSOR);
    let mv = UpdateCursor::move_to(0, 7, 8);
    assert_eq!(mv.hdr.ty, 0x301);
    assert_eq!(
        mv.pos,
        CursorPos {
            scanout_id: 0,
            x: 7,
            y: 8,
            padding: 0
        }
    );
}

#[test]
fn command_codes_match_spec() {
    assert_eq!(CommandType::RESOURCE_DETACH_BACKING.0, 0x107);
    assert_eq!(CommandType::GET_EDID.0, 0x10a);
    assert_eq!(ResponseType::ERR_INVALID_PARAMETER.0, 0x1205);
    assert_eq!(
        ResourceCreate2d::new(1, Format::B8G8R8X8_UNORM, 2, 3).format,
        2
    );
    assert_eq!(GetEdid::new(3).as_bytes()[24..28], 3u32.to_le_bytes());
    assert_eq!(GpuConfig::NUM_SCANOUTS_OFFSET, 8);
}

#[test]
fn debug_names_known_and_unknown_codes() {
    assert_eq!(format!("{:?}", ResponseType::OK_EDID), "OK_EDID");
    assert_eq!(
        format!("{:?}", ResponseType(0x1234)),
        "ResponseType(0x1234)"
    );
    assert_eq!(format!("{:?}", CommandType::MOVE_CURSOR), "MOVE_CURSOR");
    assert_eq!(format!("{:?}", CommandType(0x999)), "CommandType(0x999)");
    assert_eq!(format!("{:?}", Format::R8G8B8X8_UNORM), "R8G8B8X8_UNORM");
    assert_eq!(format!("{:?}", Format(5)), "Format(5)");
}

#[test]
fn ok_and_error_ranges() {
    assert!(ResponseType::OK_NODATA.is_ok());
    assert!(ResponseType(0x11ff).is_ok());
    assert!(!ResponseType::OK_NODATA.is_error());
    assert!(ResponseType::ERR_UNSPEC.is_error());
    assert!(!ResponseType::ERR_UNSPEC.is_ok());
    assert!(!ResponseType(0).is_ok() && !ResponseType(0).is_error());
    assert!(!ResponseType(0x1300).is_error());
}

#[test]
fn bytes_per_pixel() {
    assert_eq!(Format::B8G8R8A8_UNORM.bytes_per_pixel(), Some(4));
    assert_eq!(Format::A8B8G8R8_UNORM.bytes_per_pixel(), Some(4));
    assert_eq!(Format(0).bytes_per_pixel(), None);
    assert_eq!(Format(999).bytes_per_pixel(), None);
}

#[test]
fn parse_nodata() {
    let ok = CtrlHeader::response(ResponseType::OK_NODATA);
    assert_eq!(check_nodata(ok.as_bytes()), Ok(()));
    assert_eq!(
        check_nodata(&ok.as_bytes()[..23]),
        Err(Error::ShortResponse)
    );
    assert_eq!(check_nodata(&[]), Err(Error::ShortResponse));
    let err = CtrlHeader::response(ResponseType::ERR_INVALID_RESOURCE_ID);
    assert_eq!(
        check_nodata(err.as_bytes()),
        Err(Error::DeviceError(0x1203))
    );
    let wrong = CtrlHeader::response(ResponseType::OK_EDID);
    assert_eq!(
        check_nodata(wrong.as_bytes()),
        Err(Error::UnexpectedResponse(0x1104))
    );
    let garbage = CtrlHeader::response(ResponseType(0xdead));
    assert_eq!(
        check_nodata(garbage.as_bytes()),
        Err(Error::UnexpectedResponse(0xdead))
    );
}

#[test]
fn parse_display_info() {
    let info = display_info(&[(1, 1024, 768)]);
    let parsed: RespDisplayInfo = parse_response(info.as_bytes()).unwrap();
    assert_eq!(parsed, info);
    // An error answer is header-sized: it must be reported as the device error, not short.
    let err = CtrlHeader::response(ResponseType::ERR_UNSPEC);
    assert_eq!(
        parse_response::<RespDisplayInfo>(err.as_bytes()),
        Err(Error::DeviceError(0x1200))
    );
    assert_eq!(
        parse_response::<RespDisplayInfo>(&info.as_bytes()[..407]),
        Err(Error::ShortResponse)
    );
    // Trailing bytes beyond the structure are ignored.
    let mut long = info.as_bytes().to_vec();
    long.extend_from_slice(&[0xff; 8]);
    assert_eq!(parse_response::<RespDisplayInfo>(&long), Ok(info));
}

#[test]
fn parse_edid_response_and_bound_size() {
    let mut resp = RespEdid::new_zeroed();
    resp.hdr = CtrlHeader::response(ResponseType::OK_EDID);
    resp.size = 256;
    resp.edid[255] = 0xab;
    let parsed: RespEdid = parse_response(resp.as_bytes()).unwrap();
    let edid = parsed.edid_bytes().unwrap();
    assert_eq!(edid.len(), 256);
    assert_eq!(edid[255], 0xab);
    resp.size = 1024;
    assert_eq!(resp.edid_bytes().unwrap().len(), 1024);
    resp.size = 1025;
    assert!(matches!(resp.edid_bytes(), Err(Error::Malformed(_))));
    resp.size = u32::MAX;
    assert!(matches!(resp.edid_bytes(), Err(Error::Malformed(_))));
}

#[test]
fn enabled_displays_bounds_device_values() {
    let info = display_info(&[
        (1, 1024, 768),
        (0, 800, 600),     // disabled
        (1, 0, 600),       // zero width
        (1, 16385, 1000),  // absurd
        (7, 16384, 16384), // any non-zero enabled counts
        (1, 1920, 1080),
    ]);
    let found: Vec<_> = info
        .enabled_displays(16)
        .map(|d| (d.scanout_id, d.rect.width))
        .collect();
    assert_eq!(found, [(0, 1024), (4, 16384), (5, 1920)]);
    let limited: Vec<_> = info.enabled_displays(5).map(|d| d.scanout_id).collect();
    assert_eq!(limited, [0, 4]);
    assert_eq!(info.enabled_displays(0).count(), 0);
    assert_eq!(info.enabled_displays(u32::MAX).count(), 3);
    assert_eq!(info.preferred_size(5), Some((1920, 1080)));
    assert_eq!(info.preferred_size(1), None);
    assert_eq!(info.preferred_size(3), None);
    assert_eq!(info.preferred_size(16), None);
    assert_eq!(info.preferred_size(u32::MAX), None);
}
