//! The `DXGKRNL_INTERFACE` the simulator hands to `DxgkDdiStartDevice`: one `extern "system"`
//! function per dxgkrnl callback.
//!
//! `DeviceHandle` is the address of the adapter's [`AdapterState`]. Every callback first checks
//! that the handle names a live adapter (a registry of live handles, so a stale or garbage
//! handle is reported instead of dereferenced), checks its pointers, does its work on the
//! [`Machine`](crate::machine::Machine), and records what happened as an [`Event`]. Callbacks a
//! display-only driver has no business calling answer `STATUS_NOT_IMPLEMENTED` and are recorded
//! as [`Event::Unexpected`]; callbacks without a device handle find the adapter of the current
//! thread.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use viogpudo::ddi::*;
use viogpudo::os::hosted::irql::{self, Irql};

use crate::adapter::{AdapterState, ChildStatus, Event, Mapping, PostDisplay};

/// `DXGK_WHICHSPACE_CONFIG` (= `PCI_WHICHSPACE_CONFIG`): PCI configuration space.
pub const DXGK_WHICHSPACE_CONFIG: u32 = 0;
/// `DXGK_WHICHSPACE_ROM` (= `PCI_WHICHSPACE_ROM`, "PciR"): the option ROM.
pub const DXGK_WHICHSPACE_ROM: u32 = 0x5269_6350;
/// `DXGK_WHICHSPACE_MCH`.
pub const DXGK_WHICHSPACE_MCH: u32 = 0x8000_0000;
/// `DXGK_WHICHSPACE_BRIDGE`.
pub const DXGK_WHICHSPACE_BRIDGE: u32 = 0x8000_0001;

/// Addresses of the live adapters' states.
static LIVE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

std::thread_local! {
    /// The adapter simulated on this thread, for callbacks that carry no device handle.
    static CURRENT: RefCell<Option<Arc<AdapterState>>> = const { RefCell::new(None) };
}

/// Makes `adapter` reachable through its handle and the current thread.
pub(crate) fn register(adapter: &Arc<AdapterState>) {
    LIVE.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Arc::as_ptr(adapter) as usize);
    CURRENT.with(|c| *c.borrow_mut() = Some(Arc::clone(adapter)));
}

/// Makes `adapter` the one of callbacks without a handle on this (another) thread.
pub(crate) fn enter_thread(adapter: &Arc<AdapterState>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(Arc::clone(adapter)));
}

/// Undoes [`enter_thread`].
pub(crate) fn leave_thread(adapter: &Arc<AdapterState>) {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_some_and(|a| Arc::ptr_eq(a, adapter)) {
            *c = None;
        }
    });
}

/// Undoes [`register`].
pub(crate) fn unregister(adapter: &Arc<AdapterState>) {
    let me = Arc::as_ptr(adapter) as usize;
    LIVE.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|&a| a != me);
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_some_and(|a| Arc::ptr_eq(a, adapter)) {
            *c = None;
        }
    });
}

/// The handle the driver gets for `adapter`.
pub(crate) fn handle_of(adapter: &Arc<AdapterState>) -> HANDLE {
    Arc::as_ptr(adapter).cast_mut().cast()
}

fn current() -> Option<Arc<AdapterState>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The highest IRQL `callback` may be called at, from its Microsoft Learn page
/// (`../shared/windows-rules/irql.tsv`); where the page says nothing, PASSIVE_LEVEL (the
/// stricter reading).
fn max_irql(callback: &str) -> Irql {
    match callback {
        "DxgkCbQueueDpc" | "DxgkCbLogEtwEvent" => irql::HIGH_LEVEL,
        "DxgkCbNotifyInterrupt" => irql::DIRQL,
        "DxgkCbNotifyDpc"
        | "DxgkCbSynchronizeExecution"
        | "DxgkCbIndicateChildStatus"
        | "DxgkCbSetPowerComponentIdle"
        | "DxgkCbSetPowerComponentLatency"
        | "DxgkCbSetPowerComponentResidency"
        | "DxgkCbCompleteFStateTransition"
        | "DxgkCbPowerRuntimeControlRequest" => irql::DISPATCH_LEVEL,
        "DxgkCbAcquirePostDisplayOwnership"
        | "DxgkCbGetHandleData"
        | "DxgkCbGetHandleParent"
        | "DxgkCbQueryVidPnInterface"
        | "DxgkCbQueryMonitorInterface" => irql::APC_LEVEL,
        _ => irql::PASSIVE_LEVEL,
    }
}

