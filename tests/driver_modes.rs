//! Mode changes: up to 8K and back with the right pixels each time and no host resource or DMA
//! memory left behind; a mode change the device refuses leaves the previous mode on screen.
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::vidpn::VidPnModel;
use dxgkrnl_sim::{Machine, Surface};
use sim_support::{assert_shows, Rig};
use viogpu_common::protocol::{CommandType, ResponseType};
use viogpudo::ddi::*;
use viogpudo::thunks::STATUS_PRIVILEGED_INSTRUCTION;

#[test]
fn from_1024x768_to_8k_and_back_with_correct_pixels_and_no_leak() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let first = Surface::pattern(1024, 768, 1);
    rig.sim.present_full(0, &first).unwrap();
    assert_shows(&rig.screen(0), &first, D3DKMDT_VPPR_IDENTITY);
    let resources = rig.gpu().resource_count();
    let hostmem = rig.gpu().hostmem_used();
    let dma = rig.sim.machine().dma_allocated_bytes();

    for (seed, (w, h)) in [(7680u32, 4320u32), (1024, 768)].into_iter().enumerate() {
        rig.sim.set_mode(0, w, h).unwrap();
        let surface = Surface::pattern(w, h, 2 + seed as u32);
        rig.sim.present_full(0, &surface).unwrap();
        assert_shows(&rig.screen(0), &surface, D3DKMDT_VPPR_IDENTITY);
        assert_eq!(
            rig.gpu().resource_count(),
            resources,
            "one framebuffer at {w}x{h}"
        );
    }
    assert_eq!(
        rig.gpu().hostmem_used(),
        hostmem,
        "host memory back where it was"
    );
    assert_eq!(
        rig.sim.machine().dma_allocated_bytes(),
        dma,
        "guest DMA back where it was"
    );
    rig.assert_clean();
}

#[test]
fn a_refused_mode_change_keeps_the_previous_mode_and_picture() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let surface = Surface::pattern(1024, 768, 3);
    rig.sim.present_full(0, &surface).unwrap();
    let resources = rig.gpu().resource_count();
    let dma = rig.sim.machine().dma_allocated_bytes();
    rig.gpu().fail_next(
        CommandType::RESOURCE_CREATE_2D,
        ResponseType::ERR_OUT_OF_MEMORY,
    );
    assert!(rig.sim.set_mode(0, 1920, 1080).is_err());
    assert_eq!(
        rig.sim.committed_mode(0).map(|m| (m.0, m.1)),
        Some((1024, 768))
    );
    assert_shows(&rig.screen(0), &surface, D3DKMDT_VPPR_IDENTITY);
    assert_eq!(rig.gpu().resource_count(), resources);
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma);
    // And the adapter still works.
    rig.sim.set_mode(0, 1920, 1080).unwrap();
    let big = Surface::pattern(1920, 1080, 4);
    rig.sim.present_full(0, &big).unwrap();
    assert_shows(&rig.screen(0), &big, D3DKMDT_VPPR_IDENTITY);
}

#[test]
fn the_running_driver_enumerates_modes_around_a_pinned_source_mode() {
    let mut rig = Rig::booted(&[(1920, 1080)]);
    let model = VidPnModel::new(rig.sim.source_count());
    model.add_path(0, 0).unwrap();
    // Nothing pinned: the monitor's modes on both ends, preferred first.
    let args = DXGKARG_ENUMVIDPNCOFUNCMODALITY {
        hConstrainingVidPn: model.handle(),
        EnumPivotType: D3DKMDT_EPT_NOPIVOT,
        EnumPivot: DXGK_ENUM_PIVOT::default(),
    };
    assert_eq!(
        rig.sim.enum_cofunc_modality_raw(&args).unwrap(),
        STATUS_SUCCESS
    );
    let targets = model.target_modes(0);
    assert_eq!(targets.first(), Some(&(1920, 1080)));
    assert!(targets.contains(&(1280, 800)), "{targets:?}");
    assert_eq!(model.source_modes(0), targets);
    assert_eq!(model.outstanding(), 0);

    // A pinned source mode narrows the target to that size (identity scaling).
    let model = VidPnModel::new(rig.sim.source_count());
    model.add_path(0, 0).unwrap();
    model.pin_source_mode(0, 1280, 800).unwrap();
    let args = DXGKARG_ENUMVIDPNCOFUNCMODALITY {
        hConstrainingVidPn: model.handle(),
        EnumPivotType: D3DKMDT_EPT_VIDPNSOURCE,
        EnumPivot: DXGK_ENUM_PIVOT {
            VidPnSourceId: 0,
            VidPnTargetId: 0,
        },
    };
    assert_eq!(
        rig.sim.enum_cofunc_modality_raw(&args).unwrap(),
        STATUS_SUCCESS
    );
    assert_eq!(model.target_modes(0), vec![(1280, 800)]);
    assert_eq!(model.pinned_source_mode(0), Some((1280, 800)));
    assert_eq!(model.outstanding(), 0);
    // Enumeration changes nothing on screen.
    assert_eq!(
        rig.sim.committed_mode(0).map(|m| (m.0, m.1)),
        Some((1920, 1080))
    );
    let rect = rig.gpu().scanout_rect(0).unwrap();
    assert_eq!((rect.width, rect.height), (1920, 1080));
    rig.assert_clean();
}

