//! End to end under QEMU: a tiny Linux guest (qemu-system-x86_64, TCG) drives QEMU's real
//! virtio-gpu-pci from the guest runner, and the host checks the heads' pixels through QMP
//! `screendump`.
//!
//! Prerequisites come from `scripts/setup-e2e`, which `scripts/test` runs first. When they are
//! missing these tests fail with a message that says so; they never skip.
//!
//! Until the driver is merged the runner uses its temporary probe (`demo-fill`); the harness,
//! the initramfs and the hosted guest platform are the parts that stay.
// QEMU, unix sockets and the guest runner exist only on a Linux host.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use qemu_harness::artifacts::e2e_dir;
use qemu_harness::{Guest, GuestConfig, RgbImage};

/// QEMU 7.2's virtio-gpu head size when neither xres nor yres is given.
const QEMU_DEFAULT_HEAD: (u32, u32) = (1280, 800);
/// The placeholder surface QEMU shows for a head that has no scanout yet.
const QEMU_INACTIVE_HEAD: (u32, u32) = (640, 480);

const VIRTIO_GPU_F_EDID: u64 = 1 << 1;
const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// The value of `key=value` in a runner answer.
fn field<'a>(answer: &'a str, key: &str) -> &'a str {
    answer
        .split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {answer:?}"))
}

/// Asserts every pixel of `image` is `rgb`; on failure saves the image for a human to see.
fn assert_solid(image: &RgbImage, rgb: [u8; 3], name: &str) {
    let total = image.width() as usize * image.height() as usize;
    let matching = image.count_color(rgb);
    if matching != total {
        let dir = e2e_dir().join("failures");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        image.save_png(&path).unwrap();
        panic!(
            "{name}: {matching} of {total} pixels are {rgb:?} (first pixel {:?}); saved {}",
            image.pixel(0, 0),
            path.display()
        );
    }
}

#[test]
fn runner_finds_the_device_and_fills_the_default_head() {
    let mut guest = Guest::boot(GuestConfig::default()).unwrap();
    eprintln!("boot to runner READY: {:?}", guest.boot_time());

    let info = guest.command("info").unwrap();
    assert_eq!(field(&info, "id"), "1af4:1050", "{info}");
    assert_eq!(field(&info, "scanouts"), "1", "{info}");
    let features =
        u64::from_str_radix(field(&info, "features").trim_start_matches("0x"), 16).unwrap();
    assert_ne!(features & VIRTIO_F_VERSION_1, 0, "{info}");
    assert_ne!(features & VIRTIO_GPU_F_EDID, 0, "edid=on is set: {info}");

    // Before any SET_SCANOUT the head shows QEMU's inactive-output placeholder.
    let blank = guest.screendump(0).unwrap();
    assert_eq!(blank.size(), QEMU_INACTIVE_HEAD);
    assert_eq!(blank.count_color([255, 128, 0]), 0);

    let (w, h) = QEMU_DEFAULT_HEAD;
    let free_before = guest.command("dma-free").unwrap();
    assert_eq!(
        guest.command("demo-fill 255 128 0").unwrap(),
        format!("{w}x{h}")
    );
    let screen = guest.screendump(0).unwrap();
    assert_eq!(screen.size(), QEMU_DEFAULT_HEAD);
    assert_solid(&screen, [255, 128, 0], "default-head-orange");

    // A second fill resets the device and frees the first one's DMA memory: the screen
    // changes and the allocator ends where it was after the first fill.
    let free_after_first: u64 = guest.command("dma-free").unwrap().parse().unwrap();
    assert!(free_after_first < free_before.parse().unwrap());
    assert_eq!(
        guest.command("demo-fill 16 200 90").unwrap(),
        format!("{w}x{h}")
    );
    assert_solid(
        &guest.screendump(0).unwrap(),
        [16, 200, 90],
        "default-head-green",
    );
    let free_after_second: u64 = guest.command("dma-free").unwrap().parse().unwrap();
    assert_eq!(free_after_second, free_after_first);

    // Bad input is an ERR answer, not a dead runner.
    let err = guest.command("demo-fill 1 2").unwrap_err().to_string();
    assert!(err.contains("usage: demo-fill"), "{err}");
    assert_eq!(guest.command("ping").unwrap(), "pong");
}

#[test]
fn custom_resolution_and_screendump_per_head() {
    let mut guest = Guest::boot(GuestConfig {
        xres: Some(800),
        yres: Some(600),
        max_outputs: Some(2),
        ..GuestConfig::default()
    })
    .unwrap();

    let info = guest.command("info").unwrap();
    assert_eq!(field(&info, "scanouts"), "2", "max_outputs=2: {info}");
    // Only the first head is enabled by default; the second reports no size.
    assert_eq!(guest.command("display-info").unwrap(), "0:800x600:on");

    assert_eq!(guest.command("demo-fill 0 0 255").unwrap(), "800x600");
    let head0 = guest.screendump(0).unwrap();
    assert_eq!(head0.size(), (800, 600));
    assert_solid(&head0, [0, 0, 255], "head0-blue");

    // Head 1 has no scanout: screendump must read that head, not head 0.
    let head1 = guest.screendump(1).unwrap();
    assert_eq!(head1.size(), QEMU_INACTIVE_HEAD);
    assert_eq!(head1.count_color([0, 0, 255]), 0);
}
