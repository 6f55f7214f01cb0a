//! The simulator's VidPN object model: VidPNs, their topologies and mode sets, and monitor
//! source mode sets, behind the exact DXGK interface tables dxgkrnl lends a display miniport
//! (`DXGK_VIDPN_INTERFACE`, `DXGK_VIDPNTOPOLOGY_INTERFACE`, `DXGK_VIDPNSOURCEMODESET_INTERFACE`,
//! `DXGK_VIDPNTARGETMODESET_INTERFACE`, `DXGK_MONITOR_INTERFACE`,
//! `DXGK_MONITORSOURCEMODESET_INTERFACE`).
//!
//! The tables are `extern "system"` functions over handles; a handle is the id of an object in
//! one process-wide registry, so unknown, released or wrongly typed handles get dxgkrnl's
//! status codes (`STATUS_GRAPHICS_INVALID_VIDPN`, `..._INVALID_VIDPN_SOURCEMODESET`, ...)
//! instead of undefined behaviour. Objects the driver acquires are counted, so a test can
//! assert that a DDI released everything it acquired ([`VidPnModel::outstanding`]).
//!
//! The test side (the VidPN manager's role) uses [`VidPnModel`] to build a VidPN (paths,
//! pinned modes, transformations), hands [`VidPnModel::handle`] to a DDI, and reads the
//! result back; [`MonitorModeSet`] plays the monitor source mode set of
//! `DxgkDdiRecommendMonitorModes`. [`query_vidpn_interface`] and [`query_monitor_interface`]
//! are the `DxgkCbQueryVidPnInterface` / `DxgkCbQueryMonitorInterface` callbacks.

mod iface;
mod modeset;
mod registry;
mod topology;

use std::collections::BTreeMap;

use viogpudo::ddi::*;

use modeset::{SetObj, SimMode, MONITOR_SET_INTERFACE};
use registry::{handle_of, id_of, registry, Object, Registry, Slot, TopologyObj, VidPnObj};

/// `DxgkCbQueryVidPnInterface`: the VidPN interface for a live VidPN handle.
///
/// # Safety
/// `interface`, when non-null, points at writable memory for one pointer.
pub unsafe extern "system" fn query_vidpn_interface(
    vidpn: D3DKMDT_HVIDPN,
    version: DXGK_VIDPN_INTERFACE_VERSION,
    interface: *mut *const DXGK_VIDPN_INTERFACE,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    crate::callbacks::check_irql("DxgkCbQueryVidPnInterface");
    if interface.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    if version != DXGK_VIDPN_INTERFACE_VERSION_V1 {
        return STATUS_NOT_SUPPORTED;
    }
    if registry().vidpn(id_of(vidpn)).is_none() {
        return STATUS_GRAPHICS_INVALID_VIDPN;
    }
    // SAFETY: checked non-null; the caller's contract.
    unsafe { interface.write(&iface::VIDPN_INTERFACE) };
    STATUS_SUCCESS
}

/// `DxgkCbQueryMonitorInterface`: version 1 of the monitor interface (source mode sets of the
/// [`MonitorModeSet`]s created for the adapter handle).
///
/// # Safety
/// `interface`, when non-null, points at writable memory for one pointer.
pub unsafe extern "system" fn query_monitor_interface(
    _device: HANDLE,
    version: DXGK_MONITOR_INTERFACE_VERSION,
    interface: *mut *const DXGK_MONITOR_INTERFACE,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    crate::callbacks::check_irql("DxgkCbQueryMonitorInterface");
    if interface.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    if version != DXGK_MONITOR_INTERFACE_VERSION_V1 {
        return STATUS_NOT_SUPPORTED;
    }
    // SAFETY: checked non-null; the caller's contract.
    unsafe { interface.write(&iface::MONITOR_INTERFACE) };
    STATUS_SUCCESS
}

/// The targets of the paths of the VidPN `vidpn` (none for an unknown handle).
pub(crate) fn path_targets(vidpn: D3DKMDT_HVIDPN) -> Vec<u32> {
    let mut reg = registry();
    let Some(topology) = reg.vidpn(id_of(vidpn)).map(|v| v.topology) else {
        return Vec::new();
    };
    reg.topology(topology)
        .map(|t| t.paths.iter().map(|p| p.get().VidPnTargetId).collect())
        .unwrap_or_default()
}

