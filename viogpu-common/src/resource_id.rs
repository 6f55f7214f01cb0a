//! Resource ids: the names the driver gives host resources (`resource_id` of virtio-gpu).
//!
//! Id 0 means "no resource" on the wire and is never handed out. The other rule is about
//! time: unreferencing a resource is asynchronous, and the host may still know an id for a
//! while after the driver has forgotten it (the C++ viogpudo handed an id out again right
//! after an asynchronous RESOURCE_UNREF, and CREATE_2D failed because the host still had it).
//! So a freed id is not reused soon: [`ResourceIdAllocator`] hands out ids from a cursor that
//! only moves forward through the id range and wraps around at its end, skipping ids that are
//! still live. A freed id comes back only after the cursor has travelled once around the whole
//! range.
//!
//! **Reuse distance.** Between two handouts of the same id the allocator hands out at least
//! `N = range_len - max_live` other ids (see [`ResourceIdAllocator::reuse_distance`]). Why: the
//! cursor has to visit each of the other `range_len - 1` ids once before it returns to the id.
//! A visited id is skipped only if it is live, and an id that is live when the cursor reaches
//! it was allocated before the cursor's previous visit to our id (allocation happens only at
//! the cursor), so it belongs to the at most `max_live - 1` other ids that were live at that
//! moment. Every other visit hands an id out. With the default range `1..=u32::MAX`, N is
//! about four billion.
//!
//! **Memory.** Live ids are kept in a sorted vector that never holds more than `max_live`
//! entries, so memory is bounded by the configured maximum regardless of the range size.

use alloc::vec::Vec;

use crate::{Error, Result};

/// Hands out virtio-gpu resource ids: never 0, never an id that is live, and a freed id only
/// after the cursor has gone once around the id range (module docs: reuse distance).
#[derive(Debug, Clone)]
pub struct ResourceIdAllocator {
    /// Lowest id of the range (at least 1).
    first: u32,
    /// Highest id of the range (inclusive).
    last: u32,
    /// Most ids that may be live at once.
    max_live: u32,
    /// The next id to try; always inside `first..=last`.
    cursor: u32,
    /// Live ids, sorted ascending, at most `max_live` of them.
    live: Vec<u32>,
}

impl ResourceIdAllocator {
    /// An allocator over ids `1..=u32::MAX` with at most `max_live` ids live at once.
    ///
    /// `max_live` of 0 gives an allocator whose `alloc` always fails; nothing else can go
    /// wrong here, and no memory is taken until the first `alloc`.
    pub const fn new(max_live: u32) -> Self {
        Self {
            first: 1,
            last: u32::MAX,
            max_live,
            cursor: 1,
            live: Vec::new(),
        }
    }

    /// An allocator over ids `first..=last` (a smaller range makes wrap-around observable in
    /// tests, or leaves room for ids the driver assigns by other means).
    ///
    /// Fails with [`Error::InvalidArgument`] if `first` is 0, `first > last`, or `max_live`
    /// is 0. A `max_live` above the number of ids in the range is lowered to it.
    pub fn with_range(first: u32, last: u32, max_live: u32) -> Result<Self> {
        if first == 0 || first > last || max_live == 0 {
            return Err(Error::InvalidArgument);
        }
        let range_len = u64::from(last - first) + 1;
        let max_live = u32::try_from(u64::from(max_live).min(range_len)).unwrap_or(u32::MAX);
        Ok(Self {
            first,
            last,
            max_live,
            cursor: first,
            live: Vec::new(),
        })
    }

    /// Number of ids in the range.
    pub fn range_len(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }

    /// Most ids that may be live at once.
    pub fn max_live(&self) -> u32 {
        self.max_live
    }

    /// The guaranteed reuse distance N: between two handouts of the same id, at least this
    /// many other ids are handed out (module docs).
    pub fn reuse_distance(&self) -> u64 {
        self.range_len().saturating_sub(u64::from(self.max_live))
    }

    /// Number of ids currently live.
    pub fn live_count(&self) -> u32 {
        // At most max_live entries, so it fits.
        u32::try_from(self.live.len()).unwrap_or(u32::MAX)
    }

    /// True if `id` has been handed out and not freed.
    pub fn is_live(&self, id: u32) -> bool {
        self.live.binary_search(&id).is_ok()
    }

