//! The heap-failure sweep (issue 12, rule 11; issue 8, rule 8): the driver never allocates
//! infallibly.
//!
//! For N = 0, 1, 2, ... the N-th heap allocation the driver's own code makes (the simulator's
//! and the device model's are left out: `irql::sim_code`) fails, as ExAllocatePool2 returns
//! NULL when pool runs out, during boot (AddDevice + StartDevice), during a D3 -> D0 power
//! cycle, during a display-info refresh after a display-change event, during a mode change
//! cycle through the whole VidPN dialogue, a two-source commit, a present with dirty and move
//! rects, a pointer shape and move, and the escape, until the operation runs without reaching
//! the N-th allocation. A driver that still has an infallible
//! allocation (`Box::new`, `Vec::push` without `try_reserve`, `to_vec`, `collect`, ...) on
//! such a path calls `handle_alloc_error`, which aborts this test process (a bugcheck on
//! Windows): the sweep finishing at all is the proof. Each run must also end with a
//! documented status or a graceful outcome, no broken Windows rule, and nothing leaked (DMA
//! memory, BAR mappings, the driver's heap after RemoveDevice).
#![allow(clippy::unwrap_used)]

mod sim_support;

use dxgkrnl_sim::{rect, Machine, PointerShape, Surface};
use sim_support::{assert_shows, Rig};
use viogpudo::ddi::*;
use viogpudo::os::hosted::irql;

/// No operation here makes anywhere near this many allocations; reaching it means the
/// sweep never ends (a failure that is never delivered).
const MAX_SWEEP: u64 = 5_000;

/// The displays of every run: two heads, both connected (EDIDs, mode lists, two framebuffers).
const DISPLAYS: [(u32, u32); 2] = [(1024, 768), (800, 600)];

/// Runs `op` with the `n`-th driver allocation failing; true when that failure was delivered.
fn with_failure_at<R>(n: u64, op: impl FnOnce() -> R) -> (R, bool) {
    irql::fail_driver_allocation_after(Some(n));
    let r = op();
    (r, irql::take_injected_failure())
}

/// A failed heap allocation ends a DDI that cannot go on with one of these.
fn is_no_memory(status: NTSTATUS) -> bool {
    status == STATUS_NO_MEMORY || status == STATUS_INSUFFICIENT_RESOURCES
}

/// Stops (when started) and removes the adapter, then checks that nothing is left: no DMA
/// memory, no mapping, the device reset, and the driver's heap back where it was before
/// AddDevice.
fn remove_and_check_nothing_leaked(mut rig: Rig, heap_before: i64, started: bool, n: u64) {
    if started {
        rig.sim.stop().unwrap();
    }
    rig.sim.remove().unwrap();
    assert_eq!(
        rig.sim.machine().dma_allocated_bytes(),
        0,
        "N={n}: DMA memory"
    );
    assert!(rig.sim.live_mappings().is_empty(), "N={n}: BAR mappings");
    assert_eq!(
        rig.sim.machine().device().status(),
        0,
        "N={n}: device reset"
    );
    assert_eq!(
        irql::driver_heap_bytes(),
        heap_before,
        "N={n}: driver heap after RemoveDevice"
    );
    rig.assert_clean();
}

#[test]
fn boot_survives_each_failed_allocation() {
    let mut completed = false;
    for n in 0..MAX_SWEEP {
        let mut rig = Rig::load(&DISPLAYS);
        let heap_before = irql::driver_heap_bytes();
        let ((added, started), hit) = with_failure_at(n, || {
            let added = rig.sim.add_device();
            let started = added.is_ok().then(|| rig.sim.start_device());
            (added, started)
        });
        match (&added, &started) {
            (Err(e), _) => {
                assert!(
                    hit,
                    "N={n}: AddDevice failed without a failed allocation: {e:?}"
                );
                assert_eq!(e.status(), Some(STATUS_NO_MEMORY), "N={n}: AddDevice");
                assert_eq!(irql::driver_heap_bytes(), heap_before, "N={n}: heap");
                rig.assert_clean();
                continue;
            }
            (Ok(()), Some(Err(e))) => {
                assert!(
                    hit,
                    "N={n}: StartDevice failed without a failed allocation: {e:?}"
                );
                let status = e.status().unwrap_or(STATUS_SUCCESS);
                assert!(
                    is_no_memory(status),
                    "N={n}: StartDevice failed with {status:#x}"
                );
            }
            (Ok(()), _) => {}
        }
        let started = matches!(started, Some(Ok(())));
        if started {
            // A failure the driver absorbed (an EDID it could not keep, say) still leaves a
            // working adapter.
            assert!(rig.sim.source_count() >= 1, "N={n}");
        }
        remove_and_check_nothing_leaked(rig, heap_before, started, n);
        if !hit {
            completed = true;
            eprintln!("boot: {n} driver allocations, each failed once");
            break;
        }
    }
    assert!(completed, "the sweep never ran out of allocations to fail");
}

