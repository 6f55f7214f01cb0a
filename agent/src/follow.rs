//! What size to set when: the follower, the agent's decision logic.
//!
//! On every tick (a device notification, a display-change message, or the fallback poll)
//! the follower asks the [`Driver`] for the host's preferred size of each display and
//! compares it with what the [`DisplayConfig`] shows. Per display:
//! - a host size is acted on once it stayed the same for [`Settings::debounce_ms`], so a
//!   window being dragged gives one mode change, to its final size;
//! - it is fitted into the driver's limits ([`fit`]); a size already on screen needs nothing;
//! - otherwise the size becomes the monitor's preferred mode (the custom-mode escape, which
//!   makes Windows re-read the monitor) and the display is switched to it, keeping its
//!   rotation: the host size is the screen's, so a display turned by 90 or 270 degrees gets
//!   the desktop size with width and height swapped;
//! - each host size is handled once: after it was applied, found on screen, or refused, the
//!   follower leaves the display alone until the host size changes again. A resolution the
//!   user chose by hand therefore stays until the window is resized, and a size the driver
//!   or Windows refuses is logged once and not retried in a loop ([`Action::GaveUp`]). A
//!   mode Windows does not list yet (it is still re-reading the monitor) is retried a few
//!   times, [`Settings::retry_ms`] apart.
//! - without an interactive desktop (no logged-on user) nothing is changed; the size is
//!   applied when a desktop is there.
//!
//! Turning following off ([`Settings::follow`]) stops all of this; turning it back on
//! applies the current host size.

use viogpu_common::modes::{MAX_DIMENSION, MIN_HEIGHT, MIN_WIDTH};

use crate::driver::{Driver, HostDisplay};
use crate::error::{Error, Result};
use crate::settings::Settings;

/// A size in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Size {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Size {
    /// `width` x `height`.
    pub const fn new(width: u32, height: u32) -> Self {
        Self { width, height }
    }

    /// The same size turned by 90 degrees.
    pub const fn transposed(self) -> Self {
        Self::new(self.height, self.width)
    }
}

impl core::fmt::Display for Size {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// How a desktop is turned on its screen: the driver's present-path rotation
/// (`D3DKMDT_VIDPN_PRESENT_PATH_ROTATION`), counter-clockwise.
pub use viogpu_common::blit::Rotation;

/// The screen size showing a `desktop` turned by `rotation` (and, the same swap, the desktop
/// size for a screen size).
pub const fn turn(rotation: Rotation, size: Size) -> Size {
    if rotation.swaps_axes() {
        size.transposed()
    } else {
        size
    }
}

/// The mode a display shows now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurrentMode {
    /// The desktop size (what the display settings call the resolution).
    pub desktop: Size,
    /// How the desktop is turned on the screen.
    pub rotation: Rotation,
}

impl CurrentMode {
    /// The size of the picture on the screen (the monitor's mode).
    pub const fn screen(&self) -> Size {
        turn(self.rotation, self.desktop)
    }
}

/// The display configuration of the interactive session, as the follower needs it. Displays
/// are named by scanout (= VidPN source id of the viogpudo adapter).
pub trait DisplayConfig {
    /// The mode `scanout` shows, `None` when it is not part of the desktop.
    /// [`Error::NoSession`] when there is no interactive desktop.
    fn current_mode(&mut self, scanout: u32) -> Result<Option<CurrentMode>>;
    /// Switches `scanout` to a `desktop` sized desktop turned by `rotation`.
    /// [`Error::ModeNotListed`] when the display does not offer that mode (yet).
    fn set_mode(&mut self, scanout: u32, desktop: Size, rotation: Rotation) -> Result<()>;
}

/// The size the driver accepts closest to `host`: each side clamped into the mode rules of
/// `viogpu_common::modes::check_size` (640x480 up to 16384 on a side). The driver backs any
/// whole size in that range (its framebuffer pitch is the width times four bytes, so no side
/// needs rounding), and a smaller window shows the clamped mode scaled by the host.
pub fn fit(host: Size) -> Size {
    Size::new(
        host.width.clamp(MIN_WIDTH, MAX_DIMENSION),
        host.height.clamp(MIN_HEIGHT, MAX_DIMENSION),
    )
}

/// What a tick did (or decided not to do) for one display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The display was switched to the host size.
    Applied {
        /// The scanout.
        scanout: u32,
        /// The screen size now shown.
        size: Size,
    },
    /// The display already showed the host size.
    AlreadyShown {
        /// The scanout.
        scanout: u32,
        /// The size.
        size: Size,
    },
    /// The host size cannot be set; the follower does not try it again until the host size
    /// changes.
    GaveUp {
        /// The scanout.
        scanout: u32,
        /// The size.
        size: Size,
        /// Why.
        error: Error,
    },
    /// The host size could not be set yet; it is tried again.
    Waiting {
        /// The scanout.
        scanout: u32,
        /// The size.
        size: Size,
        /// Why.
        error: Error,
    },
}

