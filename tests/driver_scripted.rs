//! Scripted device-fault scenarios (`dxgkrnl_sim::scripted`, the `device` fuzz target's
//! scenario) replayed in the normal test suite: the seed inputs of the fuzz target, and every
//! input the fuzzer found failing, with the driver fix that made it pass.
#![allow(clippy::unwrap_used)]

use dxgkrnl_sim::scripted::{run_blob_device_script, run_device_script, run_os_script};

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
        let data = std::fs::read(&seed).unwrap();
        let summary = run_device_script(&data);
        eprintln!("seed {}: {summary:?}", seed.display());
        // The same faults on a device with blob resources (the `device_blob` target).
        let summary = run_blob_device_script(&data);
        eprintln!("seed {} on a blob device: {summary:?}", seed.display());
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

/// Every seed of the `present` fuzz target (the OS side) keeps every invariant.
#[test]
fn the_present_fuzz_seeds_keep_every_invariant() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/present");
    let mut seeds: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {dir}");
    for seed in seeds {
        let summary = run_os_script(&std::fs::read(&seed).unwrap());
        eprintln!("seed {}: {summary:?}", seed.display());
    }
}

/// Found by the `device` fuzz target: a display-change event made the DPC tell the OS that
/// child 1 lost its monitor, then the re-read of the displays at PASSIVE_LEVEL failed (the
/// device answered GET_DISPLAY_INFO with a bare OK_NODATA) and the driver went back to its
/// stale display info, which said connected: the next CommitVidPn with D3DKMDT_MCC_ENFORCE
/// and a path to target 1 succeeded, where the OS's rule (and the simulator) requires
/// STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY for a target reported without a monitor. Now the
/// connections the driver checks are the ones it last indicated, until a re-read succeeds.
#[test]
fn a_failed_display_reread_keeps_the_connections_last_indicated() {
    // Two scanouts with broken EDIDs; display 1 unplugged (event); the next GET_DISPLAY_INFO
    // answered with a bare OK_NODATA; a mode change on source 0.
    let summary = run_device_script(&[
        5, 54, 1, 224, 224, 224, 224, 85, 85, 3, 0, 0, 0, 0, 5, 196, 0, 0, 0, 1,
    ]);
    assert!(summary.started);
}

/// Found by the `device` fuzz target: after a recovery reset, re-creating a framebuffer's
/// host resource took an ATTACH_BACKING that failed with a broken answer (more bytes than
/// the response buffer holds) as "not attached", because only a successful step counted; the
/// undo then skipped the detach and freed the framebuffer while the host still had it as
/// backing. Now, as when a framebuffer is first built, only an error answer means a step did
/// not happen.
#[test]
fn a_broken_answer_to_a_reattach_still_detaches_before_freeing() {
    let summary = run_device_script(&[
        1, 0, 0, 0, 32, 5, 255, 3, 0, 0, 87, 0, 0, 0, 0, 3, 0, 1, 4, 128, 1, 0, 5, 1, 6, 2, 1, 3,
        0, 0, 0, 0, 5, 1, 2, 1, 6, 255, 127, 255, 255, 1, 112, 5, 24, 0, 0, 0, 5, 1, 2, 1, 6, 255,
        127, 255, 255, 1, 5, 24, 0, 255, 255, 255, 127, 133, 1, 255, 255, 127, 133, 1,
    ]);
    assert!(summary.started);
}

/// Found by the `device` fuzz target, the same rule at power-up: a display-change event
/// told the OS that child 1 lost its monitor, then a recovery reset re-read the displays,
/// the read failed (the device holds every control completion), and the power-up recomputed
/// the connections from the stale display info (connected), so an enforced commit with a
/// path to target 1 succeeded. Now a failed read at power-up keeps the connections last
/// indicated, too.
#[test]
fn a_failed_display_read_at_power_up_keeps_the_connections_last_indicated() {
    let summary = run_device_script(&[
        5, 54, 1, 1, 3, 5, 4, 0, 2, 0, 129, 255, 255, 6, 255, 90, 255, 133, 2, 75, 1, 1, 5, 4, 0,
        2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 196, 252, 252, 252, 114,
    ]);
    assert!(summary.started);
}

