//! Mode sets as dxgkrnl keeps them: VidPN source and target mode sets and monitor source mode
//! sets, and the three `DXGK_*MODESET_INTERFACE` tables that operate on them.
//!
//! Rules the simulator enforces (each broken rule is an error status, never a crash):
//! mode infos are lent by pointer and must be released exactly once; a created mode info is
//! either added or released; the driver adds modes only to sets it created (a VidPN's own
//! sets are read-only to it, monitor sets excepted); a duplicate mode is
//! `STATUS_GRAPHICS_MODE_ALREADY_IN_MODESET`; a malformed mode is refused; the handle of a
//! released set is dead, and using the handle of a set the OS released itself (a refused
//! assignment, see `iface.rs`) is a violation.

use std::ptr;

use viogpudo::ddi::*;

use super::registry::{id_of, registry, Loans, Object, Slot};

/// One mode set.
pub(crate) struct SetObj<M> {
    /// The owning VidPN (0 for monitor sets).
    pub vidpn: u64,
    /// The source or target this set describes.
    pub owner: u32,
    /// The adapter handle (monitor sets).
    pub adapter: usize,
    pub modes: Vec<Slot<M>>,
    /// Mode infos created and not yet added or released.
    pub pending: Vec<Slot<M>>,
    pub pinned: Option<u32>,
    pub loans: Loans,
    /// Outstanding acquisitions of the set handle itself.
    pub refs: u32,
    /// The VidPN's current set for `owner` (otherwise: created, awaiting assignment).
    pub assigned: bool,
    pub next_mode_id: u32,
}

impl<M: SimMode> SetObj<M> {
    pub(crate) fn new(vidpn: u64, owner: u32, assigned: bool) -> Self {
        SetObj {
            vidpn,
            owner,
            adapter: 0,
            modes: Vec::new(),
            pending: Vec::new(),
            pinned: None,
            loans: Loans::default(),
            refs: 0,
            assigned,
            next_mode_id: 1,
        }
    }

    /// Whether the driver may use this set's handle now.
    fn usable(&self) -> bool {
        self.vidpn == 0 || !self.assigned || self.refs > 0
    }

    /// Adds `mode` (test side), assigning its id; false for a duplicate.
    pub(crate) fn push(&mut self, mut mode: M) -> u32 {
        let id = self.next_mode_id;
        self.next_mode_id += 1;
        mode.set_id(id);
        self.modes.push(Slot::new(mode));
        id
    }

    /// Copies of the modes.
    pub(crate) fn copies(&self) -> Vec<M> {
        self.modes.iter().map(Slot::get).collect()
    }

    /// The pinned mode.
    pub(crate) fn pinned_mode(&self) -> Option<M> {
        let id = self.pinned?;
        self.modes.iter().map(Slot::get).find(|m| m.id() == id)
    }

    /// Objects the driver holds and has not given back.
    pub(crate) fn outstanding(&self) -> usize {
        self.loans.count() + self.pending.len() + self.refs as usize
    }
}

/// A mode type and the rules of its sets.
pub(crate) trait SimMode: Copy + Default + 'static {
    /// Status for a handle that is not a live set of this kind.
    const INVALID_SET: NTSTATUS;
    /// Status for a mode pointer or id that is not in the set, or a malformed mode.
    const INVALID_MODE: NTSTATUS;
    /// Whether the driver may add modes to a set it did not create.
    const DRIVER_MAY_EXTEND: bool;
    /// The set behind a registry object.
    fn set(object: &mut Object) -> Option<&mut SetObj<Self>>;
    fn id(&self) -> u32;
    fn set_id(&mut self, id: u32);
    /// Whether two modes describe the same mode (ids aside).
    fn same(&self, other: &Self) -> bool;
    /// Whether the mode is well formed.
    fn valid(&self) -> bool;
    /// Whether the mode is marked preferred.
    fn preferred(&self) -> bool {
        false
    }
}

fn same_signal(a: &D3DKMDT_VIDEO_SIGNAL_INFO, b: &D3DKMDT_VIDEO_SIGNAL_INFO) -> bool {
    a.VideoStandard == b.VideoStandard
        && (a.TotalSize.cx, a.TotalSize.cy) == (b.TotalSize.cx, b.TotalSize.cy)
        && (a.ActiveSize.cx, a.ActiveSize.cy) == (b.ActiveSize.cx, b.ActiveSize.cy)
        && (a.VSyncFreq.Numerator, a.VSyncFreq.Denominator)
            == (b.VSyncFreq.Numerator, b.VSyncFreq.Denominator)
        && a.scan_line_ordering() == b.scan_line_ordering()
}

