//! The agent's settings: the switch that turns following off and the timings, read from
//! named DWORD values (on Windows the `Parameters` key of the agent's service, re-read on
//! every tick so that a change takes effect without a restart).

/// `FollowHostSize`: 1 (the default) = follow the host window, 0 = leave the resolution
/// alone (for a user who sets it by hand).
pub const FOLLOW_VALUE: &str = "FollowHostSize";
/// `DebounceMs`: how long the host size must stay the same before the agent acts.
pub const DEBOUNCE_VALUE: &str = "DebounceMs";
/// `PollMs`: how often the driver is asked when nothing announced a change.
pub const POLL_VALUE: &str = "PollMs";

/// What the follower and the Windows loop need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Whether the guest follows the host window at all.
    pub follow: bool,
    /// A new host size is acted on only after it stayed the same this long (a window being
    /// dragged reports many sizes; only the last one matters).
    pub debounce_ms: u64,
    /// How long to wait before trying a mode Windows does not list yet again.
    pub retry_ms: u64,
    /// How many times a mode Windows does not list is tried before giving up on that size.
    pub max_attempts: u32,
    /// The fallback poll of the driver (device notifications wake the agent earlier).
    pub poll_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            follow: true,
            debounce_ms: 500,
            retry_ms: 250,
            max_attempts: 8,
            poll_ms: 1000,
        }
    }
}

impl Settings {
    /// The settings from named DWORD values (`get` returns `None` for a value that is not
    /// set); out-of-range timings are clamped to something sane.
    pub fn from_values(get: impl Fn(&str) -> Option<u32>) -> Self {
        let defaults = Self::default();
        Self {
            follow: get(FOLLOW_VALUE).is_none_or(|v| v != 0),
            debounce_ms: get(DEBOUNCE_VALUE)
                .map_or(defaults.debounce_ms, |v| u64::from(v).clamp(50, 10_000)),
            poll_ms: get(POLL_VALUE).map_or(defaults.poll_ms, |v| u64::from(v).clamp(100, 60_000)),
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_override_the_defaults_within_bounds() {
        assert_eq!(Settings::from_values(|_| None), Settings::default());
        let off = Settings::from_values(|name| (name == FOLLOW_VALUE).then_some(0));
        assert!(!off.follow);
        let on = Settings::from_values(|name| (name == FOLLOW_VALUE).then_some(7));
        assert!(on.follow);
        let fast = Settings::from_values(|name| match name {
            DEBOUNCE_VALUE => Some(1),
            POLL_VALUE => Some(u32::MAX),
            _ => None,
        });
        assert_eq!((fast.debounce_ms, fast.poll_ms), (50, 60_000));
    }
}