#[test]
fn a_power_cycle_survives_each_failed_allocation() {
    let mut completed = false;
    for n in 0..MAX_SWEEP {
        let mut rig = Rig::load(&DISPLAYS);
        let heap_before = irql::driver_heap_bytes();
        rig.sim.boot().unwrap();
        // SetPowerState must not fail (the simulator records a violation if it does), so
        // both transitions succeed whatever the heap does.
        let (result, hit) = with_failure_at(n, || {
            rig.sim.set_power(PowerDeviceD3)?;
            rig.sim.set_power(PowerDeviceD0)
        });
        result.unwrap_or_else(|e| panic!("N={n}: power cycle: {e:?}"));
        // Whatever the failure cost, the next cycle brings the adapter back.
        rig.sim.set_power(PowerDeviceD3).unwrap();
        rig.sim.set_power(PowerDeviceD0).unwrap();
        assert!(rig.screen(0).width > 0, "N={n}: scanout 0 shows nothing");
        remove_and_check_nothing_leaked(rig, heap_before, true, n);
        if !hit {
            completed = true;
            eprintln!("power cycle: {n} driver allocations, each failed once");
            break;
        }
    }
    assert!(completed, "the sweep never ran out of allocations to fail");
}

#[test]
fn a_display_refresh_survives_each_failed_allocation() {
    let mut completed = false;
    for n in 0..MAX_SWEEP {
        let mut rig = Rig::load(&DISPLAYS);
        let heap_before = irql::driver_heap_bytes();
        rig.sim.boot().unwrap();
        let (status, hit) = with_failure_at(n, || {
            // The event (ISR, DPC posting GET_DISPLAY_INFO, the DPC that reads the answer),
            // then the OS asks: the driver re-reads display info and EDIDs at PASSIVE_LEVEL.
            rig.display_change(0, 1280, 800, true);
            let mut child = DXGK_CHILD_STATUS {
                Type: StatusConnection,
                ChildUid: 0,
                Status: 0,
            };
            rig.sim.query_child_status_raw(&mut child)
        });
        let status = status.unwrap();
        assert!(
            status == STATUS_SUCCESS || is_no_memory(status),
            "N={n}: QueryChildStatus {status:#x}"
        );
        // The refresh happens again on the next query when it could not complete.
        let child = rig.sim.refresh_child(0).unwrap();
        assert!(child.connected, "N={n}");
        remove_and_check_nothing_leaked(rig, heap_before, true, n);
        if !hit {
            completed = true;
            eprintln!("display refresh: {n} driver allocations, each failed once");
            break;
        }
    }
    assert!(completed, "the sweep never ran out of allocations to fail");
}

// ---------------------------------------------------------------------------------------
// The operations after boot (issue 8, rule 8): mode changes through the whole VidPN path,
// presents, the pointer and the escape.
// ---------------------------------------------------------------------------------------

