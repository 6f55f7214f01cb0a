//! DxgkDdiPresentDisplayOnly, adapter side: the OS's arguments checked and turned into safe
//! slices, then the core present path (`viogpu_common::present`): the dirty and moved regions
//! copied into the source's framebuffer and only those regions sent to the host, as one batch
//! with a single notification. The call completes synchronously, so the progress callback is
//! never needed.
//!
//! The source surface may be user-mode memory: it is read only through the OS layer's
//! probe-and-lock guard (`os::probe_and_lock`), never through a slice built over `pSource`.
//! Only the rows the present's rectangles cover are probed and locked
//! (`viogpu_common::present::source_rows`): MmProbeAndLockPages and the system mapping cost
//! per page, and a small update touches a few rows of a desktop of thousands of pages. (The
//! KMDOD sample locks the whole surface every time.)
//!
//! The copy of a rotated (90 or 270 degree) present, on a processor with AVX2, runs inside
//! `os::with_avx_state`, which saves the YMM registers so the core's AVX2 transpose may use
//! them; the save covers the copy alone (`Scanout::copy`), not the commands and the wait for the
//! device that follow (`Scanout::send`). Every other copy uses only the baseline registers,
//! which kernel code may use without saving.
//!
//! A present to an invisible source, or to a source without a framebuffer (no path, or
//! powered down), is dropped with success. The first present after the source became visible
//! again copies the whole source surface (the screen was black meanwhile).
//! So is every present after a surprise removal: there is no device to show it.

use alloc::vec::Vec;

use super::{Adapter, DdiResult, IntoDdi};
use crate::ddi::*;
use viogpu_common::blit::{avx2_usable, BlitMode, Point, Rect, Rotation, Simd, Surface};
use viogpu_common::present::{source_rows, MoveRect};

/// Checks the scalar arguments of a present: known source, 4 bytes per pixel, a positive
/// pitch, and non-null arrays wherever a count is non-zero.
pub fn validate(args: &DXGKARG_PRESENT_DISPLAYONLY, sources: u32) -> DdiResult<()> {
    if args.VidPnSourceId >= sources {
        return Err(STATUS_INVALID_PARAMETER);
    }
    if args.BytesPerPixel != 4 || args.Pitch <= 0 || args.pSource.is_null() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    if (args.NumMoves > 0 && args.pMoves.is_null())
        || (args.NumDirtyRects > 0 && args.pDirtyRect.is_null())
    {
        return Err(STATUS_INVALID_PARAMETER);
    }
    // The OS never sends more rectangles than pixels; this bounds the arrays' lengths.
    const MAX_RECTS: u32 = 1 << 16;
    if args.NumMoves > MAX_RECTS || args.NumDirtyRects > MAX_RECTS {
        return Err(STATUS_INVALID_PARAMETER);
    }
    Ok(())
}

fn to_rect(r: &RECT) -> Rect {
    Rect::new(r.left, r.top, r.right, r.bottom)
}

/// The converted rectangle lists of a present.
pub struct PresentRects {
    /// Dirty rectangles.
    pub dirty: Vec<Rect>,
    /// Move rectangles: source point and destination.
    pub moves: Vec<MoveRect>,
}

/// Converts the OS arrays.
pub fn convert_rects(dirty: &[RECT], moves: &[D3DKMT_MOVE_RECT]) -> DdiResult<PresentRects> {
    let mut out = PresentRects {
        dirty: Vec::new(),
        moves: Vec::new(),
    };
    out.dirty
        .try_reserve_exact(dirty.len())
        .map_err(|_| STATUS_NO_MEMORY)?;
    out.moves
        .try_reserve_exact(moves.len())
        .map_err(|_| STATUS_NO_MEMORY)?;
    out.dirty.extend(dirty.iter().map(to_rect));
    out.moves.extend(moves.iter().map(|m| MoveRect {
        source: Point {
            x: m.SourcePoint.x,
            y: m.SourcePoint.y,
        },
        dest: to_rect(&m.DestRect),
    }));
    Ok(out)
}

