//! What a guest boots from, found or built once per test process: the kernel that
//! `scripts/setup-e2e` unpacked into `target/e2e/kernel/`, the statically linked guest runner
//! (built with its own target directory so `+crt-static` does not rebuild the rest of the
//! workspace), and the initramfs that holds the runner, a static busybox and `/init`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::cpio::CpioWriter;
use crate::{HarnessError, Result, DMA_RESERVED_BASE, DMA_RUNNER_LEN};

/// The target the guest runner is built for (the guest is x86_64 Linux like the host).
pub const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";
/// Where the static busybox of Debian's `busybox-static` lives.
pub const BUSYBOX: &str = "/bin/busybox";
/// The busybox applets `/init` uses (plus a few for debugging by hand).
const APPLETS: &[&str] = &["sh", "mount", "stty", "poweroff", "cat", "ls", "dmesg"];

const SETUP_HINT: &str = "run scripts/setup-e2e (scripts/test runs it before the tests)";

/// The workspace root (three levels above this crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../../..");
    root.canonicalize().unwrap_or(root)
}

/// `target/e2e` of the workspace: kernel, runner build, initramfs.
pub fn e2e_dir() -> PathBuf {
    workspace_root().join("target").join("e2e")
}

/// The uncompressed kernel booted through PVH.
pub fn kernel_image() -> Result<PathBuf> {
    let path = e2e_dir().join("kernel").join("vmlinux");
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::new(format!(
            "guest kernel missing: {} does not exist; {SETUP_HINT}",
            path.display()
        )))
    }
}

/// The QEMU binary (`VIOGPU_E2E_QEMU` overrides the one on PATH).
pub fn qemu_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("VIOGPU_E2E_QEMU") {
        return Ok(PathBuf::from(path));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("qemu-system-x86_64"))
            .find(|candidate| candidate.is_file())
    });
    found.ok_or_else(|| {
        HarnessError::new(format!(
            "qemu-system-x86_64 not found on PATH; {SETUP_HINT}"
        ))
    })
}

