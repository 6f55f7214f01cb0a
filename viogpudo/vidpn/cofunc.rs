//! `DxgkDdiEnumVidPnCofuncModality` and `DxgkDdiRecommendFunctionalVidPn`: given a VidPN
//! with some modes and transformations pinned, fill every un-pinned mode set (except the
//! pivot's) with the modes that work together with the pinned ones, and report which
//! scaling and rotation each un-pinned path supports.

use super::iface::{query_vidpn, ModeKind, OwnedModeSet, Status, VidPn};
use super::modes::{
    check_path_transform, fill_source_mode, fill_target_mode, source_size, target_size,
    PathRotation,
};
use super::{status_of, Rotation, RotationDdi, VidPnHost};
use crate::ddi::*;
use viogpu_common::modes::ModeList;

/// What the OS keeps fixed during an enumeration.
struct Pivot {
    kind: D3DKMDT_ENUMCOFUNCMODALITY_PIVOT_TYPE,
    source: u32,
    target: u32,
}

impl Pivot {
    fn of(args: &DXGKARG_ENUMVIDPNCOFUNCMODALITY) -> Status<Self> {
        match args.EnumPivotType {
            D3DKMDT_EPT_VIDPNSOURCE
            | D3DKMDT_EPT_VIDPNTARGET
            | D3DKMDT_EPT_SCALING
            | D3DKMDT_EPT_ROTATION
            | D3DKMDT_EPT_NOPIVOT => Ok(Pivot {
                kind: args.EnumPivotType,
                source: args.EnumPivot.VidPnSourceId,
                target: args.EnumPivot.VidPnTargetId,
            }),
            _ => Err(STATUS_INVALID_PARAMETER),
        }
    }

    fn is_source(&self, source: u32) -> bool {
        self.kind == D3DKMDT_EPT_VIDPNSOURCE && self.source == source
    }

    fn is_target(&self, target: u32) -> bool {
        self.kind == D3DKMDT_EPT_VIDPNTARGET && self.target == target
    }

    fn is_path(&self, kind: D3DKMDT_ENUMCOFUNCMODALITY_PIVOT_TYPE, s: u32, t: u32) -> bool {
        self.kind == kind && self.source == s && self.target == t
    }
}

/// `DxgkDdiEnumVidPnCofuncModality`.
///
/// # Safety
/// `dxgk` is the interface dxgkrnl gave the adapter, and `args` is the argument of the
/// current DDI call (its VidPN handle is the OS's).
pub unsafe fn enum_cofunc_modality(
    host: &dyn VidPnHost,
    dxgk: &DXGKRNL_INTERFACE,
    args: &DXGKARG_ENUMVIDPNCOFUNCMODALITY,
) -> NTSTATUS {
    status_of((|| {
        let pivot = Pivot::of(args)?;
        // SAFETY: the caller's contract.
        let vidpn = unsafe { query_vidpn(dxgk, args.hConstrainingVidPn) }?;
        let topology = vidpn.topology()?;
        for path in topology.paths()? {
            let mut update = path;
            if enumerate_path(host, &vidpn, &pivot, &path, &mut update)? {
                topology.update_support(&update)?;
            }
        }
        Ok(())
    })())
}

/// The modes of the target of a path whose source and target ids the adapter has.
pub(super) fn path_target_modes(
    host: &dyn VidPnHost,
    source: u32,
    target: u32,
) -> Status<ModeList> {
    if source >= host.source_count() {
        return Err(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE);
    }
    target_modes(host, target)
}

/// The modes of a target the adapter has.
pub(super) fn target_modes(host: &dyn VidPnHost, target: u32) -> Status<ModeList> {
    if target >= host.source_count() {
        return Err(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET);
    }
    host.target_modes(target)
        .ok_or(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET)
}

