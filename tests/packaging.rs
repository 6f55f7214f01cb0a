//! The driver package agrees with the code it carries: the INF's minimum Windows build covers
//! every kernel routine the Windows build imports that older kernels lack, and the INF's
//! models section is the one its `[Manufacturer]` line names.
#![allow(clippy::unwrap_used)]

use std::path::Path;

/// Kernel routines the driver may import, with the first Windows build that exports them.
const ROUTINES_BY_BUILD: &[(&str, u32)] = &[
    // Windows 10 2004: ExAllocatePool2 / ExAllocatePool3.
    ("ExAllocatePool2", 19041),
    ("ExAllocatePool3", 19041),
];

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The `NTamd64.10.0...<build>` decorations of the INF's `[Manufacturer]` line.
fn inf_min_builds(inf: &str) -> Vec<u32> {
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

#[test]
fn the_inf_requires_a_windows_that_exports_every_imported_routine() {
    let inf = read("inf/viogpudo.inx");
    let builds = inf_min_builds(&inf);
    assert!(!builds.is_empty());
    // What the Windows build uses: the nt backend, and wdk-alloc (its allocator imports
    // ExAllocatePool2).
    let nt = read("viogpudo/os/nt.rs");
    let manifest = read("Cargo.toml");
    let mut needed = 0;
    for &(routine, build) in ROUTINES_BY_BUILD {
        if nt.contains(routine) {
            needed = needed.max(build);
        }
    }
    if manifest.contains("wdk-alloc") {
        needed = needed.max(19041);
    }
    for build in builds {
        assert!(
            build >= needed,
            "the INF installs on build {build}, but the driver imports routines from build \
             {needed} on: it would not load there"
        );
    }
}

#[test]
fn every_manufacturer_decoration_has_its_models_section() {
    let inf = read("inf/viogpudo.inx");
    for build in inf_min_builds(&inf) {
        let section = format!("[VioGpuDo.NTamd64.10.0...{build}]");
        assert!(inf.contains(&section), "{section} is missing");
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