/// A graphics source mode of `w`×`h` as dxgkrnl would describe a 32-bit desktop.
pub fn source_mode(w: u32, h: u32) -> D3DKMDT_VIDPN_SOURCE_MODE {
    let mut mode = D3DKMDT_VIDPN_SOURCE_MODE {
        Type: D3DKMDT_RMT_GRAPHICS,
        ..Default::default()
    };
    let f = &mut mode.Format;
    f.PrimSurfSize = D3DKMDT_2DREGION::new(w, h);
    f.VisibleRegionSize = D3DKMDT_2DREGION::new(w, h);
    f.Stride = w * 4;
    f.PixelFormat = D3DDDIFMT_X8R8G8B8;
    f.ColorBasis = D3DKMDT_CB_SRGB;
    f.PixelValueAccessMode = D3DKMDT_PVAM_DIRECT;
    mode
}

/// A 60 Hz progressive video signal with active size `w`×`h`.
pub fn signal(w: u32, h: u32) -> D3DKMDT_VIDEO_SIGNAL_INFO {
    let mut info = D3DKMDT_VIDEO_SIGNAL_INFO {
        VideoStandard: D3DKMDT_VSS_OTHER,
        TotalSize: D3DKMDT_2DREGION::new(w, h),
        ActiveSize: D3DKMDT_2DREGION::new(w, h),
        VSyncFreq: D3DDDI_RATIONAL::new(60, 1),
        HSyncFreq: D3DDDI_RATIONAL::new(60 * h, 1),
        PixelRate: (w as usize) * (h as usize) * 60,
        AdditionalSignalInfo: 0,
    };
    info.set_scan_line_ordering(D3DDDI_VSSLO_PROGRESSIVE);
    info
}

/// A target mode with active size `w`×`h` at 60 Hz.
pub fn target_mode(w: u32, h: u32) -> D3DKMDT_VIDPN_TARGET_MODE {
    let mut mode = D3DKMDT_VIDPN_TARGET_MODE {
        VideoSignalInfo: signal(w, h),
        ..Default::default()
    };
    mode.set_preference(D3DKMDT_MP_NOTPREFERRED);
    mode
}

/// A monitor source mode `w`×`h` at 60 Hz from the monitor's descriptor.
pub fn monitor_mode(w: u32, h: u32, preferred: bool) -> D3DKMDT_MONITOR_SOURCE_MODE {
    D3DKMDT_MONITOR_SOURCE_MODE {
        VideoSignalInfo: signal(w, h),
        ColorBasis: D3DKMDT_CB_SRGB,
        Origin: D3DKMDT_MCO_MONITORDESCRIPTOR,
        Preference: if preferred {
            D3DKMDT_MP_PREFERRED
        } else {
            D3DKMDT_MP_NOTPREFERRED
        },
        ..Default::default()
    }
}

/// The size of a source mode.
pub fn source_size(mode: &D3DKMDT_VIDPN_SOURCE_MODE) -> (u32, u32) {
    (mode.Format.PrimSurfSize.cx, mode.Format.PrimSurfSize.cy)
}

/// The active size of a video signal.
pub fn signal_size(signal: &D3DKMDT_VIDEO_SIGNAL_INFO) -> (u32, u32) {
    (signal.ActiveSize.cx, signal.ActiveSize.cy)
}

/// One VidPN as the VidPN manager builds it, for an adapter with `sources` sources and as
/// many targets. Dropping it destroys the VidPN; its handle dies with it.
pub struct VidPnModel {
    id: u64,
    topology: u64,
}

impl VidPnModel {
    /// An empty VidPN (no paths, empty mode sets) for an adapter with `sources` sources and
    /// targets.
    pub fn new(sources: u32) -> Self {
        let mut reg = registry();
        let topology = reg.insert(Object::Topology(TopologyObj {
            vidpn: 0,
            paths: Vec::new(),
            pending: Vec::new(),
            loans: Default::default(),
        }));
        let id = reg.insert(Object::VidPn(VidPnObj {
            sources,
            topology,
            source_sets: BTreeMap::new(),
            target_sets: BTreeMap::new(),
        }));
        if let Some(t) = reg.topology(topology) {
            t.vidpn = id;
        }
        for n in 0..sources {
            let s = reg.insert(Object::SourceSet(SetObj::new(id, n, true)));
            let t = reg.insert(Object::TargetSet(SetObj::new(id, n, true)));
            if let Some(v) = reg.vidpn(id) {
                v.source_sets.insert(n, s);
                v.target_sets.insert(n, t);
            }
        }
        VidPnModel { id, topology }
    }

