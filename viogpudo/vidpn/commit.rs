//! Judging and applying whole VidPNs: `DxgkDdiIsSupportedVidPn`, `DxgkDdiCommitVidPn`,
//! `DxgkDdiUpdateActiveVidPnPresentPath` and `DxgkDdiQueryVidPnHWCapability`.
//!
//! Commit and path update only decide: they validate everything first and return the
//! [`SourceCommit`]s, so a rejected VidPN changes nothing; the adapter applies the result.

use super::alloc::vec::Vec;
use super::cofunc::path_target_modes;
use super::iface::{query_vidpn, Status, VidPn};
use super::modes::{check_path_transform, check_source_mode, target_size, PathRotation};
use super::{status_of, Rotation, RotationDdi, SourceCommit, VidPnHost};
use crate::ddi::*;
use viogpu_common::fallible::try_filled;

/// `count` copies of `value`, or `STATUS_NO_MEMORY`.
fn per_source<T: Clone>(count: u32, value: T) -> Status<Vec<T>> {
    let count = usize::try_from(count).map_err(|_| STATUS_NO_MEMORY)?;
    try_filled(count, value).map_err(|_| STATUS_NO_MEMORY)
}

/// `DxgkDdiIsSupportedVidPn`: `STATUS_SUCCESS` with `IsVidPnSupported` TRUE or FALSE for a
/// well-formed VidPN; `STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY` (and FALSE) when a path names a
/// source or target this adapter does not have; the VidPN interface's error for a bad handle.
///
/// # Safety
/// `dxgk` is the interface dxgkrnl gave the adapter, and `args` is the argument of the
/// current DDI call (its VidPN handle is the OS's).
pub unsafe fn is_supported_vidpn(
    host: &dyn VidPnHost,
    dxgk: &DXGKRNL_INTERFACE,
    args: &mut DXGKARG_ISSUPPORTEDVIDPN,
) -> NTSTATUS {
    args.IsVidPnSupported = 0;
    if args.hDesiredVidPn.is_null() {
        // Showing nothing is always possible.
        args.IsVidPnSupported = 1;
        return STATUS_SUCCESS;
    }
    // SAFETY: the caller's contract.
    match unsafe { query_vidpn(dxgk, args.hDesiredVidPn) }.and_then(|v| supported(host, &v)) {
        Ok(yes) => {
            args.IsVidPnSupported = u8::from(yes);
            STATUS_SUCCESS
        }
        Err(status) => status,
    }
}