/// Found by the `device` fuzz target: after a failed re-read of the displays, QueryChildStatus
/// still answered from the stale display info while a commit's connectivity check used the
/// connections last indicated, so the OS could be told "no monitor" for a target whose
/// enforced commit the driver then accepted. Both now give the same answer.
#[test]
fn query_child_status_and_the_commit_check_agree_after_a_failed_reread() {
    let summary = run_device_script(&[
        5, 2, 252, 254, 0, 24, 0, 21, 85, 85, 85, 3, 112, 144, 143, 159, 143, 252, 0,
    ]);
    assert!(summary.started);
}

/// Found by the `device` fuzz target, after the connection fixes above: a DPC whose display
/// probe a recovery reset had lost indicated every child connected (so that the OS asks
/// again) and also took that as the connections the commit check uses; the OS, told by
/// QueryChildStatus a moment before that target 1 has no monitor, then got an enforced commit
/// to it accepted. Without an answer from the device the DPC now leaves the connections as
/// they were.
#[test]
fn a_lost_display_probe_does_not_mark_every_child_connected() {
    run_device_script(&[
        133, 48, 0, 0, 0, 63, 0, 0, 154, 0, 0, 0, 129, 0, 3, 203, 248, 128, 128, 128, 128, 128,
        128, 128, 128, 0, 0, 4, 26, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
        128, 128, 128, 128, 128, 123, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 5, 2,
        1, 1, 224, 224, 224, 224, 224, 224, 224, 224, 224, 215, 224, 224, 224, 224, 224, 224, 224,
        224, 224, 215, 215, 5, 2, 207, 0, 5, 1, 2, 9, 6, 255, 255, 255, 255, 1, 5, 24, 0, 0, 0, 0,
        0, 0, 0, 0, 3, 0, 2, 207, 0, 5, 1, 2, 9, 6, 255, 255, 255, 255, 1, 5, 24, 0, 0, 0, 0, 0, 0,
        64, 0, 3, 0, 1, 4, 128, 1, 0, 5, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
        128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 247, 255, 0, 32, 0, 0, 126, 255, 1,
        5, 24, 0, 255, 255, 255, 127, 0, 154, 0, 0, 0, 1, 6, 2, 1, 255, 255, 255, 255, 1, 4, 128,
        1, 0, 5, 1, 6, 2, 1, 2, 9, 6, 255, 215, 215, 215, 215, 215, 255, 255, 255, 1, 5, 24, 0, 0,
        0, 129, 0, 3, 203, 255, 255, 255, 127, 133, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 133, 48, 0, 154,
        5, 24, 0, 247, 255, 255, 127, 133, 0, 2, 207, 1,
    ]);
}

