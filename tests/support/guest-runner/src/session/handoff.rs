//! The post-display hand-off as Windows does it on a driver update, then the next owner:
//! `DxgkDdiStopDeviceAndReleasePostDisplayOwnership`, and the test pattern written straight
//! into the display it described (rows `Pitch` bytes apart from `PhysicAddress`), through a
//! mapping of the device memory that holds it (sysfs `resourceN`), with no DDI and no
//! command to the device: what the Basic Display Driver does.

use std::time::Instant;

use viogpu_guest_runner::hosted::bar::BarMapping;
use viogpu_guest_runner::scene;

use super::{Outcome, Session};

/// What the hand-off described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandOff {
    /// The target the driver handed over.
    pub target: u32,
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// Bytes per row.
    pub pitch: u32,
    /// The physical address of the first pixel.
    pub address: u64,
    /// The BAR that holds it.
    pub bar: u8,
}

impl Session {
    /// Hands target `target`'s display over, then writes the test pattern into it as its
    /// next owner. Fails (after the hand-off) when the display is not in a BAR of the device:
    /// a guest-RAM framebuffer of a virtio-gpu-pci reaches no screen by itself.
    pub fn hand_off(&mut self, target: u32) -> Outcome<HandOff> {
        self.running()?;
        let started = Instant::now();
        let released = self.sim.stop_and_release_post_display(target);
        let info = self.sim("DxgkDdiStopDeviceAndReleasePostDisplayOwnership", released)?;
        self.desktops.iter_mut().for_each(|d| *d = None);
        self.finish()?;
        self.timings.mode_change = Some(started.elapsed());
        let (w, h, pitch) = (info.Width, info.Height, info.Pitch);
        let address = u64::try_from(info.PhysicAddress.QuadPart).map_err(|_| {
            format!(
                "negative display address {:#x}",
                info.PhysicAddress.QuadPart
            )
        })?;
        let len = u64::from(pitch) * u64::from(h);
        if w == 0 || h == 0 || u64::from(pitch) < u64::from(w) * 4 {
            return Err(format!("a {w}x{h} display with pitch {pitch}"));
        }
        let bar = self
            .machine()
            .pci()
            .memory_bars()
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|(_, r)| address >= r.start && address + len <= r.start + r.len)
            .ok_or_else(|| {
                format!("the display at {address:#x} (+{len:#x}) is in no BAR of the device")
            })?;
        let (index, resource) = bar;
        let offset = address - resource.start;
        let mapping =
            BarMapping::map(self.machine().pci(), index, offset, len).map_err(|e| e.to_string())?;
        let first = (offset - mapping.bar_offset()) as usize;
        for y in 0..h {
            let row = first + y as usize * pitch as usize;
            for x in 0..w {
                let pixel = u32::from_le_bytes(scene::bgra(scene::pattern_pixel(x, y, w, h)));
                if !mapping.write(row + 4 * x as usize, 4, pixel) {
                    return Err(format!("pixel ({x}, {y}) outside the mapping"));
                }
            }
        }
        Ok(HandOff {
            target: info.TargetId,
            size: (w, h),
            pitch,
            address,
            bar: index,
        })
    }
}
