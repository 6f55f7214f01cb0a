//! `DXGK_VIDPN_INTERFACE` (topology and mode-set ownership of a VidPN) and the monitor
//! interface, as dxgkrnl implements them.
//!
//! Mode-set life cycle: `pfnAcquire*ModeSet` lends the VidPN's current set (release it with
//! `pfnRelease*ModeSet`); `pfnCreateNew*ModeSet` makes an empty set the driver fills and then
//! either assigns (the VidPN takes it over and drops the old one) or releases. Assigning a set
//! that lacks the mode pinned in the current set is
//! `STATUS_GRAPHICS_PINNED_MODE_MUST_REMAIN_IN_SET`; the new set keeps that mode pinned.
//!
//! A refused assignment follows the pfnAssignSourceModeSet / pfnAssignTargetModeSet pages:
//! an invalid input (`STATUS_GRAPHICS_INVALID_VIDPN`, `..._INVALID_VIDEO_PRESENT_SOURCE/
//! TARGET`, `..._INVALID_VIDPN_SOURCEMODESET/TARGETMODESET`) leaves the set with the driver;
//! any other refusal (an empty set, one without the pinned mode, one created for another
//! source/target) releases the set, and the driver's later release or use of that handle is
//! a violation. The pages name a code only for the missing pinned mode; for an empty set the
//! simulator answers `STATUS_INVALID_PARAMETER`, for another owner's set
//! `STATUS_GRAPHICS_RESOURCES_NOT_RELATED` (neither is one of the three that keep the set).

use std::collections::BTreeMap;
use std::ffi::c_void;

use viogpudo::ddi::*;

use super::modeset::{
    SetObj, SimMode, MONITOR_SET_INTERFACE, SOURCE_SET_INTERFACE, TARGET_SET_INTERFACE,
};
use super::registry::{handle_of, id_of, registry, Object, VidPnObj};
use super::topology::TOPOLOGY_INTERFACE;

/// A VidPN mode-set kind: which map of the VidPN holds it and which table serves it.
pub(crate) trait VidPnSetKind: SimMode {
    /// The pointee of the set handle type.
    type HObj;
    /// The set's interface table.
    type Iface: 'static;
    /// Status for a source/target id the adapter does not have.
    const INVALID_ID: NTSTATUS;
    fn sets(vidpn: &mut VidPnObj) -> &mut BTreeMap<u32, u64>;
    fn wrap(set: SetObj<Self>) -> Object;
    fn iface() -> &'static Self::Iface;
}

impl VidPnSetKind for D3DKMDT_VIDPN_SOURCE_MODE {
    type HObj = D3DKMDT_HVIDPNSOURCEMODESET__;
    type Iface = DXGK_VIDPNSOURCEMODESET_INTERFACE;
    const INVALID_ID: NTSTATUS = STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE;
    fn sets(vidpn: &mut VidPnObj) -> &mut BTreeMap<u32, u64> {
        &mut vidpn.source_sets
    }
    fn wrap(set: SetObj<Self>) -> Object {
        Object::SourceSet(set)
    }
    fn iface() -> &'static Self::Iface {
        &SOURCE_SET_INTERFACE
    }
}

impl VidPnSetKind for D3DKMDT_VIDPN_TARGET_MODE {
    type HObj = D3DKMDT_HVIDPNTARGETMODESET__;
    type Iface = DXGK_VIDPNTARGETMODESET_INTERFACE;
    const INVALID_ID: NTSTATUS = STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET;
    fn sets(vidpn: &mut VidPnObj) -> &mut BTreeMap<u32, u64> {
        &mut vidpn.target_sets
    }
    fn wrap(set: SetObj<Self>) -> Object {
        Object::TargetSet(set)
    }
    fn iface() -> &'static Self::Iface {
        &TARGET_SET_INTERFACE
    }
}