/// The lowest IRQL `callback` may be called at: DxgkCbNotifyInterrupt belongs in the ISR
/// (DIRQL) and DxgkCbNotifyDpc in the DPC (DISPATCH_LEVEL).
fn min_irql(callback: &str) -> Irql {
    match callback {
        "DxgkCbNotifyInterrupt" => irql::DIRQL,
        "DxgkCbNotifyDpc" => irql::DISPATCH_LEVEL,
        _ => irql::PASSIVE_LEVEL,
    }
}

/// Checks the caller's IRQL against `callback`'s documented range.
pub(crate) fn check_irql(callback: &'static str) {
    irql::require_at_most(max_irql(callback), callback);
    let (now, min) = (irql::current(), min_irql(callback));
    if now < min {
        viogpudo::os::hosted::rule_broken(&format!(
            "IRQL: {callback} called at {}; it belongs at {} and above",
            irql::name(now),
            irql::name(min)
        ));
    }
}

/// The adapter behind `handle`, if it is live; otherwise the misuse is recorded on this
/// thread's adapter (or printed). Checks the caller's IRQL against the callback's first.
fn adapter(handle: HANDLE, callback: &'static str) -> Option<Arc<AdapterState>> {
    check_irql(callback);
    let live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    if handle.is_null() || !live.contains(&(handle as usize)) {
        drop(live);
        let what = format!("{callback}: DeviceHandle {handle:p} is not a live adapter");
        match current() {
            Some(a) => a.error(what),
            None => eprintln!("dxgkrnl-sim: {what}"),
        }
        return None;
    }
    let state: *const AdapterState = handle.cast_const().cast();
    // SAFETY: the address is in LIVE, so it came from Arc::as_ptr of an adapter whose owning
    // Sim still holds its Arc (the Sim unregisters before dropping it), and we hold the LIVE
    // lock, so it cannot be unregistered concurrently: taking one more strong count is sound.
    unsafe {
        Arc::increment_strong_count(state);
        Some(Arc::from_raw(state))
    }
}

fn unexpected(name: &'static str) {
    check_irql(name);
    match current() {
        Some(a) => a.record(Event::Unexpected(name)),
        None => eprintln!("dxgkrnl-sim: unexpected callback {name}"),
    }
}

/// The interface for `adapter`: WIN8 size and version, every callback filled in.
pub(crate) fn interface(adapter: &Arc<AdapterState>) -> DXGKRNL_INTERFACE {
    DXGKRNL_INTERFACE {
        Size: core::mem::size_of::<DXGKRNL_INTERFACE>() as u32,
        Version: DXGKDDI_INTERFACE_VERSION_WIN8,
        DeviceHandle: handle_of(adapter),
        DxgkCbEvalAcpiMethod: Some(eval_acpi_method),
        DxgkCbGetDeviceInformation: Some(get_device_information),
        DxgkCbIndicateChildStatus: Some(indicate_child_status),
        DxgkCbMapMemory: Some(map_memory),
        DxgkCbQueueDpc: Some(queue_dpc),
        DxgkCbQueryServices: Some(query_services),
        DxgkCbReadDeviceSpace: Some(read_device_space),
        DxgkCbSynchronizeExecution: Some(synchronize_execution),
        DxgkCbUnmapMemory: Some(unmap_memory),
        DxgkCbWriteDeviceSpace: Some(write_device_space),
        DxgkCbIsDevicePresent: Some(is_device_present),
        DxgkCbGetHandleData: Some(get_handle_data),
        DxgkCbGetHandleParent: Some(get_handle_parent),
        DxgkCbEnumHandleChildren: Some(enum_handle_children),
        DxgkCbNotifyInterrupt: Some(notify_interrupt),
        DxgkCbNotifyDpc: Some(notify_dpc),
        DxgkCbQueryVidPnInterface: Some(crate::vidpn::query_vidpn_interface),
        DxgkCbQueryMonitorInterface: Some(crate::vidpn::query_monitor_interface),
        DxgkCbGetCaptureAddress: Some(get_capture_address),
        DxgkCbLogEtwEvent: Some(log_etw_event),
        DxgkCbExcludeAdapterAccess: Some(exclude_adapter_access),
        DxgkCbCreateContextAllocation: Some(create_context_allocation),
        DxgkCbDestroyContextAllocation: Some(destroy_context_allocation),
        DxgkCbSetPowerComponentActive: Some(set_power_component_active),
        DxgkCbSetPowerComponentIdle: Some(set_power_component_idle),
        DxgkCbAcquirePostDisplayOwnership: Some(acquire_post_display_ownership),
        DxgkCbPowerRuntimeControlRequest: Some(power_runtime_control_request),
        DxgkCbSetPowerComponentLatency: Some(set_power_component_latency),
        DxgkCbSetPowerComponentResidency: Some(set_power_component_residency),
        DxgkCbCompleteFStateTransition: Some(complete_fstate_transition),
    }
}

