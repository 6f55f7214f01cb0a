//! The hardware pointer: DxgkDdiSetPointerShape and DxgkDdiSetPointerPosition over the
//! virtio-gpu cursor queue.
//!
//! The cursor image is one 64x64 B8G8R8A8 host resource created at start. A new shape is
//! converted into its backing (`cursor::convert`), transferred to the host (waited for, so
//! the host never shows a half-written image), and shown with UPDATE_CURSOR. A move is
//! MOVE_CURSOR; hiding is UPDATE_CURSOR with resource 0. The host keeps a cursor per scanout
//! (QEMU: `virtio_gpu_update_cursor` works on `scanout[pos.scanout_id]`), so a pointer that
//! goes to another source is hidden on the scanout it leaves and defined with UPDATE_CURSOR on
//! the one it enters; MOVE_CURSOR only ever moves it within one scanout. After a surprise
//! removal both DDIs succeed without doing anything.
//!
//! Positions: `DXGKARG_SETPOINTERPOSITION` X/Y are the top-left corner of the pointer image
//! on the desktop (a driver that programs hardware "can ignore" XHot/YHot, per
//! DXGKARG_SETPOINTERSHAPE), and the virtio cursor position is the top-left corner of the
//! cursor image on the scanout, with the hot spot passed separately (what the Linux
//! virtio-gpu driver and virtio-win send, and what hosts expect: they add the hot spot to
//! find the pointer). On an unrotated path the OS position is sent as is (clamped at 0: the
//! wire field is unsigned).
//!
//! Rotation: on a rotated path the framebuffer holds the desktop turned, so the image is
//! turned the same way (`cursor::rotate_cursor`, the present blit's mapping) and its hot spot
//! with it; the image is placed so that its rotated hot spot lands on the hot spot's rotated
//! desktop position. The unrotated converted shape is kept, so when the pointer's source
//! turns (a commit) or the pointer goes to a source with another rotation, the image is
//! rotated anew and re-sent.
//!
//! Locking: the pointer DDIs take only the pointer lock ([`PointerState`]): Windows calls them
//! independently of every other DDI, so they never wait for a commit, a present or a power
//! change that holds the state lock. What they need of the sources is the geometry copied into
//! the pointer state by those paths.

use viogpu_common::gpu::WaitMode;
use viogpu_common::protocol::{CursorPos, Rect};

use super::{Adapter, CursorImage, DdiResult, Gpu, IntoDdi, PointerState, SourceGeometry};
use crate::ddi::*;
use viogpu_common::blit::Rotation;
use viogpu_common::cursor::{
    convert_pointer, rotate_cursor, HotSpot, PointerKind, PointerShape, CURSOR_BYTES, CURSOR_SIZE,
};

/// Where the top-left corner of the cursor image goes in a framebuffer that shows a
/// `src_w` x `src_h` desktop with `rotation`, for a pointer whose image has its top-left at
/// OS position `(x, y)` and its hot spot at `hot` (in the OS shape), when the image the
/// device shows (rotated with the path) has its hot spot at `shown_hot`.
pub fn cursor_position(
    x: i32,
    y: i32,
    hot: (u32, u32),
    shown_hot: (u32, u32),
    rotation: Rotation,
    src: (u32, u32),
) -> (u32, u32) {
    let hx = i64::from(x) + i64::from(hot.0);
    let hy = i64::from(y) + i64::from(hot.1);
    let (w, h) = (i64::from(src.0), i64::from(src.1));
    let (fx, fy) = match rotation {
        Rotation::Identity => (hx, hy),
        Rotation::Rotate90 => (hy, w - 1 - hx),
        Rotation::Rotate180 => (w - 1 - hx, h - 1 - hy),
        Rotation::Rotate270 => (h - 1 - hy, hx),
    };
    let clamp = |v: i64| u32::try_from(v.max(0)).unwrap_or(u32::MAX);
    (
        clamp(fx - i64::from(shown_hot.0)),
        clamp(fy - i64::from(shown_hot.1)),
    )
}

