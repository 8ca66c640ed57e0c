//! Appending signed batches: one transaction under the log's lock checks the agent's chain,
//! stores the batch row, its leaf keys and the tree's new nodes, and marks the policy
//! service's own records (decisions, administrative actions) as logged.

use chaperone_core::{B256, Frontier, MerkleLog, RECEIVE_TIME_TOLERANCE_MS, SignedBatch};
use sqlx::Row;

use super::{
    AppendedBatch, STORED_LEVEL, ServiceRecord, UnloggedDecision, Value, insert_rows, leaf_prefix,
    node_key, pack_encodings, to_i64, to_u64,
};
use crate::{
    Backend, Error, Result, Store,
    store::{hex, parse},
};

impl Store {
    /// Appends a verified batch (`leaves` = its records' leaf hashes, from
    /// [`SignedBatch::verify`]) to the log in one transaction, after checking that it continues
    /// its agent's chain: first sequence = the agent's next, `previous` = its last leaf hash.
    /// The exact same batch again returns where it landed and writes nothing. `decisions` marks
    /// co-sign decisions (what each record commits to, and its salts JSON) as logged by this
    /// batch, in the same transaction, and keeps each record's opening (a re-decided request
    /// keeps every record's).
    pub async fn append_batch(
        &self,
        batch: &SignedBatch,
        leaves: &[B256],
        received_ms: u64,
        decisions: &[(UnloggedDecision, String)],
    ) -> Result<AppendedBatch> {
        let logged: Vec<(ServiceRecord, String)> = decisions
            .iter()
            .map(|(d, salts)| (ServiceRecord::Decision(d.request_id), salts.clone()))
            .collect();
        let contents: Vec<&UnloggedDecision> = decisions.iter().map(|(d, _)| d).collect();
        self.append_logged(batch, leaves, received_ms, &logged, &contents)
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
        self.append_logged(batch, leaves, received_ms, logged, &[])
            .await
    }

    /// Appends `batch`, marking `logged` as logged; `contents` are the decisions' contents, in
    /// the order of the decisions among `logged`.
    async fn append_logged(
        &self,
        batch: &SignedBatch,
        leaves: &[B256],
        received_ms: u64,
        logged: &[(ServiceRecord, String)],
        contents: &[&UnloggedDecision],
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

        // Received no earlier than the log's last batch: a clock behind it (skew, another
        // replica after a failover) must not date a later batch before an earlier one, or an
        // honest evidence pack's chain check fails (fourth red-team review of issue 29, G).
        let last_received: Option<i64> =
            sqlx::query_scalar("SELECT MAX(received_at) FROM record_batches")
                .fetch_one(&mut *tx)
                .await?;
        let clock_ms = received_ms;
        let (min_ts, max_ts) = batch.records.iter().fold((u64::MAX, 0), |(min, max), r| {
            (min.min(r.timestamp_ms), max.max(r.timestamp_ms))
        });
        let mut received_ms = match last_received {
            Some(last) => received_ms.max(to_u64(last, "received at")?),
            None => received_ms,
        };
        self.note_clock_ahead(clock_ms, received_ms);
        // The policy service's records (decisions, administrative actions) are signed with the
        // time of what they record and logged after it: a batch dated with a tick's start, or
        // by a replica whose clock is behind the deciding one's, is received no earlier than
        // that time, so a verifier can refuse a decision record received before its period or
        // before the time it was signed with (fifth red-team review of issue 29). An agent's
        // own timestamps are its claim, never a receive time.
        if !logged.is_empty() {
            received_ms = received_ms.max(max_ts);
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
        let mut contents = contents.iter();
        for ((what, salts), leaf) in logged.iter().zip(leaves) {
            let query = match what {
                ServiceRecord::Decision(request_id) => {
                    let content = contents.next();
                    let revision = content.map_or(-1, |c| c.revision);
                    if let Some(content) = content {
                        sqlx::query(
                            "INSERT INTO decision_records \
                             (leaf_hash, request_id, request, decision, record_salts) \
                             VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(leaf.to_string())
                        .bind(request_id.to_string())
                        .bind(content.request.as_str())
                        .bind(content.decision.as_str())
                        .bind(salts.clone())
                        .execute(&mut *tx)
                        .await?;
                    }
                    // Marked logged only if not re-decided since it was read (its record
                    // commits to what was read): else the new verdict is logged next.
                    sqlx::query(
                        "UPDATE decisions SET logged_leaf = $1, record_salts = $2 \
                         WHERE request_id = $3 AND ($4 < 0 OR revision = $4)",
                    )
                    .bind(leaf.to_string())
                    .bind(salts.clone())
                    .bind(request_id.to_string())
                    .bind(revision)
                }
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
}

impl Store {
    /// Warns when the log's receive times are held ahead of this server's clock (`clock_ms`) by
    /// more than [`RECEIVE_TIME_TOLERANCE_MS`]: a clock that ran ahead (or this replica's is
    /// behind another's) dates every batch late until real time catches up, and bundles of
    /// those batches fail a verifier's anchoring bound. Once per episode: again only after the
    /// receive times came back within the tolerance (fifth red-team review of issue 29).
    fn note_clock_ahead(&self, clock_ms: u64, received_ms: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let ahead_ms = received_ms.saturating_sub(clock_ms);
        if ahead_ms <= RECEIVE_TIME_TOLERANCE_MS {
            self.clock_ahead_warned.store(false, Relaxed);
            return;
        }
        if !self.clock_ahead_warned.swap(true, Relaxed) {
            tracing::warn!(
                ahead_ms,
                received_ms,
                clock_ms,
                "the log's receive times are held {} s ahead of this server's clock: a clock \
                 ran ahead (or this replica's is behind), every batch is dated at the log's \
                 last until real time catches up, and evidence bundles of these batches may \
                 fail the anchoring bound; check the servers' time synchronisation",
                ahead_ms / 1000
            );
        }
    }
}
