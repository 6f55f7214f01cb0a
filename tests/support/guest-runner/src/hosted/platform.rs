//! The kernel services of the core's device layer ([`Platform`]) for a user-space driver
//! that uses no interrupts: time is `CLOCK_MONOTONIC`, and "waiting for a completion" is a
//! short sleep, because whoever waits polls the used ring itself (the core's waiters call
//! `process_used` before each wait; fire-and-forget work is reaped with
//! `GpuDevice::process_completions`).
//!
//! There is no IRQL and no completion path that could preempt a lock holder, so
//! [`Platform::raise`] does nothing.

use std::time::{Duration, Instant};

use viogpu_common::gpu::Platform;

/// How long one wait sleeps at most. QEMU answers from its main-loop thread while the guest's
/// single vCPU sleeps, so sleeping (instead of spinning) hands the host CPU to the device;
/// 100 µs keeps the added latency per command small next to a TCG MMIO exit.
const POLL_SLEEP: Duration = Duration::from_micros(100);

/// Polling platform: monotonic clock, sleeping waits, spinning stalls.
#[derive(Debug, Clone, Copy, Default)]
pub struct PollingPlatform;

impl PollingPlatform {
    /// Microseconds since an arbitrary fixed point (`CLOCK_MONOTONIC`).
    pub fn monotonic_us() -> u64 {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        if rc != 0 {
            return 0;
        }
        let secs = u64::try_from(now.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
        secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
    }
}

impl Platform for PollingPlatform {
    type RaiseGuard = ();

    fn raise(&self) -> Self::RaiseGuard {}

    fn now_us(&self) -> u64 {
        Self::monotonic_us()
    }

    fn wait_for_completion(&self, timeout_us: u64) {
        let wait = Duration::from_micros(timeout_us).min(POLL_SLEEP);
        if wait.is_zero() {
            std::thread::yield_now();
        } else {
            std::thread::sleep(wait);
        }
    }

    fn signal_completion(&self) {}

    fn stall_us(&self, us: u32) {
        // A stall must not sleep (polled mode stands for "the OS is dying"): spin.
        let end = Instant::now() + Duration::from_micros(u64::from(us));
        while Instant::now() < end {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_stall_takes_time() {
        let platform = PollingPlatform;
        let start = platform.now_us();
        platform.stall_us(2_000);
        let after_stall = platform.now_us();
        assert!(after_stall >= start + 2_000, "{start} -> {after_stall}");
        platform.wait_for_completion(50);
        assert!(platform.now_us() >= after_stall);
    }
}
