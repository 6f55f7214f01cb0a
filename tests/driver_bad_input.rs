//! Bad input from the OS side gets an error status and changes nothing: unsupported pixel
//! sizes, rectangles outside the surface, negative or huge counts, null pointers, unknown
//! source/child ids, bad adapter-info buffers and an invalid VidPN.
#![allow(clippy::unwrap_used)]

mod sim_support;

use std::ptr;

use dxgkrnl_sim::vidpn::VidPnModel;
use dxgkrnl_sim::{rect, PointerShape, Surface};
use sim_support::{assert_shows, Rig};
use viogpudo::ddi::*;

/// A booted rig showing `surface`, to compare against after each bad call.
fn showing() -> (Rig, Surface) {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let surface = Surface::pattern(1024, 768, 1);
    rig.sim.present_full(0, &surface).unwrap();
    (rig, surface)
}

fn assert_unchanged(rig: &Rig, surface: &Surface, resources: usize) {
    assert_shows(&rig.screen(0), surface, D3DKMDT_VPPR_IDENTITY);
    assert_eq!(rig.gpu().resource_count(), resources);
    assert_eq!(
        rig.sim.committed_mode(0).map(|m| (m.0, m.1)),
        Some((1024, 768))
    );
    rig.assert_clean();
}

/// One way to spoil a valid present argument.
type Spoil = fn(&mut DXGKARG_PRESENT_DISPLAYONLY);

fn valid_present(source: &Surface, dirty: &mut [RECT]) -> DXGKARG_PRESENT_DISPLAYONLY {
    DXGKARG_PRESENT_DISPLAYONLY {
        VidPnSourceId: 0,
        pSource: source.bytes.as_ptr().cast_mut().cast(),
        BytesPerPixel: 4,
        Pitch: source.pitch as i32,
        Flags: D3DKMT_PRESENT_DISPLAY_ONLY_FLAGS::default(),
        NumMoves: 0,
        pMoves: ptr::null_mut(),
        NumDirtyRects: dirty.len() as u32,
        pDirtyRect: dirty.as_mut_ptr(),
        pfnPresentDisplayOnlyProgress: None,
    }
}

#[test]
fn bad_presents_are_refused_and_change_nothing() {
    let (mut rig, shown) = showing();
    let resources = rig.gpu().resource_count();
    let other = Surface::pattern(1024, 768, 2);
    let cases: Vec<(&str, Spoil)> = vec![
        ("3 bytes per pixel", |a| a.BytesPerPixel = 3),
        ("0 bytes per pixel", |a| a.BytesPerPixel = 0),
        ("pitch smaller than a row", |a| a.Pitch = 1024),
        ("negative pitch", |a| a.Pitch = -4096),
        ("null source", |a| a.pSource = ptr::null_mut()),
        ("null dirty rects", |a| a.pDirtyRect = ptr::null_mut()),
        ("huge dirty count", |a| a.NumDirtyRects = u32::MAX),
        ("moves without rects", |a| a.NumMoves = 3),
        ("huge move count", |a| a.NumMoves = 0x8000_0000),
        ("unknown source", |a| a.VidPnSourceId = 7),
        ("source id all", |a| a.VidPnSourceId = D3DDDI_ID_ALL),
    ];
    for (what, mutate) in cases {
        let mut dirty = [rect(0, 0, 1024, 768)];
        let mut args = valid_present(&other, &mut dirty);
        mutate(&mut args);
        let status = rig.sim.present_raw(&args).unwrap();
        assert!(!nt_success(status), "{what}: {status:#x}");
        assert_unchanged(&rig, &shown, resources);
    }
    for (what, bad) in [
        ("right past the surface", rect(0, 0, 1025, 768)),
        ("bottom past the surface", rect(0, 0, 1024, 769)),
        ("negative left", rect(-1, 0, 10, 10)),
        ("inverted", rect(10, 10, 5, 5)),
        ("far away", rect(i32::MAX - 1, 0, i32::MAX, 1)),
    ] {
        let mut dirty = [rect(0, 0, 16, 16), bad];
        let args = valid_present(&other, &mut dirty);
        let status = rig.sim.present_raw(&args).unwrap();
        assert!(!nt_success(status), "dirty rect {what}: {status:#x}");
        assert_unchanged(&rig, &shown, resources);
    }
    let mut dirty = [rect(0, 0, 16, 16)];
    let mut args = valid_present(&other, &mut dirty);
    let mut moves = [D3DKMT_MOVE_RECT {
        SourcePoint: POINT { x: 1000, y: 0 },
        DestRect: rect(0, 0, 100, 100),
    }];
    args.NumMoves = 1;
    args.pMoves = moves.as_mut_ptr();
    let status = rig.sim.present_raw(&args).unwrap();
    assert!(
        !nt_success(status),
        "move source past the surface: {status:#x}"
    );
    assert_unchanged(&rig, &shown, resources);
}

