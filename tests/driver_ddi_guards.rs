//! The DDI entry points' own checks (`viogpudo::thunks`): a null context or a null argument
//! structure is refused with STATUS_INVALID_PARAMETER (or, for the DDIs without a status,
//! ignored) before anything is touched, on a booted adapter whose picture, host resources and
//! DMA memory stay as they were. dxgkrnl never sends these; a kernel driver still must not
//! dereference them.
#![allow(clippy::unwrap_used)]
// One block calls every thunk with the same kind of arguments (null, or locals that outlive
// the call), under one SAFETY comment, as the other raw-DDI tests do.
#![allow(clippy::multiple_unsafe_ops_per_block)]

mod sim_support;

use std::ptr::{null, null_mut};

use dxgkrnl_sim::{Machine, Surface};
use sim_support::{assert_shows, Rig};
use viogpudo::ddi::*;
use viogpudo::thunks::*;

/// Every DDI that takes a context answers STATUS_INVALID_PARAMETER (or FALSE, or nothing)
/// for `ctx`, whatever else it gets; each one is called with otherwise valid-looking
/// arguments so that only the context is wrong.
///
/// # Safety
/// `ctx` is null or a live adapter context.
unsafe fn call_all_with_null_arguments(
    ctx: *mut core::ffi::c_void,
) -> Vec<(&'static str, NTSTATUS)> {
    let mut sources = 0u32;
    let mut children = 0u32;
    let mut interface = DXGKRNL_INTERFACE::default();
    let mut out = Vec::new();
    // SAFETY: every pointer argument is null or points at a local that outlives the call.
    unsafe {
        out.push((
            "QueryChildRelations",
            ddi_query_child_relations(ctx, null_mut(), 0),
        ));
        out.push((
            "QueryChildStatus",
            ddi_query_child_status(ctx, null_mut(), 0),
        ));
        out.push((
            "QueryDeviceDescriptor",
            ddi_query_device_descriptor(ctx, 0, null_mut()),
        ));
        out.push(("QueryAdapterInfo", ddi_query_adapter_info(ctx, null())));
        out.push(("SetPointerPosition", ddi_set_pointer_position(ctx, null())));
        out.push(("SetPointerShape", ddi_set_pointer_shape(ctx, null())));
        out.push(("Escape", ddi_escape(ctx, null())));
        out.push(("IsSupportedVidPn", ddi_is_supported_vidpn(ctx, null_mut())));
        out.push((
            "RecommendFunctionalVidPn",
            ddi_recommend_functional_vidpn(ctx, null()),
        ));
        out.push((
            "EnumVidPnCofuncModality",
            ddi_enum_vidpn_cofunc_modality(ctx, null()),
        ));
        out.push((
            "SetVidPnSourceVisibility",
            ddi_set_vidpn_source_visibility(ctx, null()),
        ));
        out.push(("CommitVidPn", ddi_commit_vidpn(ctx, null())));
        out.push((
            "UpdateActiveVidPnPresentPath",
            ddi_update_active_vidpn_present_path(ctx, null()),
        ));
        out.push((
            "RecommendMonitorModes",
            ddi_recommend_monitor_modes(ctx, null()),
        ));
        out.push((
            "QueryVidPnHwCapability",
            ddi_query_vidpn_hw_capability(ctx, null_mut()),
        ));
        out.push(("PresentDisplayOnly", ddi_present_display_only(ctx, null())));
        out.push((
            "StopDeviceAndReleasePostDisplayOwnership",
            ddi_stop_device_and_release_post_display_ownership(ctx, 0, null_mut()),
        ));
        out.push((
            "SystemDisplayEnable",
            ddi_system_display_enable(ctx, 0, null_mut(), null_mut(), null_mut(), null_mut()),
        ));
        out.push((
            "StartDevice (null counts)",
            ddi_start_device(ctx, null_mut(), &mut interface, null_mut(), &mut children),
        ));
        out.push((
            "StartDevice (null interface)",
            ddi_start_device(ctx, null_mut(), null_mut(), &mut sources, &mut children),
        ));
        ddi_system_display_write(ctx, null_mut(), 0, 0, 0, 0, 0);
        ddi_dpc_routine(if ctx.is_null() { ctx } else { null_mut() });
    }
    out
}

