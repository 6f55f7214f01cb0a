//! Which parts of the framebuffer to send to the host after one present: the list of
//! `TRANSFER_TO_HOST_2D` (+ `RESOURCE_FLUSH`) commands for a set of dirty rects.
//!
//! Input rects are in framebuffer coordinates (already rotated, as [`crate::blit::blit_rect`]
//! returns them). Each output [`Transfer`] is one rectangle plus its byte offset in the
//! resource's backing store (`y * pitch + x * 4`, what `virtio_gpu_transfer_to_host_2d.offset`
//! carries). The plan sends only dirty regions, covers every dirty pixel inside the
//! framebuffer, never reaches outside it, and never costs more bytes than the bounding box of
//! all dirty rects.
//!
//! # Cost model
//!
//! A transfer of `w` x `h` pixels costs `w * h * 4` bytes of host copying plus a fixed
//! [`PER_TRANSFER_OVERHEAD_BYTES`]: the guest writes and the device reads two commands
//! (`TRANSFER_TO_HOST_2D` 56 bytes + `RESOURCE_FLUSH` 48 bytes) and two 24-byte responses, and
//! the host spends a fixed time per command (descriptor walk, request dispatch, display update
//! call), about a microsecond in QEMU, which at a few GB/s of copy throughput is worth a few KB.
//! Two rectangles are merged into their bounding box when that box costs less than the two
//! transfers it replaces: `bytes(box) < bytes(a) + bytes(b) + PER_TRANSFER_OVERHEAD_BYTES`.
//!
//! # Bounded output
//!
//! A present produces at most `max_transfers` transfers ([`DEFAULT_MAX_TRANSFERS`] via [`plan`]),
//! so one present's commands fit the control queue in one batch. Past that count the cheapest
//! pair (least added bytes) is merged, repeatedly; merging only ever grows coverage, so no
//! dirty pixel is dropped. Finally, if the transfers' total exceeds the bounding box of all of
//! them (heavily overlapping input), the plan becomes that single box.

use alloc::vec::Vec;

use crate::blit::Rect;
use crate::error::{Error, Result};

/// Bytes-equivalent fixed cost of one transfer: two commands and two responses on the ring
/// (56 + 48 + 24 + 24 bytes) plus the host's per-command work, valued at 4 KiB of copying.
pub const PER_TRANSFER_OVERHEAD_BYTES: u64 = 56 + 48 + 24 + 24 + 4096;

/// Default bound on the transfers of one present: each takes two commands (transfer and
/// flush), so 24 transfers are 48 commands, which fit a 64-entry control queue with room left
/// for the cursor update and a command in flight from elsewhere.
pub const DEFAULT_MAX_TRANSFERS: usize = 24;

/// Above this many rects, consecutive rects (sorted by position) are first folded together in
/// groups, so the pairwise merging below works on at most this many and stays cheap
/// (its cost grows with the cube of the count).
const PAIRWISE_LIMIT: usize = 64;

const BYTES_PER_PIXEL: u64 = 4;

/// One host transfer: a rectangle of the framebuffer and its offset in the backing store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// First column.
    pub x: u32,
    /// First row.
    pub y: u32,
    /// Width in pixels (never 0).
    pub width: u32,
    /// Height in pixels (never 0).
    pub height: u32,
    /// Byte offset of pixel `(x, y)` in the backing store: `y * pitch + x * 4`.
    pub offset: u64,
}

impl Transfer {
    /// Bytes of pixel data the host copies for this transfer.
    pub const fn bytes(&self) -> u64 {
        self.width as u64 * self.height as u64 * BYTES_PER_PIXEL
    }
}

/// A non-empty rectangle clipped to the framebuffer, exclusive right/bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Area {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

