//! The driver's VidPN DDIs against the simulator's VidPN object model: cofunctional mode
//! enumeration, support checks, commits, path updates, monitor modes, hardware capability,
//! and malformed handles and arguments. Each DDI must also release everything it acquired.
// Test doubles of OS and device memory: raw-pointer sequences here keep one SAFETY comment
// per block; the shipped crates (the driver, viogpu-common) split every unsafe operation.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use std::ptr;

use dxgkrnl_sim::vidpn::{
    monitor_mode, query_vidpn_interface, signal_size, source_mode, MonitorModeSet, VidPnModel,
};
use viogpu_common::modes::ModeList;
use viogpudo::ddi::*;
use viogpudo::vidpn::{
    commit_vidpn, enum_cofunc_modality, is_supported_vidpn, query_vidpn_hw_capability,
    recommend_functional_vidpn, recommend_monitor_modes, update_active_vidpn_present_path,
    Rotation, SourceCommit, VidPnHost,
};

/// Framebuffer limit of the test monitors: up to 1440x900 fits, 1600x900 does not.
const MAX_FB: u64 = 1440 * 900 * 4;

/// An adapter with `modes.len()` sources/targets; `None` is a target without a monitor.
struct Host {
    modes: Vec<Option<ModeList>>,
    current: Vec<Option<(u32, u32)>>,
}

impl Host {
    fn new(count: usize) -> Self {
        Host {
            modes: vec![Some(ModeList::build(Some((1024, 768)), None, MAX_FB)); count],
            current: vec![Some((1024, 768)); count],
        }
    }

    fn sizes(&self, target: usize) -> Vec<(u32, u32)> {
        self.modes[target]
            .unwrap()
            .iter()
            .map(|m| (m.width, m.height))
            .collect()
    }
}

impl VidPnHost for Host {
    fn source_count(&self) -> u32 {
        self.modes.len() as u32
    }
    fn target_modes(&self, target: u32) -> Option<ModeList> {
        self.modes.get(target as usize).copied().flatten()
    }
    fn target_connected(&self, target: u32) -> bool {
        self.modes.get(target as usize).is_some_and(Option::is_some)
    }
    fn current_mode(&self, source: u32) -> Option<(u32, u32)> {
        self.current.get(source as usize).copied().flatten()
    }
}

fn dxgk() -> DXGKRNL_INTERFACE {
    DXGKRNL_INTERFACE {
        DxgkCbQueryVidPnInterface: Some(query_vidpn_interface),
        ..Default::default()
    }
}

fn cofunc(
    host: &Host,
    vidpn: D3DKMDT_HVIDPN,
    pivot: D3DKMDT_ENUMCOFUNCMODALITY_PIVOT_TYPE,
    id: u32,
) -> NTSTATUS {
    let args = DXGKARG_ENUMVIDPNCOFUNCMODALITY {
        hConstrainingVidPn: vidpn,
        EnumPivotType: pivot,
        EnumPivot: DXGK_ENUM_PIVOT {
            VidPnSourceId: id,
            VidPnTargetId: id,
        },
    };
    // SAFETY: the simulator's interface and a handle of the simulator.
    unsafe { enum_cofunc_modality(host, &dxgk(), &args) }
}

fn supported(host: &Host, vidpn: D3DKMDT_HVIDPN) -> (NTSTATUS, u8) {
    let mut args = DXGKARG_ISSUPPORTEDVIDPN {
        hDesiredVidPn: vidpn,
        IsVidPnSupported: 7,
    };
    // SAFETY: as above.
    let status = unsafe { is_supported_vidpn(host, &dxgk(), &mut args) };
    (status, args.IsVidPnSupported)
}

fn commit(
    host: &Host,
    vidpn: D3DKMDT_HVIDPN,
    affected: u32,
) -> Result<Vec<SourceCommit>, NTSTATUS> {
    let args = DXGKARG_COMMITVIDPN {
        hFunctionalVidPn: vidpn,
        AffectedVidPnSourceId: affected,
        MonitorConnectivityChecks: D3DKMDT_MCC_ENFORCE,
        ..Default::default()
    };
    // SAFETY: as above.
    unsafe { commit_vidpn(host, &dxgk(), &args) }
}

/// A one-path VidPN 0 → 0 of a `sources`-source adapter.
fn one_path(sources: u32) -> VidPnModel {
    let model = VidPnModel::new(sources);
    model.add_path(0, 0).unwrap();
    model
}

