//! What the host displays: each scanout shows a rectangle of one resource, and the picture a
//! viewer sees changes only when the guest flushes (or sets the scanout again).
//!
//! QEMU's display surface points straight into the resource's host image, but its UI only
//! redraws the areas `RESOURCE_FLUSH` names. The model keeps that visible picture as its own
//! copy per scanout, so a test can tell "transferred" from "transferred and flushed". A blob's
//! picture is read from guest memory at SET_SCANOUT_BLOB and at each flush, so pixels the
//! driver wrote but did not flush are not seen (a host with a GL or remote display only
//! learns of changes through flushes).

use vm_memory::GuestMemoryMmap;
use zerocopy::IntoBytes;

use viogpu_common::protocol::{Format, Rect};

use super::resources::{Resource, BYTES_PER_PIXEL};

/// A picture: the visible part of a scanout, or a resource's host image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The resource's pixel format; it says which byte of a pixel is which colour.
    pub format: Format,
    /// Row-major pixels, each the four bytes of the pixel read as a little-endian `u32`. For
    /// `B8G8R8X8`/`B8G8R8A8` (what the driver uses) that is `0xXXRRGGBB`.
    pub pixels: Vec<u32>,
}

impl Image {
    /// The raw pixel at `(x, y)`, `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<u32> {
        if x >= self.width || y >= self.height {
            return None;
        }
        self.pixels
            .get(y as usize * self.width as usize + x as usize)
            .copied()
    }

    /// The colour at `(x, y)` as `[r, g, b]`, decoded by the image's format; `None` outside
    /// the image or for a format the device does not know.
    pub fn rgb(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        let bytes = self.pixel(x, y)?.to_le_bytes();
        // Byte positions of R, G and B in memory order, per format name.
        let [r, g, b] = match self.format {
            Format::B8G8R8A8_UNORM | Format::B8G8R8X8_UNORM => [2, 1, 0],
            Format::A8R8G8B8_UNORM | Format::X8R8G8B8_UNORM => [1, 2, 3],
            Format::R8G8B8A8_UNORM | Format::R8G8B8X8_UNORM => [0, 1, 2],
            Format::A8B8G8R8_UNORM | Format::X8B8G8R8_UNORM => [3, 2, 1],
            _ => return None,
        };
        Some([bytes[r], bytes[g], bytes[b]])
    }

    /// The image of a whole resource.
    pub(crate) fn of_resource(res: &Resource) -> Self {
        Self {
            width: res.width,
            height: res.height,
            format: res.format,
            pixels: res.image.clone(),
        }
    }
}

/// One scanout's state: which resource rectangle it shows, and what the viewer sees.
#[derive(Clone, Debug)]
pub(crate) struct Scanout {
    /// 0 when the scanout is disabled.
    pub(crate) resource_id: u32,
    /// The shown rectangle of the resource.
    pub(crate) rect: Rect,
    /// The format of the shown resource.
    pub(crate) format: Format,
    /// The visible picture, `rect.width * rect.height` pixels.
    pub(crate) displayed: Vec<u32>,
    /// For a blob shown by SET_SCANOUT_BLOB: where its picture lies in the blob.
    pub(crate) blob: Option<BlobPicture>,
}

/// How a scanout reads its blob: the picture's size, and row `y` of it at
/// `offset + y * stride` bytes into the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlobPicture {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) stride: u32,
    pub(crate) offset: u64,
}

impl Default for Scanout {
    fn default() -> Self {
        Self {
            resource_id: 0,
            rect: Rect::default(),
            format: Format(0),
            displayed: Vec::new(),
            blob: None,
        }
    }
}

impl Scanout {
    /// Shows `rect` of `res`; the viewer gets the whole new surface at once, as QEMU replaces
    /// the display surface on `SET_SCANOUT`.
    pub(crate) fn show(&mut self, res: &Resource, rect: Rect) {
        self.resource_id = res.id;
        self.rect = rect;
        self.format = res.format;
        self.blob = None;
        self.displayed = res.copy_rect(&rect);
    }

