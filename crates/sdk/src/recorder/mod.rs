//! Recording model calls. The caller's task only commits and enqueues (the hot path); one
//! background task batches, signs once per batch and persists to the outbox, another delivers
//! batches in order and retries until the server answers with a receipt.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError, atomic::AtomicU64},
    time::Duration,
};

use chaperone_api::Client;
use chaperone_core::{
    Address, B256, BatchReceipt, Commitment, CommitmentKind, Record, Salt, Secp256k1Signer,
};
use tokio::{
    sync::{Notify, Semaphore, watch},
    task::JoinHandle,
};
use zeroize::Zeroize;

mod batcher;
mod deliverer;

use batcher::Batcher;
use deliverer::Deliverer;

use crate::{
    Disclosure, Error, Result,
    disclosure::disclosure_of,
    local::{LocalStore, Stage},
};

/// How the recorder batches, buffers and retries.
///
/// ```
/// use std::time::Duration;
///
/// let mut config = chaperone_sdk::RecorderConfig::new("http://127.0.0.1:8080", "agent.db");
/// assert_eq!(config.max_batch, 5_000);
/// // An agent that logs a few calls a minute and wants each delivered at once:
/// config.linger = Duration::ZERO;
/// ```
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// The Chaperone server, e.g. `http://127.0.0.1:8080`.
    pub server_url: String,
    /// The local SQLite file (outbox and disclosure store); created if missing. The records'
    /// content goes to `<data_file>-content` beside it.
    pub data_file: PathBuf,
    /// The most records in one signed batch (the server takes at most 10,000 and 8 MiB).
    pub max_batch: usize,
    /// How long a batch waits for more records once it has one.
    pub linger: Duration,
    /// Records staged in memory until the batcher takes them; `record` waits when it is full.
    /// (Those taken are held too until persisted, so at most twice this many are in memory.)
    pub queue: usize,
    /// Undelivered records the outbox may hold (while the server is away) before `record`
    /// waits: backpressure, not unbounded growth.
    pub max_undelivered: u64,
    /// First and longest wait between delivery attempts.
    pub retry: (Duration, Duration),
}

impl RecorderConfig {
    /// Defaults for a server and a local file: batches of up to 5,000 records, 20 ms linger,
    /// 20,000 records queued in memory, 1,000,000 in the outbox, retries from 100 ms to 5 s.
    /// (Large, lingering batches keep the background work from crowding the caller's thread:
    /// with 1,000 and 10 ms the p99 of `record` was 22–29 µs on two cores, with these under 10.)
    pub fn new(server_url: impl Into<String>, data_file: impl Into<PathBuf>) -> Self {
        Self {
            server_url: server_url.into(),
            data_file: data_file.into(),
            max_batch: 5_000,
            linger: Duration::from_millis(20),
            queue: 20_000,
            max_undelivered: 1_000_000,
            retry: (Duration::from_millis(100), Duration::from_secs(5)),
        }
    }
}

/// What one `record` call committed to. The content stays in the local disclosure store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The record as it will be logged.
    pub record: Record,
    /// Its leaf hash: its id in the log and in the local store.
    pub leaf_hash: B256,
}

/// A delivered record's receipt: the operator's signed promise to include its batch, and the
/// record's index in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordReceipt {
    /// The batch receipt.
    pub receipt: BatchReceipt,
    /// The record's index in the log.
    pub index: u64,
}

/// How far the background tasks got, in sequence numbers (exclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Records up to here are in the outbox (they survive a crash).
    pub persisted: u64,
    /// Records up to here have receipts.
    pub delivered: u64,
    /// The first batch the server refused for good, and why.
    pub rejected: Option<(i64, String)>,
}

/// The end of the agent's chain and the records staged after it, under one lock: sequence
/// numbers are taken and records staged in one step, so the stage's order is the chain's.
struct Head {
    next: u64,
    previous: B256,
    stage: Stage,
}

/// What `record` and the batcher share besides the head.
struct Staging {
    /// Free places in the stage: `record` takes one, the batcher returns those it takes.
    /// Closed when the batcher stops, so that `record` fails instead of waiting forever.
    space: Semaphore,
    /// Wakes the batcher when a record arrives in an empty stage.
    arrived: Notify,
}

/// Undelivered records in the outbox, shared by the batcher (which waits while it is full)
/// and the deliverer (which drains it).
struct Backlog {
    records: AtomicU64,
    drained: Notify,
}

