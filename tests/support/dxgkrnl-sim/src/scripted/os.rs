//! The OS-side scenario: a healthy device, and DxgkDdiPresentDisplayOnly and VidPN calls
//! whose arguments the input writes (source ids, bytes per pixel, pitch, flags, dirty and
//! move rectangles, the source surface's size; VidPN paths, pinned modes, rotation, scaling,
//! the commit's affected source and connectivity checks), against the real driver.
//!
//! Every present is judged by an independent reading of the DDI's rules (known source with a
//! committed mode, 4 bytes per pixel, a pitch of at least a row, readable pages under the rows
//! the rectangles cover, a non-null surface, rectangles not inverted and, unless empty, inside
//! the surface, move sources too):
//! - bad input must fail and leave every screen as it was;
//! - good input must succeed, and every screen pixel must equal a reference computed here:
//!   the dirty rectangles show the surface, pixels outside the dirty and move rectangles keep
//!   what they showed (move destinations are not checked: the driver may fill them from the
//!   old picture or from the surface, both right).
//!
//! A VidPN is checked by IsSupportedVidPn and maybe committed: a failed commit must change no
//! screen; after a successful one the scenario sets its own modes back (through the
//! simulator's VidPN dialogue) and repaints, so the reference stays known.

use std::ptr;

use viogpudo::ddi::*;
use viogpudo::os::STATUS_ACCESS_VIOLATION;

use super::{Input, Run};
use crate::vidpn::VidPnModel;
use crate::{Machine, SimError, UserBuffer};
use virtio_gpu_model::gpu::PreferredDisplay;

/// Sizes the sources start in (small: every step compares whole screens).
const SIZES: [(u32, u32); 2] = [(640, 480), (800, 600)];

/// Longest program read from one input.
const MAX_STEPS: usize = 24;

/// Page size of the simulated process (user buffers are whole pages).
const PAGE: usize = 4096;

/// What an OS-side run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OsScriptSummary {
    /// Presents the reference judged good (all succeeded, pixels checked).
    pub good_presents: usize,
    /// Presents the reference judged bad (all refused, nothing changed).
    pub bad_presents: usize,
    /// VidPNs the driver called supported.
    pub supported_vidpns: usize,
    /// Commits that succeeded.
    pub commits: usize,
}

/// The pixel of the scenario's surfaces at (x, y).
fn pattern(seed: u32, x: u32, y: u32) -> u32 {
    (x.wrapping_mul(0x9E37) ^ y.wrapping_mul(0x85EB) ^ seed.wrapping_mul(0x0101_0101)) & 0x00FF_FFFF
}

/// One scripted run and what each screen must show.
struct OsRun {
    run: Run,
    modes: Vec<(u32, u32)>,
    /// The expected screen of each source (0x00RRGGBB, row-major).
    screens: Vec<Vec<u32>>,
}

impl OsRun {
    /// What `source` shows now (colour bits only).
    fn screen(&self, source: u32) -> Vec<u32> {
        self.run
            .gpu()
            .scanout_image(source)
            .map(|i| i.pixels.iter().map(|p| p & 0x00FF_FFFF).collect())
            .unwrap_or_default()
    }

    fn assert_screens(&self, what: &str) {
        for (source, expected) in (0u32..).zip(&self.screens) {
            // Fast path (a memcmp, out of the fuzzer's comparison tracing): the device shows
            // the surface's bytes as they are, alpha included.
            if self
                .run
                .gpu()
                .scanout_image(source)
                .is_some_and(|i| i.pixels == *expected)
            {
                continue;
            }
            let actual = self.screen(source);
            assert_eq!(actual.len(), expected.len(), "{what}: screen {source} size");
            if let Some(i) = (0..expected.len()).find(|&i| actual[i] != expected[i]) {
                let w = self.modes[source as usize].0 as usize;
                panic!(
                    "{what}: screen {source} pixel ({}, {}) is {:#08x}, expected {:#08x}",
                    i % w,
                    i / w,
                    actual[i],
                    expected[i]
                );
            }
        }
    }

    /// Sets every source back to its mode (unless `modes_kept`) and paints it with a known
    /// surface.
    fn repaint_all(&mut self, seed: u32, modes_kept: bool) {
        for (source, &(w, h)) in (0u32..).zip(&self.modes.clone()) {
            if !modes_kept {
                self.run
                    .sim
                    .set_mode(source, w, h)
                    .unwrap_or_else(|e| panic!("set_mode {source} {w}x{h}: {e}"));
            }
            let pixels: Vec<u32> = (0..h)
                .flat_map(|y| (0..w).map(move |x| pattern(seed, x, y)))
                .collect();
            let mut surface = crate::Surface::new(w, h);
            surface.bytes = pixels.iter().flat_map(|p| p.to_le_bytes()).collect();
            self.run
                .sim
                .present_full(source, &surface)
                .unwrap_or_else(|e| panic!("repaint {source}: {e}"));
            self.screens[source as usize] = pixels;
        }
        self.assert_screens("repaint");
    }

