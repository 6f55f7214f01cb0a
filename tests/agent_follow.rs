//! The resolution agent with the real driver: a host display change in the device model
//! reaches the driver (config-change interrupt, DPC, child re-plug), the agent's follower
//! reads the host size through the driver's escape, sets it as the custom mode and switches
//! the display (the simulator's VidPN commit), and the device's scanout shows the new size.
//! The agent's two Windows seams are implemented over the simulator: [`SimEscape`] carries
//! the escape bytes to DxgkDdiEscape, [`SimDisplays`] does what the display settings and
//! the monitor stack do.
#![allow(clippy::unwrap_used)]

mod sim_support;

use std::cell::RefCell;
use std::rc::Rc;

use dxgkrnl_sim::{SimError, Surface};
use sim_support::{assert_shows, Rig};
use viogpu_agent::driver::{EscapeDriver, EscapeTransport};
use viogpu_agent::follow::{Action, CurrentMode, DisplayConfig, Follower, Rotation, Size};
use viogpu_agent::settings::Settings;
use viogpu_agent::Error;
use viogpu_common::protocol::{CommandType, ResponseType};
use viogpudo::ddi::*;
use viogpudo::thunks::STATUS_PRIVILEGED_INSTRUCTION;

type Shared = Rc<RefCell<Rig>>;

/// `D3DKMTEscape` of the agent's Windows layer: the bytes go to the driver's
/// DxgkDdiEscape, as dxgkrnl copies them.
struct SimEscape(Shared);

impl EscapeTransport for SimEscape {
    fn escape(&mut self, buf: &mut [u8]) -> viogpu_agent::Result<i32> {
        Ok(self.0.borrow_mut().sim.escape_raw(buf).unwrap())
    }
}

/// The display configuration of the console session: the OS's answer to the driver's child
/// indications (re-read the monitor and its modes), then the display-settings change as the
/// VidPN manager commits it. `session` false: no user is logged on.
struct SimDisplays {
    rig: Shared,
    session: bool,
    /// Child indications already answered.
    answered: usize,
}

fn rotation_of(r: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION) -> Rotation {
    match r {
        D3DKMDT_VPPR_ROTATE90 => Rotation::Rotate90,
        D3DKMDT_VPPR_ROTATE180 => Rotation::Rotate180,
        D3DKMDT_VPPR_ROTATE270 => Rotation::Rotate270,
        _ => Rotation::Identity,
    }
}

fn path_rotation(r: Rotation) -> D3DKMDT_VIDPN_PRESENT_PATH_ROTATION {
    match r {
        Rotation::Identity => D3DKMDT_VPPR_IDENTITY,
        Rotation::Rotate90 => D3DKMDT_VPPR_ROTATE90,
        Rotation::Rotate180 => D3DKMDT_VPPR_ROTATE180,
        Rotation::Rotate270 => D3DKMDT_VPPR_ROTATE270,
    }
}

impl SimDisplays {
    /// What the monitor stack does after `DxgkCbIndicateChildStatus`: re-reads each indicated
    /// child, and the modes of a connected one.
    fn settle(&mut self) {
        let mut rig = self.rig.borrow_mut();
        let indicated = rig.sim.indicated_child_status();
        let mut children: Vec<u32> = indicated
            .iter()
            .skip(self.answered)
            .filter(|s| s.kind == StatusConnection.0)
            .map(|s| s.child_uid)
            .collect();
        self.answered = indicated.len();
        children.sort_unstable();
        children.dedup();
        for uid in children {
            if rig.sim.refresh_child(uid).unwrap().connected {
                rig.sim.recommend_monitor_modes(uid).unwrap();
            }
        }
    }
}

impl DisplayConfig for SimDisplays {
    fn current_mode(&mut self, scanout: u32) -> viogpu_agent::Result<Option<CurrentMode>> {
        if !self.session {
            return Err(Error::NoSession);
        }
        self.settle();
        Ok(self
            .rig
            .borrow()
            .sim
            .committed_mode(scanout)
            .map(|(w, h, r)| CurrentMode {
                desktop: Size::new(w, h),
                rotation: rotation_of(r),
            }))
    }

