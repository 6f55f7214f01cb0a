//! Present: dirty rectangles update exactly their area, move rectangles copy screen to screen
//! (overlapping ones included), under each path rotation. The source surface is user-mode
//! memory the driver can read only through the OS layer's probe-and-lock (the simulator maps
//! it PROT_NONE until then, so a direct read crashes the test); a source with an invalid page
//! fails cleanly and changes nothing.
#![allow(clippy::unwrap_used)]

mod sim_support;

use std::ptr;

use dxgkrnl_sim::{rect, Event, Machine, Surface, UserBuffer};
use sim_support::{assert_shows, Rig, ROTATIONS};
use viogpu_common::blit::avx2_usable;
use viogpudo::ddi::*;
use viogpudo::os::hosted::irql;
use viogpudo::os::STATUS_ACCESS_VIOLATION;

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

/// The copy of a present the driver turns 90 or 270 degrees runs with the AVX state saved
/// (once per present, at PASSIVE_LEVEL: the simulator checks the restore's IRQL), so the core
/// may use its AVX2 transpose; unrotated, 180-degree and OS-turned presents save nothing, and
/// so does every present on a processor without AVX2. The pixels are right either way.
#[test]
fn only_quarter_turns_save_the_avx_state() {
    let saves = |rig: &Rig| {
        rig.sim
            .events()
            .iter()
            .filter(|e| matches!(e, Event::AvxStateSaved { .. }))
            .count()
    };
    for rotation in ROTATIONS {
        let mut rig = Rig::booted(&[(1024, 768)]);
        let quarter = rotation == D3DKMDT_VPPR_ROTATE90 || rotation == D3DKMDT_VPPR_ROTATE270;
        let (w, h) = if quarter { (480, 640) } else { (640, 480) };
        rig.sim.set_mode_rotated(0, w, h, rotation).unwrap();
        rig.sim.clear_events();
        let a = Surface::pattern(w, h, 3);
        rig.sim.present_full(0, &a).unwrap();
        let mut b = a.clone();
        let small = rect(17, 33, 81, 97);
        b.fill(small, 0x0033_6699);
        rig.sim.present(0, &b, &[small], &[]).unwrap();
        assert_shows(&rig.screen(0), &b, rotation);
        // Without AVX2 (not the CI machines) nothing is worth saving.
        let expected = if quarter && avx2_usable() { 2 } else { 0 };
        assert_eq!(saves(&rig), expected, "{rotation:?}");
        assert!(rig
            .sim
            .events()
            .iter()
            .all(|e| !matches!(e, Event::AvxStateSaved { irql } if *irql != irql::PASSIVE_LEVEL)));
        if quarter {
            // The OS turned this one itself: a plain copy, no YMM registers.
            rig.sim.clear_events();
            let turned = Surface::pattern(640, 480, 4);
            rig.sim
                .present_turned_by_os(0, &turned, &[rect(0, 0, 640, 480)])
                .unwrap();
            assert_shows(&rig.screen(0), &turned, D3DKMDT_VPPR_IDENTITY);
            assert_eq!(saves(&rig), 0, "{rotation:?}, turned by the OS");
        }
        rig.assert_clean();
    }
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

/// The arguments of a present of `dirty` from the surface at `pixels`, `pitch` bytes a row.
fn present_from(
    pixels: *mut std::ffi::c_void,
    pitch: u32,
    dirty: &mut [RECT],
) -> DXGKARG_PRESENT_DISPLAYONLY {
    DXGKARG_PRESENT_DISPLAYONLY {
        VidPnSourceId: 0,
        pSource: pixels,
        BytesPerPixel: 4,
        Pitch: pitch as i32,
        Flags: D3DKMT_PRESENT_DISPLAY_ONLY_FLAGS::default(),
        NumMoves: 0,
        pMoves: ptr::null_mut(),
        NumDirtyRects: dirty.len() as u32,
        pDirtyRect: dirty.as_mut_ptr(),
        pfnPresentDisplayOnlyProgress: None,
    }
}

/// The driver probes and locks only the rows a present reads: from the top of its highest
/// rect to the bottom of its lowest, dirty rects and move destinations alike (a move's source
/// point is only checked), under every rotation. The simulator keeps the pages outside the
/// lock unreadable, so a read beyond the locked rows' pages would crash the test.
#[test]
fn a_present_locks_only_the_rows_its_rects_cover() {
    for rotation in ROTATIONS {
        let mut rig = Rig::booted(&[(1024, 768)]);
        let quarter = rotation == D3DKMDT_VPPR_ROTATE90 || rotation == D3DKMDT_VPPR_ROTATE270;
        let (w, h) = if quarter { (480, 640) } else { (640, 480) };
        rig.sim.set_mode_rotated(0, w, h, rotation).unwrap();
        let a = Surface::pattern(w, h, 8);
        rig.sim.present_full(0, &a).unwrap();

        let b = Surface::pattern(w, h, 9);
        let user = UserBuffer::copy_of(&b.bytes).unwrap();
        let mut dirty = [rect(10, 100, 50, 120), rect(200, 130, 260, 140)];
        let moved_to = rect(300, 90, 340, 110);
        let mut moves = [move_rect((0, 400), moved_to)];
        let mut args = present_from(user.address(), b.pitch, &mut dirty);
        args.Flags.set_rotate(true);
        args.NumMoves = 1;
        args.pMoves = moves.as_mut_ptr();
        assert_eq!(rig.sim.present_raw(&args).unwrap(), STATUS_SUCCESS);
        let pitch = b.pitch as usize;
        assert_eq!(
            user.last_lock(),
            Some((90 * pitch, 50 * pitch)),
            "{rotation:?}"
        );
        assert_eq!(user.locks(), 0);

        let mut expected = a.clone();
        for r in [dirty[0], dirty[1], moved_to] {
            let from = (r.left as u32, r.top as u32);
            apply_move(&b, &mut expected, from, r);
        }
        assert_shows(&rig.screen(0), &expected, rotation);
        rig.assert_clean();
    }
}

/// Every present above reads a user-mode source (the simulator's `present`); here the same
/// through a caller-made [`UserBuffer`]: the pixels arrive, and when the DDI returns the pages
/// are unlocked and unreadable again. A kernel-mode source (any other pointer) is read as it
/// is.
#[test]
fn a_user_mode_source_is_read_through_the_probe_and_unlocked_after() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let desktop = Surface::pattern(1024, 768, 7);
    let user = UserBuffer::copy_of(&desktop.bytes).unwrap();
    let mut dirty = [rect(0, 0, 1024, 768)];
    let args = present_from(user.address(), desktop.pitch, &mut dirty);
    assert_eq!(rig.sim.present_raw(&args).unwrap(), STATUS_SUCCESS);
    assert_shows(&rig.screen(0), &desktop, D3DKMDT_VPPR_IDENTITY);
    assert_eq!(
        user.locks(),
        0,
        "the pages are unlocked when the DDI returns"
    );

    let kernel = Surface::pattern(1024, 768, 8);
    let mut dirty = [rect(0, 0, 1024, 768)];
    let args = present_from(
        kernel.bytes.as_ptr().cast_mut().cast(),
        kernel.pitch,
        &mut dirty,
    );
    assert_eq!(rig.sim.present_raw(&args).unwrap(), STATUS_SUCCESS);
    assert_shows(&rig.screen(0), &kernel, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

/// What a bad user-mode source must leave behind: the old picture, the same host resources,
/// DMA memory and driver heap, no page still locked (the simulator also fails the test on a
/// lock that outlives the DDI).
fn assert_nothing_changed(rig: &Rig, shown: &Surface, resources: usize, dma: usize, heap: i64) {
    assert_shows(&rig.screen(0), shown, D3DKMDT_VPPR_IDENTITY);
    assert_eq!(rig.gpu().resource_count(), resources, "host resources");
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma, "DMA memory");
    assert_eq!(irql::driver_heap_bytes(), heap, "driver heap");
    rig.assert_clean();
}

/// A user-mode source whose last page the user decommitted (it stays PROT_NONE even when
/// probed): a present whose rects reach that page fails with STATUS_ACCESS_VIOLATION (what the
/// KMDOD sample returns: the exception code of MmProbeAndLockPages) before touching anything.
/// The driver probes and locks only the rows the rects cover, so a present whose rects stay in
/// the valid pages succeeds and reads nothing else (the simulator keeps unlocked user pages
/// PROT_NONE: a read outside the locked rows would crash the test).
#[test]
fn a_source_with_a_decommitted_page_fails_cleanly_and_changes_nothing() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let shown = Surface::pattern(1024, 768, 1);
    rig.sim.present_full(0, &shown).unwrap();
    let resources = rig.gpu().resource_count();
    let dma = rig.sim.machine().dma_allocated_bytes();
    let heap = irql::driver_heap_bytes();

    let next = Surface::pattern(1024, 768, 2);
    let user = UserBuffer::copy_of(&next.bytes).unwrap();
    user.decommit_last_page();
    // The whole frame, and a small rect in the last row (in the decommitted page).
    for dirty in [rect(0, 0, 1024, 768), rect(1000, 767, 1016, 768)] {
        let mut dirty = [dirty];
        let args = present_from(user.address(), next.pitch, &mut dirty);
        assert_eq!(rig.sim.present_raw(&args).unwrap(), STATUS_ACCESS_VIOLATION);
        assert_eq!(user.locks(), 0);
        assert_nothing_changed(&rig, &shown, resources, dma, heap);
    }

    // A rect in the valid pages: only its rows are locked, and it arrives.
    let small = rect(0, 0, 16, 16);
    let mut dirty = [small];
    let args = present_from(user.address(), next.pitch, &mut dirty);
    assert_eq!(rig.sim.present_raw(&args).unwrap(), STATUS_SUCCESS);
    assert_eq!(user.locks(), 0);
    let mut expected = shown.clone();
    apply_move(&next, &mut expected, (0, 0), small);
    assert_shows(&rig.screen(0), &expected, D3DKMDT_VPPR_IDENTITY);

    // The adapter is unharmed: the same frame from valid memory arrives.
    rig.sim.present_full(0, &next).unwrap();
    assert_shows(&rig.screen(0), &next, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

/// A user-mode source smaller than the mode (the OS never sends one, a broken caller might):
/// a rect below its end makes the probe run past the buffer and fail, and nothing changes;
/// before the probe, the driver read past the surface. Rects inside the buffer's rows are
/// copied: those rows are all the driver reads.
#[test]
fn a_user_source_shorter_than_the_mode_fails_cleanly() {
    let mut rig = Rig::booted(&[(1024, 768)]);
    let shown = Surface::pattern(1024, 768, 1);
    rig.sim.present_full(0, &shown).unwrap();
    let resources = rig.gpu().resource_count();
    let dma = rig.sim.machine().dma_allocated_bytes();
    let heap = irql::driver_heap_bytes();

    let short = Surface::pattern(1024, 700, 2);
    let user = UserBuffer::copy_of(&short.bytes).unwrap();
    for dirty in [rect(0, 0, 1024, 768), rect(0, 690, 8, 701)] {
        let mut dirty = [dirty];
        let args = present_from(user.address(), short.pitch, &mut dirty);
        assert_eq!(rig.sim.present_raw(&args).unwrap(), STATUS_ACCESS_VIOLATION);
        assert_eq!(user.locks(), 0);
        assert_nothing_changed(&rig, &shown, resources, dma, heap);
    }
    let inside = rect(0, 0, 1024, 700);
    let mut dirty = [inside];
    let args = present_from(user.address(), short.pitch, &mut dirty);
    assert_eq!(rig.sim.present_raw(&args).unwrap(), STATUS_SUCCESS);
    assert_eq!(user.locks(), 0);
    let mut expected = shown.clone();
    apply_move(&short, &mut expected, (0, 0), inside);
    assert_shows(&rig.screen(0), &expected, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

/// A failed present after the source became visible again leaves the pending full repaint
/// pending: the next good present, with a tiny dirty rect, still repaints the whole desktop.
#[test]
fn a_failed_present_keeps_the_pending_full_repaint() {
    let mut rig = Rig::booted(&[(800, 600)]);
    rig.sim
        .present_full(0, &Surface::pattern(800, 600, 1))
        .unwrap();
    rig.sim.set_source_visibility(0, false).unwrap();
    rig.sim.set_source_visibility(0, true).unwrap();
    let desktop = Surface::pattern(800, 600, 2);
    let user = UserBuffer::copy_of(&desktop.bytes).unwrap();
    user.decommit_from(desktop.bytes.len() / 2);
    let mut dirty = [rect(0, 0, 8, 8)];
    let args = present_from(user.address(), desktop.pitch, &mut dirty);
    assert_eq!(rig.sim.present_raw(&args).unwrap(), STATUS_ACCESS_VIOLATION);
    assert_shows(
        &rig.screen(0),
        &Surface::new(800, 600),
        D3DKMDT_VPPR_IDENTITY,
    );
    rig.sim
        .present(0, &desktop, &[rect(0, 0, 8, 8)], &[])
        .unwrap();
    assert_shows(&rig.screen(0), &desktop, D3DKMDT_VPPR_IDENTITY);
    rig.assert_clean();
}

/// The simulator's user memory really is unreadable without the probe: a direct read (what
/// the driver did before it read sources through `os::probe_and_lock`) kills the process with
/// SIGSEGV. Run in a child process of this test binary.
#[test]
fn a_direct_read_of_a_user_source_is_a_crash() {
    const CHILD: &str = "VIOGPUDO_DIRECT_READ_CHILD";
    let user = UserBuffer::copy_of(&[0x5A; 64]).unwrap();
    if std::env::var_os(CHILD).is_some() {
        // SAFETY: deliberately not: the page is mapped PROT_NONE, so this read faults. This
        // branch runs only in the child process the test below starts.
        let byte = unsafe { ptr::read_volatile(user.address().cast::<u8>()) };
        println!("read {byte:#x} without a fault");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_direct_read_of_a_user_source_is_a_crash",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc_sigsegv()),
        "child: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

/// SIGSEGV's number on Linux (every architecture the tests run on).
fn libc_sigsegv() -> i32 {
    11
}
