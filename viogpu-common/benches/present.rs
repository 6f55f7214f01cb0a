//! Benchmark of the present path's pixel copies: a full 1920x1080 frame and 100 scattered
//! 64x64 dirty rects, unrotated and rotated 90 degrees, each next to a plain memcpy of the same
//! number of bytes measured in the same run.
//!
//! Every case copies as the driver does, through `present::copy_into_framebuffer` into a
//! framebuffer backing allocated like the driver's (on the heap here), from a page-aligned
//! source as the OS's surfaces are, and the rotated cases with AVX2 where the processor has
//! it (`Simd::avx2_state_saved`). Beside them, the `_sse2` cases run the baseline SSE2
//! transpose, and the `_os_order` cases copy the scattered rects one by one in the order the
//! OS gave them (`present::copy_rect`, without the driver's validation and its top-down
//! order).
//!
//! A second baseline, `row_memcpy_baseline`, copies the same rows as the unrotated blit with bare
//! `copy_from_slice` calls: for scattered rects it shows how much of the gap to one contiguous
//! memcpy is the memory layout rather than the blit.
//!
//! Criterion reports each case as throughput. `report_ratios` then times the same cases with
//! `Instant`, alternating blit and memcpy rounds and keeping the best round of each (the
//! machine is shared, and the best round is the least disturbed one), and prints one line per
//! case with GB/s and the ratio to memcpy: the figure the README quotes.

#![allow(clippy::unwrap_used)]

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use viogpu_common::blit::{avx2_usable, BlitMode, Rect, Rotation, Simd, Surface};
use viogpu_common::framebuffer::{AllocPolicy, FramebufferBacking};
use viogpu_common::hal::{DmaRegion, Hal, PAGE_SIZE};
use viogpu_common::present::{copy_into_framebuffer, copy_rect, dirty_copy_order};

const W: u32 = 1920;
const H: u32 = 1080;
const RECTS: usize = 100;
const RECT_SIZE: i32 = 64;

/// The 100 scattered dirty rects: fixed pseudo-random positions inside the frame.
fn scattered_rects() -> Vec<Rect> {
    let mut state: u32 = 0x2545_F491;
    let mut next = |limit: i32| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % limit as u32) as i32
    };
    (0..RECTS)
        .map(|_| {
            let x = next(W as i32 - RECT_SIZE);
            let y = next(H as i32 - RECT_SIZE);
            Rect::new(x, y, x + RECT_SIZE, y + RECT_SIZE)
        })
        .collect()
}

/// Page-aligned zeroed heap memory as the framebuffer's "DMA" memory: the driver's backing
/// layout without a device.
#[derive(Clone)]
struct HeapHal;

fn page_layout(len: usize) -> Option<Layout> {
    Layout::from_size_align(len.div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE, PAGE_SIZE).ok()
}

// SAFETY: each region is a fresh zeroed allocation of its own, page-aligned and rounded up to
// whole pages, and no device ever sees the made-up bus address.
unsafe impl Hal for HeapHal {
    fn dma_alloc(&self, len: usize) -> Option<DmaRegion> {
        let layout = page_layout(len)?;
        // SAFETY: the layout has a non-zero size.
        let virt = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        Some(DmaRegion {
            virt,
            phys: virt.as_ptr() as u64,
            len: layout.size(),
        })
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        // SAFETY: allocated by `dma_alloc` with this layout (its length is already whole
        // pages), and freed once (Hal contract).
        unsafe { dealloc(region.virt.as_ptr(), page_layout(region.len).unwrap()) };
    }
}

/// How a case copies its rects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    /// The driver's copy: `copy_into_framebuffer`, dirty rects top down.
    Driver,
    /// `copy_rect` per rect, in the order given.
    OsOrder,
}

/// One benchmark case: a set of rects copied with one rotation.
struct Case {
    name: &'static str,
    mode: BlitMode,
    path: Path,
    rects: Vec<Rect>,
}

