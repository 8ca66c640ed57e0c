//! The audit log's persistence: the RFC 9162 tree (frontier and the roots of perfect subtrees
//! of 64 leaves and more), signed batches of records, per-agent chains, checkpoints and
//! anchors.
//!
//! A batch is one row (migration 0004): its records' leaf hashes and canonical encodings are
//! two values of it, and per record only a `leaf_keys` row finds it by leaf hash (the hash's
//! first 8 bytes and its log index; queries then compare the whole hash in its batch).
//!
//! The log has one writer at a time: [`Store::append_batch`] locks the single `log_state` row
//! (`BEGIN IMMEDIATE` on SQLite, `FOR UPDATE` on PostgreSQL), so several server replicas can
//! ingest into one PostgreSQL log without forking it. Proofs read the O(log n) nodes a
//! [`ProofPlan`] names in one query, and hash the smaller subtrees from the leaf hashes of
//! their 64-leaf tiles (one query per tile, a few per proof).

use std::collections::{HashMap, hash_map::Entry};

use chaperone_core::{
    Address, B256, BatchMembership, ConsistencyProof, Frontier, InclusionProof, MerkleLog, NodeId,
    ProofPlan, Record, SignedBatch, SubtreeRange,
};
use sqlx::Row;

use crate::{
    Backend, Error, Result, Store,
    store::{db_time, hex, parse},
};

/// What a record of the policy service stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRecord {
    /// A co-sign decision (its request id).
    Decision(B256),
    /// An administrative action (its id).
    AdminAction(u64),
}

/// Bind parameters per multi-row INSERT: well under SQLite's and PostgreSQL's limits.
const INSERT_PARAMETERS: usize = 5_000;

/// Where an ingested batch landed in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendedBatch {
    /// Log index of the batch's first record.
    pub first_index: u64,
    /// The records' leaf hashes, in order.
    pub leaf_hashes: Vec<B256>,
    /// RFC 9162 root of the leaf hashes (what the agent signed).
    pub batch_root: B256,
    /// When the log first accepted the batch (ms).
    pub received_ms: u64,
    /// The log's size after the batch.
    pub log_size: u64,
    /// True when this exact batch had been appended before and nothing was written now.
    pub replayed: bool,
}

/// A logged record with its place in the log and in its signed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRecord {
    /// Log index.
    pub index: u64,
    /// Leaf hash.
    pub leaf_hash: B256,
    /// The record.
    pub record: Record,
    /// Root of the batch it was signed in.
    pub batch_root: B256,
}

/// An agent's chain in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSummary {
    /// The agent's record-signing address.
    pub address: Address,
    /// Records logged.
    pub record_count: u64,
    /// The sequence number its next record must carry.
    pub next_sequence: u64,
    /// Leaf hash of its last record.
    pub last_leaf_hash: B256,
    /// Timestamp of its first record (ms).
    pub first_seen_ms: u64,
    /// Timestamp of its latest record (ms).
    pub last_seen_ms: u64,
}

/// Which records to list: one agent's, optionally by model and time, after a cursor.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// The agent.
    pub agent: Option<Address>,
    /// Exact model id.
    pub model: Option<String>,
    /// Records at or after this time (ms).
    pub from_ms: Option<u64>,
    /// Records before this time (ms).
    pub to_ms: Option<u64>,
    /// Only records with a larger log index (the pagination cursor).
    pub after_index: Option<u64>,
    /// At most this many.
    pub limit: u32,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Root at that size.
    pub root: B256,
    /// The signed note.
    pub note: String,
}

/// An anchoring transaction of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Tree size anchored.
    pub size: u64,
    /// Root anchored.
    pub root: B256,
    /// The transaction.
    pub tx_hash: B256,
    /// The block it was mined in.
    pub block_number: u64,
}

/// A co-sign decision not yet in the log: its id and the JSON that the log record commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnloggedDecision {
    /// The request id.
    pub request_id: B256,
    /// When it was decided (Unix seconds).
    pub created_at: u64,
    /// The request as received.
    pub request: String,
    /// The decision (outcome, reasons, policy version and hash, signature) as JSON.
    pub decision: String,
}