#[test]
fn nothing_pinned_offers_every_target_mode_on_both_ends() {
    let host = Host::new(1);
    let model = one_path(1);
    assert_eq!(
        cofunc(&host, model.handle(), D3DKMDT_EPT_NOPIVOT, 0),
        STATUS_SUCCESS
    );

    let expected = host.sizes(0);
    assert!(expected.len() > 5);
    assert_eq!(model.target_modes(0), expected);
    assert_eq!(model.source_modes(0), expected);
    assert_eq!(model.outstanding(), 0);

    let targets = model.target_mode_infos(0);
    assert_eq!(targets[0].preference(), D3DKMDT_MP_PREFERRED);
    assert!(targets[1..]
        .iter()
        .all(|m| m.preference() == D3DKMDT_MP_NOTPREFERRED));
    for t in &targets {
        let s = &t.VideoSignalInfo;
        assert_eq!(s.VideoStandard, D3DKMDT_VSS_OTHER);
        assert_eq!((s.TotalSize.cx, s.TotalSize.cy), signal_size(s));
        assert_eq!((s.VSyncFreq.Numerator, s.VSyncFreq.Denominator), (60, 1));
        assert_eq!(s.HSyncFreq.Numerator, 60 * s.ActiveSize.cy);
        assert_eq!(
            s.PixelRate,
            (s.ActiveSize.cx * s.ActiveSize.cy * 60) as usize
        );
        assert_eq!(s.scan_line_ordering(), D3DDDI_VSSLO_PROGRESSIVE);
    }
    for m in model.source_mode_infos(0) {
        let f = &m.Format;
        assert_eq!(m.Type, D3DKMDT_RMT_GRAPHICS);
        assert_eq!(
            (f.VisibleRegionSize.cx, f.VisibleRegionSize.cy),
            (f.PrimSurfSize.cx, f.PrimSurfSize.cy)
        );
        assert_eq!(f.Stride, f.PrimSurfSize.cx * 4);
        assert_eq!(f.PixelFormat, D3DDDIFMT_X8R8G8B8);
        assert_eq!(f.ColorBasis, D3DKMDT_CB_SRGB);
        assert_eq!(f.PixelValueAccessMode, D3DKMDT_PVAM_DIRECT);
    }

    let path = model.path(0, 0).unwrap();
    let t = path.ContentTransformation;
    assert!(t.ScalingSupport.identity() && t.ScalingSupport.centered());
    assert!(!t.ScalingSupport.stretched() && !t.ScalingSupport.aspect_ratio_centered_max());
    let r = t.RotationSupport;
    assert!(r.identity() && r.rotate90() && r.rotate180() && r.rotate270());
    // Only the support fields changed.
    assert_eq!(t.Scaling, D3DKMDT_VPPS_UNPINNED);
    assert_eq!(t.Rotation, D3DKMDT_VPPR_UNPINNED);
}

#[test]
fn pinned_source_mode_restricts_the_target_to_the_same_size() {
    let host = Host::new(1);
    let model = one_path(1);
    model.pin_source_mode(0, 1280, 800).unwrap();
    assert_eq!(
        cofunc(&host, model.handle(), D3DKMDT_EPT_VIDPNSOURCE, 0),
        STATUS_SUCCESS
    );
    assert_eq!(model.target_modes(0), vec![(1280, 800)]);
    // Not the monitor's preferred size, so not marked preferred.
    assert_eq!(
        model.target_mode_infos(0)[0].preference(),
        D3DKMDT_MP_NOTPREFERRED
    );
    // The pinned source set is left alone.
    assert_eq!(model.source_modes(0), vec![(1280, 800)]);
    assert_eq!(model.pinned_source_mode(0), Some((1280, 800)));
    assert_eq!(model.outstanding(), 0);
}

#[test]
fn a_pinned_source_no_monitor_mode_fits_gets_no_empty_target_set() {
    // The monitor's modes changed after the OS pinned this source mode (1000x700 is in no
    // mode list): no target mode works with it. An empty set would be refused, and released
    // by the OS itself; the driver must neither assign one nor release it a second time.
    let host = Host::new(1);
    let model = one_path(1);
    model.pin_source_mode(0, 1000, 700).unwrap();
    model.pin_target_mode(0, 800, 600).unwrap();
    let model2 = one_path(1);
    model2.pin_source_mode(0, 1000, 700).unwrap();
    for (m, pivot) in [
        (&model, D3DKMDT_EPT_NOPIVOT),
        (&model2, D3DKMDT_EPT_VIDPNSOURCE),
    ] {
        let before = m.target_modes(0);
        assert_eq!(cofunc(&host, m.handle(), pivot, 0), STATUS_SUCCESS);
        assert_eq!(m.take_violations(), Vec::<String>::new());
        // The VidPN keeps its target set (IsSupportedVidPn then says no to the pinned mode).
        assert_eq!(m.target_modes(0), before);
        assert_eq!(m.outstanding(), 0);
    }
    let (status, ok) = supported(&host, model2.handle());
    assert_eq!((status, ok), (STATUS_SUCCESS, 0));
}

#[test]
fn pinned_target_mode_restricts_the_source_to_both_orientations_while_rotation_is_open() {
    let host = Host::new(1);
    let model = one_path(1);
    model.pin_target_mode(0, 800, 600).unwrap();
    assert_eq!(
        cofunc(&host, model.handle(), D3DKMDT_EPT_VIDPNTARGET, 0),
        STATUS_SUCCESS
    );
    assert_eq!(model.source_modes(0), vec![(800, 600), (600, 800)]);
    assert_eq!(model.target_modes(0), vec![(800, 600)]);
    assert_eq!(model.outstanding(), 0);
}