/// [`cursor_position`] of `cursor` on `source` of `sources` at OS position `(x, y)` (the
/// origin for an unknown source).
fn source_cursor_position(
    sources: &[SourceGeometry],
    source: u32,
    x: i32,
    y: i32,
    cursor: &CursorImage,
) -> (u32, u32) {
    let Some(geometry) = sources.get(source as usize) else {
        return (0, 0);
    };
    let src = geometry
        .source_mode
        .or(geometry.framebuffer)
        .unwrap_or((0, 0));
    cursor_position(x, y, cursor.shape_hot, cursor.hot, geometry.rotation, src)
}

/// The rotation of `source` (identity for an unknown one).
fn rotation_of(sources: &[SourceGeometry], source: u32) -> Rotation {
    sources
        .get(source as usize)
        .map_or(Rotation::Identity, |geometry| geometry.rotation)
}

impl CursorImage {
    /// Rotates the kept shape by `rotation` into the device image and transfers it to the
    /// host (waited for, so the host never shows a half-written image).
    fn upload(&mut self, gpu: &Gpu, rotation: Rotation) -> DdiResult<()> {
        let shape: &[u8; CURSOR_BYTES] = self
            .shape
            .as_slice()
            .try_into()
            .map_err(|_| STATUS_INVALID_PARAMETER)?;
        let image: &mut [u8; CURSOR_BYTES] = self
            .buffer
            .as_mut_slice()
            .get_mut(..CURSOR_BYTES)
            .and_then(|s| s.try_into().ok())
            .ok_or(STATUS_INVALID_PARAMETER)?;
        let (w, h) = self.shape_size;
        let hot = HotSpot {
            x: self.shape_hot.0,
            y: self.shape_hot.1,
        };
        let rotated = rotate_cursor(shape, w, h, hot, rotation, image).ddi()?;
        // Recorded before the transfer: the buffer holds this rotation whatever the host did.
        self.rotation = rotation;
        self.hot = (rotated.hot.x, rotated.hot.y);
        let full = Rect::new(0, 0, CURSOR_SIZE, CURSOR_SIZE);
        gpu.transfer_to_host_2d(self.resource_id, full, 0, WaitMode::Wait)
            .ddi()
    }
}

impl Adapter {
    /// After a commit or power-up (pointer lock held): when the source the pointer is shown
    /// on now has another rotation than its image, the image is rotated anew and shown again
    /// at the OS's last position. A failure is only traced (the commit itself succeeded; the
    /// next pointer move retries).
    pub(super) fn follow_rotation(&self, pointer: &mut PointerState) {
        let PointerState {
            cursor,
            sources,
            hw,
        } = pointer;
        let (Some(hw), Some(c)) = (hw.as_deref(), cursor.as_mut()) else {
            return;
        };
        if c.resource_id == 0 || !c.has_shape || !c.visible {
            return;
        }
        let (source, os_x, os_y) = c.os_pos;
        let Some(geometry) = sources.get(source as usize) else {
            return;
        };
        if geometry.rotation == c.rotation
            || geometry.source_mode.is_none()
            || geometry.framebuffer.is_none()
        {
            return;
        }
        let result = c.upload(&hw.gpu, geometry.rotation).and_then(|()| {
            let (x, y) = source_cursor_position(sources, source, os_x, os_y, c);
            c.pos = (source, x, y);
            let pos = CursorPos {
                scanout_id: source,
                x,
                y,
                padding: 0,
            };
            hw.gpu
                .update_cursor(pos, c.resource_id, c.hot.0, c.hot.1, WaitMode::Wait)
                .ddi()
        });
        if let Err(status) = result {
            crate::trace!("cursor not re-rotated for source {source}: {status:#x}");
        }
    }
}

/// The shape kind of the flags, exactly one bit set.
pub fn pointer_kind(flags: DXGK_POINTERFLAGS) -> Option<PointerKind> {
    match (flags.monochrome(), flags.color(), flags.masked_color()) {
        (true, false, false) => Some(PointerKind::Monochrome),
        (false, true, false) => Some(PointerKind::Color),
        (false, false, true) => Some(PointerKind::MaskedColor),
        _ => None,
    }
}

