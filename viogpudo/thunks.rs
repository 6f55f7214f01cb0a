//! The DDI entry points: one `extern "system"` function per KMDOD DDI, as dxgkrnl calls them.
//!
//! Each thunk checks the pointers it was given (null: `STATUS_INVALID_PARAMETER`), turns the
//! context pointer back into the [`Adapter`] AddDevice created, turns raw OS arrays into
//! slices of the sizes the arguments state, calls one adapter method and converts its result
//! into an NTSTATUS. Nothing here can panic: a panic in the kernel is a blue screen.
//!
//! The VidPN DDIs forward to the VidPN logic (`crate::vidpn`) with the adapter as its
//! [`VidPnHost`](crate::vidpn::VidPnHost); the adapter applies what a commit decided.

use alloc::boxed::Box;
use core::ffi::c_void;

use crate::adapter::{os_bytes, os_bytes_mut, present, Adapter, DdiResult};
use crate::ddi::*;
use crate::vidpn;

/// The adapter behind a miniport context pointer.
///
/// # Safety
/// `ctx` is null or the pointer `ddi_add_device` returned, not yet passed to
/// `ddi_remove_device`.
unsafe fn adapter<'a>(ctx: *const c_void) -> Option<&'a Adapter> {
    // SAFETY: per the contract, a non-null ctx is a live Box<Adapter> leaked by AddDevice;
    // dxgkrnl calls no DDI after RemoveDevice.
    unsafe { ctx.cast::<Adapter>().as_ref() }
}

fn status(result: DdiResult<()>) -> NTSTATUS {
    match result {
        Ok(()) => STATUS_SUCCESS,
        Err(s) => s,
    }
}

/// `STATUS_PRIVILEGED_INSTRUCTION` (ntstatus.h): a documented DxgkDdiEscape return, for a
/// caller without the privilege the escape needs. Not a display code, so not in the WDK
/// display facts the layout test reads.
pub const STATUS_PRIVILEGED_INSTRUCTION: NTSTATUS = 0xC000_0096_u32 as i32;
/// `STATUS_ILLEGAL_INSTRUCTION` (ntstatus.h): a documented DxgkDdiEscape return, for an
/// escape the driver does not know. Not in the display facts either.
pub const STATUS_ILLEGAL_INSTRUCTION: NTSTATUS = 0xC000_001D_u32 as i32;

/// `status` when it is one of `documented` (a DDI page's return codes), else `other`:
/// dxgkrnl is written against those sets, so an internal code is translated at the edge.
fn documented(status: NTSTATUS, documented: &[NTSTATUS], other: NTSTATUS) -> NTSTATUS {
    if documented.contains(&status) {
        status
    } else {
        other
    }
}

/// The interface copied at StartDevice, or `STATUS_DEVICE_NOT_READY`.
fn dxgk_of(adapter: &Adapter) -> DdiResult<DXGKRNL_INTERFACE> {
    adapter.dxgk().ok_or(STATUS_DEVICE_NOT_READY)
}

/// DxgkDdiAddDevice: creates the adapter context.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_add_device(
    pdo: *mut DEVICE_OBJECT,
    context: *mut *mut c_void,
) -> NTSTATUS {
    if pdo.is_null() || context.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // A failed allocation is STATUS_NO_MEMORY (as in the KMDOD sample), never an abort.
    let Ok(adapter) = viogpu_common::fallible::try_box(Adapter::new(pdo)) else {
        return STATUS_NO_MEMORY;
    };
    // SAFETY: `context` is a writable pointer slot (checked non-null).
    unsafe { *context = Box::into_raw(adapter).cast::<c_void>() };
    STATUS_SUCCESS
}

/// DxgkDdiStartDevice.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_start_device(
    ctx: *mut c_void,
    _start_info: *mut DXGK_START_INFO,
    interface: *mut DXGKRNL_INTERFACE,
    sources: *mut u32,
    children: *mut u32,
) -> NTSTATUS {
    // SAFETY: the OS's pointers, checked for null; ctx per `adapter`.
    let (Some(adapter), Some(interface)) = (unsafe { adapter(ctx) }, unsafe { interface.as_ref() })
    else {
        return STATUS_INVALID_PARAMETER;
    };
    if sources.is_null() || children.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    match adapter.start_device(interface) {
        Ok(info) => {
            // SAFETY: a writable ULONG (checked non-null).
            unsafe { *sources = info.sources };
            // SAFETY: a writable ULONG (checked non-null).
            unsafe { *children = info.children };
            STATUS_SUCCESS
        }
        Err(s) => s,
    }
}