/// Fills the un-pinned mode sets of one path and computes its support fields into `update`;
/// `true` when the support fields changed.
fn enumerate_path(
    host: &dyn VidPnHost,
    vidpn: &VidPn<'_>,
    pivot: &Pivot,
    path: &D3DKMDT_VIDPN_PRESENT_PATH,
    update: &mut D3DKMDT_VIDPN_PRESENT_PATH,
) -> Status<bool> {
    let (source, target) = (path.VidPnSourceId, path.VidPnTargetId);
    let modes = path_target_modes(host, source, target)?;
    let rotation = check_path_transform(path)?;
    let pinned_source = vidpn
        .source_modes(source)?
        .pinned()?
        .map(|m| source_size(&m));
    let pinned_target = vidpn
        .target_modes(target)?
        .pinned()?
        .map(|m| target_size(&m));

    // The sizes are offered straight from the mode list (or the one or two sizes a pinned
    // mode allows): no list is built on the heap.
    if pinned_source.is_none() && !pivot.is_source(source) {
        let create = || vidpn.new_source_modes(source);
        match pinned_target {
            Some(size) => {
                let quarter = (rotation == PathRotation::Open && size.0 != size.1)
                    .then(|| Rotation::Rotate90.orient(size));
                let sizes = core::iter::once(rotation.source_for(size)).chain(quarter);
                offer(create, sizes, fill_source_mode)?;
            }
            None => {
                let sizes = modes
                    .iter()
                    .map(|m| rotation.source_for((m.width, m.height)));
                offer(create, sizes, fill_source_mode)?;
            }
        }
    }

    if pinned_target.is_none() && !pivot.is_target(target) {
        let preferred = modes.preferred().map(|m| (m.width, m.height));
        let create = || vidpn.new_target_modes(target);
        let fill = |m: &mut D3DKMDT_VIDPN_TARGET_MODE, size| {
            fill_target_mode(m, size, Some(size) == preferred)
        };
        match pinned_source {
            Some(size) => offer(create, rotation.target_for(size, &modes), fill)?,
            None => offer(create, modes.iter().map(|m| (m.width, m.height)), fill)?,
        }
    }

    let transform = &mut update.ContentTransformation;
    let mut changed = false;
    if path.ContentTransformation.Scaling == D3DKMDT_VPPS_UNPINNED
        && !pivot.is_path(D3DKMDT_EPT_SCALING, source, target)
    {
        // Source and target always have the same size, so there is nothing to stretch.
        transform.ScalingSupport = D3DKMDT_VIDPN_PRESENT_PATH_SCALING_SUPPORT::default();
        transform.ScalingSupport.set_identity(true);
        transform.ScalingSupport.set_centered(true);
        changed = true;
    }
    if path.ContentTransformation.Rotation == D3DKMDT_VPPR_UNPINNED
        && !pivot.is_path(D3DKMDT_EPT_ROTATION, source, target)
    {
        // With both modes pinned only the rotations that map one onto the other remain.
        let (straight, quarter) = match (pinned_source, pinned_target) {
            (Some(s), Some(t)) => (s == t, Rotation::Rotate90.orient(s) == t),
            _ => (true, true),
        };
        let support = &mut transform.RotationSupport;
        *support = D3DKMDT_VIDPN_PRESENT_PATH_ROTATION_SUPPORT::default();
        support.set_identity(straight);
        support.set_rotate180(straight);
        support.set_rotate90(quarter);
        support.set_rotate270(quarter);
        changed = true;
    }
    Ok(changed)
}

/// Fills a new mode set with one mode per size and assigns it. No sizes (a pinned source no
/// monitor mode fits, e.g. after the mode list changed since IsSupportedVidPn; a monitor
/// without modes): no set at all, because pfnAssign*ModeSet refuses an empty set (and then
/// releases it itself); the VidPN keeps its current set, and IsSupportedVidPn says no to it.
fn offer<'a, K: ModeKind>(
    create: impl FnOnce() -> Status<OwnedModeSet<'a, K>>,
    sizes: impl IntoIterator<Item = (u32, u32)>,
    fill: impl Fn(&mut K::Mode, (u32, u32)),
) -> Status<()>
where
    K::Iface: 'a,
{
    let mut sizes = sizes.into_iter().peekable();
    if sizes.peek().is_none() {
        return Ok(());
    }
    let set = create()?;
    for size in sizes {
        set.set().add(|m| fill(m, size))?;
    }
    set.assign()
}

/// `DxgkDdiRecommendFunctionalVidPn`: like the KMDOD sample, a display-only driver leaves the
/// choice to the OS, which builds a VidPN from the monitors' preferred modes.
///
/// # Safety
/// Nothing is dereferenced; `unsafe` only for symmetry with the other VidPN DDIs.
pub unsafe fn recommend_functional_vidpn(
    _host: &dyn VidPnHost,
    _dxgk: &DXGKRNL_INTERFACE,
    _args: &DXGKARG_RECOMMENDFUNCTIONALVIDPN,
) -> NTSTATUS {
    STATUS_GRAPHICS_NO_RECOMMENDED_FUNCTIONAL_VIDPN
}
