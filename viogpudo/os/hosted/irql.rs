//! IRQL for the hosted backend: a per-thread interrupt request level, as the Windows kernel
//! keeps one per processor, and the rule checks every hosted kernel service makes against it.
//!
//! The simulator sets the level a DDI runs at (PASSIVE_LEVEL for most, DISPATCH_LEVEL for the
//! DPC, a device IRQL for the ISR, HIGH_LEVEL for the bugcheck screen) with [`run_at`]; the
//! driver's queue lock raises it to DISPATCH_LEVEL with [`raise_to`]; and each service that
//! stands for a kernel routine calls [`require_at_most`] with the maximum IRQL its Microsoft
//! Learn page documents. A call above that level is what bugchecks Windows
//! (IRQL_NOT_LESS_OR_EQUAL and friends): here it is reported to the installed environment,
//! which records it so the test fails.

use core::cell::Cell;

/// An interrupt request level (x64 numbering).
pub type Irql = u8;
/// PASSIVE_LEVEL: normal thread execution, where every DDI but the ISR, DPC and bugcheck
/// screen runs.
pub const PASSIVE_LEVEL: Irql = 0;
/// APC_LEVEL: the highest level waits with a timeout are allowed at.
pub const APC_LEVEL: Irql = 1;
/// DISPATCH_LEVEL: DPCs and spin-lock holders.
pub const DISPATCH_LEVEL: Irql = 2;
/// The device IRQL the simulated interrupt line or message gets (x64 device levels are 3-12).
pub const DIRQL: Irql = 5;
/// CLOCK_LEVEL: the clock interrupt; the debugger print gives up from here on.
pub const CLOCK_LEVEL: Irql = 13;
/// HIGH_LEVEL: the bugcheck screen, with interrupts off and other processors frozen.
pub const HIGH_LEVEL: Irql = 15;

std::thread_local! {
    static CURRENT: Cell<Irql> = const { Cell::new(PASSIVE_LEVEL) };
}

/// This thread's current IRQL.
pub fn current() -> Irql {
    CURRENT.with(Cell::get)
}

/// The kernel's name of `level`.
pub fn name(level: Irql) -> &'static str {
    match level {
        PASSIVE_LEVEL => "PASSIVE_LEVEL",
        APC_LEVEL => "APC_LEVEL",
        DISPATCH_LEVEL => "DISPATCH_LEVEL",
        HIGH_LEVEL => "HIGH_LEVEL",
        3..=12 => "DIRQL",
        _ => "an IRQL above DIRQL",
    }
}

/// Restores the previous IRQL when dropped.
#[must_use = "the level is restored when the guard drops"]
pub struct IrqlGuard {
    previous: Irql,
}

impl Drop for IrqlGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Sets this thread's IRQL to `level` (up or down) until the guard drops: how the simulator
/// enters a DDI, an ISR or a DPC at the level Windows calls it at.
pub fn run_at(level: Irql) -> IrqlGuard {
    let previous = CURRENT.with(|c| c.replace(level));
    IrqlGuard { previous }
}

/// Raises this thread's IRQL to `level` until the guard drops (KeRaiseIrql). Raising to a
/// lower level than the current one is a rule violation (the kernel bugchecks); the level is
/// then left as it is.
pub fn raise_to(level: Irql, routine: &str) -> IrqlGuard {
    let now = current();
    if level < now {
        super::rule_broken(&std::format!(
            "IRQL: {routine} raises to {} from {}",
            name(level),
            name(now)
        ));
        return run_at(now);
    }
    run_at(level)
}

/// Checks that the caller runs at most at `max`, the documented maximum IRQL of `routine`;
/// reports a violation otherwise.
pub fn require_at_most(max: Irql, routine: &str) {
    let now = current();
    if now > max {
        super::rule_broken(&std::format!(
            "IRQL: {routine} called at {} ({now}); its documented maximum is {} ({max})",
            name(now),
            name(max)
        ));
    }
}

std::thread_local! {
    /// Heap allocations this thread made above DISPATCH_LEVEL since the last
    /// [`take_heap_allocations_above_dispatch`].
    static HEAP_ABOVE_DISPATCH: Cell<u32> = const { Cell::new(0) };
    /// Set while the simulator's own bookkeeping runs on a driver thread (not counted).
    static HEAP_EXEMPT: Cell<bool> = const { Cell::new(false) };
    /// Set while the driver's own code runs on this thread (a DDI, the ISR, the DPC, a
    /// synchronized routine), as the simulator marks it with [`driver_code`]; only then can
    /// an injected allocation failure hit.
    static IN_DRIVER: Cell<bool> = const { Cell::new(false) };
    /// Driver allocations still to succeed before the injected failure; `None`: no failure
    /// armed ([`fail_driver_allocation_after`]).
    static FAIL_AFTER: Cell<Option<u64>> = const { Cell::new(None) };
    /// Set when the armed failure was delivered (read by [`take_injected_failure`]).
    static FAILURE_DELIVERED: Cell<bool> = const { Cell::new(false) };
    /// Bytes the driver's code allocated minus those it freed on this thread
    /// ([`driver_heap_bytes`]).
    static DRIVER_BYTES: Cell<i64> = const { Cell::new(0) };
}

