//! The runner's device session: the core driven directly, as the driver's DDIs will drive it
//! (StartDevice = [`Session::start`], mode changes, presents, pointer, bugcheck, power, stop).
//! When the driver proper exists, this module is what it replaces; the platform pieces it uses
//! live in the library's `hosted` module.
//!
//! Each head keeps a *desktop*: the source surface the OS would hand to the present path
//! (B8G8R8A8, in the desktop's orientation), plus the rotation of its path. Presents copy
//! from it through the core's present path; a power cycle restores the picture from it.
//!
//! Fire-and-forget work (presents, cursor commands) is reaped by polling the used rings
//! ([`Session::settle`]): no interrupts in the guest. A command's timing includes that wait,
//! so it measures until QEMU has the pixels.

mod cursor;
mod desktop;

use std::time::{Duration, Instant};

use viogpu_common::blit::{Point, Rect, Rotation, Surface};
use viogpu_common::bring_up::bring_up;
use viogpu_common::edid;
use viogpu_common::framebuffer::AllocPolicy;
use viogpu_common::gpu::{Platform, WaitMode, CONTROL_QUEUE, CURSOR_QUEUE};
use viogpu_common::modes::ModeList;
use viogpu_common::present::{present, send_region_polled, write_bitmap, MoveRect, PresentStats};
use viogpu_common::protocol::RespDisplayInfo;
use viogpu_common::resource_id::ResourceIdAllocator;
use viogpu_common::scanout::Scanout;
use viogpu_common::transport::Features;
use viogpu_guest_runner::hosted::device::{HostedGpu, VirtioGpuFunction};
use viogpu_guest_runner::hosted::dma::DevMemHal;
use viogpu_guest_runner::hosted::platform::PollingPlatform;
use viogpu_guest_runner::scene;

use cursor::CursorImage;
use desktop::Desktop;

/// A runner error: one line of text for the `ERR` answer.
pub type Failure = String;
/// Result of session operations.
pub type Outcome<T> = Result<T, Failure>;

/// Adds what was being done to a core error.
trait Context<T> {
    fn ctx(self, what: &str) -> Outcome<T>;
}

impl<T> Context<T> for viogpu_common::Result<T> {
    fn ctx(self, what: &str) -> Outcome<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Most resource ids live at once (framebuffers of all heads, their replacements during a
/// mode change, and the cursor).
const MAX_LIVE_RESOURCES: u32 = 64;
/// Longest wait for the device to give back fire-and-forget requests (an 8K transfer under
/// TCG takes well under a second; this only bounds a hung device).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One scanout and what it shows.
struct Head {
    scanout: Scanout<DevMemHal>,
    desktop: Option<Desktop>,
}

/// What `stop` leaves behind, by the runner's own bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leftovers {
    /// Resource ids still live (host resources not unreferenced), retired framebuffers
    /// included.
    pub resources: u32,
    /// DMA bytes still allocated after the device was reset and dropped.
    pub dma_bytes: usize,
}

/// The last measured durations.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    /// The last present (copy, transfer, flush, until the device gave everything back).
    pub present: Option<Duration>,
    /// The last mode change (including the first full transfer of the new framebuffer).
    pub mode_change: Option<Duration>,
}

/// Error counters of the device layer at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counters {
    faults: u32,
    errors: u32,
    timeouts: u32,
}

/// The runner's device session.
pub struct Session {
    function: VirtioGpuFunction,
    hal: DevMemHal,
    gpu: Option<HostedGpu>,
    features: Features,
    heads: Vec<Head>,
    ids: ResourceIdAllocator,
    cursor: Option<CursorImage>,
    timings: Timings,
}

