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