    /// The `D3DKMDT_HVIDPN` to pass to the driver.
    pub fn handle(&self) -> D3DKMDT_HVIDPN {
        handle_of(self.id)
    }

    /// Adds the path `source → target` with every transformation unpinned.
    pub fn add_path(&self, source: u32, target: u32) -> Result<(), NTSTATUS> {
        let mut reg = registry();
        let sources = reg.vidpn(self.id).map_or(0, |v| v.sources);
        let top = reg
            .topology(self.topology)
            .ok_or(STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY)?;
        let status = topology::insert_path(top, sources, topology::default_path(source, target));
        if nt_success(status) {
            Ok(())
        } else {
            Err(status)
        }
    }

    /// Changes the path `source → target` in place (e.g. pins its scaling or gamma).
    pub fn modify_path(
        &self,
        source: u32,
        target: u32,
        change: impl FnOnce(&mut D3DKMDT_VIDPN_PRESENT_PATH),
    ) -> Result<(), NTSTATUS> {
        let mut reg = registry();
        let top = reg
            .topology(self.topology)
            .ok_or(STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY)?;
        let slot = top
            .paths
            .iter()
            .find(|s| {
                let p = s.get();
                (p.VidPnSourceId, p.VidPnTargetId) == (source, target)
            })
            .ok_or(STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY)?;
        let mut path = slot.get();
        change(&mut path);
        path.VidPnSourceId = source;
        path.VidPnTargetId = target;
        slot.set(path);
        Ok(())
    }

    /// Pins the rotation of the path `source → target`.
    pub fn set_rotation(
        &self,
        source: u32,
        target: u32,
        rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION,
    ) -> Result<(), NTSTATUS> {
        self.modify_path(source, target, |p| {
            p.ContentTransformation.Rotation = rotation
        })
    }

    /// Pins the scaling of the path `source → target`.
    pub fn set_scaling(
        &self,
        source: u32,
        target: u32,
        scaling: D3DKMDT_VIDPN_PRESENT_PATH_SCALING,
    ) -> Result<(), NTSTATUS> {
        self.modify_path(source, target, |p| {
            p.ContentTransformation.Scaling = scaling
        })
    }

    /// Copies of the paths.
    pub fn paths(&self) -> Vec<D3DKMDT_VIDPN_PRESENT_PATH> {
        let mut reg = registry();
        reg.topology(self.topology)
            .map(|t| t.paths.iter().map(Slot::get).collect())
            .unwrap_or_default()
    }

    /// A copy of the path `source → target`.
    pub fn path(&self, source: u32, target: u32) -> Option<D3DKMDT_VIDPN_PRESENT_PATH> {
        self.paths()
            .into_iter()
            .find(|p| (p.VidPnSourceId, p.VidPnTargetId) == (source, target))
    }

    /// Pins a `w`×`h` graphics mode on `source` (added to the set if not there).
    pub fn pin_source_mode(&self, source: u32, w: u32, h: u32) -> Result<(), NTSTATUS> {
        self.pin(source, source_mode(w, h), |v| &v.source_sets)
    }

    /// Pins `mode` as given on `source` (for malformed-mode tests).
    pub fn pin_source_mode_info(
        &self,
        source: u32,
        mode: D3DKMDT_VIDPN_SOURCE_MODE,
    ) -> Result<(), NTSTATUS> {
        self.pin(source, mode, |v| &v.source_sets)
    }

    /// Pins a `w`×`h` 60 Hz mode on `target` (added to the set if not there).
    pub fn pin_target_mode(&self, target: u32, w: u32, h: u32) -> Result<(), NTSTATUS> {
        self.pin(target, target_mode(w, h), |v| &v.target_sets)
    }

