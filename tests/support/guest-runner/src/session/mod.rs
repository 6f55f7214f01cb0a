//! The runner's device session: the driver (`viogpudo`), loaded by the dxgkrnl simulator onto
//! the [`GuestMachine`], driven through its DDIs the way Windows drives a display-only driver
//! — the same code and the same simulator as the Linux scenario tests, on QEMU's real device.
//!
//! The session plays the OS: it boots the adapter ([`Sim::boot`]: AddDevice, StartDevice,
//! children, EDIDs, driver caps, monitor modes, the preferred mode committed through the VidPN
//! on each connected target), keeps each source's desktop ([`Desktop`]) and presents from it,
//! changes modes and rotations through the VidPN, sets the pointer, powers the adapter down
//! and up, shows the bugcheck screen, and stops and removes the device. Mode and present
//! commands live in `display`, the pointer in `cursor`.
//!
//! Every command ends by waiting until the device has given back every request (the machine
//! sees the rings; the simulator delivers the synthesised interrupts meanwhile, so the driver
//! reaps its completions in its DPC), then fails if the driver misused a dxgkrnl callback or
//! touched an unmapped register. Timings include that wait, so they run until QEMU has the
//! pixels.

mod agent;
mod cursor;
mod desktop;
mod display;
mod handoff;

use std::time::{Duration, Instant};

use dxgkrnl_sim::{preferred_mode, Child, Phase, Sim, SimError};
use viogpu_common::blit::Rect;
use viogpu_guest_runner::hosted::dma::DevMemHal;
use viogpu_guest_runner::hosted::machine::GuestMachine;
use viogpu_guest_runner::scene;
use viogpudo::ddi::{PowerDeviceD0, PowerDeviceD3};

use desktop::Desktop;

pub use display::PresentReport;

/// A runner error: one line of text for the `ERR` answer.
pub type Failure = String;
/// Result of session operations.
pub type Outcome<T> = Result<T, Failure>;

/// Longest wait for the device to give back every request (an 8K transfer under TCG takes
/// well under a second; this only bounds a hung device).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the session lets pass between two looks at the rings while it waits.
const SETTLE_POLL_US: u64 = 100;
/// Trace lines of the driver quoted in a failure.
const QUOTED_TRACE_LINES: usize = 3;

/// A simulator step's failure as text, with the callback misuse the simulator saw and the
/// driver's last trace lines. The step's events are dropped, so the next command starts clean.
fn sim_failure(sim: &Sim<GuestMachine>, what: &str, e: SimError) -> Failure {
    let mut text = format!("{what}: {e}");
    let errors = sim.errors();
    if !errors.is_empty() {
        text.push_str(&format!(" (callback misuse: {})", errors.join("; ")));
    }
    sim.clear_events();
    let trace = sim.trace_lines();
    let tail: Vec<&str> = trace
        .iter()
        .skip(trace.len().saturating_sub(QUOTED_TRACE_LINES))
        .map(String::as_str)
        .collect();
    if !tail.is_empty() {
        text.push_str(&format!(" (driver trace: {})", tail.join(" | ")));
    }
    text
}

/// What `stop` leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leftovers {
    /// DMA bytes still allocated after RemoveDevice and Unload.
    pub dma_bytes: usize,
    /// BAR mappings still live.
    pub mappings: usize,
    /// The device status register (0: the driver reset the device).
    pub device_status: u8,
}

/// The last measured durations.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    /// The last present (until the device gave everything back).
    pub present: Option<Duration>,
    /// The last mode change (VidPN commit, the OS's repaint and the new desktop presented).
    pub mode_change: Option<Duration>,
    /// `TRANSFER_TO_HOST_2D` requests and the pixel bytes they cover of the last `mode`
    /// (commit, the OS's repaint, the new desktop presented).
    pub mode_transfers: Option<(u64, u64)>,
}

/// The runner's device session (see the module documentation).
pub struct Session {
    sim: Sim<GuestMachine>,
    /// The children as the OS last enumerated them.
    children: Vec<Child>,
    /// Each source's desktop (None: no mode committed).
    desktops: Vec<Option<Desktop>>,
    stopped: bool,
    /// Stray register accesses already reported.
    strays_seen: u64,
    timings: Timings,
}