#[test]
fn null_contexts_and_arguments_are_refused_and_change_nothing() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let surface = Surface::pattern(1024, 768, 3);
    rig.sim.present_full(0, &surface).unwrap();
    let resources = rig.gpu().resource_count();
    let dma = rig.sim.machine().dma_allocated_bytes();

    // A null context, for the DDIs above and the ones with a context only.
    // SAFETY: null is a valid input of every thunk.
    let with_null_ctx = unsafe { call_all_with_null_arguments(null_mut()) };
    // SAFETY: as above.
    let more = unsafe {
        [
            ("StopDevice", ddi_stop_device(null_mut())),
            ("RemoveDevice", ddi_remove_device(null_mut())),
            (
                "SetPowerState",
                ddi_set_power_state(null_mut(), 0, PowerDeviceD3, POWER_ACTION(0)),
            ),
            ("AddDevice", ddi_add_device(null_mut(), null_mut())),
        ]
    };
    for (ddi, status) in with_null_ctx.iter().chain(&more) {
        assert_eq!(
            *status, STATUS_INVALID_PARAMETER,
            "{ddi} with a null context"
        );
    }
    // SAFETY: null is a valid input.
    let claimed = unsafe { ddi_interrupt_routine(null_mut(), 0) };
    assert_eq!(claimed, 0, "not our interrupt");

    // The adapter's own context with null argument structures.
    // SAFETY: the simulator's context is the live adapter.
    let with_null_args = unsafe { call_all_with_null_arguments(rig.sim.context()) };
    for (ddi, status) in &with_null_args {
        assert_eq!(
            *status, STATUS_INVALID_PARAMETER,
            "{ddi} with null arguments"
        );
    }

    // Nothing changed: the picture, the host resources, the DMA memory; the adapter works.
    assert_shows(&rig.screen(0), &surface, D3DKMDT_VPPR_IDENTITY);
    assert_eq!(rig.gpu().resource_count(), resources);
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma);
    rig.sim.set_mode(0, 800, 600).unwrap();
    let next = Surface::pattern(800, 600, 4);
    rig.sim.present_full(0, &next).unwrap();
    assert_shows(&rig.screen(0), &next, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

/// The DDIs with nothing to do for a virtual display-only device answer what their pages
/// document for that case, through the table DriverEntry hands dxgkrnl, and change nothing:
/// no VGA I/O requests, ACPI events acknowledged with no flags, no interfaces, no palette
/// (32-bit modes only), no debug data, the OS's default container id
/// (STATUS_MONITOR_NO_DESCRIPTOR), no runtime power components or private requests.
#[test]
fn the_ddis_with_nothing_to_do_answer_as_documented() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let surface = Surface::pattern(1024, 768, 5);
    rig.sim.present_full(0, &surface).unwrap();
    let dma = rig.sim.machine().dma_allocated_bytes();
    let ctx = rig.sim.context();
    let init = viogpudo::entry::initialization_data();
    let mut acpi_flags = 0xFFFF_FFFFu32;
    let mut written = 7usize;
    // SAFETY: the driver's own DDIs, with its live context and locals that outlive each call.
    let answers = unsafe {
        [
            (
                "DispatchIoRequest",
                init.DxgkDdiDispatchIoRequest.unwrap()(ctx, 0, null_mut()),
                STATUS_NOT_SUPPORTED,
            ),
            (
                "NotifyAcpiEvent",
                init.DxgkDdiNotifyAcpiEvent.unwrap()(
                    ctx,
                    DXGK_EVENT_TYPE(1),
                    0,
                    null_mut(),
                    &mut acpi_flags,
                ),
                STATUS_SUCCESS,
            ),
            (
                "QueryInterface",
                init.DxgkDdiQueryInterface.unwrap()(ctx, null_mut()),
                STATUS_NOT_SUPPORTED,
            ),
            (
                "SetPalette",
                init.DxgkDdiSetPalette.unwrap()(ctx, null()),
                STATUS_NOT_SUPPORTED,
            ),
            (
                "CollectDbgInfo",
                init.DxgkDdiCollectDbgInfo.unwrap()(ctx, null()),
                STATUS_SUCCESS,
            ),
            (
                "GetChildContainerId",
                init.DxgkDdiGetChildContainerId.unwrap()(ctx, 0, null_mut()),
                STATUS_MONITOR_NO_DESCRIPTOR,
            ),
            (
                "SetPowerComponentFState",
                init.DxgkDdiSetPowerComponentFState.unwrap()(ctx, 0, 0),
                STATUS_SUCCESS,
            ),
            (
                "PowerRuntimeControlRequest",
                init.DxgkDdiPowerRuntimeControlRequest.unwrap()(
                    ctx,
                    null(),
                    null_mut(),
                    0,
                    null_mut(),
                    0,
                    &mut written,
                ),
                STATUS_NOT_SUPPORTED,
            ),
        ]
    };
    for (ddi, status, documented) in answers {
        assert_eq!(status, documented, "{ddi}");
    }
    assert_eq!(acpi_flags, 0, "no ACPI action asked of the OS");
    // SAFETY: as above; these return nothing.
    unsafe {
        init.DxgkDdiControlEtwLogging.unwrap()(1, 0, 0);
        init.DxgkDdiResetDevice.unwrap()(ctx);
    }
    assert_shows(&rig.screen(0), &surface, D3DKMDT_VPPR_IDENTITY);
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma);
    rig.assert_clean();
}