/// The outcome of one tick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// What happened, per display, in scanout order.
    pub actions: Vec<Action>,
    /// The time (in the tick clock's milliseconds) at which the follower wants its next
    /// tick, when that is before the next poll (a debounce interval ending, a retry).
    pub next_tick_ms: Option<u64>,
}

impl Report {
    fn wake_at(&mut self, at: u64) {
        self.next_tick_ms = Some(self.next_tick_ms.map_or(at, |t| t.min(at)));
    }
}

/// What the follower remembers about one display's host size.
#[derive(Clone, Copy, Debug)]
struct Track {
    scanout: u32,
    /// The host size last seen (fitted).
    target: Size,
    /// When it was first seen.
    since_ms: u64,
    /// Whether it was handled (applied, found on screen, or given up on).
    handled: bool,
    /// Failed attempts to switch to a mode Windows did not list.
    attempts: u32,
}

/// The follower's memory across ticks.
#[derive(Debug, Default)]
pub struct Follower {
    tracks: Vec<Track>,
}

impl Follower {
    /// A follower that has seen nothing yet (its first tick treats every host size as new).
    pub fn new() -> Self {
        Self::default()
    }

    /// One round at time `now_ms` (any monotonic millisecond clock): see the module docs.
    /// Fails only when the driver cannot be asked; nothing was changed then.
    pub fn tick(
        &mut self,
        now_ms: u64,
        settings: &Settings,
        driver: &mut impl Driver,
        display: &mut impl DisplayConfig,
    ) -> Result<Report> {
        let mut report = Report::default();
        if !settings.follow {
            self.tracks.clear();
            return Ok(report);
        }
        let hosts = driver.displays()?;
        // Forget displays without a monitor or a host size: a size they get later is new.
        self.tracks.retain(|t| {
            hosts
                .iter()
                .any(|h| h.scanout == t.scanout && wanted(h).is_some())
        });
        for host in &hosts {
            let Some(target) = wanted(host) else {
                continue;
            };
            let index = match self.tracks.iter().position(|t| t.scanout == host.scanout) {
                Some(index) => index,
                None => {
                    self.tracks.push(Track {
                        scanout: host.scanout,
                        target,
                        since_ms: now_ms,
                        handled: false,
                        attempts: 0,
                    });
                    self.tracks.len() - 1
                }
            };
            let Some(track) = self.tracks.get_mut(index) else {
                continue;
            };
            if track.target != target {
                *track = Track {
                    target,
                    since_ms: now_ms,
                    handled: false,
                    attempts: 0,
                    ..*track
                };
            }
            if track.handled {
                continue;
            }
            let settled_at = track.since_ms.saturating_add(settings.debounce_ms);
            if now_ms < settled_at {
                report.wake_at(settled_at);
                continue;
            }
            if let Some(action) = apply(track, host, now_ms, settings, driver, display, &mut report)
            {
                report.actions.push(action);
            }
        }
        Ok(report)
    }
}

/// The size a display should have: its host size fitted into the limits, if it has a
/// monitor and a host size.
fn wanted(host: &HostDisplay) -> Option<Size> {
    host.connected.then_some(host.preferred?).map(fit)
}

