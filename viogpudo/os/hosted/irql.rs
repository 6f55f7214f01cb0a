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
}

/// Runs `f` without counting its heap use: for the simulator's bookkeeping inside callbacks
/// the driver makes at DIRQL (the real dxgkrnl does not allocate there either, so only the
/// driver's own allocations are what the check is about).
pub fn heap_not_counted<R>(f: impl FnOnce() -> R) -> R {
    let was = HEAP_EXEMPT.with(|e| e.replace(true));
    let r = f();
    HEAP_EXEMPT.with(|e| e.set(was));
    r
}

/// The heap as the driver's Windows build has it (wdk-alloc: ExAllocatePool2 from nonpaged
/// pool, documented for IRQL <= DISPATCH_LEVEL), checked: a test binary that installs it as
/// its `#[global_allocator]` counts every allocation made above DISPATCH_LEVEL (an ISR, the
/// bugcheck screen), and the simulator reports them as violations after each DDI. It cannot
/// report from inside the allocator (that would allocate), hence the per-thread count.
pub struct IrqlCheckedAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
// GlobalAlloc contract; the bookkeeping touches only a const-initialized thread-local Cell,
// which needs no allocation and no destructor.
unsafe impl std::alloc::GlobalAlloc for IrqlCheckedAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_if_above_dispatch();
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // ExFreePoolWithTag has the same IRQL rule.
        count_if_above_dispatch();
        // SAFETY: the caller's contract for `dealloc` is passed on unchanged.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        count_if_above_dispatch();
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
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
}