fn valid_signal(s: &D3DKMDT_VIDEO_SIGNAL_INFO) -> bool {
    s.ActiveSize.cx != 0
        && s.ActiveSize.cy != 0
        && s.TotalSize.cx >= s.ActiveSize.cx
        && s.TotalSize.cy >= s.ActiveSize.cy
        && s.VSyncFreq.Denominator != 0
        && s.HSyncFreq.Denominator != 0
        && s.scan_line_ordering() != D3DDDI_VSSLO_UNINITIALIZED
}

impl SimMode for D3DKMDT_VIDPN_SOURCE_MODE {
    const INVALID_SET: NTSTATUS = STATUS_GRAPHICS_INVALID_VIDPN_SOURCEMODESET;
    const INVALID_MODE: NTSTATUS = STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE_MODE;
    const DRIVER_MAY_EXTEND: bool = false;
    fn set(object: &mut Object) -> Option<&mut SetObj<Self>> {
        match object {
            Object::SourceSet(s) => Some(s),
            _ => None,
        }
    }
    fn id(&self) -> u32 {
        self.Id
    }
    fn set_id(&mut self, id: u32) {
        self.Id = id;
    }
    fn same(&self, o: &Self) -> bool {
        let (a, b) = (&self.Format, &o.Format);
        self.Type == o.Type
            && (a.PrimSurfSize.cx, a.PrimSurfSize.cy) == (b.PrimSurfSize.cx, b.PrimSurfSize.cy)
            && (a.VisibleRegionSize.cx, a.VisibleRegionSize.cy)
                == (b.VisibleRegionSize.cx, b.VisibleRegionSize.cy)
            && a.Stride == b.Stride
            && a.PixelFormat == b.PixelFormat
            && a.ColorBasis == b.ColorBasis
            && a.PixelValueAccessMode == b.PixelValueAccessMode
    }
    fn valid(&self) -> bool {
        let f = &self.Format;
        self.Type == D3DKMDT_RMT_GRAPHICS
            && f.PrimSurfSize.cx != 0
            && f.PrimSurfSize.cy != 0
            && f.VisibleRegionSize.cx <= f.PrimSurfSize.cx
            && f.VisibleRegionSize.cy <= f.PrimSurfSize.cy
            && f.Stride != 0
            && f.PixelFormat != D3DDDIFMT_UNKNOWN
            && f.ColorBasis != D3DKMDT_CB_UNINITIALIZED
            && f.PixelValueAccessMode != D3DKMDT_PVAM_UNINITIALIZED
    }
}

impl SimMode for D3DKMDT_VIDPN_TARGET_MODE {
    const INVALID_SET: NTSTATUS = STATUS_GRAPHICS_INVALID_VIDPN_TARGETMODESET;
    const INVALID_MODE: NTSTATUS = STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET_MODE;
    const DRIVER_MAY_EXTEND: bool = false;
    fn set(object: &mut Object) -> Option<&mut SetObj<Self>> {
        match object {
            Object::TargetSet(s) => Some(s),
            _ => None,
        }
    }
    fn id(&self) -> u32 {
        self.Id
    }
    fn set_id(&mut self, id: u32) {
        self.Id = id;
    }
    fn same(&self, o: &Self) -> bool {
        same_signal(&self.VideoSignalInfo, &o.VideoSignalInfo)
    }
    fn valid(&self) -> bool {
        valid_signal(&self.VideoSignalInfo)
    }
    fn preferred(&self) -> bool {
        self.preference() == D3DKMDT_MP_PREFERRED
    }
}

impl SimMode for D3DKMDT_MONITOR_SOURCE_MODE {
    const INVALID_SET: NTSTATUS = STATUS_GRAPHICS_INVALID_MONITOR_SOURCEMODESET;
    const INVALID_MODE: NTSTATUS = STATUS_GRAPHICS_INVALID_MONITOR_SOURCE_MODE;
    const DRIVER_MAY_EXTEND: bool = true;
    fn set(object: &mut Object) -> Option<&mut SetObj<Self>> {
        match object {
            Object::MonitorSet(s) => Some(s),
            _ => None,
        }
    }
    fn id(&self) -> u32 {
        self.Id
    }
    fn set_id(&mut self, id: u32) {
        self.Id = id;
    }
    fn same(&self, o: &Self) -> bool {
        same_signal(&self.VideoSignalInfo, &o.VideoSignalInfo)
    }
    fn valid(&self) -> bool {
        valid_signal(&self.VideoSignalInfo)
            && self.Origin != D3DKMDT_MCO_UNINITIALIZED
            && self.ColorBasis != D3DKMDT_CB_UNINITIALIZED
            && self.Preference != D3DKMDT_MP_UNINITIALIZED
    }
    fn preferred(&self) -> bool {
        self.Preference == D3DKMDT_MP_PREFERRED
    }
}

