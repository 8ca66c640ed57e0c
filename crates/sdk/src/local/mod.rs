//! The agent's local files: an SQLite file with its record chain, the durable outbox of signed
//! batches and the disclosure store's salts, and beside it the content file with the records'
//! raw content and the batches' bodies. Raw content lives here and nowhere else.
//!
//! The salts are the secret: a commitment hides short content ("yes", an amount, a name) only
//! while its salt is unknown, so every one of these files is readable by the agent's user
//! alone (0600), in a folder no other user can write to ([`private_files`]).

use std::{
    fs::File,
    io::ErrorKind,
    os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    str::FromStr,
    sync::{Arc, Mutex, PoisonError},
};

use chaperone_core::{Address, B256, BatchReceipt, CommitmentKind, Opening, Record, Salt};
use sqlx::{
    Row,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};
use zeroize::{Zeroize, Zeroizing};

use crate::{Error, Result};

mod files;
mod openings;

use files::{ContentFile, private_files};
use openings::{KINDS, Located, NO_METADATA, OPENING_LEN, PackedOpening};
pub(crate) use openings::{OutboxBatch, Stage, StagedRecord, StoredOpenings};

/// Queries find a record by its agent and sequence (indexed). A leaf hash alone is first
/// located in the batches' leaf hashes ([`LocalStore::locate`], migration 0004).
#[derive(Debug, Clone)]
pub(crate) struct LocalStore {
    pool: SqlitePool,
    content: Arc<ContentFile>,
}