#[test]
fn rotated_path_swaps_source_sizes_and_support() {
    let host = Host::new(1);
    let model = one_path(1);
    model.set_rotation(0, 0, D3DKMDT_VPPR_ROTATE90).unwrap();
    assert_eq!(
        cofunc(&host, model.handle(), D3DKMDT_EPT_ROTATION, 0),
        STATUS_SUCCESS
    );
    let swapped: Vec<_> = host.sizes(0).into_iter().map(|(w, h)| (h, w)).collect();
    assert_eq!(model.source_modes(0), swapped);
    assert_eq!(model.target_modes(0), host.sizes(0));

    // A portrait desktop on a landscape monitor.
    let model = one_path(1);
    model.set_rotation(0, 0, D3DKMDT_VPPR_ROTATE270).unwrap();
    model.pin_source_mode(0, 768, 1024).unwrap();
    assert_eq!(
        cofunc(&host, model.handle(), D3DKMDT_EPT_VIDPNSOURCE, 0),
        STATUS_SUCCESS
    );
    assert_eq!(model.target_modes(0), vec![(1024, 768)]);
    assert_eq!(supported(&host, model.handle()), (STATUS_SUCCESS, 1));
    model.pin_target_mode(0, 1024, 768).unwrap();
    assert_eq!(supported(&host, model.handle()), (STATUS_SUCCESS, 1));
    let commits = commit(&host, model.handle(), 0).unwrap();
    assert_eq!(
        commits,
        vec![SourceCommit {
            source: 0,
            target: 0,
            mode: Some((768, 1024)),
            rotation: Rotation::Rotate270
        }]
    );
    // The same modes without the rotation do not fit.
    model.set_rotation(0, 0, D3DKMDT_VPPR_IDENTITY).unwrap();
    assert_eq!(supported(&host, model.handle()), (STATUS_SUCCESS, 0));

    // Rotation open, both pinned crosswise: only the quarter turns are offered.
    let model = one_path(1);
    model.pin_source_mode(0, 768, 1024).unwrap();
    model.pin_target_mode(0, 1024, 768).unwrap();
    assert_eq!(
        cofunc(&host, model.handle(), D3DKMDT_EPT_NOPIVOT, 0),
        STATUS_SUCCESS
    );
    let r = model
        .path(0, 0)
        .unwrap()
        .ContentTransformation
        .RotationSupport;
    assert!(!r.identity() && r.rotate90() && !r.rotate180() && r.rotate270());
}

#[test]
fn pivot_mode_sets_are_left_alone() {
    let host = Host::new(1);
    let model = one_path(1);
    assert_eq!(
        cofunc(&host, model.handle(), D3DKMDT_EPT_VIDPNSOURCE, 0),
        STATUS_SUCCESS
    );
    assert!(model.source_modes(0).is_empty());
    assert_eq!(model.target_modes(0), host.sizes(0));

    let model = one_path(1);
    assert_eq!(
        cofunc(&host, model.handle(), D3DKMDT_EPT_VIDPNTARGET, 0),
        STATUS_SUCCESS
    );
    assert!(model.target_modes(0).is_empty());
    assert_eq!(model.source_modes(0), host.sizes(0));

    // A scaling pivot on the path keeps its scaling support untouched.
    let model = one_path(1);
    assert_eq!(
        cofunc(&host, model.handle(), D3DKMDT_EPT_SCALING, 0),
        STATUS_SUCCESS
    );
    assert_eq!(
        model
            .path(0, 0)
            .unwrap()
            .ContentTransformation
            .ScalingSupport
            .Bits,
        0
    );
}

#[test]
fn is_supported_checks_topology_and_pinned_sizes() {
    let host = Host::new(2);
    // Null VidPN: showing nothing is always supported.
    assert_eq!(supported(&host, ptr::null_mut()), (STATUS_SUCCESS, 1));

    let model = one_path(2);
    assert_eq!(supported(&host, model.handle()), (STATUS_SUCCESS, 1));
    model.pin_source_mode(0, 1024, 768).unwrap();
    model.pin_target_mode(0, 1024, 768).unwrap();
    assert_eq!(supported(&host, model.handle()), (STATUS_SUCCESS, 1));

    // Mismatched pinned sizes.
    let model = one_path(2);
    model.pin_source_mode(0, 1024, 768).unwrap();
    model.pin_target_mode(0, 800, 600).unwrap();
    assert_eq!(supported(&host, model.handle()), (STATUS_SUCCESS, 0));
    assert_eq!(model.outstanding(), 0);

    // A size the monitor does not offer (1600x900 exceeds its framebuffer limit).
    let model = one_path(2);
    model.pin_source_mode(0, 1600, 900).unwrap();
    assert_eq!(supported(&host, model.handle()), (STATUS_SUCCESS, 0));

    // Source 0 on target 1: not our wiring.
    let model = VidPnModel::new(2);
    model.add_path(0, 1).unwrap();
    assert_eq!(supported(&host, model.handle()), (STATUS_SUCCESS, 0));

    // Stretching is not supported.
    let model = one_path(2);
    model.set_scaling(0, 0, D3DKMDT_VPPS_STRETCHED).unwrap();
    assert_eq!(supported(&host, model.handle()), (STATUS_SUCCESS, 0));

    // A source the adapter does not have (the VidPN is for a 3-source adapter).
    let host1 = Host::new(1);
    let model = VidPnModel::new(3);
    model.add_path(2, 2).unwrap();
    assert_eq!(
        supported(&host1, model.handle()),
        (STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY, 0)
    );
    assert_eq!(model.outstanding(), 0);
}

