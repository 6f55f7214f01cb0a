//! VidPN topologies as dxgkrnl keeps them, and `DXGK_VIDPNTOPOLOGY_INTERFACE`.
//!
//! Path infos are lent by pointer and must be released once; iteration (`first`/`next`)
//! requires the previous path to still be lent; `pfnUpdatePathSupportInfo` copies only the
//! scaling and rotation *support* fields (what the driver may change); a path naming a source
//! or target the adapter does not have cannot be added.

use std::ptr;

use viogpudo::ddi::*;

use super::registry::{id_of, registry, Slot, TopologyObj};

type HTop = D3DKMDT_HVIDPNTOPOLOGY;
type Path = D3DKMDT_VIDPN_PRESENT_PATH;

/// The path a new path info starts as: everything unpinned, no gamma, no protection.
pub(crate) fn default_path(source: u32, target: u32) -> Path {
    let mut path = Path {
        VidPnSourceId: source,
        VidPnTargetId: target,
        ImportanceOrdinal: D3DKMDT_VPPI_PRIMARY,
        ..Path::default()
    };
    path.ContentTransformation.Scaling = D3DKMDT_VPPS_UNPINNED;
    path.ContentTransformation.Rotation = D3DKMDT_VPPR_UNPINNED;
    path.VidPnTargetColorBasis = D3DKMDT_CB_SRGB;
    path.VidPnTargetColorCoeffDynamicRanges = D3DKMDT_COLOR_COEFF_DYNAMIC_RANGES {
        FirstChannel: 8,
        SecondChannel: 8,
        ThirdChannel: 8,
        FourthChannel: 8,
    };
    path.Content = D3DKMDT_VPPC_GRAPHICS;
    path.CopyProtection.CopyProtectionType = D3DKMDT_VPPMT_NOPROTECTION;
    path.GammaRamp.Type = D3DDDI_GAMMARAMP_DEFAULT;
    path
}

/// Runs `f` on the topology `handle` names plus its adapter's source count.
fn with_topology(handle: HTop, f: impl FnOnce(&mut TopologyObj, u32) -> NTSTATUS) -> NTSTATUS {
    let mut reg = registry();
    let id = id_of(handle);
    let Some(vidpn) = reg.topology(id).map(|t| t.vidpn) else {
        return STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY;
    };
    let Some(sources) = reg.vidpn(vidpn).map(|v| v.sources) else {
        return STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY;
    };
    match reg.topology(id) {
        Some(topology) => f(topology, sources),
        None => STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY,
    }
}

/// Adds `path` to `topology` after the checks dxgkrnl makes.
pub(crate) fn insert_path(topology: &mut TopologyObj, sources: u32, path: Path) -> NTSTATUS {
    let (s, t) = (path.VidPnSourceId, path.VidPnTargetId);
    if s >= sources {
        return STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE;
    }
    if t >= sources {
        return STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET;
    }
    let existing: Vec<Path> = topology.paths.iter().map(Slot::get).collect();
    if existing
        .iter()
        .any(|p| p.VidPnSourceId == s && p.VidPnTargetId == t)
    {
        return STATUS_GRAPHICS_PATH_ALREADY_IN_TOPOLOGY;
    }
    // A target shows one source.
    if existing.iter().any(|p| p.VidPnTargetId == t) {
        return STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY;
    }
    topology.paths.push(Slot::new(path));
    STATUS_SUCCESS
}

unsafe extern "system" fn get_num_paths(handle: HTop, out: *mut usize) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_topology(handle, |top, _| {
        // SAFETY: checked non-null; the driver's out-parameter.
        unsafe { out.write(top.paths.len()) };
        STATUS_SUCCESS
    })
}

fn targets_of(top: &TopologyObj, source: u32) -> Vec<u32> {
    top.paths
        .iter()
        .map(Slot::get)
        .filter(|p| p.VidPnSourceId == source)
        .map(|p| p.VidPnTargetId)
        .collect()
}

