//! The side-by-side benchmark behind `scripts/bench-e2e`: the driver in the guest runner
//! against Linux's own virtio_gpu DRM driver (`viogpu-linux-drm` on the kernel's module), in
//! two QEMU guests started with the same QEMU, kernel, machine and device options. The same
//! work runs on both, alternating between them (the order flips every repetition), and the
//! benchmark prints each work item's median on both sides, the ratio ours/Linux of the
//! medians, and the median of the repetitions' ratios (each pair ran back to back, under the
//! same load of the machine).
//!
//! Two clocks, each the same for both sides:
//! - **guest**: the `ms=` of the answers, from before the copy into the scanout memory until
//!   the driver has the device's last response (ours: the runner sees every request given
//!   back; Linux: the driver's `virtio_gpu_cmd_response` tracepoint, trace clock `mono`).
//! - **device**: QEMU's own trace events with host timestamps (`-msg timestamp=on`): the time
//!   QEMU spends in each command of the update (its `virtio_gpu_cmd_*` event to the used-ring
//!   flush of its response), summed, and of it in `TRANSFER_TO_HOST_2D` and `RESOURCE_FLUSH`.
//!   This is the device work without the guest's copy.
//!
//! At the end both screens must show the last mode's color on every pixel (QMP screendump),
//! or the run fails: the two sides did the same work.
//!
//! With `--blob` both guests get `virtio-gpu-pci,blob=true` (QEMU with the udmabuf stand-in,
//! see `GuestConfig::blob`), a third guest runs Linux on the plain device as the baseline of
//! a "Linux blob / Linux 2D" table, and before the timed work the Linux guest on the blob
//! device is checked: its scanouts must be blob resources (QEMU's `RESOURCE_CREATE_BLOB` and
//! `SET_SCANOUT_BLOB`, no `RESOURCE_CREATE_2D`) and QMP screendump must show the right pixels
//! after a mode set, after DIRTYFB updates, and after a change to 3840x2160 (a buffer of many
//! udmabuf ranges), with udmabuf's default limits. Each side's path (blob or 2D) is printed,
//! from QEMU's trace.
//!
//! Usage: `viogpu-bench-e2e [--reps N] [--blob]`; `VIOGPU_BENCH_TRACE=1` prints each command's QEMU
//! trace lines to stderr. Prerequisites: `scripts/bench-e2e` (setup-e2e and the
//! kernel's GPU modules).

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    match bench::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("viogpu-bench-e2e: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(unix))]
fn main() {
    eprintln!("viogpu-bench-e2e needs QEMU on a unix host");
}

#[cfg(unix)]
mod bench {
    use std::collections::BTreeMap;
    use std::process::Command;

    use qemu_harness::artifacts::qemu_binary;
    use qemu_harness::{
        Guest, GuestConfig, GuestProgram, HarnessError, Result, RgbImage, UdmabufLimits,
    };

    /// Repetitions of each work item on each side unless `--reps` says otherwise.
    const DEFAULT_REPS: usize = 15;
    /// The device both guests get: a 1920x1080 head, as the e2e tests' large-mode scenario
    /// (QEMU's default `max_hostmem` of 256 MiB holds a 7680x4320 resource).
    const XRES: u32 = 1920;
    const YRES: u32 = 1080;
    /// QEMU trace events the device clock reads.
    const TRACE_EVENTS: &[&str] = &[
        "virtio_queue_notify",
        "virtqueue_flush",
        "virtio_gpu_cmd_res_xfer_toh_2d",
        "virtio_gpu_cmd_res_flush",
        "virtio_gpu_cmd_set_scanout",
        "virtio_gpu_cmd_res_create_2d",
        "virtio_gpu_cmd_res_back_attach",
        "virtio_gpu_cmd_res_back_detach",
        "virtio_gpu_cmd_res_unref",
        "virtio_gpu_cmd_res_create_blob",
        "virtio_gpu_cmd_set_scanout_blob",
    ];
    /// The udmabuf limits of the timed blob guests: the 7680x4320 mode's 127 MiB buffer is
    /// past the kernel's default 64 MiB (QEMU would leave it without a host mapping), so
    /// raised as a host serving such modes would (`size_limit_mb`, `list_limit` up to QEMU's
    /// own 16384 entries).
    const BENCH_UDMABUF_LIMITS: UdmabufLimits = UdmabufLimits {
        list: 16384,
        size_mb: 256,
    };

    /// One work item: the command (`{c}` is replaced by a color that changes every
    /// repetition), and what to send first, untimed.
    struct Work {
        name: &'static str,
        setup: Option<&'static str>,
        command: &'static str,
    }

    const WORK: &[Work] = &[
        Work {
            name: "1920x1080 full frame, copy + transfer + flush",
            setup: None,
            command: "present 0 0 0 1920 1080 {c}",
        },
        Work {
            name: "one 64x64 dirty rect",
            setup: None,
            command: "present 0 900 500 964 564 {c}",
        },
        Work {
            name: "mode change to 7680x4320",
            setup: None,
            command: "mode 0 7680 4320 {c}",
        },
        Work {
            name: "7680x4320 full frame with copy",
            setup: None,
            command: "present 0 0 0 7680 4320 {c}",
        },
        Work {
            name: "mode change back to 1920x1080",
            setup: None,
            command: "mode 0 1920 1080 {c}",
        },
    ];

    /// What one run of a work item measured on one side.
    #[derive(Debug, Clone, Copy, Default)]
    struct Sample {
        guest_ms: f64,
        transfers: u64,
        bytes: u64,
        /// Time QEMU spent in the update's commands (each command's trace event to the
        /// used-ring flush of its response), host clock: the device work without the guest's.
        busy_ms: f64,
        /// Time QEMU spent in the transfers.
        transfer_ms: f64,
        /// Time QEMU spent in RESOURCE_FLUSH.
        flush_ms: f64,
    }

    /// One QEMU trace line: `PID@SECONDS.MICROS:EVENT args`.
    struct TraceLine<'a> {
        at: f64,
        event: &'a str,
        args: &'a str,
    }

    fn parse_trace(line: &str) -> Option<TraceLine<'_>> {
        let (_, rest) = line.split_once('@')?;
        let (time, rest) = rest.split_once(':')?;
        let (event, args) = rest.split_once(' ').unwrap_or((rest, ""));
        Some(TraceLine {
            at: time.parse().ok()?,
            event,
            args,
        })
    }

    /// The value after `key` in QEMU's `key value` trace arguments.
    fn arg<'a>(args: &'a str, key: &str) -> Option<&'a str> {
        let words: Vec<&str> = args.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1).copied())
    }

    /// A guest under test and where its QEMU log was read up to.
    struct Side {
        name: &'static str,
        guest: Guest,
        log_read: usize,
        /// The control queue's `vq` pointer (QEMU's `virtio_queue_notify` with `n 0`).
        control_vq: Option<String>,
        /// The device has `blob=true`.
        blob_device: bool,
        /// Resource creations and scanout commands seen in QEMU's trace, by event name.
        path_events: BTreeMap<&'static str, u64>,
    }

    /// False for a `SET_SCANOUT` of resource 0 (a head switched off, which both paths
    /// send): it tells nothing about the path.
    fn shows_path(line: &TraceLine<'_>) -> bool {
        !(line.event == "virtio_gpu_cmd_set_scanout" && arg(line.args, "res") == Some("0x0,"))
    }

    /// The trace events that tell which path a side took.
    const PATH_EVENTS: &[&str] = &[
        "virtio_gpu_cmd_res_create_blob",
        "virtio_gpu_cmd_set_scanout_blob",
        "virtio_gpu_cmd_res_create_2d",
        "virtio_gpu_cmd_set_scanout",
    ];

    fn field(answer: &str, key: &str) -> Result<String> {
        answer
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
            .ok_or_else(|| HarnessError::new(format!("no {key}= in {answer:?}")))
    }

    fn number<T: std::str::FromStr>(answer: &str, key: &str) -> Result<T> {
        let text = field(answer, key)?;
        text.parse()
            .map_err(|_| HarnessError::new(format!("bad {key}={text} in {answer:?}")))
    }

    impl Side {
        fn boot(name: &'static str, program: GuestProgram, blob: bool) -> Result<Self> {
            let guest = Guest::boot(GuestConfig {
                xres: Some(XRES),
                yres: Some(YRES),
                trace_events: TRACE_EVENTS.iter().map(|e| e.to_string()).collect(),
                trace_timestamps: true,
                program,
                blob,
                udmabuf_limits: blob.then_some(BENCH_UDMABUF_LIMITS),
                ..GuestConfig::default()
            })?;
            let log_read = guest.qemu_log().len();
            Ok(Self {
                name,
                guest,
                log_read,
                control_vq: None,
                blob_device: blob,
                path_events: BTreeMap::new(),
            })
        }

        /// Which path the side's commands took, from QEMU's trace.
        fn path(&self) -> String {
            let n = |e: &str| self.path_events.get(e).copied().unwrap_or(0);
            let blob = n("virtio_gpu_cmd_res_create_blob") + n("virtio_gpu_cmd_set_scanout_blob");
            let two_d = n("virtio_gpu_cmd_res_create_2d") + n("virtio_gpu_cmd_set_scanout");
            let kind = match (blob > 0, two_d > 0) {
                (true, false) => "blob",
                (false, true) => "2D",
                (true, true) => "blob and 2D",
                (false, false) => "none seen",
            };
            format!(
                "{kind} on a {} device (QEMU: {} RESOURCE_CREATE_BLOB, {} SET_SCANOUT_BLOB, {} RESOURCE_CREATE_2D, {} SET_SCANOUT)",
                if self.blob_device { "blob=true" } else { "plain" },
                n("virtio_gpu_cmd_res_create_blob"),
                n("virtio_gpu_cmd_set_scanout_blob"),
                n("virtio_gpu_cmd_res_create_2d"),
                n("virtio_gpu_cmd_set_scanout"),
            )
        }

        /// QEMU log lines since the last call.
        fn new_log(&mut self) -> String {
            let log = self.guest.qemu_log();
            let new = log.get(self.log_read..).unwrap_or("").to_string();
            self.log_read = log.len();
            new
        }

        /// Runs `command` and measures it on both clocks.
        fn measure(&mut self, command: &str) -> Result<Sample> {
            self.new_log();
            let answer = self.guest.command(command)?;
            let log = self.new_log();
            let mut sample = Sample {
                guest_ms: number(&answer, "ms")?,
                transfers: number(&answer, "transfers")?,
                bytes: number(&answer, "bytes")?,
                ..Sample::default()
            };
            if std::env::var_os("VIOGPU_BENCH_TRACE").is_some() {
                eprintln!("{}: {command} -> {answer}\n{log}", self.name);
            }
            let lines: Vec<TraceLine<'_>> = log.lines().filter_map(parse_trace).collect();
            for line in &lines {
                if let Some(event) = PATH_EVENTS
                    .iter()
                    .find(|e| **e == line.event && shows_path(line))
                {
                    *self.path_events.entry(event).or_default() += 1;
                }
                if line.event == "virtio_queue_notify" && arg(line.args, "n") == Some("0") {
                    self.control_vq = arg(line.args, "vq").map(str::to_string);
                }
            }
            let control = self.control_vq.as_deref();
            let is_flush = |l: &TraceLine<'_>| {
                l.event == "virtqueue_flush" && control.is_some() && arg(l.args, "vq") == control
            };
            // Each command's time in QEMU: its event to the flush of its response.
            for (i, line) in lines.iter().enumerate() {
                if !line.event.starts_with("virtio_gpu_cmd_") {
                    continue;
                }
                let Some(done) = lines[i + 1..].iter().find(|l| is_flush(l)) else {
                    continue;
                };
                let took = (done.at - line.at) * 1000.0;
                sample.busy_ms += took;
                match line.event {
                    "virtio_gpu_cmd_res_xfer_toh_2d" => sample.transfer_ms += took,
                    "virtio_gpu_cmd_res_flush" => sample.flush_ms += took,
                    _ => {}
                }
            }
            Ok(sample)
        }
    }

    fn median(values: &mut [f64]) -> f64 {
        values.sort_by(f64::total_cmp);
        match values.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        }
    }

    /// The command line: repetitions and `--blob`.
    fn parse_args() -> Result<(usize, bool)> {
        let mut args = std::env::args().skip(1);
        let mut reps = DEFAULT_REPS;
        let mut blob = false;
        while let Some(arg) = args.next() {
            if arg == "--blob" {
                blob = true;
                continue;
            }
            match (arg.as_str(), args.next()) {
                ("--reps", Some(n)) => {
                    reps = n
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| HarnessError::new(format!("bad --reps {n}")))?;
                }
                _ => {
                    return Err(HarnessError::new(
                        "usage: viogpu-bench-e2e [--reps N] [--blob]",
                    ))
                }
            }
        }
        Ok((reps, blob))
    }

    fn qemu_version() -> String {
        qemu_binary()
            .ok()
            .and_then(|q| Command::new(q).arg("--version").output().ok())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "unknown QEMU".into())
    }

    fn cpu_model() -> String {
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into())
    }

    fn ratio(ours: f64, linux: f64) -> String {
        if linux > 0.0 {
            format!("{:.2}", ours / linux)
        } else {
            "-".into()
        }
    }

    fn mib(bytes: u64) -> String {
        format!("{:.2} MiB", bytes as f64 / (1 << 20) as f64)
    }

    /// One check of the blob proof: a command, then the screen it must show (a fill color
    /// and rectangles `x0 y0 x1 y1 color` over it).
    struct Check {
        command: &'static str,
        size: (u32, u32),
        fill: u32,
        rects: &'static [(u32, u32, u32, u32, u32)],
    }

    const BLOB_CHECKS: &[Check] = &[
        Check {
            command: "mode 0 1024 768 C02040",
            size: (1024, 768),
            fill: 0xC02040,
            rects: &[],
        },
        Check {
            command: "present 0 100 100 356 300 20C040 700 500 1024 768 FFFFFF",
            size: (1024, 768),
            fill: 0xC02040,
            rects: &[
                (100, 100, 356, 300, 0x20C040),
                (700, 500, 1024, 768, 0xFFFFFF),
            ],
        },
        Check {
            command: "mode 0 3840 2160 4060A0",
            size: (3840, 2160),
            fill: 0x4060A0,
            rects: &[],
        },
        Check {
            command: "present 0 0 0 64 64 FF8000 3000 1800 3840 2160 00FFFF",
            size: (3840, 2160),
            fill: 0x4060A0,
            rects: &[(0, 0, 64, 64, 0xFF8000), (3000, 1800, 3840, 2160, 0x00FFFF)],
        },
    ];

    fn rgb(color: u32) -> [u8; 3] {
        [(color >> 16) as u8, (color >> 8) as u8, color as u8]
    }

    /// Pixels of `screen` that differ from what `check` expects (all of them on a size
    /// mismatch).
    fn wrong_pixels(screen: &RgbImage, check: &Check) -> usize {
        let (w, h) = check.size;
        if screen.size() != (w, h) {
            return (w * h) as usize;
        }
        let data = screen.as_rgb();
        let mut wrong = 0;
        for y in 0..h {
            for x in 0..w {
                let color = check
                    .rects
                    .iter()
                    .rev()
                    .find(|r| x >= r.0 && x < r.2 && y >= r.1 && y < r.3)
                    .map_or(check.fill, |r| r.4);
                let at = ((y * w + x) * 3) as usize;
                if data.get(at..at + 3) != Some(&rgb(color)[..]) {
                    wrong += 1;
                }
            }
        }
        wrong
    }

    /// Lines of `log` with the trace event `event` that show a path (see [`shows_path`]).
    fn count_event(log: &str, event: &str) -> usize {
        log.lines()
            .filter_map(parse_trace)
            .filter(|l| l.event == event && shows_path(l))
            .count()
    }

    /// Linux's virtio_gpu on the blob device with udmabuf's default limits: every scanout a
    /// blob resource, the right pixels after each [`BLOB_CHECKS`] step.
    fn blob_proof() -> Result<()> {
        eprintln!("viogpu-bench-e2e: blob check: Linux virtio_gpu on virtio-gpu-pci,blob=true");
        let mut guest = Guest::boot(GuestConfig {
            program: GuestProgram::LinuxDrm,
            blob: true,
            trace_timestamps: true,
            trace_events: PATH_EVENTS
                .iter()
                .chain(&["virtio_gpu_cmd_res_flush", "virtio_gpu_cmd_res_xfer_toh_2d"])
                .map(|e| e.to_string())
                .collect(),
            ..GuestConfig::default()
        })?;
        let mut read = guest.qemu_log().len();
        println!("Blob check (Linux virtio_gpu, blob=true, udmabuf default limits):");
        println!();
        println!("| command | QEMU saw | udmabuf stand-in | screendump |");
        println!("|---|---|---|---|");
        for check in BLOB_CHECKS {
            guest.command(check.command)?;
            let screen = guest.screendump(0)?;
            let log = guest.qemu_log();
            let new = log.get(read..).unwrap_or("").to_string();
            read = log.len();
            let events: Vec<String> = PATH_EVENTS
                .iter()
                .chain(&["virtio_gpu_cmd_res_xfer_toh_2d", "virtio_gpu_cmd_res_flush"])
                .map(|e| (e, count_event(&new, e)))
                .filter(|(_, n)| *n > 0)
                .map(|(e, n)| format!("{n} {}", e.trim_start_matches("virtio_gpu_cmd_")))
                .collect();
            let shim: Vec<&str> = new
                .lines()
                .filter_map(|l| l.strip_prefix("udmabuf-shim: "))
                .filter(|l| !l.starts_with("closed"))
                .collect();
            let wrong = wrong_pixels(&screen, check);
            println!(
                "| `{}` | {} | {} | {}x{}, {wrong} wrong pixels |",
                check.command,
                events.join(", "),
                if shim.is_empty() {
                    "-".to_string()
                } else {
                    shim.join("; ")
                },
                screen.width(),
                screen.height()
            );
            if wrong != 0 {
                return Err(HarnessError::new(format!(
                    "blob check: after {:?} the screen ({}x{}) has {wrong} wrong pixels",
                    check.command,
                    screen.width(),
                    screen.height()
                )));
            }
            if count_event(&new, "virtio_gpu_cmd_res_create_2d") > 0
                || count_event(&new, "virtio_gpu_cmd_set_scanout") > 0
            {
                return Err(HarnessError::new(format!(
                    "blob check: {:?} used 2D resources on the blob device",
                    check.command
                )));
            }
            if check.command.starts_with("mode")
                && (count_event(&new, "virtio_gpu_cmd_res_create_blob") == 0
                    || count_event(&new, "virtio_gpu_cmd_set_scanout_blob") == 0)
            {
                return Err(HarnessError::new(format!(
                    "blob check: {:?} made no blob scanout",
                    check.command
                )));
            }
        }
        println!();
        Ok(())
    }

    pub fn run() -> Result<()> {
        let (reps, blob) = parse_args()?;
        if blob {
            blob_proof()?;
        }
        eprintln!("viogpu-bench-e2e: booting the guests (builds the guest programs once)");
        let mut ours = Side::boot("viogpudo", GuestProgram::Runner, blob)?;
        let mut linux = Side::boot("Linux virtio_gpu", GuestProgram::LinuxDrm, blob)?;
        // With --blob: Linux on the plain device, the baseline of the blob path.
        let mut linux_2d = if blob {
            Some(Side::boot(
                "Linux virtio_gpu, plain device",
                GuestProgram::LinuxDrm,
                false,
            )?)
        } else {
            None
        };
        eprintln!(
            "viogpu-bench-e2e: booted (ours {:.1} s, Linux {:.1} s); Linux: {}",
            ours.guest.boot_time().as_secs_f64(),
            linux.guest.boot_time().as_secs_f64(),
            linux.guest.command("info")?
        );
        // All at the device's 1920x1080, showing black.
        ours.measure("mode 0 1920 1080 000000")?;
        linux.measure("mode 0 1920 1080 000000")?;
        if let Some(side) = &mut linux_2d {
            side.measure("mode 0 1920 1080 000000")?;
        }

        let mut results: BTreeMap<(usize, &'static str), Vec<Sample>> = BTreeMap::new();
        let mut last_color = String::from("000000");
        for rep in 0..reps {
            let step = (rep * 8) % 0xC0;
            let c = format!("{:02X}{:02X}{:02X}", 0x20 + step, 0x80, 0xFF - step);
            // The order rotates every repetition.
            let mut sides: Vec<&mut Side> = vec![&mut ours, &mut linux];
            if let Some(side) = &mut linux_2d {
                sides.push(side);
            }
            let n = sides.len();
            sides.rotate_left(rep % n);
            for (i, work) in WORK.iter().enumerate() {
                for side in sides.iter_mut() {
                    if let Some(setup) = work.setup {
                        side.guest.command(setup)?;
                    }
                    let sample = side.measure(&work.command.replace("{c}", &c))?;
                    results.entry((i, side.name)).or_default().push(sample);
                }
            }
            eprintln!("viogpu-bench-e2e: repetition {}/{reps} done", rep + 1);
            last_color = c;
        }
        // The same work shows the same picture: every head all in the last mode's color.
        let expected = u32::from_str_radix(&last_color, 16)
            .map(|c| [(c >> 16) as u8, (c >> 8) as u8, c as u8])
            .map_err(|_| HarnessError::new("bad color"))?;
        for side in [Some(&mut ours), Some(&mut linux), linux_2d.as_mut()]
            .into_iter()
            .flatten()
        {
            let screen = side.guest.screendump(0)?;
            let (w, h) = screen.size();
            if (w, h) != (XRES, YRES) || screen.count_color(expected) != (w * h) as usize {
                return Err(HarnessError::new(format!(
                    "{}: the screen is {w}x{h} with {} of {} pixels {expected:?}",
                    side.name,
                    screen.count_color(expected),
                    w * h
                )));
            }
        }

        let med = |i: usize, side: &str, f: &dyn Fn(&Sample) -> f64| {
            let mut values: Vec<f64> = results
                .get(&(i, side))
                .map(|s| s.iter().map(f).collect())
                .unwrap_or_default();
            median(&mut values)
        };
        let last = |i: usize, side: &str| {
            results
                .get(&(i, side))
                .and_then(|s| s.last().copied())
                .unwrap_or_default()
        };
        println!();
        println!(
            "viogpu-bench-e2e: {} on {}, accel TCG, -machine q35 -m 1G -smp 1, \
             virtio-gpu-pci,edid=on,xres={XRES},yres={YRES}{}; {reps} repetitions, alternating; medians",
            qemu_version(),
            cpu_model(),
            if blob {
                format!(
                    ",blob=true (memfd RAM, udmabuf stand-in: {} ranges, {} MiB)",
                    BENCH_UDMABUF_LIMITS.list, BENCH_UDMABUF_LIMITS.size_mb
                )
            } else {
                String::new()
            }
        );
        println!();
        for side in [Some(&ours), Some(&linux), linux_2d.as_ref()]
            .into_iter()
            .flatten()
        {
            println!("Path of {}: {}", side.name, side.path());
        }
        println!();
        println!("Guest clock (copy into scanout memory until the driver has the device's last response):");
        println!();
        // Each repetition runs a work item on both sides back to back, under the same load:
        // the median of those pairs' ratios is steadier than the ratio of the medians.
        let paired = |i: usize, f: &dyn Fn(&Sample) -> f64| {
            let (Some(o), Some(l)) = (results.get(&(i, ours.name)), results.get(&(i, linux.name)))
            else {
                return f64::NAN;
            };
            let mut ratios: Vec<f64> = o.iter().zip(l).map(|(o, l)| f(o) / f(l)).collect();
            median(&mut ratios)
        };
        println!("| work | Linux virtio_gpu | viogpudo | ours/Linux | paired ratio | transfers: bytes, Linux | transfers: bytes, ours |");
        println!("|---|---|---|---|---|---|---|");
        for (i, work) in WORK.iter().enumerate() {
            let (l, o) = (
                med(i, linux.name, &|s| s.guest_ms),
                med(i, ours.name, &|s| s.guest_ms),
            );
            let (ls, os) = (last(i, linux.name), last(i, ours.name));
            println!(
                "| {} | {l:.2} ms | {o:.2} ms | {} | {:.2} | {}: {} | {}: {} |",
                work.name,
                ratio(o, l),
                paired(i, &|s| s.guest_ms),
                ls.transfers,
                mib(ls.bytes),
                os.transfers,
                mib(os.bytes)
            );
        }
        println!();
        println!("Device clock (QEMU's trace, host: time QEMU spent in the update's commands; of it in TRANSFER_TO_HOST_2D, fastest run too; in RESOURCE_FLUSH):");
        println!();
        println!("| work | QEMU Linux | QEMU ours | ours/Linux | paired ratio | transfers Linux | transfers ours | fastest transfers Linux / ours | flush Linux | flush ours |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for (i, work) in WORK.iter().enumerate() {
            let get = |side: &str, f: &dyn Fn(&Sample) -> f64| med(i, side, f);
            let (dl, d_o) = (
                get(linux.name, &|s| s.busy_ms),
                get(ours.name, &|s| s.busy_ms),
            );
            let fastest = |side: &str| {
                results
                    .get(&(i, side))
                    .map(|s| {
                        s.iter()
                            .map(|s| s.transfer_ms)
                            .fold(f64::INFINITY, f64::min)
                    })
                    .unwrap_or(f64::NAN)
            };
            println!(
                "| {} | {dl:.2} ms | {d_o:.2} ms | {} | {:.2} | {:.2} ms | {:.2} ms | {:.2} / {:.2} ms | {:.2} ms | {:.2} ms |",
                work.name,
                ratio(d_o, dl),
                paired(i, &|s| s.busy_ms),
                get(linux.name, &|s| s.transfer_ms),
                get(ours.name, &|s| s.transfer_ms),
                fastest(linux.name),
                fastest(ours.name),
                get(linux.name, &|s| s.flush_ms),
                get(ours.name, &|s| s.flush_ms),
            );
        }
        if let Some(plain) = &linux_2d {
            // The same driver on both devices, each repetition back to back.
            let paired_sides = |i: usize, a: &str, b: &str, f: &dyn Fn(&Sample) -> f64| {
                let (Some(a), Some(b)) = (results.get(&(i, a)), results.get(&(i, b))) else {
                    return f64::NAN;
                };
                let mut ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| f(a) / f(b)).collect();
                median(&mut ratios)
            };
            println!();
            println!("Linux virtio_gpu, blob device against plain device (guest clock as above; device clock: QEMU's time in the update's commands):");
            println!();
            println!("| work | guest 2D | guest blob | blob/2D paired | device 2D | device blob | blob/2D paired | transfers 2D: bytes | transfers blob: bytes |");
            println!("|---|---|---|---|---|---|---|---|---|");
            for (i, work) in WORK.iter().enumerate() {
                let (b, p) = (linux.name, plain.name);
                let (lb, lp) = (last(i, b), last(i, p));
                println!(
                    "| {} | {:.2} ms | {:.2} ms | {:.2} | {:.2} ms | {:.2} ms | {:.2} | {}: {} | {}: {} |",
                    work.name,
                    med(i, p, &|s| s.guest_ms),
                    med(i, b, &|s| s.guest_ms),
                    paired_sides(i, b, p, &|s| s.guest_ms),
                    med(i, p, &|s| s.busy_ms),
                    med(i, b, &|s| s.busy_ms),
                    paired_sides(i, b, p, &|s| s.busy_ms),
                    lp.transfers,
                    mib(lp.bytes),
                    lb.transfers,
                    mib(lb.bytes),
                );
            }
        }
        Ok(())
    }
}
