//! The driver packages agree with the code they carry. There are two (README, "Which
//! Windows"): the main one (`inf/viogpudo.inx`, the default build, whose heap is
//! ExAllocatePool2) for Windows 10 2004 and later, and the legacy one
//! (`inf/viogpudo-legacy.inx`, the `legacy-pool` build, ExAllocatePoolWithTag) for Windows 10
//! 1607-1909 and Server 2016/2019. For each: the INF's lowest Windows build covers every kernel
//! routine its build imports that older kernels lack; every `[Manufacturer]` decoration has its
//! models section; and the two INFs split the Windows releases between them (the legacy INF
//! lists no device from build 19041 on).
#![allow(clippy::unwrap_used)]

use std::path::Path;

/// Kernel routines the driver may import, with the first Windows build that exports them.
const ROUTINES_BY_BUILD: &[(&str, u32)] = &[
    // Windows 10 2004: ExAllocatePool2 / ExAllocatePool3.
    ("ExAllocatePool2", 19041),
    ("ExAllocatePool3", 19041),
];

/// Windows 10 2004: from here on the main package.
const MAIN_FROM: u32 = 19041;
/// Windows 10 1607 / Server 2016: the oldest release the legacy package is for.
const LEGACY_FROM: u32 = 14393;
/// The first build with DIRID 13 (the driver store as the driver's home): Windows 10 1709.
const DIRID_13_FROM: u32 = 16299;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The `NTamd64.10.0...<build>` decorations of the INF's `[Manufacturer]` line.
fn inf_builds(inf: &str) -> Vec<u32> {
    let line = inf
        .lines()
        .find(|l| l.trim_start().starts_with("%ManufacturerName%"))
        .expect("a [Manufacturer] line");
    line.split(',')
        .skip(1)
        .map(|d| {
            let d = d.trim();
            let build = d
                .strip_prefix("NTamd64.10.0...")
                .expect("an NTamd64.10.0 decoration");
            build.parse().unwrap()
        })
        .collect()
}

/// The lines of section `[name]` (up to the next section), comments and blanks left out.
fn section<'a>(inf: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("[{name}]");
    inf.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .collect()
}

/// The hardware ids of a models section.
fn hardware_ids(inf: &str, build: u32) -> Vec<String> {
    section(inf, &format!("VioGpuDo.NTamd64.10.0...{build}"))
        .iter()
        .filter_map(|l| l.rsplit(',').next())
        .map(|id| id.trim().to_string())
        .collect()
}

/// The code of `text` without `//` comments.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .filter(|l| !l.trim().is_empty())
}

/// The first build the default build needs: the routines the nt backend names, and wdk-alloc
/// (its allocator imports ExAllocatePool2).
fn main_build_needs() -> u32 {
    let nt = read("viogpudo/os/nt.rs") + &read("viogpudo/os/nt_pool.rs");
    let mut needed = 0;
    for &(routine, build) in ROUTINES_BY_BUILD {
        if nt.contains(routine) {
            needed = needed.max(build);
        }
    }
    if read("Cargo.toml").contains("wdk-alloc") {
        needed = needed.max(19041);
    }
    needed
}

#[test]
fn the_main_inf_requires_a_windows_that_exports_every_imported_routine() {
    let inf = read("inf/viogpudo.inx");
    let needed = main_build_needs();
    assert_eq!(needed, MAIN_FROM);
    for build in inf_builds(&inf) {
        assert!(
            build >= needed,
            "the INF installs on build {build}, but the driver imports routines from build \
             {needed} on: it would not load there"
        );
    }
}