    /// Pins the mode with id `id` already in the target mode set of `target` (one the driver
    /// offered), as the VidPN manager pins a mode it picked from an enumerated set.
    pub fn pin_target_mode_id(&self, target: u32, id: u32) -> Result<(), NTSTATUS> {
        self.pin_id::<D3DKMDT_VIDPN_TARGET_MODE>(target, id, |v| &v.target_sets)
    }

    fn pin_id<M: SimMode>(
        &self,
        owner: u32,
        id: u32,
        sets: impl FnOnce(&VidPnObj) -> &BTreeMap<u32, u64>,
    ) -> Result<(), NTSTATUS> {
        let mut reg = registry();
        let set_id = reg
            .vidpn(self.id)
            .and_then(|v| sets(v).get(&owner).copied())
            .ok_or(M::INVALID_SET)?;
        let set = Self::set_of::<M>(&mut reg, set_id).ok_or(M::INVALID_SET)?;
        if !set.copies().iter().any(|m| m.id() == id) {
            return Err(M::INVALID_MODE);
        }
        set.pinned = Some(id);
        Ok(())
    }

    fn pin<M: SimMode>(
        &self,
        owner: u32,
        mode: M,
        sets: impl FnOnce(&VidPnObj) -> &BTreeMap<u32, u64>,
    ) -> Result<(), NTSTATUS> {
        let mut reg = registry();
        let set_id = reg
            .vidpn(self.id)
            .and_then(|v| sets(v).get(&owner).copied())
            .ok_or(M::INVALID_SET)?;
        let set = Self::set_of::<M>(&mut reg, set_id).ok_or(M::INVALID_SET)?;
        let existing = set.copies().into_iter().find(|m| m.same(&mode));
        let id = match existing {
            Some(m) => m.id(),
            None => set.push(mode),
        };
        set.pinned = Some(id);
        Ok(())
    }

    fn set_of<M: SimMode>(reg: &mut Registry, id: u64) -> Option<&mut SetObj<M>> {
        reg.objects.get_mut(&id).and_then(M::set)
    }

    fn modes_of<M: SimMode>(&self, owner: u32, target: bool) -> Vec<M> {
        let mut reg = registry();
        let set_id = reg.vidpn(self.id).and_then(|v| {
            let sets = if target {
                &v.target_sets
            } else {
                &v.source_sets
            };
            sets.get(&owner).copied()
        });
        set_id
            .and_then(|id| Self::set_of::<M>(&mut reg, id))
            .map(|s| s.copies())
            .unwrap_or_default()
    }

    fn pinned_of<M: SimMode>(&self, owner: u32, target: bool) -> Option<M> {
        let mut reg = registry();
        let set_id = reg.vidpn(self.id).and_then(|v| {
            let sets = if target {
                &v.target_sets
            } else {
                &v.source_sets
            };
            sets.get(&owner).copied()
        })?;
        Self::set_of::<M>(&mut reg, set_id)?.pinned_mode()
    }

    /// The source modes of `source`, in set order.
    pub fn source_mode_infos(&self, source: u32) -> Vec<D3DKMDT_VIDPN_SOURCE_MODE> {
        self.modes_of(source, false)
    }

    /// The sizes of the source modes of `source`, in set order.
    pub fn source_modes(&self, source: u32) -> Vec<(u32, u32)> {
        self.source_mode_infos(source)
            .iter()
            .map(source_size)
            .collect()
    }

    /// The target modes of `target`, in set order.
    pub fn target_mode_infos(&self, target: u32) -> Vec<D3DKMDT_VIDPN_TARGET_MODE> {
        self.modes_of(target, true)
    }

    /// The active sizes of the target modes of `target`, in set order.
    pub fn target_modes(&self, target: u32) -> Vec<(u32, u32)> {
        self.target_mode_infos(target)
            .iter()
            .map(|m| signal_size(&m.VideoSignalInfo))
            .collect()
    }

    /// The size of the pinned source mode of `source`.
    pub fn pinned_source_mode(&self, source: u32) -> Option<(u32, u32)> {
        self.pinned_of::<D3DKMDT_VIDPN_SOURCE_MODE>(source, false)
            .map(|m| source_size(&m))
    }

