//! End to end under QEMU: a tiny Linux guest (qemu-system-x86_64, TCG) runs the driver —
//! loaded through its DDI table by the dxgkrnl simulator, the same code and simulator as the
//! Linux scenario tests (`tests/driver_*.rs`) — in the guest runner against QEMU's real
//! virtio-gpu-pci, and the host checks the heads' pixels through QMP `screendump`. The runner
//! plays the OS: each command is a sequence of DDI calls (VidPN commits, presents, pointer,
//! power, bugcheck, stop).
//!
//! Three guests, booted in parallel, each walking through scenarios (a boot costs a few
//! seconds; the whole binary takes well under a minute on two cores):
//! - [`default_device_two_heads`]: QEMU's defaults with `max_outputs=2` — boot to the
//!   preferred mode (1280x800), dirty rects, a move rect, rotations, a second head, the
//!   hardware cursor, power D3 -> D0, the bugcheck screen, stop.
//! - [`full_hd_device_large_and_odd_modes`]: `xres=1920,yres=1080` — boot to 1920x1080,
//!   1024x768 -> 7680x4320 -> 1024x768, 1366x768, 5486x2818 (a custom mode, added through the
//!   driver's escape as the resolution agent does), a rect across framebuffer bands.
//! - [`virtio_vga_hand_off_shows_the_next_owners_picture`]: `-device virtio-vga` — a desktop in
//!   virtio mode, then the post-display hand-off, after which the runner writes the test
//!   pattern into the framebuffer the driver described (BAR 0), as the Basic Display Driver
//!   would, and head 0 must show it.
//! - [`the_guest_follows_a_vnc_viewer_resize`]: the display on QEMU's VNC server; a VNC
//!   client resizes it (SetDesktopSize, as a viewer window would) and the resolution agent's
//!   follower, run in the guest against the driver, switches the head to the new size.
//!
//! The host keeps its own model of each desktop ([`Desktop`]) and computes the expected
//! screen from it with the rotation table of `viogpu_common::blit`'s documentation; every
//! check compares the whole screendump with it. Timings (guest-measured, until the device
//! gave every request back) are printed and written to `target/e2e/timings.txt`.
//!
//! QEMU's screendump does not contain the cursor (QEMU hands it to the UI separately, and no
//! QMP command reports it), so the cursor scenario checks QEMU's cursor trace and that the
//! picture is unchanged.
//!
//! Prerequisites come from `scripts/setup-e2e`, which `scripts/test` runs first. When they are
//! missing these tests fail with a message that says so; they never skip.
// QEMU, unix sockets and the guest runner exist only on a Linux host.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;
use std::time::Instant;

use qemu_harness::artifacts::e2e_dir;
use qemu_harness::{Guest, GuestConfig, RgbImage};
use viogpu_guest_runner::scene;

/// QEMU 7.2's virtio-gpu head size when neither xres nor yres is given.
const QEMU_DEFAULT_HEAD: (u32, u32) = (1280, 800);
/// The placeholder surface QEMU shows for a head that never had a scanout.
const QEMU_INACTIVE_HEAD: (u32, u32) = (640, 480);

/// The QEMU trace event that reports every UPDATE_CURSOR and MOVE_CURSOR it carries out.
const CURSOR_TRACE: &str = "virtio_gpu_update_cursor";

const VIRTIO_GPU_F_EDID: u64 = 1 << 1;
const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// The value of `key=value` in a runner answer.
fn field<'a>(answer: &'a str, key: &str) -> &'a str {
    answer
        .split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {answer:?}"))
}

fn hex(answer: &str, key: &str) -> u64 {
    u64::from_str_radix(field(answer, key).trim_start_matches("0x"), 16).unwrap()
}

/// Timings collected by all tests of this binary, rewritten to the file on every record.
static TIMINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Prints a timing and writes every timing so far to `target/e2e/timings.txt`.
fn record(test: &str, what: &str, ms: &str) {
    let line = format!("{test:<10} {what:<52} {ms:>9} ms");
    eprintln!("timing: {line}");
    let mut all = TIMINGS.lock().unwrap_or_else(|e| e.into_inner());
    all.push(line);
    let mut text = String::from(
        "# QEMU end-to-end timings (tests/e2e_qemu.rs): the driver, loaded by the dxgkrnl\n\
         # simulator in the optimised guest runner, on QEMU's virtio-gpu-pci under TCG; guest\n\
         # times run until the device gave every request back\n",
    );
    for line in all.iter() {
        text.push_str(line);
        text.push('\n');
    }
    let dir = e2e_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("timings.txt"), text).unwrap();
}

