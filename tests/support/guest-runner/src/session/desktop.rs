//! A head's desktop: the source surface the OS would hand to the present path (B8G8R8A8, in
//! the desktop's orientation, `width * 4` bytes per row) and the rotation of its path, with
//! the drawing the runner's commands do on it.

use viogpu_common::blit::{check_inside, Point, Rect, Rotation, Surface};
use viogpu_guest_runner::scene;

use super::{Context, Outcome};

/// A head's source surface.
pub struct Desktop {
    /// B8G8R8A8 pixels, `width * 4` bytes per row.
    pub pixels: Vec<u8>,
    /// Width in pixels (desktop orientation).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// How the desktop is rotated into the framebuffer.
    pub rotation: Rotation,
}

impl Desktop {
    pub(super) fn filled(width: u32, height: u32, color: u32) -> Self {
        Self {
            pixels: scene::bgra(color).repeat(width as usize * height as usize),
            width,
            height,
            rotation: Rotation::Identity,
        }
    }

    pub(super) fn surface(&self) -> Outcome<Surface<'_>> {
        Surface::new(&self.pixels, self.width, self.height, self.width * 4).ctx("source surface")
    }

    pub(super) fn full_rect(&self) -> Rect {
        Rect::new(0, 0, self.width as i32, self.height as i32)
    }

    /// Fills `rect` (checked by the caller) with `color`.
    pub(super) fn fill_rect(&mut self, rect: &Rect, color: u32) {
        let pixel = scene::bgra(color);
        let pitch = self.width as usize * 4;
        for y in rect.top..rect.bottom {
            let row = y as usize * pitch;
            for x in rect.left..rect.right {
                let at = row + x as usize * 4;
                self.pixels[at..at + 4].copy_from_slice(&pixel);
            }
        }
    }

    /// Scrolls: the pixels at `from` (the size of `dest`) now also appear at `dest`, as the
    /// OS's desktop would hold them after a move. Both rects checked by the caller.
    pub(super) fn move_rect(&mut self, from: Point, dest: &Rect) {
        let pitch = self.width as usize * 4;
        let row_bytes = dest.width() as usize * 4;
        let rows: Vec<Vec<u8>> = (0..dest.height() as usize)
            .map(|i| {
                let at = (from.y as usize + i) * pitch + from.x as usize * 4;
                self.pixels[at..at + row_bytes].to_vec()
            })
            .collect();
        for (i, row) in rows.iter().enumerate() {
            let at = (dest.top as usize + i) * pitch + dest.left as usize * 4;
            self.pixels[at..at + row_bytes].copy_from_slice(row);
        }
    }

    /// Checks that `rect` is a non-inverted rect inside the desktop.
    pub(super) fn check(&self, rect: &Rect) -> Outcome<()> {
        check_inside(rect, self.width, self.height).ctx(&format!(
            "rect {rect:?} on a {}x{} desktop",
            self.width, self.height
        ))
    }
}