#[test]
fn bad_pointer_shapes_and_positions_are_refused() {
    let (mut rig, shown) = showing();
    let resources = rig.gpu().resource_count();
    let good = PointerShape::color(32, 32, &[0x80; 32 * 32 * 4], (0, 0));
    let base = DXGKARG_SETPOINTERSHAPE {
        Flags: DXGK_POINTERFLAGS { Value: good.flags },
        Width: good.width,
        Height: good.height,
        Pitch: good.pitch,
        VidPnSourceId: 0,
        pPixels: good.pixels.as_ptr().cast(),
        XHot: 0,
        YHot: 0,
    };
    let cases: Vec<(&str, DXGKARG_SETPOINTERSHAPE)> = vec![
        (
            "no kind",
            DXGKARG_SETPOINTERSHAPE {
                Flags: DXGK_POINTERFLAGS { Value: 0 },
                ..base
            },
        ),
        (
            "two kinds",
            DXGKARG_SETPOINTERSHAPE {
                Flags: DXGK_POINTERFLAGS { Value: 3 },
                ..base
            },
        ),
        (
            "too wide",
            DXGKARG_SETPOINTERSHAPE {
                Width: 4096,
                Pitch: 4096 * 4,
                ..base
            },
        ),
        (
            "zero size",
            DXGKARG_SETPOINTERSHAPE {
                Width: 0,
                Height: 0,
                ..base
            },
        ),
        ("short pitch", DXGKARG_SETPOINTERSHAPE { Pitch: 16, ..base }),
        (
            "hot spot outside",
            DXGKARG_SETPOINTERSHAPE { XHot: 32, ..base },
        ),
        (
            "null pixels",
            DXGKARG_SETPOINTERSHAPE {
                pPixels: ptr::null(),
                ..base
            },
        ),
        (
            "unknown source",
            DXGKARG_SETPOINTERSHAPE {
                VidPnSourceId: 9,
                ..base
            },
        ),
        (
            "monochrome pitch shorter than a mask row",
            DXGKARG_SETPOINTERSHAPE {
                Flags: DXGK_POINTERFLAGS { Value: 1 },
                Pitch: 3,
                ..base
            },
        ),
        (
            "monochrome taller than the cursor",
            DXGKARG_SETPOINTERSHAPE {
                Flags: DXGK_POINTERFLAGS { Value: 1 },
                Height: 65,
                Pitch: 4,
                ..base
            },
        ),
    ];
    for (what, args) in cases {
        let status = rig.sim.set_pointer_shape_raw(&args).unwrap();
        assert!(!nt_success(status), "{what}: {status:#x}");
    }
    let mut flags = DXGK_SETPOINTERPOSITIONFLAGS::default();
    flags.set_visible(true);
    let status = rig
        .sim
        .set_pointer_position_raw(&DXGKARG_SETPOINTERPOSITION {
            VidPnSourceId: 5,
            X: 0,
            Y: 0,
            Flags: flags,
        })
        .unwrap();
    assert!(!nt_success(status), "position on an unknown source");
    assert!(!rig.gpu().cursor(0).unwrap().visible);
    assert_unchanged(&rig, &shown, resources);
}

