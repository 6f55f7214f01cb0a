//! Display mode lists: which sizes the driver offers for one scanout.
//!
//! A [`ModeList`] merges three sources: the size the device prefers for the scanout (from
//! `GET_DISPLAY_INFO`, i.e. the host window), the modes of the scanout's EDID, and a built-in
//! list of common desktop sizes. Every entry is checked against the same rules
//! ([`check_size`]): at least 640x480, at most [`MAX_DIMENSION`] on a side, and a 4-byte-per-
//! pixel framebuffer no larger than what the caller can back (`max_framebuffer_bytes`, e.g.
//! derived from the device's host memory limit). Sizes are de-duplicated (the refresh rate is
//! informational: the first EDID rate seen for a size is kept).
//!
//! Order: the preferred mode first, the rest ascending by width, then height. The preferred
//! mode is the device's preferred size if it passes the checks, else the EDID's preferred
//! mode, else 1024x768, else the largest size that fits.
//!
//! The list has a fixed capacity of [`MAX_MODES`] and lives inline (no heap), so building one
//! cannot fail. Entries are taken in priority order (preferred sizes, built-in sizes, then EDID
//! modes in EDID order) until it is full, so a hostile EDID cannot crowd out the common sizes.

use crate::edid::Edid;
use crate::{Error, Result};

/// Largest width or height, in pixels, that any layer of the driver accepts from the device,
/// the OS or an EDID. 16384 is the largest texture side D3D11+ hardware must support and
/// twice 8K, so no real display exceeds it; beyond it, sizes are garbage.
pub const MAX_DIMENSION: u32 = 16384;
/// Smallest width offered (Windows requires at least 640x480 for a desktop).
pub const MIN_WIDTH: u32 = 640;
/// Smallest height offered.
pub const MIN_HEIGHT: u32 = 480;
/// Bytes per pixel of every framebuffer the driver creates (B8G8R8X8 / B8G8R8A8).
pub const BYTES_PER_PIXEL: u64 = 4;
/// Capacity of a [`ModeList`].
pub const MAX_MODES: usize = 64;
/// The preferred mode when neither the device nor the EDID names a usable one (the size
/// QEMU and the old viogpudo start with).
pub const DEFAULT_MODE: Mode = Mode::new(1024, 768);

/// Common desktop sizes, always offered when they fit.
const BUILT_IN: [(u32, u32); 27] = [
    (640, 480),
    (800, 600),
    (1024, 768),
    (1152, 864),
    (1280, 720),
    (1280, 768),
    (1280, 800),
    (1280, 960),
    (1280, 1024),
    (1360, 768),
    (1366, 768),
    (1400, 1050),
    (1440, 900),
    (1600, 900),
    (1600, 1200),
    (1680, 1050),
    (1920, 1080),
    (1920, 1200),
    (2048, 1152),
    (2560, 1080),
    (2560, 1440),
    (2560, 1600),
    (3440, 1440),
    (3840, 2160),
    (4096, 2160),
    (5120, 2880),
    (7680, 4320),
];

/// One display mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mode {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Refresh rate in millihertz, when a source (the EDID) gave one.
    pub refresh_mhz: Option<u32>,
}

impl Mode {
    /// A mode of the given size with no known refresh rate.
    pub const fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            refresh_mhz: None,
        }
    }

    /// Bytes of a 4-byte-per-pixel framebuffer of this size (pitch = width * 4).
    pub const fn framebuffer_bytes(&self) -> u64 {
        self.width as u64 * self.height as u64 * BYTES_PER_PIXEL
    }

    fn same_size(&self, width: u32, height: u32) -> bool {
        self.width == width && self.height == height
    }
}

/// Checks a size against the mode rules: [`Error::InvalidArgument`] when a side is below
/// 640x480 or above [`MAX_DIMENSION`], [`Error::ModeTooLarge`] when its framebuffer exceeds
/// `max_framebuffer_bytes`.
pub fn check_size(width: u32, height: u32, max_framebuffer_bytes: u64) -> Result<()> {
    if !(MIN_WIDTH..=MAX_DIMENSION).contains(&width)
        || !(MIN_HEIGHT..=MAX_DIMENSION).contains(&height)
    {
        return Err(Error::InvalidArgument);
    }
    if Mode::new(width, height).framebuffer_bytes() > max_framebuffer_bytes {
        return Err(Error::ModeTooLarge);
    }
    Ok(())
}

/// The modes offered for one scanout: preferred first, at most [`MAX_MODES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeList {
    modes: [Mode; MAX_MODES],
    len: usize,
    max_framebuffer_bytes: u64,
}

