//! The hardware pointer: DxgkDdiSetPointerShape and DxgkDdiSetPointerPosition over the
//! core's hardware cursor (`viogpu_common::hardware_cursor`: the 64x64 resource, which
//! command shows, moves or hides it, rotation, and what the device shows after a failure).
//! This file turns the DDI arguments into a core [`Placement`]: the source, the OS position
//! (the top-left corner of the pointer image on the desktop; a driver that programs hardware
//! "can ignore" XHot/YHot, per DXGKARG_SETPOINTERSHAPE) and the source's geometry. On a source
//! without a mode (its path is disabled) a move succeeds and changes nothing, as the DDI
//! requires; after a surprise removal both DDIs succeed without doing anything.
//!
//! Locking: the pointer DDIs take only the pointer lock ([`PointerState`]): Windows calls them
//! independently of every other DDI, so they never wait for a commit, a present or a power
//! change that holds the state lock. What they need of the sources is the geometry copied into
//! the pointer state by those paths, and the hardware is the pointer state's own reference,
//! present only while the device is powered.

use super::{Adapter, DdiResult, PointerState, SourceGeometry};
use crate::ddi::*;
use viogpu_common::cursor::{PointerKind, PointerShape, CURSOR_SIZE};
use viogpu_common::hardware_cursor::Placement;

/// The placement of a pointer at OS position `(x, y)` on `source`, with the source's
/// geometry as the pointer state knows it; `None` for a source without a mode (its path is
/// disabled) or an unknown one.
fn placement(sources: &[SourceGeometry], source: u32, x: i32, y: i32) -> Option<Placement> {
    let geometry = sources.get(source as usize)?;
    geometry.framebuffer?;
    Some(Placement {
        source,
        x,
        y,
        rotation: geometry.rotation,
        desktop: geometry.source_mode?,
    })
}

/// The last placement the OS asked for, with the current geometry of its source; the origin
/// of source 0 before the first move.
fn current_placement(pointer: &PointerState) -> Option<Placement> {
    let (source, x, y) = pointer
        .cursor
        .as_ref()
        .and_then(|c| c.placement())
        .map_or((0, 0, 0), |p| (p.source, p.x, p.y));
    placement(&pointer.sources, source, x, y)
}

impl Adapter {
    /// After a commit or power-up (pointer lock held): when the source the pointer is shown
    /// on now has another rotation than its image, the image is rotated anew and shown again
    /// at the OS's last position. A failure is only traced (the commit itself succeeded; the
    /// next pointer move retries).
    pub(super) fn follow_rotation(&self, pointer: &mut PointerState) {
        let at = current_placement(pointer);
        let PointerState { cursor, hw, .. } = pointer;
        let (Some(hw), Some(c), Some(at)) = (hw.as_deref(), cursor.as_mut(), at) else {
            return;
        };
        if let Err(e) = c.follow_rotation(&hw.gpu, at) {
            crate::trace!("cursor not re-rotated for source {}: {e}", at.source);
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
        // The source's geometry if it has a mode; otherwise the shape is only kept.
        let at = current_placement(pointer).unwrap_or(Placement {
            source: args.VidPnSourceId,
            x: 0,
            y: 0,
            rotation: viogpu_common::blit::Rotation::Identity,
            desktop: (0, 0),
        });
        let PointerState { cursor, hw, .. } = pointer;
        let hw = hw.as_deref().ok_or(STATUS_DEVICE_NOT_READY)?;
        let cursor = cursor.as_mut().ok_or(STATUS_NOT_SUPPORTED)?;
        let result = cursor.set_shape(&hw.gpu, &shape, at);
        self.unless_gone(hw, result)
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
        let Some(at) = placement(&pointer.sources, args.VidPnSourceId, args.X, args.Y) else {
            return Ok(());
        };
        let PointerState { cursor, hw, .. } = pointer;
        // Powered down (or handed off): nothing to move now; power-up shows the pointer
        // where it last was.
        let (Some(hw), Some(cursor)) = (hw.as_deref(), cursor.as_mut()) else {
            // (Without a hardware cursor the OS draws its own.)
            return Ok(());
        };
        let result = cursor.set_position(&hw.gpu, at, args.Flags.visible());
        self.unless_gone(hw, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