#[test]
fn the_legacy_build_imports_nothing_its_windows_lacks() {
    // Only `nt_pool.rs` names the newer routines, and only for the default build.
    let nt = read("viogpudo/os/nt.rs");
    for &(routine, _) in ROUTINES_BY_BUILD {
        assert!(
            !code_lines(&nt).any(|l| l.contains(routine)),
            "os/nt.rs calls {routine}: the legacy build would import it"
        );
    }
    let pool = read("viogpudo/os/nt_pool.rs");
    let mut cfg = "";
    for line in code_lines(&pool) {
        if line.trim_start().starts_with("#[cfg(") {
            cfg = line.trim();
        }
        for &(routine, _) in ROUTINES_BY_BUILD {
            if line.contains(routine) {
                assert_eq!(
                    cfg, "#[cfg(not(feature = \"legacy-pool\"))]",
                    "os/nt_pool.rs names {routine} outside the default build's code: {line}"
                );
            }
        }
    }
    // wdk-alloc is the default build's allocator only, and the legacy package is built
    // without it.
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("wdk-alloc = { version = \"0.4.2\", optional = true }"));
    assert!(manifest.contains("pool2 = [\"dep:wdk-alloc\"]"));
    let lib = read("viogpudo/lib.rs");
    let alloc_cfg = lib
        .lines()
        .take_while(|l| !l.contains("wdk_alloc::WdkAllocator"))
        .filter(|l| l.starts_with("#[cfg("))
        .last()
        .unwrap();
    assert_eq!(
        alloc_cfg,
        "#[cfg(all(windows, not(test), not(feature = \"legacy-pool\")))]"
    );
    let make = read("Makefile.toml");
    let task = make
        .split("[tasks.legacy-package]")
        .nth(1)
        .and_then(|t| t.split("\n[").next())
        .unwrap();
    for arg in [
        "\"--no-default-features\"",
        "\"legacy-pool\"",
        "VIOGPUDO_INX=viogpudo-legacy.inx",
    ] {
        assert!(task.contains(arg), "legacy-package does not pass {arg}");
    }
}

#[test]
fn every_manufacturer_decoration_has_its_models_section() {
    for path in ["inf/viogpudo.inx", "inf/viogpudo-legacy.inx"] {
        let inf = read(path);
        for build in inf_builds(&inf) {
            let header = format!("[VioGpuDo.NTamd64.10.0...{build}]");
            assert!(inf.contains(&header), "{path}: {header} is missing");
        }
    }
}

#[test]
fn the_two_packages_split_the_windows_releases_between_them() {
    let main = read("inf/viogpudo.inx");
    let legacy = read("inf/viogpudo-legacy.inx");
    assert_eq!(inf_builds(&main), [MAIN_FROM]);
    assert_eq!(inf_builds(&legacy), [LEGACY_FROM, MAIN_FROM]);
    // From 2004 on Windows picks the legacy INF's most specific section, which has no device;
    // below that, its 1607 section lists the main package's devices.
    assert!(hardware_ids(&legacy, MAIN_FROM).is_empty());
    let ids = hardware_ids(&main, MAIN_FROM);
    assert!(
        ids.iter().any(|id| id == "PCI\\VEN_1AF4&DEV_1050"),
        "{ids:?}"
    );
    assert_eq!(hardware_ids(&legacy, LEGACY_FROM), ids);
}

#[test]
fn only_a_package_for_1709_or_later_runs_from_the_driver_store() {
    for (path, dirid) in [("inf/viogpudo.inx", 13), ("inf/viogpudo-legacy.inx", 12)] {
        let inf = read(path);
        let lowest = inf_builds(&inf).into_iter().min().unwrap();
        assert_eq!(
            dirid == 13,
            lowest >= DIRID_13_FROM,
            "{path}: DIRID {dirid} for a package from build {lowest}"
        );
        assert_eq!(
            section(&inf, "DestinationDirs"),
            [format!("VioGpuDo_CopyFiles = {dirid}")],
            "{path}"
        );
        let binary = format!("ServiceBinary  = %{dirid}%\\viogpudo.sys");
        assert!(
            section(&inf, "VioGpuDo_Service").contains(&binary.as_str()),
            "{path}: no {binary}"
        );
    }
}

