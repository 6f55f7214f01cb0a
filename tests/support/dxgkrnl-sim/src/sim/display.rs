//! What reaches the screen: `DxgkDdiPresentDisplayOnly` from a system-memory [`Surface`] with
//! dirty and move rectangles (the surface copied into user-mode memory for the call, as the
//! compositor's are: [`UserBuffer`], unreadable until the driver probes and locks it), source visibility, the hardware pointer ([`PointerShape`] in its
//! three kinds, and its position), and the bugcheck path (`DxgkDdiSystemDisplayEnable`, then
//! `DxgkDdiSystemDisplayWrite` with interrupts off, as after a crash).

use std::ffi::c_void;
use std::sync::atomic::Ordering;

use viogpudo::ddi::*;

use super::{Phase, Sim, SimError};
use crate::adapter::AdapterState;
use crate::callbacks;
use crate::machine::Machine;
use crate::user_memory::{self, UserBuffer};

/// A 32-bit-per-pixel system-memory surface (B, G, R, X bytes: `D3DDDIFMT_X8R8G8B8`), what the
/// OS hands to `DxgkDdiPresentDisplayOnly`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surface {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row (at least `width * 4`).
    pub pitch: u32,
    /// The pixel bytes, `pitch * height` of them.
    pub bytes: Vec<u8>,
}

impl Surface {
    /// A black surface with a tight pitch.
    pub fn new(width: u32, height: u32) -> Self {
        Self::with_pitch(width, height, width * 4)
    }

    /// A black surface with `pitch` bytes per row (`pitch >= width * 4`).
    pub fn with_pitch(width: u32, height: u32, pitch: u32) -> Self {
        let pitch = pitch.max(width * 4);
        Self {
            width,
            height,
            pitch,
            bytes: vec![0; pitch as usize * height as usize],
        }
    }

    /// A surface whose every pixel is a different function of its position, so misplaced or
    /// stale pixels show: `pattern(seed)(x, y)` (alpha byte zero).
    pub fn pattern(width: u32, height: u32, seed: u32) -> Self {
        let mut s = Self::new(width, height);
        for y in 0..height {
            for x in 0..width {
                s.set_pixel(x, y, Self::pattern_pixel(seed, x, y));
            }
        }
        s
    }

    /// The pixel of [`pattern`](Self::pattern) at (x, y): 0x00RRGGBB.
    pub fn pattern_pixel(seed: u32, x: u32, y: u32) -> u32 {
        let h = x
            .wrapping_mul(0x9E37_79B1)
            .wrapping_add(y.wrapping_mul(0x85EB_CA77))
            .wrapping_add(seed.wrapping_mul(0xC2B2_AE3D));
        (h ^ (h >> 15)) & 0x00FF_FFFF
    }

    /// The pixel at (x, y) as 0xXXRRGGBB, `None` outside.
    pub fn pixel(&self, x: u32, y: u32) -> Option<u32> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = y as usize * self.pitch as usize + x as usize * 4;
        let b = self.bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Sets the pixel at (x, y) to 0xXXRRGGBB (ignored outside).
    pub fn set_pixel(&mut self, x: u32, y: u32, value: u32) {
        if x >= self.width || y >= self.height {
            return;
        }
        let at = y as usize * self.pitch as usize + x as usize * 4;
        if let Some(b) = self.bytes.get_mut(at..at + 4) {
            b.copy_from_slice(&value.to_le_bytes());
        }
    }

    /// Fills `rect` (clipped to the surface) with `value`.
    pub fn fill(&mut self, rect: RECT, value: u32) {
        let clip = |v: i32, max: u32| v.clamp(0, max as i32) as u32;
        for y in clip(rect.top, self.height)..clip(rect.bottom, self.height) {
            for x in clip(rect.left, self.width)..clip(rect.right, self.width) {
                self.set_pixel(x, y, value);
            }
        }
    }

    /// The whole surface as a rectangle.
    pub fn rect(&self) -> RECT {
        rect(0, 0, self.width as i32, self.height as i32)
    }
}

/// A `RECT` from its edges (right and bottom exclusive).
pub fn rect(left: i32, top: i32, right: i32, bottom: i32) -> RECT {
    RECT {
        left,
        top,
        right,
        bottom,
    }
}

/// A pointer shape as `DxgkDdiSetPointerShape` receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerShape {
    /// `DXGK_POINTERFLAGS` value (Monochrome 1, Color 2, MaskedColor 4).
    pub flags: u32,
    /// Width in pixels.
    pub width: u32,
    /// `Height` as passed: the pointer's height (for monochrome pointers the height of one
    /// mask; the buffer holds two).
    pub height: u32,
    /// Bytes per row.
    pub pitch: u32,
    /// The pixel data.
    pub pixels: Vec<u8>,
    /// Hot spot.
    pub hot: (u32, u32),
}

