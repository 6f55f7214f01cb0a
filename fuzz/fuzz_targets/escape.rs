//! Fuzzes the escape protocol's request check (`viogpudo::adapter::escape::parse_request`),
//! the bytes a user-mode process hands to DxgkDdiEscape, against an independent reading of
//! the rules in the module's documentation.

#![no_main]

use core::mem::size_of;

use libfuzzer_sys::fuzz_target;
use viogpu_common::modes::check_size;
use viogpudo::adapter::escape::{
    parse_request, EscapeCustomMode, EscapeQueryDisplays, EscapeRequest, ESCAPE_MAGIC,
    ESCAPE_MAX_DISPLAYS, ESCAPE_QUERY_DISPLAYS, ESCAPE_SET_CUSTOM_MODE, ESCAPE_VERSION,
};
use viogpudo::adapter::MAX_FRAMEBUFFER_BYTES;
use viogpudo::ddi::{STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED};

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the adapter's scanout count (1..=16); the rest is the request.
    let Some((&count, buf)) = data.split_first() else {
        return;
    };
    let scanouts = u32::from(count) % ESCAPE_MAX_DISPLAYS as u32 + 1;
    let result = parse_request(buf, scanouts);
    assert_eq!(parse_request(buf, scanouts), result, "not deterministic");

    let (Some(magic), Some(version), Some(command), Some(size)) = (
        u32_at(buf, 0),
        u32_at(buf, 4),
        u32_at(buf, 8),
        u32_at(buf, 12),
    ) else {
        // Not even a header (24 bytes: the four words above and two more).
        assert_eq!(result, Err(STATUS_INVALID_PARAMETER));
        return;
    };
    if buf.len() < 24 || magic != ESCAPE_MAGIC {
        assert_eq!(result, Err(STATUS_INVALID_PARAMETER));
        return;
    }
    if version != ESCAPE_VERSION {
        assert_eq!(result, Err(STATUS_NOT_SUPPORTED));
        return;
    }
    if size as usize != buf.len() {
        assert_eq!(result, Err(STATUS_INVALID_PARAMETER));
        return;
    }
    match command {
        ESCAPE_QUERY_DISPLAYS => {
            if buf.len() < size_of::<EscapeQueryDisplays>() {
                assert_eq!(result, Err(STATUS_BUFFER_TOO_SMALL));
            } else {
                assert_eq!(result, Ok(EscapeRequest::QueryDisplays));
            }
        }
        ESCAPE_SET_CUSTOM_MODE => {
            if buf.len() < size_of::<EscapeCustomMode>() {
                assert_eq!(result, Err(STATUS_BUFFER_TOO_SMALL));
                return;
            }
            let (scanout, width, height) = (
                u32_at(buf, 24).unwrap_or(u32::MAX),
                u32_at(buf, 28).unwrap_or(u32::MAX),
                u32_at(buf, 32).unwrap_or(u32::MAX),
            );
            let expected = if scanout >= scanouts {
                Err(STATUS_INVALID_PARAMETER)
            } else if (width, height) == (0, 0) {
                Ok(EscapeRequest::SetCustomMode {
                    scanout,
                    size: None,
                })
            } else if check_size(width, height, MAX_FRAMEBUFFER_BYTES).is_ok() {
                Ok(EscapeRequest::SetCustomMode {
                    scanout,
                    size: Some((width, height)),
                })
            } else {
                Err(STATUS_INVALID_PARAMETER)
            };
            assert_eq!(result, expected);
        }
        _ => assert_eq!(result, Err(STATUS_NOT_SUPPORTED)),
    }
});
