//! Fuzzes the driver from the OS side: DxgkDdiPresentDisplayOnly arguments (source id, bytes
//! per pixel, pitch, flags, dirty and move rectangles, the surface's size and readable pages)
//! and VidPN contents (paths, pinned modes, rotation, scaling, commit arguments) written by
//! the input (`dxgkrnl_sim::scripted::run_os_script`), on a healthy device. Bad input must be
//! refused with STATUS_INVALID_PARAMETER or STATUS_ACCESS_VIOLATION and change no screen;
//! good input must succeed and show exactly the reference picture; no rule may break.

#![no_main]

use libfuzzer_sys::fuzz_target;

/// The driver runs on the heap the simulator checks (no allocation above DISPATCH_LEVEL).
#[global_allocator]
static HEAP: viogpudo::os::hosted::irql::IrqlCheckedAllocator =
    viogpudo::os::hosted::irql::IrqlCheckedAllocator;

fuzz_target!(|data: &[u8]| {
    dxgkrnl_sim::scripted::run_os_script(data);
});