impl ModeList {
    /// Builds the list from the device's preferred size for the scanout, its EDID, and the
    /// built-in sizes (see the module docs for the rules and the order).
    pub fn build(
        preferred: Option<(u32, u32)>,
        edid: Option<&Edid>,
        max_framebuffer_bytes: u64,
    ) -> Self {
        let mut list = Self {
            modes: [DEFAULT_MODE; MAX_MODES],
            len: 0,
            max_framebuffer_bytes,
        };
        let usable = |m: &Mode| check_size(m.width, m.height, max_framebuffer_bytes).is_ok();

        let device = preferred.map(|(w, h)| Mode::new(w, h));
        let from_edid = edid.and_then(|e| e.preferred).map(|t| Mode {
            width: t.width,
            height: t.height,
            refresh_mhz: Some(t.refresh_mhz),
        });
        let first = device
            .filter(usable)
            .or(from_edid.filter(usable))
            .or(Some(DEFAULT_MODE).filter(usable));
        if let Some(mode) = first {
            list.add(mode);
        }

        for &(w, h) in &BUILT_IN {
            list.add_if(Mode::new(w, h), usable);
        }
        if let Some(edid) = edid {
            for t in &edid.timings {
                let mode = Mode {
                    width: t.width,
                    height: t.height,
                    refresh_mhz: Some(t.refresh_mhz),
                };
                list.add_if(mode, usable);
            }
        }

        // Sort everything after the preferred entry; without one, the largest becomes it.
        let rest_from = usize::from(first.is_some());
        if let Some(rest) = list.modes.get_mut(rest_from..list.len) {
            rest.sort_unstable_by_key(|m| (m.width, m.height));
        }
        if first.is_none() && list.len > 1 {
            if let Some(all) = list.modes.get_mut(..list.len) {
                all.rotate_right(1);
            }
        }
        list
    }

    /// Puts the custom size `width` x `height` first (as the preferred mode), for a resolution
    /// agent that asks for an arbitrary size. The size is checked with [`check_size`] against
    /// this list's framebuffer limit. An existing entry of that size moves to the front; when
    /// the list is full, its last entry is dropped to make room. The previous preferred mode
    /// stays in the list, in sorted position.
    pub fn with_custom(mut self, width: u32, height: u32) -> Result<Self> {
        check_size(width, height, self.max_framebuffer_bytes)?;
        let live = self
            .modes
            .get_mut(..self.len)
            .ok_or(Error::InvalidArgument)?;
        if let Some(at) = live.iter().position(|m| m.same_size(width, height)) {
            // Moving the entry to the front keeps its refresh rate.
            if let Some(head) = live.get_mut(..=at) {
                head.rotate_right(1);
            }
        } else {
            // Grow by one (or overwrite the last entry when full), then rotate it to the front.
            self.len = (self.len + 1).min(MAX_MODES);
            let live = self
                .modes
                .get_mut(..self.len)
                .ok_or(Error::InvalidArgument)?;
            if let Some(last) = live.last_mut() {
                *last = Mode::new(width, height);
            }
            live.rotate_right(1);
        }
        // The old preferred entry (now second) joins the sorted rest.
        if let Some(rest) = self.modes.get_mut(1..self.len) {
            rest.sort_unstable_by_key(|m| (m.width, m.height));
        }
        Ok(self)
    }

    /// The preferred mode; `None` only when not even 640x480 fits the framebuffer limit.
    pub fn preferred(&self) -> Option<Mode> {
        self.as_slice().first().copied()
    }

    /// The modes, preferred first.
    pub fn iter(&self) -> core::slice::Iter<'_, Mode> {
        self.as_slice().iter()
    }

    /// The modes as a slice, preferred first.
    pub fn as_slice(&self) -> &[Mode] {
        self.modes.get(..self.len).unwrap_or(&[])
    }

    /// True when a mode of this size is in the list.
    pub fn contains(&self, width: u32, height: u32) -> bool {
        self.iter().any(|m| m.same_size(width, height))
    }

    /// Number of modes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no mode fits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The framebuffer limit the list was built with.
    pub fn max_framebuffer_bytes(&self) -> u64 {
        self.max_framebuffer_bytes
    }

    fn add_if(&mut self, mode: Mode, usable: impl Fn(&Mode) -> bool) {
        if usable(&mode) {
            self.add(mode);
        }
    }

    /// Appends `mode` unless its size is present (then only a missing refresh rate is filled
    /// in) or the list is full.
    fn add(&mut self, mode: Mode) {
        let len = self.len;
        let live = self.modes.get_mut(..len).unwrap_or(&mut []);
        if let Some(existing) = live
            .iter_mut()
            .find(|m| m.same_size(mode.width, mode.height))
        {
            if existing.refresh_mhz.is_none() {
                existing.refresh_mhz = mode.refresh_mhz;
            }
            return;
        }
        if let Some(slot) = self.modes.get_mut(len) {
            *slot = mode;
            self.len = len + 1;
        }
    }
}

impl<'a> IntoIterator for &'a ModeList {
    type Item = &'a Mode;
    type IntoIter = core::slice::Iter<'a, Mode>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests;
