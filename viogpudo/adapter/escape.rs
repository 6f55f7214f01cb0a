//! DxgkDdiEscape: a small private protocol for a user-mode resolution agent (the role of
//! virtio-win's vgpusrv), so the guest can follow the host window size.
//!
//! Every request starts with an [`EscapeHeader`]: magic `"VGDO"` ([`ESCAPE_MAGIC`]), the
//! protocol [`ESCAPE_VERSION`], a command, a status the driver fills in, and the size of the
//! whole request. The driver checks magic, version, that `size` equals the buffer the OS
//! passed and that it is at least the command's structure size; anything else is
//! `STATUS_INVALID_PARAMETER` (a malformed request) or `STATUS_NOT_SUPPORTED` (an unknown
//! version or command), and nothing is written. The request buffer is also the reply buffer.
//!
//! Commands:
//! - [`ESCAPE_QUERY_DISPLAYS`] ([`EscapeQueryDisplays`]): per scanout, whether it is
//!   enabled, the host's preferred size, the current source mode and any custom size.
//! - [`ESCAPE_SET_CUSTOM_MODE`] ([`EscapeCustomMode`]): makes `width` x `height` the preferred
//!   mode of one scanout (checked with `modes::check_size`), then reports the child as
//!   unplugged and plugged again so Windows re-reads its modes and switches to it. A size of
//!   0 x 0 removes the custom mode. Only a trusted caller may do this (a LocalSystem service,
//!   see `os::caller_may_configure`); anyone else gets `STATUS_ACCESS_DENIED`, because any
//!   process that can open the adapter can send an escape.
//!
//! The wire structures live in `viogpu_common::escape`, shared with the resolution agent
//! (`viogpu-agent`); this module owns the driver's checks and answers.

use core::sync::atomic::Ordering;

use zerocopy::FromBytes;

use super::{child, dxgk, Adapter, DdiResult, MAX_FRAMEBUFFER_BYTES};
use crate::ddi::*;
use viogpu_common::modes::check_size;

pub use viogpu_common::escape::{
    EscapeCustomMode, EscapeDisplay, EscapeHeader, EscapeQueryDisplays, ESCAPE_MAGIC,
    ESCAPE_MAX_DISPLAYS, ESCAPE_QUERY_DISPLAYS, ESCAPE_SET_CUSTOM_MODE, ESCAPE_VERSION,
};

/// A validated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapeRequest {
    /// Report the displays.
    QueryDisplays,
    /// Set (`Some`) or clear (`None`) the custom mode of a scanout.
    SetCustomMode {
        /// The scanout.
        scanout: u32,
        /// The size.
        size: Option<(u32, u32)>,
    },
}

/// Checks a request buffer (see the module docs for the rules).
pub fn parse_request(buf: &[u8], scanouts: u32) -> DdiResult<EscapeRequest> {
    let (header, _) = EscapeHeader::read_from_prefix(buf).map_err(|_| STATUS_INVALID_PARAMETER)?;
    if header.magic != ESCAPE_MAGIC {
        return Err(STATUS_INVALID_PARAMETER);
    }
    if header.version != ESCAPE_VERSION {
        return Err(STATUS_NOT_SUPPORTED);
    }
    if header.size as usize != buf.len() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    match header.command {
        ESCAPE_QUERY_DISPLAYS => {
            if buf.len() < core::mem::size_of::<EscapeQueryDisplays>() {
                return Err(STATUS_BUFFER_TOO_SMALL);
            }
            Ok(EscapeRequest::QueryDisplays)
        }
        ESCAPE_SET_CUSTOM_MODE => {
            let (req, _) =
                EscapeCustomMode::read_from_prefix(buf).map_err(|_| STATUS_BUFFER_TOO_SMALL)?;
            if req.scanout >= scanouts {
                return Err(STATUS_INVALID_PARAMETER);
            }
            let size = match (req.width, req.height) {
                (0, 0) => None,
                (w, h) => {
                    check_size(w, h, MAX_FRAMEBUFFER_BYTES)
                        .map_err(|_| STATUS_INVALID_PARAMETER)?;
                    Some((w, h))
                }
            };
            Ok(EscapeRequest::SetCustomMode {
                scanout: req.scanout,
                size,
            })
        }
        _ => Err(STATUS_NOT_SUPPORTED),
    }
}

/// Writes the status into the header of a reply buffer.
fn set_status(buf: &mut [u8], status: NTSTATUS) {
    if let Ok((header, _)) = EscapeHeader::mut_from_prefix(buf) {
        header.status = status;
    }
}

