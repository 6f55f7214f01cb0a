//! What reaches the screen: mode changes through the VidPN (with the resolution agent's custom
//! mode for a size the monitor does not list), rotations, and presents of the desktops with
//! dirty and move rects.

use std::time::Instant;

use viogpu_common::blit::{Point, Rect, Rotation};
use viogpudo::adapter::{
    EscapeCustomMode, EscapeHeader, ESCAPE_MAGIC, ESCAPE_SET_CUSTOM_MODE, ESCAPE_VERSION,
};
use viogpudo::ddi::{nt_success, D3DKMT_MOVE_RECT, POINT};
use zerocopy::{FromBytes, IntoBytes};

use super::desktop::{os_rect, path_rotation, Desktop};
use super::{Outcome, Session};
use dxgkrnl_sim::SimError;

/// What one present sent to the device, as the machine saw it on the control queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentReport {
    /// Rects handed to the driver (dirty and move).
    pub rects: usize,
    /// `TRANSFER_TO_HOST_2D` requests the driver queued.
    pub transfers: u64,
    /// Pixel bytes those transfers cover.
    pub bytes: u64,
}

impl Session {
    /// Asks the driver, through its escape, to offer `width` x `height` on `target` (what the
    /// resolution agent does when the host window takes a size no monitor lists), then
    /// re-enumerates the child as the OS does after the driver's status indication.
    fn add_custom_mode(&mut self, target: u32, width: u32, height: u32) -> Outcome<()> {
        let request = EscapeCustomMode {
            header: EscapeHeader {
                magic: ESCAPE_MAGIC,
                version: ESCAPE_VERSION,
                command: ESCAPE_SET_CUSTOM_MODE,
                size: std::mem::size_of::<EscapeCustomMode>() as u32,
                status: 0,
                reserved: 0,
            },
            scanout: target,
            width,
            height,
            reserved: 0,
        };
        let mut bytes = request.as_bytes().to_vec();
        let status = self.sim.escape_raw(&mut bytes);
        let status = self.sim("DxgkDdiEscape", status)?;
        let reply = EscapeCustomMode::read_from_bytes(&bytes)
            .map_err(|_| "escape reply of the wrong size".to_string())?;
        if !nt_success(status) || !nt_success(reply.header.status) {
            return Err(format!(
                "custom mode {width}x{height}: escape status {:#010x}, reply {:#010x}",
                status as u32, reply.header.status as u32
            ));
        }
        let child = self.sim.refresh_child(target);
        let child = self.sim("re-enumerating the child", child)?;
        if let Some(slot) = self.children.iter_mut().find(|c| c.uid == target) {
            *slot = child;
        }
        let modes = self.sim.recommend_monitor_modes(target);
        self.sim("DxgkDdiRecommendMonitorModes", modes)?;
        Ok(())
    }

    /// Commits a `width` x `height` desktop with `rotation` on `source` through the VidPN
    /// and makes it visible; the caller then presents the new desktop, which is the OS's one
    /// repaint after a mode change. A size the driver does not offer gets a custom mode
    /// first; the answer says so.
    fn commit(
        &mut self,
        source: u32,
        width: u32,
        height: u32,
        rotation: Rotation,
    ) -> Outcome<bool> {
        let path = path_rotation(rotation);
        match self.sim.commit_mode_rotated(source, width, height, path) {
            Ok(()) => Ok(false),
            Err(SimError::ModeNotOffered {
                width: tw,
                height: th,
                ..
            }) => {
                self.add_custom_mode(source, tw, th)?;
                let again = self.sim.commit_mode_rotated(source, width, height, path);
                self.sim(&format!("mode {width}x{height}"), again)?;
                Ok(true)
            }
            Err(e) => self.sim(&format!("mode {width}x{height}"), Err(e)),
        }
    }

    /// Sets `source` to a `width` x `height` desktop filled with `color`, presented. Returns
    /// whether a custom mode was needed; the transfers and bytes it sent are in the timings.
    pub fn set_mode(&mut self, source: u32, width: u32, height: u32, color: u32) -> Outcome<bool> {
        self.running()?;
        self.desktop_slot(source)?;
        // The OS draws the new desktop: not the driver's time.
        let desktop = Desktop::filled(width, height, color);
        let started = Instant::now();
        let before = self.machine().monitor().transfers();
        let custom = self.commit(source, width, height, Rotation::Identity)?;
        let full = desktop.full_rect();
        self.desktops[source as usize] = Some(desktop);
        self.present(source, &[full], &[])?;
        // The driver's time: without the simulator's copy of the source into user memory.
        self.timings.mode_change = Some(
            started
                .elapsed()
                .saturating_sub(self.sim.last_source_copy()),
        );
        let after = self.machine().monitor().transfers();
        self.timings.mode_transfers = Some((
            after.transfers - before.transfers,
            after.bytes - before.bytes,
        ));
        Ok(custom)
    }