/// DxgkDdiStopDevice.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_stop_device(ctx: *mut c_void) -> NTSTATUS {
    // SAFETY: ctx per `adapter`.
    match unsafe { adapter(ctx) } {
        Some(a) => status(a.stop_device()),
        None => STATUS_INVALID_PARAMETER,
    }
}

/// DxgkDdiRemoveDevice: drops the adapter context.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments; no DDI uses `ctx` afterwards.
pub unsafe extern "system" fn ddi_remove_device(ctx: *mut c_void) -> NTSTATUS {
    if ctx.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: ctx is the Box AddDevice leaked; RemoveDevice is the last DDI that names it.
    drop(unsafe { Box::from_raw(ctx.cast::<Adapter>()) });
    STATUS_SUCCESS
}

/// DxgkDdiDispatchIoRequest: no private IOCTLs.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_dispatch_io_request(
    _ctx: *mut c_void,
    _source: u32,
    _packet: *mut VIDEO_REQUEST_PACKET,
) -> NTSTATUS {
    STATUS_NOT_SUPPORTED
}

/// DxgkDdiInterruptRoutine.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_interrupt_routine(ctx: *mut c_void, message: u32) -> BOOLEAN {
    // SAFETY: ctx per `adapter`.
    match unsafe { adapter(ctx) } {
        Some(a) => BOOLEAN::from(a.interrupt(message)),
        None => 0,
    }
}

/// DxgkDdiDpcRoutine.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_dpc_routine(ctx: *mut c_void) {
    // SAFETY: ctx per `adapter`.
    if let Some(a) = unsafe { adapter(ctx) } {
        a.dpc();
    }
}

/// DxgkDdiQueryChildRelations: `size` is the byte size of the OS's array.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_query_child_relations(
    ctx: *mut c_void,
    relations: *mut DXGK_CHILD_DESCRIPTOR,
    size: u32,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`.
    let Some(a) = (unsafe { adapter(ctx) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if relations.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let count = size as usize / core::mem::size_of::<DXGK_CHILD_DESCRIPTOR>();
    // SAFETY: the OS array holds `size` bytes (whole descriptors counted), exclusively ours for
    // the call.
    let out = unsafe { core::slice::from_raw_parts_mut(relations, count) };
    status(a.query_child_relations(out))
}

/// DxgkDdiQueryChildStatus.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_query_child_status(
    ctx: *mut c_void,
    child_status: *mut DXGK_CHILD_STATUS,
    _non_destructive_only: BOOLEAN,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; the status pointer checked for null and exclusively ours.
    match (unsafe { adapter(ctx) }, unsafe { child_status.as_mut() }) {
        (Some(a), Some(s)) => status(a.query_child_status(s)),
        _ => STATUS_INVALID_PARAMETER,
    }
}

/// DxgkDdiQueryDeviceDescriptor.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_query_device_descriptor(
    ctx: *mut c_void,
    child: u32,
    descriptor: *mut DXGK_DEVICE_DESCRIPTOR,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; the descriptor checked for null.
    let (Some(a), Some(d)) = (unsafe { adapter(ctx) }, unsafe { descriptor.as_mut() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if d.DescriptorBuffer.is_null() || d.DescriptorLength == 0 {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the OS's buffer holds DescriptorLength writable bytes.
    let out = unsafe { os_bytes_mut(d.DescriptorBuffer, d.DescriptorLength as usize) };
    match a.query_device_descriptor(child, d.DescriptorOffset, out) {
        Ok(n) => {
            d.DescriptorLength = u32::try_from(n).unwrap_or(d.DescriptorLength);
            STATUS_SUCCESS
        }
        Err(s) => s,
    }
}

/// DxgkDdiSetPowerState.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_set_power_state(
    ctx: *mut c_void,
    uid: u32,
    power: DEVICE_POWER_STATE,
    _action: POWER_ACTION,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`.
    match unsafe { adapter(ctx) } {
        Some(a) => status(a.set_power_state(uid, power)),
        None => STATUS_INVALID_PARAMETER,
    }
}