unsafe extern "system" fn get_topology(
    vidpn: D3DKMDT_HVIDPN,
    handle: *mut D3DKMDT_HVIDPNTOPOLOGY,
    iface: *mut *const DXGK_VIDPNTOPOLOGY_INTERFACE,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if handle.is_null() || iface.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let mut reg = registry();
    let Some(v) = reg.vidpn(id_of(vidpn)) else {
        return STATUS_GRAPHICS_INVALID_VIDPN;
    };
    // SAFETY: both checked non-null; the driver's out-parameters.
    unsafe {
        handle.write(handle_of(v.topology));
        iface.write(&TOPOLOGY_INTERFACE);
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn acquire_set<M: VidPnSetKind>(
    vidpn: D3DKMDT_HVIDPN,
    id: u32,
    handle: *mut *mut M::HObj,
    iface: *mut *const M::Iface,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if handle.is_null() || iface.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let mut reg = registry();
    let Some(v) = reg.vidpn(id_of(vidpn)) else {
        return STATUS_GRAPHICS_INVALID_VIDPN;
    };
    if id >= v.sources {
        return M::INVALID_ID;
    }
    let Some(&set_id) = M::sets(v).get(&id) else {
        return M::INVALID_ID;
    };
    let Some(set) = reg.objects.get_mut(&set_id).and_then(M::set) else {
        return M::INVALID_SET;
    };
    set.refs += 1;
    // SAFETY: both checked non-null; the driver's out-parameters.
    unsafe {
        handle.write(handle_of(set_id));
        iface.write(M::iface());
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn release_set<M: VidPnSetKind>(
    vidpn: D3DKMDT_HVIDPN,
    handle: *mut M::HObj,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let mut reg = registry();
    let vidpn_id = id_of(vidpn);
    if reg.vidpn(vidpn_id).is_none() {
        return STATUS_GRAPHICS_INVALID_VIDPN;
    }
    let set_id = id_of(handle);
    let Some(set) = reg.objects.get_mut(&set_id).and_then(M::set) else {
        reg.used_consumed_set(set_id, "pfnRelease*ModeSet");
        return M::INVALID_SET;
    };
    if set.vidpn != vidpn_id {
        return M::INVALID_SET;
    }
    if set.refs > 0 {
        set.refs -= 1;
        if !set.assigned && set.refs == 0 && set.pending.is_empty() && set.loans.count() == 0 {
            // An old set replaced while lent: gone with its last loan.
            reg.objects.remove(&set_id);
        }
        STATUS_SUCCESS
    } else if !set.assigned {
        // A created set the driver gives up on.
        reg.objects.remove(&set_id);
        STATUS_SUCCESS
    } else {
        M::INVALID_SET
    }
}

unsafe extern "system" fn create_set<M: VidPnSetKind>(
    vidpn: D3DKMDT_HVIDPN,
    id: u32,
    handle: *mut *mut M::HObj,
    iface: *mut *const M::Iface,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if handle.is_null() || iface.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let mut reg = registry();
    let vidpn_id = id_of(vidpn);
    let Some(v) = reg.vidpn(vidpn_id) else {
        return STATUS_GRAPHICS_INVALID_VIDPN;
    };
    if id >= v.sources {
        return M::INVALID_ID;
    }
    let set_id = reg.insert(M::wrap(SetObj::new(vidpn_id, id, false)));
    // SAFETY: both checked non-null; the driver's out-parameters.
    unsafe {
        handle.write(handle_of(set_id));
        iface.write(M::iface());
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn assign_set<M: VidPnSetKind>(
    vidpn: D3DKMDT_HVIDPN,
    id: u32,
    handle: *mut M::HObj,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let mut reg = registry();
    let vidpn_id = id_of(vidpn);
    let Some(v) = reg.vidpn(vidpn_id) else {
        return STATUS_GRAPHICS_INVALID_VIDPN;
    };
    if id >= v.sources {
        return M::INVALID_ID;
    }
    let old_id = M::sets(v).get(&id).copied();
    let new_id = id_of(handle);
    let pinned = old_id
        .and_then(|old| reg.objects.get_mut(&old).and_then(M::set))
        .and_then(|old| old.pinned_mode());
    let Some(new) = reg.objects.get_mut(&new_id).and_then(M::set) else {
        reg.used_consumed_set(new_id, "pfnAssign*ModeSet");
        return M::INVALID_SET;
    };
    if new.vidpn != vidpn_id || new.assigned || new.refs > 0 {
        return M::INVALID_SET;
    }
    // The inputs are valid: from here a refusal releases the set.
    let pinned_kept = pinned.map(|p| new.modes.iter().map(|s| s.get()).find(|m| m.same(&p)));
    let refusal = if new.owner != id {
        Some(STATUS_GRAPHICS_RESOURCES_NOT_RELATED)
    } else if let Some(None) = pinned_kept {
        Some(STATUS_GRAPHICS_PINNED_MODE_MUST_REMAIN_IN_SET)
    } else if new.modes.is_empty() {
        Some(STATUS_INVALID_PARAMETER)
    } else {
        None
    };
    if let Some(status) = refusal {
        reg.objects.remove(&new_id);
        reg.consumed.insert(new_id, vidpn_id);
        return status;
    }
    if let Some(Some(mode)) = pinned_kept {
        new.pinned = Some(mode.id());
    }
    new.assigned = true;
    if let Some(old_id) = old_id {
        let busy = reg
            .objects
            .get_mut(&old_id)
            .and_then(M::set)
            .map(|old| {
                old.assigned = false;
                old.refs > 0
            })
            .unwrap_or(false);
        if !busy {
            reg.objects.remove(&old_id);
        }
    }
    if let Some(v) = reg.vidpn(vidpn_id) {
        M::sets(v).insert(id, new_id);
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn assign_multisampling(
    vidpn: D3DKMDT_HVIDPN,
    source: u32,
    _count: usize,
    _methods: *const D3DDDI_MULTISAMPLINGMETHOD,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let mut reg = registry();
    match reg.vidpn(id_of(vidpn)) {
        None => STATUS_GRAPHICS_INVALID_VIDPN,
        Some(v) if source >= v.sources => STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE,
        Some(_) => STATUS_SUCCESS,
    }
}

type Src = D3DKMDT_VIDPN_SOURCE_MODE;
type Tgt = D3DKMDT_VIDPN_TARGET_MODE;

/// `DXGK_VIDPN_INTERFACE` (version 1).
pub(crate) static VIDPN_INTERFACE: DXGK_VIDPN_INTERFACE = DXGK_VIDPN_INTERFACE {
    Version: DXGK_VIDPN_INTERFACE_VERSION_V1,
    pfnGetTopology: Some(get_topology),
    pfnAcquireSourceModeSet: Some(acquire_set::<Src>),
    pfnReleaseSourceModeSet: Some(release_set::<Src>),
    pfnCreateNewSourceModeSet: Some(create_set::<Src>),
    pfnAssignSourceModeSet: Some(assign_set::<Src>),
    pfnAssignMultisamplingMethodSet: Some(assign_multisampling),
    pfnAcquireTargetModeSet: Some(acquire_set::<Tgt>),
    pfnReleaseTargetModeSet: Some(release_set::<Tgt>),
    pfnCreateNewTargetModeSet: Some(create_set::<Tgt>),
    pfnAssignTargetModeSet: Some(assign_set::<Tgt>),
};

unsafe extern "system" fn acquire_monitor_set(
    adapter: *mut c_void,
    target: u32,
    handle: *mut D3DKMDT_HMONITORSOURCEMODESET,
    iface: *mut *const DXGK_MONITORSOURCEMODESET_INTERFACE,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if handle.is_null() || iface.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let mut reg = registry();
    let found = reg
        .objects
        .iter_mut()
        .find_map(|(&id, object)| match object {
            Object::MonitorSet(set) if set.adapter == adapter as usize && set.owner == target => {
                Some((id, set))
            }
            _ => None,
        });
    let Some((id, set)) = found else {
        return STATUS_GRAPHICS_MONITOR_NOT_CONNECTED;
    };
    set.refs += 1;
    // SAFETY: both checked non-null; the driver's out-parameters.
    unsafe {
        handle.write(handle_of(id));
        iface.write(&MONITOR_SET_INTERFACE);
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn release_monitor_set(
    _adapter: *mut c_void,
    handle: D3DKMDT_HMONITORSOURCEMODESET,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let mut reg = registry();
    match reg.objects.get_mut(&id_of(handle)) {
        Some(Object::MonitorSet(set)) if set.refs > 0 => {
            set.refs -= 1;
            STATUS_SUCCESS
        }
        _ => STATUS_GRAPHICS_INVALID_MONITOR_SOURCEMODESET,
    }
}

unsafe extern "system" fn get_frequency_ranges(
    _adapter: *mut c_void,
    _target: u32,
    _handle: *mut D3DKMDT_HMONITORFREQUENCYRANGESET,
    _iface: *mut *const DXGK_MONITORFREQUENCYRANGESET_INTERFACE,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    STATUS_NOT_SUPPORTED
}

unsafe extern "system" fn get_descriptors(
    _adapter: *mut c_void,
    _target: u32,
    _handle: *mut D3DKMDT_HMONITORDESCRIPTORSET,
    _iface: *mut *const DXGK_MONITORDESCRIPTORSET_INTERFACE,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    STATUS_NOT_SUPPORTED
}

/// `DXGK_MONITOR_INTERFACE` (version 1; frequency-range and descriptor sets are not modelled).
pub(crate) static MONITOR_INTERFACE: DXGK_MONITOR_INTERFACE = DXGK_MONITOR_INTERFACE {
    Version: DXGK_MONITOR_INTERFACE_VERSION_V1,
    pfnAcquireMonitorSourceModeSet: Some(acquire_monitor_set),
    pfnReleaseMonitorSourceModeSet: Some(release_monitor_set),
    pfnGetMonitorFrequencyRangeSet: Some(get_frequency_ranges),
    pfnGetMonitorDescriptorSet: Some(get_descriptors),
};