unsafe extern "system" fn get_num_paths_from_source(
    handle: HTop,
    source: u32,
    out: *mut usize,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_topology(handle, |top, sources| {
        if source >= sources {
            return STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE;
        }
        let n = targets_of(top, source).len();
        if n == 0 {
            return STATUS_GRAPHICS_SOURCE_NOT_IN_TOPOLOGY;
        }
        // SAFETY: checked non-null; the driver's out-parameter.
        unsafe { out.write(n) };
        STATUS_SUCCESS
    })
}

unsafe extern "system" fn enum_path_targets_from_source(
    handle: HTop,
    source: u32,
    index: u64,
    out: *mut u32,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_topology(handle, |top, sources| {
        if source >= sources {
            return STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE;
        }
        let targets = targets_of(top, source);
        if targets.is_empty() {
            return STATUS_GRAPHICS_SOURCE_NOT_IN_TOPOLOGY;
        }
        match usize::try_from(index).ok().and_then(|i| targets.get(i)) {
            Some(&target) => {
                // SAFETY: checked non-null; the driver's out-parameter.
                unsafe { out.write(target) };
                STATUS_SUCCESS
            }
            None => STATUS_INVALID_PARAMETER,
        }
    })
}

unsafe extern "system" fn get_path_source_from_target(
    handle: HTop,
    target: u32,
    out: *mut u32,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_topology(handle, |top, sources| {
        if target >= sources {
            return STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET;
        }
        match top
            .paths
            .iter()
            .map(Slot::get)
            .find(|p| p.VidPnTargetId == target)
        {
            Some(path) => {
                // SAFETY: checked non-null; the driver's out-parameter.
                unsafe { out.write(path.VidPnSourceId) };
                STATUS_SUCCESS
            }
            None => STATUS_GRAPHICS_TARGET_NOT_IN_TOPOLOGY,
        }
    })
}

fn lend(top: &mut TopologyObj, index: usize, out: *mut *const Path) -> NTSTATUS {
    match top.paths.get(index) {
        Some(slot) => {
            let ptr = slot.ptr().cast_const();
            top.loans.lend(ptr);
            // SAFETY: callers checked `out` for null; the driver's out-parameter.
            unsafe { out.write(ptr) };
            STATUS_SUCCESS
        }
        None => {
            // SAFETY: as above.
            unsafe { out.write(ptr::null()) };
            STATUS_GRAPHICS_NO_MORE_ELEMENTS_IN_DATASET
        }
    }
}

unsafe extern "system" fn acquire_path_info(
    handle: HTop,
    source: u32,
    target: u32,
    out: *mut *const Path,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_topology(handle, |top, sources| {
        if source >= sources {
            return STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE;
        }
        if target >= sources {
            return STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET;
        }
        let found = top.paths.iter().position(|s| {
            let p = s.get();
            p.VidPnSourceId == source && p.VidPnTargetId == target
        });
        match found {
            Some(index) => lend(top, index, out),
            None => STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY,
        }
    })
}

unsafe extern "system" fn acquire_first_path_info(handle: HTop, out: *mut *const Path) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_topology(handle, |top, _| {
        if top.paths.is_empty() {
            // SAFETY: checked non-null; the driver's out-parameter.
            unsafe { out.write(ptr::null()) };
            return STATUS_GRAPHICS_DATASET_IS_EMPTY;
        }
        lend(top, 0, out)
    })
}

unsafe extern "system" fn acquire_next_path_info(
    handle: HTop,
    current: *const Path,
    out: *mut *const Path,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_topology(handle, |top, _| {
        if !top.loans.is_lent(current) {
            return STATUS_GRAPHICS_INVALID_VIDPN_PRESENT_PATH;
        }
        match top.paths.iter().position(|s| s.is(current)) {
            Some(index) => lend(top, index + 1, out),
            None => STATUS_GRAPHICS_INVALID_VIDPN_PRESENT_PATH,
        }
    })
}

