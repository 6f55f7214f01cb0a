//! The core's device layer, command layer and mode changes against the virtio-gpu device
//! model: what the host shows, how many host resources exist, and how much guest DMA memory
//! is in use, after normal operation and after every kind of failure the C++ driver
//! blue-screened or leaked on.

use viogpu_common::bring_up::{restart, RingAddresses, Vectors, QUEUES};
use viogpu_common::framebuffer::AllocPolicy;
use viogpu_common::gpu::{WaitMode, CONTROL_QUEUE};
use viogpu_common::protocol::{CommandType, Rect, ResourceFlush, ResponseType};
use viogpu_common::resource_id::ResourceIdAllocator;
use viogpu_common::scanout::Scanout;
use viogpu_common::{edid, Error};
use virtio_gpu_model::testbed::{TestGpu, Testbed};
use virtio_gpu_model::{Corruption, GpuConfig, PreferredDisplay};
use zerocopy::IntoBytes;

const BLUE: u32 = 0x0033_6699;
const RED: u32 = 0x00cc_2200;
const GREEN: u32 = 0x0011_aa33;

struct Display {
    bed: Testbed,
    ids: ResourceIdAllocator,
    scanout: Scanout<virtio_gpu_model::GuestMemoryHal>,
}

impl Display {
    fn new() -> Self {
        Self::with_bed(Testbed::new())
    }

    fn with_bed(bed: Testbed) -> Self {
        Self {
            bed,
            ids: ResourceIdAllocator::new(1024),
            scanout: Scanout::new(0, AllocPolicy::default()),
        }
    }

    fn gpu(&self) -> &TestGpu {
        &self.bed.gpu
    }

    fn set_mode(&mut self, w: u32, h: u32, fill: u32) -> Result<(), Error> {
        self.scanout
            .set_mode(&self.bed.gpu, &mut self.ids, w, h, fill)
    }

    /// Asserts the host shows a `w` x `h` picture of one color (corners and middle).
    fn assert_shows(&self, w: u32, h: u32, color: u32) {
        let backend = self.bed.backend.lock();
        let image = backend.scanout_image(0).expect("scanout shows something");
        assert_eq!((image.width, image.height), (w, h));
        for (x, y) in [
            (0, 0),
            (w - 1, 0),
            (0, h - 1),
            (w - 1, h - 1),
            (w / 2, h / 2),
        ] {
            assert_eq!(image.pixel(x, y), Some(color), "pixel ({x},{y})");
        }
    }

    fn host_resources(&self) -> usize {
        self.bed.backend.lock().resource_count()
    }
}

#[test]
fn display_info_and_edid_report_the_preferred_mode() {
    let bed = Testbed::new();
    let info = bed.gpu.get_display_info(WaitMode::Wait).unwrap();
    assert_eq!(info.preferred_size(0), Some((1024, 768)));
    let resp = bed.gpu.get_edid(0, WaitMode::Wait).unwrap();
    let parsed = edid::parse(resp.edid_bytes().unwrap()).unwrap();
    let preferred = parsed.preferred.unwrap();
    assert_eq!((preferred.width, preferred.height), (1024, 768));
}

#[test]
fn large_mode_and_back_shows_the_right_pixels_and_leaks_nothing() {
    let mut d = Display::new();
    d.set_mode(1024, 768, BLUE).unwrap();
    d.assert_shows(1024, 768, BLUE);
    let dma_at_1024 = d.bed.dma_bytes();
    assert_eq!(d.host_resources(), 1);

    d.set_mode(7680, 4320, RED).unwrap();
    d.assert_shows(7680, 4320, RED);
    assert_eq!(d.host_resources(), 1);
    let resource = d.bed.backend.lock().scanout_resource(0).unwrap();
    let info = d.bed.backend.lock().resource(resource).unwrap();
    assert!(
        info.backing_entries < 64,
        "8K backing took {} entries",
        info.backing_entries
    );

    d.set_mode(1024, 768, GREEN).unwrap();
    d.assert_shows(1024, 768, GREEN);
    assert_eq!(d.host_resources(), 1);
    assert_eq!(d.bed.dma_bytes(), dma_at_1024);
    assert_eq!(d.scanout.retired_count(), 0);
}

#[test]
fn odd_sizes_work() {
    let mut d = Display::new();
    for (w, h) in [(1366, 768), (5486, 2818), (641, 479)] {
        d.set_mode(w, h, BLUE).unwrap();
        d.assert_shows(w, h, BLUE);
    }
    assert_eq!(d.host_resources(), 1);
}

#[test]
fn resource_ids_are_not_reused_at_once() {
    let mut d = Display::new();
    let mut seen = Vec::new();
    for i in 0..6 {
        d.set_mode(800 + i * 16, 600, BLUE).unwrap();
        let id = d.bed.backend.lock().scanout_resource(0).unwrap();
        assert_ne!(id, 0);
        assert!(!seen.contains(&id), "id {id} reused");
        seen.push(id);
    }
}

/// Runs a mode change to 1920x1080 that the device fails in some way, from a 1024x768 BLUE
/// screen, and checks that the old mode is still displayed and nothing leaked.
fn failed_mode_change(inject: impl FnOnce(&Display)) -> (Display, Error) {
    let mut d = Display::new();
    d.set_mode(1024, 768, BLUE).unwrap();
    let dma = d.bed.dma_bytes();
    let hostmem = d.bed.backend.lock().hostmem_used();
    inject(&d);
    let err = d.set_mode(1920, 1080, RED).unwrap_err();
    d.bed.backend.lock().clear_faults();
    d.assert_shows(1024, 768, BLUE);
    assert_eq!(d.scanout.mode(), Some((1024, 768)));
    assert_eq!(d.host_resources(), 1);
    assert_eq!(d.bed.backend.lock().hostmem_used(), hostmem);
    assert_eq!(d.bed.dma_bytes(), dma);
    (d, err)
}

#[test]
fn out_of_memory_on_create_keeps_the_old_mode() {
    let (_, err) = failed_mode_change(|d| {
        d.bed.backend.lock().fail_next(
            CommandType::RESOURCE_CREATE_2D,
            ResponseType::ERR_OUT_OF_MEMORY,
        )
    });
    assert_eq!(err, Error::DeviceError(ResponseType::ERR_OUT_OF_MEMORY.0));
}

