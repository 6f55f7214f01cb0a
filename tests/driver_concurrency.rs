//! The driver called from several threads at once, as Windows calls it: the desktop
//! compositor presenting, the input thread moving the pointer (independently of every other
//! DDI), a processor taking interrupts and DPCs at any moment, and dxgkrnl's own thread
//! changing modes and power states, each within the synchronization levels Microsoft documents
//! (the simulator's `sync.rs`), on a machine with a real-time clock.
//!
//! The first tests each show one hazard of a driver whose state lock is a spin lock held
//! across device waits; the last is a seeded stress run (`VIOGPUDO_STRESS_OPS` operations,
//! 100,000 by default; `VIOGPUDO_STRESS_SEED` to replay a run) with a watchdog.
#![allow(clippy::unwrap_used)]

mod sim_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dxgkrnl_sim::{rect, Machine, PointerShape, Surface};
use sim_support::{assert_shows, Rig};
use viogpu_common::gpu::CONTROL_QUEUE;
use viogpudo::ddi::*;
use viogpudo::os::hosted::irql;

/// Where the device shows the cursor of `scanout` (`None`: hidden).
fn shown_cursor(rig: &Rig, scanout: u32) -> Option<(u32, u32)> {
    let gpu = rig.gpu();
    let cursor = gpu.cursor(scanout).unwrap();
    cursor.visible.then_some((cursor.x, cursor.y))
}

/// A 32x32 colour pointer.
fn arrow() -> PointerShape {
    let pixels: Vec<u8> = (0..32 * 32)
        .flat_map(|i| [i as u8, 0x40, 0x80, 0xFF])
        .collect();
    PointerShape::color(32, 32, &pixels, (1, 2))
}

/// Polls `done` every millisecond for up to `limit`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(1));
    }
    done()
}

/// Hazard: a pointer move waited behind a mode change that waits for the device (the state
/// lock was a spin lock held across device waits, so the input thread spun until the commit
/// gave up). Now the pointer has its own lock: the move completes while the commit is still
/// waiting for its command.
#[test]
fn a_pointer_move_does_not_wait_for_a_commit_that_waits_for_the_device() {
    let mut rig = Rig::load_real_time(&[(1024, 768)]);
    rig.sim.boot().unwrap();
    rig.sim.set_pointer_shape(0, &arrow()).unwrap();
    rig.sim.set_pointer_position(0, 10, 10, true).unwrap();
    let device = rig.gpu_handle();
    let os = rig.sim.os_thread();
    let committing = Arc::new(AtomicBool::new(true));
    device.gpu().hold_queue_completions(CONTROL_QUEUE, true);
    let mover = {
        let (device, committing) = (device.clone(), Arc::clone(&committing));
        thread::spawn(move || {
            let _env = os.enter();
            assert!(
                wait_until(Duration::from_secs(10), || device.gpu().held_count() > 0),
                "the commit never reached the device"
            );
            let status = os.set_pointer_position(0, 300, 200, true);
            let during_commit = committing.load(Ordering::SeqCst);
            device.gpu().hold_queue_completions(CONTROL_QUEUE, false);
            device.release_held(CONTROL_QUEUE);
            (status, during_commit)
        })
    };
    let commit = rig.sim.set_mode(0, 1280, 800);
    committing.store(false, Ordering::SeqCst);
    let (status, during_commit) = mover.join().unwrap();
    assert_eq!(status, STATUS_SUCCESS);
    assert!(
        during_commit,
        "the pointer move returned only after the commit had finished"
    );
    commit.unwrap();
    assert_eq!(shown_cursor(&rig, 0), Some((300, 200)));
    rig.assert_clean();
}

