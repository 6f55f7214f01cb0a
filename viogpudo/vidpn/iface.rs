//! Safe wrappers over the VidPN interface tables dxgkrnl lends during a DDI call: the VidPN,
//! its topology, its source/target mode sets, and a monitor source mode set.
//!
//! Each wrapper is built by one `unsafe` constructor whose contract is "this table and
//! handle came from the OS for the current DDI call"; after that, every callback is looked up
//! (`None` → [`MISSING`]), every out-pointer checked for null, and every acquired object
//! (path info, mode info, mode set) is copied out and released again before the method
//! returns, so no OS-owned memory outlives a method. Mode sets acquired or created from a
//! VidPN are released on drop unless they were assigned.

use core::marker::PhantomData;
use core::ptr;

use super::alloc::vec::Vec;
use super::check;
use crate::ddi::*;

/// Result of an OS interface call.
pub(crate) type Status<T> = Result<T, NTSTATUS>;

/// A null callback or a null pointer where the OS promised an object.
pub(crate) const MISSING: NTSTATUS = STATUS_GRAPHICS_INTERNAL_ERROR;

/// Paths or modes enumerated before giving up on an OS that never ends a list.
const MAX_ITEMS: usize = 4096;

/// A VidPN object and its interface.
pub(crate) struct VidPn<'a> {
    handle: D3DKMDT_HVIDPN,
    iface: &'a DXGK_VIDPN_INTERFACE,
}

/// The VidPN interface of `handle` through `DxgkCbQueryVidPnInterface`.
///
/// # Safety
/// `dxgk` is the interface dxgkrnl passed to StartDevice, and the caller is inside a DDI call
/// in which the OS keeps `handle` and the tables it returns valid.
pub(crate) unsafe fn query_vidpn(
    dxgk: &DXGKRNL_INTERFACE,
    handle: D3DKMDT_HVIDPN,
) -> Status<VidPn<'_>> {
    if handle.is_null() {
        return Err(STATUS_GRAPHICS_INVALID_VIDPN);
    }
    let query = dxgk.DxgkCbQueryVidPnInterface.ok_or(MISSING)?;
    let mut table: *const DXGK_VIDPN_INTERFACE = ptr::null();
    // SAFETY: dxgkrnl's callback (caller's contract) with a live out-pointer.
    check(unsafe { query(handle, DXGK_VIDPN_INTERFACE_VERSION_V1, &mut table) })?;
    // SAFETY: on success the OS points `table` at an interface valid during this DDI call.
    let iface = unsafe { table.as_ref() }.ok_or(MISSING)?;
    Ok(VidPn { handle, iface })
}

