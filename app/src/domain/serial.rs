//! Serial numbers of credits: every issued kilogram has one. An issuance mints one block of
//! consecutive serials; moving part of a block splits it, lowest serials first, so every
//! kilogram keeps its serial and none exists twice.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Serials `start ..= end - 1` (half-open, like PostgreSQL's `int8range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SerialRange {
    pub start: i64,
    pub end: i64,
}

impl SerialRange {
    pub fn new(start: i64, end: i64) -> SerialRange {
        debug_assert!(start < end, "empty serial range {start}..{end}");
        SerialRange { start, end }
    }

    /// Kilograms in the range.
    pub fn len(&self) -> i64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// `EVCX-VN-2026-000000001-000000950`: region, vintage, first and last serial.
    pub fn label(&self, region: &str, vintage: i32) -> String {
        format!(
            "EVCX-{region}-{vintage}-{:09}-{:09}",
            self.start,
            self.end - 1
        )
    }
}

impl fmt::Display for SerialRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:09}–{:09}", self.start, self.end - 1)
    }
}

/// What moving a quantity does to one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Take<Id> {
    pub block: Id,
    /// The serials that move.
    pub moved: SerialRange,
    /// What stays behind in the block (when it is split).
    pub rest: Option<SerialRange>,
}

/// Chooses the serials for moving `quantity` kilograms out of `blocks` (any order): lowest
/// serials first; at most one block is split. `None` when the blocks hold less than that.
pub fn take<Id: Copy>(blocks: &[(Id, SerialRange)], quantity: i64) -> Option<Vec<Take<Id>>> {
    if quantity <= 0 {
        return Some(Vec::new());
    }
    let mut sorted: Vec<&(Id, SerialRange)> = blocks.iter().collect();
    sorted.sort_by_key(|(_, r)| r.start);
    let mut left = quantity;
    let mut takes = Vec::new();
    for (id, range) in sorted {
        if left == 0 {
            break;
        }
        if range.len() <= left {
            takes.push(Take {
                block: *id,
                moved: *range,
                rest: None,
            });
            left -= range.len();
        } else {
            takes.push(Take {
                block: *id,
                moved: SerialRange::new(range.start, range.start + left),
                rest: Some(SerialRange::new(range.start + left, range.end)),
            });
            left = 0;
        }
    }
    (left == 0).then_some(takes)
}

/// Joins touching ranges (for display: a wallet's serials as few ranges as possible).
pub fn coalesce(mut ranges: Vec<SerialRange>) -> Vec<SerialRange> {
    ranges.sort();
    let mut out: Vec<SerialRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(start: i64, end: i64) -> SerialRange {
        SerialRange::new(start, end)
    }

    #[test]
    fn labels_show_first_and_last_serial() {
        assert_eq!(
            r(1, 951).label("VN", 2026),
            "EVCX-VN-2026-000000001-000000950"
        );
        assert_eq!(r(1, 951).len(), 950);
    }

    #[test]
    fn takes_lowest_serials_first_and_splits_one_block() {
        let blocks = [(7, r(100, 150)), (3, r(1, 11)), (9, r(200, 300))];
        let takes = take(&blocks, 30).unwrap();
        assert_eq!(
            takes,
            vec![
                Take {
                    block: 3,
                    moved: r(1, 11),
                    rest: None
                },
                Take {
                    block: 7,
                    moved: r(100, 120),
                    rest: Some(r(120, 150))
                },
            ]
        );
        assert_eq!(take(&blocks, 160).unwrap().len(), 3);
        assert_eq!(take(&blocks, 160).unwrap()[2].rest, None);
        assert_eq!(take(&blocks, 161), None);
        assert_eq!(take(&blocks, 0), Some(vec![]));
    }

    #[test]
    fn coalesces_touching_ranges() {
        assert_eq!(
            coalesce(vec![r(20, 30), r(1, 10), r(10, 20), r(40, 41)]),
            vec![r(1, 30), r(40, 41)]
        );
    }

    proptest! {
        /// Taking never invents or loses a serial: moved + rest = the blocks touched, moved
        /// adds up to the quantity, and nothing overlaps.
        #[test]
        fn take_conserves_serials(
            sizes in proptest::collection::vec(1i64..50, 1..8),
            quantity in 0i64..300,
        ) {
            let mut start = 1;
            let blocks: Vec<(usize, SerialRange)> = sizes.iter().enumerate().map(|(i, s)| {
                let b = (i, r(start, start + s));
                start += s + 3;
                b
            }).collect();
            let total: i64 = sizes.iter().sum();
            match take(&blocks, quantity) {
                None => prop_assert!(quantity > total),
                Some(takes) => {
                    prop_assert!(quantity <= total);
                    prop_assert_eq!(takes.iter().map(|t| t.moved.len()).sum::<i64>(), quantity);
                    prop_assert!(takes.iter().filter(|t| t.rest.is_some()).count() <= 1);
                    for t in &takes {
                        let original = blocks[t.block].1;
                        let rest = t.rest.map_or(0, |x| x.len());
                        prop_assert_eq!(t.moved.len() + rest, original.len());
                        prop_assert_eq!(t.moved.start, original.start);
                        if let Some(rest) = t.rest {
                            prop_assert_eq!(rest.start, t.moved.end);
                            prop_assert_eq!(rest.end, original.end);
                        }
                    }
                }
            }
        }
    }
}