fn column_u64(value: Option<i64>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

fn blob_to_b256(bytes: Vec<u8>) -> Result<B256> {
    B256::try_from(bytes.as_slice())
        .map_err(|_| Error::Local(sqlx::Error::Decode("a hash column is not 32 bytes".into())))
}

impl LocalStore {
    /// Opens (creating if needed) the file and migrates it.
    pub(crate) async fn open(path: &Path) -> Result<Self> {
        private_files(path)?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite:{}", path.display()))?
            .create_if_missing(true)
            // WAL + NORMAL: a committed batch survives a crash of the process (the power
            // failing may lose the last few milliseconds, which the chain check then reports).
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // `forget` must really erase: overwrite deleted content instead of freeing pages.
            .pragma("secure_delete", "on")
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../../migrations/sdk").run(&pool).await?;
        // A batch's body follows its records' content: the file ends with the last body.
        let end: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(body_offset + body_len), 0) FROM outbox")
                .fetch_one(&pool)
                .await?;
        let content = Arc::new(ContentFile::open(path, end as u64)?);
        Ok(Self { pool, content })
    }

    /// The agent's next sequence number and last leaf hash, as persisted.
    pub(crate) async fn chain_head(&self, agent: Address) -> Result<(u64, B256)> {
        let row = sqlx::query("SELECT next_sequence, previous FROM agent_chain WHERE agent = $1")
            .bind(agent.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok((
                row.try_get::<i64, _>(0)? as u64,
                blob_to_b256(row.try_get(1)?)?,
            )),
            None => Ok((0, B256::ZERO)),
        }
    }

    /// Persists a signed batch, its records' openings and the new chain head in one
    /// transaction; returns the batch's id. `content` is the buffer of the stage the records
    /// come from.
    pub(crate) async fn persist_batch(
        &self,
        agent: Address,
        records: &[StagedRecord],
        content: &Arc<Zeroizing<Vec<u8>>>,
        body: &Arc<[u8]>,
        now_ms: u64,
    ) -> Result<i64> {
        let (first, last) = match (records.first(), records.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => return Err(Error::Closed),
        };
        let agent_text = agent.to_string();
        // The records' content is one run of the stage's buffer: it goes to the file as is,
        // followed by the batch's body (written once, not twice as through SQLite's WAL).
        let range = first.offset..last.offset + last.content_len();
        let start = self.content.end();
        let body_offset = start + range.len() as u64;
        let end = body_offset + body.len() as u64;
        self.content
            .write_batch(content.clone(), range, body.clone(), start)
            .await?;
        let mut tx = self.pool.begin().await?;
        let batch_id: i64 = sqlx::query(
            "INSERT INTO outbox (agent, first_sequence, size, body, created_ms, body_offset, \
             body_len) VALUES ($1, $2, $3, x'', $4, $5, $6) RETURNING batch_id",
        )
        .bind(&agent_text)
        .bind(first.record.sequence as i64)
        .bind(records.len() as i64)
        .bind(now_ms as i64)
        .bind(body_offset as i64)
        .bind(body.len() as i64)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        let leaf_hashes: Vec<u8> = records.iter().flat_map(|r| r.leaf_hash.0).collect();
        let mut openings = Zeroizing::new(Vec::with_capacity(records.len() * OPENING_LEN));
        for r in records {
            for salt in &r.salts {
                openings.extend_from_slice(&salt.0);
            }
            let metadata_len = r.metadata_len.map_or(Ok(NO_METADATA), u32::try_from);
            for len in [
                u32::try_from(r.input_len),
                u32::try_from(r.output_len),
                metadata_len,
            ] {
                let len = len.map_err(|_| Error::Invalid("content over 4 GiB".into()))?;
                openings.extend_from_slice(&len.to_be_bytes());
            }
        }
        let models: Vec<&str> = records.iter().map(|r| r.record.model.as_str()).collect();
        let models = serde_json::to_string(&models)
            .map_err(|e| Error::Local(sqlx::Error::Encode(Box::new(e))))?;
        sqlx::query(
            "INSERT INTO batch_openings (batch_id, agent, first_sequence, leaf_hashes, openings, \
             models, content_offset) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(batch_id)
        .bind(&agent_text)
        .bind(first.record.sequence as i64)
        .bind(leaf_hashes)
        .bind(openings.as_slice())
        .bind(models)
        .bind(start as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO agent_chain (agent, next_sequence, previous) VALUES ($1, $2, $3) \
             ON CONFLICT (agent) DO UPDATE SET next_sequence = excluded.next_sequence, \
             previous = excluded.previous",
        )
        .bind(&agent_text)
        .bind(last.record.sequence as i64 + 1)
        .bind(last.leaf_hash.as_slice())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.content.committed(end);
        Ok(batch_id)
    }

    /// The agent's oldest undelivered, unrejected batches, in delivery order.
    pub(crate) async fn undelivered(&self, agent: Address, limit: i64) -> Result<Vec<OutboxBatch>> {
        let rows = sqlx::query(
            "SELECT batch_id, first_sequence, size, body, body_offset, body_len FROM outbox \
             WHERE agent = $1 AND delivered_ms IS NULL AND rejected IS NULL \
             ORDER BY batch_id LIMIT $2",
        )
        .bind(agent.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut batches = Vec::with_capacity(rows.len());
        for row in rows {
            let body = match (column_u64(row.try_get(4)?), column_u64(row.try_get(5)?)) {
                (Some(offset), Some(len)) => {
                    std::mem::take(&mut *self.content.read_at(offset, len as usize).await?)
                }
                // A batch from before the content file: its body is in the row.
                _ => row.try_get(3)?,
            };
            batches.push(OutboxBatch {
                batch_id: row.try_get(0)?,
                first_sequence: row.try_get::<i64, _>(1)? as u64,
                size: row.try_get::<i64, _>(2)? as u64,
                body,
            });
        }
        Ok(batches)
    }

    /// How many of the agent's records wait in the outbox, and its first rejected batch.
    pub(crate) async fn backlog(&self, agent: Address) -> Result<(u64, Option<(i64, String)>)> {
        let waiting: i64 = sqlx::query(
            "SELECT COALESCE(SUM(size), 0) FROM outbox \
             WHERE agent = $1 AND delivered_ms IS NULL AND rejected IS NULL",
        )
        .bind(agent.to_string())
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        let rejected = sqlx::query(
            "SELECT batch_id, rejected FROM outbox WHERE agent = $1 AND rejected IS NOT NULL \
             ORDER BY batch_id LIMIT 1",
        )
        .bind(agent.to_string())
        .fetch_optional(&self.pool)
        .await?
        .map(|row| Ok::<_, Error>((row.try_get(0)?, row.try_get(1)?)))
        .transpose()?;
        Ok((waiting as u64, rejected))
    }

    /// Records the server's receipt for a batch.
    pub(crate) async fn mark_delivered(
        &self,
        batch_id: i64,
        receipt: &BatchReceipt,
        now_ms: u64,
    ) -> Result<()> {
        let json = serde_json::to_string(receipt)
            .map_err(|e| Error::Local(sqlx::Error::Encode(Box::new(e))))?;
        sqlx::query(
            "UPDATE outbox SET delivered_ms = $1, first_index = $2, receipt = $3 WHERE batch_id = $4",
        )
        .bind(now_ms as i64)
        .bind(receipt.first_index as i64)
        .bind(json)
        .bind(batch_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a batch as refused for good.
    pub(crate) async fn mark_rejected(&self, batch_id: i64, message: &str) -> Result<()> {
        sqlx::query("UPDATE outbox SET rejected = $1 WHERE batch_id = $2")
            .bind(message)
            .bind(batch_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A delivered record's receipt and its index within the batch.
    pub(crate) async fn receipt(
        &self,
        agent: Address,
        sequence: u64,
        leaf_hash: B256,
    ) -> Result<Option<(BatchReceipt, u64)>> {
        let row = sqlx::query(
            "SELECT o.receipt, $2 - o.first_sequence FROM outbox o \
             JOIN batch_openings b ON b.batch_id = o.batch_id \
             WHERE o.agent = $1 AND o.first_sequence <= $2 AND o.first_sequence + o.size > $2 \
             AND substr(b.leaf_hashes, 32 * ($2 - o.first_sequence) + 1, 32) = $3 \
             AND o.receipt IS NOT NULL",
        )
        .bind(agent.to_string())
        .bind(sequence as i64)
        .bind(leaf_hash.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let json: String = row.try_get(0)?;
            let receipt = serde_json::from_str(&json)
                .map_err(|e| Error::Local(sqlx::Error::Decode(Box::new(e))))?;
            Ok((receipt, row.try_get::<i64, _>(1)? as u64))
        })
        .transpose()
    }

    /// Where a record lies, found in the batches' leaf hashes, newest batch first (the
    /// likeliest to be disclosed). A scan of 32 bytes per record: only `disclose` and `forget`
    /// look a record up by its hash alone.
    async fn locate(&self, leaf_hash: B256) -> Result<Option<Located>> {
        const BATCHES_PER_QUERY: i64 = 64;
        let mut before = i64::MAX;
        loop {
            let rows = sqlx::query(
                "SELECT batch_id, agent, first_sequence, leaf_hashes FROM batch_openings \
                 WHERE batch_id < $1 ORDER BY batch_id DESC LIMIT $2",
            )
            .bind(before)
            .bind(BATCHES_PER_QUERY)
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                before = row.try_get(0)?;
                let hashes: &[u8] = row.try_get(3)?;
                if let Some(position) = hashes
                    .chunks_exact(32)
                    .position(|hash| hash == leaf_hash.as_slice())
                {
                    let first: i64 = row.try_get(2)?;
                    return Ok(Some(Located {
                        batch_id: before,
                        position,
                        agent: row.try_get(1)?,
                        sequence: first + position as i64,
                    }));
                }
            }
            if (rows.len() as i64) < BATCHES_PER_QUERY {
                return Ok(None);
            }
        }
    }

    /// A batch's packed openings and where its content starts, or `None` for a batch recorded
    /// before SDK migration 0004 (its openings are rows of `openings`).
    async fn batch_openings(&self, batch_id: i64) -> Result<Option<(Zeroizing<Vec<u8>>, u64)>> {
        let row =
            sqlx::query("SELECT openings, content_offset FROM batch_openings WHERE batch_id = $1")
                .bind(batch_id)
                .fetch_one(&self.pool)
                .await?;
        let openings: Option<Vec<u8>> = row.try_get(0)?;
        let offset = column_u64(row.try_get(1)?);
        Ok(openings
            .zip(offset)
            .map(|(o, offset)| (Zeroizing::new(o), offset)))
    }

    /// The openings of a record (whatever `forget` left).
    pub(crate) async fn openings(&self, leaf_hash: B256) -> Result<Option<StoredOpenings>> {
        let Some(located) = self.locate(leaf_hash).await? else {
            return Ok(None);
        };
        let Some((packed, batch_offset)) = self.batch_openings(located.batch_id).await? else {
            return self.legacy_openings(&located, leaf_hash).await;
        };
        let (opening, offset) = PackedOpening::find(&packed, located.position, batch_offset)?;
        if opening.forgotten() {
            return Ok(Some(StoredOpenings {
                openings: Vec::new(),
                forgotten: true,
            }));
        }
        let content = self.content.read_at(offset, opening.content_len()).await?;
        let mut openings = Vec::new();
        let mut position = 0;
        for (i, kind) in KINDS.into_iter().enumerate() {
            let Some(len) = opening.lens[i] else { continue };
            let bytes = content[position..position + len].to_vec();
            position += len;
            openings.push(Opening::from_parts(kind, Salt(opening.salts[i]), bytes));
        }
        Ok(Some(StoredOpenings {
            openings,
            forgotten: false,
        }))
    }

    /// The openings of a record from before SDK migration 0004: a row of its own, with its
    /// content in the content file or, from before migration 0002, in the row.
    async fn legacy_openings(
        &self,
        located: &Located,
        leaf_hash: B256,
    ) -> Result<Option<StoredOpenings>> {
        let row = sqlx::query(
            "SELECT input_salt, output_salt, metadata_salt, content_offset, input_len, \
             output_len, metadata_len, input, output, metadata FROM openings \
             WHERE agent = $1 AND sequence = $2 AND leaf_hash = $3",
        )
        .bind(&located.agent)
        .bind(located.sequence)
        .bind(leaf_hash.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let lens = [
            column_u64(row.try_get(4)?),
            column_u64(row.try_get(5)?),
            column_u64(row.try_get(6)?),
        ];
        // The record's content lies in one run of the content file: input, output, metadata.
        let content = match column_u64(row.try_get(3)?) {
            Some(offset) => {
                let total = lens.iter().flatten().sum::<u64>() as usize;
                Some(self.content.read_at(offset, total).await?)
            }
            None => None,
        };
        let mut openings = Vec::new();
        let mut forgotten = false;
        let mut position = 0;
        for (i, kind) in KINDS.into_iter().enumerate() {
            let salt: Option<Vec<u8>> = row.try_get(i)?;
            let bytes = match (&content, lens[i]) {
                (Some(content), Some(len)) => {
                    let bytes = content[position..position + len as usize].to_vec();
                    position += len as usize;
                    Some(bytes)
                }
                (Some(_), None) => None,
                // A row from before the content file: its content is in the row.
                (None, _) => row.try_get::<Option<Vec<u8>>, _>(7 + i)?,
            };
            match (salt, bytes) {
                (Some(salt), Some(bytes)) => {
                    let salt: [u8; 32] = salt.try_into().map_err(|_| {
                        Error::Local(sqlx::Error::Decode("a salt is not 32 bytes".into()))
                    })?;
                    openings.push(Opening::from_parts(kind, Salt(salt), bytes));
                }
                (None, None) if kind == CommitmentKind::Metadata => {}
                _ => forgotten = true,
            }
        }
        Ok(Some(StoredOpenings {
            openings,
            forgotten,
        }))
    }

    /// Deletes a record's salts and overwrites its content (crypto-shredding); false if
    /// unknown.
    pub(crate) async fn forget(&self, leaf_hash: B256) -> Result<bool> {
        let Some(located) = self.locate(leaf_hash).await? else {
            return Ok(false);
        };
        let erase = match self.batch_openings(located.batch_id).await? {
            Some((mut packed, batch_offset)) => {
                let (opening, offset) =
                    PackedOpening::find(&packed, located.position, batch_offset)?;
                let salts = located.position * OPENING_LEN;
                packed[salts..salts + 96].zeroize();
                sqlx::query("UPDATE batch_openings SET openings = $1 WHERE batch_id = $2")
                    .bind(packed.as_slice())
                    .bind(located.batch_id)
                    .execute(&self.pool)
                    .await?;
                Some((offset, opening.content_len()))
            }
            None => self.forget_legacy(&located, leaf_hash).await?,
        };
        if let Some((offset, len)) = erase {
            self.content.erase(offset, len).await?;
        }
        // The write-ahead log still holds the pages as they were before: fold it into the
        // database (where secure_delete zeroed the old salts and content) and empty it. It
        // waits (busy_timeout) for other connections' reads and writes to end; if they never
        // do, the log keeps the old salts, and saying so lets the caller forget again.
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.pool)
            .await?;
        if busy != 0 {
            return Err(Error::Local(sqlx::Error::Io(std::io::Error::new(
                ErrorKind::WouldBlock,
                "the record is forgotten, but SQLite's write-ahead log, kept busy by other \
                 connections, still holds a copy of its salts: forget it again",
            ))));
        }
        Ok(true)
    }

    /// Deletes the salts (and any content) of a row from before SDK migration 0004; returns
    /// where its content lies in the content file, if it is there.
    async fn forget_legacy(
        &self,
        located: &Located,
        leaf_hash: B256,
    ) -> Result<Option<(u64, usize)>> {
        let row = sqlx::query(
            "SELECT content_offset, input_len + output_len + COALESCE(metadata_len, 0) \
             FROM openings WHERE agent = $1 AND sequence = $2 AND leaf_hash = $3",
        )
        .bind(&located.agent)
        .bind(located.sequence)
        .bind(leaf_hash.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        sqlx::query(
            "UPDATE openings SET input_salt = NULL, input = NULL, output_salt = NULL, \
             output = NULL, metadata_salt = NULL, metadata = NULL \
             WHERE agent = $1 AND sequence = $2 AND leaf_hash = $3",
        )
        .bind(&located.agent)
        .bind(located.sequence)
        .bind(leaf_hash.as_slice())
        .execute(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => column_u64(row.try_get(0)?)
                .zip(column_u64(row.try_get(1)?))
                .map(|(offset, len)| (offset, len as usize)),
            None => None,
        })
    }

    /// The local records of an agent, oldest first: (sequence, leaf hash, model).
    pub(crate) async fn records(&self, agent: Address) -> Result<Vec<(u64, B256, String)>> {
        // Recorded before SDK migration 0004: a row each.
        let mut records = sqlx::query(
            "SELECT sequence, leaf_hash, model FROM openings WHERE agent = $1 ORDER BY sequence",
        )
        .bind(agent.to_string())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| {
            Ok((
                row.try_get::<i64, _>(0)? as u64,
                blob_to_b256(row.try_get(1)?)?,
                row.try_get(2)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
        let batches = sqlx::query(
            "SELECT first_sequence, leaf_hashes, models FROM batch_openings \
             WHERE agent = $1 AND models IS NOT NULL ORDER BY first_sequence",
        )
        .bind(agent.to_string())
        .fetch_all(&self.pool)
        .await?;
        for row in batches {
            let first = row.try_get::<i64, _>(0)? as u64;
            let hashes: Vec<u8> = row.try_get(1)?;
            let models: Vec<String> = serde_json::from_str(row.try_get(2)?)
                .map_err(|e| Error::Local(sqlx::Error::Decode(Box::new(e))))?;
            for (i, (hash, model)) in hashes.chunks_exact(32).zip(models).enumerate() {
                records.push((first + i as u64, blob_to_b256(hash.to_vec())?, model));
            }
        }
        Ok(records)
    }
}