/// The big mode of the swept mode-change cycle. 8K (7680x4320, nine 16 MiB framebuffer
/// chunks) costs about a second per run in a debug build, a minute or more for the whole
/// sweep; 4K UHD (3840x2160, 33 MB) goes through the same paths (a framebuffer of several
/// chunks and memory entries, built beside the old one, then the old one freed) in a
/// fraction of it, and has the same allocation sites. `VIOGPUDO_SWEEP_BIG=WxH` sweeps
/// another size, e.g. `VIOGPUDO_SWEEP_BIG=7680x4320`.
fn big_mode() -> (u32, u32) {
    std::env::var("VIOGPUDO_SWEEP_BIG")
        .ok()
        .and_then(|v| {
            let (w, h) = v.split_once('x')?;
            Some((w.parse().ok()?, h.parse().ok()?))
        })
        .unwrap_or((3840, 2160))
}

/// The status of a failed simulator step: the failing DDI's NTSTATUS; anything else (a
/// broken contract, a mode the driver did not offer, FALSE from IsSupportedVidPn) is a
/// driver that swallowed the failure and answered wrongly.
fn ddi_status(n: u64, what: &str, e: &dxgkrnl_sim::SimError) -> NTSTATUS {
    e.status()
        .unwrap_or_else(|| panic!("N={n}: {what} failed without an NTSTATUS: {e}"))
}

/// One display, for the sweeps that need only one: boot costs less.
const ONE_DISPLAY: [(u32, u32); 1] = [(1024, 768)];

/// One sweep over an adapter booted with `displays`: for N = 0, 1, ... `setup` runs normally, then
/// `op` with the N-th driver allocation failing, which must end in success or a
/// no-memory status (`op` reports the DDI statuses it saw), break no Windows rule, and leave
/// the adapter working (`follow_up`, without failures, must succeed); after RemoveDevice
/// nothing is left (DMA memory, mappings, the driver's heap). Returns the number of driver
/// allocations `op` makes (`None` when `VIOGPUDO_SWEEP_N` ran a single N).
fn sweep(
    name: &str,
    displays: &[(u32, u32)],
    setup: impl Fn(&mut Rig),
    op: impl Fn(&mut Rig, u64) -> Vec<NTSTATUS>,
    follow_up: impl Fn(&mut Rig, u64),
) -> Option<u64> {
    let started = std::time::Instant::now();
    // `VIOGPUDO_SWEEP_N=<n>` runs only that N: with an abort, the sweep stops at the first
    // aborting site; one N per process finds every site.
    let only: Option<u64> = std::env::var("VIOGPUDO_SWEEP_N")
        .ok()
        .and_then(|v| v.parse().ok());
    for n in 0..MAX_SWEEP {
        if only.is_some_and(|only| only != n) {
            continue;
        }
        let mut rig = Rig::load(displays);
        let heap_before = irql::driver_heap_bytes();
        rig.sim.boot().unwrap();
        setup(&mut rig);
        let (statuses, hit) = with_failure_at(n, || op(&mut rig, n));
        for status in &statuses {
            assert!(
                *status == STATUS_SUCCESS || (hit && is_no_memory(*status)),
                "N={n}: {name}: status {status:#x} (failure delivered: {hit})"
            );
        }
        assert_eq!(
            rig.sim.take_violations(),
            Vec::<String>::new(),
            "N={n}: {name}: Windows rules broken"
        );
        rig.assert_clean();
        follow_up(&mut rig, n);
        assert_eq!(
            rig.sim.take_violations(),
            Vec::<String>::new(),
            "N={n}: {name}: follow-up"
        );
        remove_and_check_nothing_leaked(rig, heap_before, true, n);
        if only.is_some() {
            eprintln!("{name}: N={n} survived (failure delivered: {hit})");
            return None;
        }
        if !hit {
            eprintln!(
                "{name}: {n} driver allocations, each failed once ({:.1?})",
                started.elapsed()
            );
            return Some(n);
        }
    }
    panic!("{name}: the sweep never ran out of allocations to fail");
}

/// One simulator step of an operation.
type Step<'a> = &'a dyn Fn(&mut Rig) -> Result<(), dxgkrnl_sim::SimError>;