    /// Hands out the next free id at or after the cursor (wrapping around at the end of the
    /// range).
    ///
    /// Fails with [`Error::ResourceIdsExhausted`] when `max_live` ids are live, or with
    /// [`Error::NoMemory`] if the bookkeeping vector cannot grow; nothing changes on failure.
    pub fn alloc(&mut self) -> Result<u32> {
        if self.live.len() >= self.max_live as usize {
            return Err(Error::ResourceIdsExhausted);
        }
        self.live.try_reserve(1).map_err(|_| Error::NoMemory)?;

        // Walk the sorted live list from the cursor: each live id equal to the candidate pushes
        // the candidate one further. Fewer than range_len ids are live, so a free id exists and
        // at most live.len() + 1 steps find it (one wrap at most).
        let mut candidate = self.cursor;
        let mut index = self.live.partition_point(|&id| id < candidate);
        let mut wrapped = false;
        loop {
            match self.live.get(index) {
                Some(&id) if id == candidate => {
                    if candidate == self.last {
                        if wrapped {
                            // Unreachable with live.len() < range_len; stay total anyway.
                            return Err(Error::ResourceIdsExhausted);
                        }
                        wrapped = true;
                        candidate = self.first;
                        index = 0;
                    } else {
                        candidate += 1;
                        index += 1;
                    }
                }
                _ => break,
            }
        }

        #[allow(clippy::disallowed_methods)] // room for one more reserved above
        self.live.insert(index, candidate);
        self.cursor = if candidate == self.last {
            self.first
        } else {
            candidate + 1
        };
        Ok(candidate)
    }

    /// Returns `id` to the allocator. It is not handed out again before the cursor has gone
    /// around the range (module docs).
    ///
    /// Fails with [`Error::InvalidArgument`], changing nothing, if `id` is 0 or not live
    /// (never allocated, or already freed).
    pub fn free(&mut self, id: u32) -> Result<()> {
        match self.live.binary_search(&id) {
            Ok(index) => {
                self.live.remove(index);
                Ok(())
            }
            Err(_) => Err(Error::InvalidArgument),
        }
    }

    /// Forgets every live id, for a device reset (the host has dropped all resources). The
    /// cursor keeps its place, so ids are still not reused early.
    pub fn clear(&mut self) {
        self.live.clear();
    }

    /// The live ids in ascending order.
    pub fn live_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.live.iter().copied()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec;

    #[test]
    fn hands_out_ascending_ids_from_one() {
        let mut ids = ResourceIdAllocator::new(8);
        assert_eq!(ids.alloc(), Ok(1));
        assert_eq!(ids.alloc(), Ok(2));
        assert_eq!(ids.alloc(), Ok(3));
        assert_eq!(ids.live_count(), 3);
        assert!(ids.is_live(2));
        assert!(!ids.is_live(0));
        assert!(!ids.is_live(4));
    }

    #[test]
    fn freed_id_is_not_reused_at_once() {
        let mut ids = ResourceIdAllocator::new(8);
        let a = ids.alloc().unwrap();
        ids.free(a).unwrap();
        let b = ids.alloc().unwrap();
        assert_ne!(a, b);
        assert_eq!(b, 2);
        assert!(!ids.is_live(a));
        assert_eq!(ids.live_count(), 1);
    }

    #[test]
    fn free_rejects_zero_unknown_and_double_free_without_change() {
        let mut ids = ResourceIdAllocator::new(8);
        let a = ids.alloc().unwrap();
        let b = ids.alloc().unwrap();
        assert_eq!(ids.free(0), Err(Error::InvalidArgument));
        assert_eq!(ids.free(77), Err(Error::InvalidArgument));
        assert_eq!(ids.live_ids().collect::<Vec<_>>(), vec![a, b]);
        ids.free(a).unwrap();
        assert_eq!(ids.free(a), Err(Error::InvalidArgument));
        assert_eq!(ids.live_ids().collect::<Vec<_>>(), vec![b]);
        // The cursor did not move either: the next id is the one after b.
        assert_eq!(ids.alloc(), Ok(b + 1));
    }

    #[test]
    fn exhaustion_at_max_live_and_recovery_after_free() {
        let mut ids = ResourceIdAllocator::new(3);
        let got: Vec<u32> = (0..3).map(|_| ids.alloc().unwrap()).collect();
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(ids.alloc(), Err(Error::ResourceIdsExhausted));
        assert_eq!(ids.live_count(), 3);
        ids.free(2).unwrap();
        assert_eq!(ids.alloc(), Ok(4));
    }

    #[test]
    fn zero_max_live_never_allocates() {
        let mut ids = ResourceIdAllocator::new(0);
        assert_eq!(ids.alloc(), Err(Error::ResourceIdsExhausted));
        assert_eq!(ids.live_count(), 0);
    }

    #[test]
    fn wraps_around_and_skips_live_ids_never_zero() {
        let mut ids = ResourceIdAllocator::with_range(1, 5, 5).unwrap();
        for want in 1..=5 {
            assert_eq!(ids.alloc(), Ok(want));
        }
        assert_eq!(ids.alloc(), Err(Error::ResourceIdsExhausted));
        ids.free(4).unwrap();
        ids.free(2).unwrap();
        // Cursor is back at 1 after the wrap; 1 is live, 2 is free.
        assert_eq!(ids.alloc(), Ok(2));
        assert_eq!(ids.alloc(), Ok(4));
        assert_eq!(ids.alloc(), Err(Error::ResourceIdsExhausted));
    }