impl Case {
    fn bytes(&self) -> usize {
        self.rects
            .iter()
            .map(|r| (r.width() * r.height() * 4) as usize)
            .sum()
    }
}

fn cases() -> Vec<Case> {
    let full = || vec![Rect::new(0, 0, W as i32, H as i32)];
    let mode = |rotation, simd| BlitMode { rotation, simd };
    // SAFETY: the bench is a user-mode process, which has no YMM state to save.
    let avx2 = unsafe { Simd::avx2_state_saved() };
    let (identity, rotated, rotated_sse2) = (
        mode(Rotation::Identity, avx2),
        mode(Rotation::Rotate90, avx2),
        mode(Rotation::Rotate90, Simd::BASELINE),
    );
    let case = |name, mode, path, rects| Case {
        name,
        mode,
        path,
        rects,
    };
    vec![
        case("full_frame/identity", identity, Path::Driver, full()),
        case("full_frame/rotate90", rotated, Path::Driver, full()),
        case(
            "full_frame/rotate90_sse2",
            rotated_sse2,
            Path::Driver,
            full(),
        ),
        case(
            "scattered_100x64/identity",
            identity,
            Path::Driver,
            scattered_rects(),
        ),
        case(
            "scattered_100x64/identity_os_order",
            identity,
            Path::OsOrder,
            scattered_rects(),
        ),
        case(
            "scattered_100x64/rotate90",
            rotated,
            Path::Driver,
            scattered_rects(),
        ),
        case(
            "scattered_100x64/rotate90_os_order",
            rotated,
            Path::OsOrder,
            scattered_rects(),
        ),
        case(
            "scattered_100x64/rotate90_sse2",
            rotated_sse2,
            Path::Driver,
            scattered_rects(),
        ),
    ]
}

/// `len` bytes starting on a page boundary, as the OS's surfaces and the driver's framebuffer
/// do. (A plain `Vec` of this size starts 16 bytes into a page, and a copy between buffers at
/// different offsets within their lines runs slower, so every buffer of the bench is aligned
/// alike.)
struct PageAligned {
    storage: Vec<u8>,
    offset: usize,
    len: usize,
}

impl PageAligned {
    fn new(len: usize, fill: impl Fn(usize) -> u8) -> Self {
        let mut storage = vec![0; len + PAGE_SIZE];
        let offset = storage.as_ptr().align_offset(PAGE_SIZE);
        for (i, b) in storage[offset..offset + len].iter_mut().enumerate() {
            *b = fill(i);
        }
        PageAligned {
            storage,
            offset,
            len,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.storage[self.offset..self.offset + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.offset..self.offset + self.len]
    }
}

/// Source desktop image, framebuffers for both orientations, and the memcpy targets.
struct Buffers {
    src: PageAligned,
    fb: FramebufferBacking<HeapHal>,
    fb_rotated: FramebufferBacking<HeapHal>,
    row_dst: PageAligned,
    copy_dst: PageAligned,
}

impl Buffers {
    fn new() -> Self {
        let len = (W * H * 4) as usize;
        let backing =
            |(w, h)| FramebufferBacking::allocate(&HeapHal, w, h, &AllocPolicy::default()).unwrap();
        Buffers {
            src: PageAligned::new(len, |i| (i * 7) as u8),
            fb: backing((W, H)),
            fb_rotated: backing((H, W)),
            row_dst: PageAligned::new(len, |_| 0),
            copy_dst: PageAligned::new(len, |_| 0),
        }
    }

    fn blit(&mut self, case: &Case) {
        let src = Surface::new(self.src.bytes(), W, H, W * 4).unwrap();
        let fb = if case.mode.rotation.swaps_axes() {
            &mut self.fb_rotated
        } else {
            &mut self.fb
        };
        match case.path {
            Path::Driver => {
                black_box(copy_into_framebuffer(fb, &src, &[], &case.rects, case.mode).unwrap());
            }
            Path::OsOrder => {
                for rect in &case.rects {
                    black_box(copy_rect(fb, &src, rect, case.mode).unwrap());
                }
            }
        }
    }