impl Area {
    fn clip(rect: &Rect, fb_width: u32, fb_height: u32) -> Option<Area> {
        let clamp = |v: i32, limit: u32| u32::try_from(v.max(0)).map_or(0, |v| v.min(limit));
        let area = Area {
            x0: clamp(rect.left, fb_width),
            y0: clamp(rect.top, fb_height),
            x1: clamp(rect.right, fb_width),
            y1: clamp(rect.bottom, fb_height),
        };
        (area.x0 < area.x1 && area.y0 < area.y1).then_some(area)
    }

    fn bytes(&self) -> u64 {
        u64::from(self.x1 - self.x0) * u64::from(self.y1 - self.y0) * BYTES_PER_PIXEL
    }

    fn union(&self, other: &Area) -> Area {
        Area {
            x0: self.x0.min(other.x0),
            y0: self.y0.min(other.y0),
            x1: self.x1.max(other.x1),
            y1: self.y1.max(other.y1),
        }
    }

    /// Bytes that merging `self` and `other` adds (negative: merging saves that many), with
    /// the overhead of the transfer it removes credited.
    fn merge_cost(&self, other: &Area) -> i128 {
        i128::from(self.union(other).bytes())
            - i128::from(self.bytes())
            - i128::from(other.bytes())
            - i128::from(PER_TRANSFER_OVERHEAD_BYTES)
    }
}

/// [`plan_with_limit`] with [`DEFAULT_MAX_TRANSFERS`].
pub fn plan(
    rects: &[Rect],
    fb_width: u32,
    fb_height: u32,
    pitch: u32,
    out: &mut Vec<Transfer>,
) -> Result<()> {
    plan_with_limit(
        rects,
        fb_width,
        fb_height,
        pitch,
        DEFAULT_MAX_TRANSFERS,
        out,
    )
}

/// Replaces the contents of `out` with the transfers for `rects` (framebuffer coordinates) on
/// a `fb_width` x `fb_height` framebuffer whose backing rows are `pitch` bytes apart; at most
/// `max_transfers` of them. Rects are clipped to the framebuffer; empty or inverted ones (and
/// parts outside) are dropped.
///
/// Fails with [`Error::InvalidArgument`] when `pitch < fb_width * 4` or `max_transfers == 0`,
/// and with [`Error::NoMemory`] when the working list cannot be allocated (then `out` is
/// empty).
pub fn plan_with_limit(
    rects: &[Rect],
    fb_width: u32,
    fb_height: u32,
    pitch: u32,
    max_transfers: usize,
    out: &mut Vec<Transfer>,
) -> Result<()> {
    out.clear();
    if u64::from(pitch) < u64::from(fb_width) * BYTES_PER_PIXEL || max_transfers == 0 {
        return Err(Error::InvalidArgument);
    }
    let mut areas: Vec<Area> = Vec::new();
    areas
        .try_reserve_exact(rects.len())
        .map_err(|_| Error::NoMemory)?;
    areas.extend(
        rects
            .iter()
            .filter_map(|r| Area::clip(r, fb_width, fb_height)),
    );

    fold_groups(&mut areas);
    // Merges that pay for themselves.
    while let Some((i, j, cost)) = cheapest_pair(&areas) {
        if cost >= 0 {
            break;
        }
        merge(&mut areas, i, j);
    }
    // Merges forced by the bound.
    while areas.len() > max_transfers {
        let Some((i, j, _)) = cheapest_pair(&areas) else {
            break;
        };
        merge(&mut areas, i, j);
    }
    if let Some(bbox) = areas.iter().copied().reduce(|a, b| a.union(&b)) {
        let total: u64 = areas.iter().map(Area::bytes).sum();
        if total > bbox.bytes() {
            areas.clear();
            crate::fallible::try_push(&mut areas, bbox)?;
        }
    }

    out.try_reserve_exact(areas.len())
        .map_err(|_| Error::NoMemory)?;
    out.extend(areas.iter().map(|a| Transfer {
        x: a.x0,
        y: a.y0,
        width: a.x1 - a.x0,
        height: a.y1 - a.y0,
        offset: u64::from(a.y0) * u64::from(pitch) + u64::from(a.x0) * BYTES_PER_PIXEL,
    }));
    Ok(())
}