/// Whether the VidPN can be completed into one the adapter drives.
fn supported(host: &dyn VidPnHost, vidpn: &VidPn<'_>) -> Status<bool> {
    let count = host.source_count();
    let mut used = per_source(count, false)?;
    for path in vidpn.topology()?.paths()? {
        let (source, target) = (path.VidPnSourceId, path.VidPnTargetId);
        if source >= count || target >= count {
            return Err(STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY);
        }
        // Only source i → target i, and no clones.
        if source != target {
            return Ok(false);
        }
        match used.get_mut(source as usize) {
            Some(seen) if !*seen => *seen = true,
            _ => return Ok(false),
        }
        let Ok(rotation) = check_path_transform(&path) else {
            return Ok(false);
        };
        let Some(modes) = host.target_modes(target) else {
            return Ok(false);
        };
        let pinned_source = vidpn.source_modes(source)?.pinned()?;
        let pinned_target = vidpn
            .target_modes(target)?
            .pinned()?
            .map(|m| target_size(&m));
        if let Some(mode) = pinned_source {
            let Ok(size) = check_source_mode(&mode, modes.max_framebuffer_bytes()) else {
                return Ok(false);
            };
            if rotation.target_for(size, &modes).is_none() {
                return Ok(false);
            }
            if pinned_target.is_some_and(|t| !rotation.fits(size, t)) {
                return Ok(false);
            }
        }
        if pinned_target.is_some_and(|(w, h)| !modes.contains(w, h)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `DxgkDdiCommitVidPn`: the new state of the affected source(s) (every source for
/// `D3DDDI_ID_ALL`); a source without a path gets `mode: None`. Nothing for a
/// `PathPoweredOff` notification (the monitor is off; the mode is unchanged).
///
/// # Safety
/// `dxgk` is the interface dxgkrnl gave the adapter, and `args` is the argument of the
/// current DDI call (its VidPN handle is the OS's).
pub unsafe fn commit_vidpn(
    host: &dyn VidPnHost,
    dxgk: &DXGKRNL_INTERFACE,
    args: &DXGKARG_COMMITVIDPN,
) -> Result<Vec<SourceCommit>, NTSTATUS> {
    if args.Flags.path_powered_off() {
        return Ok(Vec::new());
    }
    let count = host.source_count();
    let affected = match args.AffectedVidPnSourceId {
        D3DDDI_ID_ALL => 0..count,
        source if source < count => source..source + 1,
        _ => return Err(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE),
    };
    let enforce = match args.MonitorConnectivityChecks {
        D3DKMDT_MCC_ENFORCE => true,
        D3DKMDT_MCC_IGNORE | D3DKMDT_MCC_UNINITIALIZED => false,
        _ => return Err(STATUS_INVALID_PARAMETER),
    };
    // SAFETY: the caller's contract.
    let vidpn = unsafe { query_vidpn(dxgk, args.hFunctionalVidPn) }?;

    // The whole topology must be valid, not just the affected part.
    let mut by_source = per_source(count, None)?;
    for path in vidpn.topology()?.paths()? {
        let (source, target) = (path.VidPnSourceId, path.VidPnTargetId);
        if source >= count {
            return Err(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE);
        }
        if target >= count {
            return Err(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET);
        }
        let slot = by_source
            .get_mut(source as usize)
            .ok_or(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE)?;
        if source != target || slot.is_some() {
            return Err(STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY);
        }
        check_path_transform(&path)?;
        // DxgkDdiCommitVidPn page: with connectivity enforced, an output without a monitor
        // keeps the current VidPN (nothing is applied: this function only decides) and is
        // STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY. Connectivity, not the mode list: a target
        // without a monitor still has modes.
        if enforce && !host.target_connected(target) {
            return Err(STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY);
        }
        *slot = Some(path);
    }

    // Reserved at its final size: no push below allocates.
    let mut commits = Vec::new();
    commits
        .try_reserve_exact(affected.len())
        .map_err(|_| STATUS_NO_MEMORY)?;
    for source in affected {
        let path = by_source.get(source as usize).copied().flatten();
        let commit = match path {
            None => SourceCommit {
                source,
                target: source,
                mode: None,
                rotation: Rotation::Identity,
            },
            Some(path) => commit_path(host, &vidpn, &path)?,
        };
        #[allow(clippy::disallowed_methods)] // reserved at its final size above
        commits.push(commit);
    }
    Ok(commits)
}

/// The commit of one (validated) path of a functional VidPN.
fn commit_path(
    host: &dyn VidPnHost,
    vidpn: &VidPn<'_>,
    path: &D3DKMDT_VIDPN_PRESENT_PATH,
) -> Status<SourceCommit> {
    let (source, target) = (path.VidPnSourceId, path.VidPnTargetId);
    let modes = host.target_modes(target).filter(|m| !m.is_empty());
    // A functional VidPN pins every rotation; an unpinned one can only mean "as is".
    let rotation = match PathRotation::of(path)? {
        PathRotation::Pinned(rotation) => rotation,
        PathRotation::Open => Rotation::Identity,
    };
    let max_bytes = modes.map_or(u64::MAX, |m| m.max_framebuffer_bytes());
    let mode = vidpn
        .source_modes(source)?
        .pinned()?
        .ok_or(STATUS_GRAPHICS_INVALID_VIDPN)?;
    let size = check_source_mode(&mode, max_bytes)?;
    let (w, h) = rotation.orient(size);
    if modes.is_some_and(|m| !m.contains(w, h)) {
        return Err(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE_MODE);
    }
    let pinned_target = vidpn.target_modes(target)?.pinned()?;
    if pinned_target.is_some_and(|t| target_size(&t) != (w, h)) {
        return Err(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET_MODE);
    }
    Ok(SourceCommit {
        source,
        target,
        mode: Some(size),
        rotation,
    })
}

/// `DxgkDdiUpdateActiveVidPnPresentPath`: a new rotation (or the same one) on an active
/// path. The source keeps its current mode, which must still fit the monitor after the
/// rotation.
///
/// Only the page's codes: a path this adapter does not have active (an unknown source or
/// target, a source shown on another target, a source with nothing on screen) is
/// `STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY`; a transformation the driver does not perform
/// (stretched or other scaling, an offset rotation, a rotation the monitor has no mode for)
/// or a gamma ramp it cannot apply is
/// `STATUS_GRAPHICS_PATH_CONTENT_GEOMETRY_TRANSFORMATION_NOT_SUPPORTED`. The KMDOD sample
/// answers `STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE/TARGET` for bad ids and
/// `STATUS_GRAPHICS_GAMMA_RAMP_NOT_SUPPORTED` for a ramp; the documented codes are followed.
///
/// Gamma ramps ("must support gamma ramps"): the default ramp, and an RGB256x3x16 ramp that
/// maps every 8-bit level onto itself (what Windows sets for an uncalibrated display), are
/// what the scan-out already shows and are accepted; the device has no gamma hardware, so
/// any other ramp is refused with the page's code rather than ignored.
///
/// # Safety
/// `args` is the argument of the current DDI call: a non-null `GammaRamp.Data` points at
/// `GammaRamp.DataSize` readable bytes for the call.
pub unsafe fn update_active_vidpn_present_path(
    host: &dyn VidPnHost,
    _dxgk: &DXGKRNL_INTERFACE,
    args: &DXGKARG_UPDATEACTIVEVIDPNPRESENTPATH,
) -> Result<SourceCommit, NTSTATUS> {
    const UNSUPPORTED: NTSTATUS =
        STATUS_GRAPHICS_PATH_CONTENT_GEOMETRY_TRANSFORMATION_NOT_SUPPORTED;
    let path = &args.VidPnPresentPathInfo;
    let (source, target) = (path.VidPnSourceId, path.VidPnTargetId);
    let count = host.source_count();
    if source >= count || target >= count || source != target {
        return Err(STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY);
    }
    let mode = host
        .current_mode(source)
        .ok_or(STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY)?;
    let modes = host
        .target_modes(target)
        .ok_or(STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY)?;
    // SAFETY: the caller's contract.
    if !unsafe { gamma_is_identity(&path.GammaRamp) } {
        return Err(UNSUPPORTED);
    }
    let mut geometry = *path;
    geometry.GammaRamp = D3DKMDT_GAMMA_RAMP::default();
    let rotation = match check_path_transform(&geometry).map_err(|_| UNSUPPORTED)? {
        PathRotation::Pinned(rotation) => rotation,
        PathRotation::Open => host.current_rotation(source),
    };
    let (w, h) = rotation.orient(mode);
    if !modes.contains(w, h) {
        return Err(UNSUPPORTED);
    }
    Ok(SourceCommit {
        source,
        target,
        mode: Some(mode),
        rotation,
    })
}

/// Levels per channel of an RGB256x3x16 ramp, and its size (three `u16` tables).
const RAMP_LEVELS: usize = 256;
const RAMP_BYTES: usize = 3 * RAMP_LEVELS * 2;

/// Whether `ramp` leaves every 8-bit level as it is (default, uninitialized, or an
/// RGB256x3x16 table whose entry `i` has `i` as its high byte in all three channels).
///
/// # Safety
/// A non-null `ramp.Data` points at `ramp.DataSize` readable bytes.
unsafe fn gamma_is_identity(ramp: &D3DKMDT_GAMMA_RAMP) -> bool {
    match ramp.Type {
        D3DDDI_GAMMARAMP_DEFAULT | D3DDDI_GAMMARAMP_UNINITIALIZED => true,
        ramp_type if ramp_type == D3DDDI_GAMMARAMP_RGB256x3x16 => {
            if ramp.Data.is_null() || ramp.DataSize < RAMP_BYTES {
                return false;
            }
            // SAFETY: non-null and at least RAMP_BYTES readable bytes (caller's contract).
            let bytes = unsafe { core::slice::from_raw_parts(ramp.Data.cast::<u8>(), RAMP_BYTES) };
            bytes.chunks_exact(2).enumerate().all(|(n, pair)| {
                let level = n % RAMP_LEVELS;
                let value = pair
                    .first()
                    .zip(pair.get(1))
                    .map(|(&lo, &hi)| u16::from_le_bytes([lo, hi]));
                value.is_some_and(|v| usize::from(v >> 8) == level)
            })
        }
        _ => false,
    }
}

/// `DxgkDdiQueryVidPnHWCapability`: the driver rotates (in its copy to the framebuffer) and
/// does nothing else; the path must be in the functional VidPN.
///
/// # Safety
/// `dxgk` is the interface dxgkrnl gave the adapter, and `args` is the argument of the
/// current DDI call (its VidPN handle is the OS's).
pub unsafe fn query_vidpn_hw_capability(
    host: &dyn VidPnHost,
    dxgk: &DXGKRNL_INTERFACE,
    args: &mut DXGKARG_QUERYVIDPNHWCAPABILITY,
) -> NTSTATUS {
    args.VidPnHWCaps = D3DKMDT_VIDPN_HW_CAPABILITY::default();
    let (source, target) = (args.SourceId, args.TargetId);
    let checked = (|| {
        path_target_modes(host, source, target)?;
        // SAFETY: the caller's contract.
        let vidpn = unsafe { query_vidpn(dxgk, args.hFunctionalVidPn) }?;
        let paths = vidpn.topology()?.paths()?;
        if !paths
            .iter()
            .any(|p| p.VidPnSourceId == source && p.VidPnTargetId == target)
        {
            return Err(STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY);
        }
        Ok(())
    })();
    if checked.is_ok() {
        args.VidPnHWCaps.set_driver_rotation(true);
    }
    status_of(checked)
}