unsafe extern "system" fn get_device_information(
    handle: HANDLE,
    info: *mut DXGK_DEVICE_INFO,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let Some(a) = adapter(handle, "DxgkCbGetDeviceInformation") else {
        return STATUS_INVALID_PARAMETER;
    };
    if info.is_null() {
        a.error("DxgkCbGetDeviceInformation: null DeviceInfo".into());
        return STATUS_INVALID_PARAMETER;
    }
    let path_bytes = (a.registry_path.len() * 2) as u16;
    let value = DXGK_DEVICE_INFO {
        MiniportDeviceContext: a.context.load(Ordering::SeqCst),
        PhysicalDeviceObject: a.pdo.as_ptr().cast_mut().cast(),
        DeviceRegistryPath: UNICODE_STRING {
            Length: path_bytes,
            MaximumLength: path_bytes,
            Buffer: a.registry_path.as_ptr().cast_mut(),
        },
        TranslatedResourceList: a.resource_list.as_ptr().cast_mut().cast(),
        SystemMemorySize: LARGE_INTEGER::new(4 << 30),
        HighestPhysicalAddress: LARGE_INTEGER::new((1 << 40) - 1),
        AgpApertureBase: LARGE_INTEGER::new(0),
        AgpApertureSize: 0,
        DockingState: DOCKING_STATE(0), // DockStateUnsupported
    };
    // SAFETY: non-null; the driver passes a DXGK_DEVICE_INFO it owns (the DDI contract). The
    // pointers inside point into the adapter state, which outlives the driver's adapter.
    unsafe { info.write(value) };
    STATUS_SUCCESS
}

