//! The hardware pointer: `DxgkDdiSetPointerShape` with one of the scene's shapes, then
//! `DxgkDdiSetPointerPosition` twice (shown at a position, then moved), as the OS does when the
//! pointer changes shape and moves. What the driver sends on the cursor queue is counted from
//! the ring; what QEMU did with it is in QEMU's trace (the host test checks it there).

use dxgkrnl_sim::PointerShape;
use viogpu_guest_runner::scene::{self, PointerName};

use super::{Outcome, Session};

/// The cursor queue's index.
const CURSOR_QUEUE: usize = 1;
/// How far the second position is from the first, in both directions.
pub const MOVE_BY: i32 = 8;

/// What a cursor command saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorReport {
    /// The shape's hot spot.
    pub hot: (u32, u32),
    /// Requests the driver published on the cursor queue.
    pub sent: u16,
    /// Cursor-queue requests the device still holds (0 after a successful settle).
    pub in_flight: u16,
}

/// The DDI form of a scene pointer.
fn shape(name: PointerName) -> PointerShape {
    let bitmap = scene::pointer(name);
    let flags = match name {
        PointerName::Mono => 1,
        PointerName::Color => 2,
        PointerName::Masked => 4,
    };
    PointerShape {
        flags,
        width: bitmap.width,
        height: bitmap.height,
        pitch: bitmap.pitch,
        pixels: bitmap.pixels,
        hot: (bitmap.hot_x, bitmap.hot_y),
    }
}

impl Session {
    /// Sets pointer shape `name` on `source`, shows it with its image's top-left at `(x, y)`
    /// of the desktop, then moves it by ([`MOVE_BY`], [`MOVE_BY`]).
    pub fn cursor(
        &mut self,
        source: u32,
        name: PointerName,
        x: i32,
        y: i32,
    ) -> Outcome<CursorReport> {
        self.running()?;
        self.desktop_slot(source)?;
        let shape = shape(name);
        let before = self.machine().published(CURSOR_QUEUE);
        let set = self.sim.set_pointer_shape(source, &shape);
        self.sim("DxgkDdiSetPointerShape", set)?;
        for (px, py) in [(x, y), (x + MOVE_BY, y + MOVE_BY)] {
            let moved = self.sim.set_pointer_position(source, px, py, true);
            self.sim("DxgkDdiSetPointerPosition", moved)?;
        }
        self.finish()?;
        let machine = self.machine();
        Ok(CursorReport {
            hot: shape.hot,
            sent: machine.published(CURSOR_QUEUE).wrapping_sub(before),
            in_flight: machine.in_flight().get(CURSOR_QUEUE).copied().unwrap_or(0),
        })
    }
}