#[test]
fn unspec_on_attach_keeps_the_old_mode_and_unrefs_the_new_resource() {
    let (d, err) = failed_mode_change(|d| {
        d.bed.backend.lock().fail_next(
            CommandType::RESOURCE_ATTACH_BACKING,
            ResponseType::ERR_UNSPEC,
        )
    });
    assert_eq!(err, Error::DeviceError(ResponseType::ERR_UNSPEC.0));
    assert_eq!(d.bed.backend.lock().count(CommandType::RESOURCE_UNREF), 1);
}

#[test]
fn errors_on_set_scanout_and_transfer_keep_the_old_mode() {
    for command in [CommandType::SET_SCANOUT, CommandType::TRANSFER_TO_HOST_2D] {
        let (_, err) = failed_mode_change(|d| {
            d.bed
                .backend
                .lock()
                .fail_next(command, ResponseType::ERR_INVALID_PARAMETER)
        });
        assert_eq!(
            err,
            Error::DeviceError(ResponseType::ERR_INVALID_PARAMETER.0)
        );
    }
}

#[test]
fn a_mode_larger_than_host_memory_is_refused_cleanly() {
    let config = GpuConfig {
        max_hostmem: 64 << 20,
        ..GpuConfig::default()
    };
    let mut d = Display::with_bed(Testbed::with_config(config));
    d.set_mode(1024, 768, BLUE).unwrap();
    let dma = d.bed.dma_bytes();
    let err = d.set_mode(7680, 4320, RED).unwrap_err();
    assert_eq!(err, Error::DeviceError(ResponseType::ERR_OUT_OF_MEMORY.0));
    d.assert_shows(1024, 768, BLUE);
    assert_eq!(d.host_resources(), 1);
    assert_eq!(d.bed.dma_bytes(), dma);
}

#[test]
fn failed_allocation_at_each_point_of_a_mode_change_leaks_nothing() {
    let mut points = 0;
    for n in 0..64 {
        let mut d = Display::new();
        d.set_mode(1024, 768, BLUE).unwrap();
        let dma = d.bed.dma_bytes();
        d.bed.hal.fail_allocations_after(Some(n));
        let result = d.set_mode(3840, 2160, RED);
        d.bed.hal.fail_allocations_after(None);
        match result {
            Ok(()) => {
                d.assert_shows(3840, 2160, RED);
                assert!(n > 0, "a mode change needs at least one allocation");
                points = n;
                break;
            }
            Err(e) => {
                assert_eq!(e, Error::NoDmaMemory, "allocation {n}");
                d.assert_shows(1024, 768, BLUE);
                assert_eq!(d.host_resources(), 1, "allocation {n}");
                assert_eq!(d.bed.dma_bytes(), dma, "allocation {n}");
            }
        }
    }
    assert!(points > 0, "the mode change never succeeded");
}

