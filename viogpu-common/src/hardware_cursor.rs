//! The hardware cursor's lifecycle on a virtio-gpu device: its 64x64 host resource, the shape
//! shown in it, where it is shown, and what survives a device reset.
//!
//! [`crate::cursor`] turns a pointer shape into an image; this module says which commands put
//! that image on screen and keeps the record of what the device shows:
//!
//! - **Resource.** One B8G8R8A8 64x64 resource over a guest buffer ([`HardwareCursor::create`],
//!   [`HardwareCursor::restore`] after a reset). A failed creation undoes the steps that
//!   happened; a step the device did not answer may still happen later, so its id stays
//!   allocated and its backing is reported as possibly in use.
//! - **Shape.** The converted shape is kept unrotated; the buffer holds it turned for the
//!   source the pointer is on ([`crate::cursor::rotate_cursor`]) and is transferred (waited for,
//!   so the host never shows a half-written image) before UPDATE_CURSOR shows it.
//! - **Position.** The OS gives the image's top-left corner on a source's desktop; the device
//!   wants the top-left corner of the (rotated) image on the scanout, with the hot spot apart
//!   ([`device_position`]). The host keeps one cursor per scanout: MOVE_CURSOR only moves it
//!   within one scanout, so a pointer that changes scanout is hidden where it was and defined
//!   anew (UPDATE_CURSOR) where it goes.
//! - **Record follows the device.** A failed hide leaves the pointer recorded as shown (the
//!   next call hides it again); a failed move or definition records it hidden (the next call
//!   defines it anew, never a MOVE_CURSOR to a scanout where it may be undefined).
//! - **Reset.** A device reset forgets the resource ([`HardwareCursor::forget_after_reset`]);
//!   the buffer and the shape are kept, and [`HardwareCursor::restore`] shows the pointer again
//!   where it was.

use alloc::vec::Vec;

use crate::blit::Rotation;
use crate::cursor::CURSOR_SIZE;
use crate::cursor::{convert_pointer, rotate_cursor, HotSpot, PointerShape, CURSOR_BYTES};
use crate::gpu::{detach_confirmed, GpuDevice, Notify, Platform, WaitMode};
use crate::hal::{DmaBuffer, Hal};
use crate::protocol::{CursorPos, Format, Rect};
use crate::resource_id::ResourceIdAllocator;
use crate::{Error, Result};

/// Where the OS puts the pointer: the top-left corner of its image at `(x, y)` on the desktop
/// of `source`, which is shown `rotation`-turned in a framebuffer; `desktop` is the source's
/// size before rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The source (= scanout) the pointer is on.
    pub source: u32,
    /// Left edge of the pointer image on the desktop (may be negative).
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// The source's path rotation.
    pub rotation: Rotation,
    /// The source's desktop size (width, height), unrotated.
    pub desktop: (u32, u32),
}

/// Where the top-left corner of the cursor image goes in a framebuffer that shows a
/// `desktop`-sized desktop with `rotation`, for a pointer whose image has its top-left at
/// desktop position `(x, y)` and its hot spot at `hot` (in the OS shape), when the image the
/// device shows (rotated with the path) has its hot spot at `shown_hot`: the rotated hot spot
/// lands on the hot spot's rotated desktop position. Negative results clamp at 0 (the wire
/// fields are unsigned).
pub fn device_position(
    x: i32,
    y: i32,
    hot: (u32, u32),
    shown_hot: (u32, u32),
    rotation: Rotation,
    desktop: (u32, u32),
) -> (u32, u32) {
    let hx = i64::from(x) + i64::from(hot.0);
    let hy = i64::from(y) + i64::from(hot.1);
    let (w, h) = (i64::from(desktop.0), i64::from(desktop.1));
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

/// Why the cursor resource could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateFailure {
    /// What went wrong.
    pub error: Error,
    /// The device did not confirm that the backing was detached again: the host may still
    /// use the cursor's memory, so the cursor must not be freed before a confirmed reset.
    pub backing_in_use: bool,
}