/// True if the ELF file at `path` asks for a dynamic loader (has a PT_INTERP header), which
/// cannot work in the initramfs (no libc there).
fn needs_loader(path: &Path) -> Result<bool> {
    let data =
        std::fs::read(path).map_err(|e| HarnessError::new(format!("{}: {e}", path.display())))?;
    let bad = || HarnessError::new(format!("{} is not a 64-bit ELF file", path.display()));
    if data.get(..5) != Some(b"\x7fELF\x02") {
        return Err(bad());
    }
    let u16_at = |at: usize| {
        data.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let phoff = data
        .get(0x20..0x28)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(bad)? as usize;
    let (entsize, count) = (u16_at(0x36).ok_or_else(bad)?, u16_at(0x38).ok_or_else(bad)?);
    const PT_INTERP: u32 = 3;
    for i in 0..usize::from(count) {
        let at = phoff + i * usize::from(entsize);
        let kind = data
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(bad)?;
        if kind == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Builds the guest runner (once per process) and returns the path of the static binary.
pub fn guest_runner_binary() -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_guest_runner().map_err(|e| e.to_string()))
        .clone()
        .map_err(HarnessError::new)
}

fn build_guest_runner() -> Result<PathBuf> {
    let target_dir = e2e_dir().join("cargo");
    cargo_build_release(
        "the guest runner",
        "viogpu-guest-runner",
        &target_dir,
        &["--target", GUEST_TARGET],
        // glibc static linking (gcc + libc6-dev); debug info stripped to keep the initramfs
        // small, which the guest kernel unpacks noticeably faster under TCG.
        Some("-C target-feature=+crt-static -C strip=debuginfo"),
    )?;
    let binary = target_dir
        .join(GUEST_TARGET)
        .join("release")
        .join("viogpu-guest-runner");
    if needs_loader(&binary)? {
        return Err(HarnessError::new(format!(
            "{} is dynamically linked although built with +crt-static",
            binary.display()
        )));
    }
    Ok(binary)
}

/// `cargo build --release -p package` of this workspace into `target_dir` (kept apart from
/// the test's own target directory and its flags), with `extra` arguments and `rustflags`.
/// Optimised like the real driver (the blits and fills run under TCG, where a debug build is
/// ten times slower), without the workspace's release LTO, which only costs build time here.
/// `what` names the product in errors.
fn cargo_build_release(
    what: &str,
    package: &str,
    target_dir: &Path,
    extra: &[&str],
    rustflags: Option<&str>,
) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(workspace_root())
        .args(["build", "--quiet", "--release", "-p", package])
        .args(extra)
        .args(["--config", "profile.release.lto=false"])
        .arg("--target-dir")
        .arg(target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR");
    if let Some(flags) = rustflags {
        command.env("RUSTFLAGS", flags);
    }
    let output = command
        .output()
        .map_err(|e| HarnessError::new(format!("cannot run {cargo:?} to build {what}: {e}")))?;
    if !output.status.success() {
        return Err(HarnessError::new(format!(
            "building {what} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

/// The file name of the udmabuf stand-in `tests/support/udmabuf-shim` builds.
const UDMABUF_SHIM_FILE: &str = "libviogpu_udmabuf_shim.so";

/// Builds `tests/support/udmabuf-shim` (once per process) for the host and returns the
/// shared object QEMU preloads for [`crate::GuestConfig::blob`]: QEMU 7.2 needs
/// `/dev/udmabuf` for blob resources, which this machine's kernel does not have.
pub fn udmabuf_shim_library() -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_udmabuf_shim().map_err(|e| e.to_string()))
        .clone()
        .map_err(HarnessError::new)
}

fn build_udmabuf_shim() -> Result<PathBuf> {
    // Its own target directory: built for the host without the runner's static RUSTFLAGS,
    // which would otherwise rebuild each other's dependencies.
    let target_dir = e2e_dir().join("cargo-host");
    cargo_build_release(
        "the udmabuf shim tests/support/udmabuf-shim (a blob=true guest cannot start without it)",
        "viogpu-udmabuf-shim",
        &target_dir,
        &[],
        None,
    )?;
    let library = target_dir.join("release").join(UDMABUF_SHIM_FILE);
    if !library.is_file() {
        return Err(HarnessError::new(format!(
            "the udmabuf shim built but {} is missing",
            library.display()
        )));
    }
    Ok(library)
}

/// The `/init` script: mount the kernel filesystems, make the control port raw (no echo, no
/// line editing), run the runner on it, and power off when it ends.
fn init_script() -> String {
    format!(
        "#!/bin/busybox sh\n\
         /bin/busybox mount -t devtmpfs devtmpfs /dev\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         stty -F /dev/ttyS1 raw -echo\n\
         echo viogpu-e2e: init reached, starting the guest runner\n\
         /bin/viogpu-guest-runner --serial /dev/ttyS1 --dma {DMA_RESERVED_BASE:#x}:{DMA_RUNNER_LEN:#x}\n\
         echo viogpu-e2e: guest runner exited with status $?\n\
         poweroff -f\n"
    )
}

/// The initramfs as a newc cpio archive.
pub fn initramfs_bytes(runner: &Path, busybox: &Path) -> Result<Vec<u8>> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| HarnessError::new(format!("{}: {e}", path.display())))
    };
    let mut cpio = CpioWriter::new();
    for dir in ["bin", "dev", "proc", "sys", "tmp"] {
        cpio.dir(dir, 0o755);
    }
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    cpio.char_device("dev/console", 0o600, 5, 1);
    cpio.file("init", 0o755, init_script().as_bytes());
    cpio.file("bin/busybox", 0o755, &read(busybox)?);
    for applet in APPLETS {
        cpio.symlink(&format!("bin/{applet}"), "busybox");
    }
    cpio.file("bin/viogpu-guest-runner", 0o755, &read(runner)?);
    Ok(cpio.finish())
}

/// Builds the runner and writes `target/e2e/initramfs.cpio` (once per process).
pub fn initramfs() -> Result<PathBuf> {
    static WRITTEN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    WRITTEN
        .get_or_init(|| write_initramfs().map_err(|e| e.to_string()))
        .clone()
        .map_err(HarnessError::new)
}

fn write_initramfs() -> Result<PathBuf> {
    let busybox = Path::new(BUSYBOX);
    if !busybox.is_file() || needs_loader(busybox)? {
        return Err(HarnessError::new(format!(
            "{BUSYBOX} missing or not static (Debian package busybox-static); {SETUP_HINT}"
        )));
    }
    let runner = guest_runner_binary()?;
    let bytes = initramfs_bytes(&runner, busybox)?;
    let dir = e2e_dir();
    let path = dir.join("initramfs.cpio");
    // Written under a per-process name and renamed, so concurrent test binaries never see a
    // half-written archive.
    let temp = dir.join(format!("initramfs.cpio.{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&temp, &bytes))
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(|e| HarnessError::new(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// Where `scripts/bench-e2e` unpacks the kernel package's GPU modules, with `load-order`
/// (one module file name a line, dependencies first).
pub fn kernel_modules_dir() -> PathBuf {
    e2e_dir().join("kernel").join("modules")
}

/// Module parameters the baseline guest loads with: no fbdev emulation, so no console
/// framebuffer competes with the benchmark for the scanout and the device.
fn module_parameters(file: &str) -> &'static str {
    match file {
        "drm_kms_helper.ko" => " fbdev_emulation=0",
        _ => "",
    }
}

/// The `/init` of the Linux DRM baseline: the kernel filesystems and tracefs, the virtio and
/// DRM modules in dependency order (virtio_pci binds the device, virtio-gpu drives it), then
/// `viogpu-linux-drm` on the control port.
fn linux_drm_init_script(modules: &[String]) -> String {
    let mut script = String::from(
        "#!/bin/busybox sh\n\
         /bin/busybox mount -t devtmpfs devtmpfs /dev\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t tracefs tracefs /sys/kernel/tracing\n",
    );
    for module in modules {
        script.push_str(&format!(
            "insmod /lib/modules/{module}{} || echo viogpu-e2e: insmod {module} failed\n",
            module_parameters(module)
        ));
    }
    script.push_str(
        "stty -F /dev/ttyS1 raw -echo\n\
         echo viogpu-e2e: modules loaded, starting the Linux DRM baseline\n\
         /bin/viogpu-linux-drm --serial /dev/ttyS1\n\
         echo viogpu-e2e: baseline exited with status $?\n\
         poweroff -f\n",
    );
    script
}

/// Builds the runner crate (once per process) and writes `target/e2e/initramfs-linux-drm.cpio`
/// for [`crate::GuestProgram::LinuxDrm`] (once per process).
pub fn linux_drm_initramfs() -> Result<PathBuf> {
    static WRITTEN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    WRITTEN
        .get_or_init(|| write_linux_drm_initramfs().map_err(|e| e.to_string()))
        .clone()
        .map_err(HarnessError::new)
}

fn write_linux_drm_initramfs() -> Result<PathBuf> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| HarnessError::new(format!("{}: {e}", path.display())))
    };
    let dir = kernel_modules_dir();
    let order = std::fs::read_to_string(dir.join("load-order")).map_err(|e| {
        HarnessError::new(format!(
            "{}/load-order: {e}; scripts/bench-e2e unpacks the kernel's GPU modules",
            dir.display()
        ))
    })?;
    let modules: Vec<String> = order
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let busybox = Path::new(BUSYBOX);
    if !busybox.is_file() || needs_loader(busybox)? {
        return Err(HarnessError::new(format!(
            "{BUSYBOX} missing or not static (Debian package busybox-static); {SETUP_HINT}"
        )));
    }
    // Built with the runner: the same package, a second binary.
    let program = guest_runner_binary()?.with_file_name("viogpu-linux-drm");
    let mut cpio = CpioWriter::new();
    for d in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"] {
        cpio.dir(d, 0o755);
    }
    cpio.char_device("dev/console", 0o600, 5, 1);
    cpio.file("init", 0o755, linux_drm_init_script(&modules).as_bytes());
    cpio.file("bin/busybox", 0o755, &read(busybox)?);
    for applet in APPLETS.iter().chain(&["insmod"]) {
        cpio.symlink(&format!("bin/{applet}"), "busybox");
    }
    cpio.file("bin/viogpu-linux-drm", 0o755, &read(&program)?);
    for module in &modules {
        cpio.file(
            &format!("lib/modules/{module}"),
            0o644,
            &read(&dir.join(module))?,
        );
    }
    let path = e2e_dir().join("initramfs-linux-drm.cpio");
    let temp = e2e_dir().join(format!("initramfs-linux-drm.cpio.{}", std::process::id()));
    std::fs::write(&temp, cpio.finish())
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(|e| HarnessError::new(format!("{}: {e}", path.display())))?;
    Ok(path)
}