/// Runs `f` on the live set `handle` names, under the registry lock.
fn with_set<M: SimMode, H>(handle: *mut H, f: impl FnOnce(&mut SetObj<M>) -> NTSTATUS) -> NTSTATUS {
    let mut reg = registry();
    let id = id_of(handle);
    match reg.objects.get_mut(&id).and_then(M::set) {
        Some(set) if set.usable() => f(set),
        _ => {
            reg.used_consumed_set(id, "a mode-set interface function");
            M::INVALID_SET
        }
    }
}

/// Writes `value` through a driver-supplied out-pointer.
///
/// # Safety
/// `out` is non-null and points at writable memory for a `T` (the driver's out-parameter).
unsafe fn put<T>(out: *mut T, value: T) {
    // SAFETY: the caller's contract.
    unsafe { out.write(value) }
}

/// Lends `mode` through `out`.
fn lend<M>(set_loans: &mut Loans, slot: &Slot<M>, out: *mut *const M) -> NTSTATUS
where
    M: SimMode,
{
    set_loans.lend(slot.ptr());
    // SAFETY: callers checked `out` for null; it is the driver's out-parameter.
    unsafe { put(out, slot.ptr().cast_const()) };
    STATUS_SUCCESS
}

pub(crate) unsafe extern "system" fn get_num_modes<M: SimMode, H>(
    handle: *mut H,
    out: *mut usize,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_set::<M, H>(handle, |set| {
        // SAFETY: checked non-null above; the driver's out-parameter.
        unsafe { put(out, set.modes.len()) };
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "system" fn acquire_first<M: SimMode, H>(
    handle: *mut H,
    out: *mut *const M,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_set::<M, H>(handle, |set| match set.modes.first() {
        Some(slot) => lend(&mut set.loans, slot, out),
        None => {
            // SAFETY: checked non-null above.
            unsafe { put(out, ptr::null()) };
            STATUS_GRAPHICS_DATASET_IS_EMPTY
        }
    })
}

pub(crate) unsafe extern "system" fn acquire_next<M: SimMode, H>(
    handle: *mut H,
    current: *const M,
    out: *mut *const M,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_set::<M, H>(handle, |set| {
        if !set.loans.is_lent(current) {
            return M::INVALID_MODE;
        }
        let Some(at) = set.modes.iter().position(|s| s.is(current)) else {
            return M::INVALID_MODE;
        };
        match set.modes.get(at + 1) {
            Some(slot) => lend(&mut set.loans, slot, out),
            None => {
                // SAFETY: checked non-null above.
                unsafe { put(out, ptr::null()) };
                STATUS_GRAPHICS_NO_MORE_ELEMENTS_IN_DATASET
            }
        }
    })
}

pub(crate) unsafe extern "system" fn acquire_pinned<M: SimMode, H>(
    handle: *mut H,
    out: *mut *const M,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_set::<M, H>(handle, |set| {
        let pinned = set.pinned;
        match set.modes.iter().find(|s| Some(s.get().id()) == pinned) {
            Some(slot) => lend(&mut set.loans, slot, out),
            None => {
                // SAFETY: checked non-null above.
                unsafe { put(out, ptr::null()) };
                STATUS_GRAPHICS_MODE_NOT_PINNED
            }
        }
    })
}

pub(crate) unsafe extern "system" fn acquire_preferred<M: SimMode, H>(
    handle: *mut H,
    out: *mut *const M,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_set::<M, H>(handle, |set| {
        match set.modes.iter().find(|s| s.get().preferred()) {
            Some(slot) => lend(&mut set.loans, slot, out),
            None => {
                // SAFETY: checked non-null above.
                unsafe { put(out, ptr::null()) };
                STATUS_GRAPHICS_NO_PREFERRED_MODE
            }
        }
    })
}

pub(crate) unsafe extern "system" fn release_mode<M: SimMode, H>(
    handle: *mut H,
    mode: *const M,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    with_set::<M, H>(handle, |set| {
        if let Some(at) = set.pending.iter().position(|s| s.is(mode)) {
            set.pending.remove(at);
            STATUS_SUCCESS
        } else if set.loans.give_back(mode) {
            STATUS_SUCCESS
        } else {
            M::INVALID_MODE
        }
    })
}

pub(crate) unsafe extern "system" fn create_mode<M: SimMode, H>(
    handle: *mut H,
    out: *mut *mut M,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    with_set::<M, H>(handle, |set| {
        let mut mode = M::default();
        mode.set_id(set.next_mode_id);
        set.next_mode_id += 1;
        let slot = Slot::new(mode);
        // SAFETY: checked non-null above.
        unsafe { put(out, slot.ptr()) };
        set.pending.push(slot);
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "system" fn add_mode<M: SimMode, H>(
    handle: *mut H,
    mode: *mut M,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    with_set::<M, H>(handle, |set| {
        if set.assigned && !M::DRIVER_MAY_EXTEND {
            return M::INVALID_SET;
        }
        let Some(at) = set.pending.iter().position(|s| s.is(mode)) else {
            return M::INVALID_MODE;
        };
        let candidate = set.pending[at].get();
        if !candidate.valid() {
            return M::INVALID_MODE;
        }
        if set.modes.iter().any(|s| s.get().id() == candidate.id()) {
            return STATUS_GRAPHICS_MODE_ID_MUST_BE_UNIQUE;
        }
        if set.modes.iter().any(|s| s.get().same(&candidate)) {
            return STATUS_GRAPHICS_MODE_ALREADY_IN_MODESET;
        }
        let slot = set.pending.remove(at);
        set.modes.push(slot);
        STATUS_SUCCESS
    })
}

pub(crate) unsafe extern "system" fn pin_mode<M: SimMode, H>(handle: *mut H, id: u32) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    with_set::<M, H>(handle, |set| {
        if set.modes.iter().any(|s| s.get().id() == id) {
            set.pinned = Some(id);
            STATUS_SUCCESS
        } else {
            M::INVALID_MODE
        }
    })
}

type Src = D3DKMDT_VIDPN_SOURCE_MODE;
type Tgt = D3DKMDT_VIDPN_TARGET_MODE;
type Mon = D3DKMDT_MONITOR_SOURCE_MODE;
type HSrc = D3DKMDT_HVIDPNSOURCEMODESET__;
type HTgt = D3DKMDT_HVIDPNTARGETMODESET__;
type HMon = D3DKMDT_HMONITORSOURCEMODESET__;

/// `DXGK_VIDPNSOURCEMODESET_INTERFACE`.
pub(crate) static SOURCE_SET_INTERFACE: DXGK_VIDPNSOURCEMODESET_INTERFACE =
    DXGK_VIDPNSOURCEMODESET_INTERFACE {
        pfnGetNumModes: Some(get_num_modes::<Src, HSrc>),
        pfnAcquireFirstModeInfo: Some(acquire_first::<Src, HSrc>),
        pfnAcquireNextModeInfo: Some(acquire_next::<Src, HSrc>),
        pfnAcquirePinnedModeInfo: Some(acquire_pinned::<Src, HSrc>),
        pfnReleaseModeInfo: Some(release_mode::<Src, HSrc>),
        pfnCreateNewModeInfo: Some(create_mode::<Src, HSrc>),
        pfnAddMode: Some(add_mode::<Src, HSrc>),
        pfnPinMode: Some(pin_mode::<Src, HSrc>),
    };

/// `DXGK_VIDPNTARGETMODESET_INTERFACE`.
pub(crate) static TARGET_SET_INTERFACE: DXGK_VIDPNTARGETMODESET_INTERFACE =
    DXGK_VIDPNTARGETMODESET_INTERFACE {
        pfnGetNumModes: Some(get_num_modes::<Tgt, HTgt>),
        pfnAcquireFirstModeInfo: Some(acquire_first::<Tgt, HTgt>),
        pfnAcquireNextModeInfo: Some(acquire_next::<Tgt, HTgt>),
        pfnAcquirePinnedModeInfo: Some(acquire_pinned::<Tgt, HTgt>),
        pfnReleaseModeInfo: Some(release_mode::<Tgt, HTgt>),
        pfnCreateNewModeInfo: Some(create_mode::<Tgt, HTgt>),
        pfnAddMode: Some(add_mode::<Tgt, HTgt>),
        pfnPinMode: Some(pin_mode::<Tgt, HTgt>),
    };

/// `DXGK_MONITORSOURCEMODESET_INTERFACE`.
pub(crate) static MONITOR_SET_INTERFACE: DXGK_MONITORSOURCEMODESET_INTERFACE =
    DXGK_MONITORSOURCEMODESET_INTERFACE {
        pfnGetNumModes: Some(get_num_modes::<Mon, HMon>),
        pfnAcquirePreferredModeInfo: Some(acquire_preferred::<Mon, HMon>),
        pfnAcquireFirstModeInfo: Some(acquire_first::<Mon, HMon>),
        pfnAcquireNextModeInfo: Some(acquire_next::<Mon, HMon>),
        pfnCreateNewModeInfo: Some(create_mode::<Mon, HMon>),
        pfnAddMode: Some(add_mode::<Mon, HMon>),
        pfnReleaseModeInfo: Some(release_mode::<Mon, HMon>),
    };