/// The hardware cursor (see the module docs).
pub struct HardwareCursor<H: Hal> {
    /// Host resource id; 0 when the device has none (not created, or forgotten by a reset).
    resource_id: u32,
    /// Guest backing: the image as the device shows it, rotated for its source.
    buffer: DmaBuffer<H>,
    /// The converted shape before rotation (`CURSOR_BYTES`).
    shape: Vec<u8>,
    /// Width and height of the OS shape.
    shape_size: (u32, u32),
    /// Hot spot of the OS shape.
    shape_hot: (u32, u32),
    /// The rotation `buffer` holds the shape in.
    rotation: Rotation,
    /// A shape was set.
    has_shape: bool,
    /// The device shows the pointer (as far as the driver knows).
    visible: bool,
    /// Hot spot of the image in `buffer`, what UPDATE_CURSOR carries.
    hot: (u32, u32),
    /// Last device position sent: scanout and the image's top-left corner.
    shown_at: (u32, u32, u32),
    /// Last placement the OS asked for.
    placement: Option<Placement>,
}

impl<H: Hal> HardwareCursor<H> {
    /// A cursor with its image buffer, no shape and no host resource yet.
    pub fn new(hal: &H) -> Result<Self> {
        let buffer = DmaBuffer::new(hal, CURSOR_BYTES)?;
        let shape = crate::fallible::try_filled(CURSOR_BYTES, 0)?;
        Ok(Self {
            resource_id: 0,
            buffer,
            shape,
            shape_size: (0, 0),
            shape_hot: (0, 0),
            rotation: Rotation::Identity,
            has_shape: false,
            visible: false,
            hot: (0, 0),
            shown_at: (0, 0, 0),
            placement: None,
        })
    }

    /// The host resource id (0: none).
    pub fn resource_id(&self) -> u32 {
        self.resource_id
    }

    /// True when the device has the resource: shape and position commands can go out.
    pub fn is_on_device(&self) -> bool {
        self.resource_id != 0
    }

    /// The device shows the pointer.
    pub fn is_visible(&self) -> bool {
        self.visible
    }

    /// The last placement the OS asked for, if any.
    pub fn placement(&self) -> Option<Placement> {
        self.placement
    }

    /// The rotation the image is held in.
    pub fn rotation(&self) -> Rotation {
        self.rotation
    }