    fn set_mode(
        &mut self,
        scanout: u32,
        desktop: Size,
        rotation: Rotation,
    ) -> viogpu_agent::Result<()> {
        if !self.session {
            return Err(Error::NoSession);
        }
        self.settle();
        let result = self.rig.borrow_mut().sim.set_mode_rotated(
            scanout,
            desktop.width,
            desktop.height,
            path_rotation(rotation),
        );
        match result {
            Ok(()) => Ok(()),
            Err(SimError::ModeNotOffered { .. }) => Err(Error::ModeNotListed),
            Err(SimError::Status { status, .. }) => Err(Error::ModeRefused(status)),
            Err(other) => panic!("the mode change broke a rule: {other:?}"),
        }
    }
}

/// The driver on a machine with `displays`, booted, and the agent's follower with both seams.
struct Agent {
    rig: Shared,
    driver: EscapeDriver<SimEscape>,
    displays: SimDisplays,
    follower: Follower,
    settings: Settings,
}

impl Agent {
    fn new(displays: &[(u32, u32)]) -> Self {
        let rig = Rc::new(RefCell::new(Rig::booted(displays)));
        Self {
            driver: EscapeDriver::new(SimEscape(Rc::clone(&rig))),
            displays: SimDisplays {
                rig: Rc::clone(&rig),
                session: true,
                answered: 0,
            },
            rig,
            follower: Follower::new(),
            settings: Settings::default(),
        }
    }

    /// The host resizes the window of `scanout`: the device model's display changes and its
    /// config-change interrupt is delivered.
    fn host_resizes(&self, scanout: u32, width: u32, height: u32) {
        self.rig
            .borrow_mut()
            .display_change(scanout, width, height, true);
    }

    fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        self.follower
            .tick(now_ms, &self.settings, &mut self.driver, &mut self.displays)
            .unwrap()
            .actions
    }

    fn committed(&self, scanout: u32) -> Option<(u32, u32, D3DKMDT_VIDPN_PRESENT_PATH_ROTATION)> {
        self.rig.borrow().sim.committed_mode(scanout)
    }

    fn commits(&self) -> usize {
        let rig = self.rig.borrow();
        rig.sim
            .ddi_calls()
            .iter()
            .filter(|&&d| d == "DxgkDdiCommitVidPn")
            .count()
    }

    /// Presents a pattern on `scanout`'s desktop and checks the device's screen shows it:
    /// the screen has the new size and the right pixels.
    fn assert_screen_shows_desktop(&self, scanout: u32, seed: u32) {
        let (w, h, rotation) = self.committed(scanout).unwrap();
        let surface = Surface::pattern(w, h, seed);
        let mut rig = self.rig.borrow_mut();
        rig.sim.present_full(scanout, &surface).unwrap();
        assert_shows(&rig.screen(scanout), &surface, rotation);
    }
}

fn applied(scanout: u32, width: u32, height: u32) -> Action {
    Action::Applied {
        scanout,
        size: Size::new(width, height),
    }
}

#[test]
fn the_guest_follows_a_host_display_change_to_the_new_size() {
    let mut agent = Agent::new(&[(1024, 768)]);
    agent.assert_screen_shows_desktop(0, 1);
    assert_eq!(
        agent.tick(0),
        [],
        "nothing to do: the host size is on screen"
    );
    assert_eq!(
        agent.tick(1000),
        [Action::AlreadyShown {
            scanout: 0,
            size: Size::new(1024, 768)
        }]
    );

    // An odd window size: Windows keeps the mode it remembers for the monitor.
    agent.host_resizes(0, 1366, 705);
    assert_eq!(agent.committed(0), Some((1024, 768, D3DKMDT_VPPR_IDENTITY)));
    assert_eq!(agent.tick(2000), [], "debouncing");
    assert_eq!(agent.tick(2500), [applied(0, 1366, 705)]);
    assert_eq!(agent.committed(0), Some((1366, 705, D3DKMDT_VPPR_IDENTITY)));
    let screen = agent.rig.borrow().screen(0);
    assert_eq!((screen.width, screen.height), (1366, 705));
    agent.assert_screen_shows_desktop(0, 2);
    // The escape reports the custom size the agent set.
    use viogpu_agent::driver::Driver;
    let host = agent.driver.displays().unwrap();
    assert_eq!(host[0].custom, Some(Size::new(1366, 705)));
    assert_eq!(agent.tick(5000), [], "handled once");
    agent.rig.borrow().assert_clean();
}