fn millis(since: Instant) -> String {
    format!("{:.1}", since.elapsed().as_secs_f64() * 1000.0)
}

/// A rotation of the present path, in degrees counter-clockwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rotation {
    R0,
    R90,
    R180,
    R270,
}

impl Rotation {
    fn degrees(self) -> u32 {
        match self {
            Rotation::R0 => 0,
            Rotation::R90 => 90,
            Rotation::R180 => 180,
            Rotation::R270 => 270,
        }
    }
}

/// The host's model of a head's desktop (`0x00RRGGBB` per pixel) and its rotation.
#[derive(Clone)]
struct Desktop {
    width: u32,
    height: u32,
    pixels: Vec<u32>,
    rotation: Rotation,
}

impl Desktop {
    fn filled(width: u32, height: u32, color: u32) -> Self {
        Self {
            width,
            height,
            pixels: vec![color; width as usize * height as usize],
            rotation: Rotation::R0,
        }
    }

    fn pattern(&mut self) {
        let (w, h) = (self.width, self.height);
        for y in 0..h {
            for x in 0..w {
                self.pixels[(y * w + x) as usize] = scene::pattern_pixel(x, y, w, h);
            }
        }
    }

    fn get(&self, x: u32, y: u32) -> u32 {
        self.pixels[(y * self.width + x) as usize]
    }

    /// Fills `[x0, x1) x [y0, y1)`.
    fn fill(&mut self, (x0, y0, x1, y1): (u32, u32, u32, u32), color: u32) {
        for y in y0..y1 {
            for x in x0..x1 {
                self.pixels[(y * self.width + x) as usize] = color;
            }
        }
    }

    /// The desktop after a scroll: `dest` now holds what was at `(sx, sy)`.
    fn move_block(&mut self, (sx, sy): (u32, u32), (x0, y0, x1, y1): (u32, u32, u32, u32)) {
        let before = self.clone();
        for y in y0..y1 {
            for x in x0..x1 {
                self.pixels[(y * self.width + x) as usize] = before.get(sx + x - x0, sy + y - y0);
            }
        }
    }

    /// The framebuffer the device should scan out, from the table in `viogpu_common::blit`:
    /// source pixel (x, y) of a W x H desktop lands at (y, W-1-x) under 90, (W-1-x, H-1-y)
    /// under 180 and (H-1-y, x) under 270.
    fn screen(&self) -> RgbImage {
        let (w, h) = (self.width, self.height);
        let (fw, fh) = match self.rotation {
            Rotation::R0 | Rotation::R180 => (w, h),
            Rotation::R90 | Rotation::R270 => (h, w),
        };
        let mut rgb = vec![0u8; fw as usize * fh as usize * 3];
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = match self.rotation {
                    Rotation::R0 => (x, y),
                    Rotation::R90 => (y, w - 1 - x),
                    Rotation::R180 => (w - 1 - x, h - 1 - y),
                    Rotation::R270 => (h - 1 - y, x),
                };
                let at = (fy as usize * fw as usize + fx as usize) * 3;
                rgb[at..at + 3].copy_from_slice(&scene::rgb(self.get(x, y)));
            }
        }
        RgbImage::from_rgb(fw, fh, rgb).unwrap()
    }
}

/// Saves `image` under `target/e2e/failures/` and returns the path, for failure messages.
fn save_failure(image: &RgbImage, name: &str) -> String {
    let dir = e2e_dir().join("failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    image.save_png(&path).unwrap();
    path.display().to_string()
}

/// Asserts the screendump equals `expected` pixel for pixel; on failure saves both.
fn assert_screen(screen: &RgbImage, expected: &RgbImage, name: &str) {
    assert_eq!(screen.size(), expected.size(), "{name}: screen size");
    if screen.as_rgb() == expected.as_rgb() {
        return;
    }
    let width = screen.width() as usize;
    let differing: Vec<usize> = screen
        .as_rgb()
        .chunks_exact(3)
        .zip(expected.as_rgb().chunks_exact(3))
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i)
        .collect();
    let first = differing[0];
    let (x, y) = ((first % width) as u32, (first / width) as u32);
    panic!(
        "{name}: {} pixels differ; first at ({x}, {y}): got {:?}, expected {:?}; saved {} and {}",
        differing.len(),
        screen.pixel(x, y),
        expected.pixel(x, y),
        save_failure(screen, &format!("{name}-got")),
        save_failure(expected, &format!("{name}-expected")),
    );
}