impl Session {
    /// Opens the device and boots the adapter as Windows does.
    pub fn open(dma: DevMemHal) -> Outcome<Self> {
        let machine = GuestMachine::open(dma).map_err(|e| e.to_string())?;
        let mut sim = Sim::load(viogpudo::entry::initialization_data(), machine)
            .map_err(|e| format!("loading the driver: {e}"))?;
        let boot = match sim.boot() {
            Ok(boot) => boot,
            Err(e) => return Err(sim_failure(&sim, "boot", e)),
        };
        let desktops = (0..boot.sources)
            .map(|s| {
                sim.committed_mode(s)
                    .map(|(w, h, _)| Desktop::filled(w, h, 0))
            })
            .collect();
        let mut session = Self {
            sim,
            children: boot.children,
            desktops,
            stopped: false,
            strays_seen: 0,
            timings: Timings::default(),
        };
        session.finish()?;
        Ok(session)
    }

    fn machine(&self) -> &GuestMachine {
        self.sim.machine()
    }

    /// Fails when the device was stopped.
    fn running(&self) -> Outcome<()> {
        if self.stopped {
            Err("the device is stopped".into())
        } else {
            Ok(())
        }
    }

    /// `r`, or the failure with the driver's trace.
    fn sim<T>(&self, what: &str, r: Result<T, SimError>) -> Outcome<T> {
        r.map_err(|e| sim_failure(&self.sim, what, e))
    }

