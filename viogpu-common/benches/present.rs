//! Benchmark of the present path's pixel copies: a full 1920x1080 frame and 100 scattered
//! 64x64 dirty rects, unrotated and rotated 90 degrees, each next to a plain memcpy of the same
//! number of bytes measured in the same run.
//!
//! The rotated cases run as the driver runs them, with AVX2 where the processor has it
//! (`Simd::Avx2`); the `_sse2` cases run the baseline SSE2 transpose beside them.
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

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use viogpu_common::blit::{
    avx2_usable, blit_rect, BlitMode, Rect, Rotation, Simd, Surface, SurfaceMut,
};

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

/// One benchmark case: a set of rects blitted with one rotation.
struct Case {
    name: &'static str,
    mode: BlitMode,
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
    let full = vec![Rect::new(0, 0, W as i32, H as i32)];
    let mode = |rotation, simd| BlitMode { rotation, simd };
    let (identity, rotated, rotated_sse2) = (
        mode(Rotation::Identity, Simd::Avx2),
        mode(Rotation::Rotate90, Simd::Avx2),
        mode(Rotation::Rotate90, Simd::Baseline),
    );
    vec![
        Case {
            name: "full_frame/identity",
            mode: identity,
            rects: full.clone(),
        },
        Case {
            name: "full_frame/rotate90",
            mode: rotated,
            rects: full.clone(),
        },
        Case {
            name: "full_frame/rotate90_sse2",
            mode: rotated_sse2,
            rects: full,
        },
        Case {
            name: "scattered_100x64/identity",
            mode: identity,
            rects: scattered_rects(),
        },
        Case {
            name: "scattered_100x64/rotate90",
            mode: rotated,
            rects: scattered_rects(),
        },
        Case {
            name: "scattered_100x64/rotate90_sse2",
            mode: rotated_sse2,
            rects: scattered_rects(),
        },
    ]
}

/// Source desktop image and framebuffers for both orientations.
struct Buffers {
    src: Vec<u8>,
    fb: Vec<u8>,
    copy_dst: Vec<u8>,
}

impl Buffers {
    fn new() -> Self {
        let len = (W * H * 4) as usize;
        Buffers {
            src: (0..len).map(|i| (i * 7) as u8).collect(),
            fb: vec![0; len],
            copy_dst: vec![0; len],
        }
    }

    fn blit(&mut self, case: &Case) {
        let src = Surface::new(&self.src, W, H, W * 4).unwrap();
        let (fw, fh) = case.mode.rotation.framebuffer_size(W, H);
        let mut dst = SurfaceMut::new(&mut self.fb, fw, fh, fw * 4).unwrap();
        for rect in &case.rects {
            black_box(blit_rect(&mut dst, &src, rect, case.mode).unwrap());
        }
    }

    /// The same rows as an unrotated blit of `case`, each copied with a bare
    /// `copy_from_slice`: no surface, no validation. The floor for scattered rects, whose rows
    /// are spread over the whole frame while `memcpy` reads one contiguous block.
    fn row_memcpy(&mut self, case: &Case) {
        let pitch = (W * 4) as usize;
        for r in &case.rects {
            let (x, w) = (r.left as usize * 4, r.width() as usize * 4);
            for y in r.top as usize..r.bottom as usize {
                let o = y * pitch + x;
                self.fb[o..o + w].copy_from_slice(&self.src[o..o + w]);
            }
        }
        black_box(&mut self.fb);
    }

    fn memcpy(&mut self, bytes: usize) {
        self.copy_dst[..bytes].copy_from_slice(black_box(&self.src[..bytes]));
        black_box(&mut self.copy_dst);
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
            "present ratio: {:<31} blit {:6.2} GB/s, memcpy {:6.2} GB/s, ratio {:.2}, \
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