#[test]
fn a_portrait_desktop_on_a_quarter_turned_landscape_target_is_supported_and_commits() {
    // 480x640 is below the landscape minimum as a scan-out, but as the desktop of a path
    // rotated by 90 or 270 degrees it is shown as 640x480, which the monitor offers.
    let host = Host::new(1);
    for rotation in [D3DKMDT_VPPR_ROTATE90, D3DKMDT_VPPR_ROTATE270] {
        let model = one_path(1);
        model.set_rotation(0, 0, rotation).unwrap();
        model.pin_source_mode(0, 480, 640).unwrap();
        model.pin_target_mode(0, 640, 480).unwrap();
        assert_eq!(supported(&host, model.handle()), (STATUS_SUCCESS, 1));
        let commits = commit(&host, model.handle(), 0).unwrap();
        assert_eq!(commits.len(), 1);
        assert_eq!(commits[0].mode, Some((480, 640)));
        assert_eq!(model.outstanding(), 0);
    }
    // Unrotated, the portrait size matches no monitor mode.
    let model = one_path(1);
    model.set_rotation(0, 0, D3DKMDT_VPPR_IDENTITY).unwrap();
    model.pin_source_mode(0, 480, 640).unwrap();
    assert_eq!(supported(&host, model.handle()), (STATUS_SUCCESS, 0));
}

#[test]
fn commit_yields_one_source_commit_per_affected_source() {
    let host = Host::new(2);
    let model = one_path(2);
    model.pin_source_mode(0, 1280, 800).unwrap();
    model.pin_target_mode(0, 1280, 800).unwrap();
    model.set_rotation(0, 0, D3DKMDT_VPPR_IDENTITY).unwrap();
    model.set_scaling(0, 0, D3DKMDT_VPPS_IDENTITY).unwrap();

    let all = commit(&host, model.handle(), D3DDDI_ID_ALL).unwrap();
    assert_eq!(
        all,
        vec![
            SourceCommit {
                source: 0,
                target: 0,
                mode: Some((1280, 800)),
                rotation: Rotation::Identity
            },
            SourceCommit {
                source: 1,
                target: 1,
                mode: None,
                rotation: Rotation::Identity
            },
        ]
    );
    assert_eq!(commit(&host, model.handle(), 1).unwrap(), vec![all[1]]);
    assert_eq!(commit(&host, model.handle(), 0).unwrap(), vec![all[0]]);
    assert_eq!(model.outstanding(), 0);

    // A monitor-off notification changes nothing.
    let mut args = DXGKARG_COMMITVIDPN {
        hFunctionalVidPn: model.handle(),
        AffectedVidPnSourceId: 0,
        ..Default::default()
    };
    args.Flags.set_path_powered_off(true);
    // SAFETY: the simulator's interface and handle.
    assert_eq!(unsafe { commit_vidpn(&host, &dxgk(), &args) }, Ok(vec![]));
}

#[test]
fn commit_rejects_bad_vidpns_with_graphics_status() {
    let host = Host::new(2);
    let pinned = |w, h| {
        let model = one_path(2);
        model.pin_source_mode(0, w, h).unwrap();
        model
    };
    assert_eq!(
        commit(&host, pinned(1024, 768).handle(), 5),
        Err(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE)
    );
    assert_eq!(
        commit(&host, one_path(2).handle(), 0),
        Err(STATUS_GRAPHICS_INVALID_VIDPN)
    );
    assert_eq!(
        commit(&host, pinned(1600, 900).handle(), 0),
        Err(STATUS_GRAPHICS_INVALID_PRIMARYSURFACE_SIZE)
    );
    let m = pinned(1440, 900);
    m.pin_target_mode(0, 1024, 768).unwrap();
    assert_eq!(
        commit(&host, m.handle(), 0),
        Err(STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET_MODE)
    );

    let m = one_path(2);
    let mut mode = source_mode(1024, 768);
    mode.Format.PixelFormat = D3DDDIFMT_R5G6B5;
    m.pin_source_mode_info(0, mode).unwrap();
    assert_eq!(
        commit(&host, m.handle(), 0),
        Err(STATUS_GRAPHICS_INVALID_PIXELFORMAT)
    );

    let m = pinned(1024, 768);
    m.set_scaling(0, 0, D3DKMDT_VPPS_STRETCHED).unwrap();
    assert_eq!(
        commit(&host, m.handle(), 0),
        Err(STATUS_GRAPHICS_VIDPN_MODALITY_NOT_SUPPORTED)
    );

    let m = pinned(1024, 768);
    m.modify_path(0, 0, |p| p.GammaRamp.Type = D3DDDI_GAMMARAMP_RGB256x3x16)
        .unwrap();
    assert_eq!(
        commit(&host, m.handle(), 0),
        Err(STATUS_GRAPHICS_GAMMA_RAMP_NOT_SUPPORTED)
    );

    let m = VidPnModel::new(2);
    m.add_path(1, 0).unwrap();
    assert_eq!(
        commit(&host, m.handle(), D3DDDI_ID_ALL),
        Err(STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY)
    );

    // Target 1 has no monitor: refused when connectivity is enforced.
    let mut host = Host::new(2);
    host.modes[1] = None;
    let m = VidPnModel::new(2);
    m.add_path(1, 1).unwrap();
    m.pin_source_mode(1, 1024, 768).unwrap();
    assert_eq!(
        commit(&host, m.handle(), 1),
        Err(STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY)
    );
    // Also when the path without a monitor is not the affected source's.
    assert_eq!(
        commit(&host, m.handle(), 0),
        Err(STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY)
    );
    let args = DXGKARG_COMMITVIDPN {
        hFunctionalVidPn: m.handle(),
        AffectedVidPnSourceId: 1,
        MonitorConnectivityChecks: D3DKMDT_MCC_IGNORE,
        ..Default::default()
    };
    // SAFETY: the simulator's interface and handle.
    let ignored = unsafe { commit_vidpn(&host, &dxgk(), &args) };
    assert_eq!(ignored.unwrap()[0].mode, Some((1024, 768)));
    assert_eq!(m.outstanding(), 0);
}