impl Adapter {
    /// DxgkDdiSetPointerShape with the shape's pixels (`pixels` spans `Pitch * Height` bytes).
    pub fn set_pointer_shape(
        &self,
        args: &DXGKARG_SETPOINTERSHAPE,
        pixels: &[u8],
    ) -> DdiResult<()> {
        if !self.hardware_cursor {
            return Err(STATUS_NOT_SUPPORTED);
        }
        if !self.is_known_id(args.VidPnSourceId) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        if self.is_removed() {
            return Ok(());
        }
        let kind = pointer_kind(args.Flags).ok_or(STATUS_INVALID_PARAMETER)?;
        // DXGKARG_SETPOINTERSHAPE: for a monochrome pointer, Height is the height of one
        // mask; the AND mask is followed by an XOR mask of the same size.
        let shape_h = args.Height;
        if args.Width == 0
            || shape_h == 0
            || args.Width > CURSOR_SIZE
            || shape_h > CURSOR_SIZE
            || args.XHot >= args.Width
            || args.YHot >= shape_h
        {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let shape = PointerShape {
            kind,
            width: args.Width,
            height: args.Height,
            pitch: args.Pitch,
            hot_x: args.XHot,
            hot_y: args.YHot,
            pixels,
        };
        let mut guard = self.pointer.lock();
        let pointer = &mut *guard;
        let hw = pointer.hw.as_deref().ok_or(STATUS_DEVICE_NOT_READY)?;
        let cursor_img = pointer.cursor.as_mut().ok_or(STATUS_NOT_SUPPORTED)?;
        if cursor_img.resource_id == 0 {
            return Err(STATUS_DEVICE_NOT_READY);
        }
        let shape_buf: &mut [u8; CURSOR_BYTES] = cursor_img
            .shape
            .as_mut_slice()
            .try_into()
            .map_err(|_| STATUS_INVALID_PARAMETER)?;
        convert_pointer(&shape, shape_buf).ddi()?;
        cursor_img.shape_size = (args.Width, args.Height);
        cursor_img.shape_hot = (args.XHot, args.YHot);
        // The image is shown, turned with the path, where the OS last put the pointer.
        let (source, os_x, os_y) = cursor_img.os_pos;
        cursor_img.upload(&hw.gpu, rotation_of(&pointer.sources, source))?;
        cursor_img.has_shape = true;
        let (x, y) = source_cursor_position(&pointer.sources, source, os_x, os_y, cursor_img);
        cursor_img.pos = (source, x, y);
        let scanout = source;
        let pos = CursorPos {
            scanout_id: scanout,
            x,
            y,
            padding: 0,
        };
        let resource = if cursor_img.visible {
            cursor_img.resource_id
        } else {
            0
        };
        let (hot_x, hot_y) = cursor_img.hot;
        hw.gpu
            .update_cursor(pos, resource, hot_x, hot_y, WaitMode::Wait)
            .ddi()
    }

    /// DxgkDdiSetPointerPosition. On a source without a mode (its path is disabled) it
    /// succeeds and changes nothing, neither here nor on the device, as the DDI requires.
    pub fn set_pointer_position(&self, args: &DXGKARG_SETPOINTERPOSITION) -> DdiResult<()> {
        if !self.is_known_id(args.VidPnSourceId) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        if self.is_removed() {
            return Ok(());
        }
        let mut guard = self.pointer.lock();
        let pointer = &mut *guard;
        let geometry = pointer
            .sources
            .get(args.VidPnSourceId as usize)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        if geometry.source_mode.is_none() || geometry.framebuffer.is_none() {
            return Ok(());
        }
        // Powered down (or handed off): nothing to move now; power-up shows the pointer
        // where it last was.
        let Some(hw) = pointer.hw.as_deref() else {
            return Ok(());
        };
        let Some(cursor_img) = pointer.cursor.as_mut() else {
            // No hardware cursor: nothing to move (the OS draws its own).
            return Ok(());
        };
        if cursor_img.resource_id == 0 {
            return Ok(());
        }
        let source = args.VidPnSourceId;
        let visible = args.Flags.visible() && cursor_img.has_shape;
        let was = cursor_img.visible;
        // The scanout the image is defined and shown on. The host keeps one cursor per
        // scanout: MOVE_CURSOR moves only that scanout's cursor, so a pointer going to another
        // source is hidden where it was and defined anew where it goes.
        let (shown_on, old_x, old_y) = cursor_img.pos;
        if !visible && was && shown_on != source {
            // The OS hides the pointer of a source it is not on: nothing to do.
            return Ok(());
        }
        // The image must be turned for the source it is shown on.
        let rotation = rotation_of(&pointer.sources, source);
        let reshaped = visible && cursor_img.rotation != rotation;
        if reshaped {
            cursor_img.upload(&hw.gpu, rotation)?;
        }
        let (x, y) = source_cursor_position(&pointer.sources, source, args.X, args.Y, cursor_img);
        let at = |scanout_id, x, y| CursorPos {
            scanout_id,
            x,
            y,
            padding: 0,
        };
        let (hot_x, hot_y) = cursor_img.hot;
        let id = cursor_img.resource_id;
        let gpu = &hw.gpu;
        let define = || gpu.update_cursor(at(source, x, y), id, hot_x, hot_y, WaitMode::Wait);
        // The state follows only what the device did. A failed hide leaves the pointer
        // recorded where it was shown, so the next call hides it again; a failed move or
        // definition records it hidden, so the next call defines it anew with UPDATE_CURSOR
        // (a MOVE_CURSOR would go to a scanout where it may not be defined).
        let result = match (was, visible) {
            (true, true) if shown_on == source && !reshaped => {
                gpu.move_cursor(at(source, x, y), id, WaitMode::Wait)
            }
            // Same scanout, new image: UPDATE_CURSOR makes the host read it again.
            (true, true) if shown_on == source => define(),
            (true, true) => {
                gpu.update_cursor(at(shown_on, old_x, old_y), 0, 0, 0, WaitMode::Wait)
                    .ddi()?;
                define()
            }
            (false, true) => define(),
            (true, false) => {
                gpu.update_cursor(at(source, x, y), 0, 0, 0, WaitMode::Wait)
                    .ddi()?;
                Ok(())
            }
            (false, false) => Ok(()),
        };
        if result.is_ok() {
            cursor_img.visible = visible;
            cursor_img.pos = (source, x, y);
            cursor_img.os_pos = (source, args.X, args.Y);
        } else {
            cursor_img.visible = false;
        }
        result.ddi()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrotated_position_is_the_os_position_clamped() {
        assert_eq!(
            cursor_position(10, 20, (3, 4), (3, 4), Rotation::Identity, (800, 600)),
            (10, 20)
        );
        assert_eq!(
            cursor_position(-10, -20, (3, 4), (3, 4), Rotation::Identity, (800, 600)),
            (0, 0)
        );
    }

    #[test]
    fn rotated_position_puts_the_rotated_hot_spot_on_its_rotated_point() {
        // 800x600 desktop; Rotate90 puts desktop (x, y) at (y, 799 - x).
        assert_eq!(
            cursor_position(0, 0, (0, 0), (0, 31), Rotation::Rotate90, (800, 600)),
            (0, 768)
        );
        // A 32x32 shape with hot spot (3, 4): rotated, the hot spot is (4, 28). The desktop
        // point (3, 4) lands on (4, 796); the image starts (4, 28) before it.
        assert_eq!(
            cursor_position(0, 0, (3, 4), (4, 28), Rotation::Rotate90, (800, 600)),
            (0, 768)
        );
        // Rotate180: hot spot (31, 31) of a 32x32 shape is (0, 0) turned; desktop (799, 599)
        // is framebuffer (0, 0).
        assert_eq!(
            cursor_position(768, 568, (31, 31), (0, 0), Rotation::Rotate180, (800, 600)),
            (0, 0)
        );
        // Rotate270 puts desktop (x, y) at (599 - y, x): (5, 7) -> (592, 5).
        assert_eq!(
            cursor_position(5, 7, (0, 0), (31, 0), Rotation::Rotate270, (800, 600)),
            (561, 5)
        );
    }

    #[test]
    fn kinds_need_exactly_one_flag() {
        let mut f = DXGK_POINTERFLAGS::default();
        assert_eq!(pointer_kind(f), None);
        f.set_color(true);
        assert_eq!(pointer_kind(f), Some(PointerKind::Color));
        f.set_monochrome(true);
        assert_eq!(pointer_kind(f), None);
        let mut f = DXGK_POINTERFLAGS::default();
        f.set_masked_color(true);
        assert_eq!(pointer_kind(f), Some(PointerKind::MaskedColor));
    }
}