/// Bytes of heap the driver's own code (see [`driver_code`]) allocated and has not freed on
/// this thread: a leak check for scenarios whose DDIs all run on one thread (a block the
/// driver frees from another thread shows up here as still allocated).
pub fn driver_heap_bytes() -> i64 {
    DRIVER_BYTES.with(Cell::get)
}

/// Adds `delta` bytes to [`driver_heap_bytes`] when the driver's own code is running.
fn track_driver_bytes(delta: i64) {
    let driver = IN_DRIVER.try_with(Cell::get).unwrap_or(false)
        && !HEAP_EXEMPT.try_with(Cell::get).unwrap_or(true);
    if driver {
        let _ = DRIVER_BYTES.try_with(|b| b.set(b.get().wrapping_add(delta)));
    }
}

/// `n` as an i64 (heap sizes fit).
fn signed(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Restores the thread's heap bookkeeping flags when dropped (see [`sim_code`] and
/// [`driver_code`]).
#[must_use = "the flags are restored when the guard drops"]
pub struct HeapScope {
    exempt: bool,
    in_driver: bool,
}

impl Drop for HeapScope {
    fn drop(&mut self) {
        let _ = HEAP_EXEMPT.try_with(|e| e.set(self.exempt));
        let _ = IN_DRIVER.try_with(|d| d.set(self.in_driver));
    }
}

fn heap_scope(exempt: bool, in_driver: bool) -> HeapScope {
    HeapScope {
        exempt: HEAP_EXEMPT.with(|e| e.replace(exempt)),
        in_driver: IN_DRIVER.with(|d| d.replace(in_driver)),
    }
}

/// Until the guard drops, this thread runs the simulator's (the kernel's) code, not the
/// driver's: its heap use is neither counted by the IRQL check nor failed by an injected
/// allocation failure. Every dxgkrnl callback and hosted kernel service the driver calls
/// starts with it.
pub fn sim_code() -> HeapScope {
    heap_scope(true, false)
}

/// Until the guard drops, this thread runs the driver's own code (the simulator enters every
/// DDI, the ISR, the DPC and a synchronized routine with it): its heap use is counted, and an
/// armed [`fail_driver_allocation_after`] can hit it.
pub fn driver_code() -> HeapScope {
    heap_scope(false, true)
}

/// Runs `f` without counting its heap use: for the simulator's bookkeeping inside callbacks
/// the driver makes at DIRQL (the real dxgkrnl does not allocate there either, so only the
/// driver's own allocations are what the check is about). The same as [`sim_code`] for the
/// duration of `f`.
pub fn heap_not_counted<R>(f: impl FnOnce() -> R) -> R {
    let _scope = sim_code();
    f()
}

/// Arms (`Some(n)`) or disarms (`None`) an injected heap failure on this thread: the driver's
/// own allocations (inside [`driver_code`], outside [`sim_code`]) succeed `n` more times, and
/// the next one returns null, as ExAllocatePool2 does when pool runs out. One failure per
/// arming; a reallocation counts as an allocation. The allocation-failure sweep uses it to
/// prove that no driver path allocates infallibly: a failed `Box::new`/`Vec::push` calls
/// `handle_alloc_error`, which aborts the test process (a bugcheck on Windows).
pub fn fail_driver_allocation_after(n: Option<u64>) {
    FAIL_AFTER.with(|f| f.set(n));
    FAILURE_DELIVERED.with(|d| d.set(false));
}

/// Whether the armed failure was delivered since the last arming; disarms.
pub fn take_injected_failure() -> bool {
    FAIL_AFTER.with(|f| f.set(None));
    FAILURE_DELIVERED.with(|d| d.replace(false))
}

/// True when this allocation is the driver's and the armed failure is due now.
fn inject_failure() -> bool {
    let driver = IN_DRIVER.try_with(Cell::get).unwrap_or(false)
        && !HEAP_EXEMPT.try_with(Cell::get).unwrap_or(true);
    if !driver {
        return false;
    }
    FAIL_AFTER
        .try_with(|f| match f.get() {
            None => false,
            Some(0) => {
                f.set(None);
                let _ = FAILURE_DELIVERED.try_with(|d| d.set(true));
                true
            }
            Some(n) => {
                f.set(Some(n - 1));
                false
            }
        })
        .unwrap_or(false)
}

/// The heap as the driver's Windows build has it (wdk-alloc: ExAllocatePool2 from nonpaged
/// pool, documented for IRQL <= DISPATCH_LEVEL), checked: a test binary that installs it as
/// its `#[global_allocator]` counts every allocation made above DISPATCH_LEVEL (an ISR, the
/// bugcheck screen), and the simulator reports them as violations after each DDI. It cannot
/// report from inside the allocator (that would allocate), hence the per-thread count. It
/// also fails the driver allocation a test chose ([`fail_driver_allocation_after`]).
pub struct IrqlCheckedAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// GlobalAlloc contract, or (an injected failure) returns null, which alloc and realloc may
// always do and which leaves a realloc's old block untouched; the bookkeeping touches only
// const-initialized thread-local Cells, which need no allocation and no destructor.
unsafe impl std::alloc::GlobalAlloc for IrqlCheckedAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_if_above_dispatch();
        if inject_failure() {
            return core::ptr::null_mut();
        }
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            track_driver_bytes(signed(layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // ExFreePoolWithTag has the same IRQL rule.
        count_if_above_dispatch();
        track_driver_bytes(-signed(layout.size()));
        // SAFETY: the caller's contract for `dealloc` is passed on unchanged.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        count_if_above_dispatch();
        if inject_failure() {
            // A failed realloc leaves the old block as it was.
            return core::ptr::null_mut();
        }
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new) };
        if !p.is_null() {
            track_driver_bytes(signed(new).wrapping_sub(signed(layout.size())));
        }
        p
    }
}