/// Hazard: a crash while a DDI held the state lock drew no blue screen (the bugcheck path only
/// tried the lock). Now it takes no lock: with a commit stuck waiting for the device on
/// another processor, the bugcheck screen shows the bitmap, at HIGH_LEVEL and at
/// DISPATCH_LEVEL.
#[test]
fn the_bugcheck_screen_draws_while_a_commit_holds_the_state_lock() {
    for level in [irql::HIGH_LEVEL, irql::DISPATCH_LEVEL] {
        let mut rig = Rig::load_real_time(&[(1024, 768)]);
        rig.sim.boot().unwrap();
        rig.sim
            .present_full(0, &Surface::pattern(1024, 768, 3))
            .unwrap();
        rig.sim.set_bugcheck_irql(level);
        let device = rig.gpu_handle();
        let os = rig.sim.os_thread();
        device.gpu().hold_queue_completions(CONTROL_QUEUE, true);
        let bitmap = Surface::pattern(64, 48, 7);
        let pixels: Vec<u32> = (0..48)
            .flat_map(|y| (0..64).map(move |x| (x, y)))
            .map(|(x, y)| bitmap.pixel(x, y).unwrap())
            .collect();
        let crasher = {
            let device = device.clone();
            thread::spawn(move || {
                let _env = os.enter();
                assert!(
                    wait_until(Duration::from_secs(10), || device.gpu().held_count() > 0),
                    "the commit never reached the device"
                );
                // The commit's command stays stuck; what the dying processor sends is answered.
                device.gpu().hold_queue_completions(CONTROL_QUEUE, false);
                let shown = os.bugcheck(0, &pixels, 64, 48);
                let screen = device.gpu().scanout_image(0).unwrap();
                device.release_held(CONTROL_QUEUE);
                (shown, screen)
            })
        };
        let _ = rig.sim.set_mode(0, 1280, 800);
        let (shown, screen) = crasher.join().unwrap();
        assert_eq!(shown, Ok((1024, 768)), "at IRQL {level}");
        for y in 0..48 {
            for x in 0..64 {
                assert_eq!(
                    screen.pixel(x, y).unwrap() & 0x00FF_FFFF,
                    bitmap.pixel(x, y).unwrap() & 0x00FF_FFFF,
                    "bugcheck pixel ({x}, {y}) at IRQL {level}"
                );
            }
        }
    }
}

/// xorshift64*: a small seeded generator, so a failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The modes the stress run switches between; presents touch only the area all of them have.
const MODES: [(u32, u32); 3] = [(1024, 768), (800, 600), (1280, 1024)];
const COMMON: (u32, u32) = (800, 600);
const LARGEST: (u32, u32) = (1280, 1024);

/// Everything the stress threads share.
struct Stress {
    ops: AtomicU64,
    /// Operations per kind, for the report and the "every kind ran" check.
    kinds: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    target: u64,
    failures: Mutex<Vec<String>>,
    /// Set while the main thread cycles power (a pointer shape may then be refused).
    powering: AtomicBool,
}

impl Stress {
    fn done(&self) -> bool {
        self.ops.load(Ordering::Relaxed) >= self.target
    }

    /// Counts one call and its outcome. Adapter queries are counted apart from the
    /// operations: they are cheap and would otherwise make up most of the run.
    fn count(&self, what: &'static str, status: NTSTATUS) {
        if what != "query adapter info" {
            self.ops.fetch_add(1, Ordering::Relaxed);
        }
        *self.kinds.lock().unwrap().entry(what).or_default() += 1;
        if !nt_success(status) {
            self.failures
                .lock()
                .unwrap()
                .push(format!("{what}: {status:#x}"));
        }
    }
}