/// Brings one display to its settled host size.
fn apply(
    track: &mut Track,
    host: &HostDisplay,
    now_ms: u64,
    settings: &Settings,
    driver: &mut impl Driver,
    display: &mut impl DisplayConfig,
    report: &mut Report,
) -> Option<Action> {
    let scanout = track.scanout;
    let size = track.target;
    let current = match display.current_mode(scanout) {
        Ok(Some(current)) => current,
        // Not part of the desktop: which displays are on is the user's choice. Looked at
        // again on the next tick.
        Ok(None) => return None,
        Err(error) => {
            return Some(Action::Waiting {
                scanout,
                size,
                error,
            })
        }
    };
    if current.screen() == size {
        track.handled = true;
        return Some(Action::AlreadyShown { scanout, size });
    }
    let result = if host.custom == Some(size) {
        Ok(())
    } else {
        driver.set_custom_size(scanout, Some(size))
    }
    .and_then(|()| display.set_mode(scanout, turn(current.rotation, size), current.rotation));
    match result {
        Ok(()) => {
            track.handled = true;
            Some(Action::Applied { scanout, size })
        }
        Err(Error::NoSession) => Some(Action::Waiting {
            scanout,
            size,
            error: Error::NoSession,
        }),
        Err(error) if error.is_transient() && track.attempts + 1 < settings.max_attempts => {
            track.attempts += 1;
            report.wake_at(now_ms.saturating_add(settings.retry_ms));
            Some(Action::Waiting {
                scanout,
                size,
                error,
            })
        }
        Err(error) => {
            track.handled = true;
            Some(Action::GaveUp {
                scanout,
                size,
                error,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The driver half of an in-memory machine.
    #[derive(Default)]
    struct FakeDriver {
        hosts: Vec<HostDisplay>,
        custom_calls: u32,
    }

    impl Driver for FakeDriver {
        fn displays(&mut self) -> Result<Vec<HostDisplay>> {
            Ok(self.hosts.clone())
        }
        fn set_custom_size(&mut self, scanout: u32, size: Option<Size>) -> Result<()> {
            self.custom_calls += 1;
            self.hosts[scanout as usize].custom = size;
            Ok(())
        }
    }

    /// The display half: `unlisted_sets` mode changes fail with [`Error::ModeNotListed`]
    /// before one succeeds.
    #[derive(Default)]
    struct FakeDisplay {
        current: Vec<Option<CurrentMode>>,
        unlisted_sets: u32,
        set_calls: u32,
    }

    impl DisplayConfig for FakeDisplay {
        fn current_mode(&mut self, scanout: u32) -> Result<Option<CurrentMode>> {
            Ok(self.current[scanout as usize])
        }
        fn set_mode(&mut self, scanout: u32, desktop: Size, rotation: Rotation) -> Result<()> {
            self.set_calls += 1;
            if self.unlisted_sets > 0 {
                self.unlisted_sets -= 1;
                return Err(Error::ModeNotListed);
            }
            self.current[scanout as usize] = Some(CurrentMode { desktop, rotation });
            Ok(())
        }
    }

    fn machine(host: Size, desktop: Size) -> (FakeDriver, FakeDisplay) {
        let driver = FakeDriver {
            hosts: vec![HostDisplay {
                scanout: 0,
                connected: true,
                preferred: Some(host),
                custom: None,
            }],
            custom_calls: 0,
        };
        let display = FakeDisplay {
            current: vec![Some(CurrentMode {
                desktop,
                rotation: Rotation::Identity,
            })],
            ..FakeDisplay::default()
        };
        (driver, display)
    }

    #[test]
    fn fit_clamps_each_side_into_the_mode_rules() {
        assert_eq!(fit(Size::new(1366, 700)), Size::new(1366, 700));
        assert_eq!(fit(Size::new(300, 200)), Size::new(640, 480));
        assert_eq!(fit(Size::new(40000, 1000)), Size::new(16384, 1000));
        assert_eq!(fit(Size::new(1023, 20000)), Size::new(1023, 16384));
    }

    #[test]
    fn rotation_swaps_sides_for_90_and_270_only() {
        let s = Size::new(1920, 1080);
        assert_eq!(turn(Rotation::Identity, s), s);
        assert_eq!(turn(Rotation::Rotate180, s), s);
        assert_eq!(turn(Rotation::Rotate90, s), Size::new(1080, 1920));
        assert_eq!(turn(Rotation::Rotate270, s), Size::new(1080, 1920));
    }

    #[test]
    fn an_unlisted_mode_is_retried_then_given_up() {
        let (mut driver, mut display) = machine(Size::new(1280, 800), Size::new(1024, 768));
        display.unlisted_sets = u32::MAX;
        let mut follower = Follower::new();
        let settings = Settings::default();
        let mut tick = |now| {
            follower
                .tick(now, &settings, &mut driver, &mut display)
                .unwrap()
        };
        assert_eq!(tick(0).next_tick_ms, Some(settings.debounce_ms));
        let mut now = settings.debounce_ms;
        for _ in 1..settings.max_attempts {
            let report = tick(now);
            assert!(
                matches!(report.actions[..], [Action::Waiting { .. }]),
                "{report:?}"
            );
            assert_eq!(report.next_tick_ms, Some(now + settings.retry_ms));
            now += settings.retry_ms;
        }
        let report = tick(now);
        assert!(
            matches!(report.actions[..], [Action::GaveUp { .. }]),
            "{report:?}"
        );
        // Given up: later ticks leave the display alone.
        assert_eq!(tick(now + 10_000), Report::default());
        assert_eq!(driver.custom_calls, 1, "the custom mode is set once");
        assert_eq!(display.set_calls, settings.max_attempts);
    }

    #[test]
    fn a_late_listing_within_the_attempts_is_applied() {
        let (mut driver, mut display) = machine(Size::new(1280, 800), Size::new(1024, 768));
        display.unlisted_sets = 2;
        let mut follower = Follower::new();
        let settings = Settings::default();
        for now in [0, 500, 750] {
            follower
                .tick(now, &settings, &mut driver, &mut display)
                .unwrap();
        }
        let report = follower
            .tick(1000, &settings, &mut driver, &mut display)
            .unwrap();
        assert_eq!(
            report.actions,
            [Action::Applied {
                scanout: 0,
                size: Size::new(1280, 800)
            }]
        );
        assert_eq!(display.set_calls, 3);
    }
}
