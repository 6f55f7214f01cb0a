//! On Windows (inside the EWDK): wdk-build's configuration of a kernel-mode driver binary,
//! plus displib, the static library that provides DxgkInitializeDisplayOnlyDriver, and the
//! small C file `viogpudo/os/nt_probe.c` compiled with the `cc` crate (the SEH wrapper around
//! MmProbeAndLockPages). Elsewhere: nothing, so that the host-independent driver code builds
//! and tests on Linux.
//!
//! wdk-build and cc are build-dependencies only on Windows hosts (`[target.'cfg(windows)'.
//! build-dependencies]` is matched against the host that runs this script), and the driver is
//! only ever built for Windows on Windows, so the host cfg is the right switch here.

#[cfg(windows)]
fn main() -> Result<(), wdk_build::ConfigError> {
    // Reads [package.metadata.wdk.driver-model] (WDM), emits the WDK library search paths,
    // the kernel linker flags (/DRIVER, /ENTRY:DriverEntry, /SUBSYSTEM:NATIVE, ...) and the
    // driver_model__driver_type cfg. It requires the static CRT (.cargo/config.toml).
    let config = wdk_build::Config::from_env_auto()?;
    config.configure_binary_build()?;
    // displib.lib sits in the km\<arch> library directory emitted above.
    println!("cargo::rustc-link-lib=static=displib");
    compile_probe_shim(&config)
}

/// Compiles `viogpudo/os/nt_probe.c` (MmProbeAndLockPages inside __try/__except: Rust has no
/// SEH; see the `nt` module docs) with the EWDK's cl.exe as kernel-mode C, against the same
/// WDK headers and definitions wdk-sys uses, into a static library linked into the driver.
#[cfg(windows)]
fn compile_probe_shim(config: &wdk_build::Config) -> Result<(), wdk_build::ConfigError> {
    const SHIM: &str = "viogpudo/os/nt_probe.c";
    println!("cargo::rerun-if-changed={SHIM}");
    let mut build = cc::Build::new();
    build.file(SHIM).flag("/kernel");
    for path in config.include_paths()? {
        build.include(path);
    }
    for (name, value) in config.preprocessor_definitions() {
        build.define(&name, value.as_deref());
    }
    build.compile("viogpudo_nt_probe");
    Ok(())
}

#[cfg(not(windows))]
fn main() {}
