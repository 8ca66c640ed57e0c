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

/// A committed record waiting to be persisted: the record, its salts, and where its content
/// lies in its stage's buffer (input, output and metadata, one after the other).
#[derive(Debug)]
pub(crate) struct StagedRecord {
    pub(crate) record: Record,
    pub(crate) leaf_hash: B256,
    /// Input, output and metadata salts (the last unused without metadata).
    pub(crate) salts: [Salt; 3],
    pub(crate) offset: usize,
    pub(crate) input_len: usize,
    pub(crate) output_len: usize,
    pub(crate) metadata_len: Option<usize>,
}

impl StagedRecord {
    fn content_len(&self) -> usize {
        self.input_len + self.output_len + self.metadata_len.unwrap_or(0)
    }
}

/// Records committed and not yet persisted, with all their content in one buffer. `record`
/// appends to it; the batcher swaps the whole stage for an empty one and, once it is
/// persisted, zeroes it and keeps it for the next swap. Content gets no allocation of its own
/// per record: with glibc's allocator, the batcher freeing what the caller's thread had
/// allocated made the caller's next allocations wait for the arena lock, and tripled the p99
/// of `record`.
#[derive(Default)]
pub(crate) struct Stage {
    pub(crate) records: Vec<StagedRecord>,
    pub(crate) content: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Stage {
    // Sizes only: the content is raw model input and output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("records", &self.records.len())
            .field("content_bytes", &self.content.len())
            .finish()
    }
}

impl Stage {
    pub(crate) fn push(
        &mut self,
        record: Record,
        leaf_hash: B256,
        salts: [Salt; 3],
        input: &[u8],
        output: &[u8],
        metadata: Option<&[u8]>,
    ) {
        let offset = self.content.len();
        self.content.extend_from_slice(input);
        self.content.extend_from_slice(output);
        if let Some(m) = metadata {
            self.content.extend_from_slice(m);
        }
        self.records.push(StagedRecord {
            record,
            leaf_hash,
            salts,
            offset,
            input_len: input.len(),
            output_len: output.len(),
            metadata_len: metadata.map(<[u8]>::len),
        });
    }

    /// Empties the stage, zeroing its content, and keeps the buffers' capacity.
    pub(crate) fn clear(&mut self) {
        self.records.clear();
        self.content.as_mut_slice().zeroize();
        self.content.clear();
    }
}

/// A signed batch not yet delivered.
#[derive(Debug, Clone)]
pub(crate) struct OutboxBatch {
    pub(crate) batch_id: i64,
    pub(crate) first_sequence: u64,
    pub(crate) size: u64,
    pub(crate) body: Vec<u8>,
}

/// The openings of one record, as far as they were not forgotten.
#[derive(Debug)]
pub(crate) struct StoredOpenings {
    pub(crate) openings: Vec<Opening>,
    pub(crate) forgotten: bool,
}

/// Bytes per record in a batch's packed openings: three salts, then three content lengths.
const OPENING_LEN: usize = 3 * 32 + 3 * 4;
/// The metadata length of a record without metadata.
const NO_METADATA: u32 = u32::MAX;
const KINDS: [CommitmentKind; 3] = [
    CommitmentKind::Input,
    CommitmentKind::Output,
    CommitmentKind::Metadata,
];

/// Where a record lies: its batch and place in it, its agent and sequence.
#[derive(Debug)]
struct Located {
    batch_id: i64,
    position: usize,
    agent: String,
    sequence: i64,
}

/// One record's part of a batch's packed openings.
struct PackedOpening {
    salts: [[u8; 32]; 3],
    /// Input, output and metadata lengths (`None`: no metadata).
    lens: [Option<usize>; 3],
}

impl PackedOpening {
    /// Record `position`'s opening in `packed`, and where its content lies in the content
    /// file (after the content of the batch's records before it, from `batch_offset`).
    fn find(packed: &[u8], position: usize, batch_offset: u64) -> Result<(Self, u64)> {
        let corrupt = || Error::Local(sqlx::Error::Decode("packed openings are truncated".into()));
        let mut offset = batch_offset;
        for (i, bytes) in packed.chunks(OPENING_LEN).enumerate() {
            let bytes: &[u8; OPENING_LEN] = bytes.try_into().map_err(|_| corrupt())?;
            let mut salts = [[0u8; 32]; 3];
            for (k, salt) in salts.iter_mut().enumerate() {
                salt.copy_from_slice(&bytes[32 * k..32 * (k + 1)]);
            }
            let mut lens = [None; 3];
            for (k, len) in lens.iter_mut().enumerate() {
                let at = 96 + 4 * k;
                let value =
                    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
                *len = (value != NO_METADATA).then_some(value as usize);
            }
            let opening = Self { salts, lens };
            if i == position {
                return Ok((opening, offset));
            }
            offset += opening.content_len() as u64;
        }
        Err(corrupt())
    }

    fn content_len(&self) -> usize {
        self.lens.iter().flatten().sum()
    }

    /// `forget` zeroes the salts; a random salt is never all zeros.
    fn forgotten(&self) -> bool {
        self.salts[0] == [0u8; 32]
    }
}

/// Queries find a record by its agent and sequence (indexed). A leaf hash alone is first
/// located in the batches' leaf hashes ([`LocalStore::locate`], migration 0004).
#[derive(Debug, Clone)]
pub(crate) struct LocalStore {
    pool: SqlitePool,
    content: Arc<ContentFile>,
}