    /// A rectangle: inside the `w` x `h` surface (empty ones included) or, now and then, any.
    fn rect(input: &mut Input, w: u32, h: u32) -> RECT {
        if input.u8().is_multiple_of(4) {
            let mut c = || i32::from(input.u16() as i16);
            return crate::rect(c(), c(), c(), c());
        }
        let left = u32::from(input.u16()) % (w + 1);
        let right = left + u32::from(input.u16()) % (w - left + 1);
        let top = u32::from(input.u16()) % (h + 1);
        let bottom = top + u32::from(input.u16()) % (h - top + 1);
        crate::rect(left as i32, top as i32, right as i32, bottom as i32)
    }

    /// The DDI's rule for a rectangle of a `w` x `h` surface: not inverted, and inside unless
    /// it is empty (an empty one names no pixel, wherever it is).
    fn inside(r: &RECT, w: u32, h: u32) -> bool {
        if r.right < r.left || r.bottom < r.top {
            return false;
        }
        if r.right == r.left || r.bottom == r.top {
            return true;
        }
        0 <= r.left
            && r.left <= r.right
            && i64::from(r.right) <= i64::from(w)
            && 0 <= r.top
            && r.top <= r.bottom
            && i64::from(r.bottom) <= i64::from(h)
    }

    fn present_step(&mut self, input: &mut Input, summary: &mut OsScriptSummary) {
        let sources = self.modes.len() as u32;
        let pick = input.u8();
        let source = if pick < 240 {
            u32::from(pick) % sources
        } else {
            [sources, 7, D3DDDI_ID_ALL, u32::MAX][usize::from(pick % 4)]
        };
        // The surface has the committed mode's size (the DDI carries no size: the driver
        // knows it); the memory behind it may be shorter than that.
        let (w, h) = self
            .modes
            .get(source as usize)
            .copied()
            .unwrap_or((640, 480));
        let rows = if input.u8().is_multiple_of(8) {
            h - 1 - u32::from(input.u8()) % (h / 2)
        } else {
            h
        };
        let bpp = [4, 4, 4, 4, 4, 3, 0, 8][usize::from(input.u8() % 8)];
        let row_pitch = w * 4 + 4 * u32::from(input.u8() % 4);
        let pitch: i32 = match input.u8() % 8 {
            0 => input.u32() as i32,
            1 => (row_pitch - 4) as i32,
            2 => -(row_pitch as i32),
            _ => row_pitch as i32,
        };
        // The surface's pixels; its length is whole pages, so readable means inside it.
        let seed = u32::from(input.u8());
        let mut bytes = vec![0xA5u8; (row_pitch as usize * rows as usize).div_ceil(PAGE) * PAGE];
        for (y, row) in (0..h).zip(bytes.chunks_exact_mut(row_pitch as usize)) {
            for (x, px) in (0..w).zip(row.chunks_exact_mut(4)) {
                px.copy_from_slice(&pattern(seed, x, y).to_le_bytes());
            }
        }
        let user = UserBuffer::copy_of(&bytes)
            .unwrap_or_else(|e| panic!("cannot map a user-mode surface: {e}"));
        let null_source = input.u8().is_multiple_of(16);
        let mut dirty: Vec<RECT> = (0..input.u8() % 5)
            .map(|_| Self::rect(input, w, h))
            .collect();
        let mut moves: Vec<D3DKMT_MOVE_RECT> = (0..input.u8() % 3)
            .map(|_| {
                let dest = Self::rect(input, w, h);
                let x = i32::from(input.u16()) % (w as i32 + 1) - i32::from(input.u8() % 2);
                let y = i32::from(input.u16()) % (h as i32 + 1);
                D3DKMT_MOVE_RECT {
                    SourcePoint: POINT { x, y },
                    DestRect: dest,
                }
            })
            .collect();
        let mut flags = D3DKMT_PRESENT_DISPLAY_ONLY_FLAGS::default();
        flags.set_rotate(input.u8() & 1 != 0);
        let lie = input.u8() % 16;
        let mut args = DXGKARG_PRESENT_DISPLAYONLY {
            VidPnSourceId: source,
            pSource: if null_source {
                ptr::null_mut()
            } else {
                user.address()
            },
            BytesPerPixel: bpp,
            Pitch: pitch,
            Flags: flags,
            NumMoves: moves.len() as u32,
            pMoves: if moves.is_empty() {
                ptr::null_mut()
            } else {
                moves.as_mut_ptr()
            },
            NumDirtyRects: dirty.len() as u32,
            pDirtyRect: if dirty.is_empty() {
                ptr::null_mut()
            } else {
                dirty.as_mut_ptr()
            },
            pfnPresentDisplayOnlyProgress: Some(crate::callbacks::present_progress),
        };
        // Counts that do not match the arrays, in the only ways a driver can tell.
        let mut counts_ok = true;
        match lie {
            0 => {
                args.NumDirtyRects = 0x8000_0000;
                counts_ok = false;
            }
            1 => {
                args.pMoves = ptr::null_mut();
                args.NumMoves = args.NumMoves.max(1);
                counts_ok = false;
            }
            _ => {}
        }

        // Readable memory: all of the surface, or only the rows the rects cover (from the top
        // of the highest non-empty one to the bottom of the lowest), which is all a driver
        // needs to read unless it repaints the whole desktop.
        let readable_rows = |rows: u32| {
            pitch > 0
                && (pitch as usize)
                    .checked_mul(rows as usize)
                    .is_some_and(|n| n <= bytes.len())
        };
        let read_bottom = dirty
            .iter()
            .chain(moves.iter().map(|m| &m.DestRect))
            .filter(|r| r.right > r.left && r.bottom > r.top)
            .map(|r| r.bottom.clamp(0, h as i32) as u32)
            .max()
            .unwrap_or(0);
        let whole_readable = readable_rows(h);
        let good = source < sources
            && bpp == 4
            && pitch > 0
            && pitch as u32 >= w * 4
            && readable_rows(read_bottom)
            && !null_source
            && counts_ok
            && dirty.iter().all(|r| Self::inside(r, w, h))
            && moves.iter().all(|m| {
                let d = &m.DestRect;
                let (dw, dh) = (d.right.wrapping_sub(d.left), d.bottom.wrapping_sub(d.top));
                Self::inside(d, w, h)
                    && Self::inside(
                        &crate::rect(
                            m.SourcePoint.x,
                            m.SourcePoint.y,
                            m.SourcePoint.x.saturating_add(dw),
                            m.SourcePoint.y.saturating_add(dh),
                        ),
                        w,
                        h,
                    )
            });

        let status = self
            .run
            .sim
            .present_raw(&args)
            .unwrap_or_else(|e| panic!("present: {e}"));
        drop(user);
        // A surface shorter than the mode, with the rows read inside it, is outside the DDI's
        // contract (the OS's surface always has the mode's size): the driver may read only
        // what it needs and succeed, or refuse as the probe of a whole surface would, with
        // STATUS_ACCESS_VIOLATION; either way the screens must be right. (So this judge does
        // not catch a driver that locks more rows than it reads; `driver_present` pins the
        // exact range.)
        let good = good && (whole_readable || nt_success(status));
        if !good {
            summary.bad_presents += 1;
            assert!(
                !nt_success(status),
                "a bad present succeeded: {args:?}, dirty {dirty:?}, moves {moves:?}"
            );
            assert!(
                status == STATUS_INVALID_PARAMETER || status == STATUS_ACCESS_VIOLATION,
                "a bad present answered {status:#x}"
            );
            self.assert_screens("after a bad present");
            return;
        }
        summary.good_presents += 1;
        assert!(
            nt_success(status),
            "a good present failed with {status:#x}: pitch {pitch}, dirty {dirty:?}, moves {moves:?}"
        );
        // The reference: dirty rectangles from the surface; move destinations as shown.
        let actual = self.screen(source);
        let expected = &mut self.screens[source as usize];
        let stride = w as usize;
        for m in &moves {
            let d = &m.DestRect;
            for y in d.top..d.bottom {
                for x in d.left..d.right {
                    let i = y as usize * stride + x as usize;
                    expected[i] = actual.get(i).copied().unwrap_or(0);
                }
            }
        }
        // The surface as the driver must read it: rows `pitch` bytes apart (which need not
        // be how the pattern was laid out).
        let pixel = |x: i32, y: i32| {
            let at = y as usize * pitch as usize + x as usize * 4;
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
                & 0x00FF_FFFF
        };
        for r in &dirty {
            for y in r.top..r.bottom {
                for x in r.left..r.right {
                    expected[y as usize * stride + x as usize] = pixel(x, y);
                }
            }
        }
        self.assert_screens(&format!(
            "after a good present (pitch {pitch}, rotate {}, dirty {dirty:?}, moves {moves:?})",
            args.Flags.rotate()
        ));
    }