    #[test]
    fn wrap_at_u32_max_skips_zero() {
        let mut ids = ResourceIdAllocator::with_range(u32::MAX - 1, u32::MAX, 2).unwrap();
        assert_eq!(ids.alloc(), Ok(u32::MAX - 1));
        assert_eq!(ids.alloc(), Ok(u32::MAX));
        ids.free(u32::MAX - 1).unwrap();
        assert_eq!(ids.alloc(), Ok(u32::MAX - 1));
    }

    #[test]
    fn default_range_wraps_past_u32_max_to_one() {
        let mut ids = ResourceIdAllocator::new(4);
        ids.cursor = u32::MAX;
        assert_eq!(ids.alloc(), Ok(u32::MAX));
        assert_eq!(ids.alloc(), Ok(1));
        assert_eq!(ids.reuse_distance(), u64::from(u32::MAX) - 4);
    }

    #[test]
    fn with_range_validates() {
        assert_eq!(
            ResourceIdAllocator::with_range(0, 10, 4).err(),
            Some(Error::InvalidArgument)
        );
        assert_eq!(
            ResourceIdAllocator::with_range(5, 4, 4).err(),
            Some(Error::InvalidArgument)
        );
        assert_eq!(
            ResourceIdAllocator::with_range(1, 10, 0).err(),
            Some(Error::InvalidArgument)
        );
        let ids = ResourceIdAllocator::with_range(3, 6, 100).unwrap();
        assert_eq!(ids.max_live(), 4);
        assert_eq!(ids.range_len(), 4);
        assert_eq!(ids.reuse_distance(), 0);
    }

    #[test]
    fn clear_forgets_live_ids_but_keeps_cursor() {
        let mut ids = ResourceIdAllocator::new(4);
        ids.alloc().unwrap();
        ids.alloc().unwrap();
        ids.clear();
        assert_eq!(ids.live_count(), 0);
        assert!(!ids.is_live(1));
        assert_eq!(ids.alloc(), Ok(3));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc,
        /// Free the live id at this position (modulo the live count).
        Free(usize),
        /// Free an arbitrary id (usually not live: must be refused without change).
        FreeRaw(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => Just(Op::Alloc),
            4 => any::<usize>().prop_map(Op::Free),
            1 => (0u32..80).prop_map(Op::FreeRaw),
        ]
    }

    proptest! {
        /// Random alloc/free over a small range (ids 1..=64, at most 16 live, so N = 48):
        /// never 0, never an id that is live, ids stay in range, and between two handouts
        /// of the same id at least N other ids were handed out.
        #[test]
        #[cfg_attr(miri, ignore = "over 10 minutes under Miri for safe code only (no unsafe in this module)")]
        fn random_alloc_free_keeps_invariants(ops in proptest::collection::vec(op(), 1..600)) {
            let mut ids = ResourceIdAllocator::with_range(1, 64, 16).unwrap();
            let n = ids.reuse_distance();
            prop_assert_eq!(n, 48);
            let mut model: Vec<u32> = Vec::new();
            // id -> index of the handout that gave it out last.
            let mut last_handout: BTreeMap<u32, u64> = BTreeMap::new();
            let mut handouts: u64 = 0;
            for op in ops {
                match op {
                    Op::Alloc => match ids.alloc() {
                        Ok(id) => {
                            prop_assert!(id != 0 && id <= 64);
                            prop_assert!(!model.contains(&id), "id {} handed out twice", id);
                            if let Some(&prev) = last_handout.get(&id) {
                                prop_assert!(
                                    handouts - prev > n,
                                    "id {} reused after {} other handouts", id, handouts - prev - 1
                                );
                            }
                            last_handout.insert(id, handouts);
                            handouts += 1;
                            model.push(id);
                        }
                        Err(e) => {
                            prop_assert_eq!(e, Error::ResourceIdsExhausted);
                            prop_assert_eq!(model.len(), 16);
                        }
                    },
                    Op::Free(i) => {
                        if !model.is_empty() {
                            let id = model.swap_remove(i % model.len());
                            prop_assert_eq!(ids.free(id), Ok(()));
                            prop_assert_eq!(ids.free(id), Err(Error::InvalidArgument));
                        }
                    }
                    Op::FreeRaw(id) => {
                        let was_live = model.contains(&id);
                        let result = ids.free(id);
                        if was_live {
                            prop_assert_eq!(result, Ok(()));
                            model.retain(|&x| x != id);
                        } else {
                            prop_assert_eq!(result, Err(Error::InvalidArgument));
                        }
                    }
                }
                prop_assert_eq!(ids.live_count() as usize, model.len());
                let mut sorted = model.clone();
                sorted.sort_unstable();
                prop_assert_eq!(ids.live_ids().collect::<Vec<_>>(), sorted);
            }
        }
    }
}