impl<'a> VidPn<'a> {
    /// The topology of this VidPN.
    pub(crate) fn topology(&self) -> Status<Topology<'a>> {
        let get = self.iface.pfnGetTopology.ok_or(MISSING)?;
        let mut handle: D3DKMDT_HVIDPNTOPOLOGY = ptr::null_mut();
        let mut table: *const DXGK_VIDPNTOPOLOGY_INTERFACE = ptr::null();
        // SAFETY: OS callback from a table valid for this call (constructor contract).
        check(unsafe { get(self.handle, &mut handle, &mut table) })?;
        // SAFETY: on success the table is valid for the rest of the DDI call.
        let iface = unsafe { table.as_ref() }.ok_or(MISSING)?;
        if handle.is_null() {
            return Err(MISSING);
        }
        Ok(Topology { handle, iface })
    }

    /// The source mode set of `source` (acquired; released on drop).
    pub(crate) fn source_modes(&self, source: u32) -> Status<OwnedModeSet<'a, SourceKind>> {
        let acquire = self.iface.pfnAcquireSourceModeSet;
        self.open(source, acquire.ok_or(MISSING)?)
    }

    /// A new, empty source mode set for `source` (released on drop unless assigned).
    pub(crate) fn new_source_modes(&self, source: u32) -> Status<OwnedModeSet<'a, SourceKind>> {
        let create = self.iface.pfnCreateNewSourceModeSet;
        self.open(source, create.ok_or(MISSING)?)
    }

    /// The target mode set of `target` (acquired; released on drop).
    pub(crate) fn target_modes(&self, target: u32) -> Status<OwnedModeSet<'a, TargetKind>> {
        let acquire = self.iface.pfnAcquireTargetModeSet;
        self.open(target, acquire.ok_or(MISSING)?)
    }

    /// A new, empty target mode set for `target` (released on drop unless assigned).
    pub(crate) fn new_target_modes(&self, target: u32) -> Status<OwnedModeSet<'a, TargetKind>> {
        let create = self.iface.pfnCreateNewTargetModeSet;
        self.open(target, create.ok_or(MISSING)?)
    }

    fn open<K: ModeKind>(
        &self,
        id: u32,
        open: unsafe extern "system" fn(
            D3DKMDT_HVIDPN,
            u32,
            *mut K::Handle,
            *mut *const K::Iface,
        ) -> NTSTATUS,
    ) -> Status<OwnedModeSet<'a, K>> {
        let mut handle = K::null_handle();
        let mut table: *const K::Iface = ptr::null();
        // SAFETY: OS callback from a table valid for this call (constructor contract).
        check(unsafe { open(self.handle, id, &mut handle, &mut table) })?;
        // SAFETY: on success the table is valid for the rest of the DDI call.
        let iface = unsafe { table.as_ref() };
        let owned = OwnedModeSet {
            vidpn: self.handle,
            id,
            set: ModeSet {
                handle,
                table: iface.map(K::table).unwrap_or_default(),
                _call: PhantomData,
            },
            release: K::release(self.iface),
            assign: K::assign(self.iface),
            live: !K::is_null(handle),
        };
        // Checked after building the guard, so a half-valid answer is still released.
        if iface.is_none() || K::is_null(handle) {
            return Err(MISSING);
        }
        Ok(owned)
    }
}

/// The paths of a VidPN.
pub(crate) struct Topology<'a> {
    handle: D3DKMDT_HVIDPNTOPOLOGY,
    iface: &'a DXGK_VIDPNTOPOLOGY_INTERFACE,
}

impl Topology<'_> {
    /// Copies of every path, in the OS's order.
    pub(crate) fn paths(&self) -> Status<Vec<D3DKMDT_VIDPN_PRESENT_PATH>> {
        let first = self.iface.pfnAcquireFirstPathInfo.ok_or(MISSING)?;
        let next = self.iface.pfnAcquireNextPathInfo.ok_or(MISSING)?;
        let release = self.iface.pfnReleasePathInfo.ok_or(MISSING)?;
        let mut paths = Vec::new();
        let mut current: *const D3DKMDT_VIDPN_PRESENT_PATH = ptr::null();
        // SAFETY: OS callback from a table valid for this call; out-pointer is live.
        check(unsafe { first(self.handle, &mut current) })?;
        while !current.is_null() {
            // SAFETY: a non-null path info the OS handed out and we have not released.
            let path = unsafe { *current };
            let mut following: *const D3DKMDT_VIDPN_PRESENT_PATH = ptr::null();
            // SAFETY: as above; `current` is still acquired.
            let status = unsafe { next(self.handle, current, &mut following) };
            // SAFETY: `current` was acquired from this topology and is released once.
            let released = unsafe { release(self.handle, current) };
            check(status)?;
            check(released)?;
            let room = if paths.len() >= MAX_ITEMS {
                Err(STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY)
            } else {
                paths.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)
            };
            if let Err(status) = room {
                if !following.is_null() {
                    // SAFETY: acquired just above, released once.
                    unsafe { release(self.handle, following) };
                }
                return Err(status);
            }
            #[allow(clippy::disallowed_methods)] // reserved just above: no allocation
            paths.push(path);
            current = following;
        }
        Ok(paths)
    }

    /// Updates the support fields (scaling/rotation support) of the path `path` names.
    pub(crate) fn update_support(&self, path: &D3DKMDT_VIDPN_PRESENT_PATH) -> Status<()> {
        let update = self.iface.pfnUpdatePathSupportInfo.ok_or(MISSING)?;
        // SAFETY: OS callback from a table valid for this call; `path` is a live local copy.
        check(unsafe { update(self.handle, path) })?;
        Ok(())
    }
}