impl PointerShape {
    /// A monochrome pointer: `and` and `xor` are 1-bpp masks of `width` x `height`, rows
    /// padded to whole bytes, AND mask first. As in `DXGKARG_SETPOINTERSHAPE`, `Height` is
    /// the height of one mask and the buffer holds both (`2 * height` rows).
    pub fn monochrome(width: u32, height: u32, and: &[u8], xor: &[u8], hot: (u32, u32)) -> Self {
        let pitch = width.div_ceil(8);
        let mut pixels = and.to_vec();
        pixels.resize((pitch * height) as usize, 0xFF);
        pixels.extend_from_slice(xor);
        pixels.resize((pitch * height * 2) as usize, 0);
        Self {
            flags: 1,
            width,
            height,
            pitch,
            pixels,
            hot,
        }
    }

    /// A 32-bpp colour pointer with per-pixel alpha (B, G, R, A bytes per pixel).
    pub fn color(width: u32, height: u32, bgra: &[u8], hot: (u32, u32)) -> Self {
        Self::color_kind(2, width, height, bgra, hot)
    }

    /// A 32-bpp masked-colour pointer (the alpha byte is a mask: 0xFF XORs the pixel into the
    /// screen, 0x00 replaces it).
    pub fn masked_color(width: u32, height: u32, bgra: &[u8], hot: (u32, u32)) -> Self {
        Self::color_kind(4, width, height, bgra, hot)
    }

    fn color_kind(flags: u32, width: u32, height: u32, bgra: &[u8], hot: (u32, u32)) -> Self {
        let mut pixels = bgra.to_vec();
        pixels.resize((width * 4 * height) as usize, 0);
        Self {
            flags,
            width,
            height,
            pitch: width * 4,
            pixels,
            hot,
        }
    }
}

/// The arguments dxgkrnl passes to `DxgkDdiPresentDisplayOnly` for `dirty` and `moves` of the
/// surface at `pixels` (`pitch` bytes per row) on `source`; they point into the three, which
/// must outlive the call.
pub(crate) fn present_args(
    source: u32,
    pixels: *mut c_void,
    pitch: u32,
    dirty: &mut [RECT],
    moves: &mut [D3DKMT_MOVE_RECT],
    rotate: bool,
) -> DXGKARG_PRESENT_DISPLAYONLY {
    let mut flags = D3DKMT_PRESENT_DISPLAY_ONLY_FLAGS::default();
    flags.set_rotate(rotate);
    DXGKARG_PRESENT_DISPLAYONLY {
        VidPnSourceId: source,
        pSource: pixels,
        BytesPerPixel: 4,
        Pitch: pitch as i32,
        Flags: flags,
        NumMoves: moves.len() as u32,
        pMoves: if moves.is_empty() {
            std::ptr::null_mut()
        } else {
            moves.as_mut_ptr()
        },
        NumDirtyRects: dirty.len() as u32,
        pDirtyRect: if dirty.is_empty() {
            std::ptr::null_mut()
        } else {
            dirty.as_mut_ptr()
        },
        pfnPresentDisplayOnlyProgress: Some(callbacks::present_progress),
    }
}

/// A copy of `surface` in user-mode memory (unreadable until the driver probes it), as the
/// compositor's surfaces are.
pub(crate) fn user_copy(surface: &Surface) -> Result<UserBuffer, SimError> {
    UserBuffer::copy_of(&surface.bytes)
        .map_err(|e| SimError::Contract(format!("cannot map the user-mode source surface: {e}")))
}

/// Records a broken rule if `ddi` returned with user-mode pages of this thread still locked.
pub(crate) fn check_no_locks_left(adapter: &AdapterState, ddi: &str) {
    let held = user_memory::locks_held_by_current_thread();
    if held > 0 {
        adapter.violation(format!(
            "{ddi} returned with {held} lock(s) on user-mode pages still held (MmUnlockPages \
             missing)"
        ));
    }
}

/// The arguments of `DxgkDdiSetPointerShape` for `shape` on `source` (pointing into `shape`).
pub(crate) fn pointer_shape_args(source: u32, shape: &PointerShape) -> DXGKARG_SETPOINTERSHAPE {
    DXGKARG_SETPOINTERSHAPE {
        Flags: DXGK_POINTERFLAGS { Value: shape.flags },
        Width: shape.width,
        Height: shape.height,
        Pitch: shape.pitch,
        VidPnSourceId: source,
        pPixels: shape.pixels.as_ptr().cast::<c_void>(),
        XHot: shape.hot.0,
        YHot: shape.hot.1,
    }
}

