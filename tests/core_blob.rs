//! Blob framebuffers against the device model with `VIRTIO_GPU_F_RESOURCE_BLOB`: the host
//! reads the guest framebuffer in place, so every way of showing pixels (a mode set, a VidPN
//! mode change and its first picture, presents, a repaint, a reallocation) must put the right
//! pixels on screen with no TRANSFER_TO_HOST_2D at all, the memory must be handed over in whole
//! pages, and nothing may be freed while the host still has it.

use viogpu_common::blit::{Rect as BlitRect, Rotation, Surface};
use viogpu_common::framebuffer::AllocPolicy;
use viogpu_common::hal::PAGE_SIZE;
use viogpu_common::present::PresentStats;
use viogpu_common::protocol::{CommandType, ResponseType};
use viogpu_common::resource_id::ResourceIdAllocator;
use viogpu_common::scanout::Scanout;
use virtio_gpu_model::testbed::Testbed;
use virtio_gpu_model::{GpuConfig, GuestMemoryHal};

const BLUE: u32 = 0x0033_6699;
const RED: u32 = 0x00cc_2200;

struct Display {
    bed: Testbed,
    ids: ResourceIdAllocator,
    scanout: Scanout<GuestMemoryHal>,
}

impl Display {
    /// A blob device, framebuffers carved with `policy`.
    fn blob(policy: AllocPolicy) -> Self {
        let bed = Testbed::with_config(GpuConfig {
            blob: true,
            ..GpuConfig::default()
        });
        Self {
            bed,
            ids: ResourceIdAllocator::new(1024),
            scanout: Scanout::new(0, policy),
        }
    }

    /// Presents `dirty` of the `w` x `h` [`pattern`], unrotated.
    fn present_pattern(&mut self, (w, h): (u32, u32), dirty: &[BlitRect]) -> PresentStats {
        let src = pattern(w, h);
        let surface = Surface::new(&src, w, h, w * 4).unwrap();
        self.scanout
            .present(
                &self.bed.gpu,
                &mut self.ids,
                &surface,
                &[],
                dirty,
                Rotation::Identity,
            )
            .unwrap()
    }

    fn count(&self, command: CommandType) -> u64 {
        self.bed.backend.lock().count(command)
    }

    /// Every pixel the host shows on scanout 0 equals `expected(x, y)`.
    fn assert_screen(&self, (w, h): (u32, u32), expected: impl Fn(u32, u32) -> u32) {
        let image = self.bed.backend.lock().scanout_image(0).expect("shown");
        assert_eq!((image.width, image.height), (w, h));
        for y in 0..h {
            for x in 0..w {
                assert_eq!(image.pixel(x, y), Some(expected(x, y)), "pixel ({x},{y})");
            }
        }
    }

    /// The device still uses none of the guest memory the driver has freed, and no request
    /// was answered with an error.
    fn assert_clean(&self) {
        let backend = self.bed.backend.lock();
        assert_eq!(backend.reused_while_held(), 0);
        let errors: Vec<_> = backend.error_answers().collect();
        assert!(errors.is_empty(), "error answers: {errors:?}");
    }
}

/// A source pattern whose every pixel is distinct.
fn pattern_pixel(x: u32, y: u32) -> u32 {
    0x0080_0000 ^ (y << 11) ^ x
}

fn pattern(w: u32, h: u32) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| pattern_pixel(x, y).to_le_bytes()))
        .collect()
}

#[test]
fn a_mode_set_shows_a_blob_with_no_transfer() {
    let mut d = Display::blob(AllocPolicy::default());
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, 1024, 768, BLUE)
        .unwrap();
    let fb = d.scanout.current().unwrap();
    assert!(fb.is_blob());
    let info = d.bed.backend.lock().resource(fb.resource_id()).unwrap();
    assert!(info.blob_size.is_some_and(|size| size >= 1024 * 768 * 4));
    assert_eq!(d.count(CommandType::TRANSFER_TO_HOST_2D), 0);
    assert_eq!(d.count(CommandType::RESOURCE_CREATE_2D), 0);
    assert_eq!(d.count(CommandType::SET_SCANOUT_BLOB), 1);
    d.assert_screen((1024, 768), |_, _| BLUE);
    d.assert_clean();
}