/// Screendumps `head` and compares it with the model.
fn check_head(guest: &mut Guest, head: u32, desktop: &Desktop, name: &str) {
    let screen = guest.screendump(head).unwrap();
    assert_screen(&screen, &desktop.screen(), name);
}

/// After `stop` (or before any mode) QEMU shows its placeholder: black with the grey/white
/// text "Display output is not active." — no colored pixel, mostly black.
fn assert_placeholder(screen: &RgbImage, name: &str) {
    let colored = screen
        .as_rgb()
        .chunks_exact(3)
        .filter(|p| p[0] != p[1] || p[1] != p[2])
        .count();
    let black = screen.count_color([0, 0, 0]);
    let total = screen.width() as usize * screen.height() as usize;
    if colored != 0 || black * 100 < total * 95 {
        panic!(
            "{name}: not QEMU's placeholder ({colored} colored, {black} of {total} black); saved {}",
            save_failure(screen, name)
        );
    }
}

/// One `virtio_gpu_update_cursor` line of QEMU's trace:
/// `scanout S, x X, y Y, update|move, res 0xR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CursorTrace {
    scanout: u32,
    x: u32,
    y: u32,
    update: bool,
    resource: u32,
}

impl CursorTrace {
    fn parse(line: &str) -> Option<Self> {
        let rest = &line[line.find(CURSOR_TRACE)? + CURSOR_TRACE.len()..];
        let words: Vec<&str> = rest.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        match words.as_slice() {
            ["scanout", s, "x", x, "y", y, kind, "res", r] => Some(Self {
                scanout: s.parse().ok()?,
                x: x.parse().ok()?,
                y: y.parse().ok()?,
                update: *kind == "update",
                resource: u32::from_str_radix(r.trim_start_matches("0x"), 16).ok()?,
            }),
            _ => None,
        }
    }
}

