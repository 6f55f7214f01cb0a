//! When Linux's virtio_gpu driver is done: its own tracepoints, read from tracefs.
//!
//! DIRTYFB and SETCRTC return once the commands are queued, before the device has them, so
//! the baseline is timed to the driver's `virtio_gpu_cmd_response` tracepoint of the last
//! control-queue request (the driver's dequeue worker, after the device's interrupt): the
//! same end point as the guest runner's, which waits until the device has given back every
//! request. The trace clock is set to `mono`, so trace timestamps compare with
//! `CLOCK_MONOTONIC`. A kprobe on `virtio_gpu_cmd_transfer_to_host_2d` records each
//! transfer's rectangle, for the bytes per update.

use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

const TRACEFS: &str = "/sys/kernel/tracing";
/// `VIRTIO_GPU_CMD_RESOURCE_FLUSH`: the last request of every update.
const CMD_RESOURCE_FLUSH: u32 = 0x0104;
/// Longest wait for the driver's responses (an 8K transfer under TCG takes well under a
/// second; this only bounds a hung device).
const TIMEOUT: Duration = Duration::from_secs(20);

fn write(file: &str, text: &str) -> io::Result<()> {
    std::fs::write(format!("{TRACEFS}/{file}"), text)
        .map_err(|e| io::Error::new(e.kind(), format!("{TRACEFS}/{file}: {e}")))
}

/// `CLOCK_MONOTONIC` in seconds, the trace clock's `mono`.
pub fn now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, exclusively borrowed timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// What the driver did for one update, from its trace.
#[derive(Debug, Default, Clone, Copy)]
pub struct Update {
    /// Trace time of the last control-queue response.
    pub done: f64,
    /// `TRANSFER_TO_HOST_2D` requests.
    pub transfers: u64,
    /// Pixel bytes they cover (4 bytes a pixel).
    pub bytes: u64,
}

/// The tracefs session: events enabled, `trace_pipe` open.
pub struct DriverTrace {
    pipe: File,
    pending: String,
    /// Whether the transfer kprobe could be placed (else bytes are unknown).
    pub kprobe: bool,
}

impl DriverTrace {
    /// Enables the tracepoints and the kprobe (tracefs must be mounted at `TRACEFS`).
    pub fn start() -> io::Result<Self> {
        write("tracing_on", "0")?;
        write("trace_clock", "mono")?;
        write("buffer_size_kb", "4096")?;
        write("trace", "")?;
        let kprobe = write(
            "kprobe_events",
            "p:viogpu/xfer virtio_gpu_cmd_transfer_to_host_2d width=%dx:u32 height=%cx:u32\n",
        )
        .and_then(|()| write("events/viogpu/xfer/enable", "1"))
        .is_ok();
        write("events/virtio_gpu/virtio_gpu_cmd_queue/enable", "1")?;
        write("events/virtio_gpu/virtio_gpu_cmd_response/enable", "1")?;
        write("tracing_on", "1")?;
        let pipe = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(format!("{TRACEFS}/trace_pipe"))?;
        Ok(Self {
            pipe,
            pending: String::new(),
            kprobe,
        })
    }

    /// Reads what the trace holds now; returns whole lines.
    fn read_lines(&mut self) -> io::Result<Vec<String>> {
        let mut buf = [0u8; 16384];
        loop {
            match self.pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.pending.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let Some(end) = self.pending.rfind('\n') else {
            return Ok(Vec::new());
        };
        let rest = self.pending.split_off(end + 1);
        let lines = std::mem::replace(&mut self.pending, rest);
        Ok(lines.lines().map(str::to_string).collect())
    }

    /// Drops everything traced so far (before an update starts).
    pub fn drain(&mut self) -> io::Result<()> {
        self.read_lines().map(|_| ())
    }

    /// Waits until the driver has queued a RESOURCE_FLUSH and has a response for every
    /// control request it queued since the last [`Self::drain`] (QEMU answers the control
    /// queue in order, so the last response is the flush's or a later request's).
    pub fn wait_update(&mut self) -> io::Result<Update> {
        let deadline = Instant::now() + TIMEOUT;
        let (mut queued, mut answered, mut flushed) = (0u64, 0u64, false);
        let mut update = Update::default();
        let mut sample = Vec::new();
        loop {
            for line in self.read_lines()? {
                if sample.len() < 6 {
                    sample.push(line.clone());
                }
                match Event::parse(&line) {
                    Some(Event::Queued {
                        control: true,
                        kind,
                    }) => {
                        queued += 1;
                        flushed |= kind == CMD_RESOURCE_FLUSH;
                    }
                    Some(Event::Answered { control: true, at }) => {
                        answered += 1;
                        update.done = at;
                    }
                    Some(Event::Transfer { width, height }) => {
                        update.transfers += 1;
                        update.bytes += u64::from(width) * u64::from(height) * 4;
                    }
                    _ => {}
                }
            }
            if flushed && answered >= queued {
                return Ok(update);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "the driver has {answered} of {queued} responses (flush seen: {flushed}) after {TIMEOUT:?}; trace: {}",
                    sample.join(" | ")
                )));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// One line of the trace.
#[derive(Debug, PartialEq)]
enum Event {
    /// A request queued, with its command type.
    Queued {
        control: bool,
        kind: u32,
    },
    /// A response taken back (its type is the response's, not the request's).
    Answered {
        control: bool,
        at: f64,
    },
    Transfer {
        width: u32,
        height: u32,
    },
}

impl Event {
    /// `  task-pid  [cpu] flags  TIMESTAMP: EVENT: key=value ...`
    fn parse(line: &str) -> Option<Self> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| {
            matches!(
                *w,
                "virtio_gpu_cmd_queue:" | "virtio_gpu_cmd_response:" | "xfer:"
            )
        })?;
        let time: f64 = words
            .get(at.checked_sub(1)?)?
            .trim_end_matches(':')
            .parse()
            .ok()?;
        let field = |key: &str| {
            words[at..]
                .iter()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        };
        let control = field("name") == Some("control");
        match words[at] {
            "virtio_gpu_cmd_queue:" => Some(Self::Queued {
                control,
                kind: u32::from_str_radix(field("type")?.trim_start_matches("0x"), 16).ok()?,
            }),
            "virtio_gpu_cmd_response:" => Some(Self::Answered { control, at: time }),
            _ => Some(Self::Transfer {
                width: field("width")?.parse().ok()?,
                height: field("height")?.parse().ok()?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_events() {
        let queued = "  viogpu-linux-dr-60  [000] ..... 12.345678: virtio_gpu_cmd_queue: vdev=0 vq=0 name=control type=0x105 flags=0x0 fence_id=0 ctx_id=0 num_free=1000 seqno=7";
        assert_eq!(
            Event::parse(queued),
            Some(Event::Queued {
                control: true,
                kind: 0x105
            })
        );
        let answered = "   kworker/0:1-27  [000] d..1. 12.350001: virtio_gpu_cmd_response: vdev=0 vq=0 name=control type=0x1100 flags=0x0 fence_id=0 ctx_id=0 num_free=1024 seqno=8";
        assert_eq!(
            Event::parse(answered),
            Some(Event::Answered {
                control: true,
                at: 12.350001
            })
        );
        let xfer = " prog-60 [000] ..... 12.3: xfer: (virtio_gpu_cmd_transfer_to_host_2d+0x0/0xf0 [virtio_gpu]) width=64 height=32";
        assert_eq!(
            Event::parse(xfer),
            Some(Event::Transfer {
                width: 64,
                height: 32
            })
        );
        assert_eq!(Event::parse("# tracer: nop"), None);
    }
}