#[test]
fn recommend_monitor_modes_adds_exactly_the_missing_mode_list_entries() {
    let host = Host::new(2);
    let adapter = 0x1000 as HANDLE;
    let set = MonitorModeSet::new(adapter, 1);
    set.add(monitor_mode(1024, 768, true));
    set.add(monitor_mode(640, 480, false));
    let args = DXGKARG_RECOMMENDMONITORMODES {
        VideoPresentTargetId: 1,
        hMonitorSourceModeSet: set.handle(),
        pMonitorSourceModeSetInterface: set.interface(),
    };
    // SAFETY: the simulator's handle and interface.
    let status = unsafe { recommend_monitor_modes(&host, &dxgk(), &args) };
    assert_eq!(status, STATUS_SUCCESS);
    let modes = set.modes();
    let sizes: Vec<_> = modes
        .iter()
        .map(|m| signal_size(&m.VideoSignalInfo))
        .collect();
    let descriptor = [(1024, 768), (640, 480)];
    let mut expected = descriptor.to_vec();
    expected.extend(
        host.sizes(1)
            .into_iter()
            .filter(|s| !descriptor.contains(s)),
    );
    assert_eq!(sizes, expected);
    // The descriptor keeps the only preferred mode; ours come from the driver.
    assert_eq!(
        modes
            .iter()
            .filter(|m| m.Preference == D3DKMDT_MP_PREFERRED)
            .count(),
        1
    );
    assert!(modes[2..].iter().all(|m| m.Origin == D3DKMDT_MCO_DRIVER));
    assert_eq!(set.outstanding(), 0);

    // Again: nothing new.
    // SAFETY: as above.
    let status = unsafe { recommend_monitor_modes(&host, &dxgk(), &args) };
    assert_eq!(status, STATUS_SUCCESS);
    assert_eq!(set.modes().len(), expected.len());

    // An empty set: every size, the preferred one marked.
    let empty = MonitorModeSet::new(adapter, 0);
    let args = DXGKARG_RECOMMENDMONITORMODES {
        VideoPresentTargetId: 0,
        hMonitorSourceModeSet: empty.handle(),
        pMonitorSourceModeSetInterface: empty.interface(),
    };
    // SAFETY: as above.
    let status = unsafe { recommend_monitor_modes(&host, &dxgk(), &args) };
    assert_eq!(status, STATUS_SUCCESS);
    let modes = empty.modes();
    assert_eq!(
        modes
            .iter()
            .map(|m| signal_size(&m.VideoSignalInfo))
            .collect::<Vec<_>>(),
        host.sizes(0)
    );
    assert_eq!(modes[0].Preference, D3DKMDT_MP_PREFERRED);
    assert!(modes[1..]
        .iter()
        .all(|m| m.Preference == D3DKMDT_MP_NOTPREFERRED));
}

#[test]
fn recommend_monitor_modes_rejects_bad_arguments_without_changes() {
    let host = Host::new(1);
    let set = MonitorModeSet::new(0x1000 as HANDLE, 0);
    let call = |target, handle, iface| {
        let args = DXGKARG_RECOMMENDMONITORMODES {
            VideoPresentTargetId: target,
            hMonitorSourceModeSet: handle,
            pMonitorSourceModeSetInterface: iface,
        };
        // SAFETY: the simulator's interface (or deliberately bad values the driver checks).
        unsafe { recommend_monitor_modes(&host, &dxgk(), &args) }
    };
    assert_eq!(
        call(3, set.handle(), set.interface()),
        STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET
    );
    assert_eq!(
        call(0, ptr::null_mut(), set.interface()),
        STATUS_GRAPHICS_INVALID_MONITOR_SOURCEMODESET
    );
    assert_eq!(call(0, set.handle(), ptr::null()), STATUS_INVALID_PARAMETER);
    // A handle naming no live set: the simulator refuses it like dxgkrnl.
    let gone = MonitorModeSet::new(0x1000 as HANDLE, 0);
    let stale = gone.handle();
    drop(gone);
    assert_eq!(
        call(0, stale, set.interface()),
        STATUS_GRAPHICS_INVALID_MONITOR_SOURCEMODESET
    );
    assert!(set.modes().is_empty());
}

