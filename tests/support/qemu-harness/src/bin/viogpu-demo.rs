//! The demo behind `scripts/demo`: boots the QEMU guest with two heads, where the guest runner
//! loads the driver through the dxgkrnl simulator, walks it through a few modes with the test
//! pattern, saves a screenshot of each step as PNG under `target/demo/`, and prints a summary
//! (mode, time the guest took, file).
//!
//! Prerequisites as for the end-to-end tests (`scripts/setup-e2e`).

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    match demo::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("viogpu-demo: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(unix))]
fn main() {
    eprintln!("viogpu-demo needs QEMU on a unix host");
}

#[cfg(unix)]
mod demo {
    use std::path::PathBuf;
    use std::time::Instant;

    use qemu_harness::artifacts::workspace_root;
    use qemu_harness::{Guest, GuestConfig, HarnessError, Result};

    /// One demo step: the runner commands, then a screenshot of a head.
    struct Step {
        title: &'static str,
        commands: &'static [&'static str],
        head: u32,
        file: &'static str,
    }

    const STEPS: &[Step] = &[
        Step {
            title: "boot: preferred mode + pattern",
            commands: &["pattern 0"],
            head: 0,
            file: "1-preferred.png",
        },
        Step {
            title: "1920x1080",
            commands: &["mode 0 1920 1080 000000", "pattern 0"],
            head: 0,
            file: "2-1920x1080.png",
        },
        Step {
            title: "3840x2160",
            commands: &["mode 0 3840 2160 000000", "pattern 0"],
            head: 0,
            file: "3-3840x2160.png",
        },
        Step {
            title: "1920x1080 rotated 90",
            commands: &["mode 0 1920 1080 000000", "pattern 0", "rotate 0 90"],
            head: 0,
            file: "4-1920x1080-rotate90.png",
        },
        Step {
            title: "head 1: 1024x768 + 2 dirty rects",
            commands: &[
                "mode 1 1024 768 203040",
                "pattern 1",
                "present 1 100 100 300 200 FF0000 700 500 900 700 00C000",
            ],
            head: 1,
            file: "5-head1-1024x768.png",
        },
        Step {
            title: "bugcheck screen (polled)",
            commands: &["rotate 0 0", "bugcheck 0"],
            head: 0,
            file: "6-bugcheck.png",
        },
    ];

    /// The step whose screenshot the README shows (the pattern compresses to about 20 KB).
    const README_PICTURE: &str = "2-1920x1080.png";

    /// The `ms=` field of an answer.
    fn guest_ms(answer: &str) -> Option<&str> {
        answer
            .split_whitespace()
            .find_map(|w| w.strip_prefix("ms="))
    }

    pub fn run() -> Result<()> {
        let out = workspace_root().join("target").join("demo");
        std::fs::create_dir_all(&out)
            .map_err(|e| HarnessError::new(format!("{}: {e}", out.display())))?;
        let started = Instant::now();
        let mut guest = Guest::boot(GuestConfig {
            max_outputs: Some(2),
            ..GuestConfig::default()
        })?;
        println!(
            "booted QEMU 7.2 guest in {:.1} s: {}",
            guest.boot_time().as_secs_f64(),
            guest.command("info")?
        );
        println!("display info: {}", guest.command("display-info")?);
        println!();
        println!(
            "{:<36} {:>9}  {:<38} file",
            "step", "screen", "guest time per command (ms)"
        );
        let mut docs_source: Option<PathBuf> = None;
        for step in STEPS {
            let mut times = Vec::new();
            for command in step.commands {
                let answer = guest.command(command)?;
                let verb = command.split_whitespace().next().unwrap_or_default();
                match guest_ms(&answer) {
                    Some(ms) => times.push(format!("{verb} {ms}")),
                    None => times.push(verb.to_string()),
                }
            }
            let screen = guest.screendump(step.head)?;
            let path = out.join(step.file);
            screen.save_png(&path).map_err(HarnessError::new)?;
            println!(
                "{:<36} {:>9}  {:<38} {}",
                step.title,
                format!("{}x{}", screen.width(), screen.height()),
                times.join(", "),
                path.strip_prefix(workspace_root())
                    .unwrap_or(&path)
                    .display()
            );
            if step.file == README_PICTURE {
                docs_source = Some(path);
            }
        }
        println!();
        println!(
            "timings of the last commands: {}",
            guest.command("timings")?
        );
        println!("stop: {}", guest.command("stop")?);
        if let Some(picture) = docs_source {
            println!(
                "README picture: {} (copied to docs/demo-1920x1080.png by hand)",
                picture.display()
            );
        }
        println!(
            "demo finished in {:.1} s; screenshots in {}",
            started.elapsed().as_secs_f64(),
            out.display()
        );
        Ok(())
    }
}