/// Seeded stress: presents, pointer moves and shape changes, interrupt delivery and adapter
/// queries from three OS threads, while the simulator's thread changes modes on both heads,
/// sends escapes and cycles D3/D0. A watchdog aborts on a deadlock (no progress for 60 s).
/// Afterwards: every call succeeded, the last picture and pointer are on screen, no rule was
/// broken, and stop + remove give every byte of DMA memory back.
#[test]
fn stress_presents_pointer_interrupts_mode_changes_and_power_from_several_threads() {
    let seed = env_u64(
        "VIOGPUDO_STRESS_SEED",
        0x5EED_0000 ^ u64::from(std::process::id()),
    );
    let target = env_u64("VIOGPUDO_STRESS_OPS", 100_000);
    eprintln!("stress: seed {seed:#x} ({target} operations; VIOGPUDO_STRESS_SEED replays)");
    let mut rig = Rig::load_real_time(&[(1024, 768), (800, 600)]);
    let dma_before = rig.sim.machine().dma_allocated_bytes();
    rig.sim.boot().unwrap();
    rig.sim.set_pointer_shape(0, &arrow()).unwrap();
    let stress = Arc::new(Stress {
        ops: AtomicU64::new(0),
        kinds: Mutex::new(std::collections::BTreeMap::new()),
        target,
        failures: Mutex::new(Vec::new()),
        powering: AtomicBool::new(false),
    });

    let watchdog = {
        let stress = Arc::clone(&stress);
        thread::spawn(move || {
            let mut last = (0, Instant::now());
            while !stress.done() {
                thread::sleep(Duration::from_millis(200));
                let now = stress.ops.load(Ordering::Relaxed);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > Duration::from_secs(60) {
                    eprintln!("stress: no progress for 60 s at {now} operations: deadlock");
                    std::process::abort();
                }
            }
        })
    };

    let os = rig.sim.os_thread();
    let compositor = {
        let (os, stress) = (os.clone(), Arc::clone(&stress));
        thread::spawn(move || {
            let _env = os.enter();
            let mut rng = Rng(seed ^ 0xC0);
            // As large as the largest mode, so any committed mode reads inside it.
            let surfaces = [1u32, 2].map(|s| Surface::pattern(LARGEST.0, LARGEST.1, s));
            while !stress.done() {
                let source = rng.below(2) as u32;
                let (w, h) = (1 + rng.below(96) as i32, 1 + rng.below(96) as i32);
                let x = rng.below(u64::from(COMMON.0) - 96) as i32;
                let y = rng.below(u64::from(COMMON.1) - 96) as i32;
                let surface = &surfaces[source as usize];
                let status = os.present(source, surface, &[rect(x, y, x + w, y + h)], false);
                stress.count("present", status);
            }
        })
    };
    let input = {
        let (os, stress) = (os.clone(), Arc::clone(&stress));
        thread::spawn(move || {
            let _env = os.enter();
            let mut rng = Rng(seed ^ 0x1F);
            let shapes = [
                arrow(),
                PointerShape::color(16, 16, &[0xFF; 16 * 16 * 4], (0, 0)),
            ];
            while !stress.done() {
                let source = rng.below(2) as u32;
                if rng.below(50) == 0 {
                    let status = os.set_pointer_shape(source, &shapes[rng.below(2) as usize]);
                    // Powered down the shape cannot reach the device: the page's
                    // STATUS_NO_MEMORY, after which dxgkrnl draws the pointer itself.
                    let refused_in_d3 =
                        status == STATUS_NO_MEMORY && stress.powering.load(Ordering::SeqCst);
                    stress.count("pointer shape", if refused_in_d3 { 0 } else { status });
                } else {
                    let (x, y) = (rng.below(800) as i32 - 16, rng.below(600) as i32 - 16);
                    let visible = rng.below(20) != 0;
                    stress.count(
                        "pointer position",
                        os.set_pointer_position(source, x, y, visible),
                    );
                }
            }
        })
    };
    let cpu = {
        let (os, stress) = (os.clone(), Arc::clone(&stress));
        thread::spawn(move || {
            let _env = os.enter();
            while !stress.done() {
                os.take_interrupts();
                stress.count("query adapter info", os.query_driver_caps());
                thread::yield_now();
            }
        })
    };

    let mut rng = Rng(seed ^ 0x3A);
    let mut cycled = false;
    while !stress.done() {
        let source = rng.below(2) as u32;
        let (w, h) = MODES[rng.below(3) as usize];
        let status = rig
            .sim
            .set_mode(source, w, h)
            .err()
            .map_or(0, |e| e.status().unwrap_or(STATUS_UNSUCCESSFUL));
        stress.count("mode change", status);
        if !cycled && stress.ops.load(Ordering::Relaxed) > target / 2 {
            cycled = true;
            stress.powering.store(true, Ordering::SeqCst);
            let d3 = rig.sim.set_power(PowerDeviceD3).is_ok();
            let d0 = rig.sim.set_power(PowerDeviceD0).is_ok();
            stress.powering.store(false, Ordering::SeqCst);
            assert!(d3 && d0, "D3/D0 cycle failed");
        }
        let mut query = viogpudo_escape_query();
        let status = rig.sim.escape_raw(&mut query).unwrap();
        stress.count("escape", status);
        thread::sleep(Duration::from_millis(1));
    }
    for t in [compositor, input, cpu, watchdog] {
        t.join().unwrap();
    }
    let failures = stress.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "failed calls: {failures:?}");
    let kinds = stress.kinds.lock().unwrap().clone();
    eprintln!("stress: {kinds:?}");
    for kind in [
        "present",
        "pointer position",
        "pointer shape",
        "mode change",
        "escape",
    ] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} ran: {kinds:?}"
        );
    }
    assert!(cycled, "the run never reached its power cycle");

    // The last picture and pointer are what the OS last gave.
    for source in 0..2 {
        let (w, h, _) = rig.sim.committed_mode(source).unwrap();
        let last = Surface::pattern(w, h, 40 + source);
        rig.sim.present_full(source, &last).unwrap();
        assert_shows(&rig.screen(source), &last, D3DKMDT_VPPR_IDENTITY);
    }
    rig.sim.set_pointer_shape(1, &arrow()).unwrap();
    rig.sim.set_pointer_position(1, 123, 45, true).unwrap();
    assert_eq!(shown_cursor(&rig, 1), Some((123, 45)));
    rig.assert_clean();
    rig.sim.stop().unwrap();
    rig.sim.remove().unwrap();
    assert_eq!(rig.sim.machine().dma_allocated_bytes(), dma_before);
}

/// The escape that asks for the displays (what the resolution agent polls).
fn viogpudo_escape_query() -> Vec<u8> {
    use viogpudo::adapter::{EscapeHeader, ESCAPE_MAGIC, ESCAPE_QUERY_DISPLAYS, ESCAPE_VERSION};
    let mut buf = vec![0u8; core::mem::size_of::<viogpudo::adapter::EscapeQueryDisplays>()];
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