#[test]
fn default_device_two_heads() {
    const T: &str = "default";
    let started = Instant::now();
    let mut guest = Guest::boot(GuestConfig {
        max_outputs: Some(2),
        trace_events: vec![CURSOR_TRACE.into()],
        ..GuestConfig::default()
    })
    .unwrap();
    record(
        T,
        "boot to runner READY (QEMU start, kernel, driver boot)",
        &format!("{:.0}", guest.boot_time().as_secs_f64() * 1000.0),
    );

    // The device as the driver negotiated it (the runner watched the driver's register writes).
    let info = guest.command("info").unwrap();
    assert_eq!(field(&info, "id"), "1af4:1050", "{info}");
    assert_eq!(field(&info, "scanouts"), "2", "max_outputs=2: {info}");
    let offered = hex(&info, "features");
    assert_ne!(offered & VIRTIO_F_VERSION_1, 0, "{info}");
    assert_ne!(offered & VIRTIO_GPU_F_EDID, 0, "edid=on is set: {info}");
    let negotiated = hex(&info, "negotiated");
    assert_eq!(
        negotiated & !offered,
        0,
        "negotiated only offered features: {info}"
    );
    assert_ne!(negotiated & VIRTIO_GPU_F_EDID, 0, "{info}");

    // Boot committed the preferred mode on the one connected target and the OS repainted it
    // black; the second head (no monitor) never had a scanout and shows QEMU's placeholder.
    let (w, h) = QEMU_DEFAULT_HEAD;
    check_head(&mut guest, 0, &Desktop::filled(w, h, 0), "boot-black");
    let blank = guest.screendump(1).unwrap();
    assert_eq!(blank.size(), QEMU_INACTIVE_HEAD);
    assert_placeholder(&blank, "head1-before-first-mode");

    // What the OS learned at boot: only child 0 is connected, its EDID prefers 1280x800.
    assert_eq!(guest.command("display-info").unwrap(), "0:1280x800:on");
    assert_eq!(guest.command("preferred 0").unwrap(), "1280x800");
    let answer = guest.command("pattern 0").unwrap();
    assert!(answer.starts_with("1280x800 "), "{answer}");
    assert_eq!(field(&answer, "bytes"), (w * h * 4).to_string(), "{answer}");
    record(T, "pattern 0: full 1280x800 present", field(&answer, "ms"));
    let mut head0 = Desktop::filled(w, h, 0);
    head0.pattern();
    check_head(&mut guest, 0, &head0, "boot-1280x800-pattern");

    // Three dirty rects in far-apart places change exactly those pixels, and only their
    // bytes travel (no bounding box).
    let rects = [
        ((10, 10, 50, 40), 0x00FF_0000),
        ((1200, 700, 1280, 800), 0x0000_FF00),
        ((600, 0, 616, 800), 0x0000_00FF),
    ];
    let mut command = String::from("present 0");
    let mut bytes = 0;
    for ((x0, y0, x1, y1), color) in rects {
        command.push_str(&format!(" {x0} {y0} {x1} {y1} {color:06X}"));
        head0.fill((x0, y0, x1, y1), color);
        bytes += (x1 - x0) * (y1 - y0) * 4;
    }
    let answer = guest.command(&command).unwrap();
    assert_eq!(field(&answer, "rects"), "3", "{answer}");
    assert_eq!(field(&answer, "bytes"), bytes.to_string(), "{answer}");
    record(T, "present of 3 dirty rects (21 KB)", field(&answer, "ms"));
    check_head(&mut guest, 0, &head0, "dirty-rects");

    // A move rect: the 256x192 block at the origin scrolled to (400, 300).
    let answer = guest.command("move 0 0 0 400 300 656 492").unwrap();
    assert_eq!(
        field(&answer, "bytes"),
        (256 * 192 * 4).to_string(),
        "{answer}"
    );
    head0.move_block((0, 0), (400, 300, 656, 492));
    record(T, "present of one 256x192 move rect", field(&answer, "ms"));
    check_head(&mut guest, 0, &head0, "move-rect");

    // Rotations: the framebuffer is re-moded to the rotated size and the desktop lands where
    // the blit's table says.
    for rotation in [Rotation::R90, Rotation::R180, Rotation::R270, Rotation::R0] {
        let degrees = rotation.degrees();
        let answer = guest.command(&format!("rotate 0 {degrees}")).unwrap();
        let size = if degrees % 180 == 0 {
            "1280x800"
        } else {
            "800x1280"
        };
        assert!(answer.starts_with(size), "rotate {degrees}: {answer}");
        record(
            T,
            &format!("rotate to {degrees} (re-mode + full present)"),
            field(&answer, "ms"),
        );
        head0.rotation = rotation;
        check_head(&mut guest, 0, &head0, &format!("rotate-{degrees}"));
    }

    // A rect outside the desktop is refused and changes nothing.
    let err = guest
        .command("present 0 1200 700 1300 810 FFFFFF")
        .unwrap_err()
        .to_string();
    assert!(err.contains("out of bounds"), "{err}");
    let err = guest
        .command("mode 0 1024 768 12345")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad color"), "{err}");

    // The second head gets its own mode; each head's screendump shows its own picture.
    let answer = guest.command("mode 1 1024 768 203040").unwrap();
    record(T, "mode change of head 1 to 1024x768", field(&answer, "ms"));
    let mut head1 = Desktop::filled(1024, 768, 0x0020_3040);
    check_head(&mut guest, 1, &head1, "head1-fill");
    guest.command("pattern 1").unwrap();
    head1.pattern();
    head1.fill((100, 100, 300, 200), 0x00FF_8000);
    guest.command("present 1 100 100 300 200 FF8000").unwrap();
    check_head(&mut guest, 1, &head1, "head1-pattern");
    check_head(&mut guest, 0, &head0, "head0-with-head1");

    // The hardware cursor. QEMU's screendump does not show it and no QMP command reports it;
    // what QEMU did is visible in its `virtio_gpu_update_cursor` trace event. For the pointer
    // to show the new shape at the new place on head H, the command must define the image on
    // scanout H (an `update` with a resource) and end with it at (X+8, Y+8) there.
    for (head, kind, x, y) in [
        (0, "mono", 100, 100),
        (0, "color", 640, 400),
        (1, "masked", 10, 10),
    ] {
        let log_before = guest.qemu_log().len();
        let answer = guest
            .command(&format!("cursor {head} {kind} {x} {y}"))
            .unwrap();
        assert_eq!(field(&answer, "in_flight"), "0", "{answer}");
        let sent: usize = field(&answer, "sent").parse().unwrap();
        let log = guest.qemu_log();
        let traced: Vec<CursorTrace> = log[log_before..]
            .lines()
            .filter_map(CursorTrace::parse)
            .collect();
        assert_eq!(traced.len(), sent, "every request traced once: {traced:?}");
        let defined = traced
            .iter()
            .rposition(|t| t.scanout == head && t.update && t.resource != 0)
            .unwrap_or_else(|| panic!("{kind}: no image defined on scanout {head}: {traced:?}"));
        let resource = traced[defined].resource;
        let last = traced.last().unwrap();
        assert_eq!(
            (last.scanout, last.x, last.y, last.resource),
            (head, x + 8, y + 8, resource),
            "{kind}: where the pointer ends: {traced:?}"
        );
        // Nothing after the definition hides it or moves it elsewhere.
        assert!(
            traced[defined..]
                .iter()
                .all(|t| t.scanout == head && t.resource == resource),
            "{kind}: {traced:?}"
        );
    }
    check_head(&mut guest, 0, &head0, "after-cursor-head0");
    check_head(&mut guest, 1, &head1, "after-cursor-head1");

    // D0 -> D3 -> D0: the device is reset (the host forgets everything) and brought up again;
    // the driver puts both pictures back by itself, before the OS presents anything.
    let answer = guest.command("power-cycle").unwrap();
    assert_eq!(field(&answer, "heads"), "2", "{answer}");
    // At least the reset of D3 (bringing the device up at D0 starts with one too).
    let resets: u32 = field(&answer, "resets").parse().unwrap();
    assert!(resets >= 1, "the device was not reset: {answer}");
    record(
        T,
        "power cycle: D3, D0, 2 heads restored by the driver",
        field(&answer, "ms"),
    );
    check_head(&mut guest, 0, &head0, "power-restored-head0");
    check_head(&mut guest, 1, &head1, "power-restored-head1");

    // The bugcheck screen (the last thing a crashed system shows): SystemDisplayEnable, then
    // the bitmap written with SystemDisplayWrite, which the driver sends polled.
    let answer = guest.command("bugcheck 0").unwrap();
    let (bw, bh) = (scene::BUGCHECK_WIDTH, scene::BUGCHECK_HEIGHT);
    let (bx, by) = ((w - bw) / 2, (h - bh) / 2);
    assert_eq!(answer, format!("{bx} {by} {} {}", bx + bw, by + bh));
    let mut bugcheck = head0.clone();
    for y in 0..bh {
        for x in 0..bw {
            bugcheck.fill(
                (bx + x, by + y, bx + x + 1, by + y + 1),
                scene::bugcheck_pixel(x, y),
            );
        }
    }
    check_head(&mut guest, 0, &bugcheck, "bugcheck");

    // Remove after the crash: the driver resets the device (the host forgets every resource),
    // nothing is left in guest DMA memory or mapped, and QEMU shows its placeholder (at the
    // last mode's size).
    assert_eq!(guest.command("stop").unwrap(), "dma=0 mappings=0 status=0");
    let screen = guest.screendump(0).unwrap();
    assert_eq!(screen.size(), QEMU_DEFAULT_HEAD);
    assert_placeholder(&screen, "stopped-head0");
    assert_placeholder(&guest.screendump(1).unwrap(), "stopped-head1");
    let err = guest.command("pattern 0").unwrap_err().to_string();
    assert!(err.contains("stopped"), "{err}");
    record(
        T,
        "host: whole test (runner build once, boot, checks)",
        &millis(started),
    );
}