#[test]
fn a_size_no_monitor_lists_is_offered_after_the_custom_mode_escape() {
    use viogpudo::adapter::{
        EscapeCustomMode, EscapeHeader, ESCAPE_MAGIC, ESCAPE_SET_CUSTOM_MODE, ESCAPE_VERSION,
    };
    use zerocopy::{FromBytes, IntoBytes};

    let mut rig = Rig::booted(&[(1024, 768)]);
    // An odd host-window size is in no mode list: the VidPN manager finds no target mode.
    assert!(matches!(
        rig.sim.set_mode(0, 1366, 700),
        Err(dxgkrnl_sim::SimError::ModeNotOffered {
            width: 1366,
            height: 700,
            ..
        })
    ));
    // The resolution agent's escape adds it; the driver reports the monitor unplugged and
    // plugged again so the OS re-reads its modes.
    rig.sim.clear_events();
    let request = EscapeCustomMode {
        header: EscapeHeader {
            magic: ESCAPE_MAGIC,
            version: ESCAPE_VERSION,
            command: ESCAPE_SET_CUSTOM_MODE,
            size: std::mem::size_of::<EscapeCustomMode>() as u32,
            status: 0,
            reserved: 0,
        },
        scanout: 0,
        width: 1366,
        height: 700,
        reserved: 0,
    };
    let mut bytes = request.as_bytes().to_vec();
    assert_eq!(rig.sim.escape_raw(&mut bytes).unwrap(), STATUS_SUCCESS);
    let reply = EscapeCustomMode::read_from_bytes(&bytes).unwrap();
    assert_eq!(reply.header.status, STATUS_SUCCESS);
    let indicated: Vec<(u32, u8)> = rig
        .sim
        .indicated_child_status()
        .iter()
        .map(|s| (s.child_uid, s.status))
        .collect();
    assert_eq!(indicated, [(0, 0), (0, 1)]);
    assert!(rig.sim.refresh_child(0).unwrap().connected);
    rig.sim.recommend_monitor_modes(0).unwrap();
    rig.sim.set_mode(0, 1366, 700).unwrap();
    let surface = Surface::pattern(1366, 700, 4);
    rig.sim.present_full(0, &surface).unwrap();
    assert_shows(&rig.screen(0), &surface, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

/// Two sources at 1024x768 and 1280x800, each showing its own pattern, and what the machine
/// holds with them.
struct TwoSources {
    rig: Rig,
    surfaces: [Surface; 2],
    resources: usize,
    hostmem: u64,
    dma: usize,
}

impl TwoSources {
    fn new() -> Self {
        let mut rig = Rig::booted(&[(1024, 768), (1280, 800)]);
        let surfaces = [
            Surface::pattern(1024, 768, 5),
            Surface::pattern(1280, 800, 6),
        ];
        for (source, surface) in surfaces.iter().enumerate() {
            rig.sim.present_full(source as u32, surface).unwrap();
        }
        let resources = rig.gpu().resource_count();
        let hostmem = rig.gpu().hostmem_used();
        let dma = rig.sim.machine().dma_allocated_bytes();
        Self {
            rig,
            surfaces,
            resources,
            hostmem,
            dma,
        }
    }

    /// Both sources to new modes in one commit.
    fn commit_both(&mut self) -> Result<(), dxgkrnl_sim::SimError> {
        self.rig
            .sim
            .set_modes(&[(0, Some((1920, 1080))), (1, Some((1024, 768)))])
    }

    /// After a refused commit: both sources keep their committed modes and pictures, nothing
    /// leaked, and presents at the old sizes still work.
    fn assert_unchanged(&mut self) {
        let rig = &mut self.rig;
        assert_eq!(
            rig.sim.committed_mode(0).map(|m| (m.0, m.1)),
            Some((1024, 768))
        );
        assert_eq!(
            rig.sim.committed_mode(1).map(|m| (m.0, m.1)),
            Some((1280, 800))
        );
        for (source, surface) in self.surfaces.iter().enumerate() {
            assert_shows(&rig.screen(source as u32), surface, D3DKMDT_VPPR_IDENTITY);
        }
        assert_eq!(rig.gpu().resource_count(), self.resources);
        assert_eq!(rig.gpu().hostmem_used(), self.hostmem);
        assert_eq!(rig.sim.machine().dma_allocated_bytes(), self.dma);
        // The driver's source sizes still match the OS's surfaces.
        for (source, seed) in [(0u32, 7u32), (1, 8)] {
            let (w, h) = if source == 0 {
                (1024, 768)
            } else {
                (1280, 800)
            };
            let surface = Surface::pattern(w, h, seed);
            rig.sim.present_full(source, &surface).unwrap();
            assert_shows(&rig.screen(source), &surface, D3DKMDT_VPPR_IDENTITY);
            self.surfaces[source as usize] = surface;
        }
        rig.assert_clean();
    }

    /// The commit that failed can be done once the fault is gone.
    fn assert_commit_works(&mut self) {
        self.commit_both().unwrap();
        for (source, (w, h)) in [(0u32, (1920u32, 1080u32)), (1, (1024, 768))] {
            let surface = Surface::pattern(w, h, 9 + source);
            self.rig.sim.present_full(source, &surface).unwrap();
            assert_shows(&self.rig.screen(source), &surface, D3DKMDT_VPPR_IDENTITY);
        }
        assert_eq!(self.rig.gpu().resource_count(), self.resources);
        self.rig.assert_clean();
    }
}

fn commit_status(result: Result<(), dxgkrnl_sim::SimError>) -> NTSTATUS {
    match result {
        Err(dxgkrnl_sim::SimError::Status {
            ddi: "DxgkDdiCommitVidPn",
            status,
        }) => status,
        other => panic!("expected a failed CommitVidPn, got {other:?}"),
    }
}

#[test]
fn a_commit_of_two_sources_switches_both() {
    let mut t = TwoSources::new();
    t.assert_commit_works();
    assert_eq!(
        t.rig.sim.committed_mode(1).map(|m| (m.0, m.1)),
        Some((1024, 768))
    );
}

#[test]
fn a_commit_whose_second_framebuffer_the_device_refuses_changes_neither_source() {
    let mut t = TwoSources::new();
    t.rig.gpu().fail_nth(
        2,
        CommandType::RESOURCE_CREATE_2D,
        ResponseType::ERR_OUT_OF_MEMORY,
    );
    let status = commit_status(t.commit_both());
    assert_eq!(status, STATUS_DEVICE_HARDWARE_ERROR);
    t.assert_unchanged();
    t.assert_commit_works();
}

#[test]
fn a_new_mode_whose_scanout_switch_the_device_refuses_keeps_the_old_picture_until_the_next_present()
{
    let mut t = TwoSources::new();
    // A VidPN mode change points the scanout at the new framebuffer with its first picture:
    // the device refuses that SET_SCANOUT, so the OS's first present fails...
    t.rig.gpu().fail_next(
        CommandType::SET_SCANOUT,
        ResponseType::ERR_INVALID_PARAMETER,
    );
    let result = t.commit_both();
    assert!(
        matches!(
            result,
            Err(dxgkrnl_sim::SimError::Status {
                ddi: "DxgkDdiPresentDisplayOnly",
                status: STATUS_DEVICE_HARDWARE_ERROR,
            })
        ),
        "{result:?}"
    );
    // ... and the screen keeps the old picture (never a resource the host got no pixels for).
    assert_shows(&t.rig.screen(0), &t.surfaces[0], D3DKMDT_VPPR_IDENTITY);
    // The next present shows the new mode, and the old framebuffer is gone.
    let surface = Surface::pattern(1920, 1080, 21);
    t.rig.sim.present_full(0, &surface).unwrap();
    assert_shows(&t.rig.screen(0), &surface, D3DKMDT_VPPR_IDENTITY);
    t.assert_commit_works();
}

/// The README's known gap, pinned down: the device refuses to turn source 1 off and then to
/// show its picture again (source 0's switch to its new mode sent nothing yet: that waits for
/// its first picture, so undoing it sends nothing either). The commit fails, nothing leaks, and
/// the next commit brings both sources to the new modes with their pictures.
#[test]
fn a_rollback_the_device_also_refuses_fails_the_commit_and_the_next_commit_recovers() {
    let mut t = TwoSources::new();
    // SET_SCANOUTs 1 and 2: source 1 turned off, source 1's picture put back.
    for n in [1, 2] {
        t.rig.gpu().fail_nth(
            n,
            CommandType::SET_SCANOUT,
            ResponseType::ERR_INVALID_PARAMETER,
        );
    }
    let result = t.rig.sim.set_modes(&[(0, Some((1920, 1080))), (1, None)]);
    assert_eq!(commit_status(result), STATUS_DEVICE_HARDWARE_ERROR);
    assert_eq!(t.rig.gpu().resource_count(), t.resources);
    // Source 0 never left its old picture.
    assert_shows(&t.rig.screen(0), &t.surfaces[0], D3DKMDT_VPPR_IDENTITY);
    t.assert_commit_works();
}

#[test]
fn a_commit_that_turns_a_source_off_is_undone_when_the_device_refuses_it() {
    let mut t = TwoSources::new();
    // Source 0's switch goes through (its SET_SCANOUT waits for the first picture), turning
    // source 1 off does not.
    t.rig.gpu().fail_nth(
        1,
        CommandType::SET_SCANOUT,
        ResponseType::ERR_INVALID_PARAMETER,
    );
    let result = t.rig.sim.set_modes(&[(0, Some((1920, 1080))), (1, None)]);
    assert_eq!(commit_status(result), STATUS_DEVICE_HARDWARE_ERROR);
    t.assert_unchanged();
    // Without the fault: source 0 at the new size, source 1 off and its framebuffer gone.
    t.rig
        .sim
        .set_modes(&[(0, Some((1920, 1080))), (1, None)])
        .unwrap();
    assert_eq!(t.rig.sim.committed_mode(1), None);
    assert!(t.rig.gpu().scanout_image(1).is_none());
    assert_eq!(t.rig.gpu().resource_count(), t.resources - 1);
    let surface = Surface::pattern(1920, 1080, 12);
    t.rig.sim.present_full(0, &surface).unwrap();
    assert_shows(&t.rig.screen(0), &surface, D3DKMDT_VPPR_IDENTITY);
    t.rig.assert_clean();
}

#[test]
fn a_commit_of_two_sources_without_dma_memory_changes_neither_source() {
    let mut t = TwoSources::new();
    for n in 0..256 {
        t.rig.sim.machine().hal().fail_allocations_after(Some(n));
        let result = t.commit_both();
        t.rig.sim.machine().hal().fail_allocations_after(None);
        if result.is_ok() {
            assert!(n > 1, "both framebuffers need memory");
            for (source, (w, h)) in [(0u32, (1920u32, 1080u32)), (1, (1024, 768))] {
                let surface = Surface::pattern(w, h, 20 + source);
                t.rig.sim.present_full(source, &surface).unwrap();
                assert_shows(&t.rig.screen(source), &surface, D3DKMDT_VPPR_IDENTITY);
            }
            assert_eq!(t.rig.gpu().resource_count(), t.resources);
            t.rig.assert_clean();
            return;
        }
        assert_eq!(commit_status(result), STATUS_NO_MEMORY, "allocation {n}");
        t.assert_unchanged();
    }
    panic!("the commit never succeeded");
}

#[test]
fn only_a_trusted_caller_may_set_a_custom_mode_through_the_escape() {
    use viogpudo::adapter::escape::{
        EscapeCustomMode, EscapeHeader, ESCAPE_MAGIC, ESCAPE_SET_CUSTOM_MODE, ESCAPE_VERSION,
    };
    use zerocopy::IntoBytes;
    let mut rig = Rig::booted(&[(1280, 800)]);
    let modes_before = rig.sim.recommend_monitor_modes(0).unwrap();
    rig.sim.clear_events();
    rig.sim.set_escape_caller_trusted(false);
    let request = EscapeCustomMode {
        header: EscapeHeader {
            magic: ESCAPE_MAGIC,
            version: ESCAPE_VERSION,
            command: ESCAPE_SET_CUSTOM_MODE,
            size: std::mem::size_of::<EscapeCustomMode>() as u32,
            status: 0,
            reserved: 0,
        },
        scanout: 0,
        width: 1366,
        height: 700,
        reserved: 0,
    };
    let mut bytes = request.as_bytes().to_vec();
    assert_eq!(
        rig.sim.escape_raw(&mut bytes).unwrap(),
        STATUS_PRIVILEGED_INSTRUCTION
    );
    assert!(
        rig.sim.indicated_child_status().is_empty(),
        "no re-enumeration"
    );
    assert_eq!(rig.sim.recommend_monitor_modes(0).unwrap(), modes_before);
    // The same request from the resolution service goes through.
    rig.sim.set_escape_caller_trusted(true);
    let mut bytes = request.as_bytes().to_vec();
    assert_eq!(rig.sim.escape_raw(&mut bytes).unwrap(), STATUS_SUCCESS);
    rig.assert_clean();
}
