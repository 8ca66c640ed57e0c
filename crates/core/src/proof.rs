//! RFC 9162 inclusion (§2.1.3) and consistency (§2.1.4) proofs: planning which stored nodes a
//! proof needs, and verifying proofs.
//!
//! Generation is split in two so that storage stays outside this crate: a [`ProofPlan`] lists,
//! for each proof element, the perfect subtrees whose hashes fold into it; a store fetches those
//! (at most 2·log2(n) nodes, one round trip for a database) and the plan folds them.

use serde::{Deserialize, Serialize};

use crate::{
    B256, Error, Result,
    hash::{EMPTY_ROOT, node_hash},
    log::NodeId,
};

/// A contiguous leaf range `[start, end)` whose start is aligned as RFC 9162's recursive split
/// leaves it, so that it decomposes into at most log2(n) perfect subtrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubtreeRange {
    /// First leaf.
    pub start: u64,
    /// One past the last leaf.
    pub end: u64,
}

impl SubtreeRange {
    /// The range `[start, end)`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    /// The perfect subtrees that make up this range, left to right.
    pub fn nodes(self) -> impl Iterator<Item = NodeId> {
        let mut start = self.start;
        let mut remaining = self.end - self.start;
        std::iter::from_fn(move || {
            if remaining == 0 {
                return None;
            }
            let level = 63 - remaining.leading_zeros();
            let id = NodeId::new(level as u8, start >> level);
            start += 1 << level;
            remaining -= 1 << level;
            Some(id)
        })
    }
}

/// The largest power of two strictly smaller than `n` (n ≥ 2): RFC 9162's split point `k`.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Which subtree roots make up each element of a proof, in proof order (bottom to top).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofPlan {
    ranges: Vec<SubtreeRange>,
}

impl ProofPlan {
    /// A plan from explicit ranges.
    pub fn from_ranges(ranges: Vec<SubtreeRange>) -> Self {
        Self { ranges }
    }

    /// PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, as ranges.
    pub fn inclusion(index: u64, size: u64) -> Result<Self> {
        if index >= size {
            return Err(Error::IndexOutOfRange { index, size });
        }
        let (mut lo, mut hi) = (0, size);
        let mut ranges = Vec::with_capacity(64 - size.leading_zeros() as usize);
        while hi - lo > 1 {
            let k = split(hi - lo);
            if index < lo + k {
                ranges.push(SubtreeRange::new(lo + k, hi));
                hi = lo + k;
            } else {
                ranges.push(SubtreeRange::new(lo, lo + k));
                lo += k;
            }
        }
        ranges.reverse();
        Ok(Self { ranges })
    }

    /// PROOF(first, D[0:second]) of RFC 9162 §2.1.4.1, as ranges. `first` must be at least 1:
    /// the empty tree has no root to be consistent with.
    pub fn consistency(first: u64, second: u64) -> Result<Self> {
        if first == 0 || first > second {
            return Err(Error::SizeOutOfRange {
                requested: first,
                available: second,
            });
        }
        let (mut lo, mut hi, mut m, mut whole) = (0, second, first, true);
        let mut ranges = Vec::with_capacity(2 * (64 - second.leading_zeros() as usize));
        while m != hi - lo {
            let k = split(hi - lo);
            if m <= k {
                ranges.push(SubtreeRange::new(lo + k, hi));
                hi = lo + k;
            } else {
                ranges.push(SubtreeRange::new(lo, lo + k));
                lo += k;
                m -= k;
                whole = false;
            }
        }
        // SUBPROOF's base case: the old tree's own subtree root is needed unless it is the
        // whole old tree (whose root the verifier already has).
        if !whole {
            ranges.push(SubtreeRange::new(lo, hi));
        }
        ranges.reverse();
        Ok(Self { ranges })
    }

    /// The ranges, one per proof element.
    pub fn ranges(&self) -> &[SubtreeRange] {
        &self.ranges
    }

