//! On Windows (inside the EWDK): wdk-build's configuration of a kernel-mode driver binary,
//! plus displib, the static library that provides DxgkInitializeDisplayOnlyDriver. Elsewhere:
//! nothing, so that the host-independent driver code builds and tests on Linux.
//!
//! wdk-build is a build-dependency only on Windows hosts (`[target.'cfg(windows)'.
//! build-dependencies]` is matched against the host that runs this script), and the driver is
//! only ever built for Windows on Windows, so the host cfg is the right switch here.

#[cfg(windows)]
fn main() -> Result<(), wdk_build::ConfigError> {
    // Reads [package.metadata.wdk.driver-model] (WDM), emits the WDK library search paths,
    // the kernel linker flags (/DRIVER, /ENTRY:DriverEntry, /SUBSYSTEM:NATIVE, ...) and the
    // driver_model__driver_type cfg. It requires the static CRT (.cargo/config.toml).
    wdk_build::configure_wdk_binary_build()?;
    // displib.lib sits in the km\<arch> library directory emitted above.
    println!("cargo::rustc-link-lib=static=displib");
    Ok(())
}

#[cfg(not(windows))]
fn main() {}