#[test]
fn a_window_being_dragged_gives_one_mode_change_to_its_last_size() {
    let mut agent = Agent::new(&[(1024, 768)]);
    let commits = agent.commits();
    for (i, (w, h)) in [(1100, 800), (1180, 840), (1270, 890), (1300, 900)]
        .into_iter()
        .enumerate()
    {
        let now = 100 * i as u64;
        agent.host_resizes(0, w, h);
        assert_eq!(agent.tick(now), []);
    }
    // The last size appeared at 300 ms; the debounce interval is 500 ms.
    assert_eq!(agent.tick(799), []);
    assert_eq!(agent.commits(), commits, "no mode change while dragging");
    assert_eq!(agent.tick(800), [applied(0, 1300, 900)]);
    assert_eq!(agent.commits(), commits + 1, "exactly one mode change");
    agent.assert_screen_shows_desktop(0, 3);
}

#[test]
fn a_custom_mode_the_driver_refuses_is_given_up_and_not_retried() {
    let mut agent = Agent::new(&[(1024, 768)]);
    // An agent that is not LocalSystem: the driver refuses the custom mode.
    agent.rig.borrow_mut().sim.set_escape_caller_trusted(false);
    agent.host_resizes(0, 1500, 900);
    agent.tick(0);
    assert_eq!(
        agent.tick(500),
        [Action::GaveUp {
            scanout: 0,
            size: Size::new(1500, 900),
            error: Error::DriverRefused(STATUS_PRIVILEGED_INSTRUCTION),
        }]
    );
    let commits = agent.commits();
    for now in (1000..20_000).step_by(1000) {
        assert_eq!(agent.tick(now), []);
    }
    assert_eq!(agent.commits(), commits);
    assert_eq!(agent.committed(0), Some((1024, 768, D3DKMDT_VPPR_IDENTITY)));
    agent.assert_screen_shows_desktop(0, 4);
    // A new host size is a new request.
    agent.rig.borrow_mut().sim.set_escape_caller_trusted(true);
    agent.host_resizes(0, 1600, 900);
    agent.tick(30_000);
    assert_eq!(agent.tick(30_500), [applied(0, 1600, 900)]);
}

#[test]
fn a_mode_change_the_device_refuses_keeps_the_picture_and_is_not_retried() {
    let mut agent = Agent::new(&[(1024, 768)]);
    agent.assert_screen_shows_desktop(0, 5);
    agent.host_resizes(0, 1920, 1080);
    agent.tick(0);
    agent.rig.borrow().gpu().fail_next(
        CommandType::RESOURCE_CREATE_2D,
        ResponseType::ERR_OUT_OF_MEMORY,
    );
    let actions = agent.tick(500);
    assert!(
        matches!(
            actions[..],
            [Action::GaveUp {
                scanout: 0,
                error: Error::ModeRefused(_),
                ..
            }]
        ),
        "{actions:?}"
    );
    let commits = agent.commits();
    assert_eq!(agent.tick(5_000), []);
    assert_eq!(agent.commits(), commits);
    assert_eq!(agent.committed(0), Some((1024, 768, D3DKMDT_VPPR_IDENTITY)));
    let screen = agent.rig.borrow().screen(0);
    assert_eq!((screen.width, screen.height), (1024, 768));
}

#[test]
fn following_turned_off_leaves_the_resolution_alone_until_turned_on() {
    let mut agent = Agent::new(&[(1024, 768)]);
    agent.settings.follow = false;
    agent.host_resizes(0, 1280, 1024);
    for now in (0..5000).step_by(500) {
        assert_eq!(agent.tick(now), []);
    }
    assert_eq!(agent.committed(0), Some((1024, 768, D3DKMDT_VPPR_IDENTITY)));
    agent.settings.follow = true;
    assert_eq!(agent.tick(5000), []);
    assert_eq!(agent.tick(5500), [applied(0, 1280, 1024)]);
    agent.assert_screen_shows_desktop(0, 6);
}

