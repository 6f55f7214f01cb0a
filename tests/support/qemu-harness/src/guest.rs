//! One running guest: QEMU started with the virtio-gpu-pci (or virtio-vga) device and the
//! initramfs, the runner's serial line and the QMP monitor connected, and QEMU killed when
//! the [`Guest`] is dropped.
//!
//! Sockets and logs live in a fresh directory under the system temp dir (unix socket paths
//! must stay short); it is removed on drop unless `VIOGPU_E2E_KEEP=1` is set.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::artifacts::{
    initramfs, kernel_image, linux_drm_initramfs, qemu_binary, udmabuf_shim_library,
};
use crate::image::RgbImage;
use crate::json::{quote, Json};
use crate::lines::LineStream;
use crate::qmp::Qmp;
use crate::rfb::RfbClient;
use crate::{HarnessError, Result, DMA_RESERVED_BASE, DMA_RESERVED_LEN};

/// The QOM id given to the virtio-gpu device (QMP `screendump` names it).
pub const GPU_ID: &str = "gpu0";
/// What the runner prints once it listens for commands.
const READY_LINE: &str = "READY viogpu-guest-runner";
/// What the Linux DRM baseline prints once it listens for commands.
const LINUX_DRM_READY_LINE: &str = "READY viogpu-linux-drm";

/// What drives the GPU in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuestProgram {
    /// The guest runner: our driver through the dxgkrnl simulator (no kernel module binds
    /// the GPU).
    #[default]
    Runner,
    /// The benchmark's baseline: Linux's own virtio_gpu DRM driver (the kernel package's
    /// modules, `scripts/bench-e2e` unpacks them) and `viogpu-linux-drm` on top of it.
    LinuxDrm,
}
/// Lines of the guest console shown in errors.
const LOG_TAIL_LINES: usize = 40;

/// How to start a guest.
#[derive(Debug, Clone)]
pub struct GuestConfig {
    /// virtio-gpu `xres` (preferred width of each head); QEMU's default is 1024.
    pub xres: Option<u32>,
    /// virtio-gpu `yres`; QEMU's default is 768.
    pub yres: Option<u32>,
    /// virtio-gpu `max_outputs` (number of heads); QEMU's default is 1.
    pub max_outputs: Option<u32>,
    /// Extra `-device virtio-gpu-pci` properties, `name=value` each.
    pub extra_gpu_properties: Vec<String>,
    /// `-device virtio-vga` instead of `virtio-gpu-pci`: the same virtio-gpu with a VGA
    /// beside it (BAR 0 the VGA memory, the VGA registers in BAR 2), which QEMU shows on head
    /// 0 whenever the device is not in virtio mode. SeaBIOS runs its VGA BIOS at boot.
    pub vga: bool,
    /// QEMU trace events to enable (`-trace NAME`); their lines land in the QEMU log
    /// ([`Guest::qemu_log`]). `virtio_gpu_update_cursor` is the only place QEMU shows what
    /// it did with cursor commands when there is no display.
    pub trace_events: Vec<String>,
    /// Show the display on a VNC server on a unix socket ([`Guest::vnc`]) instead of no
    /// display: a VNC client can then resize the display as a viewer's window would.
    pub vnc: bool,
    /// Prefix each trace line with `PID@SECONDS.MICROSECONDS:` (QEMU's `-msg timestamp=on`).
    pub trace_timestamps: bool,
    /// What drives the GPU in the guest.
    pub program: GuestProgram,
    /// `blob=true` on the GPU: the device offers `VIRTIO_GPU_F_RESOURCE_BLOB` (guest-memory
    /// blob resources, `SET_SCANOUT_BLOB`). QEMU 7.2 needs `/dev/udmabuf` and a memfd RAM
    /// backend for it, so the guest RAM becomes `memory-backend-memfd` and QEMU (only QEMU)
    /// runs with `LD_PRELOAD` of the udmabuf stand-in (`tests/support/udmabuf-shim`, built
    /// by the harness), which reports each buffer it makes in the QEMU log.
    pub blob: bool,
    /// The limits the udmabuf stand-in enforces with [`GuestConfig::blob`]; `None`: the
    /// kernel module's defaults (1024 ranges, 64 MiB a buffer), past which QEMU's blob
    /// resource gets no host mapping, as on a real host.
    pub udmabuf_limits: Option<UdmabufLimits>,
    /// Longest wait from starting QEMU to the runner's READY line.
    pub boot_timeout: Duration,
    /// Longest wait for one runner command or QMP command.
    pub command_timeout: Duration,
}

