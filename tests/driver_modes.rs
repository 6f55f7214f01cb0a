//! Mode changes: up to 8K and back with the right pixels each time and no host resource or DMA
//! memory left behind; a mode change the device refuses leaves the previous mode on screen.
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::{Machine, Surface};
use sim_support::{assert_shows, Rig};
use viogpu_common::protocol::{CommandType, ResponseType};
use viogpudo::ddi::*;

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
