//! Line-oriented reading from a QEMU unix socket (the runner's serial port and QMP), where
//! every wait has a deadline and keeps checking that QEMU is still alive, so a hung or dead
//! guest turns into an error instead of a stuck test.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often a blocked read wakes up to check the deadline and QEMU.
const POLL: Duration = Duration::from_millis(100);

/// Checks that QEMU is still running; returns why not.
pub(crate) type AliveCheck<'a> = &'a mut dyn FnMut() -> Result<(), String>;

/// A connected unix socket read line by line.
#[derive(Debug)]
pub(crate) struct LineStream {
    stream: UnixStream,
    pending: Vec<u8>,
    name: &'static str,
}

impl LineStream {
    /// Connects to the socket QEMU creates at `path`, retrying until `deadline`.
    pub(crate) fn connect(
        path: &Path,
        name: &'static str,
        deadline: Instant,
        alive: AliveCheck<'_>,
    ) -> Result<Self, String> {
        loop {
            match UnixStream::connect(path) {
                Ok(stream) => {
                    return Ok(Self {
                        stream,
                        pending: Vec::new(),
                        name,
                    })
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "cannot connect to the {name} socket {}: {e}",
                        path.display()
                    ))
                }
                Err(_) => {
                    alive()?;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Sends `line` followed by a newline.
    pub(crate) fn send_line(&mut self, line: &str) -> Result<(), String> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.stream
            .write_all(&bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| format!("writing to the {}: {e}", self.name))
    }

    /// The next line (without `\r\n`), waiting until `deadline`.
    pub(crate) fn read_line(
        &mut self,
        deadline: Instant,
        alive: AliveCheck<'_>,
    ) -> Result<String, String> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                while matches!(line.last(), Some(b'\n' | b'\r')) {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            let now = Instant::now();
            if now >= deadline {
                let partial = String::from_utf8_lossy(&self.pending);
                return Err(format!(
                    "timed out waiting for a line from the {} (partial input: {partial:?})",
                    self.name
                ));
            }
            alive()?;
            let wait = (deadline - now).min(POLL).max(Duration::from_millis(1));
            self.stream
                .set_read_timeout(Some(wait))
                .map_err(|e| format!("{}: {e}", self.name))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(format!("the {} was closed by QEMU", self.name)),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(format!("reading the {}: {e}", self.name)),
            }
        }
    }
}