impl Default for GuestConfig {
    fn default() -> Self {
        Self {
            xres: None,
            yres: None,
            max_outputs: None,
            extra_gpu_properties: Vec::new(),
            vga: false,
            trace_events: Vec::new(),
            vnc: false,
            trace_timestamps: false,
            program: GuestProgram::Runner,
            blob: false,
            udmabuf_limits: None,
            // Generous: TCG on a loaded two-core machine; a healthy boot takes seconds.
            boot_timeout: Duration::from_secs(120),
            command_timeout: Duration::from_secs(60),
        }
    }
}

impl GuestConfig {
    /// The `-device` argument for the GPU.
    fn gpu_device(&self) -> String {
        let model = if self.vga {
            "virtio-vga"
        } else {
            "virtio-gpu-pci"
        };
        let mut device = format!("{model},id={GPU_ID},edid=on");
        for (name, value) in [
            ("xres", self.xres),
            ("yres", self.yres),
            ("max_outputs", self.max_outputs),
        ] {
            if let Some(value) = value {
                device.push_str(&format!(",{name}={value}"));
            }
        }
        if self.blob {
            device.push_str(",blob=true");
        }
        for property in &self.extra_gpu_properties {
            device.push(',');
            device.push_str(property);
        }
        device
    }
}

/// The udmabuf module parameters the stand-in obeys (`list_limit`, `size_limit_mb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdmabufLimits {
    /// Most memfd ranges in one buffer (kernel default 1024).
    pub list: u32,
    /// Most MiB in one buffer (kernel default 64).
    pub size_mb: u32,
}

/// The guest's RAM: `-m 1G`; with blob resources a memfd backend of the same size.
const GUEST_RAM: &str = "1G";

/// A running QEMU guest with the runner answering on its serial line.
#[derive(Debug)]
pub struct Guest {
    child: Child,
    dir: PathBuf,
    serial: LineStream,
    qmp: Qmp,
    config: GuestConfig,
    boot_time: Duration,
    screendumps: u32,
}