/// Folds runs of position-sorted neighbours into their bounding boxes until at most
/// [`PAIRWISE_LIMIT`] areas remain.
fn fold_groups(areas: &mut Vec<Area>) {
    if areas.len() <= PAIRWISE_LIMIT {
        return;
    }
    areas.sort_unstable_by_key(|a| (a.y0, a.x0));
    let group = areas.len().div_ceil(PAIRWISE_LIMIT);
    let mut write = 0;
    for read in (0..areas.len()).step_by(group) {
        let end = areas.len().min(read + group);
        if let Some(folded) = areas
            .get(read..end)
            .and_then(|g| g.iter().copied().reduce(|a, b| a.union(&b)))
        {
            if let Some(slot) = areas.get_mut(write) {
                *slot = folded;
                write += 1;
            }
        }
    }
    areas.truncate(write);
}

/// The pair whose merge adds the fewest bytes, with that cost.
fn cheapest_pair(areas: &[Area]) -> Option<(usize, usize, i128)> {
    let mut best: Option<(usize, usize, i128)> = None;
    for (i, a) in areas.iter().enumerate() {
        for (j, b) in areas.iter().enumerate().skip(i + 1) {
            let cost = a.merge_cost(b);
            if best.is_none_or(|(_, _, c)| cost < c) {
                best = Some((i, j, cost));
            }
        }
    }
    best
}

