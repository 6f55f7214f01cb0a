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