/// Found by the `device` fuzz target: a device that attaches a framebuffer's pages but answers
/// the ATTACH_BACKING with an error (here at the power-up after a recovery reset). The driver
/// took the error for "not attached" and freed the pages without a DETACH_BACKING while the
/// device still had them. Now an attach counts as done whatever the answer, and the undo
/// detaches before it frees.
#[test]
fn an_attach_answered_with_an_error_is_still_detached_before_its_pages_are_freed() {
    run_device_script(&[
        5, 2, 1, 1, 3, 0, 0, 1, 2, 1, 6, 255, 255, 255, 255, 1, 5, 24, 133, 2, 1, 1, 75, 5, 5, 2,
        1, 1, 75, 5, 4, 0, 255, 0, 2, 0, 248, 203, 0, 129, 247, 3, 0, 255, 0, 0, 0, 0, 246, 0, 0,
        3, 0, 0, 3, 0, 1, 4, 91, 91, 5, 2, 1, 1, 75, 5, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 17,
        0, 0, 0, 255, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 1, 4, 128, 1, 0, 3, 0, 0, 0, 5, 1, 6, 15, 0, 0,
        0, 2, 1, 255, 255, 255, 255, 1, 5, 24, 0, 21, 85, 85, 85, 3, 0, 0, 0, 0, 5, 1, 2, 1, 6,
        255, 255, 255, 255, 1, 5, 24, 0, 255, 255, 255, 127, 133, 1, 196, 196, 196, 196, 196, 196,
        196, 196, 196, 196, 196, 196, 196, 196, 196, 196, 196, 196, 196, 196, 196, 196, 196, 36,
        196, 196, 254, 255, 255, 255, 255, 255, 255, 7, 4, 0, 2, 0, 129, 0, 3, 203, 248, 247, 255,
        0, 0, 0, 0, 0, 246, 0, 0, 3, 255, 255, 127, 133, 1, 0, 0, 3, 0, 1, 4, 91, 91, 91, 91, 91,
        42, 91, 91, 91, 91, 91, 91, 91, 91, 91, 91, 91, 91, 91, 91, 91,
    ]);
}

/// As above, a second input of the same kind (a mode change's new framebuffer).
#[test]
fn an_attach_answered_with_an_error_is_still_detached_before_its_pages_are_freed_2() {
    run_device_script(&[
        133, 2, 1, 1, 75, 0, 3, 1, 0, 0, 0, 0, 0, 0, 8, 64, 246, 0, 0, 255, 127, 133, 1, 33, 33,
        33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 33, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 39, 0, 6, 0, 248,
        247, 255, 246, 0, 0, 238, 238, 238, 238, 238, 238, 234, 238, 238, 238, 238, 238, 238, 238,
        238, 238, 255, 1, 246, 255, 255, 255, 5, 24, 0, 253, 255, 4, 0, 0, 0, 0, 0, 0, 0, 255, 127,
        133, 0, 6, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 238, 238, 238, 238, 238, 238,
        238, 238, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 3, 39, 0, 6, 0, 248, 247, 255, 246, 0, 0, 238, 238, 238, 238, 238, 238, 234, 238, 238,
        238, 238, 238, 238, 238, 238, 238, 255, 1, 246, 255, 255, 255, 5, 24, 0, 253, 255, 4, 0, 0,
        0, 0, 0, 0, 0, 255, 127, 133, 0, 6, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 238,
        238, 238, 238, 238, 238, 238, 238, 238, 238, 238, 238, 238, 238, 238, 238, 238, 238, 238,
        238, 238, 238, 238, 238, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 245, 0, 0, 0, 0, 0, 0, 255, 255, 1, 255, 255, 255, 5, 24, 0, 255, 255, 255, 127,
        133, 1, 255, 255, 255, 5, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 250, 255, 133, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 33, 1,
    ]);
}

/// Found by the `device_blob` fuzz target, on its first run: a blob device that breaks the
/// virtqueue protocol (an unknown used id), is reset and brought back, then fails the display
/// read at power-up, while the UNREF that gives a blob's pages back is armed to be "answered
/// OK but not done". The driver freed the pages after that OK, as it must (no driver can tell
/// the lie from the truth, as with a detach answered OK), and the model counted memory freed
/// while it still held them. The script no longer lies about a blob's UNREF; the input stays
/// as a regression test of the recovery path on a blob device.
#[test]
fn a_blob_device_recovered_after_a_ring_fault_and_a_failed_power_up_keeps_every_invariant() {
    run_blob_device_script(&[
        5, 1, 0, 1, 5, 3, 2, 4, 2, 0, 2, 1, 0, 5, 1, 2, 1, 129, 16, 3, 0, 0, 0, 0, 8, 8, 0, 9, 255,
        255, 3, 0, 1, 7, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        255, 127, 133,
    ]);
}

