//! Present: dirty rectangles update exactly their area, move rectangles copy screen to screen
//! (overlapping ones included), under each path rotation.
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::{rect, Surface};
use sim_support::{assert_shows, Rig, ROTATIONS};
use viogpudo::ddi::*;

/// Copies `dest`'s size from `from` at `src` into `to` at `dest`, as a move rect does.
fn apply_move(from: &Surface, to: &mut Surface, src: (u32, u32), dest: RECT) {
    for dy in 0..(dest.bottom - dest.top) as u32 {
        for dx in 0..(dest.right - dest.left) as u32 {
            let p = from.pixel(src.0 + dx, src.1 + dy).unwrap();
            to.set_pixel(dest.left as u32 + dx, dest.top as u32 + dy, p);
        }
    }
}

fn move_rect(src: (i32, i32), dest: RECT) -> D3DKMT_MOVE_RECT {
    D3DKMT_MOVE_RECT {
        SourcePoint: POINT { x: src.0, y: src.1 },
        DestRect: dest,
    }
}

#[test]
fn dirty_and_move_rects_under_every_rotation() {
    for rotation in ROTATIONS {
        let mut rig = Rig::booted(&[(1024, 768)]);
        let (w, h) = if rotation == D3DKMDT_VPPR_ROTATE90 || rotation == D3DKMDT_VPPR_ROTATE270 {
            (480, 640)
        } else {
            (640, 480)
        };
        rig.sim.set_mode_rotated(0, w, h, rotation).unwrap();
        let a = Surface::pattern(w, h, 1);
        rig.sim.present_full(0, &a).unwrap();
        assert_shows(&rig.screen(0), &a, rotation);

        // The compositor's next frame: a window moved, its old place repainted, and a small
        // change elsewhere.
        let dest = rect(200, 300, 400, 400);
        let mut b = a.clone();
        apply_move(&a, &mut b, (100, 50), dest);
        let repaint = rect(100, 50, 200, 150);
        b.fill(repaint, 0x00C0_FFEE);
        let small = rect(10, 400, 60, 470);
        b.fill(small, 0x0012_3456);
        rig.sim
            .present(0, &b, &[repaint, small], &[move_rect((100, 50), dest)])
            .unwrap();
        assert_shows(&rig.screen(0), &b, rotation);
        rig.assert_clean();
    }
}

#[test]
fn a_dirty_rect_changes_nothing_outside_itself() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let a = Surface::pattern(1024, 768, 5);
    rig.sim.present_full(0, &a).unwrap();
    // A surface that differs everywhere, presented with one dirty rect: only that rect shows.
    let b = Surface::pattern(1024, 768, 6);
    let dirty = rect(512, 0, 1024, 1);
    rig.sim.present(0, &b, &[dirty], &[]).unwrap();
    let mut expected = a.clone();
    apply_move(&b, &mut expected, (512, 0), dirty);
    assert_shows(&rig.screen(0), &expected, D3DKMDT_VPPR_IDENTITY);
}

#[test]
fn overlapping_moves_copy_as_if_through_a_temporary() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let a = Surface::pattern(1024, 768, 7);
    rig.sim.present_full(0, &a).unwrap();
    let mut b = a.clone();
    // Right-down by (20, 10) and left-up by (15, 25): both overlap their sources.
    let right_down = rect(70, 60, 270, 260);
    apply_move(&a, &mut b, (50, 50), right_down);
    let a2 = b.clone();
    let left_up = rect(500, 300, 700, 500);
    apply_move(&a2, &mut b, (515, 325), left_up);
    rig.sim
        .present(
            0,
            &b,
            &[],
            &[
                move_rect((50, 50), right_down),
                move_rect((515, 325), left_up),
            ],
        )
        .unwrap();
    assert_shows(&rig.screen(0), &b, D3DKMDT_VPPR_IDENTITY);
}

