//! The adapter's lifecycle: one state enum for where the device is ([`Device`], under the
//! state lock) and the one way the interrupt routine and the DPC reach the started hardware
//! ([`IsrSlot`], no lock).
//!
//! ```text
//!            StartDevice               SetPowerState(D1..D3)
//!  Stopped ─────────────▶ On ─────────────────────────────▶ Off { reset_confirmed }
//!     ▲  ▲                 │ ▲          SetPowerState(D0)            │
//!     │  │   StopDevice    │ └───────────────────────────────────────┘
//!     │  └─────────────────┤ (or from Off)
//!     │                    │ StopDeviceAndReleasePostDisplayOwnership
//!     │  StartDevice       ▼
//!     └───────────────  HandedOff
//! ```
//!
//! Two events are not states of this enum because their DDIs run while another thread may
//! hold the state lock and wait on the device for seconds: DxgkDdiNotifySurpriseRemoval
//! (synchronization Level 0) and DxgkDdiSystemDisplayEnable (any IRQL, other processors
//! frozen). They are one-way latches on the adapter (`removed`, `bugcheck`) that every path
//! reads; the lifecycle still ends in `Stopped` through StopDevice as usual.
//!
//! **The hardware hand-off to the ISR and the DPC.** The hardware is reference-counted
//! (`viogpu_common::fallible::Shared`, an `Arc` whose allocation can fail): the state owns
//! one reference, the pointer state one while the device takes cursor commands, and the
//! [`IsrSlot`] one while the device is started. The slot's reference is lent to the ISR and
//! the DPC as a plain pointer guarded by a user count; [`IsrSlot::retract`] hides it and waits,
//! bounded, until no ISR or DPC still uses it, and only then gives its reference back. If the
//! wait runs out the reference is leaked, so the hardware's count never reaches zero and
//! teardown (which frees the hardware only when it holds the last reference) leaks the device's
//! memory instead of freeing it under an ISR or DPC.

use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use viogpu_common::fallible::Shared;

use super::Hardware;
use crate::os;

/// How long teardown waits for an ISR or DPC to let go of the hardware before it leaks it.
const DRAIN_TIMEOUT_US: u64 = 1_000_000;
/// Pause between two checks of the user count while draining.
const DRAIN_STALL_US: u32 = 10;
/// Checks while draining without a platform clock (never in the driver: the platform exists
/// whenever a device was started).
const DRAIN_CHECKS_WITHOUT_CLOCK: u32 = 1_000_000;

/// Where the device is (see the module docs for the transitions).
pub(super) enum Device {
    /// Not started: before StartDevice, after StopDevice or a failed start.
    Stopped,
    /// Started and in D0.
    On(Shared<Hardware>),
    /// Started and powered down (D1..D3): the device was reset. Until a reset is confirmed
    /// (`reset_confirmed` false) the device may still use request buffers, host ids and
    /// retired framebuffers, which are then kept.
    Off {
        hw: Shared<Hardware>,
        reset_confirmed: bool,
    },
    /// Post-display ownership went to the OS: the device keeps showing leaked memory and is
    /// not touched again until the next StartDevice resets it.
    HandedOff,
}

impl Device {
    /// The started hardware, powered or not.
    pub(super) fn hardware(&self) -> Option<&Shared<Hardware>> {
        match self {
            Device::On(hw) | Device::Off { hw, .. } => Some(hw),
            Device::Stopped | Device::HandedOff => None,
        }
    }

    /// The hardware of a started, powered device: the only state in which commands go out.
    pub(super) fn powered(&self) -> Option<&Hardware> {
        match self {
            Device::On(hw) => Some(hw),
            _ => None,
        }
    }

    /// True once StartDevice succeeded and until StopDevice (powered or not).
    pub(super) fn is_started(&self) -> bool {
        self.hardware().is_some()
    }
}

/// The started hardware as the ISR and the DPC see it (module docs); generic so that its
/// guarantees are tested on their own.
pub(super) struct IsrSlot<T = Hardware> {
    /// `Shared::into_raw` of the slot's reference, or null.
    hw: AtomicPtr<T>,
    /// ISRs and DPCs between loading `hw` and being done with it.
    users: AtomicU32,
}