/// The OS callbacks of one mode set, whatever its kind (any may be missing).
pub(crate) struct ModeTable<H, M> {
    first: Option<unsafe extern "system" fn(H, *mut *const M) -> NTSTATUS>,
    next: Option<unsafe extern "system" fn(H, *const M, *mut *const M) -> NTSTATUS>,
    /// The pinned mode (VidPN sets) or the preferred mode (monitor sets).
    special: Option<unsafe extern "system" fn(H, *mut *const M) -> NTSTATUS>,
    release: Option<unsafe extern "system" fn(H, *const M) -> NTSTATUS>,
    create: Option<unsafe extern "system" fn(H, *mut *mut M) -> NTSTATUS>,
    add: Option<unsafe extern "system" fn(H, *mut M) -> NTSTATUS>,
}

impl<H, M> Default for ModeTable<H, M> {
    fn default() -> Self {
        Self {
            first: None,
            next: None,
            special: None,
            release: None,
            create: None,
            add: None,
        }
    }
}

/// A kind of mode set: its handle, mode and interface types.
pub(crate) trait ModeKind {
    /// The mode-set handle type.
    type Handle: Copy;
    /// The mode-info type.
    type Mode: Copy;
    /// The mode-set interface table.
    type Iface;
    /// A null handle.
    fn null_handle() -> Self::Handle;
    /// Whether `handle` is null.
    fn is_null(handle: Self::Handle) -> bool;
    /// The callbacks of `iface`.
    fn table(iface: &Self::Iface) -> ModeTable<Self::Handle, Self::Mode>;
    /// `pfnRelease*ModeSet` of the VidPN interface.
    fn release(vidpn: &DXGK_VIDPN_INTERFACE) -> ReleaseFn<Self::Handle> {
        let _ = vidpn;
        None
    }
    /// `pfnAssign*ModeSet` of the VidPN interface.
    fn assign(vidpn: &DXGK_VIDPN_INTERFACE) -> AssignFn<Self::Handle> {
        let _ = vidpn;
        None
    }
    /// Whether a `pfnAssign*ModeSet` that failed with `status` left the set with the driver.
    ///
    /// The pfnAssignSourceModeSet / pfnAssignTargetModeSet pages: only a failure on an invalid
    /// input (`STATUS_GRAPHICS_INVALID_VIDPN`, `..._INVALID_VIDEO_PRESENT_SOURCE/TARGET`,
    /// `..._INVALID_VIDPN_SOURCEMODESET/TARGETMODESET`) keeps the set; after any other failure
    /// (an empty set, one without the pinned mode, one created for another source/target) the
    /// OS has released it, and releasing it again would free it twice.
    fn kept_on_failure(status: NTSTATUS) -> bool {
        status == STATUS_GRAPHICS_INVALID_VIDPN
    }
}

/// `pfnRelease*ModeSet`.
pub(crate) type ReleaseFn<H> = Option<unsafe extern "system" fn(D3DKMDT_HVIDPN, H) -> NTSTATUS>;
/// `pfnAssign*ModeSet`.
pub(crate) type AssignFn<H> = Option<unsafe extern "system" fn(D3DKMDT_HVIDPN, u32, H) -> NTSTATUS>;

macro_rules! mode_kind {
    ($kind:ident, $handle:ty, $mode:ty, $iface:ty, $special:ident
     $(, $release:ident, $assign:ident, $bad_id:ident, $bad_set:ident)?) => {
        #[doc = concat!("Mode sets of type `", stringify!($iface), "`.")]
        pub(crate) enum $kind {}
        impl ModeKind for $kind {
            type Handle = $handle;
            type Mode = $mode;
            type Iface = $iface;
            fn null_handle() -> $handle {
                ptr::null_mut()
            }
            fn is_null(handle: $handle) -> bool {
                handle.is_null()
            }
            fn table(i: &$iface) -> ModeTable<$handle, $mode> {
                ModeTable {
                    first: i.pfnAcquireFirstModeInfo,
                    next: i.pfnAcquireNextModeInfo,
                    special: i.$special,
                    release: i.pfnReleaseModeInfo,
                    create: i.pfnCreateNewModeInfo,
                    add: i.pfnAddMode,
                }
            }
            $(
                fn release(v: &DXGK_VIDPN_INTERFACE) -> ReleaseFn<$handle> {
                    v.$release
                }
                fn assign(v: &DXGK_VIDPN_INTERFACE) -> AssignFn<$handle> {
                    v.$assign
                }
                fn kept_on_failure(status: NTSTATUS) -> bool {
                    [STATUS_GRAPHICS_INVALID_VIDPN, $bad_id, $bad_set].contains(&status)
                }
            )?
        }
    };
}