unsafe extern "system" fn read_device_space(
    handle: HANDLE,
    data_type: u32,
    buffer: *mut c_void,
    offset: u32,
    length: u32,
    bytes_read: *mut u32,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let Some(a) = adapter(handle, "DxgkCbReadDeviceSpace") else {
        return STATUS_INVALID_PARAMETER;
    };
    if bytes_read.is_null() || (buffer.is_null() && length > 0) {
        a.error("DxgkCbReadDeviceSpace: null Buffer or BytesRead".into());
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: BytesRead is non-null and the driver's ULONG.
    unsafe { bytes_read.write(0) };
    if data_type != DXGK_WHICHSPACE_CONFIG {
        a.error(format!(
            "DxgkCbReadDeviceSpace: space {data_type:#x} is not config space (no ROM here)"
        ));
        return STATUS_NOT_SUPPORTED;
    }
    let size = a.machine.config_space_len();
    if offset >= size {
        a.error(format!(
            "DxgkCbReadDeviceSpace: offset {offset:#x} past config space ({size:#x} bytes)"
        ));
        return STATUS_INVALID_PARAMETER;
    }
    let mut data = vec![0u8; length.min(size - offset) as usize];
    let n = a.machine.config_read(offset, &mut data);
    // SAFETY: the driver's buffer holds `length` bytes and n <= data.len() <= length.
    unsafe {
        ptr::copy_nonoverlapping(data.as_ptr(), buffer.cast::<u8>(), n);
        bytes_read.write(n as u32);
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn write_device_space(
    handle: HANDLE,
    data_type: u32,
    buffer: *mut c_void,
    offset: u32,
    length: u32,
    bytes_written: *mut u32,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let Some(a) = adapter(handle, "DxgkCbWriteDeviceSpace") else {
        return STATUS_INVALID_PARAMETER;
    };
    if bytes_written.is_null() || (buffer.is_null() && length > 0) {
        a.error("DxgkCbWriteDeviceSpace: null Buffer or BytesWritten".into());
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: BytesWritten is non-null and the driver's ULONG.
    unsafe { bytes_written.write(0) };
    if data_type != DXGK_WHICHSPACE_CONFIG {
        a.error(format!(
            "DxgkCbWriteDeviceSpace: space {data_type:#x} is not config space"
        ));
        return STATUS_NOT_SUPPORTED;
    }
    let size = a.machine.config_space_len();
    if offset >= size {
        a.error(format!(
            "DxgkCbWriteDeviceSpace: offset {offset:#x} past config space ({size:#x} bytes)"
        ));
        return STATUS_INVALID_PARAMETER;
    }
    let n = length.min(size - offset) as usize;
    let mut data = vec![0u8; n];
    // SAFETY: the driver's buffer holds `length` >= n bytes.
    unsafe { ptr::copy_nonoverlapping(buffer.cast::<u8>().cast_const(), data.as_mut_ptr(), n) };
    let written = a.machine.config_write(offset, &data);
    // SAFETY: non-null, checked above.
    unsafe { bytes_written.write(written as u32) };
    STATUS_SUCCESS
}

unsafe extern "system" fn map_memory(
    handle: HANDLE,
    phys: PHYSICAL_ADDRESS,
    length: u32,
    in_io_space: BOOLEAN,
    map_to_user_mode: BOOLEAN,
    caching: MEMORY_CACHING_TYPE,
    virtual_address: *mut *mut c_void,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let Some(a) = adapter(handle, "DxgkCbMapMemory") else {
        return STATUS_INVALID_PARAMETER;
    };
    if virtual_address.is_null() {
        a.error("DxgkCbMapMemory: null VirtualAddress".into());
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: non-null; the driver's PVOID.
    unsafe { virtual_address.write(ptr::null_mut()) };
    if in_io_space != 0 || map_to_user_mode != 0 {
        a.error(format!(
            "DxgkCbMapMemory: InIoSpace {in_io_space} / MapToUserMode {map_to_user_mode}: \
             a display-only driver maps memory BARs into kernel space"
        ));
        return STATUS_INVALID_PARAMETER;
    }
    let Ok(start) = u64::try_from(phys.QuadPart) else {
        a.error(format!(
            "DxgkCbMapMemory: negative address {:#x}",
            phys.QuadPart
        ));
        return STATUS_INVALID_PARAMETER;
    };
    let Some(address) = a.machine.map(start, u64::from(length)) else {
        a.error(format!(
            "DxgkCbMapMemory: {start:#x} + {length:#x} is not inside one memory BAR"
        ));
        return STATUS_INVALID_PARAMETER;
    };
    a.add_mapping(Mapping {
        address,
        phys: start,
        len: length,
        caching: caching.0,
    });
    a.record(Event::Map {
        address,
        phys: start,
        len: length,
    });
    // SAFETY: non-null, checked above.
    unsafe { virtual_address.write(address as *mut c_void) };
    STATUS_SUCCESS
}

unsafe extern "system" fn unmap_memory(handle: HANDLE, address: *mut c_void) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let Some(a) = adapter(handle, "DxgkCbUnmapMemory") else {
        return STATUS_INVALID_PARAMETER;
    };
    let address = address as usize;
    if a.remove_mapping(address).is_none() {
        a.error(format!(
            "DxgkCbUnmapMemory: {address:#x} was not returned by DxgkCbMapMemory (or was unmapped already)"
        ));
        return STATUS_INVALID_PARAMETER;
    }
    if !a.machine.unmap(address) {
        a.error(format!(
            "DxgkCbUnmapMemory: the machine had no mapping at {address:#x}"
        ));
    }
    a.record(Event::Unmap { address });
    STATUS_SUCCESS
}

unsafe extern "system" fn queue_dpc(handle: HANDLE) -> BOOLEAN {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let Some(a) = adapter(handle, "DxgkCbQueueDpc") else {
        return 0;
    };
    let queued = !a.dpc_queued.swap(true, Ordering::SeqCst);
    a.record(Event::QueueDpc { queued });
    u8::from(queued)
}

unsafe extern "system" fn synchronize_execution(
    handle: HANDLE,
    routine: Option<unsafe extern "system" fn(*mut c_void) -> BOOLEAN>,
    context: *mut c_void,
    _message_number: u32,
    return_value: *mut BOOLEAN,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let Some(a) = adapter(handle, "DxgkCbSynchronizeExecution") else {
        return STATUS_INVALID_PARAMETER;
    };
    let Some(routine) = routine else {
        a.error("DxgkCbSynchronizeExecution: null SynchronizeRoutine".into());
        return STATUS_INVALID_PARAMETER;
    };
    // The routine runs with the interrupt masked, at the ISR's IRQL: no ISR may run
    // meanwhile.
    let was_masked = a.in_interrupt.swap(true, Ordering::SeqCst);
    let level = irql::run_at(irql::DIRQL);
    let driver = irql::driver_code();
    // SAFETY: the driver's routine with the driver's context, as the kernel would call it.
    let r = unsafe { routine(context) };
    drop(driver);
    drop(level);
    if !was_masked {
        a.in_interrupt.store(false, Ordering::SeqCst);
    }
    if !return_value.is_null() {
        // SAFETY: non-null; the driver's BOOLEAN.
        unsafe { return_value.write(r) };
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn indicate_child_status(
    handle: HANDLE,
    status: *mut DXGK_CHILD_STATUS,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let Some(a) = adapter(handle, "DxgkCbIndicateChildStatus") else {
        return STATUS_INVALID_PARAMETER;
    };
    if status.is_null() {
        a.error("DxgkCbIndicateChildStatus: null ChildStatus".into());
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: non-null; the driver's DXGK_CHILD_STATUS.
    let s = unsafe { status.read() };
    if s.Type == StatusConnection {
        a.note_connection(s.ChildUid, s.hot_plug_connected());
    }
    a.record(Event::ChildStatus(ChildStatus::from(&s)));
    STATUS_SUCCESS
}

unsafe extern "system" fn acquire_post_display_ownership(
    handle: HANDLE,
    info: *mut DXGK_DISPLAY_INFORMATION,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let Some(a) = adapter(handle, "DxgkCbAcquirePostDisplayOwnership") else {
        return STATUS_INVALID_PARAMETER;
    };
    if info.is_null() {
        a.error("DxgkCbAcquirePostDisplayOwnership: null DisplayInfo".into());
        return STATUS_INVALID_PARAMETER;
    }
    a.record(Event::AcquirePostDisplay);
    let value = match a.post_display {
        PostDisplay::Zeroed => DXGK_DISPLAY_INFORMATION::default(),
        PostDisplay::Fail => return STATUS_UNSUCCESSFUL,
        PostDisplay::Framebuffer(fb) => fb,
    };
    // SAFETY: non-null; the driver's DXGK_DISPLAY_INFORMATION.
    unsafe { info.write(value) };
    STATUS_SUCCESS
}

unsafe extern "system" fn notify_interrupt(
    handle: HANDLE,
    _data: *mut DXGKARGCB_NOTIFY_INTERRUPT_DATA,
) {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if let Some(a) = adapter(handle, "DxgkCbNotifyInterrupt") {
        a.record(Event::NotifyInterrupt);
    }
}

unsafe extern "system" fn notify_dpc(handle: HANDLE) {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    if let Some(a) = adapter(handle, "DxgkCbNotifyDpc") {
        a.record(Event::NotifyDpc);
    }
}

/// `pfnPresentDisplayOnlyProgress` of the present arguments the simulator builds.
pub(crate) unsafe extern "system" fn present_progress(
    handle: HANDLE,
    progress: *const DXGKARGCB_PRESENT_DISPLAYONLY_PROGRESS,
) {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    let Some(a) = adapter(handle, "pfnPresentDisplayOnlyProgress") else {
        return;
    };
    if progress.is_null() {
        a.error("pfnPresentDisplayOnlyProgress: null argument".into());
        return;
    }
    // SAFETY: non-null; the driver's argument structure.
    let p = unsafe { progress.read() };
    a.record(Event::PresentProgress {
        source: p.VidPnSourceId,
        progress: p.ProgressId.0,
    });
}

// Callbacks a display-only driver on virtio-gpu does not need.

unsafe extern "system" fn eval_acpi_method(
    _: HANDLE,
    _: u32,
    _: *mut ACPI_EVAL_INPUT_BUFFER_COMPLEX_V1,
    _: u32,
    _: *mut ACPI_EVAL_OUTPUT_BUFFER_V1,
    _: u32,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbEvalAcpiMethod");
    STATUS_NOT_IMPLEMENTED
}

unsafe extern "system" fn query_services(
    _: HANDLE,
    _: DXGK_SERVICES,
    _: *mut INTERFACE,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbQueryServices");
    STATUS_NOT_IMPLEMENTED
}

unsafe extern "system" fn is_device_present(
    _: HANDLE,
    _: *mut PCI_DEVICE_PRESENCE_PARAMETERS,
    _: *mut BOOLEAN,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbIsDevicePresent");
    STATUS_NOT_IMPLEMENTED
}

unsafe extern "system" fn get_handle_data(_: *const DXGKARGCB_GETHANDLEDATA) -> *mut c_void {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbGetHandleData");
    ptr::null_mut()
}

unsafe extern "system" fn get_handle_parent(_: u32) -> u32 {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbGetHandleParent");
    0
}

unsafe extern "system" fn enum_handle_children(_: *const DXGKARGCB_ENUMHANDLECHILDREN) -> u32 {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbEnumHandleChildren");
    0
}

unsafe extern "system" fn get_capture_address(_: *mut DXGKARGCB_GETCAPTUREADDRESS) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbGetCaptureAddress");
    STATUS_NOT_IMPLEMENTED
}

unsafe extern "system" fn log_etw_event(_: *const GUID, _: u8, _: u16, _: *mut c_void) {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbLogEtwEvent");
}

unsafe extern "system" fn exclude_adapter_access(
    _: HANDLE,
    _: u32,
    _: Option<unsafe extern "system" fn(*mut c_void, *mut c_void, NTSTATUS)>,
    _: *mut c_void,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbExcludeAdapterAccess");
    STATUS_NOT_IMPLEMENTED
}

unsafe extern "system" fn create_context_allocation(
    _: *mut DXGKARGCB_CREATECONTEXTALLOCATION,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbCreateContextAllocation");
    STATUS_NOT_IMPLEMENTED
}

unsafe extern "system" fn destroy_context_allocation(_: HANDLE, _: HANDLE) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbDestroyContextAllocation");
    STATUS_NOT_IMPLEMENTED
}

unsafe extern "system" fn set_power_component_active(_: HANDLE, _: u32) {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbSetPowerComponentActive");
}

unsafe extern "system" fn set_power_component_idle(_: HANDLE, _: u32) {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbSetPowerComponentIdle");
}

unsafe extern "system" fn power_runtime_control_request(
    _: HANDLE,
    _: *const GUID,
    _: *mut c_void,
    _: usize,
    _: *mut c_void,
    _: usize,
    _: *mut usize,
) -> NTSTATUS {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbPowerRuntimeControlRequest");
    STATUS_NOT_IMPLEMENTED
}

unsafe extern "system" fn set_power_component_latency(_: HANDLE, _: u32, _: u64) {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbSetPowerComponentLatency");
}

unsafe extern "system" fn set_power_component_residency(_: HANDLE, _: u32, _: u64) {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbSetPowerComponentResidency");
}

unsafe extern "system" fn complete_fstate_transition(_: HANDLE, _: u32) {
    let _sim = viogpudo::os::hosted::irql::sim_code();
    unexpected("DxgkCbCompleteFStateTransition");
}
