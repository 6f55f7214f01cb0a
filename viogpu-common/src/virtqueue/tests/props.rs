//! Property test: random interleavings of add / publish / device poll / out-of-order
//! completion / pop keep the queue's books exact.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use proptest::prelude::*;

use super::super::{Segment, MAX_INDIRECT};
use super::{queue, FakeDevice, Seen, Taken};
use crate::Error;

#[derive(Debug, Clone)]
enum Op {
    Add { readable: usize, writable: usize },
    Publish,
    Poll,
    Complete { pick: usize, short: u32 },
    Pop,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..4, 0usize..4).prop_map(|(readable, writable)| Op::Add { readable, writable }),
        2 => Just(Op::Publish),
        2 => Just(Op::Poll),
        3 => (any::<usize>(), 0u32..3).prop_map(|(pick, short)| Op::Complete { pick, short }),
        2 => Just(Op::Pop),
    ]
}

/// What the model knows about one chain in flight.
struct Posted {
    segments: Vec<Seen>,
    descs: u16,
    writable: u32,
    indirect: bool,
}

struct Model {
    size: u16,
    indirect: bool,
    posted: BTreeMap<u16, Posted>,
    /// Completions the device wrote and the driver has not popped: id -> len.
    completed: BTreeMap<u16, u32>,
    next_addr: u64,
}

impl Model {
    fn descs_in_flight(&self) -> u16 {
        self.posted.values().map(|p| p.descs).sum()
    }
}

fn run(size: u16, indirect: bool, event_idx: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let (hal, mut q) = queue(size, indirect, event_idx);
    let mut dev = FakeDevice::new(&q);
    let mut taken: Vec<Taken> = Vec::new();
    let mut m = Model {
        size,
        indirect,
        posted: BTreeMap::new(),
        completed: BTreeMap::new(),
        next_addr: 0x1000,
    };
    let pop_all = |q: &mut super::super::SplitQueue<super::HeapHal>,
                   m: &mut Model|
     -> Result<(), TestCaseError> {
        while let Some(elem) = q.pop_used() {
            let elem = elem.map_err(|e| TestCaseError::fail(alloc::format!("{e:?}")))?;
            let len = m.completed.remove(&elem.id);
            prop_assert!(
                len.is_some(),
                "popped {} which the device did not complete",
                elem.id
            );
            let p = m.posted.remove(&elem.id).unwrap();
            prop_assert_eq!(elem.written, Ok(len.unwrap()));
            prop_assert!(len.unwrap() <= p.writable);
        }
        prop_assert!(m.completed.is_empty(), "a completion was lost");
        Ok(())
    };

    for op in ops {
        match *op {
            Op::Add { readable, writable } => {
                let seg = |n: usize, w: bool, m: &mut Model| -> Vec<Segment> {
                    (0..n)
                        .map(|i| {
                            let s = Segment {
                                addr: m.next_addr,
                                len: 16 + i as u32 + if w { 100 } else { 0 },
                            };
                            m.next_addr += 0x1000;
                            s
                        })
                        .collect()
                };
                let r = seg(readable, false, &mut m);
                let w = seg(writable, true, &mut m);
                let count = readable + writable;
                let use_indirect = m.indirect && count > 1 && count <= MAX_INDIRECT;
                let needed = if use_indirect { 1 } else { count as u16 };
                let free = m.size - m.descs_in_flight();
                let expect = if count == 0 {
                    Err(Error::InvalidArgument)
                } else if count > usize::from(m.size) {
                    Err(Error::ChainTooLong)
                } else if needed > free {
                    Err(Error::QueueFull)
                } else {
                    Ok(())
                };
                let got = q.add(&r, &w);
                match (got, expect) {
                    (Ok(id), Ok(())) => {
                        prop_assert!(id < size);
                        prop_assert!(!m.posted.contains_key(&id), "id {} handed out twice", id);
                        let segments = r
                            .iter()
                            .map(|s| (s, false))
                            .chain(w.iter().map(|s| (s, true)))
                            .map(|(s, writable)| Seen {
                                addr: s.addr,
                                len: s.len,
                                writable,
                            })
                            .collect();
                        m.posted.insert(
                            id,
                            Posted {
                                segments,
                                descs: needed,
                                writable: w.iter().map(|s| s.len).sum(),
                                indirect: use_indirect,
                            },
                        );
                    }
                    (got, expect) => prop_assert_eq!(got.map(|_| ()), expect),
                }
            }
            Op::Publish => {
                q.publish();
            }
            Op::Poll => {
                while let Some(t) = dev.pop() {
                    let p = m.posted.get(&t.head);
                    prop_assert!(p.is_some(), "device got unknown head {}", t.head);
                    let p = p.unwrap();
                    prop_assert_eq!(&t.segments, &p.segments);
                    prop_assert_eq!(t.indirect, p.indirect);
                    taken.push(t);
                }
            }
            Op::Complete { pick, short } => {
                if !taken.is_empty() {
                    let t = taken.swap_remove(pick % taken.len());
                    let writable = m.posted[&t.head].writable;
                    let len = writable.saturating_sub(short * 50);
                    dev.complete(u32::from(t.head), len);
                    m.completed.insert(t.head, len);
                }
            }
            Op::Pop => pop_all(&mut q, &mut m)?,
        }
        prop_assert_eq!(q.in_flight() as usize, m.posted.len());
        prop_assert_eq!(q.num_free(), size - m.descs_in_flight());
        if !m.indirect {
            // Direct mode: every descriptor is either free or in exactly one chain.
            let in_chains: u16 = m.posted.values().map(|p| p.segments.len() as u16).sum();
            prop_assert_eq!(q.num_free() + in_chains, size);
        }
        for id in m.posted.keys() {
            prop_assert!(q.is_in_flight(*id));
        }
    }

    // Drain: everything posted comes back exactly once and every descriptor is free again.
    q.publish();
    while let Some(t) = dev.pop() {
        taken.push(t);
    }
    for t in taken.drain(..) {
        let len = m.posted[&t.head].writable;
        dev.complete(u32::from(t.head), len);
        m.completed.insert(t.head, len);
    }
    pop_all(&mut q, &mut m)?;
    prop_assert!(m.posted.is_empty());
    prop_assert_eq!((q.num_free(), q.in_flight()), (size, 0));
    drop(q);
    prop_assert_eq!(hal.live_bytes(), 0);
    Ok(())
}

proptest! {
    // Under Miri, the default case count of scripts/miri.
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 256 }))]

    #[test]
    fn books_stay_exact(
        size_log in 0u32..5,
        indirect in any::<bool>(),
        event_idx in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        run(1 << size_log, indirect, event_idx, &ops)?;
    }
}