fn count_if_above_dispatch() {
    let above = CURRENT.try_with(Cell::get).unwrap_or(PASSIVE_LEVEL) > DISPATCH_LEVEL;
    if above && !HEAP_EXEMPT.try_with(Cell::get).unwrap_or(true) {
        let _ = HEAP_ABOVE_DISPATCH.try_with(|n| n.set(n.get().saturating_add(1)));
    }
}

/// Heap allocations and frees this thread made above DISPATCH_LEVEL since the last call
/// (always 0 unless [`IrqlCheckedAllocator`] is the global allocator).
pub fn take_heap_allocations_above_dispatch() -> u32 {
    HEAP_ABOVE_DISPATCH.with(|n| n.replace(0))
}

#[cfg(test)]
mod heap_tests {
    use super::*;
    use std::alloc::{GlobalAlloc, Layout};

    fn alloc_and_free() {
        let layout = Layout::from_size_align(64, 8).unwrap_or(Layout::new::<u64>());
        // SAFETY: a non-zero-sized layout.
        let p = unsafe { IrqlCheckedAllocator.alloc(layout) };
        assert!(!p.is_null());
        // SAFETY: allocated just above with the same layout, freed once.
        unsafe { IrqlCheckedAllocator.dealloc(p, layout) };
    }

    #[test]
    fn heap_use_above_dispatch_is_counted_and_only_there() {
        let _ = take_heap_allocations_above_dispatch();
        alloc_and_free();
        let dispatch = run_at(DISPATCH_LEVEL);
        alloc_and_free();
        drop(dispatch);
        assert_eq!(take_heap_allocations_above_dispatch(), 0);
        let dirql = run_at(DIRQL);
        alloc_and_free();
        heap_not_counted(alloc_and_free);
        drop(dirql);
        assert_eq!(
            take_heap_allocations_above_dispatch(),
            2,
            "one alloc, one free"
        );
        assert_eq!(take_heap_allocations_above_dispatch(), 0, "taken");
    }

    #[test]
    fn an_injected_failure_hits_only_the_driver_and_only_once() {
        let layout = Layout::from_size_align(64, 8).unwrap_or(Layout::new::<u64>());
        let try_alloc = || {
            // SAFETY: a non-zero-sized layout.
            let p = unsafe { IrqlCheckedAllocator.alloc(layout) };
            if !p.is_null() {
                // SAFETY: `p` came from this allocator with `layout` and is freed once.
                unsafe { IrqlCheckedAllocator.dealloc(p, layout) };
            }
            !p.is_null()
        };
        fail_driver_allocation_after(Some(1));
        assert!(try_alloc(), "outside the driver: never failed, not counted");
        let driver = driver_code();
        assert!(try_alloc(), "the first driver allocation succeeds");
        {
            let _sim = sim_code();
            assert!(
                try_alloc(),
                "the kernel's own allocation inside a DDI is not failed"
            );
        }
        assert!(!try_alloc(), "the second driver allocation fails");
        assert!(try_alloc(), "one failure per arming");
        drop(driver);
        assert!(take_injected_failure());
        assert!(!take_injected_failure());
    }
}