    /// Creates the host resource over the buffer (RESOURCE_CREATE_2D, ATTACH_BACKING).
    pub fn create<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
    ) -> core::result::Result<(), CreateFailure> {
        let id = ids.alloc().map_err(|error| CreateFailure {
            error,
            backing_in_use: false,
        })?;
        // A command the device did not answer may still be carried out later.
        let happened = |r: &Result<()>| !matches!(r, Err(Error::DeviceError(_)));
        let r = gpu.resource_create_2d(
            id,
            Format::B8G8R8A8_UNORM,
            CURSOR_SIZE,
            CURSOR_SIZE,
            WaitMode::Wait,
        );
        let created = happened(&r);
        let mut attached = false;
        let built = r.and_then(|()| {
            let entry = (self.buffer.phys(), CURSOR_BYTES as u32);
            // Whatever the answer, the page may be attached (an untrusted device can do the
            // step and answer an error): it is detached before it counts as free.
            attached = true;
            gpu.attach_backing(id, core::iter::once(entry), WaitMode::Wait)
        });
        let Err(error) = built else {
            self.resource_id = id;
            return Ok(());
        };
        let failure = |backing_in_use| CreateFailure {
            error,
            backing_in_use,
        };
        // An error answer to an undo step means the host has nothing (left) to undo.
        let confirmed = |r: Result<()>| matches!(r, Ok(()) | Err(Error::DeviceError(_)));
        if attached && !detach_confirmed(&gpu.detach_backing(id, WaitMode::Wait)) {
            return Err(failure(true));
        }
        if created && !confirmed(gpu.resource_unref(id, WaitMode::Wait)) {
            // The host may still know the id: it is not handed out again.
            return Err(failure(false));
        }
        let _ = ids.free(id);
        Err(failure(false))
    }

    /// A new shape, shown at `at` (the last placement with its source's current geometry) if
    /// the pointer is visible. An invalid shape changes nothing. Without a host resource the
    /// shape is only kept, and [`Self::restore`] shows it.
    pub fn set_shape<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        shape: &PointerShape<'_>,
        at: Placement,
    ) -> Result<()> {
        let mut converted = [0u8; CURSOR_BYTES];
        convert_pointer(shape, &mut converted)?;
        let kept: &mut [u8; CURSOR_BYTES] = self
            .shape
            .as_mut_slice()
            .try_into()
            .map_err(|_| Error::InvalidArgument)?;
        *kept = converted;
        self.shape_size = (shape.width, shape.height);
        self.shape_hot = (shape.hot_x, shape.hot_y);
        self.has_shape = true;
        self.placement = Some(at);
        if !self.is_on_device() {
            self.rotation = at.rotation;
            return Ok(());
        }
        self.upload(gpu, at.rotation)?;
        let (x, y) = self.position_for(&at);
        self.shown_at = (at.source, x, y);
        let resource = if self.visible { self.resource_id } else { 0 };
        gpu.update_cursor(
            cursor_pos(at.source, x, y),
            resource,
            self.hot.0,
            self.hot.1,
            WaitMode::Wait,
        )
    }

    /// Moves, shows or hides the pointer (a pointer without a shape stays hidden).
    pub fn set_position<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        at: Placement,
        visible: bool,
    ) -> Result<()> {
        if !self.is_on_device() {
            return Ok(());
        }
        let visible = visible && self.has_shape;
        let was = self.visible;
        let (shown_on, old_x, old_y) = self.shown_at;
        if !visible && was && shown_on != at.source {
            // The OS hides the pointer of a source it is not on: nothing to do.
            return Ok(());
        }
        // The image must be turned for the source it is shown on.
        let reshaped = visible && self.rotation != at.rotation;
        if reshaped {
            self.upload(gpu, at.rotation)?;
        }
        let (x, y) = self.position_for(&at);
        let (id, (hot_x, hot_y)) = (self.resource_id, self.hot);
        let define = || {
            gpu.update_cursor(
                cursor_pos(at.source, x, y),
                id,
                hot_x,
                hot_y,
                WaitMode::Wait,
            )
        };
        let result = match (was, visible) {
            (true, true) if shown_on == at.source && !reshaped => {
                gpu.move_cursor(cursor_pos(at.source, x, y), id, WaitMode::Wait)
            }
            // Same scanout, new image: UPDATE_CURSOR makes the host read it again.
            (true, true) if shown_on == at.source => define(),
            (true, true) => {
                gpu.update_cursor(cursor_pos(shown_on, old_x, old_y), 0, 0, 0, WaitMode::Wait)?;
                define()
            }
            (false, true) => define(),
            (true, false) => {
                gpu.update_cursor(cursor_pos(at.source, x, y), 0, 0, 0, WaitMode::Wait)?;
                Ok(())
            }
            (false, false) => Ok(()),
        };
        if result.is_ok() {
            self.visible = visible;
            self.shown_at = (at.source, x, y);
            self.placement = Some(at);
        } else {
            self.visible = false;
        }
        result
    }

    /// After the pointer's source turned (a commit): a shown pointer is rotated anew and
    /// shown again at `at` (the last placement, with the source's new geometry).
    pub fn follow_rotation<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        at: Placement,
    ) -> Result<()> {
        if !self.is_on_device() || !self.has_shape || !self.visible || at.rotation == self.rotation
        {
            return Ok(());
        }
        self.upload(gpu, at.rotation)?;
        let (x, y) = self.position_for(&at);
        self.shown_at = (at.source, x, y);
        self.placement = Some(at);
        gpu.update_cursor(
            cursor_pos(at.source, x, y),
            self.resource_id,
            self.hot.0,
            self.hot.1,
            WaitMode::Wait,
        )
    }

    /// Hides the pointer where it is shown (a hand-off: the next owner draws its own).
    pub fn hide<P: Platform, N: Notify>(&mut self, gpu: &GpuDevice<H, P, N>) -> Result<()> {
        if !self.visible || !self.is_on_device() {
            return Ok(());
        }
        let (scanout, x, y) = self.shown_at;
        gpu.update_cursor(cursor_pos(scanout, x, y), 0, 0, 0, WaitMode::Wait)?;
        self.visible = false;
        Ok(())
    }

    /// After a confirmed device reset: the host forgot the resource, so its id is free. The
    /// shape, the buffer and where the pointer was are kept for [`Self::restore`].
    pub fn forget_after_reset(&mut self, ids: &mut ResourceIdAllocator) {
        if self.resource_id != 0 {
            let _ = ids.free(self.resource_id);
            self.resource_id = 0;
        }
    }

    /// After the device came back: the resource again, the image in it, and the pointer shown
    /// where it was if it was visible. A failed transfer or definition is not fatal (the next
    /// pointer call shows it); only a failed creation is returned.
    pub fn restore<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
    ) -> core::result::Result<(), CreateFailure> {
        self.create(gpu, ids)?;
        if !self.has_shape {
            return Ok(());
        }
        // The kept shape, turned as it was last shown, into the buffer and to the host, at the
        // last placement (the shape may have changed while the device was away).
        let uploaded = self.upload(gpu, self.rotation);
        if let Some(at) = self.placement {
            let (x, y) = self.position_for(&at);
            self.shown_at = (at.source, x, y);
        }
        let shown = uploaded.and_then(|()| {
            if !self.visible {
                return Ok(());
            }
            let (scanout, x, y) = self.shown_at;
            gpu.update_cursor(
                cursor_pos(scanout, x, y),
                self.resource_id,
                self.hot.0,
                self.hot.1,
                WaitMode::Wait,
            )
        });
        if shown.is_err() {
            // Recorded hidden: the next move defines it anew.
            self.visible = false;
        }
        Ok(())
    }

    /// Rotates the kept shape by `rotation` into the buffer and transfers it to the host.
    fn upload<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        rotation: Rotation,
    ) -> Result<()> {
        let shape: &[u8; CURSOR_BYTES] = self
            .shape
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidArgument)?;
        let image: &mut [u8; CURSOR_BYTES] = self
            .buffer
            .as_mut_slice()
            .get_mut(..CURSOR_BYTES)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::InvalidArgument)?;
        let (w, h) = self.shape_size;
        let hot = HotSpot {
            x: self.shape_hot.0,
            y: self.shape_hot.1,
        };
        let rotated = rotate_cursor(shape, w, h, hot, rotation, image)?;
        // Recorded before the transfer: the buffer holds this rotation whatever the host did.
        self.rotation = rotation;
        self.hot = (rotated.hot.x, rotated.hot.y);
        let full = Rect::new(0, 0, CURSOR_SIZE, CURSOR_SIZE);
        gpu.transfer_to_host_2d(self.resource_id, full, 0, WaitMode::Wait)
    }

    /// The device position of the image for `at`.
    fn position_for(&self, at: &Placement) -> (u32, u32) {
        device_position(
            at.x,
            at.y,
            self.shape_hot,
            self.hot,
            at.rotation,
            at.desktop,
        )
    }
}

