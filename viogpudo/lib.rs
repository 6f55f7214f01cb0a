//! viogpudo: a WDDM display-only miniport driver (KMDOD) for the virtio-gpu device.
#![no_std]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
// No heap operation that aborts when the allocator fails (clippy.toml lists them); a
// failed allocation must be an NTSTATUS (issue 8, rule 8).
#![cfg_attr(not(test), deny(clippy::disallowed_methods, clippy::disallowed_macros))]

extern crate alloc;
#[cfg(not(windows))]
extern crate std;

// In the Windows kernel: heap allocations come from nonpaged pool (ExAllocatePool2; with the
// `legacy-pool` feature ExAllocatePoolWithTag, for Windows before 10 2004: os::nt_pool), and a
// panic bugchecks with wdk-panic's code instead of unwinding.
#[cfg(all(windows, not(test)))]
extern crate wdk_panic;

#[cfg(all(windows, not(test), not(feature = "legacy-pool")))]
#[global_allocator]
static GLOBAL: wdk_alloc::WdkAllocator = wdk_alloc::WdkAllocator;

#[cfg(all(windows, not(test), feature = "legacy-pool"))]
#[global_allocator]
static GLOBAL: os::nt_pool::PoolWithTagAllocator = os::nt_pool::PoolWithTagAllocator;

// The legacy package must not import ExAllocatePool2 at all: its kernels do not export it.
#[cfg(all(windows, feature = "legacy-pool", feature = "pool2"))]
compile_error!(
    "the legacy-pool build is `--no-default-features --features legacy-pool` (the default \
     `pool2` feature links wdk-alloc, whose allocator imports ExAllocatePool2)"
);

pub mod adapter;
pub mod ddi;
pub mod entry;
pub mod os;
pub mod thunks;
pub mod vidpn;