/// SetVidPnSourceVisibility(FALSE) shows black, not the last frame, and drops presents; made
/// visible again, the first present (however small its dirty rectangle) brings the whole
/// desktop back.
#[test]
fn an_invisible_source_shows_black_and_its_first_visible_present_is_a_full_one() {
    let mut rig = Rig::booted(&[(800, 600)]);
    let desktop = Surface::pattern(800, 600, 3);
    rig.sim.present_full(0, &desktop).unwrap();
    assert_shows(&rig.screen(0), &desktop, D3DKMDT_VPPR_IDENTITY);
    rig.sim.set_source_visibility(0, false).unwrap();
    let black = Surface::new(800, 600);
    assert_shows(&rig.screen(0), &black, D3DKMDT_VPPR_IDENTITY);
    rig.sim
        .present_full(0, &Surface::pattern(800, 600, 4))
        .unwrap();
    assert_shows(&rig.screen(0), &black, D3DKMDT_VPPR_IDENTITY);
    rig.sim.set_source_visibility(0, true).unwrap();
    rig.sim
        .present(0, &desktop, &[rect(10, 10, 20, 20)], &[])
        .unwrap();
    assert_shows(&rig.screen(0), &desktop, D3DKMDT_VPPR_IDENTITY);
    // Only the first one: the next present sends its dirty rectangle alone.
    let mut next = desktop.clone();
    next.fill(rect(0, 0, 4, 4), 0x00FF_0000);
    rig.sim.present(0, &next, &[rect(0, 0, 4, 4)], &[]).unwrap();
    assert_shows(&rig.screen(0), &next, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

/// StartDevice leaves every source invisible: a present before the OS makes it visible
/// reaches nothing, and the screen shows black.
#[test]
fn a_started_source_is_invisible_until_the_os_makes_it_visible() {
    let mut rig = Rig::load(&[(800, 600)]);
    rig.sim.boot_device().unwrap();
    rig.sim
        .present_full(0, &Surface::pattern(800, 600, 5))
        .unwrap();
    assert_shows(
        &rig.screen(0),
        &Surface::new(800, 600),
        D3DKMDT_VPPR_IDENTITY,
    );
    rig.sim.set_source_visibility(0, true).unwrap();
    let desktop = Surface::pattern(800, 600, 6);
    rig.sim.present_full(0, &desktop).unwrap();
    assert_shows(&rig.screen(0), &desktop, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

/// `Flags.Rotate` clear: the OS turned the surface itself (it has the framebuffer's size), so
/// the driver copies it as it is; only a set flag asks the driver to turn the desktop.
#[test]
fn a_surface_the_os_already_turned_is_copied_as_it_is() {
    for rotation in [
        D3DKMDT_VPPR_ROTATE90,
        D3DKMDT_VPPR_ROTATE180,
        D3DKMDT_VPPR_ROTATE270,
    ] {
        let mut rig = Rig::booted(&[(800, 600)]);
        // A 600x800 desktop shown turned on the 800x600 head (or 800x600 upside down).
        let quarter = rotation != D3DKMDT_VPPR_ROTATE180;
        let (dw, dh) = if quarter { (600, 800) } else { (800, 600) };
        rig.sim.set_mode_rotated(0, dw, dh, rotation).unwrap();
        // The OS's surface is already in the framebuffer's orientation, 800x600. Rows past its
        // height hold garbage the driver must not read (a driver that takes the desktop's
        // height would).
        let mut turned = Surface::pattern(800, 600, 7);
        let rows = turned.bytes.len();
        turned
            .bytes
            .resize(rows + 200 * turned.pitch as usize, 0x5A);
        rig.sim
            .present_turned_by_os(0, &turned, &[rect(0, 0, 800, 600)])
            .unwrap();
        assert_shows(&rig.screen(0), &turned, D3DKMDT_VPPR_IDENTITY);
        rig.assert_clean();
    }
}

/// SetVidPnSourceVisibility with D3DDDI_ID_ALL applies to every source (the KMDOD sample
/// accepts it).
#[test]
fn visibility_for_all_sources_at_once() {
    let mut rig = Rig::booted(&[(800, 600), (640, 480)]);
    rig.sim.set_mode(1, 640, 480).unwrap();
    rig.sim
        .present_full(0, &Surface::pattern(800, 600, 1))
        .unwrap();
    rig.sim
        .present_full(1, &Surface::pattern(640, 480, 2))
        .unwrap();
    rig.sim.set_source_visibility(D3DDDI_ID_ALL, false).unwrap();
    assert_shows(
        &rig.screen(0),
        &Surface::new(800, 600),
        D3DKMDT_VPPR_IDENTITY,
    );
    assert_shows(
        &rig.screen(1),
        &Surface::new(640, 480),
        D3DKMDT_VPPR_IDENTITY,
    );
    rig.sim.set_source_visibility(D3DDDI_ID_ALL, true).unwrap();
    let desktop = Surface::pattern(640, 480, 3);
    rig.sim
        .present(1, &desktop, &[rect(0, 0, 1, 1)], &[])
        .unwrap();
    assert_shows(&rig.screen(1), &desktop, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}
