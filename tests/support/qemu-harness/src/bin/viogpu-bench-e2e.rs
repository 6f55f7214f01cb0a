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
//! Usage: `viogpu-bench-e2e [--reps N]`; `VIOGPU_BENCH_TRACE=1` prints each command's QEMU
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
    use qemu_harness::{Guest, GuestConfig, GuestProgram, HarnessError, Result};

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
    ];

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
    }

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
        fn boot(name: &'static str, program: GuestProgram) -> Result<Self> {
            let guest = Guest::boot(GuestConfig {
                xres: Some(XRES),
                yres: Some(YRES),
                trace_events: TRACE_EVENTS.iter().map(|e| e.to_string()).collect(),
                trace_timestamps: true,
                program,
                ..GuestConfig::default()
            })?;
            let log_read = guest.qemu_log().len();
            Ok(Self {
                name,
                guest,
                log_read,
                control_vq: None,
            })
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

    fn parse_reps() -> Result<usize> {
        let mut args = std::env::args().skip(1);
        let mut reps = DEFAULT_REPS;
        while let Some(arg) = args.next() {
            match (arg.as_str(), args.next()) {
                ("--reps", Some(n)) => {
                    reps = n
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| HarnessError::new(format!("bad --reps {n}")))?;
                }
                _ => return Err(HarnessError::new("usage: viogpu-bench-e2e [--reps N]")),
            }
        }
        Ok(reps)
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

    pub fn run() -> Result<()> {
        let reps = parse_reps()?;
        eprintln!("viogpu-bench-e2e: booting both guests (builds the guest programs once)");
        let mut ours = Side::boot("viogpudo", GuestProgram::Runner)?;
        let mut linux = Side::boot("Linux virtio_gpu", GuestProgram::LinuxDrm)?;
        eprintln!(
            "viogpu-bench-e2e: booted (ours {:.1} s, Linux {:.1} s); Linux: {}",
            ours.guest.boot_time().as_secs_f64(),
            linux.guest.boot_time().as_secs_f64(),
            linux.guest.command("info")?
        );
        // Both at the device's 1920x1080, showing black.
        ours.measure("mode 0 1920 1080 000000")?;
        linux.measure("mode 0 1920 1080 000000")?;

        let mut results: BTreeMap<(usize, &'static str), Vec<Sample>> = BTreeMap::new();
        let mut last_color = String::from("000000");
        for rep in 0..reps {
            let step = (rep * 8) % 0xC0;
            let c = format!("{:02X}{:02X}{:02X}", 0x20 + step, 0x80, 0xFF - step);
            let pair: [&mut Side; 2] = if rep % 2 == 0 {
                [&mut ours, &mut linux]
            } else {
                [&mut linux, &mut ours]
            };
            let [first, second] = pair;
            for (i, work) in WORK.iter().enumerate() {
                for side in [&mut *first, &mut *second] {
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
        // The same work shows the same picture: both heads all in the last mode's color.
        let expected = u32::from_str_radix(&last_color, 16)
            .map(|c| [(c >> 16) as u8, (c >> 8) as u8, c as u8])
            .map_err(|_| HarnessError::new("bad color"))?;
        for side in [&mut ours, &mut linux] {
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
             virtio-gpu-pci,edid=on,xres={XRES},yres={YRES}; {reps} repetitions, alternating; medians",
            qemu_version(),
            cpu_model()
        );
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
        Ok(())
    }
}
