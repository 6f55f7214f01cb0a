//! The resolution agent in the guest: the agent's follower (`viogpu-agent`, its portable
//! logic, the code the Windows service runs) over this session. Its escape goes to the
//! driver's DxgkDdiEscape; its display configuration is the session's VidPN commit, after the
//! session answered the driver's child indications as the OS does (re-read the monitor and
//! its modes). So a host resize (a VNC client's SetDesktopSize) travels QEMU -> virtio-gpu
//! config event -> the driver's DPC and re-plug -> the agent -> custom mode -> commit -> the
//! device's scanout.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use dxgkrnl_sim::SimError;
use viogpu_agent::driver::{EscapeDriver, EscapeTransport};
use viogpu_agent::follow::{Action, CurrentMode, DisplayConfig, Follower, Rotation, Size};
use viogpu_agent::settings::Settings;
use viogpu_agent::Error;
use viogpudo::ddi::{
    StatusConnection, D3DKMDT_VIDPN_PRESENT_PATH_ROTATION, D3DKMDT_VPPR_ROTATE180,
    D3DKMDT_VPPR_ROTATE270, D3DKMDT_VPPR_ROTATE90,
};

use super::desktop::{path_rotation, Desktop};
use super::{Outcome, Session};

/// A display the agent switched: scanout, width, height.
pub type Switched = (u32, u32, u32);

/// How long the follow loop sleeps between rounds (QEMU's display event, the debounce).
const ROUND: Duration = Duration::from_millis(20);

/// The session shared by the agent's two seams (one call at a time).
struct Shared<'a> {
    session: RefCell<&'a mut Session>,
    /// Child indications already answered.
    answered: RefCell<usize>,
}

struct Escape<'s, 'a>(&'s Shared<'a>);
struct Displays<'s, 'a>(&'s Shared<'a>);

impl EscapeTransport for Escape<'_, '_> {
    fn escape(&mut self, buf: &mut [u8]) -> viogpu_agent::Result<i32> {
        let mut session = self.0.session.borrow_mut();
        session.sim.escape_raw(buf).map_err(|_| Error::Escape(-1))
    }
}

fn agent_rotation(r: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION) -> Rotation {
    match r {
        D3DKMDT_VPPR_ROTATE90 => Rotation::Rotate90,
        D3DKMDT_VPPR_ROTATE180 => Rotation::Rotate180,
        D3DKMDT_VPPR_ROTATE270 => Rotation::Rotate270,
        _ => Rotation::Identity,
    }
}

impl Shared<'_> {
    /// The OS's answer to the driver's `DxgkCbIndicateChildStatus` calls since the last
    /// look: each indicated child re-read, and the modes of a connected one.
    fn answer_indications(&self) -> viogpu_agent::Result<()> {
        let mut session = self.session.borrow_mut();
        let indicated = session.sim.indicated_child_status();
        let mut answered = self.answered.borrow_mut();
        let mut children: Vec<u32> = indicated
            .iter()
            .skip(*answered)
            .filter(|s| s.kind == StatusConnection.0)
            .map(|s| s.child_uid)
            .collect();
        *answered = indicated.len();
        children.sort_unstable();
        children.dedup();
        for uid in children {
            let child = session.sim.refresh_child(uid).map_err(|_| Error::Os(1))?;
            if child.connected {
                session
                    .sim
                    .recommend_monitor_modes(uid)
                    .map_err(|_| Error::Os(2))?;
            }
            if let Some(slot) = session.children.iter_mut().find(|c| c.uid == uid) {
                *slot = child;
            }
        }
        Ok(())
    }
}

impl DisplayConfig for Displays<'_, '_> {
    fn current_mode(&mut self, scanout: u32) -> viogpu_agent::Result<Option<CurrentMode>> {
        self.0.answer_indications()?;
        let session = self.0.session.borrow();
        Ok(session
            .sim
            .committed_mode(scanout)
            .map(|(w, h, r)| CurrentMode {
                desktop: Size::new(w, h),
                rotation: agent_rotation(r),
            }))
    }

    fn set_mode(
        &mut self,
        scanout: u32,
        desktop: Size,
        rotation: Rotation,
    ) -> viogpu_agent::Result<()> {
        self.0.answer_indications()?;
        let mut session = self.0.session.borrow_mut();
        let path = path_rotation(rotation);
        match session
            .sim
            .set_mode_rotated(scanout, desktop.width, desktop.height, path)
        {
            Ok(()) => {
                // What the OS shows after the mode change: a black desktop (the commit
                // presented it already).
                let mut black = Desktop::filled(desktop.width, desktop.height, 0);
                black.rotation = rotation;
                if let Some(slot) = session.desktops.get_mut(scanout as usize) {
                    *slot = Some(black);
                }
                Ok(())
            }
            Err(SimError::ModeNotOffered { .. }) => Err(Error::ModeNotListed),
            Err(SimError::Status { status, .. }) => Err(Error::ModeRefused(status)),
            Err(_) => Err(Error::ModeRefused(-1)),
        }
    }
}

impl Session {
    /// Runs the agent's follower (default settings: 500 ms debounce) until it switched a
    /// display to its host size, for at most `timeout`; returns each switch (scanout, width,
    /// height) and the milliseconds it took.
    pub fn follow(&mut self, timeout: Duration) -> Outcome<(Vec<Switched>, u128)> {
        self.running()?;
        let started = Instant::now();
        let settings = Settings::default();
        let mut follower = Follower::new();
        let mut last = String::new();
        let applied = {
            let shared = Shared {
                session: RefCell::new(&mut *self),
                answered: RefCell::new(0),
            };
            let mut driver = EscapeDriver::new(Escape(&shared));
            let mut displays = Displays(&shared);
            loop {
                // Deliver what the device signalled (a display event: the driver's DPC
                // re-reads the displays and re-plugs the monitor).
                shared.session.borrow().sim.interrupt();
                let now = started.elapsed().as_millis() as u64;
                let report = follower
                    .tick(now, &settings, &mut driver, &mut displays)
                    .map_err(|e| format!("agent: {e}"))?;
                let applied: Vec<Switched> = report
                    .actions
                    .iter()
                    .filter_map(|a| match *a {
                        Action::Applied { scanout, size } => {
                            Some((scanout, size.width, size.height))
                        }
                        _ => None,
                    })
                    .collect();
                if !applied.is_empty() {
                    break applied;
                }
                if !report.actions.is_empty() {
                    last = format!("{:?}", report.actions);
                }
                if started.elapsed() >= timeout {
                    return Err(format!(
                        "the agent changed no display in {timeout:?} (last actions: {last})"
                    ));
                }
                std::thread::sleep(ROUND);
            }
        };
        let took = started.elapsed().as_millis();
        self.finish()?;
        Ok((applied, took))
    }
}