    fn vidpn_step(&mut self, input: &mut Input, summary: &mut OsScriptSummary) {
        let sources = self.modes.len() as u32;
        let vidpn = VidPnModel::new(1 + u32::from(input.u8() % 3));
        for _ in 0..input.u8() % 3 {
            let (s, t) = (u32::from(input.u8() % 3), u32::from(input.u8() % 3));
            if vidpn.add_path(s, t).is_err() {
                continue;
            }
            match input.u8() % 4 {
                0 => {
                    let _ = vidpn.set_rotation(
                        s,
                        t,
                        D3DKMDT_VIDPN_PRESENT_PATH_ROTATION(i32::from(input.u8() % 7)),
                    );
                }
                1 => {
                    let _ = vidpn.set_scaling(
                        s,
                        t,
                        D3DKMDT_VIDPN_PRESENT_PATH_SCALING(i32::from(input.u8() % 8)),
                    );
                }
                _ => {}
            }
            if input.u8() & 1 != 0 {
                let (w, h) = match input.u8() % 4 {
                    0 => (u32::from(input.u16()), u32::from(input.u16())),
                    n => [(640, 480), (800, 600), (1024, 768)][usize::from(n - 1)],
                };
                let _ = vidpn.pin_source_mode(s, w, h);
                if input.u8() & 1 != 0 {
                    let _ = vidpn.pin_target_mode(t, w, h);
                }
            }
        }
        let (status, supported) = self
            .run
            .sim
            .is_supported_vidpn_raw(vidpn.handle())
            .unwrap_or_else(|e| panic!("IsSupportedVidPn: {e}"));
        assert!(
            nt_success(status) || !supported,
            "IsSupportedVidPn failed ({status:#x}) yet said supported"
        );
        if supported {
            summary.supported_vidpns += 1;
        }
        if input.u8() & 1 == 0 {
            return;
        }
        let pick = input.u8();
        let commit = DXGKARG_COMMITVIDPN {
            hFunctionalVidPn: vidpn.handle(),
            AffectedVidPnSourceId: if pick < 240 {
                u32::from(pick) % sources.max(1)
            } else {
                D3DDDI_ID_ALL
            },
            MonitorConnectivityChecks: D3DKMDT_MONITOR_CONNECTIVITY_CHECKS(i32::from(
                input.u8() % 4,
            )),
            hPrimaryAllocation: ptr::null_mut(),
            Flags: DXGKARG_COMMITVIDPN_FLAGS::default(),
        };
        let status = self
            .run
            .sim
            .commit_vidpn_raw(&commit)
            .unwrap_or_else(|e| panic!("CommitVidPn: {e}"));
        if nt_success(status) {
            summary.commits += 1;
            self.repaint_all(u32::from(input.u8()), false);
        } else {
            self.assert_screens("after a failed commit");
        }
    }
}