/// Checks the child without borrowing the whole guest.
fn check_alive(child: &mut Child) -> std::result::Result<(), String> {
    match child.try_wait() {
        Ok(None) => Ok(()),
        Ok(Some(status)) => Err(format!("QEMU exited ({status})")),
        Err(e) => Err(format!("cannot check QEMU: {e}")),
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("({}: {e})", path.display()));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Guest {
    /// Builds what is needed (once per process), starts QEMU and waits for the runner.
    pub fn boot(config: GuestConfig) -> Result<Self> {
        let kernel = kernel_image()?;
        let qemu = qemu_binary()?;
        let (initrd, ready_line) = match config.program {
            GuestProgram::Runner => (initramfs()?, READY_LINE),
            GuestProgram::LinuxDrm => (linux_drm_initramfs()?, LINUX_DRM_READY_LINE),
        };
        // Before the run directory, so a failed build leaves nothing behind.
        let shim = if config.blob {
            Some(udmabuf_shim_library()?)
        } else {
            None
        };
        let dir = run_dir()?;

        let log = File::create(dir.join("qemu.log"))
            .map_err(|e| HarnessError::new(format!("{}: {e}", dir.display())))?;
        let log_err = log
            .try_clone()
            .map_err(|e| HarnessError::new(format!("qemu.log: {e}")))?;
        let serial_path = dir.join("control.sock");
        let qmp_path = dir.join("qmp.sock");
        let append = format!(
            "console=ttyS0 memmap={}M${DMA_RESERVED_BASE:#x} quiet panic=-1",
            DMA_RESERVED_LEN >> 20
        );
        let started = Instant::now();
        let mut command = Command::new(&qemu);
        command
            .args(["-nodefaults", "-no-user-config", "-no-reboot"])
            .arg("-machine")
            .arg(if config.blob {
                "q35,memory-backend=ram"
            } else {
                "q35"
            })
            .args(["-accel", "tcg", "-m", GUEST_RAM, "-smp", "1"])
            .arg("-display")
            .arg(if config.vnc {
                format!("vnc=unix:{}", dir.join("vnc.sock").display())
            } else {
                "none".to_string()
            })
            .args(
                config
                    .trace_events
                    .iter()
                    .flat_map(|e| ["-trace", e.as_str()]),
            )
            .args(if config.trace_timestamps {
                &["-msg", "timestamp=on"][..]
            } else {
                &[]
            })
            .args(if config.blob {
                // Sealed (QEMU's default seal=on), as udmabuf requires.
                vec![
                    "-object".to_string(),
                    format!("memory-backend-memfd,id=ram,size={GUEST_RAM}"),
                ]
            } else {
                Vec::new()
            })
            .arg("-device")
            .arg(config.gpu_device())
            .arg("-kernel")
            .arg(&kernel)
            .arg("-initrd")
            .arg(&initrd)
            .args(["-append", &append])
            // ttyS0: kernel and /init messages, to a file for error reports.
            .arg("-chardev")
            .arg(format!(
                "file,id=console,path={}",
                dir.join("console.log").display()
            ))
            .args(["-serial", "chardev:console"])
            // ttyS1: the runner's line protocol. wait=on: QEMU starts the guest only once we
            // are connected, so no early line can be lost.
            .arg("-chardev")
            .arg(format!(
                "socket,id=control,path={},server=on,wait=on",
                serial_path.display()
            ))
            .args(["-serial", "chardev:control"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp_path.display()))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if let Some(shim) = &shim {
            // QEMU only: the harness and the tests never load it.
            command
                .env("LD_PRELOAD", shim)
                .env("VIOGPU_UDMABUF_LOG", "1");
            match config.udmabuf_limits {
                Some(limits) => command
                    .env("VIOGPU_UDMABUF_LIST_LIMIT", limits.list.to_string())
                    .env("VIOGPU_UDMABUF_SIZE_LIMIT_MB", limits.size_mb.to_string()),
                None => command
                    .env_remove("VIOGPU_UDMABUF_LIST_LIMIT")
                    .env_remove("VIOGPU_UDMABUF_SIZE_LIMIT_MB"),
            };
        }
        let mut child = command
            .spawn()
            .map_err(|e| HarnessError::new(format!("cannot start {}: {e}", qemu.display())))?;

        let deadline = started + config.boot_timeout;
        let connected = (|| {
            let mut alive = || check_alive(&mut child);
            let serial =
                LineStream::connect(&serial_path, "runner serial line", deadline, &mut alive)?;
            let qmp_lines = LineStream::connect(&qmp_path, "QMP socket", deadline, &mut alive)?;
            let qmp = Qmp::handshake(qmp_lines, deadline, &mut alive)?;
            Ok::<_, String>((serial, qmp))
        })();
        let (serial, qmp) = match connected {
            Ok(pair) => pair,
            Err(e) => {
                let error = failure(&dir, &format!("starting QEMU: {e}"));
                cleanup(&mut child, &dir);
                return Err(error);
            }
        };
        let mut guest = Self {
            child,
            dir,
            serial,
            qmp,
            config,
            boot_time: Duration::ZERO,
            screendumps: 0,
        };
        loop {
            let line = guest.read_serial_line(deadline, "the runner's READY line")?;
            if line == ready_line {
                break;
            }
        }
        guest.boot_time = started.elapsed();
        Ok(guest)
    }

    /// Time from starting QEMU to the runner's READY line.
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// A VNC client connected to the guest's display (a guest booted with
    /// [`GuestConfig::vnc`]).
    pub fn vnc(&self) -> Result<RfbClient> {
        if !self.config.vnc {
            return Err(HarnessError::new("the guest was booted without vnc"));
        }
        RfbClient::connect(&self.dir.join("vnc.sock"), self.config.command_timeout)
            .map_err(|e| failure(&self.dir, &e.to_string()))
    }

    /// The directory with `qemu.log`, `console.log` and the sockets.
    pub fn run_dir(&self) -> &Path {
        &self.dir
    }

    /// Everything QEMU wrote to stdout and stderr so far (warnings, enabled trace events).
    pub fn qemu_log(&self) -> String {
        let path = self.dir.join("qemu.log");
        std::fs::read(&path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("({}: {e})", path.display()))
    }

    /// The last lines of the guest console (kernel and `/init` messages).
    pub fn console_tail(&self) -> String {
        tail(&self.dir.join("console.log"), LOG_TAIL_LINES)
    }

    fn read_serial_line(&mut self, deadline: Instant, waiting_for: &str) -> Result<String> {
        let child = &mut self.child;
        self.serial
            .read_line(deadline, &mut || check_alive(child))
            .map_err(|e| failure(&self.dir, &format!("waiting for {waiting_for}: {e}")))
    }

    /// Sends one command line to the runner and returns the text after `OK` (trimmed); an
    /// `ERR` answer is an error carrying the runner's message.
    pub fn command(&mut self, line: &str) -> Result<String> {
        if line.contains('\n') {
            return Err(HarnessError::new(format!("command {line:?} spans lines")));
        }
        self.serial
            .send_line(line)
            .map_err(|e| failure(&self.dir, &e))?;
        let deadline = Instant::now() + self.config.command_timeout;
        loop {
            let answer = self.read_serial_line(deadline, &format!("the answer to {line:?}"))?;
            if answer == "OK" {
                return Ok(String::new());
            }
            if let Some(rest) = answer.strip_prefix("OK ") {
                return Ok(rest.trim().to_string());
            }
            if let Some(rest) = answer.strip_prefix("ERR") {
                return Err(failure(
                    &self.dir,
                    &format!("runner answered {line:?} with ERR{rest}"),
                ));
            }
            // Anything else is not an answer (the runner prints nothing else); skip it.
        }
    }

    /// Runs a QMP command (`arguments` as a JSON object text) and returns its `return` value.
    pub fn qmp(&mut self, command: &str, arguments: Option<&str>) -> Result<Json> {
        let deadline = Instant::now() + self.config.command_timeout;
        let child = &mut self.child;
        self.qmp
            .execute(command, arguments, deadline, &mut || check_alive(child))
            .map_err(|e| failure(&self.dir, &e))
    }

    /// The current picture of head `head` of the virtio-gpu, through QMP `screendump`.
    pub fn screendump(&mut self, head: u32) -> Result<RgbImage> {
        self.screendumps += 1;
        let path = self
            .dir
            .join(format!("screendump-{}-head{head}.ppm", self.screendumps));
        let path_text = path
            .to_str()
            .ok_or_else(|| HarnessError::new("run directory is not UTF-8"))?;
        let arguments = format!(
            "{{\"filename\": {}, \"device\": {}, \"head\": {head}}}",
            quote(path_text),
            quote(GPU_ID)
        );
        self.qmp("screendump", Some(&arguments))?;
        let data = std::fs::read(&path)
            .map_err(|e| failure(&self.dir, &format!("reading {}: {e}", path.display())))?;
        let _ = std::fs::remove_file(&path);
        RgbImage::from_ppm(&data).map_err(|e| failure(&self.dir, &format!("screendump: {e}")))
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        cleanup(&mut self.child, &self.dir);
    }
}

fn cleanup(child: &mut Child, dir: &Path) {
    let _ = child.kill();
    let _ = child.wait();
    if std::env::var_os("VIOGPU_E2E_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(dir);
    } else {
        eprintln!("qemu-harness: kept {}", dir.display());
    }
}

/// An error with the QEMU log and the guest console tail attached.
fn failure(dir: &Path, what: &str) -> HarnessError {
    HarnessError::new(format!(
        "{what}\n--- qemu.log (last lines) ---\n{}\n--- guest console (last {LOG_TAIL_LINES} lines) ---\n{}",
        tail(&dir.join("qemu.log"), 10),
        tail(&dir.join("console.log"), LOG_TAIL_LINES)
    ))
}

/// A fresh directory for one guest's sockets and logs.
fn run_dir() -> Result<PathBuf> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("viogpu-e2e-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| HarnessError::new(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}