    /// Waits until the device has given back every request, letting the driver reap them.
    fn settle(&self) -> Outcome<()> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let busy: u32 = self
                .machine()
                .in_flight()
                .iter()
                .map(|&n| u32::from(n))
                .sum();
            if busy == 0 {
                // The last completions' interrupts.
                self.sim.interrupt();
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the device still holds {busy} requests after {SETTLE_TIMEOUT:?}"
                ));
            }
            self.sim.advance(SETTLE_POLL_US);
        }
    }

    /// Ends a command: settles, then fails if the driver misused a callback, called one the
    /// simulator does not provide, or touched an unmapped register meanwhile.
    fn finish(&mut self) -> Outcome<()> {
        let settled = self.settle();
        let errors = self.sim.errors();
        let unexpected = self.sim.unexpected_calls();
        self.sim.clear_events();
        let strays = self.machine().stray_accesses();
        let new_strays = strays - self.strays_seen;
        self.strays_seen = strays;
        settled?;
        if !errors.is_empty() {
            return Err(format!(
                "the driver misused callbacks: {}",
                errors.join("; ")
            ));
        }
        if !unexpected.is_empty() {
            return Err(format!("the driver called {unexpected:?}"));
        }
        if new_strays != 0 {
            return Err(format!(
                "the driver made {new_strays} register accesses outside its mappings"
            ));
        }
        Ok(())
    }

    /// The PCI function, the virtio layout, the features as the driver negotiated them, and
    /// what the driver reported, for `info`.
    pub fn describe(&self) -> Outcome<String> {
        let machine = self.machine();
        let pci = machine.pci();
        let vendor = pci.vendor_id().map_err(|e| e.to_string())?;
        let device = pci.device_id().map_err(|e| e.to_string())?;
        let layout = machine.layout();
        let monitor = machine.monitor();
        Ok(format!(
            "pci={} id={vendor:04x}:{device:04x} bar={} features={:#x} negotiated={:#x} \
             scanouts={} msix={} dma_in_use={} phase={:?}",
            pci.address(),
            layout.common.bar,
            monitor.offered_features(),
            monitor.negotiated_features(),
            self.sim.source_count(),
            layout.msix_table_size.unwrap_or(0),
            machine.dma().allocated_bytes(),
            self.sim.phase(),
        ))
    }

    /// DMA bytes free right now.
    pub fn dma_free(&self) -> usize {
        self.machine().dma().free_bytes()
    }

    /// The connected children and their monitors' preferred sizes (from their EDIDs), as the
    /// OS enumerated them.
    pub fn display_info(&self) -> Vec<(u32, (u32, u32))> {
        self.children
            .iter()
            .filter(|c| c.connected)
            .map(|c| (c.uid, preferred_mode(c.edid.as_deref())))
            .collect()
    }

    /// The mode the OS boots target `target` into: its monitor's preferred mode (EDID).
    pub fn preferred_mode(&self, target: u32) -> Outcome<(u32, u32)> {
        let child = self
            .children
            .iter()
            .find(|c| c.uid == target)
            .ok_or_else(|| {
                format!(
                    "no target {target} (the adapter has {})",
                    self.children.len()
                )
            })?;
        Ok(preferred_mode(child.edid.as_deref()))
    }

    /// The desktop size of a source, if it has a mode.
    pub fn desktop_size(&self, source: u32) -> Outcome<Option<(u32, u32)>> {
        Ok(self
            .desktop_slot(source)?
            .as_ref()
            .map(|d| (d.width(), d.height())))
    }

    fn desktop_slot(&self, source: u32) -> Outcome<&Option<Desktop>> {
        self.desktops.get(source as usize).ok_or_else(|| {
            format!(
                "no source {source} (the adapter has {})",
                self.desktops.len()
            )
        })
    }

    fn desktop_mut(&mut self, source: u32) -> Outcome<&mut Desktop> {
        self.desktops
            .get_mut(source as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| format!("source {source} has no mode"))
    }

    /// The bugcheck screen on `target`: `DxgkDdiSystemDisplayEnable`, then the bitmap written
    /// centered with `DxgkDdiSystemDisplayWrite` (interrupts off, the driver polls). Returns the
    /// rect the bitmap covers on the surface enable reported.
    pub fn bugcheck(&mut self, target: u32) -> Outcome<(u32, u32, u32, u32)> {
        self.running()?;
        let (bw, bh) = (scene::BUGCHECK_WIDTH, scene::BUGCHECK_HEIGHT);
        let bitmap = dxgkrnl_sim::Surface {
            width: bw,
            height: bh,
            pitch: bw * 4,
            bytes: scene::image(bw, bh, scene::bugcheck_pixel),
        };
        let enabled = self.sim.system_display_enable(target);
        let (w, h, _) = self.sim("DxgkDdiSystemDisplayEnable", enabled)?;
        let (x, y) = (w.saturating_sub(bw) / 2, h.saturating_sub(bh) / 2);
        let written = self.sim.system_display_write(&bitmap, x, y);
        self.sim("DxgkDdiSystemDisplayWrite", written)?;
        self.finish()?;
        Ok((x, y, (x + bw).min(w), (y + bh).min(h)))
    }

    /// D0 -> D3 -> D0 of the whole adapter (children first on the way down, adapter first on
    /// the way up), then what the OS does next: each active source made visible (the
    /// simulator) and repainted by the desktop's next present, here of one 16x16 rectangle:
    /// the driver must bring the whole desktop back from it (its first present after the
    /// source became visible copies everything). Returns the number of sources with a
    /// committed mode and the device resets the driver made meanwhile.
    pub fn power_cycle(&mut self) -> Outcome<(usize, u64)> {
        self.running()?;
        let started = Instant::now();
        let resets = self.machine().monitor().resets();
        let down = self.sim.set_power(PowerDeviceD3);
        self.sim("power down (D3)", down)?;
        let up = self.sim.set_power(PowerDeviceD0);
        self.sim("power up (D0)", up)?;
        self.finish()?;
        let active: Vec<u32> = (0u32..)
            .zip(&self.desktops)
            .filter_map(|(source, d)| d.as_ref().map(|_| source))
            .collect();
        for source in active {
            self.present(source, &[Rect::new(0, 0, 16, 16)], &[])?;
        }
        self.timings.mode_change = Some(started.elapsed());
        let heads = self.desktops.iter().filter(|d| d.is_some()).count();
        Ok((heads, self.machine().monitor().resets() - resets))
    }

    /// StopDevice (skipped after a bugcheck: nothing stops a crashed system), RemoveDevice and
    /// Unload; reports what is left.
    pub fn stop(&mut self) -> Outcome<Leftovers> {
        self.running()?;
        if self.sim.phase() == Phase::Started {
            let stopped = self.sim.stop();
            self.sim("DxgkDdiStopDevice", stopped)?;
        }
        let removed = self.sim.remove();
        self.sim("DxgkDdiRemoveDevice", removed)?;
        let unloaded = self.sim.unload();
        self.sim("DxgkDdiUnload", unloaded)?;
        self.stopped = true;
        self.desktops.iter_mut().for_each(|d| *d = None);
        self.finish()?;
        let machine = self.machine();
        Ok(Leftovers {
            dma_bytes: machine.dma().allocated_bytes(),
            mappings: machine.live_mappings(),
            device_status: machine.device_status(),
        })
    }

    /// The last measured durations.
    pub fn timings(&self) -> Timings {
        self.timings
    }
}