    /// Every node the plan needs, in order (a store can fetch them in one query).
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.ranges.iter().flat_map(|r| r.nodes())
    }

    /// Folds fetched subtree roots into the proof elements.
    pub fn assemble(&self, mut fetch: impl FnMut(NodeId) -> Result<B256>) -> Result<Vec<B256>> {
        self.ranges
            .iter()
            .map(|range| {
                let mut nodes = range.nodes();
                let Some(first) = nodes.next() else {
                    return Ok(EMPTY_ROOT);
                };
                let first = fetch(first)?;
                // Perfect subtrees combine right to left: collect the rest, then fold.
                let rest = nodes.map(&mut fetch).collect::<Result<Vec<_>>>()?;
                let Some((&last, init)) = rest.split_last() else {
                    return Ok(first);
                };
                let right = init.iter().rev().fold(last, |acc, h| node_hash(h, &acc));
                Ok(node_hash(&first, &right))
            })
            .collect()
    }
}

/// Proof that a leaf is at `index` in the tree of `size` leaves (RFC 9162 §2.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProof {
    /// The leaf's index.
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// The audit path, bottom to top.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::Hex32>))]
    pub path: Vec<B256>,
}

impl InclusionProof {
    /// The root this proof leads to from `leaf` (RFC 9162 §2.1.3.2).
    pub fn root_from(&self, leaf: &B256) -> Result<B256> {
        if self.index >= self.size {
            return Err(Error::IndexOutOfRange {
                index: self.index,
                size: self.size,
            });
        }
        let (mut fn_, mut sn) = (self.index, self.size - 1);
        let mut r = *leaf;
        for p in &self.path {
            if sn == 0 {
                return Err(Error::InclusionProofInvalid);
            }
            if fn_ & 1 == 1 || fn_ == sn {
                r = node_hash(p, &r);
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            } else {
                r = node_hash(&r, p);
            }
            fn_ >>= 1;
            sn >>= 1;
        }
        if sn != 0 {
            return Err(Error::InclusionProofInvalid);
        }
        Ok(r)
    }

    /// Checks that `leaf` is at `index` in the tree whose root is `root`.
    pub fn verify(&self, leaf: &B256, root: &B256) -> Result<()> {
        if self.root_from(leaf)? != *root {
            return Err(Error::InclusionProofInvalid);
        }
        Ok(())
    }
}

/// Proof that the tree of `second` leaves extends the tree of `first` leaves (RFC 9162 §2.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The older tree size.
    pub first: u64,
    /// The newer tree size.
    pub second: u64,
    /// The proof nodes.
    pub path: Vec<B256>,
}

impl ConsistencyProof {
    /// Checks that the tree with `second_root` extends the tree with `first_root`
    /// (RFC 9162 §2.1.4.2).
    pub fn verify(&self, first_root: &B256, second_root: &B256) -> Result<()> {
        let invalid = Err(Error::ConsistencyProofInvalid);
        let (first, second) = (self.first, self.second);
        if first == 0 || first > second {
            return invalid;
        }
        if first == second {
            return if self.path.is_empty() && first_root == second_root {
                Ok(())
            } else {
                invalid
            };
        }
        if self.path.is_empty() {
            return invalid;
        }
        // A power-of-two `first` is a complete subtree: the proof omits its root.
        let mut path = self.path.iter();
        let seed = if first.is_power_of_two() {
            Some(first_root)
        } else {
            path.next()
        };
        let Some(&seed) = seed else { return invalid };
        let (mut fn_, mut sn) = (first - 1, second - 1);
        while fn_ & 1 == 1 {
            fn_ >>= 1;
            sn >>= 1;
        }
        let (mut fr, mut sr) = (seed, seed);
        for c in path {
            if sn == 0 {
                return invalid;
            }
            if fn_ & 1 == 1 || fn_ == sn {
                fr = node_hash(c, &fr);
                sr = node_hash(c, &sr);
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            } else {
                sr = node_hash(&sr, c);
            }
            fn_ >>= 1;
            sn >>= 1;
        }
        if sn == 0 && fr == *first_root && sr == *second_root {
            Ok(())
        } else {
            invalid
        }
    }
}