    /// The active size of the pinned target mode of `target`.
    pub fn pinned_target_mode(&self, target: u32) -> Option<(u32, u32)> {
        self.pinned_of::<D3DKMDT_VIDPN_TARGET_MODE>(target, true)
            .map(|m| signal_size(&m.VideoSignalInfo))
    }

    /// Objects of this VidPN the driver acquired or created and has not released: path infos,
    /// mode infos, mode-set handles, created but unassigned mode sets. Zero after every DDI.
    pub fn outstanding(&self) -> usize {
        let reg = registry();
        reg.objects
            .values()
            .map(|object| match object {
                Object::Topology(t) if t.vidpn == self.id => t.loans.count() + t.pending.len(),
                Object::SourceSet(s) if s.vidpn == self.id => {
                    s.outstanding() + usize::from(!s.assigned)
                }
                Object::TargetSet(s) if s.vidpn == self.id => {
                    s.outstanding() + usize::from(!s.assigned)
                }
                _ => 0,
            })
            .sum()
    }
}

impl VidPnModel {
    /// The rules the driver broke on this VidPN on a thread without a simulated adapter
    /// (with one, they go to the adapter's events), taken: e.g. releasing a mode set the OS
    /// already released when it refused to assign it. A model dropped with violations not
    /// taken fails its test.
    pub fn take_violations(&self) -> Vec<String> {
        registry().violations.remove(&self.id).unwrap_or_default()
    }
}

impl Drop for VidPnModel {
    fn drop(&mut self) {
        let mut reg = registry();
        let id = self.id;
        reg.consumed.retain(|_, vidpn| *vidpn != id);
        let violations = reg.violations.remove(&id).unwrap_or_default();
        reg.objects.retain(|&key, object| {
            key != id
                && match object {
                    Object::Topology(t) => t.vidpn != id,
                    Object::SourceSet(s) => s.vidpn != id,
                    Object::TargetSet(s) => s.vidpn != id,
                    _ => true,
                }
        });
        drop(reg);
        if !violations.is_empty() && !std::thread::panicking() {
            #[allow(clippy::panic)] // test support: a broken rule fails the test
            {
                panic!("the driver broke VidPN rules: {violations:#?}");
            }
        }
    }
}

/// A monitor source mode set (what the OS knows the monitor on one target accepts).
pub struct MonitorModeSet {
    id: u64,
}

impl MonitorModeSet {
    /// An empty set for `target` of the adapter whose `DeviceHandle` is `adapter`.
    pub fn new(adapter: HANDLE, target: u32) -> Self {
        let mut set = SetObj::new(0, target, true);
        set.adapter = adapter as usize;
        let id = registry().insert(Object::MonitorSet(set));
        MonitorModeSet { id }
    }

    /// The `D3DKMDT_HMONITORSOURCEMODESET` for `DXGKARG_RECOMMENDMONITORMODES`.
    pub fn handle(&self) -> D3DKMDT_HMONITORSOURCEMODESET {
        handle_of(self.id)
    }

    /// The interface for `DXGKARG_RECOMMENDMONITORMODES`.
    pub fn interface(&self) -> *const DXGK_MONITORSOURCEMODESET_INTERFACE {
        &MONITOR_SET_INTERFACE
    }

    /// Adds `mode` as the monitor's descriptor would (the set assigns the id).
    pub fn add(&self, mode: D3DKMDT_MONITOR_SOURCE_MODE) {
        let mut reg = registry();
        if let Some(Object::MonitorSet(set)) = reg.objects.get_mut(&self.id) {
            set.push(mode);
        }
    }

    /// Copies of the modes, in set order.
    pub fn modes(&self) -> Vec<D3DKMDT_MONITOR_SOURCE_MODE> {
        let mut reg = registry();
        match reg.objects.get_mut(&self.id) {
            Some(Object::MonitorSet(set)) => set.copies(),
            _ => Vec::new(),
        }
    }

    /// Mode infos the driver acquired or created and has not released.
    pub fn outstanding(&self) -> usize {
        let mut reg = registry();
        match reg.objects.get_mut(&self.id) {
            Some(Object::MonitorSet(set)) => set.outstanding(),
            _ => 0,
        }
    }
}

impl Drop for MonitorModeSet {
    fn drop(&mut self) {
        registry().objects.remove(&self.id);
    }
}