#[test]
fn presents_are_flushes_only_and_show_exactly_the_dirty_pixels() {
    let (w, h) = (320, 200);
    let mut d = Display::blob(AllocPolicy::default());
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, w, h, BLUE)
        .unwrap();
    let dirty = [
        BlitRect::new(3, 5, 40, 61),
        BlitRect::new(250, 150, 320, 200),
    ];
    let stats = d.present_pattern((w, h), &dirty);
    assert_eq!((stats.transfers, stats.bytes), (0, 0));
    assert_eq!(d.count(CommandType::TRANSFER_TO_HOST_2D), 0);
    assert_eq!(d.count(CommandType::RESOURCE_FLUSH), 1 + 2);
    let inside = |x: u32, y: u32| {
        dirty.iter().any(|r| {
            (x as i32) >= r.left
                && (x as i32) < r.right
                && (y as i32) >= r.top
                && (y as i32) < r.bottom
        })
    };
    d.assert_screen((w, h), |x, y| {
        if inside(x, y) {
            pattern_pixel(x, y)
        } else {
            BLUE
        }
    });
    d.assert_clean();
}

#[test]
fn pixels_written_but_not_flushed_are_not_on_screen() {
    // The model's host sees a blob's new pixels only through a flush: a driver that wrote the
    // framebuffer and forgot to flush would show the old picture.
    let mut d = Display::blob(AllocPolicy::default());
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, 64, 64, BLUE)
        .unwrap();
    let fb = d.scanout.current_mut().unwrap();
    fb.backing_mut().write_pixel(10, 10, RED).unwrap();
    d.assert_screen((64, 64), |_, _| BLUE);
    d.scanout.paint(&d.bed.gpu, &mut d.ids, RED).unwrap();
    d.assert_screen((64, 64), |_, _| RED);
    assert_eq!(d.count(CommandType::TRANSFER_TO_HOST_2D), 0);
    d.assert_clean();
}

#[test]
fn a_vidpn_mode_change_keeps_the_old_blob_on_screen_until_its_first_picture() {
    let mut d = Display::blob(AllocPolicy::default());
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, 800, 600, BLUE)
        .unwrap();
    let old = d.scanout.current().unwrap().resource_id();
    let (w, h) = (1280, 720);
    d.scanout.prepare(&d.bed.gpu, &mut d.ids, w, h, 0).unwrap();
    d.scanout
        .switch_to_prepared(&d.bed.gpu, &mut d.ids)
        .unwrap();
    d.scanout.confirm_switch(&d.bed.gpu, &mut d.ids);
    // Committed, no picture yet: the host still shows the old blob.
    d.assert_screen((800, 600), |_, _| BLUE);
    assert_eq!(d.bed.backend.lock().scanout_resource(0), Some(old));

    let whole = [BlitRect::new(0, 0, w as i32, h as i32)];
    let stats = d.present_pattern((w, h), &whole);
    assert_eq!((stats.transfers, stats.bytes), (0, 0));
    d.assert_screen((w, h), pattern_pixel);
    // The old blob was detached and destroyed once the new one was shown.
    let backend = d.bed.backend.lock();
    assert!(backend.resource(old).is_none());
    assert_eq!(backend.resource_count(), 1);
    assert_eq!(backend.count(CommandType::TRANSFER_TO_HOST_2D), 0);
    drop(backend);
    d.assert_clean();
}