/// The lowest level of the tree kept in `log_nodes`: subtrees of 64 leaves and more. Smaller
/// ones are hashed from the records' leaf hashes when a proof needs them (at most 63 leaves per
/// node), so ingestion writes one node row per 32 records instead of two per record.
const STORED_LEVEL: u8 = 6;

fn node_key(id: NodeId) -> i64 {
    // level < 64 and index < 2^56 for any log this side of 72 quadrillion leaves.
    ((i64::from(id.level)) << 56) | (id.index as i64)
}

fn to_i64(n: u64, what: &str) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::OutOfRange(format!("{what} {n}")))
}

pub(crate) fn to_u64(n: i64, what: &str) -> Result<u64> {
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("{what} {n} is negative")))
}

/// Runs a multi-row INSERT of `rows` (each a list of text/integer values) in chunks. The
/// values move into the queries instead of being copied.
async fn insert_rows(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    head: &str,
    columns: usize,
    rows: Vec<Vec<Value>>,
) -> Result<()> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows
            .by_ref()
            .take((INSERT_PARAMETERS / columns).max(1))
            .collect();
        let mut sql = String::with_capacity(head.len() + chunk.len() * columns * 5);
        sql.push_str(head);
        sql.push_str(" VALUES ");
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..columns {
                if c > 0 {
                    sql.push(',');
                }
                // SQLite gets anonymous `?`s: sqlx looks up every numbered parameter by name,
                // a linear scan in SQLite, so `$N` made a 4,500-parameter INSERT quadratic
                // (a third of the CPU of the whole ingestion went there).
                match backend {
                    Backend::Sqlite => sql.push('?'),
                    Backend::Postgres => {
                        n += 1;
                        sql.push('$');
                        sql.push_str(&n.to_string());
                    }
                }
            }
            sql.push(')');
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in chunk.into_iter().flatten() {
            query = value.bind_to(query);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A value to bind to a query whose shape is built at run time.
#[derive(Clone)]
pub(crate) enum Value {
    Int(i64),
    Text(String),
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

impl Value {
    pub(crate) fn bind_to(self, query: AnyQuery<'_>) -> AnyQuery<'_> {
        match self {
            Self::Int(i) => query.bind(i),
            Self::Text(t) => query.bind(t),
        }
    }
}

impl Store {
    /// Appends a verified batch (`leaves` = its records' leaf hashes, from
    /// [`SignedBatch::verify`]) to the log in one transaction, after checking that it continues
    /// its agent's chain: first sequence = the agent's next, `previous` = its last leaf hash.
    /// The exact same batch again returns where it landed and writes nothing. `decisions` marks
    /// co-sign decisions (request id, salts JSON) as logged by this batch, in the same
    /// transaction.
    pub async fn append_batch(
        &self,
        batch: &SignedBatch,
        leaves: &[B256],
        received_ms: u64,
        decisions: &[(B256, String)],
    ) -> Result<AppendedBatch> {
        let logged: Vec<(ServiceRecord, String)> = decisions
            .iter()
            .map(|(id, salts)| (ServiceRecord::Decision(*id), salts.clone()))
            .collect();
        self.append_service_batch(batch, leaves, received_ms, &logged)
            .await
    }

    /// [`Store::append_batch`] for the policy service's own records: marks each record's
    /// decision or administrative action (with its salts JSON) as logged under its leaf, in the
    /// same transaction.
    pub async fn append_service_batch(
        &self,
        batch: &SignedBatch,
        leaves: &[B256],
        received_ms: u64,
        logged: &[(ServiceRecord, String)],
    ) -> Result<AppendedBatch> {
        let first = batch
            .records
            .first()
            .ok_or_else(|| Error::Corrupt("empty batch".into()))?;
        let agent = first.agent;
        let batch_root = {
            let mut tree = MerkleLog::new();
            for leaf in leaves {
                tree.append_leaf_hash(*leaf);
            }
            tree.root()
        };
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        let lock = match self.backend {
            Backend::Sqlite => "SELECT size, peaks FROM log_state WHERE id = 1",
            Backend::Postgres => "SELECT size, peaks FROM log_state WHERE id = 1 FOR UPDATE",
        };
        let state = sqlx::query(lock).fetch_one(&mut *tx).await?;
        let size = to_u64(state.try_get(0)?, "log size")?;
        let peaks: Vec<B256> = serde_json::from_str(&state.try_get::<String, _>(1)?)
            .map_err(|e| Error::Corrupt(format!("log peaks: {e}")))?;

        if let Some(row) =
            sqlx::query("SELECT first_index, received_at FROM record_batches WHERE batch_root = $1")
                .bind(batch_root.to_string())
                .fetch_optional(&mut *tx)
                .await?
        {
            tx.commit().await?;
            return Ok(AppendedBatch {
                first_index: to_u64(row.try_get(0)?, "first index")?,
                leaf_hashes: leaves.to_vec(),
                batch_root,
                received_ms: to_u64(row.try_get(1)?, "received at")?,
                log_size: size,
                replayed: true,
            });
        }

        let head =
            sqlx::query("SELECT next_sequence, last_leaf_hash FROM agents WHERE address = $1")
                .bind(hex(agent))
                .fetch_optional(&mut *tx)
                .await?;
        let (next_sequence, last_leaf) = match head {
            Some(row) => (
                to_u64(row.try_get(0)?, "next sequence")?,
                parse::<B256>(&row.try_get::<String, _>(1)?, "last leaf hash")?,
            ),
            None => (0, B256::ZERO),
        };
        if first.sequence != next_sequence {
            return Err(Error::SequenceGap {
                agent: hex(agent),
                expected: next_sequence,
                got: first.sequence,
            });
        }
        if first.previous != last_leaf {
            return Err(Error::BrokenChain {
                agent: hex(agent),
                sequence: first.sequence,
            });
        }

        let mut frontier = Frontier::from_parts(size, peaks)
            .map_err(|e| Error::Corrupt(format!("log frontier: {e}")))?;
        let mut nodes = Vec::with_capacity(leaves.len() / 32 + 8);
        for leaf in leaves {
            frontier.push(*leaf, |id, hash| {
                if id.level < STORED_LEVEL {
                    return;
                }
                nodes.push(vec![
                    Value::Int(node_key(id)),
                    Value::Text(hash.to_string()),
                ]);
            });
        }
        let batch_size = leaves.len() as u64;
        let (min_ts, max_ts) = batch.records.iter().fold((u64::MAX, 0), |(min, max), r| {
            (min.min(r.timestamp_ms), max.max(r.timestamp_ms))
        });
        sqlx::query(
            "INSERT INTO record_batches (batch_root, agent, first_index, size, signature, \
             received_at, first_sequence, min_timestamp_ms, max_timestamp_ms, leaf_hashes, \
             encodings) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(batch_root.to_string())
        .bind(hex(agent))
        .bind(to_i64(size, "first index")?)
        .bind(to_i64(batch_size, "batch size")?)
        .bind(hex(batch.signature.as_bytes()))
        .bind(to_i64(received_ms, "received at")?)
        .bind(to_i64(first.sequence, "sequence")?)
        .bind(to_i64(min_ts, "timestamp")?)
        .bind(to_i64(max_ts, "timestamp")?)
        .bind(leaves.iter().flat_map(|leaf| leaf.0).collect::<Vec<u8>>())
        .bind(pack_encodings(&batch.records)?)
        .execute(&mut *tx)
        .await?;
        let mut keys = Vec::with_capacity(leaves.len());
        for (i, leaf) in leaves.iter().enumerate() {
            keys.push(vec![
                Value::Int(leaf_prefix(*leaf)),
                Value::Int(to_i64(size + i as u64, "leaf index")?),
            ]);
        }
        insert_rows(
            &mut tx,
            self.backend,
            "INSERT INTO leaf_keys (prefix, leaf_index)",
            2,
            keys,
        )
        .await?;
        insert_rows(
            &mut tx,
            self.backend,
            "INSERT INTO log_nodes (node_key, hash)",
            2,
            nodes,
        )
        .await?;

        let last = batch.records.last().unwrap_or(first);
        let last_leaf = *leaves.last().unwrap_or(&B256::ZERO);
        sqlx::query(
            "INSERT INTO agents (address, next_sequence, last_leaf_hash, record_count, \
             first_seen_ms, last_seen_ms) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (address) DO UPDATE SET next_sequence = excluded.next_sequence, \
             last_leaf_hash = excluded.last_leaf_hash, \
             record_count = agents.record_count + excluded.record_count, \
             last_seen_ms = CASE WHEN excluded.last_seen_ms > agents.last_seen_ms \
               THEN excluded.last_seen_ms ELSE agents.last_seen_ms END",
        )
        .bind(hex(agent))
        .bind(to_i64(last.sequence + 1, "sequence")?)
        .bind(last_leaf.to_string())
        .bind(to_i64(batch_size, "batch size")?)
        .bind(to_i64(min_ts, "timestamp")?)
        .bind(to_i64(max_ts, "timestamp")?)
        .execute(&mut *tx)
        .await?;
        let peaks =
            serde_json::to_string(frontier.peaks()).map_err(|e| Error::Corrupt(e.to_string()))?;
        sqlx::query("UPDATE log_state SET size = $1, peaks = $2 WHERE id = 1")
            .bind(to_i64(frontier.size(), "log size")?)
            .bind(peaks)
            .execute(&mut *tx)
            .await?;
        for ((what, salts), leaf) in logged.iter().zip(leaves) {
            let query = match what {
                ServiceRecord::Decision(request_id) => sqlx::query(
                    "UPDATE decisions SET logged_leaf = $1, record_salts = $2 WHERE request_id = $3",
                )
                .bind(leaf.to_string())
                .bind(salts.clone())
                .bind(request_id.to_string()),
                ServiceRecord::AdminAction(id) => sqlx::query(
                    "UPDATE admin_actions SET logged_leaf = $1, record_salts = $2 WHERE id = $3",
                )
                .bind(leaf.to_string())
                .bind(salts.clone())
                .bind(to_i64(*id, "action id")?),
            };
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(AppendedBatch {
            first_index: size,
            leaf_hashes: leaves.to_vec(),
            batch_root,
            received_ms,
            log_size: frontier.size(),
            replayed: false,
        })
    }

    /// The log's size and root.
    pub async fn log_head(&self) -> Result<(u64, B256)> {
        let row = sqlx::query("SELECT size, peaks FROM log_state WHERE id = 1")
            .fetch_one(&self.reader)
            .await?;
        let size = to_u64(row.try_get(0)?, "log size")?;
        let peaks: Vec<B256> = serde_json::from_str(&row.try_get::<String, _>(1)?)
            .map_err(|e| Error::Corrupt(format!("log peaks: {e}")))?;
        let frontier = Frontier::from_parts(size, peaks)
            .map_err(|e| Error::Corrupt(format!("log frontier: {e}")))?;
        Ok((size, frontier.root()))
    }

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
            let row = sqlx::query(
                "SELECT first_index, batch_root, leaf_hashes, encodings, signature \
                 FROM record_batches WHERE first_index <= $1 \
                 ORDER BY first_index DESC LIMIT 1",
            )
            .bind(index)
            .fetch_optional(&self.reader)
            .await?;
            let Some(row) = row else { continue };
            let batch = StoredBatch::from_row(&row)?;
            let position = to_u64(index, "leaf index")?.saturating_sub(batch.first_index) as usize;
            if batch.leaf(position) == Some(leaf_hash) {
                return Ok(Some((batch, position, row.try_get(4)?)));
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

    /// Records in log order, filtered (the compliance API's query). Reads the matching batches
    /// a few at a time, from the one holding the cursor on, and filters their records.
    pub async fn records(&self, filter: &RecordFilter) -> Result<Vec<LoggedRecord>> {
        const BATCHES_PER_QUERY: u32 = 8;
        let start = filter.after_index.map_or(0, |i| i.saturating_add(1));
        let mut sql = String::from(
            "SELECT first_index, batch_root, leaf_hashes, encodings FROM record_batches \
             WHERE first_index >= (SELECT COALESCE(MAX(first_index), 0) FROM record_batches \
             WHERE first_index <= $1) AND first_index > $2",
        );
        let mut binds = Vec::new();
        let mut clause = |sql: &mut String, condition: &str, value: Value| {
            binds.push(value);
            sql.push_str(&format!(" AND {condition} ${}", binds.len() + 2));
        };
        if let Some(agent) = filter.agent {
            clause(&mut sql, "agent =", Value::Text(hex(agent)));
        }
        if let Some(from) = filter.from_ms {
            let from = Value::Int(to_i64(from, "from")?);
            clause(&mut sql, "max_timestamp_ms >=", from);
        }
        if let Some(to) = filter.to_ms {
            clause(
                &mut sql,
                "min_timestamp_ms <",
                Value::Int(to_i64(to, "to")?),
            );
        }
        sql.push_str(&format!(" ORDER BY first_index LIMIT {BATCHES_PER_QUERY}"));
        let wanted = |r: &Record| {
            filter.model.as_ref().is_none_or(|m| *m == r.model)
                && filter.from_ms.is_none_or(|from| r.timestamp_ms >= from)
                && filter.to_ms.is_none_or(|to| r.timestamp_ms < to)
        };
        let mut found = Vec::new();
        let mut after_batch = -1i64;
        while found.len() < filter.limit as usize {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(to_i64(start, "cursor")?)
                .bind(after_batch);
            for value in &binds {
                query = value.clone().bind_to(query);
            }
            let rows = query.fetch_all(&self.reader).await?;
            for row in &rows {
                after_batch = row.try_get(0)?;
                let batch = StoredBatch::from_row(row)?;
                let logged = batch.leaves().zip(unpack_encodings(&batch.encodings)?);
                for (position, (leaf_hash, encoding)) in logged.enumerate() {
                    let index = batch.first_index + position as u64;
                    if index < start || found.len() == filter.limit as usize {
                        continue;
                    }
                    let record = Record::decode(encoding)?;
                    if wanted(&record) {
                        found.push(LoggedRecord {
                            index,
                            leaf_hash,
                            record,
                            batch_root: batch.batch_root,
                        });
                    }
                }
            }
            if rows.len() < BATCHES_PER_QUERY as usize {
                break;
            }
        }
        Ok(found)
    }

    /// Agents in address order, after `after` (the pagination cursor).
    pub async fn agents(&self, after: Option<Address>, limit: u32) -> Result<Vec<AgentSummary>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT address, record_count, next_sequence, last_leaf_hash, first_seen_ms, \
             last_seen_ms FROM agents WHERE address > $1 ORDER BY address LIMIT {limit}"
        )))
        .bind(after.map(hex).unwrap_or_default())
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(AgentSummary {
                    address: parse(&row.try_get::<String, _>(0)?, "agent")?,
                    record_count: to_u64(row.try_get(1)?, "record count")?,
                    next_sequence: to_u64(row.try_get(2)?, "next sequence")?,
                    last_leaf_hash: parse(&row.try_get::<String, _>(3)?, "leaf hash")?,
                    first_seen_ms: to_u64(row.try_get(4)?, "first seen")?,
                    last_seen_ms: to_u64(row.try_get(5)?, "last seen")?,
                })
            })
            .collect()
    }

    /// Where an agent's chain ends: (next sequence, last leaf hash), or (0, zero) if it has none.
    pub async fn agent_head(&self, agent: Address) -> Result<(u64, B256)> {
        let row =
            sqlx::query("SELECT next_sequence, last_leaf_hash FROM agents WHERE address = $1")
                .bind(hex(agent))
                .fetch_optional(&self.reader)
                .await?;
        match row {
            Some(row) => Ok((
                to_u64(row.try_get(0)?, "next sequence")?,
                parse(&row.try_get::<String, _>(1)?, "last leaf hash")?,
            )),
            None => Ok((0, B256::ZERO)),
        }
    }

    /// Stores a signed checkpoint (idempotent per size).
    pub async fn save_checkpoint(&self, checkpoint: &StoredCheckpoint, now: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (size) DO NOTHING",
        )
        .bind(to_i64(checkpoint.size, "size")?)
        .bind(checkpoint.root.to_string())
        .bind(checkpoint.note.clone())
        .bind(db_time(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The checkpoint at `size`, if one was signed.
    pub async fn checkpoint(&self, size: u64) -> Result<Option<StoredCheckpoint>> {
        let row = sqlx::query("SELECT size, root, note FROM checkpoints WHERE size = $1")
            .bind(to_i64(size, "size")?)
            .fetch_optional(&self.reader)
            .await?;
        row.map(checkpoint_from).transpose()
    }

    /// The largest signed checkpoint, with the time it was signed.
    pub async fn latest_checkpoint(&self) -> Result<Option<(StoredCheckpoint, u64)>> {
        let row = sqlx::query(
            "SELECT size, root, note, created_at FROM checkpoints ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| {
            let at = to_u64(row.try_get(3)?, "created at")?;
            Ok((checkpoint_from(row)?, at))
        })
        .transpose()
    }

    /// Records an anchoring transaction (idempotent per size).
    pub async fn save_anchor(&self, anchor: &Anchor, now: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO anchors (size, root, tx_hash, block_number, anchored_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (size) DO NOTHING",
        )
        .bind(to_i64(anchor.size, "size")?)
        .bind(anchor.root.to_string())
        .bind(anchor.tx_hash.to_string())
        .bind(to_i64(anchor.block_number, "block")?)
        .bind(db_time(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The largest anchored checkpoint.
    pub async fn latest_anchor(&self) -> Result<Option<Anchor>> {
        let row = sqlx::query(
            "SELECT size, root, tx_hash, block_number FROM anchors ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        row.map(anchor_from).transpose()
    }

    /// The anchor of exactly `size`, if that size was anchored.
    pub async fn anchor_at(&self, size: u64) -> Result<Option<Anchor>> {
        let row =
            sqlx::query("SELECT size, root, tx_hash, block_number FROM anchors WHERE size = $1")
                .bind(to_i64(size, "size")?)
                .fetch_optional(&self.reader)
                .await?;
        row.map(anchor_from).transpose()
    }

    /// Co-sign decisions not yet in the log, oldest first.
    pub async fn unlogged_decisions(&self, limit: u32) -> Result<Vec<UnloggedDecision>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT request_id, created_at, request, outcome, reasons, policy_version, \
             policy_hash, signature FROM decisions WHERE logged_leaf IS NULL \
             ORDER BY created_at, request_id LIMIT {limit}"
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|row| {
                let reasons: String = row.try_get(4)?;
                let decision = serde_json::json!({
                    "outcome": row.try_get::<String, _>(3)?,
                    "reasons": serde_json::from_str::<serde_json::Value>(&reasons)
                        .map_err(|e| Error::Corrupt(e.to_string()))?,
                    "policy_version": row.try_get::<i64, _>(5)?,
                    "policy_hash": row.try_get::<String, _>(6)?,
                    "cosigner_signature": row.try_get::<Option<String>, _>(7)?,
                });
                Ok(UnloggedDecision {
                    request_id: parse(&row.try_get::<String, _>(0)?, "request id")?,
                    created_at: to_u64(row.try_get(1)?, "created at")?,
                    request: row.try_get(2)?,
                    decision: decision.to_string(),
                })
            })
            .collect()
    }

    /// The leaf hash under which a decision was logged.
    pub async fn decision_leaf(&self, request_id: B256) -> Result<Option<B256>> {
        let row = sqlx::query("SELECT logged_leaf FROM decisions WHERE request_id = $1")
            .bind(request_id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        match row {
            Some(row) => row
                .try_get::<Option<String>, _>(0)?
                .map(|leaf| parse(&leaf, "logged leaf"))
                .transpose(),
            None => Ok(None),
        }
    }
}

/// What `leaf_keys` holds of a leaf hash: its first 8 bytes, as a big-endian signed integer.
fn leaf_prefix(leaf_hash: B256) -> i64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&leaf_hash[..8]);
    i64::from_be_bytes(prefix)
}

/// A batch as stored: where it starts in the log, and its records.
struct StoredBatch {
    first_index: u64,
    batch_root: B256,
    /// 32 bytes per record, in log order.
    leaf_hashes: Vec<u8>,
    /// Per record, the length of its encoding (4 bytes, big-endian) and the encoding.
    encodings: Vec<u8>,
}

impl StoredBatch {
    /// From a row whose first columns are `first_index, batch_root, leaf_hashes, encodings`.
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self> {
        Ok(Self {
            first_index: to_u64(row.try_get(0)?, "first index")?,
            batch_root: parse(&row.try_get::<String, _>(1)?, "batch root")?,
            leaf_hashes: row.try_get(2)?,
            encodings: row.try_get(3)?,
        })
    }

    fn leaf(&self, position: usize) -> Option<B256> {
        self.leaf_hashes
            .get(position * 32..position * 32 + 32)
            .map(B256::from_slice)
    }

    fn leaves(&self) -> impl Iterator<Item = B256> + '_ {
        self.leaf_hashes.chunks_exact(32).map(B256::from_slice)
    }
}

/// A batch's records' encodings as one value: per record, its length (4 bytes, big-endian)
/// and the encoding.
fn pack_encodings(records: &[Record]) -> Result<Vec<u8>> {
    let mut packed = Vec::with_capacity(records.iter().map(|r| 4 + r.encoded_len()).sum());
    for record in records {
        let encoding = record.encode()?;
        let len = u32::try_from(encoding.len())
            .map_err(|_| Error::Corrupt("a record's encoding exceeds 4 GiB".into()))?;
        packed.extend_from_slice(&len.to_be_bytes());
        packed.extend_from_slice(&encoding);
    }
    Ok(packed)
}

/// The encodings [`pack_encodings`] packed, in order.
fn unpack_encodings(mut packed: &[u8]) -> Result<Vec<&[u8]>> {
    let corrupt = || Error::Corrupt("a batch's packed encodings are truncated".into());
    let mut encodings = Vec::new();
    while !packed.is_empty() {
        let (len, rest) = packed.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_be_bytes(*len) as usize;
        let encoding = rest.get(..len).ok_or_else(corrupt)?;
        encodings.push(encoding);
        packed = &rest[len..];
    }
    Ok(encodings)
}

fn checkpoint_from(row: sqlx::any::AnyRow) -> Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        size: to_u64(row.try_get(0)?, "size")?,
        root: parse(&row.try_get::<String, _>(1)?, "root")?,
        note: row.try_get(2)?,
    })
}