/// Replaces area `i` by the union of `i` and `j` (`i < j`) and removes `j`.
fn merge(areas: &mut Vec<Area>, i: usize, j: usize) {
    if let (Some(a), Some(b)) = (areas.get(i).copied(), areas.get(j).copied()) {
        if let Some(slot) = areas.get_mut(i) {
            *slot = a.union(&b);
        }
        areas.swap_remove(j);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    const W: u32 = 1920;
    const H: u32 = 1080;
    const PITCH: u32 = W * 4;

    fn run(rects: &[Rect]) -> Vec<Transfer> {
        let mut out = Vec::new();
        plan(rects, W, H, PITCH, &mut out).unwrap();
        out
    }

    fn t(x: u32, y: u32, width: u32, height: u32) -> Transfer {
        Transfer {
            x,
            y,
            width,
            height,
            offset: u64::from(y) * u64::from(PITCH) + u64::from(x) * 4,
        }
    }

    #[test]
    fn one_rect_is_one_transfer_with_its_offset() {
        assert_eq!(run(&[Rect::new(10, 20, 110, 70)]), vec![t(10, 20, 100, 50)]);
        assert_eq!(run(&[Rect::new(10, 20, 110, 70)])[0].offset, 20 * 7680 + 40);
    }

    #[test]
    fn far_apart_rects_stay_separate() {
        let got = run(&[Rect::new(0, 0, 64, 64), Rect::new(1000, 900, 1064, 964)]);
        assert_eq!(got, vec![t(0, 0, 64, 64), t(1000, 900, 64, 64)]);
    }

    #[test]
    fn adjacent_rects_merge() {
        // Two halves of one 64x64 square: the box costs exactly their sum, so the saved
        // overhead decides.
        let got = run(&[Rect::new(0, 0, 32, 64), Rect::new(32, 0, 64, 64)]);
        assert_eq!(got, vec![t(0, 0, 64, 64)]);
    }

    #[test]
    fn near_rects_merge_only_when_the_gap_costs_less_than_the_overhead() {
        // Gap of 4 columns x 16 rows = 256 bytes < overhead: merge.
        let got = run(&[Rect::new(0, 0, 16, 16), Rect::new(20, 0, 36, 16)]);
        assert_eq!(got, vec![t(0, 0, 36, 16)]);
        // Gap of 100 columns x 16 rows = 6400 bytes > overhead: keep apart.
        let got = run(&[Rect::new(0, 0, 16, 16), Rect::new(116, 0, 132, 16)]);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn rects_are_clipped_and_empty_ones_dropped() {
        let got = run(&[
            Rect::new(-50, -50, 10, 10),
            Rect::new(1900, 1070, 2000, 2000),
            Rect::new(5000, 5000, 6000, 6000),
            Rect::new(30, 30, 30, 90),
            Rect::new(40, 40, 20, 20),
        ]);
        assert_eq!(got, vec![t(0, 0, 10, 10), t(1900, 1070, 20, 10)]);
    }

    #[test]
    fn no_rects_no_transfers() {
        assert!(run(&[]).is_empty());
    }

    #[test]
    fn identical_rects_collapse() {
        let r = Rect::new(100, 100, 900, 900);
        assert_eq!(run(&[r, r, r]), vec![t(100, 100, 800, 800)]);
    }

    #[test]
    fn bad_arguments_are_rejected() {
        let mut out = vec![t(0, 0, 1, 1)];
        assert_eq!(
            plan(&[Rect::new(0, 0, 1, 1)], W, H, W * 4 - 1, &mut out),
            Err(Error::InvalidArgument)
        );
        assert!(out.is_empty());
        assert_eq!(
            plan_with_limit(&[Rect::new(0, 0, 1, 1)], W, H, PITCH, 0, &mut out),
            Err(Error::InvalidArgument)
        );
    }

    #[test]
    fn many_rects_are_bounded() {
        // A 20x20 grid of 8x8 rects, 96 pixels apart: none pays for a merge on its own.
        let rects: Vec<Rect> = (0..400)
            .map(|i| {
                let (x, y) = ((i % 20) * 96, (i / 20) * 54);
                Rect::new(x, y, x + 8, y + 8)
            })
            .collect();
        let got = run(&rects);
        assert!(got.len() <= DEFAULT_MAX_TRANSFERS, "{}", got.len());
        assert!(!got.is_empty());
    }

    fn covered(transfers: &[Transfer], x: u32, y: u32) -> bool {
        transfers
            .iter()
            .any(|t| x >= t.x && x < t.x + t.width && y >= t.y && y < t.y + t.height)
    }

    fn rect_strategy(fw: i32, fh: i32) -> impl Strategy<Value = Rect> {
        (-8..fw + 8, -8..fh + 8, 0..40i32, 0..40i32)
            .prop_map(|(x, y, w, h)| Rect::new(x, y, x + w, y + h))
    }

    proptest! {
        #[test]
        fn plan_covers_every_dirty_pixel_within_bounds(
            fw in 1u32..120,
            fh in 1u32..120,
            pad in 0u32..16,
            max in 1usize..8,
            rects in proptest::collection::vec(rect_strategy(120, 120), 0..90),
        ) {
            let pitch = fw * 4 + pad;
            let mut out = Vec::new();
            plan_with_limit(&rects, fw, fh, pitch, max, &mut out).unwrap();
            prop_assert!(out.len() <= max);
            for t in &out {
                prop_assert!(t.width > 0 && t.height > 0);
                prop_assert!(t.x + t.width <= fw && t.y + t.height <= fh);
                prop_assert_eq!(t.offset, u64::from(t.y) * u64::from(pitch) + u64::from(t.x) * 4);
            }
            for r in &rects {
                for y in r.top.max(0)..r.bottom.min(fh as i32) {
                    for x in r.left.max(0)..r.right.min(fw as i32) {
                        prop_assert!(covered(&out, x as u32, y as u32), "({}, {}) lost", x, y);
                    }
                }
            }
            let clipped: Vec<Area> = rects.iter().filter_map(|r| Area::clip(r, fw, fh)).collect();
            if let Some(bbox) = clipped.iter().copied().reduce(|a, b| a.union(&b)) {
                let total: u64 = out.iter().map(Transfer::bytes).sum();
                prop_assert!(total <= bbox.bytes(), "{} > {}", total, bbox.bytes());
            } else {
                prop_assert!(out.is_empty());
            }
        }
    }
}