impl Adapter {
    /// Presents the source surface at `pixels` (rows `pitch` bytes apart) on `source`.
    ///
    /// `rotate` is the present's `Flags.Rotate`: set, the surface is the desktop (the committed
    /// source mode's size) and the driver turns it with the path's rotation; clear, the OS
    /// already turned it, so the surface has the framebuffer's size (width and height swapped
    /// on a 90/270 path) and is copied as it is. Both samples do `Flags.Rotate ? path rotation
    /// : identity`.
    ///
    /// The surface is read only through [`crate::os::probe_and_lock`], and only the rows the
    /// rectangles cover: a user-mode `pSource` whose pages in those rows are not all valid
    /// fails with the probe's status (STATUS_ACCESS_VIOLATION, as the KMDOD sample returns its
    /// exception code) and changes nothing.
    ///
    /// # Safety
    /// `pixels` is the `pSource` of a present to `source`. A kernel-mode one is valid for reads
    /// of `pitch` times the surface's height bytes (as above) for the duration of the call; a
    /// user-mode one may be anything.
    pub unsafe fn present(
        &self,
        source: u32,
        pixels: *const u8,
        pitch: u32,
        rotate: bool,
        rects: &PresentRects,
    ) -> DdiResult<()> {
        if self.is_removed() {
            return Ok(());
        }
        let mut guard = self.state.lock();
        let state = &mut *guard;
        // A device that broke the ring protocol is reset first, its picture kept, so this
        // present lands on a device that answers.
        self.recover_if_ring_broken(state);
        // Powered down the framebuffers normally have no host resource; after a hung
        // power-down reset they still name one, but the device gets nothing until D0.
        let Some(hw) = state.device.powered() else {
            return Ok(());
        };
        let head = state
            .heads
            .get_mut(source as usize)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        let ids = &mut state.ids;
        if !head.visible {
            return Ok(());
        }
        let Some(desktop) = head.source_mode else {
            return Ok(());
        };
        let (rotation, (w, h)) = if rotate {
            (head.rotation, desktop)
        } else {
            (
                Rotation::Identity,
                head.rotation.framebuffer_size(desktop.0, desktop.1),
            )
        };
        // Suspended across a power-down (no host resource): nothing to show until D0.
        if head
            .scanout
            .current()
            .is_none_or(|fb| fb.resource_id() == 0)
        {
            return Ok(());
        }
        // The screen was black since the source became invisible: the first present after it
        // copies the whole desktop, whatever its rectangles say.
        let side = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let whole = [Rect::new(0, 0, side(w), side(h))];
        let (moves, dirty): (&[MoveRect], &[Rect]) = if head.full_present {
            (&[], &whole)
        } else {
            (&rects.moves, &rects.dirty)
        };
        // Only the rows the rectangles cover are read, so only they are locked: for a small
        // update a few pages instead of the whole desktop (MmProbeAndLockPages costs per page).
        let rows = source_rows(moves, dirty, h);
        let row_bytes = |n: u32| {
            usize::try_from(u64::from(pitch) * u64::from(n)).map_err(|_| STATUS_INVALID_PARAMETER)
        };
        let (offset, len) = (row_bytes(rows.start)?, row_bytes(rows.end - rows.start)?);
        // The source may be user memory that can vanish at any moment: it is read only through
        // the probed and locked guard, which fails cleanly on a bad range (before anything
        // changed) and unlocks when this function returns.
        // SAFETY: a kernel-mode `pixels` holds `pitch * h` readable bytes for the duration of
        // the call (the caller's promise: the OS's surface, whose height `h` is as computed
        // above), and rows `rows` lie inside it (`source_rows` clamps them to `h`); for a
        // user-mode one (decided by `pixels`, not by the offset address) the range is probed.
        let locked = unsafe { crate::os::probe_and_lock(pixels, offset, len) }?;
        let surface = Surface::rows(locked.bytes(), w, h, pitch, rows).ddi()?;
        // Only the 90 and 270 degree copies have an AVX2 kernel, and only where the processor
        // runs AVX2: the YMM state is saved for those copies alone, and released before
        // anything goes to the device.
        let mut copy = |simd| {
            let mode = BlitMode { rotation, simd };
            head.scanout.copy(&surface, moves, dirty, mode)
        };
        let copied = if rotation.swaps_axes() && avx2_usable() {
            // SAFETY: `copy` makes its one copy with the `Simd` and returns the copy's result,
            // framebuffer rects that hold no `Simd`; the value is kept nowhere.
            unsafe { crate::os::with_avx_state(copy) }
        } else {
            copy(Simd::BASELINE)
        };
        let result = copied.and_then(|written| match written {
            Some(written) => head.scanout.send(&hw.gpu, ids, &written).map(|_| ()),
            None => Ok(()),
        });
        if result.is_ok() {
            head.full_present = false;
        }
        // Unplugged under the present: from now on nothing touches the device (as after
        // DxgkDdiNotifySurpriseRemoval), and the OS's StopDevice follows.
        self.unless_gone(hw, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> DXGKARG_PRESENT_DISPLAYONLY {
        DXGKARG_PRESENT_DISPLAYONLY {
            VidPnSourceId: 0,
            pSource: 0x1000 as *mut core::ffi::c_void,
            BytesPerPixel: 4,
            Pitch: 4096,
            ..Default::default()
        }
    }

    #[test]
    fn accepts_a_sane_present() {
        assert_eq!(validate(&args(), 1), Ok(()));
    }

    #[test]
    fn rejects_bad_arguments() {
        let mut a = args();
        a.BytesPerPixel = 3;
        assert_eq!(validate(&a, 1), Err(STATUS_INVALID_PARAMETER));
        let mut a = args();
        a.VidPnSourceId = 1;
        assert_eq!(validate(&a, 1), Err(STATUS_INVALID_PARAMETER));
        let mut a = args();
        a.NumDirtyRects = 2;
        assert_eq!(validate(&a, 1), Err(STATUS_INVALID_PARAMETER));
        let mut a = args();
        a.NumMoves = 1;
        assert_eq!(validate(&a, 1), Err(STATUS_INVALID_PARAMETER));
        let mut a = args();
        a.Pitch = -4096;
        assert_eq!(validate(&a, 1), Err(STATUS_INVALID_PARAMETER));
        let mut a = args();
        a.pSource = core::ptr::null_mut();
        assert_eq!(validate(&a, 1), Err(STATUS_INVALID_PARAMETER));
    }

    #[test]
    fn converts_rect_arrays() {
        let dirty = [RECT {
            left: 1,
            top: 2,
            right: 3,
            bottom: 4,
        }];
        let moves = [D3DKMT_MOVE_RECT {
            SourcePoint: POINT { x: 5, y: 6 },
            DestRect: RECT {
                left: 7,
                top: 8,
                right: 9,
                bottom: 10,
            },
        }];
        let r = convert_rects(&dirty, &moves).unwrap();
        assert_eq!(r.dirty, [Rect::new(1, 2, 3, 4)]);
        assert_eq!(
            r.moves,
            [MoveRect {
                source: Point { x: 5, y: 6 },
                dest: Rect::new(7, 8, 9, 10)
            }]
        );
    }
}