#[test]
fn unknown_children_sources_and_bad_adapter_info_are_refused() {
    let (mut rig, shown) = showing();
    let resources = rig.gpu().resource_count();
    assert!(rig.sim.query_child_status(3, StatusConnection).is_err());
    assert!(rig
        .sim
        .query_child_status(0, DXGK_CHILD_STATUS_TYPE(77))
        .is_err());
    let mut block = [0u8; 128];
    let status = rig.sim.query_device_descriptor(9, 0, &mut block).unwrap();
    assert!(!nt_success(status), "EDID of an unknown child");
    let status = rig
        .sim
        .query_device_descriptor(0, 1 << 20, &mut block)
        .unwrap();
    assert!(!nt_success(status), "EDID offset past every block");
    assert!(rig.sim.set_source_visibility(4, true).is_err());

    let mut caps = DXGK_DRIVERCAPS::default();
    let small = DXGKARG_QUERYADAPTERINFO {
        Type: DXGKQAITYPE_DRIVERCAPS,
        pInputData: ptr::null_mut(),
        InputDataSize: 0,
        pOutputData: (&mut caps as *mut DXGK_DRIVERCAPS).cast(),
        OutputDataSize: 16,
    };
    assert!(!nt_success(rig.sim.query_adapter_info_raw(&small).unwrap()));
    let null = DXGKARG_QUERYADAPTERINFO {
        pOutputData: ptr::null_mut(),
        OutputDataSize: core::mem::size_of::<DXGK_DRIVERCAPS>() as u32,
        ..small
    };
    assert!(!nt_success(rig.sim.query_adapter_info_raw(&null).unwrap()));
    let unknown = DXGKARG_QUERYADAPTERINFO {
        Type: DXGK_QUERYADAPTERINFOTYPE(999),
        pOutputData: (&mut caps as *mut DXGK_DRIVERCAPS).cast(),
        OutputDataSize: core::mem::size_of::<DXGK_DRIVERCAPS>() as u32,
        ..small
    };
    assert!(!nt_success(
        rig.sim.query_adapter_info_raw(&unknown).unwrap()
    ));
    assert_unchanged(&rig, &shown, resources);
}

#[test]
fn an_invalid_vidpn_is_refused_and_changes_nothing() {
    let (mut rig, shown) = showing();
    let resources = rig.gpu().resource_count();
    // Not bad input: DxgkDdiIsSupportedVidPn "must set IsVidPnSupported to TRUE" for a null
    // hDesiredVidPn, since the adapter can always be configured to show nothing.
    assert_eq!(
        rig.sim.is_supported_vidpn_raw(ptr::null_mut()).unwrap(),
        (STATUS_SUCCESS, true),
        "a null VidPN (show nothing) is supported"
    );
    // A VidPN the OS already destroyed.
    let stale = VidPnModel::new(1).handle();
    let (status, supported) = rig.sim.is_supported_vidpn_raw(stale).unwrap();
    assert!(
        !nt_success(status) && !supported,
        "stale VidPN: {status:#x}"
    );
    // A topology naming a source and target this adapter does not have.
    let foreign = VidPnModel::new(3);
    foreign.add_path(2, 2).unwrap();
    assert_eq!(
        rig.sim.is_supported_vidpn_raw(foreign.handle()).unwrap(),
        (STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY, false)
    );
    // A path whose source mode nobody pinned cannot be committed.
    let unpinned = VidPnModel::new(1);
    unpinned.add_path(0, 0).unwrap();

    let commit = DXGKARG_COMMITVIDPN {
        hFunctionalVidPn: ptr::null_mut(),
        AffectedVidPnSourceId: 0,
        MonitorConnectivityChecks: D3DKMDT_MCC_ENFORCE,
        hPrimaryAllocation: ptr::null_mut(),
        Flags: DXGKARG_COMMITVIDPN_FLAGS::default(),
    };
    for (what, args) in [
        ("null VidPN", commit),
        (
            "stale VidPN",
            DXGKARG_COMMITVIDPN {
                hFunctionalVidPn: stale,
                ..commit
            },
        ),
        (
            "foreign topology",
            DXGKARG_COMMITVIDPN {
                hFunctionalVidPn: foreign.handle(),
                AffectedVidPnSourceId: 2,
                ..commit
            },
        ),
        (
            "unknown affected source",
            DXGKARG_COMMITVIDPN {
                hFunctionalVidPn: unpinned.handle(),
                AffectedVidPnSourceId: 12,
                ..commit
            },
        ),
        (
            "no pinned source mode",
            DXGKARG_COMMITVIDPN {
                hFunctionalVidPn: unpinned.handle(),
                ..commit
            },
        ),
        (
            "bad connectivity check",
            DXGKARG_COMMITVIDPN {
                hFunctionalVidPn: unpinned.handle(),
                MonitorConnectivityChecks: D3DKMDT_MONITOR_CONNECTIVITY_CHECKS(77),
                ..commit
            },
        ),
    ] {
        let status = rig.sim.commit_vidpn_raw(&args).unwrap();
        assert!(!nt_success(status), "commit of {what}: {status:#x}");
        assert_unchanged(&rig, &shown, resources);
    }
    assert_eq!(
        unpinned.outstanding(),
        0,
        "the driver released what it took"
    );
    // Modes no monitor can take, and a source the adapter does not have.
    assert!(rig.sim.set_mode(0, 0, 768).is_err());
    assert!(rig.sim.set_mode(0, 100_000, 100_000).is_err());
    assert!(rig.sim.set_mode(3, 1024, 768).is_err());
    assert_unchanged(&rig, &shown, resources);
}