fn anchor_from(row: sqlx::any::AnyRow) -> Result<Anchor> {
    Ok(Anchor {
        size: to_u64(row.try_get(0)?, "size")?,
        root: parse(&row.try_get::<String, _>(1)?, "root")?,
        tx_hash: parse(&row.try_get::<String, _>(2)?, "tx hash")?,
        block_number: to_u64(row.try_get(3)?, "block")?,
    })
}

/// The right to anchor, held by one server replica. On PostgreSQL a session advisory lock on a
/// connection kept for as long as the lock is held; on SQLite (one process) always granted.
#[derive(Debug)]
pub struct AnchoringLock {
    // In a Mutex only to make the lock `Sync` (workers are shared across await points); it is
    // only ever reached through `&mut self`, so it never blocks.
    connection: Option<std::sync::Mutex<sqlx::pool::PoolConnection<sqlx::Any>>>,
}

/// The advisory lock key: "chaperon" in ASCII.
const ANCHORING_LOCK_KEY: i64 = 0x6368_6170_6572_6f6e;

impl AnchoringLock {
    /// True while the lock's connection is alive (a dropped connection releases the lock).
    pub async fn still_held(&mut self) -> bool {
        match &mut self.connection {
            None => true,
            Some(conn) => match conn.get_mut() {
                Ok(conn) => sqlx::query("SELECT 1").execute(&mut **conn).await.is_ok(),
                Err(_) => false,
            },
        }
    }
}

impl Store {
    /// Takes the anchoring lock if no other replica holds it.
    pub async fn try_lock_anchoring(&self) -> Result<Option<AnchoringLock>> {
        match self.backend {
            Backend::Sqlite => Ok(Some(AnchoringLock { connection: None })),
            Backend::Postgres => {
                let mut conn = self.pool.acquire().await?;
                let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(ANCHORING_LOCK_KEY)
                    .fetch_one(&mut *conn)
                    .await?;
                if taken {
                    // Back in the pool the connection would keep the session lock with nobody
                    // using it: closing it on drop releases the lock with the worker.
                    conn.close_on_drop();
                }
                Ok(taken.then(|| AnchoringLock {
                    connection: Some(std::sync::Mutex::new(conn)),
                }))
            }
        }
    }
}