/// Runs the OS-side scenario `data` describes (see the module documentation) and panics if the
/// driver broke a rule or showed a wrong pixel.
pub fn run_os_script(data: &[u8]) -> OsScriptSummary {
    let mut input = Input { data };
    let first = input.u8();
    let modes: Vec<(u32, u32)> = (0..1 + usize::from(first & 1))
        .map(|_| input.pick(&SIZES))
        .collect();
    let displays: Vec<PreferredDisplay> = modes
        .iter()
        .map(|&(w, h)| PreferredDisplay::enabled(w, h))
        .collect();
    let run = Run::new(&displays, false);
    let dma_before = run.sim.machine().dma_allocated_bytes();
    let mut os = OsRun {
        run,
        screens: vec![Vec::new(); modes.len()],
        modes,
    };
    os.run
        .sim
        .boot()
        .unwrap_or_else(|e| panic!("boot on a healthy device: {e}"));
    os.repaint_all(u32::from(first), true);

    let mut summary = OsScriptSummary::default();
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        if input.u8().is_multiple_of(4) {
            os.vidpn_step(&mut input, &mut summary);
        } else {
            os.present_step(&mut input, &mut summary);
        }
        os.run.check_device_rules();
    }

    match os.run.sim.stop() {
        Err(SimError::Contract(what)) => panic!("StopDevice broke a DDI contract: {what}"),
        Err(e) => panic!("StopDevice failed on a healthy device: {e}"),
        Ok(()) => {}
    }
    if let Err(e) = os.run.sim.remove() {
        panic!("RemoveDevice: {e}");
    }
    os.run.check_device_rules();
    assert_eq!(
        os.run.sim.machine().dma_allocated_bytes(),
        dma_before,
        "DMA memory left after StopDevice and RemoveDevice"
    );
    os.run.check_os_rules();
    summary
}
