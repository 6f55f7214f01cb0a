//! Return codes from the documented sets: every DDI whose page lists its return codes is
//! checked by the simulator (a code outside the set is a violation); these scenarios drive
//! the driver into its error paths on purpose and check the codes it picks.
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::PointerShape;
use sim_support::Rig;
use viogpudo::ddi::*;

/// No VSync control: GetScanLine and ControlInterrupt are both NULL (as in the KMDOD
/// sample), so dxgkrnl simulates VSync from the mode. A driver that declares VSync control
/// must report VSync interrupts; the simulator enables VSync after the first mode set and
/// flags a refusal, or silence past the VSync watchdog's 2 s.
#[test]
fn vsync_control_is_not_declared() {
    let init = viogpudo::entry::initialization_data();
    assert!(init.DxgkDdiGetScanLine.is_none());
    assert!(init.DxgkDdiControlInterrupt.is_none());
    let mut rig = Rig::booted(&[(1024, 768)]);
    assert!(matches!(
        rig.sim.control_interrupt(DXGK_INTERRUPT_CRTC_VSYNC, true),
        Err(dxgkrnl_sim::SimError::MissingDdi(_))
    ));
    rig.assert_clean();
}

unsafe extern "system" fn no_scan_line(_: HANDLE, _: *mut DXGKARG_GETSCANLINE) -> NTSTATUS {
    STATUS_NOT_SUPPORTED
}

unsafe extern "system" fn no_interrupt_control(
    _: HANDLE,
    _: DXGK_INTERRUPT_TYPE,
    _: BOOLEAN,
) -> NTSTATUS {
    STATUS_NOT_IMPLEMENTED
}

/// What the driver did before: both pointers set (VSync control declared) and every
/// interrupt type refused. The simulator now refuses half a declaration at load and flags
/// the refusal at boot.
#[test]
fn declaring_vsync_control_without_delivering_it_is_refused() {
    let mut half = viogpudo::entry::initialization_data();
    half.DxgkDdiGetScanLine = Some(no_scan_line);
    assert!(matches!(
        Rig::try_load_init(half, &[(1024, 768)]),
        Err(dxgkrnl_sim::SimError::Contract(_))
    ));
    let mut both = half;
    both.DxgkDdiControlInterrupt = Some(no_interrupt_control);
    let mut rig = Rig::load_init(both, &[(1024, 768)]);
    rig.sim.boot().unwrap();
    let violations = rig.sim.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("declares VSync control"),
        "{violations:?}"
    );
}

/// Both samples call DxgkCbNotifyDpc from their DPC.
#[test]
fn the_dpc_notifies_dxgkrnl() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let dpcs = |rig: &Rig, event: &dxgkrnl_sim::Event| {
        rig.sim.events().iter().filter(|e| *e == event).count()
    };
    let before = (
        dpcs(&rig, &dxgkrnl_sim::Event::Dpc),
        dpcs(&rig, &dxgkrnl_sim::Event::NotifyDpc),
    );
    rig.sim
        .present_full(0, &dxgkrnl_sim::Surface::pattern(1024, 768, 1))
        .unwrap();
    let ran = dpcs(&rig, &dxgkrnl_sim::Event::Dpc) - before.0;
    assert!(ran > 0, "the present's completions ran a DPC");
    assert_eq!(dpcs(&rig, &dxgkrnl_sim::Event::NotifyDpc) - before.1, ran);
    rig.assert_clean();
}

#[test]
fn error_paths_answer_documented_codes() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    // QueryAdapterInfo: an unknown type (the KMDOD sample's STATUS_NOT_SUPPORTED) and an
    // output buffer that is too small (STATUS_INVALID_PARAMETER).
    let mut caps = [0u8; 8];
    for ty in [DXGK_QUERYADAPTERINFOTYPE(0x7777), DXGKQAITYPE_DRIVERCAPS] {
        let args = DXGKARG_QUERYADAPTERINFO {
            Type: ty,
            pInputData: std::ptr::null_mut(),
            InputDataSize: 0,
            pOutputData: caps.as_mut_ptr().cast(),
            OutputDataSize: caps.len() as u32,
        };
        let status = rig.sim.query_adapter_info_raw(&args).unwrap();
        assert!(!nt_success(status));
    }
    // Escape: garbage, a truncated request, and an untrusted caller's custom mode.
    for mut bytes in [vec![0xAAu8; 64], vec![1u8; 3]] {
        let status = rig.sim.escape_raw(&mut bytes).unwrap();
        assert!(!nt_success(status), "{status:#x}");
    }
    // A pointer shape the driver refuses (too large).
    let shape = PointerShape::color(65, 65, &[0xFFu8; 65 * 65 * 4], (0, 0));
    assert!(rig.sim.set_pointer_shape(0, &shape).is_err());
    assert_eq!(rig.sim.take_violations(), Vec::<String>::new());
    rig.assert_clean();
}

/// A change to a present path.
type Change = dyn Fn(&mut D3DKMDT_VIDPN_PRESENT_PATH);

#[test]
fn path_updates_answer_the_pages_codes() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let path = |change: &Change| {
        let mut p = D3DKMDT_VIDPN_PRESENT_PATH {
            VidPnSourceId: 0,
            VidPnTargetId: 0,
            ..Default::default()
        };
        p.ContentTransformation.Scaling = D3DKMDT_VPPS_IDENTITY;
        p.ContentTransformation.Rotation = D3DKMDT_VPPR_IDENTITY;
        p.GammaRamp.Type = D3DDDI_GAMMARAMP_DEFAULT;
        change(&mut p);
        DXGKARG_UPDATEACTIVEVIDPNPRESENTPATH {
            VidPnPresentPathInfo: p,
        }
    };
    let not_done = STATUS_GRAPHICS_PATH_CONTENT_GEOMETRY_TRANSFORMATION_NOT_SUPPORTED;
    let cases: [(&Change, NTSTATUS); 5] = [
        (&|_| {}, STATUS_SUCCESS),
        (
            &|p| p.ContentTransformation.Scaling = D3DKMDT_VPPS_STRETCHED,
            not_done,
        ),
        (&|p| p.GammaRamp.Type = D3DDDI_GAMMARAMP_DXGI_1, not_done),
        (
            &|p| p.VidPnSourceId = 5,
            STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY,
        ),
        (
            &|p| p.VidPnTargetId = 5,
            STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY,
        ),
    ];
    for (change, expected) in cases {
        let args = path(change);
        assert_eq!(
            rig.sim.update_active_vidpn_present_path_raw(&args).unwrap(),
            expected
        );
    }
    assert_eq!(rig.sim.take_violations(), Vec::<String>::new());
    rig.assert_clean();
}
