//! The driver's side of the agent: the escape protocol of `viogpu_common::escape`, spoken
//! over any [`EscapeTransport`] (`D3DKMTEscape` on Windows, the simulator's DxgkDdiEscape in
//! the tests), behind the [`Driver`] trait the follower uses.

use viogpu_common::escape::{
    EscapeCustomMode, EscapeHeader, EscapeQueryDisplays, ESCAPE_MAGIC, ESCAPE_MAX_DISPLAYS,
};
use zerocopy::{FromBytes, IntoBytes};

use crate::error::{Error, NtStatus, Result};
use crate::follow::Size;

/// What the driver reports about one display (scanout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostDisplay {
    /// Scanout index (= VidPN source and target id).
    pub scanout: u32,
    /// Whether a monitor is connected.
    pub connected: bool,
    /// The host's preferred size (the VM window), if the device reports one.
    pub preferred: Option<Size>,
    /// The custom size set through the escape, if any.
    pub custom: Option<Size>,
}

/// The driver, as the follower needs it.
pub trait Driver {
    /// Every display the adapter has.
    fn displays(&mut self) -> Result<Vec<HostDisplay>>;
    /// Makes `size` the preferred mode of `scanout` (`None`: remove the custom mode). The
    /// driver re-plugs the monitor so that Windows re-reads its modes.
    fn set_custom_size(&mut self, scanout: u32, size: Option<Size>) -> Result<()>;
}

/// Carries one escape request to the driver and its reply back, in the same buffer.
pub trait EscapeTransport {
    /// Sends `buf` as the private driver data of an escape; `Ok` with the NTSTATUS of the
    /// escape call (the driver's return value), `Err` when it could not be sent at all.
    fn escape(&mut self, buf: &mut [u8]) -> Result<NtStatus>;
}

/// [`Driver`] over an [`EscapeTransport`].
#[derive(Debug)]
pub struct EscapeDriver<T> {
    transport: T,
}

impl<T: EscapeTransport> EscapeDriver<T> {
    /// The driver behind `transport`.
    pub fn new(transport: T) -> Self {
        Self { transport }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, given back.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Sends `buf`; an error status from the call or in the reply header is
    /// [`Error::DriverRefused`].
    fn send(&mut self, buf: &mut [u8]) -> Result<()> {
        let status = self.transport.escape(buf)?;
        if status < 0 {
            return Err(Error::DriverRefused(status));
        }
        let (header, _) = EscapeHeader::read_from_prefix(buf).map_err(|_| Error::BadReply)?;
        if header.magic != ESCAPE_MAGIC || header.size as usize != buf.len() {
            return Err(Error::BadReply);
        }
        if header.status < 0 {
            return Err(Error::DriverRefused(header.status));
        }
        Ok(())
    }
}

/// A size reported as two `u32`s, zero meaning none.
fn size_of_pair(width: u32, height: u32) -> Option<Size> {
    (width != 0 && height != 0).then_some(Size { width, height })
}

impl<T: EscapeTransport> Driver for EscapeDriver<T> {
    fn displays(&mut self) -> Result<Vec<HostDisplay>> {
        let mut request = EscapeQueryDisplays::request();
        self.send(request.as_mut_bytes())?;
        let count = request.count as usize;
        if count > ESCAPE_MAX_DISPLAYS {
            return Err(Error::BadReply);
        }
        Ok(request
            .displays
            .iter()
            .take(count)
            .map(|d| HostDisplay {
                scanout: d.scanout,
                connected: d.connected != 0,
                preferred: size_of_pair(d.preferred_width, d.preferred_height),
                custom: size_of_pair(d.custom_width, d.custom_height),
            })
            .collect())
    }

    fn set_custom_size(&mut self, scanout: u32, size: Option<Size>) -> Result<()> {
        let (width, height) = size.map_or((0, 0), |s| (s.width, s.height));
        let mut request = EscapeCustomMode::request(scanout, width, height);
        self.send(request.as_mut_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use viogpu_common::escape::{EscapeDisplay, ESCAPE_QUERY_DISPLAYS};

    /// A transport answering with a fixed call status and a reply editor.
    struct Scripted<F: FnMut(&mut [u8])> {
        status: NtStatus,
        reply: F,
    }

    impl<F: FnMut(&mut [u8])> EscapeTransport for Scripted<F> {
        fn escape(&mut self, buf: &mut [u8]) -> Result<NtStatus> {
            (self.reply)(buf);
            Ok(self.status)
        }
    }

    fn answer_two_displays(buf: &mut [u8]) {
        let (reply, _) = EscapeQueryDisplays::mut_from_prefix(buf).unwrap();
        assert_eq!(reply.header.command, ESCAPE_QUERY_DISPLAYS);
        reply.count = 2;
        reply.displays[0] = EscapeDisplay {
            scanout: 0,
            connected: 1,
            preferred_width: 1920,
            preferred_height: 1080,
            ..Default::default()
        };
        reply.displays[1] = EscapeDisplay {
            scanout: 1,
            custom_width: 800,
            custom_height: 600,
            ..Default::default()
        };
    }

    #[test]
    fn a_query_reply_becomes_host_displays() {
        let mut driver = EscapeDriver::new(Scripted {
            status: 0,
            reply: answer_two_displays,
        });
        let displays = driver.displays().unwrap();
        assert_eq!(
            displays,
            [
                HostDisplay {
                    scanout: 0,
                    connected: true,
                    preferred: Some(Size::new(1920, 1080)),
                    custom: None,
                },
                HostDisplay {
                    scanout: 1,
                    connected: false,
                    preferred: None,
                    custom: Some(Size::new(800, 600)),
                },
            ]
        );
    }

    #[test]
    fn error_statuses_and_broken_replies_are_errors() {
        const DENIED: NtStatus = 0xC000_0022_u32 as i32;
        let mut call_fails = EscapeDriver::new(Scripted {
            status: DENIED,
            reply: |_: &mut [u8]| {},
        });
        assert_eq!(
            call_fails.set_custom_size(0, Some(Size::new(1024, 768))),
            Err(Error::DriverRefused(DENIED))
        );
        let mut header_fails = EscapeDriver::new(Scripted {
            status: 0,
            reply: |buf: &mut [u8]| buf[16..20].copy_from_slice(&DENIED.to_le_bytes()),
        });
        assert_eq!(header_fails.displays(), Err(Error::DriverRefused(DENIED)));
        let mut wrong_magic = EscapeDriver::new(Scripted {
            status: 0,
            reply: |buf: &mut [u8]| buf[0] = 0,
        });
        assert_eq!(wrong_magic.displays(), Err(Error::BadReply));
        let mut too_many = EscapeDriver::new(Scripted {
            status: 0,
            reply: |buf: &mut [u8]| buf[24..28].copy_from_slice(&17u32.to_le_bytes()),
        });
        assert_eq!(too_many.displays(), Err(Error::BadReply));
    }

    #[test]
    fn a_custom_size_request_carries_the_size() {
        let mut seen = Vec::new();
        {
            let mut driver = EscapeDriver::new(Scripted {
                status: 0,
                reply: |buf: &mut [u8]| seen.push(EscapeCustomMode::read_from_bytes(buf).unwrap()),
            });
            driver
                .set_custom_size(1, Some(Size::new(1366, 700)))
                .unwrap();
            driver.set_custom_size(0, None).unwrap();
        }
        assert_eq!(
            seen,
            [
                EscapeCustomMode::request(1, 1366, 700),
                EscapeCustomMode::request(0, 0, 0)
            ]
        );
    }
}