/// DxgkDdiNotifyAcpiEvent: nothing to do for a virtual device.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_notify_acpi_event(
    _ctx: *mut c_void,
    _event_type: DXGK_EVENT_TYPE,
    _event: u32,
    _argument: *mut c_void,
    acpi_flags: *mut u32,
) -> NTSTATUS {
    if let Some(flags) = {
        // SAFETY: an OS out-parameter, checked for null.
        unsafe { acpi_flags.as_mut() }
    } {
        *flags = 0;
    }
    STATUS_SUCCESS
}

/// DxgkDdiResetDevice: called at high IRQL before a reboot/bugcheck hand-off; the device
/// needs nothing (no VGA state to restore).
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_reset_device(_ctx: *mut c_void) {}

/// DxgkDdiUnload: nothing global to free (no globals).
///
/// # Safety
/// Called by dxgkrnl.
pub unsafe extern "system" fn ddi_unload() {}

/// DxgkDdiQueryInterface: no interfaces offered.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_query_interface(
    _ctx: *mut c_void,
    _query: *mut QUERY_INTERFACE,
) -> NTSTATUS {
    STATUS_NOT_SUPPORTED
}

/// DxgkDdiControlEtwLogging: the driver does not log through ETW.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_control_etw_logging(_enable: BOOLEAN, _flags: u32, _level: u8) {}

/// DxgkDdiQueryAdapterInfo.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_query_adapter_info(
    ctx: HANDLE,
    args: *const DXGKARG_QUERYADAPTERINFO,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    let (Some(a), Some(args)) = (unsafe { adapter(ctx) }, unsafe { args.as_ref() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if args.pOutputData.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the OS's output buffer holds OutputDataSize writable bytes.
    let out = unsafe { os_bytes_mut(args.pOutputData, args.OutputDataSize as usize) };
    // The page's codes, and STATUS_NOT_SUPPORTED for a type the driver does not know (as
    // the KMDOD sample answers); a short buffer is an invalid parameter.
    documented(
        status(a.query_adapter_info(args.Type, out)),
        &[
            STATUS_SUCCESS,
            STATUS_INVALID_PARAMETER,
            STATUS_NO_MEMORY,
            STATUS_GRAPHICS_DRIVER_MISMATCH,
            STATUS_NOT_SUPPORTED,
        ],
        STATUS_INVALID_PARAMETER,
    )
}

/// DxgkDdiSetPalette: only 32-bit modes, no palette.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_set_palette(
    _ctx: HANDLE,
    _args: *const DXGKARG_SETPALETTE,
) -> NTSTATUS {
    STATUS_NOT_SUPPORTED
}

/// DxgkDdiSetPointerPosition.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_set_pointer_position(
    ctx: HANDLE,
    args: *const DXGKARG_SETPOINTERPOSITION,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    match (unsafe { adapter(ctx) }, unsafe { args.as_ref() }) {
        (Some(a), Some(args)) => status(a.set_pointer_position(args)),
        _ => STATUS_INVALID_PARAMETER,
    }
}

/// DxgkDdiSetPointerShape.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_set_pointer_shape(
    ctx: HANDLE,
    args: *const DXGKARG_SETPOINTERSHAPE,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    let (Some(a), Some(args)) = (unsafe { adapter(ctx) }, unsafe { args.as_ref() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    // DXGKARG_SETPOINTERSHAPE: Height is the pointer's height; a monochrome shape is an AND
    // mask followed by an XOR mask of Height rows each, so its buffer spans 2 * Height rows.
    let masks = match crate::adapter::pointer::pointer_kind(args.Flags) {
        Some(viogpu_common::cursor::PointerKind::Monochrome) => 2,
        Some(_) => 1,
        None => return STATUS_INVALID_PARAMETER,
    };
    if args.pPixels.is_null() || args.Height > 64 || args.Pitch > 64 * 4 {
        return STATUS_INVALID_PARAMETER;
    }
    let len = args.Pitch as usize * args.Height as usize * masks;
    // SAFETY: the OS's shape holds Pitch * Height readable bytes per mask (both bounded
    // above), one mask for colour kinds and two for monochrome.
    let pixels = unsafe { os_bytes(args.pPixels, len) };
    // The page documents STATUS_SUCCESS and STATUS_NO_MEMORY. Like the KMDOD sample, a
    // malformed shape is STATUS_INVALID_PARAMETER and "no hardware pointer" (the
    // HardwareCursor setting is off) STATUS_NOT_IMPLEMENTED; a shape the device cannot take
    // now (powered down, a failed command) is the page's STATUS_NO_MEMORY, after which
    // dxgkrnl draws the pointer itself.
    match status(a.set_pointer_shape(args, pixels)) {
        STATUS_NOT_SUPPORTED => STATUS_NOT_IMPLEMENTED,
        other => documented(
            other,
            &[STATUS_SUCCESS, STATUS_NO_MEMORY, STATUS_INVALID_PARAMETER],
            STATUS_NO_MEMORY,
        ),
    }
}

/// DxgkDdiEscape.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_escape(ctx: HANDLE, args: *const DXGKARG_ESCAPE) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    let (Some(a), Some(args)) = (unsafe { adapter(ctx) }, unsafe { args.as_ref() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if args.pPrivateDriverData.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: dxgkrnl copied the private data into a kernel buffer of
    // PrivateDriverDataSize bytes, ours for the call.
    let buf = unsafe { os_bytes_mut(args.pPrivateDriverData, args.PrivateDriverDataSize as usize) };
    // The page's codes: a caller without the privilege is STATUS_PRIVILEGED_INSTRUCTION,
    // an escape this driver does not know (other version or request) STATUS_ILLEGAL_INSTRUCTION,
    // and any other refusal (short or malformed buffer, bad scanout) an invalid parameter.
    match status(a.escape(buf)) {
        STATUS_ACCESS_DENIED => STATUS_PRIVILEGED_INSTRUCTION,
        STATUS_NOT_SUPPORTED => STATUS_ILLEGAL_INSTRUCTION,
        other => documented(
            other,
            &[STATUS_SUCCESS, STATUS_NO_MEMORY, STATUS_INVALID_PARAMETER],
            STATUS_INVALID_PARAMETER,
        ),
    }
}

