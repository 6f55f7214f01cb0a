//! Fuzzes the driver against a misbehaving device that offers blob resources (framebuffers
//! are guest-memory blobs: RESOURCE_CREATE_BLOB, SET_SCANOUT_BLOB, flush-only presents); the
//! rest as the `device` target: the input is a program
//! (`dxgkrnl_sim::scripted::run_device_script`) in which the virtio-gpu device model breaks
//! used-ring entries, response headers and bodies, display info, EDID blobs, config-space
//! values and events, and holds completions back or never gives them, while the real driver,
//! loaded by the dxgkrnl simulator, boots, changes modes, presents, moves the pointer, cycles
//! power and stops. The scenario panics if a rule breaks: a panic in the driver, memory freed
//! or a request reused while the device holds it, DMA memory or mappings left after stop,
//! a register access outside a mapping, callback misuse or a broken Windows rule.

#![no_main]

use libfuzzer_sys::fuzz_target;

/// The driver runs on the heap the simulator checks (no allocation above DISPATCH_LEVEL).
#[global_allocator]
static HEAP: viogpudo::os::hosted::irql::IrqlCheckedAllocator =
    viogpudo::os::hosted::irql::IrqlCheckedAllocator;

fuzz_target!(|data: &[u8]| {
    dxgkrnl_sim::scripted::run_blob_device_script(data);
});
