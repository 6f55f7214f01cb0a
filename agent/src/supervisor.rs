//! The service's decisions about the helper process.
//!
//! A service runs in session 0, which has no access to the console's desktop, so it cannot
//! change the display settings the user sees. The service therefore starts a helper (the same
//! executable, as LocalSystem, in the console session) that runs the follower, and keeps
//! exactly one running while a user is logged on at the console:
//! - a user logs on, or the console moves to another session: the helper of the old session
//!   (if any) is stopped and one is started in the new session;
//! - the user logs off (no user at the console): the helper is stopped and none is started;
//! - the helper exits on its own: it is started again, at once if it had run for a while,
//!   else after a delay that doubles with each quick exit (up to five minutes), so a helper
//!   that cannot run does not become a busy loop.

/// A helper that exits sooner than this after its start counts as a failure.
pub const QUICK_EXIT_MS: u64 = 10_000;
/// The first restart delay after a quick exit.
pub const FIRST_BACKOFF_MS: u64 = 1_000;
/// The longest restart delay.
pub const MAX_BACKOFF_MS: u64 = 300_000;

/// What the service should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Stop the running helper.
    Stop,
    /// Start a helper in this session.
    Start(u32),
}

/// The service's memory about the console and its helper.
#[derive(Debug, Default)]
pub struct Supervisor {
    /// The console session, when a user is logged on there.
    console: Option<u32>,
    /// The running helper: its session and start time.
    helper: Option<(u32, u64)>,
    /// Quick exits in a row.
    quick_exits: u32,
    /// No start before this time.
    not_before_ms: u64,
}

impl Supervisor {
    /// Nothing known yet, no helper.
    pub fn new() -> Self {
        Self::default()
    }

    /// The console session with a logged-on user is now `session` (`None`: nobody is logged
    /// on at the console).
    pub fn console_changed(&mut self, session: Option<u32>, now_ms: u64) -> Vec<Command> {
        let mut commands = Vec::new();
        if session != self.console {
            // A new user or session: the old back-off no longer applies.
            self.quick_exits = 0;
            self.not_before_ms = 0;
        }
        self.console = session;
        if let Some((running, _)) = self.helper {
            if Some(running) != session {
                self.helper = None;
                commands.push(Command::Stop);
            }
        }
        commands.extend(self.poll(now_ms));
        commands
    }

    /// The helper was started in `session` at `now_ms`.
    pub fn helper_started(&mut self, session: u32, now_ms: u64) {
        self.helper = Some((session, now_ms));
    }

    /// The helper exited (or could not be started) at `now_ms`.
    pub fn helper_exited(&mut self, now_ms: u64) {
        let started = self.helper.take().map_or(now_ms, |(_, at)| at);
        if now_ms.saturating_sub(started) < QUICK_EXIT_MS {
            let delay = FIRST_BACKOFF_MS
                .saturating_mul(1u64 << self.quick_exits.min(20))
                .min(MAX_BACKOFF_MS);
            self.quick_exits = self.quick_exits.saturating_add(1);
            self.not_before_ms = now_ms.saturating_add(delay);
        } else {
            self.quick_exits = 0;
            self.not_before_ms = now_ms;
        }
    }

    /// A start that is due at `now_ms`, if any.
    pub fn poll(&mut self, now_ms: u64) -> Option<Command> {
        match (self.console, self.helper) {
            (Some(session), None) if now_ms >= self.not_before_ms => Some(Command::Start(session)),
            _ => None,
        }
    }

    /// When [`poll`](Self::poll) will next have something to do (a pending restart).
    pub fn next_deadline_ms(&self) -> Option<u64> {
        (self.console.is_some() && self.helper.is_none()).then_some(self.not_before_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_helper_follows_the_console_session_and_none_without_a_user() {
        let mut s = Supervisor::new();
        assert_eq!(s.console_changed(None, 0), []);
        assert_eq!(s.console_changed(Some(1), 5), [Command::Start(1)]);
        s.helper_started(1, 5);
        assert_eq!(s.console_changed(Some(1), 6), []);
        assert_eq!(s.poll(7), None);
        assert_eq!(
            s.console_changed(Some(2), 8),
            [Command::Stop, Command::Start(2)]
        );
        s.helper_started(2, 8);
        assert_eq!(s.console_changed(None, 9), [Command::Stop]);
        assert_eq!(s.poll(10_000_000), None);
        assert_eq!(s.next_deadline_ms(), None);
    }

    #[test]
    fn quick_exits_back_off_and_a_long_run_restarts_at_once() {
        let mut s = Supervisor::new();
        assert_eq!(s.console_changed(Some(1), 0), [Command::Start(1)]);
        let mut now = 0;
        let mut delays = Vec::new();
        for _ in 0..12 {
            s.helper_started(1, now);
            s.helper_exited(now + 100);
            let due = s.next_deadline_ms().unwrap();
            assert_eq!(s.poll(due - 1), None);
            assert_eq!(s.poll(due), Some(Command::Start(1)));
            delays.push(due - (now + 100));
            now = due;
        }
        assert_eq!(&delays[..4], [1_000, 2_000, 4_000, 8_000]);
        assert_eq!(*delays.last().unwrap(), MAX_BACKOFF_MS);
        s.helper_started(1, now);
        s.helper_exited(now + QUICK_EXIT_MS);
        assert_eq!(s.poll(now + QUICK_EXIT_MS), Some(Command::Start(1)));
    }
}