/// Logs an agent's model calls to a Chaperone server. Share it behind an `Arc`. Call
/// [`Recorder::shutdown`] (or `flush`) before exiting: records still queued in memory when it is
/// dropped are lost, while those already in the outbox are delivered by the next `open`.
pub struct Recorder {
    agent: Address,
    head: Arc<Mutex<Head>>,
    staging: Arc<Staging>,
    progress: watch::Receiver<Progress>,
    local: LocalStore,
    api: Client,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("agent", &self.agent)
            .field("server", &self.api.base())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Recorder {
    /// Opens the local file, resumes the agent's chain where it was persisted, and starts
    /// delivering whatever the outbox still holds.
    pub async fn open(config: RecorderConfig, key: Secp256k1Signer) -> Result<Self> {
        let local = LocalStore::open(&config.data_file).await?;
        let agent = key.address();
        let (next, previous) = local.chain_head(agent).await?;
        let (waiting, rejected) = local.backlog(agent).await?;
        let first_undelivered = local
            .undelivered(agent, 1)
            .await?
            .first()
            .map_or(next, |b| b.first_sequence);
        let (progress_tx, progress) = watch::channel(Progress {
            persisted: next,
            delivered: first_undelivered,
            rejected,
        });
        let progress_tx = Arc::new(progress_tx);
        let backlog = Arc::new(Backlog {
            records: AtomicU64::new(waiting),
            drained: Notify::new(),
        });
        let wake = Arc::new(Notify::new());
        let api = Client::new(&config.server_url);
        let head = Arc::new(Mutex::new(Head {
            next,
            previous,
            stage: Stage::default(),
        }));
        let staging = Arc::new(Staging {
            space: Semaphore::new(config.queue.max(1)),
            arrived: Notify::new(),
        });
        let batcher = Batcher {
            head: head.clone(),
            staging: staging.clone(),
            key,
            local: local.clone(),
            config: config.clone(),
            progress: progress_tx.clone(),
            backlog: backlog.clone(),
            wake: wake.clone(),
        };
        let deliverer = Deliverer {
            agent,
            local: local.clone(),
            api: api.clone(),
            config,
            progress: progress_tx,
            backlog,
            wake,
        };
        let tasks = vec![tokio::spawn(batcher.run()), tokio::spawn(deliverer.run())];
        Ok(Self {
            agent,
            head,
            staging,
            progress,
            local,
            api,
            tasks,
        })
    }

    /// The agent's address.
    pub fn agent(&self) -> Address {
        self.agent
    }

    /// Commits to one model call and queues its record; returns once it is queued (delivery
    /// happens in the background). Waits when the queue or the outbox is full. The content
    /// stays in the local disclosure store under fresh random salts.
    pub async fn record(
        &self,
        model: &str,
        input: &[u8],
        output: &[u8],
        metadata: Option<&[u8]>,
    ) -> Result<Recorded> {
        // The local store keeps each content length in 4 bytes (u32::MAX means "no metadata").
        if [Some(input), Some(output), metadata]
            .into_iter()
            .flatten()
            .any(|content| content.len() >= u32::MAX as usize)
        {
            return Err(Error::Invalid(
                "input, output and metadata are limited to 4 GiB each".into(),
            ));
        }
        // All salts from one call to the OS's CSPRNG (one system call, not three).
        let mut random = [0u8; 96];
        getrandom::fill(&mut random).map_err(|_| Error::Core(chaperone_core::Error::Random))?;
        let salt = |i: usize| {
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(&random[32 * i..32 * (i + 1)]);
            Salt(bytes)
        };
        let salts = [salt(0), salt(1), salt(2)];
        random.zeroize();
        let input_commitment = Commitment::compute(CommitmentKind::Input, &salts[0], input);
        let output_commitment = Commitment::compute(CommitmentKind::Output, &salts[1], output);
        let metadata_commitment =
            metadata.map(|m| Commitment::compute(CommitmentKind::Metadata, &salts[2], m));
        self.staging
            .space
            .acquire()
            .await
            .map_err(|_| Error::Closed)?
            .forget();
        let mut head = self.head.lock().unwrap_or_else(PoisonError::into_inner);
        let record = Record {
            agent: self.agent,
            sequence: head.next,
            timestamp_ms: now_ms(),
            model: model.to_owned(),
            input: input_commitment,
            output: output_commitment,
            metadata: metadata_commitment,
            previous: head.previous,
        };
        let leaf_hash = match record.leaf_hash() {
            Ok(leaf_hash) => leaf_hash,
            Err(e) => {
                drop(head);
                self.staging.space.add_permits(1);
                return Err(e.into());
            }
        };
        head.next += 1;
        head.previous = leaf_hash;
        let was_empty = head.stage.records.is_empty();
        head.stage
            .push(record.clone(), leaf_hash, salts, input, output, metadata);
        drop(head);
        if was_empty {
            self.staging.arrived.notify_one();
        }
        Ok(Recorded { record, leaf_hash })
    }

    /// The background tasks' progress.
    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    fn issued(&self) -> u64 {
        self.head
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next
    }

    async fn wait_until(&self, reached: impl Fn(&Progress) -> bool) -> Result<()> {
        let mut progress = self.progress.clone();
        let seen = progress
            .wait_for(|p| reached(p) || p.rejected.is_some())
            .await
            .map_err(|_| Error::Closed)?;
        if reached(&seen) {
            return Ok(());
        }
        let (batch_id, message) = seen.rejected.clone().unwrap_or_default();
        Err(Error::Rejected { batch_id, message })
    }

    /// Waits until every record so far is in the outbox (survives a crash).
    pub async fn flush(&self) -> Result<()> {
        let issued = self.issued();
        self.wait_until(|p| p.persisted >= issued).await
    }

    /// Waits until every record so far is delivered (has a receipt).
    pub async fn sync(&self) -> Result<()> {
        let issued = self.issued();
        self.wait_until(|p| p.delivered >= issued).await
    }

    /// Waits for a record's delivery and returns its receipt.
    pub async fn receipt(&self, recorded: &Recorded) -> Result<RecordReceipt> {
        self.receipt_of(recorded.record.sequence, recorded.leaf_hash)
            .await
    }

    /// [`Recorder::receipt`] by the record's sequence number and leaf hash (what a language
    /// binding keeps of a [`Recorded`]).
    pub async fn receipt_of(&self, sequence: u64, leaf_hash: B256) -> Result<RecordReceipt> {
        self.wait_until(|p| p.delivered > sequence).await?;
        let (receipt, in_batch) = self
            .local
            .receipt(self.agent, sequence, leaf_hash)
            .await?
            .ok_or(Error::UnknownRecord(leaf_hash))?;
        Ok(RecordReceipt {
            index: receipt.first_index + in_batch,
            receipt,
        })
    }

    /// The records in the local store, oldest first: (sequence, leaf hash, model).
    pub async fn records(&self) -> Result<Vec<(u64, B256, String)>> {
        self.local.records(self.agent).await
    }

    /// A disclosure of one record for an auditor: the chosen openings (content and salts),
    /// the record, the agent's batch signature, the inclusion proof, the signed checkpoint and
    /// its anchor, fetched from the server. Fails with [`Error::Forgotten`] after `forget`.
    pub async fn disclose(&self, leaf_hash: B256, kinds: &[CommitmentKind]) -> Result<Disclosure> {
        let stored = self
            .local
            .openings(leaf_hash)
            .await?
            .ok_or(Error::UnknownRecord(leaf_hash))?;
        let mut disclosed = Vec::new();
        for kind in kinds {
            let opening =
                stored
                    .openings
                    .iter()
                    .find(|o| o.kind() == *kind)
                    .ok_or(if stored.forgotten {
                        Error::Forgotten(leaf_hash)
                    } else {
                        Error::Invalid(format!("the record has no {kind:?} commitment"))
                    })?;
            disclosed.push(chaperone_core::DisclosedContent {
                kind: *kind,
                salt: opening.salt().clone(),
                content: opening.content().to_vec().into(),
            });
        }
        let proof = self.api.proof(leaf_hash).await?;
        Ok(disclosure_of(proof, disclosed))
    }

    /// Crypto-shreds a record: deletes its salts and content from the local store, so its
    /// commitments can never be opened again. The log is untouched.
    pub async fn forget(&self, leaf_hash: B256) -> Result<()> {
        if self.local.forget(leaf_hash).await? {
            Ok(())
        } else {
            Err(Error::UnknownRecord(leaf_hash))
        }
    }

    /// Persists what is queued, then stops the background tasks. Undelivered batches stay in
    /// the outbox for the next `open`.
    pub async fn shutdown(self) -> Result<()> {
        let flushed = self.flush().await;
        for task in &self.tasks {
            task.abort();
        }
        flushed
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