#[test]
fn a_device_that_never_answers_times_out_and_keeps_the_buffers() {
    let d = Display::new();
    d.gpu().set_timeout_us(100_000);
    d.bed.backend.lock().hold_completions(true);
    let before = d.bed.platform.clock.now_us();
    let err = d.gpu().get_display_info(WaitMode::Wait).unwrap_err();
    assert_eq!(err, Error::Timeout);
    assert!(d.bed.platform.clock.now_us() - before >= 100_000);
    assert_eq!(d.gpu().with_queue(CONTROL_QUEUE, |q| q.abandoned()), 1);
    assert_eq!(
        d.gpu()
            .stats
            .timeouts
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // The late answer: the device completes it now; the buffer is reclaimed, not reused early.
    d.bed.backend.lock().hold_completions(false);
    d.bed.release_held(CONTROL_QUEUE);
    let c = d.gpu().process_completions();
    assert_eq!(c.reclaimed, 1);
    assert_eq!(d.gpu().with_queue(CONTROL_QUEUE, |q| q.abandoned()), 0);
    assert_eq!(d.gpu().with_queue(CONTROL_QUEUE, |q| q.in_flight()), 0);
    // And the device still works.
    let info = d.gpu().get_display_info(WaitMode::Wait).unwrap();
    assert_eq!(info.preferred_size(0), Some((1024, 768)));
}

#[test]
fn a_mode_change_that_times_out_is_cleaned_up_after_the_late_answer() {
    let mut d = Display::new();
    d.set_mode(1024, 768, BLUE).unwrap();
    let dma = d.bed.dma_bytes();
    d.gpu().set_timeout_us(50_000);
    d.bed.backend.lock().hold_completions(true);
    assert_eq!(d.set_mode(1920, 1080, RED), Err(Error::Timeout));
    // The new framebuffer's memory may be in use by the host: it is kept, not freed.
    assert_eq!(d.scanout.retired_count(), 1);
    assert!(d.bed.dma_bytes() > dma);

    d.bed.backend.lock().hold_completions(false);
    d.bed.release_held(CONTROL_QUEUE);
    d.gpu().process_completions();
    assert_eq!(d.scanout.reap_retired(&d.bed.gpu, &mut d.ids), 0);
    d.assert_shows(1024, 768, BLUE);
    assert_eq!(d.host_resources(), 1);
    assert_eq!(d.bed.dma_bytes(), dma);
}

#[test]
fn a_bogus_used_id_is_a_bounded_failure() {
    let d = Display::new();
    d.gpu().set_timeout_us(10_000);
    d.bed
        .backend
        .lock()
        .corrupt_next_response(Corruption::BogusUsedId);
    assert_eq!(
        d.gpu().get_display_info(WaitMode::Wait).unwrap_err(),
        Error::Timeout
    );
    assert!(
        d.gpu()
            .stats
            .device_faults
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    // The request the device never returned keeps its buffer; everything else goes on.
    assert_eq!(d.gpu().with_queue(CONTROL_QUEUE, |q| q.abandoned()), 1);
    assert!(d.gpu().get_display_info(WaitMode::Wait).is_ok());
}

/// Issue 8, rule 9a: a duplicated used-ring entry puts used.idx one ahead of the requests in
/// flight, after which no entry can be trusted or consumed. The waiter hears about it at once
/// (not after its timeout), later commands are refused at once instead of each timing out,
/// the request the device still holds keeps its buffer, and a reset plus the core's restart
/// over the same rings brings the queue back.
#[test]
fn a_duplicated_used_entry_is_reported_at_once_and_a_reset_recovers_the_queue() {
    let mut d = Display::new();
    d.set_mode(1024, 768, BLUE).unwrap();
    let clock = d.bed.platform.clock.clone();
    d.bed
        .backend
        .lock()
        .corrupt_next_response(Corruption::DuplicateUsed);
    let t0 = clock.now_us();
    assert_eq!(
        d.gpu().get_display_info(WaitMode::Wait).unwrap_err(),
        Error::BadUsedIndex
    );
    assert_eq!(
        d.gpu().get_display_info(WaitMode::Wait).unwrap_err(),
        Error::BadUsedIndex,
        "later commands fail too, at once"
    );
    assert!(
        clock.now_us() - t0 < 100_000,
        "waited {} us for a wedged queue",
        clock.now_us() - t0
    );
    // The request the device answered twice is still the device's: not freed before the reset.
    assert_eq!(d.gpu().with_queue(CONTROL_QUEUE, |q| q.abandoned()), 1);
    assert_eq!(d.gpu().ring_fault(), Some(Error::BadUsedIndex));

    // Reset (confirmed), every buffer back, the same rings programmed again.
    d.bed.transport.lock().unwrap().reset().unwrap();
    d.gpu().reset_queues();
    assert_eq!(d.gpu().with_queue(CONTROL_QUEUE, |q| q.in_flight()), 0);
    assert_eq!(d.gpu().ring_fault(), None);
    let rings = QUEUES.map(|q| d.gpu().with_queue(q, |cq| RingAddresses::of(cq.queue())));
    {
        let mut transport = d.bed.transport.lock().unwrap();
        let vectors = Vectors::per_source(transport.layout().msix_table_size);
        restart(&mut transport, d.bed.features, rings, vectors).unwrap();
    }
    let info = d.gpu().get_display_info(WaitMode::Wait).unwrap();
    assert_eq!(info.preferred_size(0), Some((1024, 768)));
    // The scanout's host resource went with the reset: bring the framebuffer back.
    d.scanout.suspend_after_reset(&mut d.ids);
    d.scanout
        .resume_after_reset(&d.bed.gpu, &mut d.ids)
        .unwrap();
    d.assert_shows(1024, 768, BLUE);
    d.set_mode(800, 600, GREEN).unwrap();
    d.assert_shows(800, 600, GREEN);
    assert_eq!(d.host_resources(), 1);
}

#[test]
fn a_short_response_is_an_error_not_garbage() {
    let d = Display::new();
    d.bed
        .backend
        .lock()
        .corrupt_next_response(Corruption::UsedLength(8));
    assert_eq!(
        d.gpu().get_display_info(WaitMode::Wait).unwrap_err(),
        Error::ShortResponse
    );
}

#[test]
fn a_full_ring_is_reported_never_silently_dropped() {
    let mut d = Display::new();
    d.set_mode(1024, 768, BLUE).unwrap();
    let id = d.bed.backend.lock().scanout_resource(0).unwrap();
    d.gpu().set_timeout_us(10_000);
    d.bed.backend.lock().hold_completions(true);
    let flush = ResourceFlush::new(id, Rect::new(0, 0, 16, 16));
    let requests: Vec<&[u8]> = (0..100).map(|_| flush.as_bytes()).collect();
    let before = d.bed.backend.lock().count(CommandType::RESOURCE_FLUSH);
    let err = d
        .gpu()
        .send_batch(CONTROL_QUEUE, requests.into_iter(), WaitMode::Wait)
        .unwrap_err();
    assert_eq!(err, Error::QueueFull);
    let consumed = d.bed.backend.lock().count(CommandType::RESOURCE_FLUSH) - before;
    assert_eq!(consumed, 64, "the device saw exactly one ring's worth");
    d.bed.backend.lock().hold_completions(false);
    d.bed.release_held(CONTROL_QUEUE);
    assert_eq!(d.gpu().process_completions().reclaimed, 64);
}

#[test]
fn polled_mode_works_without_interrupts_or_allocation() {
    let d = Display::new();
    let dma = d.bed.dma_bytes();
    d.bed.hal.fail_allocations_after(Some(0));
    let info = d.gpu().get_display_info(WaitMode::Polled).unwrap();
    assert_eq!(info.preferred_size(0), Some((1024, 768)));
    assert_eq!(d.bed.dma_bytes(), dma);
}

#[test]
fn two_scanouts_show_their_own_modes() {
    let config = GpuConfig {
        num_scanouts: 2,
        displays: vec![
            PreferredDisplay::enabled(1024, 768),
            PreferredDisplay::enabled(1280, 800),
        ],
        ..GpuConfig::default()
    };
    let bed = Testbed::with_config(config);
    let info = bed.gpu.get_display_info(WaitMode::Wait).unwrap();
    assert_eq!(info.preferred_size(1), Some((1280, 800)));
    let mut ids = ResourceIdAllocator::new(1024);
    let mut heads = [
        Scanout::new(0, AllocPolicy::default()),
        Scanout::new(1, AllocPolicy::default()),
    ];
    heads[0]
        .set_mode(&bed.gpu, &mut ids, 1024, 768, BLUE)
        .unwrap();
    heads[1]
        .set_mode(&bed.gpu, &mut ids, 1280, 800, RED)
        .unwrap();
    let backend = bed.backend.lock();
    let a = backend.scanout_image(0).unwrap();
    let b = backend.scanout_image(1).unwrap();
    assert_eq!((a.width, a.height, a.pixel(5, 5)), (1024, 768, Some(BLUE)));
    assert_eq!((b.width, b.height, b.pixel(5, 5)), (1280, 800, Some(RED)));
}

#[test]
fn polled_mode_gives_up_by_counting_stalls_when_the_clock_stands_still() {
    let d = Display::new();
    d.gpu().set_timeout_us(2_000);
    d.bed.backend.lock().hold_completions(true);
    d.bed.platform.clock.freeze(true);
    assert_eq!(
        d.gpu().get_display_info(WaitMode::Polled).unwrap_err(),
        Error::Timeout
    );
    d.bed.platform.clock.freeze(false);
}

#[test]
fn polled_mode_skips_work_when_another_processor_holds_the_queue() {
    let d = Display::new();
    let before = d.bed.backend.lock().count(CommandType::GET_DISPLAY_INFO);
    let result = d.gpu().with_queue(CONTROL_QUEUE, |_| {
        d.gpu().get_display_info(WaitMode::Polled).map(|_| ())
    });
    assert_eq!(result, Err(Error::Busy));
    assert_eq!(
        d.bed.backend.lock().count(CommandType::GET_DISPLAY_INFO),
        before
    );
    // The lock released, the same call goes through.
    assert!(d.gpu().get_display_info(WaitMode::Polled).is_ok());
}

#[test]
fn reallocating_as_one_block_keeps_the_picture_and_frees_the_bands() {
    let mut d = Display::new();
    // 24 MB: two 16 MiB bands under the default policy.
    d.set_mode(3000, 2000, BLUE).unwrap();
    let backing = d.scanout.current_mut().unwrap().backing_mut();
    assert_eq!(backing.entry_count(), 2);
    // Pixels only in guest memory so far: the rebuild must copy them and send them over.
    backing.write_pixel(0, 0, GREEN).unwrap();
    backing.write_pixel(2999, 1999, RED).unwrap();
    let bytes = backing.size_bytes() as usize;
    let dma = d.bed.dma_bytes();
    d.scanout
        .reallocate(&d.bed.gpu, &mut d.ids, &AllocPolicy::contiguous(bytes))
        .unwrap();
    let fb = d.scanout.current().unwrap();
    assert_eq!(fb.backing().entry_count(), 1);
    assert_eq!(fb.backing().entries().next().unwrap().1 as usize, bytes);
    {
        let backend = d.bed.backend.lock();
        let id = backend.scanout_resource(0).unwrap();
        assert_eq!(id, fb.resource_id());
        assert_eq!(backend.resource(id).unwrap().backing_entries, 1);
        let image = backend.scanout_image(0).unwrap();
        assert_eq!(image.pixel(0, 0), Some(GREEN));
        assert_eq!(image.pixel(2999, 1999), Some(RED));
        assert_eq!(image.pixel(1500, 1398), Some(BLUE), "second band copied");
    }
    assert_eq!(d.host_resources(), 1, "the banded resource is gone");
    // The bands (4096 + 1764 pages) are freed; the block takes 5860 pages too.
    assert_eq!(d.bed.dma_bytes(), dma);
}

#[test]
fn a_reallocation_without_the_memory_keeps_the_old_framebuffer() {
    let mut d = Display::new();
    d.set_mode(3000, 2000, BLUE).unwrap();
    let id = d.scanout.current().unwrap().resource_id();
    let bytes = d.scanout.current().unwrap().backing().size_bytes() as usize;
    let dma = d.bed.dma_bytes();
    d.bed.hal.fail_allocations_after(Some(0));
    let err = d
        .scanout
        .reallocate(&d.bed.gpu, &mut d.ids, &AllocPolicy::contiguous(bytes))
        .unwrap_err();
    d.bed.hal.fail_allocations_after(None);
    assert_eq!(err, Error::NoDmaMemory);
    assert_eq!(d.scanout.current().unwrap().resource_id(), id);
    assert_eq!(d.scanout.current().unwrap().backing().entry_count(), 2);
    d.assert_shows(3000, 2000, BLUE);
    assert_eq!(d.host_resources(), 1);
    assert_eq!(d.bed.dma_bytes(), dma);
    // Nothing on screen: nothing to reallocate.
    let mut empty = Display::new();
    assert_eq!(
        empty
            .scanout
            .reallocate(&empty.bed.gpu, &mut empty.ids, &AllocPolicy::default()),
        Err(Error::InvalidArgument)
    );
}

/// Two heads showing 1024x768 BLUE and 1280x800 RED, for the two-phase mode change.
struct TwoHeads {
    bed: Testbed,
    ids: ResourceIdAllocator,
    heads: [Scanout<virtio_gpu_model::GuestMemoryHal>; 2],
    dma: usize,
    hostmem: u64,
}

impl TwoHeads {
    fn new() -> Self {
        let config = GpuConfig {
            num_scanouts: 2,
            displays: vec![
                PreferredDisplay::enabled(1024, 768),
                PreferredDisplay::enabled(1280, 800),
            ],
            ..GpuConfig::default()
        };
        let bed = Testbed::with_config(config);
        let mut ids = ResourceIdAllocator::new(1024);
        let mut heads = [
            Scanout::new(0, AllocPolicy::default()),
            Scanout::new(1, AllocPolicy::default()),
        ];
        heads[0]
            .set_mode(&bed.gpu, &mut ids, 1024, 768, BLUE)
            .unwrap();
        heads[1]
            .set_mode(&bed.gpu, &mut ids, 1280, 800, RED)
            .unwrap();
        let dma = bed.dma_bytes();
        let hostmem = bed.backend.lock().hostmem_used();
        Self {
            bed,
            ids,
            heads,
            dma,
            hostmem,
        }
    }

    fn prepare(&mut self, head: usize, w: u32, h: u32, fill: u32) -> Result<(), Error> {
        self.heads[head].prepare(&self.bed.gpu, &mut self.ids, w, h, fill)
    }

    fn switch(&mut self, head: usize) -> Result<(), Error> {
        self.heads[head].switch_to_prepared(&self.bed.gpu, &mut self.ids)
    }

    /// What scanout `index` shows: size and the color of its corners and middle (None if
    /// they differ).
    fn picture(&self, index: u32) -> (u32, u32, Option<u32>) {
        let backend = self.bed.backend.lock();
        let image = backend
            .scanout_image(index)
            .expect("scanout shows something");
        let (w, h) = (image.width, image.height);
        let first = image.pixel(0, 0);
        let same = [(w - 1, 0), (0, h - 1), (w - 1, h - 1), (w / 2, h / 2)]
            .iter()
            .all(|&(x, y)| image.pixel(x, y) == first);
        (w, h, first.filter(|_| same))
    }

    /// Both heads still show (and record) their first pictures, and the host resources and
    /// guest DMA memory are what they were with them.
    fn assert_unchanged(&self) {
        assert_eq!(self.picture(0), (1024, 768, Some(BLUE)));
        assert_eq!(self.picture(1), (1280, 800, Some(RED)));
        assert_eq!(self.heads[0].mode(), Some((1024, 768)));
        assert_eq!(self.heads[1].mode(), Some((1280, 800)));
        for head in &self.heads {
            assert_eq!(head.prepared_mode(), None);
            assert!(!head.switch_pending());
            assert_eq!(head.retired_count(), 0);
        }
        assert_eq!(self.bed.backend.lock().resource_count(), 2);
        assert_eq!(self.bed.backend.lock().hostmem_used(), self.hostmem);
        assert_eq!(self.bed.dma_bytes(), self.dma);
    }
}

#[test]
fn two_phase_mode_change_shows_each_head_with_its_first_picture() {
    let mut t = TwoHeads::new();
    t.prepare(0, 1920, 1080, GREEN).unwrap();
    t.prepare(1, 800, 600, BLUE).unwrap();
    assert_eq!(t.heads[0].prepared_mode(), Some((1920, 1080)));
    // Prepared, not shown: the host has the new resources, the screens are unchanged.
    assert_eq!(t.bed.backend.lock().resource_count(), 4);
    assert_eq!(t.picture(0), (1024, 768, Some(BLUE)));
    assert_eq!(t.picture(1), (1280, 800, Some(RED)));
    t.switch(0).unwrap();
    t.switch(1).unwrap();
    for head in &mut t.heads {
        head.confirm_switch(&t.bed.gpu, &mut t.ids);
        assert!(!head.switch_pending());
    }
    // Switched, but the new framebuffers have no picture yet: the host still shows (and
    // keeps) the old ones.
    assert_eq!(t.heads[0].mode(), Some((1920, 1080)));
    assert_eq!(t.heads[1].mode(), Some((800, 600)));
    assert_eq!(t.picture(0), (1024, 768, Some(BLUE)));
    assert_eq!(t.picture(1), (1280, 800, Some(RED)));
    assert_eq!(t.bed.backend.lock().resource_count(), 4);
    // The first picture shows each new framebuffer and takes its old one down.
    t.heads[0].reveal(&t.bed.gpu, &mut t.ids).unwrap();
    assert_eq!(t.picture(0), (1920, 1080, Some(GREEN)));
    assert_eq!(t.bed.backend.lock().resource_count(), 3);
    t.heads[1].paint(&t.bed.gpu, &mut t.ids, RED).unwrap();
    assert_eq!(t.picture(1), (800, 600, Some(RED)));
    assert_eq!(t.bed.backend.lock().resource_count(), 2);
}

#[test]
fn a_vidpn_mode_change_sends_the_new_framebuffer_once_with_its_first_picture() {
    let mut t = TwoHeads::new();
    let transfers = |t: &TwoHeads| t.bed.backend.lock().count(CommandType::TRANSFER_TO_HOST_2D);
    let before = transfers(&t);
    t.prepare(0, 1920, 1080, GREEN).unwrap();
    t.switch(0).unwrap();
    t.heads[0].confirm_switch(&t.bed.gpu, &mut t.ids);
    assert_eq!(
        transfers(&t),
        before,
        "the mode change itself sends no pixels"
    );
    t.heads[0].reveal(&t.bed.gpu, &mut t.ids).unwrap();
    assert_eq!(transfers(&t), before + 1);
    let last = *t.bed.backend.lock().transfers().last().unwrap();
    assert_eq!((last.rect.width, last.rect.height), (1920, 1080));
    // Shown: a second reveal does nothing.
    t.heads[0].reveal(&t.bed.gpu, &mut t.ids).unwrap();
    assert_eq!(transfers(&t), before + 1);
    // `set_mode` (start, power-up) still shows its framebuffer at once.
    t.heads[1]
        .set_mode(&t.bed.gpu, &mut t.ids, 640, 480, GREEN)
        .unwrap();
    assert_eq!(t.picture(1), (640, 480, Some(GREEN)));
}

#[test]
fn a_refused_first_picture_keeps_the_old_one_on_screen_until_the_next_one() {
    let mut t = TwoHeads::new();
    t.prepare(0, 1920, 1080, GREEN).unwrap();
    t.switch(0).unwrap();
    t.heads[0].confirm_switch(&t.bed.gpu, &mut t.ids);
    t.bed.backend.lock().fail_next(
        CommandType::SET_SCANOUT,
        ResponseType::ERR_INVALID_PARAMETER,
    );
    let err = t.heads[0].reveal(&t.bed.gpu, &mut t.ids).unwrap_err();
    assert_eq!(
        err,
        Error::DeviceError(ResponseType::ERR_INVALID_PARAMETER.0)
    );
    assert_eq!(t.picture(0), (1024, 768, Some(BLUE)));
    assert_eq!(t.bed.backend.lock().resource_count(), 3);
    t.heads[0].reveal(&t.bed.gpu, &mut t.ids).unwrap();
    assert_eq!(t.picture(0), (1920, 1080, Some(GREEN)));
    assert_eq!(t.bed.backend.lock().resource_count(), 2);
}

#[test]
fn a_failed_second_prepare_leaves_both_heads_as_they_were() {
    // The device refuses the second head's resource.
    let mut t = TwoHeads::new();
    t.prepare(0, 1920, 1080, GREEN).unwrap();
    t.bed.backend.lock().fail_next(
        CommandType::RESOURCE_CREATE_2D,
        ResponseType::ERR_OUT_OF_MEMORY,
    );
    let err = t.prepare(1, 800, 600, BLUE).unwrap_err();
    assert_eq!(err, Error::DeviceError(ResponseType::ERR_OUT_OF_MEMORY.0));
    t.heads[0].discard_prepared(&t.bed.gpu, &mut t.ids);
    t.heads[1].discard_prepared(&t.bed.gpu, &mut t.ids);
    t.assert_unchanged();

    // No DMA memory for the second head's framebuffer.
    let mut t = TwoHeads::new();
    t.prepare(0, 1920, 1080, GREEN).unwrap();
    t.bed.hal.fail_allocations_after(Some(0));
    let err = t.prepare(1, 800, 600, BLUE).unwrap_err();
    t.bed.hal.fail_allocations_after(None);
    assert_eq!(err, Error::NoDmaMemory);
    t.heads[0].discard_prepared(&t.bed.gpu, &mut t.ids);
    t.assert_unchanged();
}

#[test]
fn a_reverted_switch_sends_nothing_and_keeps_the_old_picture() {
    let mut t = TwoHeads::new();
    t.prepare(0, 1920, 1080, GREEN).unwrap();
    t.prepare(1, 800, 600, BLUE).unwrap();
    let commands = t.bed.backend.lock().count(CommandType::SET_SCANOUT);
    t.switch(0).unwrap();
    t.switch(1).unwrap();
    // A later head failed (say): both switches are undone. Neither had shown anything.
    t.heads[1].revert_switch(&t.bed.gpu, &mut t.ids).unwrap();
    t.heads[0].revert_switch(&t.bed.gpu, &mut t.ids).unwrap();
    assert_eq!(
        t.bed.backend.lock().count(CommandType::SET_SCANOUT),
        commands
    );
    t.assert_unchanged();
}

#[test]
fn a_failed_switch_off_switches_the_first_head_back() {
    let mut t = TwoHeads::new();
    t.prepare(0, 1920, 1080, GREEN).unwrap();
    t.switch(0).unwrap();
    t.bed.backend.lock().fail_next(
        CommandType::SET_SCANOUT,
        ResponseType::ERR_INVALID_PARAMETER,
    );
    assert!(t.heads[1].switch_off(&t.bed.gpu).is_err());
    assert!(!t.heads[1].switch_pending());
    t.heads[0].revert_switch(&t.bed.gpu, &mut t.ids).unwrap();
    t.assert_unchanged();

    // A switch-off that worked is reverted too: the old picture comes back.
    t.heads[1].switch_off(&t.bed.gpu).unwrap();
    assert!(t.bed.backend.lock().scanout_image(1).is_none());
    t.heads[1].revert_switch(&t.bed.gpu, &mut t.ids).unwrap();
    t.assert_unchanged();
}

#[test]
fn a_pending_switch_blocks_a_new_mode_change() {
    let mut t = TwoHeads::new();
    t.prepare(0, 1920, 1080, GREEN).unwrap();
    assert_eq!(t.switch(1), Err(Error::InvalidArgument), "nothing prepared");
    t.switch(0).unwrap();
    assert_eq!(
        t.prepare(0, 800, 600, RED),
        Err(Error::InvalidArgument),
        "switch pending"
    );
    t.heads[0].revert_switch(&t.bed.gpu, &mut t.ids).unwrap();
    // Preparing twice replaces the first framebuffer.
    t.prepare(0, 800, 600, RED).unwrap();
    t.prepare(0, 640, 480, RED).unwrap();
    assert_eq!(t.bed.backend.lock().resource_count(), 3);
    t.heads[0].discard_prepared(&t.bed.gpu, &mut t.ids);
    t.assert_unchanged();
}

/// Counts the calling thread's heap allocations, so a test can check that a path allocates
/// nothing (tests run on their own threads).
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Set while the device model (not the code under test) runs on this thread.
    static IN_MODEL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// thread-local Cell with a const initializer, which never allocates.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if !IN_MODEL.try_with(std::cell::Cell::get).unwrap_or(true) {
            let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations() -> usize {
    ALLOCATIONS.with(std::cell::Cell::get)
}

/// The testbed's device, with its allocations left out of the count.
struct UncountedDevice(virtio_gpu_model::testbed::SharedBackend);

impl virtio_gpu_model::pci::QueueHandler for UncountedDevice {
    fn queue_notify(
        &mut self,
        q: u16,
        queue: &mut virtio_queue::Queue,
        mem: &vm_memory::GuestMemoryMmap,
    ) {
        IN_MODEL.with(|m| m.set(true));
        self.0.lock().consume_queue(q, queue, mem);
        IN_MODEL.with(|m| m.set(false));
    }

    fn reset(&mut self) {
        self.0.lock().reset();
    }
}

#[test]
fn reaping_a_framebuffer_that_is_still_stuck_allocates_nothing() {
    let mut d = Display::new();
    d.bed
        .pci
        .set_handler(Box::new(UncountedDevice(d.bed.backend.clone())));
    d.set_mode(1024, 768, BLUE).unwrap();
    d.gpu().set_timeout_us(50_000);
    d.bed.backend.lock().hold_completions(true);
    assert_eq!(d.set_mode(1920, 1080, RED), Err(Error::Timeout));
    assert_eq!(d.scanout.retired_count(), 1);
    // The device still does not answer: the framebuffer stays retired, and keeping it needs
    // no allocation (this runs on error paths, where a failed one would abort).
    let before = allocations();
    assert_eq!(d.scanout.reap_retired(&d.bed.gpu, &mut d.ids), 1);
    assert_eq!(allocations(), before);

    d.bed.backend.lock().hold_completions(false);
    d.bed.release_held(CONTROL_QUEUE);
    d.gpu().process_completions();
    assert_eq!(d.scanout.reap_retired(&d.bed.gpu, &mut d.ids), 0);
    d.assert_shows(1024, 768, BLUE);
}

/// A finished request keeps its slot until its waiter takes the answer, even when the ring
/// gives the request's descriptor id to a new request first (a waiter on another processor
/// may be slow to look). Before slots were separated from descriptor ids, the new request
/// overwrote the finished one and its waiter got InvalidArgument (seen under the concurrency
/// stress run as a failed pointer shape).
#[test]
fn a_finished_request_keeps_its_answer_when_its_descriptor_is_reused() {
    use viogpu_common::command::Allocation;
    use viogpu_common::gpu::Notify;
    use viogpu_common::protocol::{CtrlHeader, RespDisplayInfo};
    let bed = Testbed::new();
    let hdr = CtrlHeader::command(CommandType::GET_DISPLAY_INFO);
    let resp_len = core::mem::size_of::<RespDisplayInfo>();
    let submit = |bed: &Testbed| {
        let ticket = bed.gpu.with_queue(CONTROL_QUEUE, |cq| {
            let t = cq
                .submit(&[hdr.as_bytes()], resp_len, Allocation::Allowed)
                .unwrap();
            cq.publish();
            t
        });
        bed.gpu.notifier().notify(CONTROL_QUEUE);
        ticket
    };
    let first = submit(&bed);
    // The device answered; the completion path ran; nobody took the answer yet.
    bed.gpu.process_completions();
    // Enough new requests that the ring hands out the first one's descriptor again.
    let later: Vec<_> = (0..8).map(|_| submit(&bed)).collect();
    let mut answer = <RespDisplayInfo as zerocopy::FromZeros>::new_zeroed();
    let written = bed.gpu.with_queue(CONTROL_QUEUE, |cq| {
        cq.process_used();
        cq.take_response(first, answer.as_mut_bytes())
    });
    assert_eq!(
        written,
        Some(Ok(resp_len)),
        "the first request's own answer"
    );
    assert_eq!(
        u32::from_le_bytes(answer.as_bytes()[..4].try_into().unwrap()),
        ResponseType::OK_DISPLAY_INFO.0
    );
    for t in later {
        let mut a = <RespDisplayInfo as zerocopy::FromZeros>::new_zeroed();
        let got = bed
            .gpu
            .with_queue(CONTROL_QUEUE, |cq| cq.take_response(t, a.as_mut_bytes()));
        assert_eq!(got, Some(Ok(resp_len)));
    }
}

/// The command queue's ownership rules at their edges (`command::CommandQueue`): requests it
/// refuses post nothing; a ticket gives its answer once; an abandoned request is freed when
/// the device gives it back (late, with an error answer counted) or at a device reset, never
/// before; a waiter's request that a reset took answers `DeviceNeedsReset`; a used entry for a
/// request already finished is a ring fault that wedges the queue.
#[test]
fn the_command_queue_keeps_every_buffer_until_the_device_gives_it_back_or_is_reset() {
    use viogpu_common::command::{Allocation, POOL_BUFFER_SIZE};
    use viogpu_common::gpu::Notify;
    use viogpu_common::protocol::{CtrlHeader, RespDisplayInfo};
    let bed = Testbed::new();
    let hdr = CtrlHeader::command(CommandType::GET_DISPLAY_INFO);
    let resp_len = core::mem::size_of::<RespDisplayInfo>();
    let submit = |bed: &Testbed, parts: &[&[u8]], len: usize, allocation: Allocation| {
        let ticket = bed.gpu.with_queue(CONTROL_QUEUE, |cq| {
            let t = cq.submit(parts, len, allocation);
            cq.publish();
            t
        });
        bed.gpu.notifier().notify(CONTROL_QUEUE);
        ticket
    };
    let in_flight = |bed: &Testbed| bed.gpu.with_queue(CONTROL_QUEUE, |cq| cq.in_flight());
    let take = |bed: &Testbed, t| {
        let mut a = <RespDisplayInfo as zerocopy::FromZeros>::new_zeroed();
        bed.gpu
            .with_queue(CONTROL_QUEUE, |cq| cq.take_response(t, a.as_mut_bytes()))
    };

    // Refused requests post nothing.
    let big = vec![0u8; POOL_BUFFER_SIZE];
    for (parts, len, allocation, error) in [
        (
            &[][..],
            resp_len,
            Allocation::Allowed,
            Error::InvalidArgument,
        ),
        (
            &[hdr.as_bytes()][..],
            0,
            Allocation::Allowed,
            Error::InvalidArgument,
        ),
        // Larger than a pool buffer, where allocating is not allowed (bugcheck paths).
        (
            &[&big[..]][..],
            resp_len,
            Allocation::Forbidden,
            Error::NoMemory,
        ),
    ] {
        assert_eq!(submit(&bed, parts, len, allocation).unwrap_err(), error);
        assert_eq!(in_flight(&bed), 0);
    }

    // An answer is taken once; the ticket is stale afterwards.
    let t = submit(&bed, &[hdr.as_bytes()], resp_len, Allocation::Allowed).unwrap();
    bed.gpu.with_queue(CONTROL_QUEUE, |cq| cq.process_used());
    assert_eq!(take(&bed, t), Some(Ok(resp_len)));
    assert_eq!(take(&bed, t), Some(Err(Error::InvalidArgument)));

    // A request the device holds: no answer yet, and abandoning it keeps its buffer.
    bed.backend.lock().hold_completions(true);
    let waiting = submit(&bed, &[hdr.as_bytes()], resp_len, Allocation::Allowed).unwrap();
    assert_eq!(take(&bed, waiting), None);
    let abandoned = submit(&bed, &[hdr.as_bytes()], resp_len, Allocation::Allowed).unwrap();
    bed.gpu
        .with_queue(CONTROL_QUEUE, |cq| cq.abandon(abandoned));
    assert_eq!(bed.gpu.with_queue(CONTROL_QUEUE, |cq| cq.abandoned()), 1);
    assert_eq!(in_flight(&bed), 2, "both still with the device");
    assert_eq!(bed.backend.lock().held_count(), 2);

    // The device answers late, the abandoned one with an error: reclaimed, error counted.
    bed.backend
        .lock()
        .corrupt_next_response(Corruption::ResponseType(0x1200));
    bed.backend
        .lock()
        .corrupt_next_response(Corruption::ResponseType(ResponseType::ERR_UNSPEC.0));
    bed.backend.lock().hold_completions(false);
    bed.release_held(CONTROL_QUEUE);
    let stats = bed.gpu.with_queue(CONTROL_QUEUE, |cq| cq.process_used());
    assert_eq!((stats.completed, stats.reclaimed), (1, 1));
    assert_eq!(stats.error_responses, 1);
    assert_eq!(bed.gpu.with_queue(CONTROL_QUEUE, |cq| cq.abandoned()), 0);
    assert_eq!(take(&bed, waiting), Some(Ok(resp_len)));

    // Across a device reset: held requests come back, a waiter's with DeviceNeedsReset, an
    // abandoned one freed.
    bed.backend.lock().hold_completions(true);
    let held = submit(&bed, &[hdr.as_bytes()], resp_len, Allocation::Allowed).unwrap();
    let given_up = submit(&bed, &[hdr.as_bytes()], resp_len, Allocation::Allowed).unwrap();
    bed.gpu.with_queue(CONTROL_QUEUE, |cq| cq.abandon(given_up));
    bed.transport.lock().unwrap().reset().unwrap();
    assert_eq!(bed.backend.lock().held_count(), 0, "the device let go");
    bed.gpu
        .with_queue(CONTROL_QUEUE, |cq| cq.reset_after_device_reset());
    assert_eq!(take(&bed, held), Some(Err(Error::DeviceNeedsReset)));
    assert_eq!(bed.gpu.with_queue(CONTROL_QUEUE, |cq| cq.abandoned()), 0);
    assert_eq!(in_flight(&bed), 0);

    // On a fresh device: a used entry for a request already finished (answered, not taken
    // yet) is a ring fault, the queue is wedged and refuses new requests until a reset.
    let bed = Testbed::new();
    let done = submit(&bed, &[hdr.as_bytes()], resp_len, Allocation::Allowed).unwrap();
    bed.gpu.with_queue(CONTROL_QUEUE, |cq| cq.process_used());
    bed.backend
        .lock()
        .corrupt_next_response(Corruption::DuplicateUsed);
    submit(&bed, &[hdr.as_bytes()], resp_len, Allocation::Allowed).unwrap();
    let stats = bed.gpu.with_queue(CONTROL_QUEUE, |cq| cq.process_used());
    assert!(stats.device_faults >= 1, "{stats:?}");
    assert!(bed
        .gpu
        .with_queue(CONTROL_QUEUE, |cq| cq.ring_fault().is_some()));
    assert_eq!(
        submit(&bed, &[hdr.as_bytes()], resp_len, Allocation::Allowed).unwrap_err(),
        Error::BadUsedIndex
    );
    assert_eq!(
        take(&bed, done),
        Some(Ok(resp_len)),
        "its answer is still its own"
    );
}

/// More of the command queue's edges: a request larger than a pool buffer gets a dedicated
/// DMA buffer, freed with its answer; abandoning a finished request frees it at once, and its
/// ticket is stale afterwards (taking or abandoning it again changes nothing); an abandoned
/// request the device completes with a length too short for a response header counts as an
/// error answer; a used entry naming a descriptor no request owns is a ring fault.
#[test]
fn the_command_queue_frees_dedicated_and_abandoned_buffers_and_flags_unknown_ids() {
    use viogpu_common::command::{Allocation, POOL_BUFFER_SIZE};
    use viogpu_common::gpu::Notify;
    use viogpu_common::protocol::CtrlHeader;
    let bed = Testbed::new();
    let hdr = CtrlHeader::command(CommandType::GET_DISPLAY_INFO);
    let submit = |bed: &Testbed, parts: &[&[u8]]| {
        let ticket = bed.gpu.with_queue(CONTROL_QUEUE, |cq| {
            let t = cq.submit(parts, 24, Allocation::Allowed).unwrap();
            cq.publish();
            t
        });
        bed.gpu.notifier().notify(CONTROL_QUEUE);
        ticket
    };
    let dma_idle = bed.dma_bytes();

    // Larger than a pool buffer: a dedicated buffer while in flight, freed with the answer.
    let mut big = vec![0u8; POOL_BUFFER_SIZE];
    big[..hdr.as_bytes().len()].copy_from_slice(hdr.as_bytes());
    bed.backend.lock().hold_completions(true);
    let t = submit(&bed, &[&big[..]]);
    let dedicated = bed.gpu.with_queue(CONTROL_QUEUE, |cq| cq.dedicated_bytes());
    assert!(dedicated > POOL_BUFFER_SIZE, "{dedicated}");
    assert!(bed.dma_bytes() > dma_idle);
    bed.backend.lock().hold_completions(false);
    bed.release_held(CONTROL_QUEUE);
    bed.gpu.with_queue(CONTROL_QUEUE, |cq| {
        cq.process_used();
        let mut out = [0u8; 24];
        assert!(matches!(cq.take_response(t, &mut out), Some(Ok(_))));
        assert_eq!(cq.dedicated_bytes(), 0);
    });
    assert_eq!(bed.dma_bytes(), dma_idle);

    // Abandoning a finished request frees it now; the ticket is stale afterwards.
    let t = submit(&bed, &[hdr.as_bytes()]);
    bed.gpu.with_queue(CONTROL_QUEUE, |cq| {
        cq.process_used();
        cq.abandon(t);
        assert_eq!((cq.in_flight(), cq.abandoned()), (0, 0));
        cq.abandon(t);
        let mut out = [0u8; 24];
        assert_eq!(
            cq.take_response(t, &mut out),
            Some(Err(Error::InvalidArgument))
        );
    });

    // An abandoned request's ticket gives nothing; its late answer, too short for a header,
    // counts as an error answer when the buffer is reclaimed.
    bed.backend.lock().hold_completions(true);
    let t = submit(&bed, &[hdr.as_bytes()]);
    bed.gpu.with_queue(CONTROL_QUEUE, |cq| {
        cq.abandon(t);
        let mut out = [0u8; 24];
        assert_eq!(
            cq.take_response(t, &mut out),
            Some(Err(Error::InvalidArgument))
        );
    });
    bed.backend
        .lock()
        .corrupt_next_response(Corruption::UsedLength(2));
    bed.backend.lock().hold_completions(false);
    bed.release_held(CONTROL_QUEUE);
    bed.gpu.with_queue(CONTROL_QUEUE, |cq| {
        let stats = cq.process_used();
        assert_eq!(
            (stats.reclaimed, stats.error_responses),
            (1, 1),
            "{stats:?}"
        );
    });

    // A used entry naming a descriptor no request owns: a ring fault; the real request
    // stays with the device (its waiter would time out).
    bed.backend
        .lock()
        .corrupt_next_response(Corruption::WrongUsedId(
            virtio_gpu_model::testbed::CONTROL_QUEUE_SIZE - 1,
        ));
    let _lost = submit(&bed, &[hdr.as_bytes()]);
    bed.gpu.with_queue(CONTROL_QUEUE, |cq| {
        let stats = cq.process_used();
        assert_eq!(stats.device_faults, 1, "{stats:?}");
        assert!(matches!(cq.ring_fault(), Some(Error::BadUsedId { .. })));
        assert_eq!(cq.in_flight(), 1);
    });
}
