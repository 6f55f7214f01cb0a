//! The baseline of `scripts/bench-e2e`: the same work as the guest runner, done by Linux's
//! own virtio_gpu DRM driver (the guest kernel's module, loaded by the benchmark's `/init`)
//! through the plain KMS interface a compositor uses — a dumb buffer as the scanout, SETCRTC
//! for a mode, DIRTYFB with clips for an update — so the benchmark compares the driver with
//! the best virtio-gpu driver there is, on the same QEMU device.
//!
//! It answers a subset of the guest runner's line protocol (see `main.rs` of the runner) on a
//! serial port, printing `READY viogpu-linux-drm` first. Like the runner it keeps a desktop
//! in system memory and copies what changed into the scanout buffer, so "copy + transfer +
//! flush" is the same work on both sides:
//!
//! | command                 | answer |
//! |-------------------------|--------|
//! | `ping`                  | `OK pong` |
//! | `info`                  | `OK driver=linux-virtio_gpu crtc=N connector=N modes=N kprobe=0|1` |
//! | `mode 0 W H RRGGBB`     | `OK WxH custom=0 ms=.. transfers=N bytes=B`: a new dumb buffer, the desktop filled with the color copied into it, SETCRTC, the old buffer removed |
//! | `present 0 x0 y0 x1 y1 RRGGBB ...` | `OK rects=N transfers=N bytes=B ms=..`: each rect filled in the desktop, copied into the scanout buffer, one DIRTYFB with those clips |
//!
//! `ms=` runs from before the copy to the driver's response tracepoint of its last
//! control request (see `trace.rs`); filling the desktop is not timed, as in the runner.
//! `transfers=`/`bytes=` come from a kprobe on the driver's transfer function.
//!
//! Usage: `viogpu-linux-drm --serial /dev/ttyS1` (tracefs mounted at /sys/kernel/tracing).

#[cfg(target_os = "linux")]
mod drm;
#[cfg(target_os = "linux")]
mod trace;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    app::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("viogpu-linux-drm only runs in the Linux QEMU guest");
}

#[cfg(target_os = "linux")]
mod app {
    use std::fs::OpenOptions;
    use std::io::{self, BufRead, BufReader, Write};
    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    use viogpu_guest_runner::scene;

    use crate::drm::{Card, ClipRect, Framebuffer};
    use crate::trace::{now, DriverTrace, Update};

    const CARD: &str = "/dev/dri/card0";
    /// How long to wait for the card after the modules were loaded.
    const CARD_TIMEOUT: Duration = Duration::from_secs(30);

    type Outcome<T> = Result<T, String>;
    /// `x0 y0 x1 y1`, exclusive ends.
    type Area = (u32, u32, u32, u32);

    /// The card, the scanout buffer, the desktop it shows.
    struct Baseline {
        card: Card,
        trace: DriverTrace,
        fb: Option<Framebuffer>,
        /// B8G8R8A8 (= XRGB8888 in memory), `width * 4` bytes a row.
        desktop: Vec<u8>,
        width: u32,
        height: u32,
    }

    fn number<T: std::str::FromStr>(word: &str, what: &str) -> Outcome<T> {
        word.parse()
            .map_err(|_| format!("bad {what} {word:?} (a decimal number)"))
    }

    fn color(word: &str) -> Outcome<u32> {
        scene::parse_color(word).ok_or_else(|| format!("bad color {word:?} (RRGGBB hex)"))
    }

    fn answer(update: &Update, started: f64) -> String {
        format!(
            "transfers={} bytes={} ms={:.3}",
            update.transfers,
            update.bytes,
            (update.done - started) * 1000.0
        )
    }

