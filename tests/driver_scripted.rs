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

/// Found by the `device` fuzz target: after a device that broke the virtqueue protocol was
/// reset and brought back, the cursor's re-creation failed with an answer longer than its
/// buffer, so the driver could not tell whether the host kept the cursor image attached and
/// leaked it for good (`mem::forget`): 16 KiB of DMA memory stayed after StopDevice and
/// RemoveDevice, although the device was reset by then. Now such a cursor is kept aside and
/// freed by the next confirmed reset (the power-up's, or the stop's).
#[test]
fn a_cursor_the_host_may_still_use_is_freed_by_the_next_reset() {
    let summary = run_device_script(&[
        0, 2, 128, 0, 1, 129, 0, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
        24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46,
        61, 62, 63, 64, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98,
        99, 100, 101, 102, 108, 109, 111, 112, 133, 30, 3, 116, 117, 118, 119, 120, 121, 122, 123,
        124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 30, 3,
    ]);
    assert!(summary.started);
}