/// The statuses of a sequence of simulator steps, stopping at the first failure (as the OS
/// gives up a mode change whose DDI failed).
fn steps(rig: &mut Rig, n: u64, what: &str, steps: &[Step<'_>]) -> Vec<NTSTATUS> {
    let mut statuses = Vec::new();
    for step in steps {
        match step(rig) {
            Ok(()) => statuses.push(STATUS_SUCCESS),
            Err(e) => {
                statuses.push(ddi_status(n, what, &e));
                break;
            }
        }
    }
    statuses
}

/// What the OS committed on `source` is what the device shows once the OS presents: a mode
/// change that failed changed nothing, one that succeeded changed everything (a VidPN mode
/// change shows its framebuffer with the first picture, and a first picture that failed for
/// want of memory comes again with the next present).
fn assert_shows_committed_mode(rig: &mut Rig, source: u32, n: u64) {
    let (w, h, rotation) = rig.sim.committed_mode(source).unwrap();
    let surface = Surface::pattern(w, h, 50 + source);
    rig.sim
        .present_full(source, &surface)
        .unwrap_or_else(|e| panic!("N={n}: present on source {source}: {e}"));
    let screen = rig.screen(source);
    assert_eq!(
        (screen.width, screen.height),
        rotation_size(rotation, w, h),
        "N={n}: source {source} shows another mode than the committed one"
    );
    assert_shows(&screen, &surface, rotation);
}

fn rotation_size(rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION, w: u32, h: u32) -> (u32, u32) {
    if rotation == D3DKMDT_VPPR_ROTATE90 || rotation == D3DKMDT_VPPR_ROTATE270 {
        (h, w)
    } else {
        (w, h)
    }
}

/// Sets `source` to `w` x `h`, presents a pattern and checks that it is on screen.
fn mode_and_picture_work(rig: &mut Rig, source: u32, (w, h): (u32, u32), seed: u32, n: u64) {
    rig.sim
        .set_mode(source, w, h)
        .unwrap_or_else(|e| panic!("N={n}: follow-up mode change to {w}x{h}: {e}"));
    let surface = Surface::pattern(w, h, seed);
    rig.sim.present_full(source, &surface).unwrap();
    assert_shows(&rig.screen(source), &surface, D3DKMDT_VPPR_IDENTITY);
}

#[test]
fn a_mode_change_cycle_survives_each_failed_allocation() {
    const FULL_HD: (u32, u32) = (1920, 1080);
    let big = big_mode();
    let allocations = sweep(
        "1080p -> big -> 1080p",
        &ONE_DISPLAY,
        |rig| rig.sim.set_mode(0, FULL_HD.0, FULL_HD.1).unwrap(),
        |rig, n| {
            // Each set_mode is the VidPN manager's whole dialogue: EnumVidPnCofuncModality
            // (source pivot, then target pivot), IsSupportedVidPn, CommitVidPn, visibility
            // and the repaint.
            steps(
                rig,
                n,
                "mode change",
                &[&|rig| rig.sim.set_mode(0, big.0, big.1), &|rig| {
                    rig.sim.set_mode(0, FULL_HD.0, FULL_HD.1)
                }],
            )
        },
        |rig, n| {
            assert_shows_committed_mode(rig, 0, n);
            // The follow-up is a small mode change with a picture (a big one would double
            // the sweep's time and prove nothing more about the driver's state).
            let resources = rig.gpu().resource_count();
            mode_and_picture_work(rig, 0, (800, 600), 7, n);
            assert_eq!(
                rig.gpu().resource_count(),
                resources,
                "N={n}: host resources after the follow-up mode change"
            );
        },
    );
    assert!(allocations.is_none_or(|a| a > 0), "{allocations:?}");
}

#[test]
fn a_commit_of_both_sources_survives_each_failed_allocation() {
    let allocations = sweep(
        "two-source commit",
        &DISPLAYS,
        |_| {},
        |rig, n| {
            steps(
                rig,
                n,
                "two-source commit",
                &[&|rig| {
                    rig.sim
                        .set_modes(&[(0, Some((1280, 1024))), (1, Some((1024, 768)))])
                }],
            )
        },
        |rig, n| {
            assert_shows_committed_mode(rig, 0, n);
            assert_shows_committed_mode(rig, 1, n);
            let follow_up = [(0u32, (800u32, 600u32)), (1, (640, 480))];
            rig.sim
                .set_modes(&follow_up.map(|(source, mode)| (source, Some(mode))))
                .unwrap_or_else(|e| panic!("N={n}: follow-up commit: {e}"));
            for (source, (w, h)) in follow_up {
                let surface = Surface::pattern(w, h, 30 + source);
                rig.sim.present_full(source, &surface).unwrap();
                assert_shows(&rig.screen(source), &surface, D3DKMDT_VPPR_IDENTITY);
            }
        },
    );
    assert!(allocations.is_none_or(|a| a > 0), "{allocations:?}");
}

fn move_rect(src: (i32, i32), dest: RECT) -> D3DKMT_MOVE_RECT {
    D3DKMT_MOVE_RECT {
        SourcePoint: POINT { x: src.0, y: src.1 },
        DestRect: dest,
    }
}

#[test]
fn a_present_with_dirty_and_move_rects_survives_each_failed_allocation() {
    let (w, h) = ONE_DISPLAY[0];
    let allocations = sweep(
        "present",
        &ONE_DISPLAY,
        |rig| rig.sim.present_full(0, &Surface::pattern(w, h, 1)).unwrap(),
        |rig, n| {
            let surface = Surface::pattern(w, h, 2);
            let dirty = [rect(0, 0, 64, 48), rect(500, 300, 700, 420)];
            let moves = [
                move_rect((100, 100), rect(120, 140, 320, 240)),
                move_rect((0, 600), rect(800, 0, 1000, 150)),
            ];
            steps(
                rig,
                n,
                "present",
                &[&|rig| rig.sim.present(0, &surface, &dirty, &moves)],
            )
        },
        |rig, n| {
            let surface = Surface::pattern(w, h, 3);
            rig.sim
                .present_full(0, &surface)
                .unwrap_or_else(|e| panic!("N={n}: follow-up present: {e}"));
            assert_shows(&rig.screen(0), &surface, D3DKMDT_VPPR_IDENTITY);
        },
    );
    assert!(allocations.is_none_or(|a| a > 0), "{allocations:?}");
}

/// A 32x32 colour pointer.
fn arrow() -> PointerShape {
    let pixels: Vec<u8> = (0..32 * 32)
        .flat_map(|i| [i as u8, 0x40, 0x80, 0xFF])
        .collect();
    PointerShape::color(32, 32, &pixels, (1, 2))
}

fn shown_cursor(rig: &Rig, scanout: u32) -> Option<(u32, u32)> {
    let gpu = rig.gpu();
    let cursor = gpu.cursor(scanout)?;
    cursor.visible.then_some((cursor.x, cursor.y))
}

#[test]
fn a_pointer_shape_and_move_survive_each_failed_allocation() {
    let allocations = sweep(
        "pointer",
        &ONE_DISPLAY,
        |_| {},
        |rig, n| {
            let shape = arrow();
            steps(
                rig,
                n,
                "pointer",
                &[&|rig| rig.sim.set_pointer_shape(0, &shape), &|rig| {
                    rig.sim.set_pointer_position(0, 200, 100, true)
                }],
            )
        },
        |rig, n| {
            rig.sim
                .set_pointer_shape(0, &arrow())
                .unwrap_or_else(|e| panic!("N={n}: follow-up shape: {e}"));
            rig.sim
                .set_pointer_position(0, 123, 45, true)
                .unwrap_or_else(|e| panic!("N={n}: follow-up position: {e}"));
            assert_eq!(shown_cursor(rig, 0), Some((123, 45)), "N={n}");
        },
    );
    // The cursor's buffers are allocated at StartDevice: today shape and position allocate
    // nothing, and the sweep ends at N=0.
    eprintln!("pointer: {allocations:?} allocations");
}

/// An escape request (`header` + `body`), as the resolution agent sends it.
fn escape_bytes<T: zerocopy::IntoBytes + zerocopy::Immutable>(request: &T) -> Vec<u8> {
    request.as_bytes().to_vec()
}

fn query_displays_request() -> Vec<u8> {
    use viogpudo::adapter::{EscapeHeader, EscapeQueryDisplays};
    use viogpudo::adapter::{ESCAPE_MAGIC, ESCAPE_QUERY_DISPLAYS, ESCAPE_VERSION};
    let mut buf = vec![0u8; std::mem::size_of::<EscapeQueryDisplays>()];
    let header = EscapeHeader {
        magic: ESCAPE_MAGIC,
        version: ESCAPE_VERSION,
        command: ESCAPE_QUERY_DISPLAYS,
        size: buf.len() as u32,
        status: 0,
        reserved: 0,
    };
    zerocopy::IntoBytes::write_to_prefix(&header, &mut buf).unwrap();
    buf
}

fn custom_mode_request(w: u32, h: u32) -> Vec<u8> {
    use viogpudo::adapter::{EscapeCustomMode, EscapeHeader};
    use viogpudo::adapter::{ESCAPE_MAGIC, ESCAPE_SET_CUSTOM_MODE, ESCAPE_VERSION};
    escape_bytes(&EscapeCustomMode {
        header: EscapeHeader {
            magic: ESCAPE_MAGIC,
            version: ESCAPE_VERSION,
            command: ESCAPE_SET_CUSTOM_MODE,
            size: std::mem::size_of::<EscapeCustomMode>() as u32,
            status: 0,
            reserved: 0,
        },
        scanout: 0,
        width: w,
        height: h,
        reserved: 0,
    })
}

/// Sends an escape; its NTSTATUS, which must agree with the status in the reply header.
fn escape(rig: &mut Rig, mut bytes: Vec<u8>, n: u64) -> (NTSTATUS, Vec<u8>) {
    use zerocopy::FromBytes;
    let status = rig.sim.escape_raw(&mut bytes).unwrap();
    let (header, _) = viogpudo::adapter::EscapeHeader::read_from_prefix(&bytes).unwrap();
    if status == STATUS_SUCCESS {
        assert_eq!(header.status, STATUS_SUCCESS, "N={n}: reply header");
    }
    (status, bytes)
}

#[test]
fn the_escape_survives_each_failed_allocation() {
    use viogpudo::adapter::EscapeQueryDisplays;
    use zerocopy::FromBytes;
    const CUSTOM: (u32, u32) = (1366, 700);
    let allocations = sweep(
        "escape",
        &ONE_DISPLAY,
        |rig| rig.sim.set_escape_caller_trusted(true),
        |rig, n| {
            // The resolution agent polls the displays, sets the host window's size, and the
            // OS re-reads the monitor's modes after the re-enumeration that follows.
            let (query, _) = escape(rig, query_displays_request(), n);
            let (custom, _) = escape(rig, custom_mode_request(CUSTOM.0, CUSTOM.1), n);
            let mut statuses = vec![query, custom];
            statuses.extend(steps(
                rig,
                n,
                "monitor modes",
                &[&|rig| {
                    rig.sim.refresh_child(0)?;
                    rig.sim.recommend_monitor_modes(0).map(drop)
                }],
            ));
            statuses
        },
        |rig, n| {
            let (status, reply) = escape(rig, query_displays_request(), n);
            assert_eq!(status, STATUS_SUCCESS, "N={n}: follow-up query");
            let reply = EscapeQueryDisplays::read_from_bytes(&reply).unwrap();
            assert_eq!(reply.count, ONE_DISPLAY.len() as u32, "N={n}");
            let (status, _) = escape(rig, custom_mode_request(CUSTOM.0, CUSTOM.1), n);
            assert_eq!(status, STATUS_SUCCESS, "N={n}: follow-up custom mode");
            assert!(rig.sim.refresh_child(0).unwrap().connected, "N={n}");
            let modes = rig.sim.recommend_monitor_modes(0).unwrap();
            assert!(modes.contains(&CUSTOM), "N={n}: {modes:?}");
            rig.sim
                .set_mode(0, CUSTOM.0, CUSTOM.1)
                .unwrap_or_else(|e| panic!("N={n}: the custom mode: {e}"));
            assert_shows_committed_mode(rig, 0, n);
        },
    );
    assert!(allocations.is_none_or(|a| a > 0), "{allocations:?}");
}
