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

//!
//! By concern: `ingestion` appends batches, `proofs` serves inclusion and consistency proofs
//! and finds a record by its leaf hash, `listing` reads records and agents for the compliance
//! API, `service` holds the policy service's own records waiting to be logged, and `anchoring`
//! the checkpoints, their anchors and the anchoring lock.

mod anchoring;
mod ingestion;
mod listing;
mod proofs;
mod service;

use chaperone_core::{Address, B256, NodeId, Record};
use sqlx::Row;

pub use anchoring::AnchoringLock;
pub use service::{DecisionOpening, ServiceRecord, UnloggedDecision};

use crate::{Backend, Error, Result, store::parse};

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
    /// When the server received its batch (ms; for the policy service's own records, the
    /// time of the newest decision or action in the batch). Unlike the record's timestamp,
    /// the agent does not choose it.
    pub received_ms: u64,
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

/// Which records to read by when the server received them (the evidence pack's selection:
/// an agent chooses its records' timestamps, not when they arrived).
#[derive(Debug, Clone, Default)]
pub struct ReceivedFilter {
    /// One agent's (none: every agent's).
    pub agent: Option<Address>,
    /// Batches received at or after this time (ms).
    pub from_ms: u64,
    /// Batches received before this time (ms).
    pub to_ms: u64,
    /// The cursor: (receive time, first log index) of the last batch already read.
    pub after: Option<(u64, u64)>,
    /// At most this many batches.
    pub batches: u32,
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

/// What `leaf_keys` holds of a leaf hash: its first 8 bytes, as a big-endian signed integer.
fn leaf_prefix(leaf_hash: B256) -> i64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&leaf_hash[..8]);
    i64::from_be_bytes(prefix)
}

/// The columns [`StoredBatch::from_row`] reads, in its order.
const BATCH_COLUMNS: &str = "first_index, batch_root, leaf_hashes, encodings, received_at";

/// A batch as stored: where it starts in the log, and its records.
struct StoredBatch {
    first_index: u64,
    batch_root: B256,
    received_ms: u64,
    /// 32 bytes per record, in log order.
    leaf_hashes: Vec<u8>,
    /// Per record, the length of its encoding (4 bytes, big-endian) and the encoding.
    encodings: Vec<u8>,
}

impl StoredBatch {
    /// From a row whose first columns are [`BATCH_COLUMNS`].
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self> {
        Ok(Self {
            first_index: to_u64(row.try_get(0)?, "first index")?,
            batch_root: parse(&row.try_get::<String, _>(1)?, "batch root")?,
            leaf_hashes: row.try_get(2)?,
            encodings: row.try_get(3)?,
            received_ms: to_u64(row.try_get(4)?, "received at")?,
        })
    }

    /// Its records with their leaf hashes and log indexes, in log order.
    fn records(&self) -> Result<Vec<LoggedRecord>> {
        let encodings = unpack_encodings(&self.encodings)?;
        self.leaves()
            .zip(encodings)
            .enumerate()
            .map(|(position, (leaf_hash, encoding))| {
                Ok(LoggedRecord {
                    index: self.first_index + position as u64,
                    leaf_hash,
                    record: Record::decode(encoding)?,
                    batch_root: self.batch_root,
                    received_ms: self.received_ms,
                })
            })
            .collect()
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