    /// Shows the desktop of `source` under `rotation` (the framebuffer takes the rotated
    /// size) and presents it whole. Returns the framebuffer size.
    pub fn rotate(&mut self, source: u32, rotation: Rotation) -> Outcome<(u32, u32)> {
        self.running()?;
        let started = Instant::now();
        let (w, h) = {
            let desktop = self.desktop_mut(source)?;
            (desktop.width(), desktop.height())
        };
        self.commit(source, w, h, rotation)?;
        let desktop = self.desktop_mut(source)?;
        desktop.rotation = rotation;
        let full = desktop.full_rect();
        self.present(source, &[full], &[])?;
        self.timings.mode_change = Some(started.elapsed());
        Ok(rotation.framebuffer_size(w, h))
    }

    /// Presents `dirty` and `moves` of the desktop of `source` and waits until the device has
    /// it all.
    pub(super) fn present(
        &mut self,
        source: u32,
        dirty: &[Rect],
        moves: &[(Point, Rect)],
    ) -> Outcome<PresentReport> {
        self.running()?;
        let started = Instant::now();
        let before = self.machine().monitor().transfers();
        let dirty: Vec<_> = dirty.iter().map(os_rect).collect();
        let moves: Vec<_> = moves
            .iter()
            .map(|(from, dest)| D3DKMT_MOVE_RECT {
                SourcePoint: POINT {
                    x: from.x,
                    y: from.y,
                },
                DestRect: os_rect(dest),
            })
            .collect();
        let desktop = self
            .desktops
            .get(source as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("source {source} has no mode"))?;
        let presented = self.sim.present(source, &desktop.surface, &dirty, &moves);
        self.sim("DxgkDdiPresentDisplayOnly", presented)?;
        self.finish()?;
        // The driver's time: without the simulator's copy of the source into user memory.
        self.timings.present = Some(
            started
                .elapsed()
                .saturating_sub(self.sim.last_source_copy()),
        );
        let after = self.machine().monitor().transfers();
        Ok(PresentReport {
            rects: dirty.len() + moves.len(),
            transfers: after.transfers - before.transfers,
            bytes: after.bytes - before.bytes,
        })
    }

    /// Draws the test pattern on the whole desktop and presents it. A source without a mode is
    /// first given its monitor's preferred mode.
    pub fn pattern(&mut self, source: u32) -> Outcome<PresentReport> {
        self.running()?;
        if self.desktop_size(source)?.is_none() {
            let (w, h) = self.preferred_mode(source)?;
            self.set_mode(source, w, h, 0)?;
        }
        let desktop = self.desktop_mut(source)?;
        desktop.draw_pattern();
        let full = desktop.full_rect();
        self.present(source, &[full], &[])
    }

    /// Fills each rect of the desktop with its color and presents exactly those rects.
    pub fn fill_and_present(
        &mut self,
        source: u32,
        fills: &[(Rect, u32)],
    ) -> Outcome<PresentReport> {
        self.running()?;
        let desktop = self.desktop_mut(source)?;
        for (rect, _) in fills {
            desktop.check(rect)?;
        }
        for (rect, color) in fills {
            desktop.fill_rect(rect, *color);
        }
        let dirty: Vec<Rect> = fills.iter().map(|(r, _)| *r).collect();
        self.present(source, &dirty, &[])
    }

    /// Scrolls the desktop (pixels at `from` appear at `dest`) and presents it as a move rect.
    pub fn move_and_present(
        &mut self,
        source: u32,
        from: Point,
        dest: Rect,
    ) -> Outcome<PresentReport> {
        self.running()?;
        let desktop = self.desktop_mut(source)?;
        desktop.check(&dest)?;
        let origin = Rect::new(
            from.x,
            from.y,
            from.x.saturating_add(dest.width() as i32),
            from.y.saturating_add(dest.height() as i32),
        );
        desktop.check(&origin)?;
        desktop.move_rect(from, &dest);
        self.present(source, &[], &[(from, dest)])
    }
}