/// DxgkDdiCollectDbgInfo: nothing beyond what the debugger extension can read.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_collect_dbg_info(
    _ctx: HANDLE,
    _args: *const DXGKARG_COLLECTDBGINFO,
) -> NTSTATUS {
    STATUS_SUCCESS
}

/// DxgkDdiIsSupportedVidPn.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_is_supported_vidpn(
    ctx: HANDLE,
    args: *mut DXGKARG_ISSUPPORTEDVIDPN,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    let (Some(a), Some(args)) = (unsafe { adapter(ctx) }, unsafe { args.as_mut() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    // The VidPN logic answers with the DDI status itself (success codes included).
    match dxgk_of(a) {
        Ok(d) => {
            // SAFETY: args and the VidPN it names come from dxgkrnl for this call.
            unsafe { vidpn::is_supported_vidpn(a, &d, args) }
        }
        Err(status) => status,
    }
}

/// DxgkDdiRecommendFunctionalVidPn.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_recommend_functional_vidpn(
    ctx: HANDLE,
    args: *const DXGKARG_RECOMMENDFUNCTIONALVIDPN,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    let (Some(a), Some(args)) = (unsafe { adapter(ctx) }, unsafe { args.as_ref() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    // The VidPN logic answers with the DDI status itself (success codes included).
    match dxgk_of(a) {
        Ok(d) => {
            // SAFETY: as in ddi_is_supported_vidpn.
            unsafe { vidpn::recommend_functional_vidpn(a, &d, args) }
        }
        Err(status) => status,
    }
}

/// DxgkDdiEnumVidPnCofuncModality.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_enum_vidpn_cofunc_modality(
    ctx: HANDLE,
    args: *const DXGKARG_ENUMVIDPNCOFUNCMODALITY,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    let (Some(a), Some(args)) = (unsafe { adapter(ctx) }, unsafe { args.as_ref() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    // The VidPN logic answers with the DDI status itself (success codes included).
    match dxgk_of(a) {
        Ok(d) => {
            // SAFETY: as in ddi_is_supported_vidpn.
            unsafe { vidpn::enum_cofunc_modality(a, &d, args) }
        }
        Err(status) => status,
    }
}

/// DxgkDdiSetVidPnSourceVisibility.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_set_vidpn_source_visibility(
    ctx: HANDLE,
    args: *const DXGKARG_SETVIDPNSOURCEVISIBILITY,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    match (unsafe { adapter(ctx) }, unsafe { args.as_ref() }) {
        (Some(a), Some(args)) => {
            status(a.set_source_visibility(args.VidPnSourceId, args.Visible != 0))
        }
        _ => STATUS_INVALID_PARAMETER,
    }
}

/// DxgkDdiCommitVidPn: the VidPN logic decides, the adapter applies.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_commit_vidpn(
    ctx: HANDLE,
    args: *const DXGKARG_COMMITVIDPN,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    let (Some(a), Some(args)) = (unsafe { adapter(ctx) }, unsafe { args.as_ref() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    status(dxgk_of(a).and_then(|d| {
        // SAFETY: as in ddi_is_supported_vidpn.
        let commits = unsafe { vidpn::commit_vidpn(a, &d, args) }?;
        a.apply_commits(&commits)
    }))
}

/// DxgkDdiUpdateActiveVidPnPresentPath.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_update_active_vidpn_present_path(
    ctx: HANDLE,
    args: *const DXGKARG_UPDATEACTIVEVIDPNPRESENTPATH,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    let (Some(a), Some(args)) = (unsafe { adapter(ctx) }, unsafe { args.as_ref() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    // The page's codes: a path that cannot be active (the adapter is not started) is not in
    // the topology; a path the device could not be reprogrammed for (other than for lack of
    // memory) is a transformation it cannot do now.
    let Ok(d) = dxgk_of(a) else {
        return STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY;
    };
    // SAFETY: `args` is dxgkrnl's argument for this call (its gamma table included).
    let commit = match unsafe { vidpn::update_active_vidpn_present_path(a, &d, args) } {
        Ok(commit) => commit,
        Err(status) => return status,
    };
    documented(
        status(a.apply_commits(core::slice::from_ref(&commit))),
        &[STATUS_SUCCESS, STATUS_NO_MEMORY],
        STATUS_GRAPHICS_PATH_CONTENT_GEOMETRY_TRANSFORMATION_NOT_SUPPORTED,
    )
}

/// DxgkDdiRecommendMonitorModes.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_recommend_monitor_modes(
    ctx: HANDLE,
    args: *const DXGKARG_RECOMMENDMONITORMODES,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    let (Some(a), Some(args)) = (unsafe { adapter(ctx) }, unsafe { args.as_ref() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    a.refresh_displays_if_stale();
    // The VidPN logic answers with the DDI status itself (success codes included, and the
    // monitor interface's errors passed through, as the page asks). Not started: nothing to
    // recommend, which is a success.
    match dxgk_of(a) {
        Ok(d) => {
            // SAFETY: as in ddi_is_supported_vidpn.
            unsafe { vidpn::recommend_monitor_modes(a, &d, args) }
        }
        Err(_) => STATUS_SUCCESS,
    }
}

/// DxgkDdiQueryVidPnHWCapability.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_query_vidpn_hw_capability(
    ctx: HANDLE,
    args: *mut DXGKARG_QUERYVIDPNHWCAPABILITY,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    let (Some(a), Some(args)) = (unsafe { adapter(ctx) }, unsafe { args.as_mut() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    // The VidPN logic answers with the DDI status itself (success codes included).
    match dxgk_of(a) {
        Ok(d) => {
            // SAFETY: as in ddi_is_supported_vidpn.
            unsafe { vidpn::query_vidpn_hw_capability(a, &d, args) }
        }
        Err(status) => status,
    }
}

/// DxgkDdiPresentDisplayOnly.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_present_display_only(
    ctx: HANDLE,
    args: *const DXGKARG_PRESENT_DISPLAYONLY,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; args checked for null.
    let (Some(a), Some(args)) = (unsafe { adapter(ctx) }, unsafe { args.as_ref() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if let Err(s) = present::validate(args, a.num_sources()) {
        return s;
    }
    // SAFETY: validate checked the array non-null for a non-zero count; the OS's array holds
    // NumDirtyRects entries.
    let dirty = unsafe { slice_or_empty(args.pDirtyRect, args.NumDirtyRects) };
    // SAFETY: likewise, NumMoves entries.
    let moves = unsafe { slice_or_empty(args.pMoves, args.NumMoves) };
    let rects = match present::convert_rects(dirty, moves) {
        Ok(r) => r,
        Err(s) => return s,
    };
    // Pitch > 0 was checked by validate.
    let pitch = args.Pitch.unsigned_abs();
    let rotate = args.Flags.rotate();
    // SAFETY: pSource is the OS's surface (the committed source mode, turned to the
    // framebuffer's orientation when Rotate is clear), `pitch` bytes per row: kernel memory
    // valid during the call, or user memory, which `present` reads only through the probe.
    status(unsafe {
        a.present(
            args.VidPnSourceId,
            args.pSource.cast::<u8>(),
            pitch,
            rotate,
            &rects,
        )
    })
}

/// A slice over an OS array, empty for a null pointer or zero count.
///
/// # Safety
/// A non-null `ptr` is valid for reads of `count` elements during `'a`.
unsafe fn slice_or_empty<'a, T>(ptr: *const T, count: u32) -> &'a [T] {
    if ptr.is_null() || count == 0 {
        return &[];
    }
    // SAFETY: per the contract.
    unsafe { core::slice::from_raw_parts(ptr, count as usize) }
}

/// DxgkDdiStopDeviceAndReleasePostDisplayOwnership.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_stop_device_and_release_post_display_ownership(
    ctx: *mut c_void,
    target: D3DDDI_VIDEO_PRESENT_TARGET_ID,
    info: *mut DXGK_DISPLAY_INFORMATION,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`; info checked for null.
    let (Some(a), Some(info)) = (unsafe { adapter(ctx) }, unsafe { info.as_mut() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    match a.stop_and_release_post_display(target) {
        Ok(i) => {
            *info = i;
            STATUS_SUCCESS
        }
        Err(s) => s,
    }
}

/// DxgkDdiSystemDisplayEnable (bugcheck).
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_system_display_enable(
    ctx: *mut c_void,
    target: D3DDDI_VIDEO_PRESENT_TARGET_ID,
    _flags: *mut DXGKARG_SYSTEM_DISPLAY_ENABLE_FLAGS,
    width: *mut u32,
    height: *mut u32,
    format: *mut D3DDDIFORMAT,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`.
    let Some(a) = (unsafe { adapter(ctx) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if width.is_null() || height.is_null() || format.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    match a.system_display_enable(target) {
        Ok(d) => {
            // SAFETY: a writable OS out-parameter, checked non-null.
            unsafe { *width = d.width };
            // SAFETY: a writable OS out-parameter, checked non-null.
            unsafe { *height = d.height };
            // SAFETY: a writable OS out-parameter, checked non-null.
            unsafe { *format = d.format };
            STATUS_SUCCESS
        }
        Err(s) => s,
    }
}

/// DxgkDdiSystemDisplayWrite (bugcheck).
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_system_display_write(
    ctx: *mut c_void,
    source: *mut c_void,
    width: u32,
    height: u32,
    stride: u32,
    x: u32,
    y: u32,
) {
    // SAFETY: ctx per `adapter`.
    let Some(a) = (unsafe { adapter(ctx) }) else {
        return;
    };
    let Some(len) = (stride as usize).checked_mul(height as usize) else {
        return;
    };
    // SAFETY: the OS's image holds `height` rows of `stride` bytes.
    let bytes = unsafe { os_bytes(source, len) };
    // The OS names no target here: the adapter draws on the one enable named.
    a.system_display_write(bytes, width, height, stride, x, y);
}

/// DxgkDdiGetChildContainerId: the OS's default container id is kept, which the page says
/// to ask for with STATUS_MONITOR_NO_DESCRIPTOR and the structure left as it is.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_get_child_container_id(
    _ctx: *mut c_void,
    _child: u32,
    _container: *mut DXGK_CHILD_CONTAINER_ID,
) -> NTSTATUS {
    STATUS_MONITOR_NO_DESCRIPTOR
}

/// DxgkDdiSetPowerComponentFState: no runtime power components are reported.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_set_power_component_fstate(
    _ctx: HANDLE,
    _component: u32,
    _fstate: u32,
) -> NTSTATUS {
    STATUS_SUCCESS
}

/// DxgkDdiPowerRuntimeControlRequest: no private runtime-power requests.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_power_runtime_control_request(
    _ctx: HANDLE,
    _guid: *const GUID,
    _in: *mut c_void,
    _in_len: usize,
    _out: *mut c_void,
    _out_len: usize,
    _written: *mut usize,
) -> NTSTATUS {
    STATUS_NOT_SUPPORTED
}

/// DxgkDdiNotifySurpriseRemoval: stop touching the device; RemoveDevice follows.
///
/// # Safety
/// Called by dxgkrnl with its documented arguments.
pub unsafe extern "system" fn ddi_notify_surprise_removal(
    ctx: *mut c_void,
    _kind: DXGK_SURPRISE_REMOVAL_TYPE,
) -> NTSTATUS {
    // SAFETY: ctx per `adapter`.
    if let Some(a) = unsafe { adapter(ctx) } {
        a.surprise_removed();
    }
    STATUS_SUCCESS
}
