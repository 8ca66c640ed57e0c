//! Proofs from the stored tree: a [`ProofPlan`]'s stored nodes in one query, smaller subtrees
//! hashed from the leaf hashes of their 64-leaf tiles; and a record found by its leaf hash,
//! with its place in the batch its agent signed.

use std::collections::{HashMap, hash_map::Entry};

use chaperone_core::{
    B256, BatchMembership, ConsistencyProof, InclusionProof, MerkleLog, NodeId, ProofPlan, Record,
    SubtreeRange,
};
use sqlx::Row;

use super::{
    BATCH_COLUMNS, LoggedRecord, STORED_LEVEL, StoredBatch, leaf_prefix, node_key, to_i64, to_u64,
    unpack_encodings,
};
use crate::{Error, Result, Store, store::parse};

impl Store {
    /// Fetches a plan's nodes (stored ones in one query, smaller ones hashed from their
    /// leaves, one query per 64-leaf tile) and folds them.
    async fn resolve(&self, plan: &ProofPlan) -> Result<Vec<B256>> {
        let (stored, small): (Vec<NodeId>, Vec<NodeId>) =
            plan.node_ids().partition(|id| id.level >= STORED_LEVEL);
        let mut nodes = HashMap::with_capacity(stored.len() + small.len());
        if !stored.is_empty() {
            let placeholders: Vec<String> = (1..=stored.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT node_key, hash FROM log_nodes WHERE node_key IN ({})",
                placeholders.join(",")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &stored {
                query = query.bind(node_key(*id));
            }
            for row in query.fetch_all(&self.reader).await? {
                let key: i64 = row.try_get(0)?;
                nodes.insert(
                    key,
                    parse::<B256>(&row.try_get::<String, _>(1)?, "node hash")?,
                );
            }
        }
        let mut tiles: HashMap<u64, Vec<B256>> = HashMap::new();
        for id in small {
            let first = id.index << id.level;
            let tile = first >> STORED_LEVEL;
            let tile_leaves = match tiles.entry(tile) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(new) => new.insert(self.tile_leaves(tile).await?),
            };
            let offset = (first - (tile << STORED_LEVEL)) as usize;
            let Some(leaves) = tile_leaves.get(offset..offset + (1 << id.level)) else {
                continue; // reported as missing by `assemble`
            };
            let mut subtree = MerkleLog::new();
            for leaf in leaves {
                subtree.append_leaf_hash(*leaf);
            }
            nodes.insert(node_key(id), subtree.root());
        }
        Ok(plan.assemble(|id| {
            nodes
                .get(&node_key(id))
                .copied()
                .ok_or(chaperone_core::Error::MissingNode {
                    level: id.level,
                    index: id.index,
                })
        })?)
    }

    /// The leaf hashes of a 64-leaf tile, in order (fewer at the log's right edge), from the
    /// batches that hold it.
    async fn tile_leaves(&self, tile: u64) -> Result<Vec<B256>> {
        let first = tile << STORED_LEVEL;
        let end = first + (1 << STORED_LEVEL);
        let rows = sqlx::query(
            "SELECT first_index, leaf_hashes FROM record_batches \
             WHERE first_index >= (SELECT COALESCE(MAX(first_index), 0) FROM record_batches \
             WHERE first_index <= $1) AND first_index < $2 ORDER BY first_index",
        )
        .bind(to_i64(first, "tile")?)
        .bind(to_i64(end, "tile")?)
        .fetch_all(&self.reader)
        .await?;
        let mut leaves = Vec::with_capacity(1 << STORED_LEVEL);
        for row in rows {
            let batch_first = to_u64(row.try_get(0)?, "first index")?;
            let hashes: Vec<u8> = row.try_get(1)?;
            for (i, hash) in hashes.chunks_exact(32).enumerate() {
                let index = batch_first + i as u64;
                if (first..end).contains(&index) {
                    leaves.push(B256::from_slice(hash));
                }
            }
        }
        Ok(leaves)
    }