#[test]
fn a_framebuffer_of_many_chunks_is_handed_over_in_whole_pages() {
    // 1366 pixels are 5464 bytes a row: only every 512th row ends on a page boundary, so the
    // chunks must hold multiples of 512 rows for the blob's pages to line up with the rows.
    let (w, h) = (1366, 1500);
    let policy = AllocPolicy {
        max_chunk: 1 << 20,
        min_chunk: 64 << 10,
        max_entries: 64,
        whole_pages: false,
    };
    let mut d = Display::blob(policy);
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, w, h, BLUE)
        .unwrap();
    let fb = d.scanout.current().unwrap();
    assert!(fb.is_blob());
    let bands: Vec<_> = fb.backing().bands().collect();
    assert!(bands.len() >= 3, "{bands:?}");
    for band in &bands[..bands.len() - 1] {
        assert_eq!(band.rows % 512, 0, "{bands:?}");
    }
    let (entries, size) = fb.backing().blob_entries().unwrap();
    let entries: Vec<_> = entries.collect();
    for &(addr, len) in &entries {
        assert_eq!(addr % PAGE_SIZE as u64, 0);
        assert_eq!(len as usize % PAGE_SIZE, 0);
    }
    assert!(size >= u64::from(w) * u64::from(h) * 4);

    // Rows across every chunk boundary reach the screen where they belong.
    let whole = [BlitRect::new(0, 0, w as i32, h as i32)];
    d.present_pattern((w, h), &whole);
    d.assert_screen((w, h), pattern_pixel);
    d.assert_clean();
}

#[test]
fn without_whole_page_memory_the_framebuffer_is_a_2d_resource_and_still_shown() {
    // A policy whose chunk budget cannot hold 512-row chunks of 1366 pixels (2.8 MB each
    // would need to be single pages of at most 1 MiB): the blob is impossible, the 2D path is
    // not.
    let (w, h) = (1366, 1500);
    let policy = AllocPolicy {
        max_chunk: 1 << 20,
        min_chunk: 64 << 10,
        max_entries: 8,
        whole_pages: false,
    };
    let mut d = Display::blob(policy);
    d.bed.hal.fail_allocations_larger_than(Some(1 << 20));
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, w, h, RED)
        .unwrap();
    let fb = d.scanout.current().unwrap();
    assert!(!fb.is_blob());
    assert_eq!(d.count(CommandType::RESOURCE_CREATE_BLOB), 0);
    assert_eq!(d.count(CommandType::TRANSFER_TO_HOST_2D), 1);
    d.assert_screen((w, h), |_, _| RED);
    d.assert_clean();
}

#[test]
fn a_refused_blob_creation_keeps_the_old_mode_and_frees_nothing_the_host_has() {
    let mut d = Display::blob(AllocPolicy::default());
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, 640, 480, BLUE)
        .unwrap();
    let dma_before = d.bed.dma_bytes();
    d.bed.backend.lock().fail_next(
        CommandType::RESOURCE_CREATE_BLOB,
        ResponseType::ERR_OUT_OF_MEMORY,
    );
    let err = d
        .scanout
        .set_mode(&d.bed.gpu, &mut d.ids, 1024, 768, RED)
        .unwrap_err();
    assert!(
        matches!(err, viogpu_common::Error::DeviceError(_)),
        "{err:?}"
    );
    d.assert_screen((640, 480), |_, _| BLUE);
    assert_eq!(d.bed.backend.lock().resource_count(), 1);
    assert_eq!(d.bed.dma_bytes(), dma_before);
    assert_eq!(d.bed.backend.lock().reused_while_held(), 0);
}