#[test]
fn a_resolution_set_by_hand_stays_until_the_window_changes_again() {
    let mut agent = Agent::new(&[(1024, 768)]);
    agent.host_resizes(0, 1280, 800);
    agent.tick(0);
    assert_eq!(agent.tick(500), [applied(0, 1280, 800)]);
    // The user picks another resolution in the display settings.
    agent.rig.borrow_mut().sim.set_mode(0, 800, 600).unwrap();
    for now in (1000..10_000).step_by(500) {
        assert_eq!(agent.tick(now), []);
    }
    assert_eq!(agent.committed(0), Some((800, 600, D3DKMDT_VPPR_IDENTITY)));
    agent.host_resizes(0, 1440, 900);
    agent.tick(10_000);
    assert_eq!(agent.tick(10_500), [applied(0, 1440, 900)]);
}

#[test]
fn each_monitor_follows_its_own_window() {
    let mut agent = Agent::new(&[(1024, 768), (800, 600)]);
    agent
        .rig
        .borrow_mut()
        .sim
        .set_modes(&[(1, Some((800, 600)))])
        .unwrap();
    agent.host_resizes(0, 1600, 1000);
    agent.host_resizes(1, 1024, 700);
    agent.tick(0);
    assert_eq!(
        agent.tick(500),
        [applied(0, 1600, 1000), applied(1, 1024, 700)]
    );
    for scanout in 0..2 {
        agent.assert_screen_shows_desktop(scanout, 7 + scanout);
    }
    // Only the second window changes next.
    agent.host_resizes(1, 900, 700);
    let commits = agent.commits();
    agent.tick(1000);
    assert_eq!(agent.tick(1500), [applied(1, 900, 700)]);
    assert_eq!(agent.commits(), commits + 1);
    assert_eq!(
        agent.committed(0),
        Some((1600, 1000, D3DKMDT_VPPR_IDENTITY))
    );
    agent.rig.borrow().assert_clean();
}

#[test]
fn a_rotated_display_gets_the_host_size_on_screen_and_keeps_its_rotation() {
    let mut agent = Agent::new(&[(1024, 768)]);
    for (i, rotation) in [D3DKMDT_VPPR_ROTATE90, D3DKMDT_VPPR_ROTATE270]
        .into_iter()
        .enumerate()
    {
        // Portrait desktop on the landscape screen.
        agent
            .rig
            .borrow_mut()
            .sim
            .set_mode_rotated(0, 768, 1024, rotation)
            .unwrap();
        let (w, h) = [(1920, 1080), (1280, 720)][i];
        let t = 10_000 * i as u64;
        agent.host_resizes(0, w, h);
        agent.tick(t);
        assert_eq!(agent.tick(t + 500), [applied(0, w, h)]);
        assert_eq!(
            agent.committed(0),
            Some((h, w, rotation)),
            "desktop sides swapped"
        );
        let screen = agent.rig.borrow().screen(0);
        assert_eq!(
            (screen.width, screen.height),
            (w, h),
            "the screen has the host size"
        );
        agent.assert_screen_shows_desktop(0, 9 + i as u32);
    }
}

#[test]
fn without_a_logged_on_user_nothing_changes_until_one_logs_on() {
    let mut agent = Agent::new(&[(1024, 768)]);
    agent.displays.session = false;
    agent.host_resizes(0, 1280, 960);
    agent.tick(0);
    let commits = agent.commits();
    for now in (500..5000).step_by(500) {
        let actions = agent.tick(now);
        assert!(
            matches!(
                actions[..],
                [Action::Waiting {
                    error: Error::NoSession,
                    ..
                }]
            ),
            "{actions:?}"
        );
    }
    assert_eq!(agent.commits(), commits);
    agent.displays.session = true;
    assert_eq!(agent.tick(5000), [applied(0, 1280, 960)]);
    agent.assert_screen_shows_desktop(0, 11);
}