    async fn check_size(&self, size: u64) -> Result<()> {
        let (current, _) = self.log_head().await?;
        if size > current {
            return Err(chaperone_core::Error::SizeOutOfRange {
                requested: size,
                available: current,
            }
            .into());
        }
        Ok(())
    }

    /// The root of the tree of the first `size` leaves.
    pub async fn root_at(&self, size: u64) -> Result<B256> {
        self.check_size(size).await?;
        if size == 0 {
            return Ok(chaperone_core::EMPTY_ROOT);
        }
        let plan = ProofPlan::from_ranges(vec![SubtreeRange::new(0, size)]);
        Ok(self.resolve(&plan).await?[0])
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves (O(log n) reads).
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof> {
        self.check_size(size).await?;
        let plan = ProofPlan::inclusion(index, size)?;
        Ok(InclusionProof {
            index,
            size,
            path: self.resolve(&plan).await?,
        })
    }

    /// The consistency proof from `first` to `second` leaves (O(log n) reads).
    pub async fn consistency_proof(&self, first: u64, second: u64) -> Result<ConsistencyProof> {
        self.check_size(second).await?;
        let plan = ProofPlan::consistency(first, second)?;
        Ok(ConsistencyProof {
            first,
            second,
            path: self.resolve(&plan).await?,
        })
    }

    /// The batch holding a leaf hash and the leaf's place in it: candidates by the hash's
    /// first 8 bytes, then the whole hash compared in each candidate's batch.
    /// Also returns the batch's signature (hex).
    async fn locate(&self, leaf_hash: B256) -> Result<Option<(StoredBatch, usize, String)>> {
        let candidates: Vec<i64> =
            sqlx::query_scalar("SELECT leaf_index FROM leaf_keys WHERE prefix = $1")
                .bind(leaf_prefix(leaf_hash))
                .fetch_all(&self.reader)
                .await?;
        for index in candidates {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {BATCH_COLUMNS}, signature FROM record_batches WHERE first_index <= $1 \
                 ORDER BY first_index DESC LIMIT 1"
            )))
            .bind(index)
            .fetch_optional(&self.reader)
            .await?;
            let Some(row) = row else { continue };
            let batch = StoredBatch::from_row(&row)?;
            let position = to_u64(index, "leaf index")?.saturating_sub(batch.first_index) as usize;
            if batch.leaf(position) == Some(leaf_hash) {
                return Ok(Some((batch, position, row.try_get(5)?)));
            }
        }
        Ok(None)
    }

    /// A logged record by its leaf hash.
    pub async fn record(&self, leaf_hash: B256) -> Result<Option<LoggedRecord>> {
        let Some((batch, position, _)) = self.locate(leaf_hash).await? else {
            return Ok(None);
        };
        let encoding = *unpack_encodings(&batch.encodings)?
            .get(position)
            .ok_or_else(|| Error::Corrupt("a batch has fewer encodings than leaves".into()))?;
        Ok(Some(LoggedRecord {
            index: batch.first_index + position as u64,
            leaf_hash,
            record: Record::decode(encoding)?,
            batch_root: batch.batch_root,
            received_ms: batch.received_ms,
        }))
    }

    /// Proof that a logged record was in the batch its agent signed.
    pub async fn batch_membership(&self, leaf_hash: B256) -> Result<Option<BatchMembership>> {
        let Some((batch, position, signature)) = self.locate(leaf_hash).await? else {
            return Ok(None);
        };
        let signature = parse::<chaperone_core::Bytes>(&signature, "batch signature")?;
        let signature = chaperone_core::Signature::from_raw(&signature)
            .map_err(|_| Error::Corrupt("batch signature".into()))?;
        let mut tree = MerkleLog::new();
        for leaf in batch.leaves() {
            tree.append_leaf_hash(leaf);
        }
        let proof = tree.inclusion_proof(position as u64, tree.size())?;
        Ok(Some(BatchMembership {
            index: proof.index,
            size: proof.size,
            path: proof.path,
            signature,
        }))
    }
}