mode_kind!(
    SourceKind,
    D3DKMDT_HVIDPNSOURCEMODESET,
    D3DKMDT_VIDPN_SOURCE_MODE,
    DXGK_VIDPNSOURCEMODESET_INTERFACE,
    pfnAcquirePinnedModeInfo,
    pfnReleaseSourceModeSet,
    pfnAssignSourceModeSet,
    STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE,
    STATUS_GRAPHICS_INVALID_VIDPN_SOURCEMODESET
);
mode_kind!(
    TargetKind,
    D3DKMDT_HVIDPNTARGETMODESET,
    D3DKMDT_VIDPN_TARGET_MODE,
    DXGK_VIDPNTARGETMODESET_INTERFACE,
    pfnAcquirePinnedModeInfo,
    pfnReleaseTargetModeSet,
    pfnAssignTargetModeSet,
    STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET,
    STATUS_GRAPHICS_INVALID_VIDPN_TARGETMODESET
);
mode_kind!(
    MonitorKind,
    D3DKMDT_HMONITORSOURCEMODESET,
    D3DKMDT_MONITOR_SOURCE_MODE,
    DXGK_MONITORSOURCEMODESET_INTERFACE,
    pfnAcquirePreferredModeInfo
);

/// A mode set: handle plus callbacks, valid for the current DDI call.
pub(crate) struct ModeSet<'a, K: ModeKind> {
    handle: K::Handle,
    table: ModeTable<K::Handle, K::Mode>,
    _call: PhantomData<&'a K::Iface>,
}

/// A monitor source mode set handed to `DxgkDdiRecommendMonitorModes`.
///
/// # Safety
/// `handle` and `iface` are the ones the OS passed to the current DDI call.
pub(crate) unsafe fn monitor_modes<'a>(
    handle: D3DKMDT_HMONITORSOURCEMODESET,
    iface: *const DXGK_MONITORSOURCEMODESET_INTERFACE,
) -> Status<ModeSet<'a, MonitorKind>> {
    if handle.is_null() {
        return Err(STATUS_GRAPHICS_INVALID_MONITOR_SOURCEMODESET);
    }
    // SAFETY: the caller guarantees a non-null `iface` points at the OS's table.
    let table = unsafe { iface.as_ref() }.ok_or(STATUS_INVALID_PARAMETER)?;
    Ok(ModeSet {
        handle,
        table: MonitorKind::table(table),
        _call: PhantomData,
    })
}