/// The arguments of `DxgkDdiSetPointerPosition`.
pub(crate) fn pointer_position_args(
    source: u32,
    x: i32,
    y: i32,
    visible: bool,
) -> DXGKARG_SETPOINTERPOSITION {
    let mut flags = DXGK_SETPOINTERPOSITIONFLAGS::default();
    flags.set_visible(visible);
    DXGKARG_SETPOINTERPOSITION {
        VidPnSourceId: source,
        X: x,
        Y: y,
        Flags: flags,
    }
}

impl<M: Machine + 'static> Sim<M> {
    /// Presents `dirty` (after applying `moves`) of `surface` on `source`, as the desktop
    /// compositor does for a display-only driver. The rotate flag follows the committed path.
    pub fn present(
        &mut self,
        source: u32,
        surface: &Surface,
        dirty: &[RECT],
        moves: &[D3DKMT_MOVE_RECT],
    ) -> Result<(), SimError> {
        let mut dirty = dirty.to_vec();
        let mut moves = moves.to_vec();
        let rotated = self
            .committed_mode(source)
            .is_some_and(|(_, _, r)| r != D3DKMDT_VPPR_IDENTITY && r != D3DKMDT_VPPR_UNINITIALIZED);
        let copy_started = std::time::Instant::now();
        let user = user_copy(surface)?;
        let mut copy = copy_started.elapsed();
        let args = present_args(
            source,
            user.address(),
            surface.pitch,
            &mut dirty,
            &mut moves,
            rotated,
        );
        let status = self.present_raw(&args)?;
        let unmap_started = std::time::Instant::now();
        drop(user);
        copy += unmap_started.elapsed();
        self.source_copy = copy;
        Self::check("DxgkDdiPresentDisplayOnly", status)
    }

    /// Presents `dirty` of `surface`, which the OS already turned to the framebuffer's
    /// orientation (a 90/270 path: width and height of the desktop swapped), on `source` with
    /// `Flags.Rotate` clear, as the compositor does when it renders rotated itself.
    pub fn present_turned_by_os(
        &mut self,
        source: u32,
        surface: &Surface,
        dirty: &[RECT],
    ) -> Result<(), SimError> {
        let mut dirty = dirty.to_vec();
        let user = user_copy(surface)?;
        let args = present_args(
            source,
            user.address(),
            surface.pitch,
            &mut dirty,
            &mut [],
            false,
        );
        let status = self.present_raw(&args)?;
        drop(user);
        Self::check("DxgkDdiPresentDisplayOnly", status)
    }

    /// Presents the whole of `surface` on `source`.
    pub fn present_full(&mut self, source: u32, surface: &Surface) -> Result<(), SimError> {
        self.present(source, surface, &[surface.rect()], &[])
    }

    /// `DxgkDdiPresentDisplayOnly` with a caller-built argument (the source pointer, rects and
    /// counts are the caller's, bad ones included); returns the NTSTATUS. The source is the
    /// caller's too: a [`UserBuffer`]'s address (user-mode memory) or any other pointer, which
    /// the driver takes for kernel memory and reads directly.
    ///
    /// The driver must not return with a lock held on user memory of this thread (a broken
    /// rule: on Windows the pages stay locked, and the process's exit bugchecks).
    pub fn present_raw(
        &mut self,
        args: &DXGKARG_PRESENT_DISPLAYONLY,
    ) -> Result<NTSTATUS, SimError> {
        let status = self.call_ddi(
            "DxgkDdiPresentDisplayOnly",
            self.init.DxgkDdiPresentDisplayOnly,
            core::ptr::from_ref(args),
        )?;
        check_no_locks_left(&self.adapter, "DxgkDdiPresentDisplayOnly");
        Ok(status)
    }

    /// `DxgkDdiSetVidPnSourceVisibility`.
    pub fn set_source_visibility(&mut self, source: u32, visible: bool) -> Result<(), SimError> {
        let f = self
            .init
            .DxgkDdiSetVidPnSourceVisibility
            .ok_or(SimError::MissingDdi("DxgkDdiSetVidPnSourceVisibility"))?;
        let args = DXGKARG_SETVIDPNSOURCEVISIBILITY {
            VidPnSourceId: source,
            Visible: u8::from(visible),
        };
        let context = self.context();
        // SAFETY: the driver's DDI with a valid argument.
        let status = self.ddi("DxgkDdiSetVidPnSourceVisibility", || unsafe {
            f(context, &args)
        });
        Self::check("DxgkDdiSetVidPnSourceVisibility", status)
    }

    /// `DxgkDdiSetPointerShape` on `source`.
    pub fn set_pointer_shape(&mut self, source: u32, shape: &PointerShape) -> Result<(), SimError> {
        let args = pointer_shape_args(source, shape);
        let status = self.set_pointer_shape_raw(&args)?;
        Self::check("DxgkDdiSetPointerShape", status)
    }

    /// `DxgkDdiSetPointerShape` with a caller-built argument; returns the NTSTATUS.
    pub fn set_pointer_shape_raw(
        &mut self,
        args: &DXGKARG_SETPOINTERSHAPE,
    ) -> Result<NTSTATUS, SimError> {
        self.call_ddi(
            "DxgkDdiSetPointerShape",
            self.init.DxgkDdiSetPointerShape,
            core::ptr::from_ref(args),
        )
    }

    /// `DxgkDdiSetPointerPosition` on `source`.
    pub fn set_pointer_position(
        &mut self,
        source: u32,
        x: i32,
        y: i32,
        visible: bool,
    ) -> Result<(), SimError> {
        let args = pointer_position_args(source, x, y, visible);
        let status = self.set_pointer_position_raw(&args)?;
        Self::check("DxgkDdiSetPointerPosition", status)
    }

    /// `DxgkDdiSetPointerPosition` with a caller-built argument; returns the NTSTATUS.
    pub fn set_pointer_position_raw(
        &mut self,
        args: &DXGKARG_SETPOINTERPOSITION,
    ) -> Result<NTSTATUS, SimError> {
        self.call_ddi(
            "DxgkDdiSetPointerPosition",
            self.init.DxgkDdiSetPointerPosition,
            core::ptr::from_ref(args),
        )
    }

    /// The bugcheck screen: disconnects the interrupt (a crashed machine takes none), calls
    /// `DxgkDdiSystemDisplayEnable` for `target` and returns the size and format the driver
    /// chose. Afterwards only [`system_display_write`](Self::system_display_write),
    /// [`remove`](Self::remove) and the accessors are meaningful.
    pub fn system_display_enable(
        &mut self,
        target: u32,
    ) -> Result<(u32, u32, D3DDDIFORMAT), SimError> {
        let f = self
            .init
            .DxgkDdiSystemDisplayEnable
            .ok_or(SimError::MissingDdi("DxgkDdiSystemDisplayEnable"))?;
        self.adapter.connected.store(false, Ordering::SeqCst);
        self.phase = Phase::Crashed;
        let mut flags = DXGKARG_SYSTEM_DISPLAY_ENABLE_FLAGS::default();
        let (mut width, mut height) = (0u32, 0u32);
        let mut format = D3DDDIFMT_UNKNOWN;
        let context = self.context();
        // SAFETY: the driver's DDI with its context and out pointers to our locals.
        let status = self.ddi("DxgkDdiSystemDisplayEnable", || unsafe {
            f(
                context,
                target,
                &mut flags,
                &mut width,
                &mut height,
                &mut format,
            )
        });
        self.adapter.check_bugcheck_target(target, status);
        Self::check("DxgkDdiSystemDisplayEnable", status)?;
        Ok((width, height, format))
    }

    /// `DxgkDdiSystemDisplayWrite`: draws `bitmap` (32 bpp) at (x, y) on the bugcheck screen.
    pub fn system_display_write(
        &mut self,
        bitmap: &Surface,
        x: u32,
        y: u32,
    ) -> Result<(), SimError> {
        let f = self
            .init
            .DxgkDdiSystemDisplayWrite
            .ok_or(SimError::MissingDdi("DxgkDdiSystemDisplayWrite"))?;
        let context = self.context();
        let source = bitmap.bytes.as_ptr().cast_mut().cast::<c_void>();
        // SAFETY: the driver's DDI with a bitmap of SourceStride * SourceHeight bytes.
        self.ddi("DxgkDdiSystemDisplayWrite", || unsafe {
            f(
                context,
                source,
                bitmap.width,
                bitmap.height,
                bitmap.pitch,
                x,
                y,
            )
        });
        Ok(())
    }

    /// A bugcheck: [`system_display_enable`](Self::system_display_enable) for `target`, then
    /// `bitmap` written at (x, y). Returns what the enable call reported.
    pub fn bugcheck(
        &mut self,
        target: u32,
        bitmap: &Surface,
        x: u32,
        y: u32,
    ) -> Result<(u32, u32, D3DDDIFORMAT), SimError> {
        let screen = self.system_display_enable(target)?;
        self.system_display_write(bitmap, x, y)?;
        Ok(screen)
    }
}