/// Only the agent's user may read or write them.
const PRIVATE_FILE: u32 = 0o600;
/// Only the agent's user may list, create or remove files in it.
const PRIVATE_FOLDER: u32 = 0o700;

/// `<data file><suffix>`: SQLite's `-wal` and `-shm`, the content file's `-content`.
fn beside(data_file: &Path, suffix: &str) -> PathBuf {
    let mut name = data_file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io_error(what: String, e: &std::io::Error) -> Error {
    Error::Local(sqlx::Error::Io(std::io::Error::new(
        e.kind(),
        format!("{what}: {e}"),
    )))
}

/// Makes the data file's folder and files private to the agent's user before SQLite opens
/// them, without touching the process's umask (this is a library).
///
/// - A missing folder is created 0700. An existing one is left as its owner made it, unless
///   other users can write to it: refused. (Even with the sticky bit, as in `/tmp`: another
///   user could create `agent.db-wal` there before SQLite does, and read every salt written
///   to it.)
/// - The database file is created 0600 here rather than by SQLite (0644): SQLite gives its
///   `-wal` and `-shm` the database's mode.
/// - Files an older SDK left readable by others are made 0600 (by path: opening and closing
///   a file SQLite has open would drop its locks).
fn private_files(data_file: &Path) -> Result<()> {
    let folder = match data_file.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let metadata = match std::fs::metadata(folder) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(PRIVATE_FOLDER)
                .create(folder)
                .map_err(|e| io_error(format!("creating {}", folder.display()), &e))?;
            std::fs::metadata(folder)
        }
        found => found,
    }
    .map_err(|e| io_error(format!("reading {}", folder.display()), &e))?;
    if metadata.permissions().mode() & 0o002 != 0 {
        return Err(Error::NotPrivate {
            path: folder.to_owned(),
            detail: "other users can create and replace files in this folder, where the \
                     agent's salts and content would be; keep the data file in a folder only \
                     you can write to (`chmod o-w`, or better `chmod 700`)"
                .into(),
        });
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .open(data_file)
    {
        // A new, empty file: SQLite makes it a database.
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_error(format!("creating {}", data_file.display()), &e)),
    }
    for path in [
        data_file.to_owned(),
        beside(data_file, "-wal"),
        beside(data_file, "-shm"),
        beside(data_file, "-journal"),
        ContentFile::path(data_file),
    ] {
        let mode = match std::fs::metadata(&path) {
            Ok(metadata) => metadata.permissions().mode(),
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(format!("reading {}", path.display()), &e)),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(PRIVATE_FILE))
                .map_err(|e| Error::NotPrivate {
                    path: path.clone(),
                    detail: format!(
                        "its mode is {:o} and it could not be made 0600 ({e}); is it another \
                         user's?",
                        mode & 0o777
                    ),
                })?;
        }
    }
    Ok(())
}

/// The content file, beside the SQLite file: each batch's records' input, output and metadata
/// bytes, then the batch's request body, appended; SQLite keeps where they lie. (Through
/// SQLite's write-ahead log every byte was copied four times and its pages zeroed.) A batch's
/// bytes are written before the transaction that references them commits; whatever lies past
/// the last committed batch is cut off when the file is opened.
#[derive(Debug)]
struct ContentFile {
    file: File,
    /// Where the next batch's content goes: the end of the last committed batch.
    end: Mutex<u64>,
}

impl ContentFile {
    /// `<data file>-content`, like SQLite's own `-wal` beside it.
    fn path(data_file: &Path) -> PathBuf {
        beside(data_file, "-content")
    }

    fn open(data_file: &Path, end: u64) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            // Raw model content: readable by the agent's user only.
            .mode(PRIVATE_FILE)
            .open(Self::path(data_file))?;
        // Bytes of a batch whose transaction never committed (a crash in between).
        file.set_len(end)?;
        Ok(Self {
            file,
            end: Mutex::new(end),
        })
    }

    fn end(&self) -> u64 {
        *self.end.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn committed(&self, end: u64) {
        *self.end.lock().unwrap_or_else(PoisonError::into_inner) = end;
    }

    /// Writes `content[range]` and then `body` at `offset`, off the async workers (a batch is
    /// megabytes).
    async fn write_batch(
        self: &Arc<Self>,
        content: Arc<Zeroizing<Vec<u8>>>,
        range: std::ops::Range<usize>,
        body: Arc<[u8]>,
        offset: u64,
    ) -> Result<()> {
        let file = self.clone();
        tokio::task::spawn_blocking(move || {
            let body_offset = offset + range.len() as u64;
            file.file.write_all_at(&content[range], offset)?;
            file.file.write_all_at(&body, body_offset)
        })
        .await
        .map_err(|_| Error::Closed)??;
        Ok(())
    }

    async fn read_at(self: &Arc<Self>, offset: u64, len: usize) -> Result<Zeroizing<Vec<u8>>> {
        let content = self.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            let mut bytes = Zeroizing::new(vec![0u8; len]);
            content
                .file
                .read_exact_at(&mut bytes, offset)
                .map(|()| bytes)
        })
        .await
        .map_err(|_| Error::Closed)??;
        Ok(bytes)
    }

    /// Overwrites a range with zeros and waits until that reached the disk.
    async fn erase(self: &Arc<Self>, offset: u64, len: usize) -> Result<()> {
        let content = self.clone();
        tokio::task::spawn_blocking(move || {
            content.file.write_all_at(&vec![0u8; len], offset)?;
            content.file.sync_data()
        })
        .await
        .map_err(|_| Error::Closed)??;
        Ok(())
    }
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