#[test]
fn malformed_vidpn_handles_give_status_and_change_nothing() {
    let host = Host::new(1);
    let live = one_path(1);
    let stale = {
        let gone = one_path(1);
        gone.handle()
    };
    let garbage = 0x1234_5677 as D3DKMDT_HVIDPN;
    for handle in [stale, garbage] {
        assert_eq!(
            cofunc(&host, handle, D3DKMDT_EPT_NOPIVOT, 0),
            STATUS_GRAPHICS_INVALID_VIDPN
        );
        assert_eq!(supported(&host, handle), (STATUS_GRAPHICS_INVALID_VIDPN, 0));
        assert_eq!(commit(&host, handle, 0), Err(STATUS_GRAPHICS_INVALID_VIDPN));
    }
    assert_eq!(
        commit(&host, ptr::null_mut(), 0),
        Err(STATUS_GRAPHICS_INVALID_VIDPN)
    );
    assert_eq!(
        cofunc(&host, ptr::null_mut(), D3DKMDT_EPT_NOPIVOT, 0),
        STATUS_GRAPHICS_INVALID_VIDPN
    );

    // An unknown pivot type is refused before the VidPN is touched.
    assert_eq!(
        cofunc(&host, live.handle(), D3DKMDT_EPT_UNINITIALIZED, 0),
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        cofunc(
            &host,
            live.handle(),
            D3DKMDT_ENUMCOFUNCMODALITY_PIVOT_TYPE(99),
            0
        ),
        STATUS_INVALID_PARAMETER
    );
    assert!(live.source_modes(0).is_empty() && live.target_modes(0).is_empty());

    // A path naming a target the adapter lacks (the VidPN allows 2): nothing is filled.
    let wide = VidPnModel::new(2);
    wide.add_path(1, 1).unwrap();
    assert_eq!(
        cofunc(&host, wide.handle(), D3DKMDT_EPT_NOPIVOT, 0),
        STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE
    );
    assert!(wide.source_modes(1).is_empty());
    assert_eq!(wide.outstanding(), 0);

    // dxgkrnl without the VidPN callback: an error, not a crash.
    let bare = DXGKRNL_INTERFACE::default();
    let args = DXGKARG_ENUMVIDPNCOFUNCMODALITY {
        hConstrainingVidPn: live.handle(),
        EnumPivotType: D3DKMDT_EPT_NOPIVOT,
        EnumPivot: DXGK_ENUM_PIVOT::default(),
    };
    // SAFETY: a (bare) interface and a live simulator handle.
    let status = unsafe { enum_cofunc_modality(&host, &bare, &args) };
    assert_eq!(status, STATUS_GRAPHICS_INTERNAL_ERROR);
    assert!(live.source_modes(0).is_empty());
}

#[test]
fn hw_capability_reports_driver_rotation_only() {
    let host = Host::new(2);
    let model = one_path(2);
    let query = |handle, source, target| {
        let mut args = DXGKARG_QUERYVIDPNHWCAPABILITY {
            hFunctionalVidPn: handle,
            SourceId: source,
            TargetId: target,
            VidPnHWCaps: D3DKMDT_VIDPN_HW_CAPABILITY { Bits: 0xFFFF_FFFF },
        };
        // SAFETY: the simulator's interface and handle.
        let status = unsafe { query_vidpn_hw_capability(&host, &dxgk(), &mut args) };
        (status, args.VidPnHWCaps)
    };
    let (status, caps) = query(model.handle(), 0, 0);
    assert_eq!(status, STATUS_SUCCESS);
    assert!(caps.driver_rotation());
    assert_eq!(
        caps.Bits, 0x1,
        "rotation only: no scaling, cloning, colour conversion"
    );
    let (status, caps) = query(model.handle(), 1, 1);
    assert_eq!(
        (status, caps.Bits),
        (STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY, 0)
    );
    assert_eq!(
        query(model.handle(), 7, 0).0,
        STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE
    );
    assert_eq!(
        query(model.handle(), 0, 7).0,
        STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET
    );
    let (status, caps) = query(0x40 as D3DKMDT_HVIDPN, 0, 0);
    assert_eq!((status, caps.Bits), (STATUS_GRAPHICS_INVALID_VIDPN, 0));
    assert_eq!(model.outstanding(), 0);
}

