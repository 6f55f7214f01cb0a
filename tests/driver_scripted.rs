//! Scripted device-fault scenarios (`dxgkrnl_sim::scripted`, the `device` fuzz target's
//! scenario) replayed in the normal test suite: the seed inputs of the fuzz target, and every
//! input the fuzzer found failing, with the driver fix that made it pass.
#![allow(clippy::unwrap_used)]

use dxgkrnl_sim::scripted::run_device_script;

/// The driver scenarios' heap (allocations above DISPATCH_LEVEL are violations).
#[global_allocator]
static HEAP: viogpudo::os::hosted::irql::IrqlCheckedAllocator =
    viogpudo::os::hosted::irql::IrqlCheckedAllocator;

/// Every seed of the `device` fuzz target keeps every invariant.
#[test]
fn the_device_fuzz_seeds_keep_every_invariant() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/device");
    let mut seeds: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {dir}");
    for seed in seeds {
        let summary = run_device_script(&std::fs::read(&seed).unwrap());
        eprintln!("seed {}: {summary:?}", seed.display());
    }
}

/// Found by the `device` fuzz target: a device that refuses a RESOURCE_DETACH_BACKING with
/// ERR_OUT_OF_MEMORY still has the framebuffer's pages attached, but the driver read every
/// error answer to an undo step as "nothing to undo" and freed the pages at the next mode
/// change (the model counted memory freed while the device could still use it). Now only OK
/// and QEMU's "nothing to detach" answers (`gpu::detach_confirmed`) free the backing; after
/// any other answer the framebuffer is kept until the device is reset.
#[test]
fn a_refused_detach_keeps_the_backing_until_the_device_is_reset() {
    // Two scanouts (1024x768, 640x480); armed before the boot: the first RESOURCE_UNREF fails
    // with ERR_UNSPEC, the first DETACH_BACKING with ERR_OUT_OF_MEMORY; then the OS re-reads
    // child 0.
    let summary = run_device_script(&[5, 2, 0, 0, 0, 255, 0, 0, 0, 5, 127, 133]);
    assert!(summary.started);
}
