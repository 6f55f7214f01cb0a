//! The hardware cursor: a DXGK-style pointer shape converted by the core into the 64x64
//! image of a cursor resource, sent to the host, then UPDATE_CURSOR and MOVE_CURSOR on the
//! cursor queue (fire and forget, reaped by polling).

use viogpu_common::cursor::{
    convert_pointer, PointerKind, PointerShape, CURSOR_BYTES, CURSOR_SIZE,
};
use viogpu_common::gpu::{WaitMode, CURSOR_QUEUE};
use viogpu_common::hal::DmaBuffer;
use viogpu_common::protocol::{CursorPos, Format};
use viogpu_guest_runner::hosted::dma::DevMemHal;
use viogpu_guest_runner::scene;

use super::{Context, Outcome, Session};

/// The 64x64 cursor resource.
pub(super) struct CursorImage {
    pub(super) resource_id: u32,
    buffer: DmaBuffer<DevMemHal>,
}

/// What a cursor command saw come back from the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorReport {
    /// The cursor resource.
    pub resource_id: u32,
    /// The converted shape's hot spot.
    pub hot: (u32, u32),
    /// Cursor-queue requests sent.
    pub sent: u32,
    /// Requests the device has not given back (0 after a successful settle).
    pub in_flight: usize,
    /// Malformed used entries seen meanwhile.
    pub device_faults: u32,
    /// Completions the core counted as error responses meanwhile.
    pub error_responses: u32,
}

impl Session {
    /// Sets a pointer shape (converted by the core into a 64x64 cursor image, sent to a cursor
    /// resource) at `(x, y)` of `scanout`, then moves it by (8, 8).
    pub fn cursor(
        &mut self,
        scanout: u32,
        name: scene::PointerName,
        x: u32,
        y: u32,
    ) -> Outcome<CursorReport> {
        self.head_index(scanout)?;
        let bitmap = scene::pointer(name);
        let kind = match name {
            scene::PointerName::Mono => PointerKind::Monochrome,
            scene::PointerName::Color => PointerKind::Color,
            scene::PointerName::Masked => PointerKind::MaskedColor,
        };
        let shape = PointerShape {
            kind,
            width: bitmap.width,
            height: bitmap.height,
            pitch: bitmap.pitch,
            hot_x: bitmap.hot_x,
            hot_y: bitmap.hot_y,
            pixels: &bitmap.pixels,
        };
        let mut image = vec![0u8; CURSOR_BYTES];
        let image_array: &mut [u8; CURSOR_BYTES] = image
            .as_mut_slice()
            .try_into()
            .map_err(|_| "cursor image size".to_string())?;
        let hot = convert_pointer(&shape, image_array).ctx("convert_pointer")?;

        if self.cursor.is_none() {
            self.cursor = Some(self.create_cursor_resource()?);
        }
        let gpu = self.gpu.as_ref().ok_or("the device is stopped")?;
        let cursor = self.cursor.as_mut().ok_or("no cursor resource")?;
        cursor.buffer.write_bytes(0, &image).ctx("cursor image")?;
        let full = viogpu_common::protocol::Rect::new(0, 0, CURSOR_SIZE, CURSOR_SIZE);
        gpu.transfer_to_host_2d(cursor.resource_id, full, 0, WaitMode::Wait)
            .ctx("cursor TRANSFER_TO_HOST_2D")?;

        let id = cursor.resource_id;
        let before = self.counters();
        let at = |x, y| CursorPos {
            scanout_id: scanout,
            x,
            y,
            padding: 0,
        };
        gpu.update_cursor(at(x, y), id, hot.x, hot.y, WaitMode::Wait)
            .ctx("UPDATE_CURSOR")?;
        gpu.move_cursor(at(x + 8, y + 8), id, WaitMode::Wait)
            .ctx("MOVE_CURSOR")?;
        self.settle(false)?;
        let after = self.counters();
        let gpu = self.gpu()?;
        Ok(CursorReport {
            resource_id: id,
            hot: (hot.x, hot.y),
            sent: 2,
            in_flight: gpu.with_queue(CURSOR_QUEUE, |q| q.in_flight()),
            device_faults: after.faults - before.faults,
            error_responses: after.errors - before.errors,
        })
    }

    fn create_cursor_resource(&mut self) -> Outcome<CursorImage> {
        let gpu = self.gpu.as_ref().ok_or("the device is stopped")?;
        let buffer = DmaBuffer::new(&self.hal, CURSOR_BYTES).ctx("cursor memory")?;
        let resource_id = self.ids.alloc().ctx("cursor resource id")?;
        let created = gpu
            .resource_create_2d(
                resource_id,
                Format::B8G8R8A8_UNORM,
                CURSOR_SIZE,
                CURSOR_SIZE,
                WaitMode::Wait,
            )
            .ctx("cursor RESOURCE_CREATE_2D");
        if let Err(e) = created {
            let _ = self.ids.free(resource_id);
            return Err(e);
        }
        let entry = (buffer.phys(), CURSOR_BYTES as u32);
        if let Err(e) = gpu
            .attach_backing(resource_id, std::iter::once(entry), WaitMode::Wait)
            .ctx("cursor ATTACH_BACKING")
        {
            let _ = gpu.resource_unref(resource_id, WaitMode::Wait);
            let _ = self.ids.free(resource_id);
            return Err(e);
        }
        Ok(CursorImage {
            resource_id,
            buffer,
        })
    }
}
