//! The handle table: every VidPN object the simulated dxgkrnl hands out (VidPNs, topologies,
//! mode sets) lives here under a numeric id, and its handle is that id shifted into a
//! pointer-sized value. A handle that does not name a live object of the expected kind is
//! rejected with the status dxgkrnl would give, so a driver that keeps a released handle or
//! passes one kind for another is caught.

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

use viogpudo::ddi::*;

use super::modeset::SetObj;

/// A value at a stable heap address that the driver may hold a pointer to. All access goes
/// through the raw pointer, so the driver's copy and ours never alias as Rust references.
pub(crate) struct Slot<T>(NonNull<T>);

// SAFETY: a slot owns its value exclusively (like a Box); the raw pointers inside DDI values
// (gamma ramp data) are never dereferenced by the simulator.
unsafe impl<T> Send for Slot<T> {}

impl<T: Copy> Slot<T> {
    pub(crate) fn new(value: T) -> Self {
        Slot(NonNull::from(Box::leak(Box::new(value))))
    }

    pub(crate) fn ptr(&self) -> *mut T {
        self.0.as_ptr()
    }

    pub(crate) fn get(&self) -> T {
        // SAFETY: the slot owns a live, initialized `T` until it is dropped.
        unsafe { self.0.as_ptr().read() }
    }

    pub(crate) fn set(&self, value: T) {
        // SAFETY: as in `get`; nobody holds a reference into the slot.
        unsafe { self.0.as_ptr().write(value) }
    }

    pub(crate) fn is(&self, ptr: *const T) -> bool {
        std::ptr::eq(self.0.as_ptr(), ptr)
    }
}

impl<T> Drop for Slot<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` in `new` and is freed only here.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// Acquisition counts of objects handed out by pointer (path infos, mode infos).
#[derive(Default)]
pub(crate) struct Loans(BTreeMap<usize, u32>);

impl Loans {
    pub(crate) fn lend<T>(&mut self, ptr: *const T) {
        *self.0.entry(ptr as usize).or_default() += 1;
    }

    /// Ends one loan of `ptr`; false when it was not lent.
    pub(crate) fn give_back<T>(&mut self, ptr: *const T) -> bool {
        match self.0.get_mut(&(ptr as usize)) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                self.0.remove(&(ptr as usize));
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_lent<T>(&self, ptr: *const T) -> bool {
        self.0.contains_key(&(ptr as usize))
    }

    pub(crate) fn count(&self) -> usize {
        self.0.values().map(|&n| n as usize).sum()
    }
}

/// A VidPN: its adapter's size, its topology object and its mode sets.
pub(crate) struct VidPnObj {
    /// Sources = targets of the adapter (ids `0..sources`).
    pub sources: u32,
    pub topology: u64,
    pub source_sets: BTreeMap<u32, u64>,
    pub target_sets: BTreeMap<u32, u64>,
}

/// The paths of a VidPN.
pub(crate) struct TopologyObj {
    pub vidpn: u64,
    pub paths: Vec<Slot<D3DKMDT_VIDPN_PRESENT_PATH>>,
    /// Created with `pfnCreateNewPathInfo`, not yet added or released.
    pub pending: Vec<Slot<D3DKMDT_VIDPN_PRESENT_PATH>>,
    pub loans: Loans,
}

/// Every kind of object behind a handle.
pub(crate) enum Object {
    VidPn(VidPnObj),
    Topology(TopologyObj),
    SourceSet(SetObj<D3DKMDT_VIDPN_SOURCE_MODE>),
    TargetSet(SetObj<D3DKMDT_VIDPN_TARGET_MODE>),
    MonitorSet(SetObj<D3DKMDT_MONITOR_SOURCE_MODE>),
}

/// All live objects of all simulated adapters.
pub(crate) struct Registry {
    next: u64,
    pub objects: BTreeMap<u64, Object>,
    /// Mode sets the OS released itself when it refused to assign them (set id -> VidPN id):
    /// any later use of one by the driver is a violation (a double free on Windows).
    pub consumed: BTreeMap<u64, u64>,
    /// Violations recorded on a thread without a simulated adapter, per VidPN id (read by
    /// [`VidPnModel::take_violations`](super::VidPnModel::take_violations)).
    pub violations: BTreeMap<u64, Vec<String>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: FIRST_ID,
    objects: BTreeMap::new(),
    consumed: BTreeMap::new(),
    violations: BTreeMap::new(),
});

/// Ids start high so a handle never looks like a small integer or a null-ish pointer.
const FIRST_ID: u64 = 0x5A1D_0000;
/// Handles are ids shifted left by this much (16-byte "aligned", never null).
const HANDLE_SHIFT: u32 = 4;

/// Locks the registry (a panicking test does not poison it for the others).
/// Every VidPN and monitor interface function starts here, so this is where their documented
/// IRQL (PASSIVE_LEVEL, every one of them) is checked.
pub(crate) fn registry() -> MutexGuard<'static, Registry> {
    viogpudo::os::hosted::irql::require_at_most(
        viogpudo::os::hosted::irql::PASSIVE_LEVEL,
        "a DXGK_VIDPN/MONITOR interface function",
    );
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Registry {
    pub(crate) fn insert(&mut self, object: Object) -> u64 {
        let id = self.next;
        self.next += 1;
        self.objects.insert(id, object);
        id
    }

    pub(crate) fn vidpn(&mut self, id: u64) -> Option<&mut VidPnObj> {
        match self.objects.get_mut(&id) {
            Some(Object::VidPn(v)) => Some(v),
            _ => None,
        }
    }

    /// Records a broken rule of VidPN `vidpn`: on the adapter of this thread when there is
    /// one (the `Sim` then fails its test), else kept for the VidPN's owner to check.
    pub(crate) fn violation(&mut self, vidpn: u64, what: String) {
        if viogpudo::os::hosted::current().is_some() {
            viogpudo::os::hosted::rule_broken(&what);
        } else {
            self.violations.entry(vidpn).or_default().push(what);
        }
    }

    /// If `set` names a mode set the OS already released on a refused assignment, records
    /// the use as a violation and returns true.
    pub(crate) fn used_consumed_set(&mut self, set: u64, what: &str) -> bool {
        let Some(&vidpn) = self.consumed.get(&set) else {
            return false;
        };
        self.violation(
            vidpn,
            format!(
                "{what}: mode set {set:#x} was already released by the OS when \
                 pfnAssign*ModeSet refused it (the driver must not release or use it again)"
            ),
        );
        true
    }

    pub(crate) fn topology(&mut self, id: u64) -> Option<&mut TopologyObj> {
        match self.objects.get_mut(&id) {
            Some(Object::Topology(t)) => Some(t),
            _ => None,
        }
    }
}

/// The handle of object `id`.
pub(crate) fn handle_of<T>(id: u64) -> *mut T {
    (id << HANDLE_SHIFT) as usize as *mut T
}

/// The object id a handle names (0, which names nothing, for a malformed handle).
pub(crate) fn id_of<T>(handle: *const T) -> u64 {
    let raw = handle as usize as u64;
    if raw & ((1 << HANDLE_SHIFT) - 1) != 0 {
        return 0;
    }
    raw >> HANDLE_SHIFT
}