impl Session {
    /// Opens the device and brings it up (the driver's StartDevice).
    pub fn open(hal: DevMemHal) -> Outcome<Self> {
        let function = VirtioGpuFunction::open().map_err(|e| e.to_string())?;
        let mut session = Self {
            function,
            hal,
            gpu: None,
            features: Features::empty(),
            heads: Vec::new(),
            ids: ResourceIdAllocator::new(MAX_LIVE_RESOURCES),
            cursor: None,
            timings: Timings::default(),
        };
        session.start()?;
        Ok(session)
    }

    /// Brings the device up: reset, features, queues, DRIVER_OK; one head per scanout.
    fn start(&mut self) -> Outcome<()> {
        let notifier = self.function.transport.notifier();
        let mut transport = self.function.transport.lock();
        let (gpu, features) =
            bring_up(&self.hal, PollingPlatform, notifier, &mut transport).ctx("bring-up")?;
        let scanouts = transport.num_scanouts().ctx("num_scanouts")?;
        drop(transport);
        self.gpu = Some(gpu);
        self.features = features;
        while self.heads.len() < scanouts as usize {
            let index = self.heads.len() as u32;
            self.heads.push(Head {
                scanout: Scanout::new(index, AllocPolicy::DEFAULT),
                desktop: None,
            });
        }
        self.heads.truncate(scanouts as usize);
        Ok(())
    }

    fn gpu(&self) -> Outcome<&HostedGpu> {
        self.gpu
            .as_ref()
            .ok_or_else(|| "the device is stopped (power-cycle starts it)".to_string())
    }

    fn head_index(&self, scanout: u32) -> Outcome<usize> {
        let index = scanout as usize;
        if index < self.heads.len() {
            Ok(index)
        } else {
            Err(format!(
                "no scanout {scanout} (the device has {})",
                self.heads.len()
            ))
        }
    }

    /// The PCI function, layout and features, for `info`.
    pub fn describe(&mut self) -> Outcome<String> {
        let pci = &self.function.pci;
        let address = pci.address();
        let vendor = pci.vendor_id().map_err(|e| e.to_string())?;
        let device = pci.device_id().map_err(|e| e.to_string())?;
        let layout = self.function.layout;
        let offered = self.function.transport.lock().device_features();
        let counters = self.counters();
        Ok(format!(
            "pci={address} id={vendor:04x}:{device:04x} bar={} features={:#x} negotiated={:#x} \
             scanouts={} msix={} dma_in_use={} faults={} error_responses={} timeouts={}",
            layout.common.bar,
            offered.bits(),
            self.features.bits(),
            self.heads.len(),
            layout.msix_table_size.unwrap_or(0),
            self.dma_in_use(),
            counters.faults,
            counters.errors,
            counters.timeouts,
        ))
    }

    /// DMA bytes allocated right now.
    pub fn dma_in_use(&self) -> usize {
        self.hal.len() - self.hal.free_bytes()
    }

    /// DMA bytes free right now.
    pub fn dma_free(&self) -> usize {
        self.hal.free_bytes()
    }

    /// GET_DISPLAY_INFO.
    pub fn display_info(&self) -> Outcome<RespDisplayInfo> {
        self.gpu()?
            .get_display_info(WaitMode::Wait)
            .ctx("GET_DISPLAY_INFO")
    }

    /// The mode a driver boots scanout `scanout` into: the first of the mode list built from
    /// the device's preferred size (GET_DISPLAY_INFO) and the EDID.
    pub fn preferred_mode(&self, scanout: u32) -> Outcome<(u32, u32)> {
        let gpu = self.gpu()?;
        let info = self.display_info()?;
        let preferred = info
            .pmodes
            .get(scanout as usize)
            .filter(|m| m.enabled != 0 && m.r.width != 0 && m.r.height != 0)
            .map(|m| (m.r.width, m.r.height));
        let parsed = if self.features.contains(Features::GPU_EDID) {
            gpu.get_edid(scanout, WaitMode::Wait)
                .ok()
                .and_then(|resp| resp.edid_bytes().ok().and_then(|b| edid::parse(b).ok()))
        } else {
            None
        };
        let list = ModeList::build(preferred, parsed.as_ref(), self.hal.len() as u64);
        list.preferred()
            .map(|m| (m.width, m.height))
            .ok_or_else(|| format!("no usable mode for scanout {scanout}"))
    }

