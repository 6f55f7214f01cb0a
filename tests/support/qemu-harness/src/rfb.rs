//! A tiny RFB (VNC) client: just enough of RFC 6143 and the ExtendedDesktopSize extension to
//! ask QEMU's VNC server for a new desktop size, the way a VNC viewer does when its window
//! is resized. QEMU forwards the request to the display device as a UI size change
//! (`dpy_set_ui_info`), which virtio-gpu reports to the guest as a display event with the new
//! preferred size: a host window resize without a GUI.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{HarnessError, Result};

/// The ExtendedDesktopSize pseudo-encoding.
const EXTENDED_DESKTOP_SIZE: i32 = -308;
/// The DesktopSize pseudo-encoding.
const DESKTOP_SIZE: i32 = -223;
/// Client message: SetEncodings.
const SET_ENCODINGS: u8 = 2;
/// Client message: SetDesktopSize.
const SET_DESKTOP_SIZE: u8 = 251;
/// Server message: FramebufferUpdate.
const FRAMEBUFFER_UPDATE: u8 = 0;
/// ExtendedDesktopSize `x` of an answer to this client's own request.
const REASON_THIS_CLIENT: u16 = 1;

fn error(what: impl std::fmt::Display) -> HarnessError {
    HarnessError::new(format!("VNC: {what}"))
}

/// A connected, initialised RFB session.
#[derive(Debug)]
pub struct RfbClient {
    stream: UnixStream,
    /// The desktop size the server announced at the start.
    pub initial_size: (u16, u16),
}

impl RfbClient {
    /// Connects to QEMU's VNC server on the unix socket `path` (retrying until `timeout`,
    /// while QEMU starts), does the version and security handshake (security type None) and
    /// the initialisation, and announces the desktop-size pseudo-encodings.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(error(format!("connecting to {}: {e}", path.display())))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.set_read_timeout(Some(timeout)).map_err(error)?;
        let mut client = Self {
            stream,
            initial_size: (0, 0),
        };
        let mut version = [0u8; 12];
        client.read(&mut version)?;
        if !version.starts_with(b"RFB 003.") {
            return Err(error(format!("not an RFB server: {version:?}")));
        }
        client.write(b"RFB 003.008\n")?;
        let count = client.u8()?;
        let mut types = vec![0u8; count as usize];
        client.read(&mut types)?;
        if !types.contains(&1) {
            return Err(error(format!("no security type None offered: {types:?}")));
        }
        client.write(&[1])?;
        let result = client.u32()?;
        if result != 0 {
            return Err(error(format!("security handshake failed ({result})")));
        }
        // ClientInit: shared.
        client.write(&[1])?;
        let width = client.u16()?;
        let height = client.u16()?;
        let mut pixel_format = [0u8; 16];
        client.read(&mut pixel_format)?;
        let name_length = client.u32()?;
        let mut name = vec![0u8; name_length.min(4096) as usize];
        client.read(&mut name)?;
        client.initial_size = (width, height);
        let mut set_encodings = vec![SET_ENCODINGS, 0, 0, 2];
        for encoding in [EXTENDED_DESKTOP_SIZE, DESKTOP_SIZE] {
            set_encodings.extend_from_slice(&encoding.to_be_bytes());
        }
        client.write(&set_encodings)?;
        Ok(client)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<()> {
        self.stream.read_exact(buf).map_err(error)
    }

    fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.stream.write_all(buf).map_err(error)
    }

    fn u8(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read(&mut b)?;
        Ok(b[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let mut b = [0u8; 2];
        self.read(&mut b)?;
        Ok(u16::from_be_bytes(b))
    }

    fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    /// Asks for a `width` x `height` desktop (one screen) and waits for the server's answer
    /// to this request: its ExtendedDesktopSize status (0: done, 4 in QEMU: forwarded to
    /// the display device; 3: the device cannot be resized).
    pub fn set_desktop_size(&mut self, width: u16, height: u16) -> Result<u16> {
        let mut message = vec![SET_DESKTOP_SIZE, 0];
        message.extend_from_slice(&width.to_be_bytes());
        message.extend_from_slice(&height.to_be_bytes());
        message.extend_from_slice(&[1, 0]);
        // Screen 0 at (0, 0), flags 0.
        message.extend_from_slice(&0u32.to_be_bytes());
        message.extend_from_slice(&[0, 0, 0, 0]);
        message.extend_from_slice(&width.to_be_bytes());
        message.extend_from_slice(&height.to_be_bytes());
        message.extend_from_slice(&0u32.to_be_bytes());
        self.write(&message)?;
        // Only pseudo-rects come (no framebuffer update was requested): skip the server's own
        // size announcements until the answer to this client's request.
        loop {
            let kind = self.u8()?;
            if kind != FRAMEBUFFER_UPDATE {
                return Err(error(format!("unexpected server message {kind}")));
            }
            let _padding = self.u8()?;
            let rects = self.u16()?;
            let mut answer = None;
            for _ in 0..rects {
                let x = self.u16()?;
                let y = self.u16()?;
                let _w = self.u16()?;
                let _h = self.u16()?;
                let encoding = self.u32()? as i32;
                match encoding {
                    EXTENDED_DESKTOP_SIZE => {
                        let screens = self.u8()?;
                        let mut rest = vec![0u8; 3 + 16 * screens as usize];
                        self.read(&mut rest)?;
                        if x == REASON_THIS_CLIENT {
                            answer = Some(y);
                        }
                    }
                    DESKTOP_SIZE => {}
                    other => {
                        return Err(error(format!("unexpected rect encoding {other}")));
                    }
                }
            }
            if let Some(status) = answer {
                return Ok(status);
            }
        }
    }
}
