//! How dxgkrnl calls a DDI: at which IRQL, and what else may run in the driver meanwhile.
//!
//! From Microsoft's "Threading and synchronization model of display miniport driver" pages and
//! each DDI's own page (`../shared/windows-rules/`):
//! - **Exclusive** (Level 2 and 3: only the calling thread is in the driver): AddDevice,
//!   StartDevice, StopDevice, RemoveDevice, Unload, QueryChildRelations, SetPowerState,
//!   CommitVidPn, SetVidPnSourceVisibility, UpdateActiveVidPnPresentPath,
//!   RecommendMonitorModes, QueryInterface, ControlInterrupt, StopDeviceAndRelease... . They
//!   take dxgkrnl's adapter lock for writing.
//! - **Shared** (Level 0 and the child I/O class): PresentDisplayOnly, IsSupportedVidPn,
//!   EnumVidPnCofuncModality, QueryChildStatus, QueryDeviceDescriptor, Escape, ... . They take
//!   it for reading, so they overlap each other.
//! - **Pointer class**: SetPointerPosition and SetPointerShape never overlap each other, and
//!   their pages say they run independently of every other DDI: they take only their class
//!   lock, so they overlap the exclusive DDIs too (the stricter reading).
//! - **Unsynchronized**: QueryAdapterInfo (documented to overlap even SetPowerState; the
//!   stricter reading lets it overlap everything), NotifySurpriseRemoval, the ISR and DPC
//!   (delivered by `adapter.rs` at any time) and the bugcheck screen (the other processors
//!   are frozen, whatever they held).
//!
//! IRQL: PASSIVE_LEVEL for every DDI but the ISR (DIRQL), the DPC (DISPATCH_LEVEL) and
//! SystemDisplayEnable/Write (HIGH_LEVEL; the simulator also calls them at DISPATCH_LEVEL).

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// What a DDI may overlap (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sync {
    Exclusive,
    Shared,
    Pointer,
    Unsynchronized,
}

/// The synchronization of DDI `name`.
pub(crate) fn sync_of(name: &str) -> Sync {
    match name {
        "DxgkDdiAddDevice"
        | "DxgkDdiStartDevice"
        | "DxgkDdiStopDevice"
        | "DxgkDdiRemoveDevice"
        | "DxgkDdiUnload"
        | "DxgkDdiQueryChildRelations"
        | "DxgkDdiSetPowerState"
        | "DxgkDdiCommitVidPn"
        | "DxgkDdiSetVidPnSourceVisibility"
        | "DxgkDdiUpdateActiveVidPnPresentPath"
        | "DxgkDdiRecommendMonitorModes"
        | "DxgkDdiQueryInterface"
        | "DxgkDdiControlInterrupt"
        | "DxgkDdiDispatchIoRequest"
        | "DxgkDdiNotifyAcpiEvent"
        | "DxgkDdiSetPalette"
        | "DxgkDdiStopDeviceAndReleasePostDisplayOwnership" => Sync::Exclusive,
        "DxgkDdiSetPointerPosition" | "DxgkDdiSetPointerShape" => Sync::Pointer,
        "DxgkDdiQueryAdapterInfo"
        | "DxgkDdiNotifySurpriseRemoval"
        | "DxgkDdiSystemDisplayEnable"
        | "DxgkDdiSystemDisplayWrite" => Sync::Unsynchronized,
        _ => Sync::Shared,
    }
}

/// dxgkrnl's per-adapter DDI locks.
#[derive(Debug, Default)]
pub(crate) struct DdiLocks {
    adapter: RwLock<()>,
    pointer: Mutex<()>,
}

/// Held while a DDI runs.
pub(crate) enum DdiGuard<'a> {
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'a, ()>),
    Shared(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
    Pointer(#[allow(dead_code)] MutexGuard<'a, ()>),
    None,
}

impl DdiLocks {
    /// Waits until DDI `name` may run, as dxgkrnl does before calling it.
    pub(crate) fn enter(&self, name: &str) -> DdiGuard<'_> {
        match sync_of(name) {
            Sync::Exclusive => {
                DdiGuard::Exclusive(self.adapter.write().unwrap_or_else(PoisonError::into_inner))
            }
            Sync::Shared => {
                DdiGuard::Shared(self.adapter.read().unwrap_or_else(PoisonError::into_inner))
            }
            Sync::Pointer => {
                DdiGuard::Pointer(self.pointer.lock().unwrap_or_else(PoisonError::into_inner))
            }
            Sync::Unsynchronized => DdiGuard::None,
        }
    }
}
