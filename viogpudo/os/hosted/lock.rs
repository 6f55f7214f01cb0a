//! The waitable PASSIVE_LEVEL lock of the hosted backend (a KMUTEX on Windows): a std mutex
//! that also checks the rules the Windows lock lives by.
//!
//! - It is taken only at PASSIVE_LEVEL. Code that can run above it (the ISR, the DPC, the
//!   bugcheck screen) must not take it; doing so is reported as a violation.
//! - It is not taken again by the thread that holds it. A KMUTEX would allow that, and two
//!   `&mut` views of the same state would follow; a std mutex would deadlock. The hosted lock
//!   reports it and panics, so the test fails with the reason instead of hanging.
//! - A contender blocks (sleeps) instead of spinning, so a holder that waits on the device
//!   costs the contender nothing but time.

use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::irql;

/// A number per thread, for "who holds the lock" (0 = nobody).
fn thread_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    std::thread_local! {
        static NUMBER: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}

/// A lock for state that only PASSIVE_LEVEL code touches, held across device waits.
pub struct PassiveMutex<T> {
    name: &'static str,
    holder: AtomicU64,
    inner: Mutex<T>,
}

impl<T> PassiveMutex<T> {
    /// A lock named `name` (for violation reports) around `value`.
    pub const fn new(name: &'static str, value: T) -> Self {
        Self {
            name,
            holder: AtomicU64::new(0),
            inner: Mutex::new(value),
        }
    }

    /// Waits for the lock (KeWaitForSingleObject on the KMUTEX, at PASSIVE_LEVEL).
    pub fn lock(&self) -> PassiveGuard<'_, T> {
        irql::require_at_most(irql::PASSIVE_LEVEL, self.name);
        let me = thread_number();
        if self.holder.load(Ordering::Acquire) == me {
            super::rule_broken(&std::format!(
                "lock: {} taken again by the thread that holds it",
                self.name
            ));
            #[allow(clippy::panic)] // hosted test backend: fail the test instead of hanging
            {
                panic!("{} taken recursively: this would deadlock", self.name);
            }
        }
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        self.holder.store(me, Ordering::Release);
        PassiveGuard { lock: self, guard }
    }
}

/// Access to the locked value; releases the lock when dropped (KeReleaseMutex).
pub struct PassiveGuard<'a, T> {
    lock: &'a PassiveMutex<T>,
    guard: MutexGuard<'a, T>,
}

impl<T> Deref for PassiveGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for PassiveGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for PassiveGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.holder.store(0, Ordering::Release);
    }
}
