//! A source's desktop: the system-memory surface the OS hands to `DxgkDdiPresentDisplayOnly`
//! (B8G8R8A8, in the desktop's orientation, `width * 4` bytes per row), the path rotation it
//! was committed with, and the drawing the runner's commands do on it.

use dxgkrnl_sim::Surface;
use viogpu_common::blit::{check_inside, Point, Rect, Rotation};
use viogpu_guest_runner::scene;
use viogpudo::ddi::{
    D3DKMDT_VIDPN_PRESENT_PATH_ROTATION, D3DKMDT_VPPR_IDENTITY, D3DKMDT_VPPR_ROTATE180,
    D3DKMDT_VPPR_ROTATE270, D3DKMDT_VPPR_ROTATE90, RECT,
};

use super::Outcome;

/// The VidPN path rotation of a blit rotation (both counter-clockwise).
pub fn path_rotation(rotation: Rotation) -> D3DKMDT_VIDPN_PRESENT_PATH_ROTATION {
    match rotation {
        Rotation::Identity => D3DKMDT_VPPR_IDENTITY,
        Rotation::Rotate90 => D3DKMDT_VPPR_ROTATE90,
        Rotation::Rotate180 => D3DKMDT_VPPR_ROTATE180,
        Rotation::Rotate270 => D3DKMDT_VPPR_ROTATE270,
    }
}

/// A `RECT` for the driver.
pub fn os_rect(r: &Rect) -> RECT {
    dxgkrnl_sim::rect(r.left, r.top, r.right, r.bottom)
}

/// A source's desktop.
pub struct Desktop {
    /// The surface presented from.
    pub surface: Surface,
    /// How the path shows it.
    pub rotation: Rotation,
}

impl Desktop {
    /// A `width` x `height` desktop of one color, unrotated.
    pub(super) fn filled(width: u32, height: u32, color: u32) -> Self {
        Self {
            surface: Surface {
                width,
                height,
                pitch: width * 4,
                bytes: scene::bgra(color).repeat(width as usize * height as usize),
            },
            rotation: Rotation::Identity,
        }
    }

    /// Width in pixels.
    pub(super) fn width(&self) -> u32 {
        self.surface.width
    }

    /// Height in pixels.
    pub(super) fn height(&self) -> u32 {
        self.surface.height
    }

    /// The whole desktop.
    pub(super) fn full_rect(&self) -> Rect {
        Rect::new(0, 0, self.width() as i32, self.height() as i32)
    }

    /// Draws the test pattern over the whole desktop.
    pub(super) fn draw_pattern(&mut self) {
        let (w, h) = (self.width(), self.height());
        self.surface.bytes = scene::image(w, h, |x, y| scene::pattern_pixel(x, y, w, h));
    }

    /// Fills `rect` (checked by the caller) with `color`.
    pub(super) fn fill_rect(&mut self, rect: &Rect, color: u32) {
        let pixel = scene::bgra(color);
        let pitch = self.surface.pitch as usize;
        for y in rect.top..rect.bottom {
            let row = y as usize * pitch;
            for x in rect.left..rect.right {
                let at = row + x as usize * 4;
                self.surface.bytes[at..at + 4].copy_from_slice(&pixel);
            }
        }
    }

    /// Scrolls: the pixels at `from` (the size of `dest`) now also appear at `dest`, as the
    /// OS's desktop holds them when it presents a move. Both rects checked by the caller.
    pub(super) fn move_rect(&mut self, from: Point, dest: &Rect) {
        let pitch = self.surface.pitch as usize;
        let row_bytes = dest.width() as usize * 4;
        let rows: Vec<Vec<u8>> = (0..dest.height() as usize)
            .map(|i| {
                let at = (from.y as usize + i) * pitch + from.x as usize * 4;
                self.surface.bytes[at..at + row_bytes].to_vec()
            })
            .collect();
        for (i, row) in rows.iter().enumerate() {
            let at = (dest.top as usize + i) * pitch + dest.left as usize * 4;
            self.surface.bytes[at..at + row_bytes].copy_from_slice(row);
        }
    }

    /// Checks that `rect` is a non-inverted rect inside the desktop.
    pub(super) fn check(&self, rect: &Rect) -> Outcome<()> {
        check_inside(rect, self.width(), self.height()).map_err(|e| {
            format!(
                "rect {rect:?} on a {}x{} desktop: {e}",
                self.width(),
                self.height()
            )
        })
    }
}