#[test]
fn full_hd_device_large_and_odd_modes() {
    const T: &str = "full-hd";
    let started = Instant::now();
    let mut guest = Guest::boot(GuestConfig {
        xres: Some(1920),
        yres: Some(1080),
        ..GuestConfig::default()
    })
    .unwrap();
    record(
        T,
        "boot to runner READY (QEMU start, kernel, driver boot)",
        &format!("{:.0}", guest.boot_time().as_secs_f64() * 1000.0),
    );
    assert_eq!(guest.command("preferred 0").unwrap(), "1920x1080");
    assert_eq!(guest.command("display-info").unwrap(), "0:1920x1080:on");

    // Boot straight to the preferred 1920x1080 with the pattern.
    let answer = guest.command("pattern 0").unwrap();
    assert!(answer.starts_with("1920x1080 "), "{answer}");
    record(T, "pattern 0: full 1920x1080 present", field(&answer, "ms"));
    let mut desktop = Desktop::filled(1920, 1080, 0);
    desktop.pattern();
    check_head(&mut guest, 0, &desktop, "boot-1920x1080-pattern");

    let answer = guest.command("present 0 900 500 964 564 FF00FF").unwrap();
    desktop.fill((900, 500, 964, 564), 0x00FF_00FF);
    record(
        T,
        "present of one 64x64 rect at 1920x1080",
        field(&answer, "ms"),
    );
    check_head(&mut guest, 0, &desktop, "small-rect-1920x1080");

    // 1024x768 -> 7680x4320 -> 1024x768: the sequence that left the C++ driver's screen dark.
    // Each mode (VidPN commit, then the OS's one repaint: the filled desktop presented) shows
    // its fill color at once, then the pattern. The change sends one frame's worth of pixels:
    // the repaint, which is also the new framebuffer's first picture (the scanout points at it
    // only then, so the host never shows a resource it got no pixels for).
    for (w, h, color) in [
        (1024, 768, 0x0040_5060),
        (7680, 4320, 0x0010_2030),
        (1024, 768, 0x0060_5040),
        (1366, 768, 0x0000_8080),
        (5486, 2818, 0x0080_0080),
    ] {
        let answer = guest
            .command(&format!("mode 0 {w} {h} {color:06X}"))
            .unwrap();
        // Every size but the odd one is in the driver's mode list; that one is added the way
        // the resolution agent adds a host window's size (the driver's custom-mode escape).
        let custom = if (w, h) == (5486, 2818) { "1" } else { "0" };
        assert_eq!(field(&answer, "custom"), custom, "{answer}");
        let frame = u64::from(w) * u64::from(h) * 4;
        assert_eq!(field(&answer, "bytes"), frame.to_string(), "{answer}");
        record(T, &format!("mode change to {w}x{h}"), field(&answer, "ms"));
        let started = Instant::now();
        let screen = guest.screendump(0).unwrap();
        if w * h > 10_000_000 {
            record(
                T,
                &format!("host: screendump of {w}x{h} (QMP, PPM parse)"),
                &millis(started),
            );
        }
        let mut desktop = Desktop::filled(w, h, color);
        assert_screen(&screen, &desktop.screen(), &format!("mode-{w}x{h}-fill"));

        let answer = guest.command("pattern 0").unwrap();
        record(
            T,
            &format!("pattern 0: full {w}x{h} present"),
            field(&answer, "ms"),
        );
        desktop.pattern();
        check_head(&mut guest, 0, &desktop, &format!("mode-{w}x{h}-pattern"));

        if (w, h) == (5486, 2818) {
            // 16 MiB framebuffer chunks hold 764 rows of 5486 pixels: this rect crosses a
            // band boundary, so the guest copies it in two pieces into two mem entries (the
            // host sees one linear backing and gets one transfer).
            let answer = guest.command("present 0 5000 700 5486 900 FF8000").unwrap();
            assert_eq!(field(&answer, "rects"), "1", "{answer}");
            assert_eq!(
                field(&answer, "bytes"),
                (486 * 200 * 4).to_string(),
                "{answer}"
            );
            desktop.fill((5000, 700, 5486, 900), 0x00FF_8000);
            check_head(&mut guest, 0, &desktop, "rect-across-bands");
        }
    }

    assert_eq!(guest.command("stop").unwrap(), "dma=0 mappings=0 status=0");
    let screen = guest.screendump(0).unwrap();
    assert_eq!(screen.size(), (5486, 2818));
    assert_placeholder(&screen, "stopped-odd-size");
    record(
        T,
        "host: whole test (runner build once, boot, checks)",
        &millis(started),
    );
}

