//! The mode and path values the driver writes and accepts: how one size becomes a source
//! mode (desktop surface), a target mode or a monitor source mode (the video signal), and
//! which path transformations and source formats are acceptable.

use crate::ddi::*;
use viogpu_common::modes::{check_size, ModeList, BYTES_PER_PIXEL};

use super::{Rotation, RotationDdi};

/// Refresh rate reported for every signal, in Hz: the virtual display has no real timing.
const REFRESH_HZ: u32 = 60;

/// Fills a graphics source mode of `size`, keeping the OS-assigned `Id`.
pub(crate) fn fill_source_mode(mode: &mut D3DKMDT_VIDPN_SOURCE_MODE, (w, h): (u32, u32)) {
    mode.Type = D3DKMDT_RMT_GRAPHICS;
    let format = &mut mode.Format;
    format.PrimSurfSize = D3DKMDT_2DREGION::new(w, h);
    format.VisibleRegionSize = D3DKMDT_2DREGION::new(w, h);
    // Sizes come from a ModeList (at most 16384 wide), so this cannot overflow; saturate
    // rather than wrap if it ever did.
    format.Stride = w.saturating_mul(BYTES_PER_PIXEL as u32);
    format.PixelFormat = D3DDDIFMT_X8R8G8B8;
    format.ColorBasis = D3DKMDT_CB_SRGB;
    format.PixelValueAccessMode = D3DKMDT_PVAM_DIRECT;
}

/// The video signal of a `size` mode at 60 Hz with no blanking (a virtual display).
pub(crate) fn signal_info((w, h): (u32, u32)) -> D3DKMDT_VIDEO_SIGNAL_INFO {
    let mut info = D3DKMDT_VIDEO_SIGNAL_INFO {
        VideoStandard: D3DKMDT_VSS_OTHER,
        TotalSize: D3DKMDT_2DREGION::new(w, h),
        ActiveSize: D3DKMDT_2DREGION::new(w, h),
        VSyncFreq: D3DDDI_RATIONAL::new(REFRESH_HZ, 1),
        HSyncFreq: D3DDDI_RATIONAL::new(h.saturating_mul(REFRESH_HZ), 1),
        PixelRate: usize::try_from(u64::from(w) * u64::from(h) * u64::from(REFRESH_HZ))
            .unwrap_or(usize::MAX),
        AdditionalSignalInfo: 0,
    };
    info.set_scan_line_ordering(D3DDDI_VSSLO_PROGRESSIVE);
    info
}

/// Fills a target mode of `size`, keeping the OS-assigned `Id`.
pub(crate) fn fill_target_mode(
    mode: &mut D3DKMDT_VIDPN_TARGET_MODE,
    size: (u32, u32),
    preferred: bool,
) {
    mode.VideoSignalInfo = signal_info(size);
    mode.set_preference(preference(preferred));
}

/// Fills a monitor source mode of `size`, keeping the OS-assigned `Id`.
pub(crate) fn fill_monitor_mode(
    mode: &mut D3DKMDT_MONITOR_SOURCE_MODE,
    size: (u32, u32),
    preferred: bool,
) {
    mode.VideoSignalInfo = signal_info(size);
    mode.ColorBasis = D3DKMDT_CB_SRGB;
    mode.ColorCoeffDynamicRanges = D3DKMDT_COLOR_COEFF_DYNAMIC_RANGES {
        FirstChannel: 8,
        SecondChannel: 8,
        ThirdChannel: 8,
        FourthChannel: 8,
    };
    mode.Origin = D3DKMDT_MCO_DRIVER;
    mode.Preference = preference(preferred);
}

fn preference(preferred: bool) -> D3DKMDT_MODE_PREFERENCE {
    if preferred {
        D3DKMDT_MP_PREFERRED
    } else {
        D3DKMDT_MP_NOTPREFERRED
    }
}

/// The size of a source mode.
pub(crate) fn source_size(mode: &D3DKMDT_VIDPN_SOURCE_MODE) -> (u32, u32) {
    (mode.Format.PrimSurfSize.cx, mode.Format.PrimSurfSize.cy)
}

/// The active size of a target mode.
pub(crate) fn target_size(mode: &D3DKMDT_VIDPN_TARGET_MODE) -> (u32, u32) {
    let active = mode.VideoSignalInfo.ActiveSize;
    (active.cx, active.cy)
}