    impl Baseline {
        fn open() -> Outcome<Self> {
            let deadline = Instant::now() + CARD_TIMEOUT;
            while !std::path::Path::new(CARD).exists() {
                if Instant::now() >= deadline {
                    return Err(format!("{CARD} did not appear (virtio_gpu not bound?)"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let card = Card::open(CARD).map_err(|e| format!("{CARD}: {e}"))?;
            let trace = DriverTrace::start().map_err(|e| format!("tracefs: {e}"))?;
            Ok(Self {
                card,
                trace,
                fb: None,
                desktop: Vec::new(),
                width: 0,
                height: 0,
            })
        }

        /// Copies `rect` (checked) of the desktop into the scanout buffer.
        fn copy(&mut self, (x0, y0, x1, y1): Area) -> Outcome<()> {
            let fb = self.fb.as_mut().ok_or("no mode set")?;
            let pitch = fb.pitch as usize;
            let row = (x1 - x0) as usize * 4;
            let src_pitch = self.width as usize * 4;
            let dst = fb.pixels();
            for y in y0 as usize..y1 as usize {
                let s = y * src_pitch + x0 as usize * 4;
                let d = y * pitch + x0 as usize * 4;
                dst[d..d + row].copy_from_slice(&self.desktop[s..s + row]);
            }
            Ok(())
        }

        fn mode(&mut self, width: u32, height: u32, fill: u32) -> Outcome<String> {
            let (w16, h16) = match (u16::try_from(width), u16::try_from(height)) {
                (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
                _ => return Err(format!("bad size {width}x{height}")),
            };
            self.desktop = scene::bgra(fill).repeat(width as usize * height as usize);
            self.trace.drain().map_err(|e| e.to_string())?;
            let started = now();
            let fb = self
                .card
                .framebuffer(width, height)
                .map_err(|e| e.to_string())?;
            let old = self.fb.replace(fb);
            (self.width, self.height) = (width, height);
            self.copy((0, 0, width, height))?;
            let mode = self.card.mode(w16, h16);
            let fb = self.fb.as_ref().ok_or("no framebuffer")?;
            self.card.set_crtc(fb, mode).map_err(|e| e.to_string())?;
            drop(old);
            let update = self.trace.wait_update().map_err(|e| e.to_string())?;
            Ok(format!(
                "{width}x{height} custom=0 {}",
                answer(&update, started)
            ))
        }

        fn present(&mut self, fills: &[(Area, u32)]) -> Outcome<String> {
            for &((x0, y0, x1, y1), _) in fills {
                if x0 >= x1 || y0 >= y1 || x1 > self.width || y1 > self.height {
                    return Err(format!(
                        "rect {x0} {y0} {x1} {y1} on a {}x{} desktop",
                        self.width, self.height
                    ));
                }
            }
            for &((x0, y0, x1, y1), c) in fills {
                let pixel = scene::bgra(c);
                for y in y0..y1 {
                    let at = (y * self.width + x0) as usize * 4;
                    let end = (y * self.width + x1) as usize * 4;
                    for px in self.desktop[at..end].chunks_exact_mut(4) {
                        px.copy_from_slice(&pixel);
                    }
                }
            }
            let clips: Vec<ClipRect> = fills
                .iter()
                .map(|&((x0, y0, x1, y1), _)| ClipRect {
                    x1: x0 as u16,
                    y1: y0 as u16,
                    x2: x1 as u16,
                    y2: y1 as u16,
                })
                .collect();
            self.trace.drain().map_err(|e| e.to_string())?;
            let started = now();
            for &(rect, _) in fills {
                self.copy(rect)?;
            }
            let fb = self.fb.as_ref().ok_or("no mode set")?;
            self.card.dirty(fb, &clips).map_err(|e| e.to_string())?;
            let update = self.trace.wait_update().map_err(|e| e.to_string())?;
            Ok(format!(
                "rects={} {}",
                fills.len(),
                answer(&update, started)
            ))
        }

        fn run(&mut self, line: &str) -> Outcome<String> {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["ping"] => Ok("pong".into()),
                ["info"] => Ok(format!(
                    "driver=linux-virtio_gpu crtc={} connector={} modes={} kprobe={}",
                    self.card.crtc,
                    self.card.connector,
                    self.card.modes.len(),
                    u8::from(self.trace.kprobe)
                )),
                ["mode", "0", w, h, c] => {
                    self.mode(number(w, "width")?, number(h, "height")?, color(c)?)
                }
                ["present", "0", rest @ ..] if !rest.is_empty() && rest.len() % 5 == 0 => {
                    let fills = rest
                        .chunks_exact(5)
                        .map(|w| {
                            Ok((
                                (
                                    number(w[0], "x0")?,
                                    number(w[1], "y0")?,
                                    number(w[2], "x1")?,
                                    number(w[3], "y1")?,
                                ),
                                color(w[4])?,
                            ))
                        })
                        .collect::<Outcome<Vec<_>>>()?;
                    self.present(&fills)
                }
                _ => Err(format!("unknown command or wrong arguments: {line:?}")),
            }
        }
    }

    pub fn main() -> ExitCode {
        let mut args = std::env::args().skip(1);
        let serial = match (args.next().as_deref(), args.next()) {
            (Some("--serial"), Some(path)) => path,
            _ => {
                eprintln!("usage: viogpu-linux-drm --serial PATH");
                return ExitCode::from(2);
            }
        };
        let port = match OpenOptions::new().read(true).write(true).open(&serial) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("viogpu-linux-drm: {serial}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let Ok(mut output) = port.try_clone() else {
            return ExitCode::FAILURE;
        };
        let mut state = Baseline::open().map_err(|e| format!("setup failed: {e}"));
        if let Err(e) = &state {
            eprintln!("viogpu-linux-drm: {e}");
        }
        let mut reply = |text: String| -> io::Result<()> {
            output.write_all(text.replace(['\r', '\n'], " ").as_bytes())?;
            output.write_all(b"\n")?;
            output.flush()
        };
        if reply("READY viogpu-linux-drm".into()).is_err() {
            return ExitCode::FAILURE;
        }
        for line in BufReader::new(port).lines() {
            let Ok(line) = line else { break };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let text = match &mut state {
                Ok(baseline) => match baseline.run(line) {
                    Ok(t) => format!("OK {t}"),
                    Err(e) => format!("ERR {e}"),
                },
                Err(e) => format!("ERR {e}"),
            };
            if reply(text).is_err() {
                break;
            }
        }
        ExitCode::SUCCESS
    }
}