#[test]
fn path_update_changes_rotation_and_rejects_what_we_cannot_do() {
    let mut host = Host::new(2);
    let update = |host: &Host, change: &dyn Fn(&mut D3DKMDT_VIDPN_PRESENT_PATH)| {
        let mut path = D3DKMDT_VIDPN_PRESENT_PATH {
            VidPnSourceId: 0,
            VidPnTargetId: 0,
            ..Default::default()
        };
        path.ContentTransformation.Scaling = D3DKMDT_VPPS_IDENTITY;
        path.GammaRamp.Type = D3DDDI_GAMMARAMP_DEFAULT;
        change(&mut path);
        let args = DXGKARG_UPDATEACTIVEVIDPNPRESENTPATH {
            VidPnPresentPathInfo: path,
        };
        // SAFETY: a path whose gamma ramp points at `RAMP` or nothing.
        unsafe { update_active_vidpn_present_path(host, &dxgk(), &args) }
    };
    let rotate = |r| move |p: &mut D3DKMDT_VIDPN_PRESENT_PATH| p.ContentTransformation.Rotation = r;
    assert_eq!(
        update(&host, &rotate(D3DKMDT_VPPR_ROTATE180)),
        Ok(SourceCommit {
            source: 0,
            target: 0,
            mode: Some((1024, 768)),
            rotation: Rotation::Rotate180
        })
    );
    // Unspecified rotation keeps the current one.
    assert_eq!(
        update(&host, &rotate(D3DKMDT_VPPR_NOTSPECIFIED))
            .unwrap()
            .rotation,
        Rotation::Identity
    );
    // 1024x768 turned a quarter needs a 768x1024 monitor mode, which this monitor lacks.
    const NOT_DONE: NTSTATUS = STATUS_GRAPHICS_PATH_CONTENT_GEOMETRY_TRANSFORMATION_NOT_SUPPORTED;
    assert_eq!(update(&host, &rotate(D3DKMDT_VPPR_ROTATE90)), Err(NOT_DONE));
    assert_eq!(
        update(&host, &rotate(D3DKMDT_VPPR_ROTATE90_OFFSET90)),
        Err(NOT_DONE)
    );
    assert_eq!(
        update(&host, &|p| p.ContentTransformation.Scaling =
            D3DKMDT_VPPS_STRETCHED),
        Err(NOT_DONE)
    );
    assert_eq!(
        update(&host, &|p| p.GammaRamp.Type = D3DDDI_GAMMARAMP_DXGI_1),
        Err(NOT_DONE)
    );
    // An RGB256x3x16 ramp that keeps every 8-bit level is what the scan-out shows anyway.
    static IDENTITY: [u16; 768] = {
        let mut t = [0u16; 768];
        let mut i = 0;
        while i < 768 {
            t[i] = ((i % 256) as u16) * 257;
            i += 1;
        }
        t
    };
    static DARKER: [u16; 768] = [0x1000; 768];
    for (table, expected) in [(&IDENTITY, true), (&DARKER, false)] {
        let result = update(&host, &|p| {
            p.GammaRamp.Type = D3DDDI_GAMMARAMP_RGB256x3x16;
            p.GammaRamp.DataSize = 1536;
            p.GammaRamp.Data = table.as_ptr() as *mut core::ffi::c_void;
        });
        assert_eq!(result.is_ok(), expected, "{result:?}");
        if !expected {
            assert_eq!(result, Err(NOT_DONE));
        }
    }
    // Paths this adapter does not have active.
    assert_eq!(
        update(&host, &|p| p.VidPnSourceId = 9),
        Err(STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY)
    );
    assert_eq!(
        update(&host, &|p| p.VidPnTargetId = 1),
        Err(STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY)
    );
    host.current[0] = None;
    assert_eq!(
        update(&host, &rotate(D3DKMDT_VPPR_IDENTITY)),
        Err(STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY)
    );
}

#[test]
fn recommend_functional_vidpn_leaves_the_choice_to_the_os() {
    let host = Host::new(1);
    let model = VidPnModel::new(1);
    let args = DXGKARG_RECOMMENDFUNCTIONALVIDPN {
        hRecommendedFunctionalVidPn: model.handle(),
        ..Default::default()
    };
    // SAFETY: nothing is dereferenced.
    let status = unsafe { recommend_functional_vidpn(&host, &dxgk(), &args) };
    assert_eq!(status, STATUS_GRAPHICS_NO_RECOMMENDED_FUNCTIONAL_VIDPN);
    assert!(model.paths().is_empty());
}