impl<T> IsrSlot<T> {
    pub(super) const fn new() -> Self {
        Self {
            hw: AtomicPtr::new(core::ptr::null_mut()),
            users: AtomicU32::new(0),
        }
    }

    /// Lends `hw` to the ISR and the DPC (the slot keeps a reference). A hardware lent before
    /// is retracted first.
    pub(super) fn publish(&self, hw: &Shared<T>) {
        self.retract();
        let raw = Shared::into_raw(hw.clone()).cast_mut();
        self.hw.store(raw, Ordering::SeqCst);
    }

    /// Runs `f` on the lent hardware (ISR and DPC; never blocks).
    pub(super) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.users.fetch_add(1, Ordering::SeqCst);
        let ptr = self.hw.load(Ordering::SeqCst);
        // SAFETY: a non-null pointer came from `Shared::into_raw` in `publish`, and that
        // reference is given back (or leaked) only by `retract`, after it cleared the pointer
        // and saw `users` at zero; our increment happened before the load (SeqCst), so the
        // reference is still held while we use it.
        let result = (!ptr.is_null()).then(|| f(unsafe { &*ptr }));
        self.users.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// Hides the hardware from the ISR and the DPC and waits (bounded) until none uses it;
    /// then the slot's reference is dropped. If they do not let go in time the reference is
    /// leaked, which keeps the hardware alive for good. True when nothing was lent or the
    /// reference was given back.
    pub(super) fn retract(&self) -> bool {
        let ptr = self.hw.swap(core::ptr::null_mut(), Ordering::SeqCst);
        if ptr.is_null() {
            return true;
        }
        if !self.drain() {
            crate::trace!("an interrupt routine or DPC did not let go of the hardware: leaked");
            return false;
        }
        // SAFETY: `ptr` came from `Shared::into_raw` in `publish`; it was swapped out above, so
        // no later ISR or DPC can load it, and `drain` saw every earlier one finish.
        drop(unsafe { Shared::from_raw(ptr.cast_const()) });
        true
    }

    /// Waits until `users` is zero, at most [`DRAIN_TIMEOUT_US`].
    fn drain(&self) -> bool {
        use viogpu_common::gpu::Platform;
        let idle = || self.users.load(Ordering::SeqCst) == 0;
        match os::OsPlatform::current() {
            Some(platform) => {
                let until = platform.now_us().saturating_add(DRAIN_TIMEOUT_US);
                loop {
                    if idle() {
                        return true;
                    }
                    if platform.now_us() >= until {
                        return false;
                    }
                    platform.stall_us(DRAIN_STALL_US);
                }
            }
            None => (0..DRAIN_CHECKS_WITHOUT_CLOCK).any(|_| {
                core::hint::spin_loop();
                idle()
            }),
        }
    }
}

impl<T> Drop for IsrSlot<T> {
    fn drop(&mut self) {
        self.retract();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn retract_gives_the_reference_back_once_no_one_uses_it() {
        let slot = IsrSlot::new();
        let hw = Shared::try_new(7u32).ok().unwrap();
        slot.publish(&hw);
        assert_eq!(Shared::owners(&hw), 2);
        assert_eq!(slot.with(|v| *v), Some(7));
        assert!(slot.retract());
        assert_eq!(Shared::owners(&hw), 1);
        assert_eq!(slot.with(|v| *v), None, "hidden from later users");
        assert!(Shared::try_unwrap(hw).is_ok(), "the owner may free it");
    }

    #[test]
    fn hardware_still_in_use_is_leaked_never_freed() {
        let slot = std::sync::Arc::new(IsrSlot::new());
        let hw = Shared::try_new(7u32).ok().unwrap();
        slot.publish(&hw);
        let (inside_tx, inside_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let isr = {
            let slot = std::sync::Arc::clone(&slot);
            std::thread::spawn(move || {
                slot.with(|v| {
                    inside_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    *v
                })
            })
        };
        inside_rx.recv().unwrap();
        // The "ISR" never lets go within the bound: the slot's reference is leaked...
        assert!(!slot.retract());
        // ...so teardown cannot take sole ownership, and must leak instead of freeing.
        let hw = Shared::try_unwrap(hw).expect_err("still referenced by the slot");
        release_tx.send(()).unwrap();
        assert_eq!(isr.join().unwrap(), Some(7), "read live memory to the end");
        assert_eq!(Shared::owners(&hw), 2);
    }
}