    /// The same rows as an unrotated copy of `case`, in the same rect order, each copied with
    /// a bare `copy_from_slice`: no surface, no validation. The floor for scattered rects,
    /// whose rows are spread over the whole frame while `memcpy` reads one contiguous block.
    fn row_memcpy(&mut self, case: &Case) {
        let pitch = (W * 4) as usize;
        let mut order = Vec::new();
        match case.path {
            Path::Driver => dirty_copy_order(&case.rects, &mut order).unwrap(),
            Path::OsOrder => order.extend(0..case.rects.len() as u16),
        }
        let (src, dst) = (self.src.bytes(), self.row_dst.bytes_mut());
        for r in order.iter().map(|&i| &case.rects[usize::from(i)]) {
            let (x, w) = (r.left as usize * 4, r.width() as usize * 4);
            for y in r.top as usize..r.bottom as usize {
                let o = y * pitch + x;
                dst[o..o + w].copy_from_slice(&src[o..o + w]);
            }
        }
        black_box(dst);
    }

    fn memcpy(&mut self, bytes: usize) {
        let (src, dst) = (self.src.bytes(), self.copy_dst.bytes_mut());
        dst[..bytes].copy_from_slice(black_box(&src[..bytes]));
        black_box(dst);
    }
}

fn criterion_groups(c: &mut Criterion, buffers: &mut Buffers) {
    for case in cases() {
        let bytes = case.bytes();
        let mut group = c.benchmark_group(case.name);
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function("blit", |b| b.iter(|| buffers.blit(&case)));
        group.bench_function("memcpy_baseline", |b| b.iter(|| buffers.memcpy(bytes)));
        group.bench_function("row_memcpy_baseline", |b| {
            b.iter(|| buffers.row_memcpy(&case))
        });
        group.finish();
    }
}

/// Best time per iteration of `f` over `rounds` rounds of `iters` iterations.
fn best_round(rounds: u32, iters: u32, mut f: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed() / iters
        })
        .min()
        .unwrap_or_default()
}

fn gbps(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64() / 1e9
}

/// Rounds of each kind per case in `report_ratios`. The machines are shared: with 10 rounds the
/// best one was often still disturbed and the rotated ratios moved by 0.1 from run to run.
const ROUNDS: usize = 30;

fn report_ratios(buffers: &mut Buffers) {
    println!(
        "present ratio: rotated cases use {}",
        if avx2_usable() {
            "AVX2 (the _sse2 cases: SSE2)"
        } else {
            "SSE2: this processor or OS has no AVX2 (the _sse2 cases are the same code)"
        }
    );
    for case in cases() {
        let bytes = case.bytes();
        let iters = (200_000_000 / bytes).clamp(5, 300) as u32;
        let mut blit = Duration::MAX;
        let mut copy = Duration::MAX;
        let mut rows = Duration::MAX;
        let mut paired = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let b = best_round(1, iters, || buffers.blit(&case));
            let c = best_round(1, iters, || buffers.memcpy(bytes));
            rows = rows.min(best_round(1, iters, || buffers.row_memcpy(&case)));
            blit = blit.min(b);
            copy = copy.min(c);
            paired.push(c.as_secs_f64() / b.as_secs_f64());
        }
        paired.sort_by(f64::total_cmp);
        println!(
            "present ratio: {:<35} blit {:6.2} GB/s, memcpy {:6.2} GB/s, ratio {:.2}, \
             paired {:.2} (same rows memcpy'd {:6.2} GB/s, ratio {:.2})",
            case.name,
            gbps(bytes, blit),
            gbps(bytes, copy),
            copy.as_secs_f64() / blit.as_secs_f64(),
            paired[ROUNDS / 2],
            gbps(bytes, rows),
            rows.as_secs_f64() / blit.as_secs_f64(),
        );
    }
}

fn main() {
    let mut buffers = Buffers::new();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    criterion_groups(&mut c, &mut buffers);
    c.final_summary();
    report_ratios(&mut buffers);
}