fn cursor_pos(scanout_id: u32, x: u32, y: u32) -> CursorPos {
    CursorPos {
        scanout_id,
        x,
        y,
        padding: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrotated_position_is_the_os_position_clamped() {
        let at = |x, y| device_position(x, y, (3, 4), (3, 4), Rotation::Identity, (800, 600));
        assert_eq!(at(10, 20), (10, 20));
        assert_eq!(at(-10, -20), (0, 0));
    }

    #[test]
    fn rotated_position_puts_the_rotated_hot_spot_on_its_rotated_point() {
        // 800x600 desktop; Rotate90 puts desktop (x, y) at (y, 799 - x).
        assert_eq!(
            device_position(0, 0, (0, 0), (0, 31), Rotation::Rotate90, (800, 600)),
            (0, 768)
        );
        // A 32x32 shape with hot spot (3, 4): rotated, the hot spot is (4, 28). The desktop
        // point (3, 4) lands on (4, 796); the image starts (4, 28) before it.
        assert_eq!(
            device_position(0, 0, (3, 4), (4, 28), Rotation::Rotate90, (800, 600)),
            (0, 768)
        );
        // Rotate180: hot spot (31, 31) of a 32x32 shape is (0, 0) turned; desktop (799, 599)
        // is framebuffer (0, 0).
        assert_eq!(
            device_position(768, 568, (31, 31), (0, 0), Rotation::Rotate180, (800, 600)),
            (0, 0)
        );
        // Rotate270 puts desktop (x, y) at (599 - y, x): (5, 7) -> (592, 5).
        assert_eq!(
            device_position(5, 7, (0, 0), (31, 0), Rotation::Rotate270, (800, 600)),
            (561, 5)
        );
    }
}