#[test]
fn virtio_vga_hand_off_shows_the_next_owners_picture() {
    const T: &str = "vga";
    let started = Instant::now();
    let mut guest = Guest::boot(GuestConfig {
        vga: true,
        ..GuestConfig::default()
    })
    .unwrap();
    record(
        T,
        "boot to runner READY on virtio-vga",
        &format!("{:.0}", guest.boot_time().as_secs_f64() * 1000.0),
    );
    let (w, h) = QEMU_DEFAULT_HEAD;
    // The driver runs the virtio-vga in virtio mode like a virtio-gpu-pci: a plain desktop
    // (not the pattern the next owner draws, so the last check cannot pass on a stale
    // virtio picture).
    let answer = guest.command(&format!("mode 0 {w} {h} 204060")).unwrap();
    assert!(answer.starts_with(&format!("{w}x{h} ")), "{answer}");
    check_head(
        &mut guest,
        0,
        &Desktop::filled(w, h, 0x0020_4060),
        "vga-virtio-mode",
    );

    // The hand-off gives the VGA (BAR 0) in the same mode; the runner, as the next owner,
    // writes the pattern there and sends nothing to the device.
    let answer = guest.command("hand-off 0").unwrap();
    assert!(answer.starts_with(&format!("{w}x{h} ")), "{answer}");
    assert_eq!(field(&answer, "pitch"), (w * 4).to_string(), "{answer}");
    assert_eq!(field(&answer, "target"), "0", "{answer}");
    assert_eq!(field(&answer, "bar"), "0", "{answer}");
    record(
        T,
        "hand-off to the VGA (mode set, clear, reset)",
        field(&answer, "ms"),
    );
    let mut next_owner = Desktop::filled(w, h, 0);
    next_owner.pattern();
    check_head(&mut guest, 0, &next_owner, "vga-next-owner-pattern");

    assert_eq!(guest.command("stop").unwrap(), "dma=0 mappings=0 status=0");
    record(T, "host: whole test (boot, checks)", &millis(started));
}

