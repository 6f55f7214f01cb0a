//! The hardware cursor of each scanout, as the cursor queue's `UPDATE_CURSOR` and
//! `MOVE_CURSOR` leave it.
//!
//! QEMU's rules (`update_cursor` in hw/display/virtio-gpu.c), kept here:
//! - a scanout id out of range is ignored;
//! - every type other than `MOVE_CURSOR` is an update: it sets the hot spot, remembers the
//!   whole request, and copies the 64x64 image from the resource's *host* image (what was
//!   transferred, not the guest backing); a missing resource or one of another size leaves
//!   the previous image in place;
//! - `MOVE_CURSOR` changes only the position;
//! - after either, the cursor is visible exactly when the request's `resource_id` is non-zero,
//!   so a `MOVE_CURSOR` that carries resource 0 hides the cursor;
//! - nothing is written back: the request completes with used length 0.

use viogpu_common::protocol::{CommandType, UpdateCursor};

use super::resources::Resource;

/// Side of the (square) cursor image QEMU allocates.
pub const CURSOR_SIZE: u32 = 64;

/// One scanout's cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CursorState {
    /// Left edge of the cursor image on the scanout (as the driver sent it).
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Hot spot x within the image (from the last update).
    pub hot_x: u32,
    /// Hot spot y within the image.
    pub hot_y: u32,
    /// The resource of the last update (0: hidden).
    pub resource_id: u32,
    /// Whether the host shows the cursor: the last request's `resource_id` was non-zero.
    pub visible: bool,
    /// The 64x64 image copied at the last accepted update (zeros before the first one),
    /// `None` before any update.
    pub image: Option<Vec<u32>>,
    /// `UPDATE_CURSOR` requests seen on this scanout.
    pub updates: u64,
    /// `MOVE_CURSOR` requests seen on this scanout.
    pub moves: u64,
    /// Updates whose resource was missing or not 64x64, so the image was not replaced.
    pub rejected_images: u64,
}

impl CursorState {
    /// Applies one cursor-queue request for this scanout. `resource` is the resource the
    /// request names, if it exists.
    pub(crate) fn apply(&mut self, req: &UpdateCursor, resource: Option<&Resource>) {
        if req.hdr.command_type() == CommandType::MOVE_CURSOR {
            self.moves += 1;
        } else {
            self.updates += 1;
            let image = self
                .image
                .get_or_insert_with(|| vec![0; (CURSOR_SIZE * CURSOR_SIZE) as usize]);
            self.hot_x = req.hot_x;
            self.hot_y = req.hot_y;
            self.resource_id = req.resource_id;
            if req.resource_id != 0 {
                match resource {
                    Some(res) if res.width == CURSOR_SIZE && res.height == CURSOR_SIZE => {
                        image.copy_from_slice(&res.image);
                    }
                    _ => self.rejected_images += 1,
                }
            }
        }
        self.x = req.pos.x;
        self.y = req.pos.y;
        self.visible = req.resource_id != 0;
    }
}