/// The simulator itself holds a driver to dxgkrnl's rules.
#[test]
fn simulator_refuses_interface_misuse() {
    let model = one_path(1);
    model.pin_source_mode(0, 1024, 768).unwrap();
    let mut iface: *const DXGK_VIDPN_INTERFACE = ptr::null();
    // SAFETY: valid out-pointer.
    let status = unsafe {
        query_vidpn_interface(model.handle(), DXGK_VIDPN_INTERFACE_VERSION_V1, &mut iface)
    };
    assert_eq!(status, STATUS_SUCCESS);
    // SAFETY: the simulator's static table.
    let vidpn = unsafe { &*iface };
    let mut set: D3DKMDT_HVIDPNSOURCEMODESET = ptr::null_mut();
    let mut set_iface: *const DXGK_VIDPNSOURCEMODESET_INTERFACE = ptr::null();
    // SAFETY: the simulator's functions with live out-pointers throughout.
    unsafe {
        assert_eq!(
            vidpn.pfnAcquireSourceModeSet.unwrap()(model.handle(), 0, &mut set, &mut set_iface),
            STATUS_SUCCESS
        );
        let s = &*set_iface;
        // The VidPN's own set is read-only to the driver.
        let mut mode: *mut D3DKMDT_VIDPN_SOURCE_MODE = ptr::null_mut();
        assert_eq!(
            s.pfnCreateNewModeInfo.unwrap()(set, &mut mode),
            STATUS_SUCCESS
        );
        *mode = source_mode(800, 600);
        assert_eq!(
            s.pfnAddMode.unwrap()(set, mode),
            STATUS_GRAPHICS_INVALID_VIDPN_SOURCEMODESET
        );
        assert_eq!(s.pfnReleaseModeInfo.unwrap()(set, mode), STATUS_SUCCESS);
        assert_eq!(
            s.pfnReleaseModeInfo.unwrap()(set, mode),
            STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE_MODE
        );
        // Pinned mode lent once, released once.
        let mut pinned: *const D3DKMDT_VIDPN_SOURCE_MODE = ptr::null();
        assert_eq!(
            s.pfnAcquirePinnedModeInfo.unwrap()(set, &mut pinned),
            STATUS_SUCCESS
        );
        assert_eq!(model.outstanding(), 2);
        assert_eq!(s.pfnReleaseModeInfo.unwrap()(set, pinned), STATUS_SUCCESS);
        assert_eq!(
            s.pfnReleaseModeInfo.unwrap()(set, pinned),
            STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE_MODE
        );
        // A target-set function does not take a source-set handle.
        let mut tset: D3DKMDT_HVIDPNTARGETMODESET = ptr::null_mut();
        let mut tset_iface: *const DXGK_VIDPNTARGETMODESET_INTERFACE = ptr::null();
        assert_eq!(
            vidpn.pfnAcquireTargetModeSet.unwrap()(model.handle(), 0, &mut tset, &mut tset_iface),
            STATUS_SUCCESS
        );
        let mut n = 0usize;
        assert_eq!(
            (*tset_iface).pfnGetNumModes.unwrap()(set.cast(), &mut n),
            STATUS_GRAPHICS_INVALID_VIDPN_TARGETMODESET
        );
        assert_eq!(
            vidpn.pfnReleaseTargetModeSet.unwrap()(model.handle(), tset),
            STATUS_SUCCESS
        );
        assert_eq!(
            vidpn.pfnReleaseSourceModeSet.unwrap()(model.handle(), set),
            STATUS_SUCCESS
        );
        // Released: the handle is dead.
        assert_eq!(
            vidpn.pfnReleaseSourceModeSet.unwrap()(model.handle(), set),
            STATUS_GRAPHICS_INVALID_VIDPN_SOURCEMODESET
        );
        assert_eq!(
            s.pfnGetNumModes.unwrap()(set, &mut n),
            STATUS_GRAPHICS_INVALID_VIDPN_SOURCEMODESET
        );

        // A new set without the pinned mode cannot replace the current one.
        let mut fresh: D3DKMDT_HVIDPNSOURCEMODESET = ptr::null_mut();
        assert_eq!(
            vidpn.pfnCreateNewSourceModeSet.unwrap()(model.handle(), 0, &mut fresh, &mut set_iface),
            STATUS_SUCCESS
        );
        assert_eq!(
            vidpn.pfnAssignSourceModeSet.unwrap()(model.handle(), 0, fresh),
            STATUS_GRAPHICS_PINNED_MODE_MUST_REMAIN_IN_SET
        );
        // ... and the OS released it: releasing it again is a violation (a double free).
        assert_eq!(
            vidpn.pfnReleaseSourceModeSet.unwrap()(model.handle(), fresh),
            STATUS_GRAPHICS_INVALID_VIDPN_SOURCEMODESET
        );
        let violations = model.take_violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("already released"), "{violations:?}");

        // An empty set, and a set made for another source: refused and released by the OS.
        let two = VidPnModel::new(2);
        for (owner, assign_to, status) in [
            (0, 0, STATUS_INVALID_PARAMETER),
            (1, 0, STATUS_GRAPHICS_RESOURCES_NOT_RELATED),
        ] {
            let mut t: D3DKMDT_HVIDPNTARGETMODESET = ptr::null_mut();
            let mut t_iface: *const DXGK_VIDPNTARGETMODESET_INTERFACE = ptr::null();
            assert_eq!(
                vidpn.pfnCreateNewTargetModeSet.unwrap()(two.handle(), owner, &mut t, &mut t_iface),
                STATUS_SUCCESS
            );
            if owner != assign_to {
                let mut mode: *mut D3DKMDT_VIDPN_TARGET_MODE = ptr::null_mut();
                assert_eq!(
                    (*t_iface).pfnCreateNewModeInfo.unwrap()(t, &mut mode),
                    STATUS_SUCCESS
                );
                (*mode).VideoSignalInfo = dxgkrnl_sim::vidpn::signal(1024, 768);
                assert_eq!((*t_iface).pfnAddMode.unwrap()(t, mode), STATUS_SUCCESS);
            }
            assert_eq!(
                vidpn.pfnAssignTargetModeSet.unwrap()(two.handle(), assign_to, t),
                status
            );
            assert_eq!(two.outstanding(), 0, "the OS released the refused set");
            assert_eq!(two.take_violations(), Vec::<String>::new());
            assert_eq!(
                vidpn.pfnReleaseTargetModeSet.unwrap()(two.handle(), t),
                STATUS_GRAPHICS_INVALID_VIDPN_TARGETMODESET
            );
            assert_eq!(two.take_violations().len(), 1);
        }
        // Invalid inputs leave the set with the driver, which must release it.
        let mut t: D3DKMDT_HVIDPNTARGETMODESET = ptr::null_mut();
        let mut t_iface: *const DXGK_VIDPNTARGETMODESET_INTERFACE = ptr::null();
        assert_eq!(
            vidpn.pfnCreateNewTargetModeSet.unwrap()(two.handle(), 0, &mut t, &mut t_iface),
            STATUS_SUCCESS
        );
        assert_eq!(
            vidpn.pfnAssignTargetModeSet.unwrap()(two.handle(), 7, t),
            STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_TARGET
        );
        assert_eq!(two.outstanding(), 1);
        assert_eq!(
            vidpn.pfnReleaseTargetModeSet.unwrap()(two.handle(), t),
            STATUS_SUCCESS
        );
        assert_eq!(two.take_violations(), Vec::<String>::new());
    }
    assert_eq!(model.outstanding(), 0);
    assert_eq!(model.pinned_source_mode(0), Some((1024, 768)));
}