/// The lines of INF section `name` (`[name]`), comments and blank lines dropped.
fn inf_section<'a>(inf: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("[{name}]");
    inf.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .map(|l| l.split(';').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The value of `key = value` in `lines`.
fn inf_value<'a>(lines: &[&'a str], key: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then_some(v.trim())
    })
}

/// A string constant `pub const NAME: &str = "...";` of a source file.
fn str_const(source: &str, name: &str) -> String {
    let line = source
        .lines()
        .find(|l| l.contains(&format!("pub const {name}: &str")))
        .unwrap_or_else(|| panic!("no constant {name}"));
    line.split('"').nth(1).unwrap().to_string()
}

#[test]
fn the_inf_installs_and_starts_the_resolution_agent_with_the_driver() {
    let inf = read("inf/viogpudo.inx");
    // The executable is the agent crate's binary, carried and copied with the driver.
    let manifest = read("agent/Cargo.toml");
    assert!(manifest.contains("name = \"viogpu-agent\""));
    let exe = "viogpu-agent.exe";
    assert!(inf_section(&inf, "SourceDisksFiles").contains(&"viogpu-agent.exe = 1,,"));
    assert!(inf_section(&inf, "VioGpuDo_CopyFiles").contains(&exe));

    // Its service, named as the code names it, added by the device's install with
    // SPSVCINST_STARTSERVICE and without SPSVCINST_ASSOCSERVICE (the driver is the function
    // driver).
    let service = str_const(&read("agent/src/windows/mod.rs"), "SERVICE_NAME");
    let services = inf_section(&inf, "VioGpuDo_Install.Services");
    let add = services
        .iter()
        .filter_map(|l| {
            l.strip_prefix("AddService")
                .map(|r| r.trim_start_matches([' ', '=']))
        })
        .map(|r| r.split(',').map(str::trim).collect::<Vec<_>>())
        .find(|fields| fields[0] == service)
        .unwrap_or_else(|| panic!("no AddService for {service}"));
    let flags = u32::from_str_radix(add[1].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 0x800, 0x800, "SPSVCINST_STARTSERVICE");
    assert_eq!(flags & 0x2, 0, "not the function driver");

    // A Win32 service of its own process, auto-start, LocalSystem, from the driver store.
    let section = inf_section(&inf, add[2]);
    assert_eq!(inf_value(&section, "ServiceType"), Some("0x10"));
    assert_eq!(inf_value(&section, "StartType"), Some("2"));
    assert_eq!(
        inf_value(&section, "ServiceBinary"),
        Some(r"%13%\viogpu-agent.exe")
    );
    assert_eq!(inf_value(&section, "StartName"), None, "LocalSystem");

    // The switch that turns following off, under the name the agent reads, on by default.
    let follow = str_const(&read("agent/src/settings.rs"), "FOLLOW_VALUE");
    let addreg = inf_value(&section, "AddReg").unwrap();
    let values = inf_section(&inf, addreg);
    let line = values
        .iter()
        .find(|l| l.contains(&follow))
        .unwrap_or_else(|| panic!("{addreg} does not set {follow}"));
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    assert_eq!(fields[..3], ["HKR", "Parameters", follow.as_str()]);
    assert_eq!(fields[3], "%REG_DWORD_NOCLOBBER%");
    assert_eq!(fields[4], "1");
}

#[test]
fn the_package_flow_puts_the_agent_in_the_package_before_the_catalog() {
    let makefile = read("Makefile.toml");
    assert!(makefile.contains(r#""-p", "viogpu-agent""#));
    assert!(makefile.contains("viogpudo_package/viogpu-agent.exe"));
    let inf2cat = makefile
        .split("[tasks.inf2cat]")
        .nth(1)
        .expect("an inf2cat task");
    let inf2cat = inf2cat.split("[tasks.").next().unwrap();
    assert!(inf2cat.contains("\"copy-agent-to-package\""));
}