/// The host resizes the VM's display the way a VNC viewer does when its window changes size
/// (RFB SetDesktopSize; QEMU forwards it to virtio-gpu as a display event with the new
/// preferred size), and the guest follows: the runner's `follow` runs the resolution agent's
/// follower (`viogpu-agent`) against the driver, which sets the size as a custom mode and
/// commits it; the screendump has the new size and the desktop's pixels.
#[test]
fn the_guest_follows_a_vnc_viewer_resize() {
    const T: &str = "agent";
    let mut guest = Guest::boot(GuestConfig {
        vnc: true,
        ..GuestConfig::default()
    })
    .unwrap();
    let (w0, h0) = QEMU_DEFAULT_HEAD;
    let answer = guest.command("pattern 0").unwrap();
    assert!(answer.starts_with(&format!("{w0}x{h0} ")), "{answer}");
    let mut vnc = guest.vnc().unwrap();
    assert_eq!(vnc.initial_size, (w0 as u16, h0 as u16));

    // A size no mode list has, then a smaller one.
    for (w, h) in [(1500u32, 900u32), (1111, 777)] {
        let started = Instant::now();
        // 4: QEMU forwarded the request to the display device.
        assert_eq!(vnc.set_desktop_size(w as u16, h as u16).unwrap(), 4);
        let answer = guest.command("follow 60").unwrap();
        assert!(answer.starts_with(&format!("0:{w}x{h} ")), "{answer}");
        record(
            T,
            &format!("host resize to {w}x{h}: guest switched (agent, 500 ms debounce)"),
            &millis(started),
        );
        // The OS's black repaint after the mode change, then the desktop's pattern.
        check_head(
            &mut guest,
            0,
            &Desktop::filled(w, h, 0),
            &format!("follow-{w}x{h}"),
        );
        let answer = guest.command("pattern 0").unwrap();
        assert!(answer.starts_with(&format!("{w}x{h} ")), "{answer}");
        let mut desktop = Desktop::filled(w, h, 0);
        desktop.pattern();
        check_head(&mut guest, 0, &desktop, &format!("follow-{w}x{h}-pattern"));
    }
    assert_eq!(guest.command("stop").unwrap(), "dma=0 mappings=0 status=0");
}