impl<K: ModeKind> ModeSet<'_, K> {
    /// The pinned mode (VidPN sets) or the preferred mode (monitor sets), copied.
    pub(crate) fn special(&self) -> Status<Option<K::Mode>> {
        let get = self.table.special.ok_or(MISSING)?;
        let release = self.table.release.ok_or(MISSING)?;
        let mut mode: *const K::Mode = ptr::null();
        // SAFETY: OS callback of this set (constructor contract); out-pointer is live.
        // "Not pinned" / "no preferred mode" are success codes with a null mode.
        check(unsafe { get(self.handle, &mut mode) })?;
        if mode.is_null() {
            return Ok(None);
        }
        // SAFETY: a non-null mode info the OS handed out and we have not released.
        let copy = unsafe { *mode };
        // SAFETY: acquired just above from this set, released once.
        check(unsafe { release(self.handle, mode) })?;
        Ok(Some(copy))
    }

    /// Copies of every mode in the set.
    pub(crate) fn modes(&self) -> Status<Vec<K::Mode>> {
        let first = self.table.first.ok_or(MISSING)?;
        let next = self.table.next.ok_or(MISSING)?;
        let release = self.table.release.ok_or(MISSING)?;
        let mut modes = Vec::new();
        let mut current: *const K::Mode = ptr::null();
        // SAFETY: OS callback of this set; out-pointer is live.
        check(unsafe { first(self.handle, &mut current) })?;
        while !current.is_null() {
            // SAFETY: a non-null mode info the OS handed out and we have not released.
            let mode = unsafe { *current };
            let mut following: *const K::Mode = ptr::null();
            // SAFETY: as above; `current` is still acquired.
            let status = unsafe { next(self.handle, current, &mut following) };
            // SAFETY: `current` was acquired from this set and is released once.
            let released = unsafe { release(self.handle, current) };
            check(status)?;
            check(released)?;
            let room = if modes.len() >= MAX_ITEMS {
                Err(STATUS_GRAPHICS_INVALID_VIDPN_SOURCEMODESET)
            } else {
                modes.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)
            };
            if let Err(status) = room {
                if !following.is_null() {
                    // SAFETY: acquired just above, released once.
                    unsafe { release(self.handle, following) };
                }
                return Err(status);
            }
            #[allow(clippy::disallowed_methods)] // reserved just above: no allocation
            modes.push(mode);
            current = following;
        }
        Ok(modes)
    }

    /// Creates a mode info, lets `fill` describe it (the OS-assigned `Id` must be kept), and
    /// adds it. `Ok(false)`: the set already had that mode.
    pub(crate) fn add(&self, fill: impl FnOnce(&mut K::Mode)) -> Status<bool> {
        let create = self.table.create.ok_or(MISSING)?;
        let add = self.table.add.ok_or(MISSING)?;
        let release = self.table.release.ok_or(MISSING)?;
        let mut mode: *mut K::Mode = ptr::null_mut();
        // SAFETY: OS callback of this set; out-pointer is live.
        check(unsafe { create(self.handle, &mut mode) })?;
        // SAFETY: on success the OS hands us a mode info we own until added or released.
        let info = unsafe { mode.as_mut() }.ok_or(MISSING)?;
        fill(info);
        // SAFETY: `mode` is the info created above, not yet added or released.
        let status = unsafe { add(self.handle, mode) };
        if nt_success(status) {
            return Ok(true);
        }
        // A mode the set refused stays ours to release.
        // SAFETY: created above from this set and not added; released once.
        unsafe { release(self.handle, mode) };
        if status == STATUS_GRAPHICS_MODE_ALREADY_IN_MODESET {
            Ok(false)
        } else {
            Err(status)
        }
    }
}

/// A mode set acquired or created from a VidPN: released on drop unless assigned (or
/// released by the OS when it refused the assignment).
pub(crate) struct OwnedModeSet<'a, K: ModeKind> {
    vidpn: D3DKMDT_HVIDPN,
    id: u32,
    set: ModeSet<'a, K>,
    release: ReleaseFn<K::Handle>,
    assign: AssignFn<K::Handle>,
    live: bool,
}

impl<'a, K: ModeKind> OwnedModeSet<'a, K> {
    /// The mode set itself.
    pub(crate) fn set(&self) -> &ModeSet<'a, K> {
        &self.set
    }

    /// The pinned mode, copied.
    pub(crate) fn pinned(&self) -> Status<Option<K::Mode>> {
        self.set.special()
    }

    /// Makes this (new, non-empty) set the VidPN's mode set of its source/target; the VidPN
    /// takes it over. A set the OS refused is released on drop only when the OS left it to
    /// us ([`ModeKind::kept_on_failure`]); otherwise the OS already released it. Callers never
    /// assign an empty set (the OS refuses it).
    pub(crate) fn assign(mut self) -> Status<()> {
        let assign = self.assign.ok_or(MISSING)?;
        // SAFETY: OS callback from the VidPN table; the set is live and not yet assigned.
        let status = unsafe { assign(self.vidpn, self.id, self.set.handle) };
        if nt_success(status) || !K::kept_on_failure(status) {
            // Taken over by the VidPN, or released by the OS on a refusal.
            self.live = false;
        }
        check(status)?;
        Ok(())
    }
}

impl<K: ModeKind> Drop for OwnedModeSet<'_, K> {
    fn drop(&mut self) {
        if let (true, Some(release)) = (self.live, self.release) {
            // Nothing to do about a failed release; the OS reclaims the set with the VidPN.
            // SAFETY: the set was acquired/created from this VidPN and not assigned.
            unsafe { release(self.vidpn, self.set.handle) };
        }
    }
}
