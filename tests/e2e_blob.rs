//! End to end under QEMU on `virtio-gpu-pci,blob=true`: QEMU 7.2 only offers blob resources
//! with `/dev/udmabuf`, which this machine's kernel lacks, so the harness runs QEMU with the
//! udmabuf stand-in (`tests/support/udmabuf-shim`, `GuestConfig::blob`) and guest RAM on a
//! sealed memfd. The driver, in the guest runner, must see `VIRTIO_GPU_F_RESOURCE_BLOB`
//! offered and show the right pixels after a mode set, a dirty-rect present and a change to
//! 3840x2160, whichever path (2D or blob) it takes; the path QEMU saw is printed.
//!
//! Linux's own virtio_gpu on the same device (blob scanouts, DIRTYFB, a 3840x2160 buffer of
//! several udmabuf ranges) is checked by `scripts/bench-e2e --blob`, which has the kernel's
//! GPU modules this test binary does not.
//!
//! Prerequisites come from `scripts/setup-e2e`; missing ones fail the test, never skip it.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use qemu_harness::{Guest, GuestConfig, RgbImage};

const VIRTIO_GPU_F_RESOURCE_BLOB: u64 = 1 << 3;

/// The value of `key=value` in a runner answer.
fn field<'a>(answer: &'a str, key: &str) -> &'a str {
    answer
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {answer:?}"))
}

fn hex(answer: &str, key: &str) -> u64 {
    let text = field(answer, key);
    u64::from_str_radix(text.trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("bad {key}={text}"))
}

fn rgb(color: u32) -> [u8; 3] {
    [(color >> 16) as u8, (color >> 8) as u8, color as u8]
}

/// Pixels that differ from `fill` with `rects` (`x0, y0, x1, y1, color`, later ones on top).
fn wrong_pixels(
    screen: &RgbImage,
    size: (u32, u32),
    fill: u32,
    rects: &[(u32, u32, u32, u32, u32)],
) -> usize {
    assert_eq!(screen.size(), size, "screen size");
    let (w, h) = size;
    let data = screen.as_rgb();
    let mut wrong = 0;
    for y in 0..h {
        for x in 0..w {
            let color = rects
                .iter()
                .rev()
                .find(|r| x >= r.0 && x < r.2 && y >= r.1 && y < r.3)
                .map_or(fill, |r| r.4);
            let at = ((y * w + x) * 3) as usize;
            if data[at..at + 3] != rgb(color) {
                wrong += 1;
            }
        }
    }
    wrong
}

/// QEMU trace lines of `event` (a `SET_SCANOUT` of resource 0 switches a head off and
/// tells nothing about the path, so it is left out).
fn count(log: &str, event: &str) -> usize {
    log.lines()
        .filter(|l| l.split_whitespace().next() == Some(event))
        .filter(|l| !l.contains("res 0x0,"))
        .count()
}

#[test]
fn the_driver_shows_pictures_on_a_blob_device_with_the_udmabuf_stand_in() {
    let mut guest = Guest::boot(GuestConfig {
        blob: true,
        trace_events: [
            "virtio_gpu_cmd_res_create_blob",
            "virtio_gpu_cmd_set_scanout_blob",
            "virtio_gpu_cmd_res_create_2d",
            "virtio_gpu_cmd_set_scanout",
        ]
        .map(String::from)
        .to_vec(),
        ..GuestConfig::default()
    })
    .unwrap();
    let log = guest.qemu_log();
    assert!(
        log.contains("udmabuf-shim: opened /dev/udmabuf"),
        "QEMU did not open the stand-in's /dev/udmabuf:\n{log}"
    );
    let info = guest.command("info").unwrap();
    assert_ne!(
        hex(&info, "features") & VIRTIO_GPU_F_RESOURCE_BLOB,
        0,
        "blob=true offers VIRTIO_GPU_F_RESOURCE_BLOB: {info}"
    );

    // Every framebuffer is a blob: a mode change and a present send no pixels at all.
    let answer = guest.command("mode 0 1024 768 C02040").unwrap();
    assert_eq!(field(&answer, "bytes"), "0", "{answer}");
    let screen = guest.screendump(0).unwrap();
    assert_eq!(
        wrong_pixels(&screen, (1024, 768), 0xC02040, &[]),
        0,
        "after the mode set"
    );

    let answer = guest.command("present 0 100 100 356 300 20C040").unwrap();
    assert_eq!(field(&answer, "bytes"), "0", "{answer}");
    let screen = guest.screendump(0).unwrap();
    assert_eq!(
        wrong_pixels(
            &screen,
            (1024, 768),
            0xC02040,
            &[(100, 100, 356, 300, 0x20C040)]
        ),
        0,
        "after a dirty-rect present"
    );

    // 33 MB in several chunks: one udmabuf over several ranges.
    let answer = guest.command("mode 0 3840 2160 4060A0").unwrap();
    assert_eq!(field(&answer, "bytes"), "0", "{answer}");
    let answer = guest
        .command("present 0 3000 1800 3840 2160 00FFFF")
        .unwrap();
    assert_eq!(field(&answer, "bytes"), "0", "{answer}");
    let screen = guest.screendump(0).unwrap();
    assert_eq!(
        wrong_pixels(
            &screen,
            (3840, 2160),
            0x4060A0,
            &[(3000, 1800, 3840, 2160, 0x00FFFF)]
        ),
        0,
        "after the change to 3840x2160 and a present"
    );
    let log = guest.qemu_log();
    assert!(
        !log.contains("UDMABUF_CREATE_LIST") && !log.contains("dmabuf mmap failed"),
        "QEMU could not map a blob resource up to 3840x2160:\n{log}"
    );

    // 7680x4320 is 127 MiB, past udmabuf's default 64 MiB: QEMU creates the blob, cannot map
    // it, refuses its SET_SCANOUT_BLOB; the driver shows the same memory as a 2D resource
    // (one full transfer) and keeps that size 2D. Back at 1024x768 it is a blob again.
    let answer = guest.command("mode 0 7680 4320 102030").unwrap();
    let frame = 7680u64 * 4320 * 4;
    assert_eq!(field(&answer, "bytes"), frame.to_string(), "{answer}");
    let screen = guest.screendump(0).unwrap();
    assert_eq!(
        wrong_pixels(&screen, (7680, 4320), 0x102030, &[]),
        0,
        "7680x4320 through the 2D fallback"
    );
    assert!(
        guest.qemu_log().contains("UDMABUF_CREATE_LIST"),
        "the stand-in should have refused the 127 MiB list"
    );
    let answer = guest.command("mode 0 1024 768 806040").unwrap();
    assert_eq!(field(&answer, "bytes"), "0", "{answer}");
    let screen = guest.screendump(0).unwrap();
    assert_eq!(
        wrong_pixels(&screen, (1024, 768), 0x806040, &[]),
        0,
        "back to a blob at 1024x768"
    );

    let log = guest.qemu_log();
    // Framebuffer scanouts were blobs but for the one 8K fallback (a 2D resource, its one
    // SET_SCANOUT); any other 2D resource is the pointer's, never shown on a scanout.
    assert!(count(&log, "virtio_gpu_cmd_res_create_blob") >= 4, "{log}");
    assert!(count(&log, "virtio_gpu_cmd_set_scanout_blob") >= 3, "{log}");
    assert_eq!(count(&log, "virtio_gpu_cmd_set_scanout"), 1, "{log}");
    assert_eq!(guest.command("stop").unwrap(), "dma=0 mappings=0 status=0");
}