#[test]
fn a_blob_the_host_cannot_map_is_shown_as_a_2d_resource_and_not_tried_again() {
    // 4200x4000 is 67.2 MB, past udmabuf's default 64 MiB: QEMU creates the blob (OK) and
    // refuses its SET_SCANOUT_BLOB. The same memory must then be shown as a 2D resource.
    let (w, h) = (4200, 4000);
    let mut d = Display::blob(AllocPolicy::default());
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, w, h, RED)
        .unwrap();
    let fb = d.scanout.current().unwrap();
    assert!(!fb.is_blob());
    let id = fb.resource_id();
    {
        let backend = d.bed.backend.lock();
        assert_eq!(backend.count(CommandType::RESOURCE_CREATE_BLOB), 1);
        assert_eq!(backend.count(CommandType::RESOURCE_UNREF), 1);
        assert_eq!(backend.count(CommandType::TRANSFER_TO_HOST_2D), 1);
        assert_eq!(backend.resource_count(), 1);
        assert!(backend.resource(id).unwrap().blob_size.is_none());
        assert_eq!(backend.reused_while_held(), 0);
    }
    d.assert_screen((w, h), |_, _| RED);

    // The same size again goes straight to 2D; a smaller one is a blob again.
    d.scanout.prepare(&d.bed.gpu, &mut d.ids, w, h, 0).unwrap();
    d.scanout
        .switch_to_prepared(&d.bed.gpu, &mut d.ids)
        .unwrap();
    d.scanout.confirm_switch(&d.bed.gpu, &mut d.ids);
    assert_eq!(d.count(CommandType::RESOURCE_CREATE_BLOB), 1);
    assert!(!d.scanout.current().unwrap().is_blob());
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, 1920, 1080, BLUE)
        .unwrap();
    assert!(d.scanout.current().unwrap().is_blob());
    d.assert_screen((1920, 1080), |_, _| BLUE);
    assert_eq!(d.bed.backend.lock().reused_while_held(), 0);
}

#[test]
fn the_first_picture_of_an_unmappable_blob_goes_out_as_a_2d_resource() {
    let mut d = Display::blob(AllocPolicy::default());
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, 800, 600, BLUE)
        .unwrap();
    let (w, h) = (4200, 4000);
    d.scanout.prepare(&d.bed.gpu, &mut d.ids, w, h, 0).unwrap();
    d.scanout
        .switch_to_prepared(&d.bed.gpu, &mut d.ids)
        .unwrap();
    d.scanout.confirm_switch(&d.bed.gpu, &mut d.ids);
    d.assert_screen((800, 600), |_, _| BLUE);
    let whole = [BlitRect::new(0, 0, w as i32, h as i32)];
    d.present_pattern((w, h), &whole);
    assert!(!d.scanout.current().unwrap().is_blob());
    d.assert_screen((w, h), pattern_pixel);
    let backend = d.bed.backend.lock();
    // The 800x600 blob and the refused one are gone; the 2D one is shown.
    assert_eq!(backend.resource_count(), 1);
    assert_eq!(backend.reused_while_held(), 0);
}

#[test]
fn a_blob_is_destroyed_by_its_unref_alone_and_its_memory_freed_after_it() {
    let mut d = Display::blob(AllocPolicy::default());
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, 640, 480, BLUE)
        .unwrap();
    let dma_one = d.bed.dma_bytes();
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, 1024, 768, RED)
        .unwrap();
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, 640, 480, BLUE)
        .unwrap();
    assert_eq!(d.count(CommandType::RESOURCE_DETACH_BACKING), 0);
    assert_eq!(d.count(CommandType::RESOURCE_UNREF), 2);
    assert_eq!(d.bed.dma_bytes(), dma_one);
    d.assert_clean();

    // An UNREF the device does not confirm keeps the memory until it does.
    d.bed
        .backend
        .lock()
        .fail_next(CommandType::RESOURCE_UNREF, ResponseType::ERR_UNSPEC);
    d.scanout
        .set_mode(&d.bed.gpu, &mut d.ids, 1024, 768, RED)
        .unwrap();
    assert_eq!(d.scanout.retired_count(), 1);
    assert_eq!(d.bed.backend.lock().reused_while_held(), 0);
    assert_eq!(d.scanout.reap_retired(&d.bed.gpu, &mut d.ids), 0);
}