impl Adapter {
    /// DxgkDdiEscape over the private data buffer.
    pub fn escape(&self, buf: &mut [u8]) -> DdiResult<()> {
        let request = parse_request(buf, self.num_sources())?;
        match request {
            EscapeRequest::QueryDisplays => {
                self.refresh_displays_if_stale();
                let (reply, _) = EscapeQueryDisplays::mut_from_prefix(buf)
                    .map_err(|_| STATUS_BUFFER_TOO_SMALL)?;
                let state = self.state.lock();
                let mut count = 0u32;
                for ((index, head), slot) in state
                    .heads
                    .iter()
                    .enumerate()
                    .zip(reply.displays.iter_mut())
                {
                    let (pw, ph) = head.display.unwrap_or((0, 0));
                    let (cw, ch) = head.source_mode.unwrap_or((0, 0));
                    let (uw, uh) = head.custom.unwrap_or((0, 0));
                    *slot = EscapeDisplay {
                        scanout: index as u32,
                        connected: u32::from(child::is_connected(index, head)),
                        preferred_width: pw,
                        preferred_height: ph,
                        current_width: cw,
                        current_height: ch,
                        custom_width: uw,
                        custom_height: uh,
                    };
                    count += 1;
                }
                reply.count = count;
                reply.reserved = 0;
                reply.header.status = STATUS_SUCCESS;
                Ok(())
            }
            EscapeRequest::SetCustomMode { scanout, size } => {
                if !crate::os::caller_may_configure() {
                    return Err(STATUS_ACCESS_DENIED);
                }
                let dxgk_if = {
                    let mut guard = self.state.lock();
                    let state = &mut *guard;
                    let head = state
                        .heads
                        .get_mut(scanout as usize)
                        .ok_or(STATUS_INVALID_PARAMETER)?;
                    head.custom = size;
                    head.rebuild_modes();
                    self.update_connected_mask(state);
                    state.dxgk
                };
                set_status(buf, STATUS_SUCCESS);
                // Outside the lock: dxgkrnl may query the child from inside the callback.
                if let Some(dxgk_if) = dxgk_if {
                    let mask = self.connected_mask.load(Ordering::Acquire);
                    dxgk::indicate_connection(&dxgk_if, scanout, false);
                    if mask & (1 << scanout) != 0 {
                        dxgk::indicate_connection(&dxgk_if, scanout, true);
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    fn header(command: u32, size: usize) -> EscapeHeader {
        EscapeHeader::new(command, size)
    }

    fn custom(scanout: u32, width: u32, height: u32) -> alloc::vec::Vec<u8> {
        let req = EscapeCustomMode {
            header: header(
                ESCAPE_SET_CUSTOM_MODE,
                core::mem::size_of::<EscapeCustomMode>(),
            ),
            scanout,
            width,
            height,
            reserved: 0,
        };
        req.as_bytes().to_vec()
    }

    #[test]
    fn custom_mode_requests() {
        assert_eq!(
            parse_request(&custom(1, 2560, 1440), 2),
            Ok(EscapeRequest::SetCustomMode {
                scanout: 1,
                size: Some((2560, 1440))
            })
        );
        assert_eq!(
            parse_request(&custom(0, 0, 0), 1),
            Ok(EscapeRequest::SetCustomMode {
                scanout: 0,
                size: None
            })
        );
        assert_eq!(
            parse_request(&custom(2, 800, 600), 2),
            Err(STATUS_INVALID_PARAMETER)
        );
        assert_eq!(
            parse_request(&custom(0, 320, 200), 1),
            Err(STATUS_INVALID_PARAMETER)
        );
        assert_eq!(
            parse_request(&custom(0, 20000, 600), 1),
            Err(STATUS_INVALID_PARAMETER)
        );
    }

    #[test]
    fn malformed_headers() {
        let good = custom(0, 800, 600);
        let mut bad = good.clone();
        bad[0] ^= 1;
        assert_eq!(parse_request(&bad, 1), Err(STATUS_INVALID_PARAMETER));
        let mut bad = good.clone();
        bad[4] = 2;
        assert_eq!(parse_request(&bad, 1), Err(STATUS_NOT_SUPPORTED));
        let mut bad = good.clone();
        bad[8] = 99;
        assert_eq!(parse_request(&bad, 1), Err(STATUS_NOT_SUPPORTED));
        // Size field disagrees with the buffer.
        assert_eq!(
            parse_request(&good[..good.len() - 4], 1),
            Err(STATUS_INVALID_PARAMETER)
        );
        let mut short = good[..24].to_vec();
        short[12..16].copy_from_slice(&24u32.to_le_bytes());
        assert_eq!(parse_request(&short, 1), Err(STATUS_BUFFER_TOO_SMALL));
        assert_eq!(parse_request(&good[..10], 1), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(parse_request(&[], 1), Err(STATUS_INVALID_PARAMETER));
    }

    #[test]
    fn query_needs_the_whole_reply_buffer() {
        let size = core::mem::size_of::<EscapeQueryDisplays>();
        let mut buf = alloc::vec![0u8; size];
        buf[..24].copy_from_slice(header(ESCAPE_QUERY_DISPLAYS, size).as_bytes());
        assert_eq!(parse_request(&buf, 1), Ok(EscapeRequest::QueryDisplays));
        let mut small = alloc::vec![0u8; 24];
        small.copy_from_slice(header(ESCAPE_QUERY_DISPLAYS, 24).as_bytes());
        assert_eq!(parse_request(&small, 1), Err(STATUS_BUFFER_TOO_SMALL));
    }
}