/// Checks a source mode the OS wants to commit: a direct-colour 32-bit graphics surface of a
/// usable size whose visible region is the whole surface.
pub(crate) fn check_source_mode(
    mode: &D3DKMDT_VIDPN_SOURCE_MODE,
    max_framebuffer_bytes: u64,
) -> Result<(u32, u32), NTSTATUS> {
    if mode.Type != D3DKMDT_RMT_GRAPHICS {
        return Err(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE_MODE);
    }
    let format = &mode.Format;
    if format.PixelFormat != D3DDDIFMT_X8R8G8B8 && format.PixelFormat != D3DDDIFMT_A8R8G8B8 {
        return Err(STATUS_GRAPHICS_INVALID_PIXELFORMAT);
    }
    if format.PixelValueAccessMode != D3DKMDT_PVAM_DIRECT {
        return Err(STATUS_GRAPHICS_INVALID_PIXELVALUEACCESSMODE);
    }
    if ![D3DKMDT_CB_SRGB, D3DKMDT_CB_SCRGB, D3DKMDT_CB_UNINITIALIZED].contains(&format.ColorBasis) {
        return Err(STATUS_GRAPHICS_INVALID_COLORBASIS);
    }
    let size = source_size(mode);
    // The source mode is the desktop, which a 90/270-degree path shows turned: a portrait
    // 480x640 desktop on a 640x480 scan-out is valid. The size rules (640x480 minimum) are
    // about the scan-out, so either orientation of the desktop may meet them; whether the
    // path's rotation really maps it onto a monitor mode is checked against the mode list.
    let fits = |(w, h): (u32, u32)| check_size(w, h, max_framebuffer_bytes).is_ok();
    if !fits(size) && !fits(Rotation::Rotate90.orient(size)) {
        return Err(STATUS_GRAPHICS_INVALID_PRIMARYSURFACE_SIZE);
    }
    if (format.VisibleRegionSize.cx, format.VisibleRegionSize.cy) != size {
        return Err(STATUS_GRAPHICS_INVALID_VISIBLEREGION_SIZE);
    }
    if u64::from(format.Stride) < u64::from(size.0) * BYTES_PER_PIXEL {
        return Err(STATUS_GRAPHICS_INVALID_STRIDE);
    }
    Ok(size)
}

/// A path's rotation as the driver sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathRotation {
    /// Pinned to this rotation.
    Pinned(Rotation),
    /// Not chosen yet (unpinned, unspecified or uninitialized).
    Open,
}

impl PathRotation {
    /// The path's rotation, or `STATUS_GRAPHICS_VIDPN_MODALITY_NOT_SUPPORTED` for one the
    /// driver cannot perform (the WDDM 1.3 offset rotations, unknown values).
    pub(crate) fn of(path: &D3DKMDT_VIDPN_PRESENT_PATH) -> Result<Self, NTSTATUS> {
        let value = path.ContentTransformation.Rotation;
        if let Some(rotation) = Rotation::from_ddi(value) {
            return Ok(Self::Pinned(rotation));
        }
        match value {
            D3DKMDT_VPPR_UNPINNED | D3DKMDT_VPPR_NOTSPECIFIED | D3DKMDT_VPPR_UNINITIALIZED => {
                Ok(Self::Open)
            }
            _ => Err(STATUS_GRAPHICS_VIDPN_MODALITY_NOT_SUPPORTED),
        }
    }

    /// Whether source size `source` can show on target size `target` under this rotation.
    pub(crate) fn fits(self, source: (u32, u32), target: (u32, u32)) -> bool {
        match self {
            Self::Pinned(rotation) => rotation.orient(source) == target,
            Self::Open => source == target || Rotation::Rotate90.orient(source) == target,
        }
    }

    /// The target size that shows `source` (preferring identity when open), if the monitor
    /// offers one.
    pub(crate) fn target_for(self, source: (u32, u32), modes: &ModeList) -> Option<(u32, u32)> {
        let candidates = match self {
            Self::Pinned(rotation) => [Some(rotation.orient(source)), None],
            Self::Open => [Some(source), Some(Rotation::Rotate90.orient(source))],
        };
        candidates
            .into_iter()
            .flatten()
            .find(|&(w, h)| modes.contains(w, h))
    }

    /// The source size shown on a target of size `target` (identity when open).
    pub(crate) fn source_for(self, target: (u32, u32)) -> (u32, u32) {
        match self {
            Self::Pinned(rotation) => rotation.orient(target),
            Self::Open => target,
        }
    }
}

/// Checks the parts of a path other than modes: scaling (identity, or centered which is the
/// same for equal sizes), rotation, and the gamma ramp (none).
pub(crate) fn check_path_transform(
    path: &D3DKMDT_VIDPN_PRESENT_PATH,
) -> Result<PathRotation, NTSTATUS> {
    match path.ContentTransformation.Scaling {
        D3DKMDT_VPPS_IDENTITY
        | D3DKMDT_VPPS_CENTERED
        | D3DKMDT_VPPS_UNPINNED
        | D3DKMDT_VPPS_NOTSPECIFIED
        | D3DKMDT_VPPS_UNINITIALIZED => {}
        _ => return Err(STATUS_GRAPHICS_VIDPN_MODALITY_NOT_SUPPORTED),
    }
    let gamma = path.GammaRamp.Type;
    if gamma != D3DDDI_GAMMARAMP_DEFAULT && gamma != D3DDDI_GAMMARAMP_UNINITIALIZED {
        return Err(STATUS_GRAPHICS_GAMMA_RAMP_NOT_SUPPORTED);
    }
    PathRotation::of(path)
}