/// Found by the `device_blob` fuzz target: at a power-up, a blob's UNREF scripted to fail
/// with ERR_UNSPEC (the device keeps the pages) had its answer's header corrupted to OK by a
/// second fault; the driver freed the pages after that "OK", as it must, and the model counted
/// memory freed while held. Two faults composing the lie no driver can detect (a refused
/// release answered as done); the model no longer lets a corruption make a refused DETACH or
/// UNREF look done (`faults::refused_release`), and the input is a regression test.
#[test]
fn a_refused_unref_whose_answer_is_corrupted_is_not_made_to_look_done() {
    run_blob_device_script(&[
        5, 1, 4, 128, 1, 0, 5, 255, 252, 255, 255, 255, 232, 23, 23, 23, 23, 23, 23, 23, 23, 23,
        23, 23, 23, 23, 23, 23, 23, 23, 23, 111, 111, 111, 111, 111, 111, 41, 111, 111, 111, 111,
        111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 0, 111, 111, 111, 111, 111, 111, 111,
        111, 102, 111, 111, 111, 111, 111, 137, 137, 3, 0, 0, 0, 0, 0, 0, 0, 137, 137, 137, 137,
        137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137,
        137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137,
        137, 137, 137, 137, 137, 137, 137, 1, 2, 252, 126, 255, 252, 255, 255, 255, 232, 23, 23,
        23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 111, 111, 111, 111, 111,
        111, 41, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111, 111,
        111, 111, 111, 111, 111, 111, 111, 102, 111, 111, 111, 111, 111, 137, 137, 3, 0, 0, 0, 0,
        0, 0, 0, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137,
        137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 137, 111, 111, 4, 111,
        111, 111, 111, 111, 111, 111, 111, 111,
    ]);
}

/// Found by the `present` fuzz target after the driver began to lock only the rows a present's
/// rects cover: a user-mode surface with a pitch from the input (here huge) put the start of
/// those rows outside the user buffer, and the OS layer judged user or kernel memory by that
/// offset address: taken for kernel memory, it was read without a probe (a SIGSEGV here; on
/// Windows a read of whatever lay there). The surface's own pointer decides now, and a user
/// range must lie in user memory, else STATUS_ACCESS_VIOLATION.
#[test]
fn a_huge_pitch_cannot_move_the_rows_read_out_of_user_memory() {
    let summary = run_os_script(&[
        0, 1, 1, 0, 68, 120, 103, 107, 67, 98, 71, 101, 116, 68, 101, 0, 0, 0, 118, 105, 99, 101,
        73, 110, 102, 0, 0, 0, 0, 0, 0, 0, 55, 114, 109, 97, 116, 107, 111, 110, 207, 207, 31, 249,
        1, 1, 0, 0, 7, 1, 4, 52, 255, 109, 255, 110, 9, 1,
    ]);
    // The present with the huge pitch is one of the two refused.
    assert_eq!((summary.good_presents, summary.bad_presents), (1, 2));
}

/// Found by the `present` fuzz target after the driver began to lock only the rows a present's
/// rects cover: a present with no rect on a surface shorter than the mode reads nothing and
/// succeeds, where the script's judge, written when the driver locked the whole surface, wanted
/// a failure. The judge now asks for readable memory under the rows read, and accepts either
/// outcome (with the right screens) for a surface shorter than the mode, which the OS never
/// sends.
#[test]
fn a_present_that_reads_nothing_from_a_short_surface_may_succeed() {
    let summary = run_os_script(&[
        0, 51, 1, 1, 0, 1, 0, 3, 1, 0, 255, 255, 255, 255, 255, 2, 1, 1, 0, 0, 7, 1, 0, 56, 255,
        63, 255, 201, 8, 0,
    ]);
    assert_eq!(summary.good_presents, 1);
}