unsafe extern "system" fn update_path_support_info(handle: HTop, path: *const Path) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if path.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: non-null; the driver passes a path it owns for the duration of the call.
    let update = unsafe { path.read() };
    with_topology(handle, |top, _| {
        let slot = top.paths.iter().find(|s| {
            let p = s.get();
            p.VidPnSourceId == update.VidPnSourceId && p.VidPnTargetId == update.VidPnTargetId
        });
        let Some(slot) = slot else {
            return STATUS_GRAPHICS_INVALID_VIDPN_PRESENT_PATH;
        };
        let mut current = slot.get();
        let (new, old) = (
            &update.ContentTransformation,
            &mut current.ContentTransformation,
        );
        old.ScalingSupport = new.ScalingSupport;
        old.RotationSupport = new.RotationSupport;
        slot.set(current);
        STATUS_SUCCESS
    })
}

unsafe extern "system" fn release_path_info(handle: HTop, path: *const Path) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    with_topology(handle, |top, _| {
        if let Some(at) = top.pending.iter().position(|s| s.is(path)) {
            top.pending.remove(at);
            STATUS_SUCCESS
        } else if top.loans.give_back(path) {
            STATUS_SUCCESS
        } else {
            STATUS_GRAPHICS_INVALID_VIDPN_PRESENT_PATH
        }
    })
}

unsafe extern "system" fn create_new_path_info(handle: HTop, out: *mut *mut Path) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_topology(handle, |top, _| {
        let slot = Slot::new(default_path(
            D3DDDI_ID_UNINITIALIZED,
            D3DDDI_ID_UNINITIALIZED,
        ));
        // SAFETY: checked non-null; the driver's out-parameter.
        unsafe { out.write(slot.ptr()) };
        top.pending.push(slot);
        STATUS_SUCCESS
    })
}

unsafe extern "system" fn add_path(handle: HTop, path: *mut Path) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    with_topology(handle, |top, sources| {
        let Some(at) = top.pending.iter().position(|s| s.is(path)) else {
            return STATUS_GRAPHICS_INVALID_VIDPN_PRESENT_PATH;
        };
        let value = top.pending[at].get();
        let status = insert_path(top, sources, value);
        if nt_success(status) {
            top.pending.remove(at);
        }
        status
    })
}

unsafe extern "system" fn remove_path(handle: HTop, source: u32, target: u32) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    with_topology(handle, |top, _| {
        let found = top.paths.iter().position(|s| {
            let p = s.get();
            p.VidPnSourceId == source && p.VidPnTargetId == target
        });
        match found {
            Some(at) if !top.loans.is_lent(top.paths[at].ptr()) => {
                top.paths.remove(at);
                STATUS_SUCCESS
            }
            Some(_) => STATUS_GRAPHICS_INVALID_VIDPN_PRESENT_PATH,
            None => STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY,
        }
    })
}

/// `DXGK_VIDPNTOPOLOGY_INTERFACE`.
pub(crate) static TOPOLOGY_INTERFACE: DXGK_VIDPNTOPOLOGY_INTERFACE = DXGK_VIDPNTOPOLOGY_INTERFACE {
    pfnGetNumPaths: Some(get_num_paths),
    pfnGetNumPathsFromSource: Some(get_num_paths_from_source),
    pfnEnumPathTargetsFromSource: Some(enum_path_targets_from_source),
    pfnGetPathSourceFromTarget: Some(get_path_source_from_target),
    pfnAcquirePathInfo: Some(acquire_path_info),
    pfnAcquireFirstPathInfo: Some(acquire_first_path_info),
    pfnAcquireNextPathInfo: Some(acquire_next_path_info),
    pfnUpdatePathSupportInfo: Some(update_path_support_info),
    pfnReleasePathInfo: Some(release_path_info),
    pfnCreateNewPathInfo: Some(create_new_path_info),
    pfnAddPath: Some(add_path),
    pfnRemovePath: Some(remove_path),
};