    fn counters(&self) -> Counters {
        use std::sync::atomic::Ordering::Relaxed;
        match &self.gpu {
            Some(gpu) => Counters {
                faults: gpu.stats.device_faults.load(Relaxed),
                errors: gpu.stats.error_responses.load(Relaxed),
                timeouts: gpu.stats.timeouts.load(Relaxed),
            },
            None => Counters {
                faults: 0,
                errors: 0,
                timeouts: 0,
            },
        }
    }

    /// Polls the used rings until the device has given back every request (no interrupts in
    /// the guest). `polled` spins (bugcheck); otherwise each round sleeps briefly.
    fn settle(&self, polled: bool) -> Outcome<()> {
        let gpu = self.gpu()?;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            gpu.process_completions();
            let busy = gpu.with_queue(CONTROL_QUEUE, |q| q.in_flight())
                + gpu.with_queue(CURSOR_QUEUE, |q| q.in_flight());
            if busy == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the device still holds {busy} requests after {SETTLE_TIMEOUT:?}"
                ));
            }
            if polled {
                gpu.platform().stall_us(10);
            } else {
                gpu.platform().wait_for_completion(100);
            }
        }
    }

    /// Settles, then fails if the device reported errors since `before`.
    fn settle_clean(&self, before: Counters, polled: bool) -> Outcome<()> {
        self.settle(polled)?;
        let after = self.counters();
        if after != before {
            return Err(format!(
                "device errors: {} error responses, {} faults, {} timeouts",
                after.errors - before.errors,
                after.faults - before.faults,
                after.timeouts - before.timeouts
            ));
        }
        Ok(())
    }

    /// Sets scanout `scanout` to a `width` x `height` framebuffer and desktop filled with
    /// `color`.
    pub fn set_mode(&mut self, scanout: u32, width: u32, height: u32, color: u32) -> Outcome<()> {
        let index = self.head_index(scanout)?;
        let before = self.counters();
        let started = Instant::now();
        let gpu = self.gpu.as_ref().ok_or("the device is stopped")?;
        let head = &mut self.heads[index];
        head.scanout
            .set_mode(gpu, &mut self.ids, width, height, color)
            .ctx(&format!("mode {width}x{height}"))?;
        head.desktop = Some(Desktop::filled(width, height, color));
        self.settle_clean(before, false)?;
        self.timings.mode_change = Some(started.elapsed());
        Ok(())
    }

    /// The desktop size of a head, if it has a mode.
    pub fn desktop_size(&self, scanout: u32) -> Outcome<Option<(u32, u32)>> {
        let index = self.head_index(scanout)?;
        Ok(self.heads[index]
            .desktop
            .as_ref()
            .map(|d| (d.width, d.height)))
    }

    fn desktop_mut(&mut self, scanout: u32) -> Outcome<&mut Desktop> {
        let index = self.head_index(scanout)?;
        self.heads[index]
            .desktop
            .as_mut()
            .ok_or_else(|| format!("scanout {scanout} has no mode"))
    }

    /// Presents through the core's present path and waits until the device has it all.
    fn present_head(
        &mut self,
        scanout: u32,
        moves: &[MoveRect],
        dirty: &[Rect],
    ) -> Outcome<PresentStats> {
        let index = self.head_index(scanout)?;
        let before = self.counters();
        let started = Instant::now();
        let gpu = self.gpu.as_ref().ok_or("the device is stopped")?;
        let head = &mut self.heads[index];
        let desktop = head
            .desktop
            .as_ref()
            .ok_or_else(|| format!("scanout {scanout} has no mode"))?;
        let fb = head
            .scanout
            .current_mut()
            .ok_or_else(|| format!("scanout {scanout} has no framebuffer"))?;
        let stats =
            present(gpu, fb, &desktop.surface()?, moves, dirty, desktop.rotation).ctx("present")?;
        self.settle_clean(before, false)?;
        self.timings.present = Some(started.elapsed());
        Ok(stats)
    }

    /// Draws the test pattern on the whole desktop and presents it. A head without a mode is
    /// first set to its preferred mode (what a driver does at boot).
    pub fn pattern(&mut self, scanout: u32) -> Outcome<PresentStats> {
        if self.desktop_size(scanout)?.is_none() {
            let (w, h) = self.preferred_mode(scanout)?;
            self.set_mode(scanout, w, h, 0)?;
        }
        let desktop = self.desktop_mut(scanout)?;
        let (w, h) = (desktop.width, desktop.height);
        desktop.pixels = scene::image(w, h, |x, y| scene::pattern_pixel(x, y, w, h));
        let full = desktop.full_rect();
        self.present_head(scanout, &[], &[full])
    }

    /// Fills each rect of the desktop with its color and presents exactly those rects.
    pub fn fill_and_present(
        &mut self,
        scanout: u32,
        fills: &[(Rect, u32)],
    ) -> Outcome<PresentStats> {
        let desktop = self.desktop_mut(scanout)?;
        for (rect, _) in fills {
            desktop.check(rect)?;
        }
        for (rect, color) in fills {
            desktop.fill_rect(rect, *color);
        }
        let dirty: Vec<Rect> = fills.iter().map(|(r, _)| *r).collect();
        self.present_head(scanout, &[], &dirty)
    }

    /// Scrolls the desktop (pixels at `from` appear at `dest`) and presents it as a move rect.
    pub fn move_and_present(
        &mut self,
        scanout: u32,
        from: Point,
        dest: Rect,
    ) -> Outcome<PresentStats> {
        let desktop = self.desktop_mut(scanout)?;
        desktop.check(&dest)?;
        let source = Rect::new(
            from.x,
            from.y,
            from.x.saturating_add(dest.width() as i32),
            from.y.saturating_add(dest.height() as i32),
        );
        desktop.check(&source)?;
        desktop.move_rect(from, &dest);
        let moves = [MoveRect { source: from, dest }];
        self.present_head(scanout, &moves, &[])
    }

    /// Re-modes the framebuffer for `rotation` and presents the whole desktop under it.
    pub fn rotate(&mut self, scanout: u32, rotation: Rotation) -> Outcome<(u32, u32)> {
        let index = self.head_index(scanout)?;
        let started = Instant::now();
        let (w, h) = {
            let desktop = self.desktop_mut(scanout)?;
            (desktop.width, desktop.height)
        };
        let (fw, fh) = rotation.framebuffer_size(w, h);
        let before = self.counters();
        let gpu = self.gpu.as_ref().ok_or("the device is stopped")?;
        let head = &mut self.heads[index];
        head.scanout
            .set_mode(gpu, &mut self.ids, fw, fh, 0)
            .ctx(&format!("mode {fw}x{fh}"))?;
        self.settle_clean(before, false)?;
        if let Some(desktop) = self.heads[index].desktop.as_mut() {
            desktop.rotation = rotation;
        }
        let full = Rect::new(0, 0, w as i32, h as i32);
        self.present_head(scanout, &[], &[full])?;
        self.timings.mode_change = Some(started.elapsed());
        Ok((fw, fh))
    }

    /// The bugcheck screen: the bitmap written into the framebuffer of `scanout` (centered,
    /// unrotated) and sent with polled commands only. Returns the framebuffer rect written.
    pub fn bugcheck(&mut self, scanout: u32) -> Outcome<Rect> {
        let index = self.head_index(scanout)?;
        let (bw, bh) = (scene::BUGCHECK_WIDTH, scene::BUGCHECK_HEIGHT);
        let bitmap = scene::image(bw, bh, scene::bugcheck_pixel);
        let surface = Surface::new(&bitmap, bw, bh, bw * 4).ctx("bitmap")?;
        let before = self.counters();
        let gpu = self.gpu.as_ref().ok_or("the device is stopped")?;
        let fb = self.heads[index]
            .scanout
            .current_mut()
            .ok_or_else(|| format!("scanout {scanout} has no framebuffer"))?;
        let (fw, fh) = (fb.backing().width(), fb.backing().height());
        let (x, y) = (fw.saturating_sub(bw) / 2, fh.saturating_sub(bh) / 2);
        let rect = write_bitmap(fb.backing_mut(), &surface, x, y).ctx("write_bitmap")?;
        send_region_polled(gpu, fb, &rect).ctx("send_region_polled")?;
        self.settle_clean(before, true)?;
        Ok(rect)
    }

    /// Takes the device down as D0 -> D3 does (reset; the host forgets every resource), then
    /// brings it up again and restores every head's mode and picture (D3 -> D0).
    pub fn power_cycle(&mut self) -> Outcome<usize> {
        let started = Instant::now();
        self.power_down();
        self.start()?;
        let mut restored = 0;
        for scanout in 0..self.heads.len() as u32 {
            let index = scanout as usize;
            let Some((w, h, rotation)) = self.heads[index]
                .desktop
                .as_ref()
                .map(|d| (d.width, d.height, d.rotation))
            else {
                continue;
            };
            let (fw, fh) = rotation.framebuffer_size(w, h);
            let before = self.counters();
            let gpu = self.gpu.as_ref().ok_or("the device is stopped")?;
            self.heads[index]
                .scanout
                .set_mode(gpu, &mut self.ids, fw, fh, 0)
                .ctx(&format!("restoring {fw}x{fh} on scanout {scanout}"))?;
            self.settle_clean(before, false)?;
            let full = Rect::new(0, 0, w as i32, h as i32);
            self.present_head(scanout, &[], &[full])?;
            restored += 1;
        }
        self.timings.mode_change = Some(started.elapsed());
        Ok(restored)
    }

    /// Resets the device and drops everything it held; desktops are kept.
    fn power_down(&mut self) {
        let Some(gpu) = self.gpu.take() else { return };
        let _ = self.function.transport.lock().reset();
        gpu.reset_queues();
        for head in &mut self.heads {
            head.scanout.forget_after_reset(&mut self.ids);
        }
        if let Some(cursor) = self.cursor.take() {
            let _ = self.ids.free(cursor.resource_id);
        }
        // The rings and request buffers are freed here, after the reset.
        drop(gpu);
    }

    /// Disables every scanout, unreferences every resource, resets the device and frees its
    /// memory; reports what the bookkeeping says is left.
    pub fn stop(&mut self) -> Outcome<Leftovers> {
        let before = self.counters();
        let gpu = self.gpu.as_ref().ok_or("the device is already stopped")?;
        for head in &mut self.heads {
            if head.scanout.current().is_some() {
                head.scanout
                    .disable(gpu, &mut self.ids)
                    .ctx(&format!("disabling scanout {}", head.scanout.index()))?;
            }
            head.scanout.reap_retired(gpu, &mut self.ids);
            head.desktop = None;
        }
        if let Some(cursor) = self.cursor.take() {
            gpu.detach_backing(cursor.resource_id, WaitMode::Wait)
                .ctx("cursor DETACH_BACKING")?;
            gpu.resource_unref(cursor.resource_id, WaitMode::Wait)
                .ctx("cursor RESOURCE_UNREF")?;
            let _ = self.ids.free(cursor.resource_id);
        }
        self.settle_clean(before, false)?;
        let resources = self.ids.live_count();
        self.power_down();
        Ok(Leftovers {
            resources,
            dma_bytes: self.dma_in_use(),
        })
    }

    /// The last measured durations.
    pub fn timings(&self) -> Timings {
        self.timings
    }
}