    /// Shows `rect` of the picture `picture` of blob `res` in `format`, read from guest
    /// memory now (the viewer gets the whole new surface at once).
    pub(crate) fn show_blob(
        &mut self,
        mem: &GuestMemoryMmap<()>,
        res: &Resource,
        format: Format,
        picture: BlobPicture,
        rect: Rect,
    ) {
        self.resource_id = res.id;
        self.rect = rect;
        self.format = format;
        self.blob = Some(picture);
        self.displayed = vec![0; rect.width as usize * rect.height as usize];
        self.read_blob(mem, res, &rect);
    }

    /// Reads `area` (picture coordinates, inside `self.rect`) of the shown blob from guest
    /// memory into the visible picture.
    fn read_blob(&mut self, mem: &GuestMemoryMmap<()>, res: &Resource, area: &Rect) {
        let (Some(picture), Some(backing)) = (self.blob, res.backing.as_ref()) else {
            return;
        };
        let shown_width = self.rect.width as usize;
        for row in area.y..area.y + area.height {
            let at = picture.offset
                + u64::from(row) * u64::from(picture.stride)
                + u64::from(area.x) * BYTES_PER_PIXEL;
            let dst = (row - self.rect.y) as usize * shown_width + (area.x - self.rect.x) as usize;
            if let Some(to) = self.displayed.get_mut(dst..dst + area.width as usize) {
                backing.read(mem, at, to.as_mut_bytes());
            }
        }
    }

    /// The picture size of the blob shown, if a blob is shown.
    pub(crate) fn blob_picture(&self) -> Option<BlobPicture> {
        self.blob
    }

    /// Redraws the part of flushed rectangle `flushed` (picture coordinates) that this
    /// scanout shows, from blob `res`'s guest memory as it is now.
    pub(crate) fn flush_blob(&mut self, mem: &GuestMemoryMmap<()>, res: &Resource, flushed: &Rect) {
        if self.resource_id != res.id || self.blob.is_none() {
            return;
        }
        if let Some(area) = intersect(flushed, &self.rect) {
            self.read_blob(mem, res, &area);
        }
    }

    /// Disables the scanout.
    pub(crate) fn disable(&mut self) {
        *self = Self::default();
    }

    /// Redraws the part of flushed rectangle `flushed` (resource coordinates) that this
    /// scanout shows, from `res`'s host image.
    pub(crate) fn flush(&mut self, res: &Resource, flushed: &Rect) {
        if self.resource_id != res.id || self.blob.is_some() {
            return;
        }
        let Some(area) = intersect(flushed, &self.rect) else {
            return;
        };
        let shown_width = self.rect.width as usize;
        let res_width = res.width as usize;
        for row in area.y..area.y + area.height {
            let src = row as usize * res_width + area.x as usize;
            let dst = (row - self.rect.y) as usize * shown_width + (area.x - self.rect.x) as usize;
            let count = area.width as usize;
            if let (Some(from), Some(to)) = (
                res.image.get(src..src + count),
                self.displayed.get_mut(dst..dst + count),
            ) {
                to.copy_from_slice(from);
            }
        }
    }

    /// The visible picture, `None` when disabled.
    pub(crate) fn image(&self) -> Option<Image> {
        (self.resource_id != 0).then(|| Image {
            width: self.rect.width,
            height: self.rect.height,
            format: self.format,
            pixels: self.displayed.clone(),
        })
    }
}

/// The overlap of two rectangles, `None` if they do not overlap.
pub(crate) fn intersect(a: &Rect, b: &Rect) -> Option<Rect> {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (u64::from(a.x) + u64::from(a.width)).min(u64::from(b.x) + u64::from(b.width));
    let y1 = (u64::from(a.y) + u64::from(a.height)).min(u64::from(b.y) + u64::from(b.height));
    if x1 <= u64::from(x0) || y1 <= u64::from(y0) {
        return None;
    }
    Some(Rect::new(
        x0,
        y0,
        (x1 - u64::from(x0)) as u32,
        (y1 - u64::from(y0)) as u32,
    ))
}
