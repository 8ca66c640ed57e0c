//! An append-only RFC 9162 Merkle log over a pluggable node store.
//!
//! The store holds every *perfect* subtree root: node (level, index) covers leaves
//! `[index·2^level, (index+1)·2^level)`. Appending writes the leaf and the nodes it completes
//! (amortised two hashes per leaf) from the in-memory [`Frontier`], without reading the store.
//! Any root or proof for a tree of n leaves needs at most 2·log2(n) stored nodes.

use crate::{
    B256, Error, Result,
    hash::{EMPTY_ROOT, leaf_hash, node_hash},
    proof::{ConsistencyProof, InclusionProof, ProofPlan, SubtreeRange},
};

/// The position of a perfect subtree: its height above the leaves and its index in that level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves (0 = leaf).
    pub level: u8,
    /// Index within the level.
    pub index: u64,
}

impl NodeId {
    /// Creates a node id.
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }
}

/// Where a log keeps its node hashes. Implementations: [`MemoryNodeStore`] here, the database
/// store in `chaperone-store`, which fetches a [`ProofPlan`]'s nodes in one query instead.
pub trait NodeStore {
    /// The hash of a perfect subtree, if stored.
    fn node(&self, id: NodeId) -> Option<B256>;
    /// Stores a perfect subtree's hash. Nodes arrive level by level in index order.
    fn put(&mut self, id: NodeId, hash: B256);
}

/// Node hashes in memory, one vector per level.
#[derive(Debug, Default, Clone)]
pub struct MemoryNodeStore {
    levels: Vec<Vec<B256>>,
}

impl NodeStore for MemoryNodeStore {
    fn node(&self, id: NodeId) -> Option<B256> {
        let index = usize::try_from(id.index).ok()?;
        self.levels.get(usize::from(id.level))?.get(index).copied()
    }

    fn put(&mut self, id: NodeId, hash: B256) {
        let level = usize::from(id.level);
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, Vec::new);
        }
        let nodes = &mut self.levels[level];
        // Appends arrive in order; a store rebuilt from a snapshot may repeat the last node.
        match usize::try_from(id.index) {
            Ok(i) if i == nodes.len() => nodes.push(hash),
            Ok(i) if i < nodes.len() => nodes[i] = hash,
            _ => panic!("MemoryNodeStore: node {id:?} put out of order"),
        }
    }
}

/// The right edge of the tree: the roots of the perfect subtrees that make up `[0, size)`,
/// largest first. This is the O(log n) state an appender needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<B256>,
}

impl Frontier {
    /// Rebuilds a frontier from its peaks (e.g. loaded from a database).
    pub fn from_parts(size: u64, peaks: Vec<B256>) -> Result<Self> {
        if peaks.len() != size.count_ones() as usize {
            return Err(Error::SizeOutOfRange {
                requested: size,
                available: peaks.len() as u64,
            });
        }
        Ok(Self { size, peaks })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtree roots, largest (leftmost) first.
    pub fn peaks(&self) -> &[B256] {
        &self.peaks
    }

    /// The root of the tree: the peaks folded right to left.
    pub fn root(&self) -> B256 {
        let mut iter = self.peaks.iter().rev();
        let Some(&last) = iter.next() else {
            return EMPTY_ROOT;
        };
        iter.fold(last, |acc, peak| node_hash(peak, &acc))
    }

    /// Appends a leaf hash, reporting every node it completes (the leaf itself first).
    pub fn push(&mut self, leaf: B256, mut completed: impl FnMut(NodeId, B256)) -> u64 {
        let index = self.size;
        let mut hash = leaf;
        let mut position = index;
        let mut level = 0u8;
        completed(NodeId::new(0, position), hash);
        while position & 1 == 1 {
            let left = self
                .peaks
                .pop()
                .expect("an odd position has a left sibling peak");
            hash = node_hash(&left, &hash);
            position >>= 1;
            level += 1;
            completed(NodeId::new(level, position), hash);
        }
        self.peaks.push(hash);
        self.size += 1;
        index
    }
}

/// An append-only RFC 9162 log: a [`Frontier`] for appends and a [`NodeStore`] for proofs.
#[derive(Debug, Default, Clone)]
pub struct MerkleLog<S = MemoryNodeStore> {
    store: S,
    frontier: Frontier,
}

impl<S: NodeStore> MerkleLog<S> {
    /// A log over `store` whose right edge is `frontier`.
    pub fn with_store(store: S, frontier: Frontier) -> Self {
        Self { store, frontier }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The node store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The right edge of the tree.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// Appends leaf data (hashed as SHA-256(0x00 ‖ data)); returns its index.
    pub fn append(&mut self, data: &[u8]) -> u64 {
        self.append_leaf_hash(leaf_hash(data))
    }

    /// Appends an already computed leaf hash; returns its index.
    pub fn append_leaf_hash(&mut self, leaf: B256) -> u64 {
        let store = &mut self.store;
        self.frontier.push(leaf, |id, hash| store.put(id, hash))
    }

    /// The current root.
    pub fn root(&self) -> B256 {
        self.frontier.root()
    }

    /// The root at an earlier (or the current) size.
    pub fn root_at(&self, size: u64) -> Result<B256> {
        self.check_size(size)?;
        if size == self.size() {
            return Ok(self.root());
        }
        self.subtree_root(SubtreeRange::new(0, size))
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof> {
        self.check_size(size)?;
        let plan = ProofPlan::inclusion(index, size)?;
        Ok(InclusionProof {
            index,
            size,
            path: self.resolve(&plan)?,
        })
    }

    /// The consistency proof from the tree of `first` leaves to the tree of `second` leaves.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<ConsistencyProof> {
        self.check_size(second)?;
        let plan = ProofPlan::consistency(first, second)?;
        Ok(ConsistencyProof {
            first,
            second,
            path: self.resolve(&plan)?,
        })
    }

    /// Fetches a plan's nodes and folds each element's subtree roots.
    pub fn resolve(&self, plan: &ProofPlan) -> Result<Vec<B256>> {
        plan.assemble(|id| {
            self.store.node(id).ok_or(Error::MissingNode {
                level: id.level,
                index: id.index,
            })
        })
    }

    fn subtree_root(&self, range: SubtreeRange) -> Result<B256> {
        let plan = ProofPlan::from_ranges(vec![range]);
        Ok(self.resolve(&plan)?[0])
    }

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.size() {
            return Err(Error::SizeOutOfRange {
                requested: size,
                available: self.size(),
            });
        }
        Ok(())
    }
}

impl MerkleLog<MemoryNodeStore> {
    /// An empty in-memory log.
    pub fn new() -> Self {
        Self::default()
    }
}
