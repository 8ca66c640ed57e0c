//! `Recorder`: the SDK's recorder. `record` only commits and queues (the hot path); batching,
//! signing, the outbox and delivery run on napi-rs's Tokio runtime in the background.

use std::{
    future::Future,
    path::PathBuf,
    pin::pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll, Waker},
    time::Duration,
};

use chaperone_core::{CommitmentKind, Secp256k1Signer};
use chaperone_sdk::RecorderConfig;
use napi_derive::napi;

use crate::{
    convert::{self, Content, Metadata},
    errors,
    types::{Disclosure, LocalRecord, Progress, RecordReceipt, Recorded},
};

/// How a `Recorder` batches and holds back: each field optional, the SDK's defaults otherwise.
#[napi(object)]
#[derive(Default)]
pub struct RecorderOptions {
    /// The most records in one signed batch (default 5,000).
    pub max_batch: Option<u32>,
    /// How long a batch waits for more records once it has one, in ms (default 20).
    pub linger_ms: Option<f64>,
    /// Records staged in memory; `record` waits when it is full (default 20,000).
    pub queue: Option<u32>,
    /// Undelivered records the outbox may hold before `record` waits (default 1,000,000).
    pub max_undelivered: Option<i64>,
}

/// Logs an agent's model calls to a Chaperone server: salted commitments, signed batches, a
/// durable outbox delivered exactly once. The content stays in the local file.
///
/// Call `close()` when done: records still queued in memory when the process exits without
/// it are lost, while those in the outbox are delivered by the next `Recorder` on the file.
#[napi]
pub struct Recorder {
    inner: Mutex<Option<Arc<chaperone_sdk::Recorder>>>,
    agent: String,
}

/// The agent key from its `0x` hex form (the error never repeats the key).
pub(crate) fn agent_key(hex: &str) -> napi::Result<Secp256k1Signer> {
    let bytes = convert::b256(hex, "agentKey")?;
    Secp256k1Signer::from_bytes(&bytes).map_err(|e| errors::to_js(e.into()))
}

fn kinds(names: Option<Vec<String>>) -> napi::Result<Vec<CommitmentKind>> {
    let names = names.unwrap_or_else(|| vec!["input".to_owned(), "output".to_owned()]);
    names
        .iter()
        .map(|name| match name.as_str() {
            "input" => Ok(CommitmentKind::Input),
            "output" => Ok(CommitmentKind::Output),
            "metadata" => Ok(CommitmentKind::Metadata),
            other => Err(convert::invalid(format!(
                "{other:?} is not a commitment: use \"input\", \"output\" or \"metadata\""
            ))),
        })
        .collect()
}

fn config(
    server_url: String,
    data_file: String,
    options: RecorderOptions,
) -> napi::Result<RecorderConfig> {
    let mut config = RecorderConfig::new(server_url, PathBuf::from(data_file));
    if let Some(max_batch) = options.max_batch {
        config.max_batch = max_batch as usize;
    }
    if let Some(linger_ms) = options.linger_ms {
        config.linger = Duration::try_from_secs_f64(linger_ms / 1000.0)
            .map_err(|_| convert::invalid("lingerMs must be a number of milliseconds ≥ 0"))?;
    }
    if let Some(queue) = options.queue {
        config.queue = queue as usize;
    }
    if let Some(max_undelivered) = options.max_undelivered {
        config.max_undelivered = u64::try_from(max_undelivered)
            .map_err(|_| convert::invalid("maxUndelivered must be ≥ 0"))?;
    }
    Ok(config)
}

impl Recorder {
    fn get(&self) -> napi::Result<Arc<chaperone_sdk::Recorder>> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| errors::to_js(chaperone_sdk::Error::Closed))
    }
}

#[napi]
impl Recorder {
    /// Opens (or creates) the local file `dataFile`, resumes the agent's chain, and starts
    /// delivering to `serverUrl`.
    #[napi]
    pub async fn open(
        server_url: String,
        data_file: String,
        agent_key: String,
        options: Option<RecorderOptions>,
    ) -> napi::Result<Recorder> {
        let key = self::agent_key(&agent_key)?;
        let config = config(server_url, data_file, options.unwrap_or_default())?;
        let recorder = errors::js(chaperone_sdk::Recorder::open(config, key).await)?;
        Ok(Self {
            agent: convert::checksummed(recorder.agent()),
            inner: Mutex::new(Some(Arc::new(recorder))),
        })
    }

    /// The agent's address (checksummed).
    #[napi(getter)]
    pub fn agent(&self) -> String {
        self.agent.clone()
    }

    /// Commits to one model call and queues its record; resolves once it is queued. `input`
    /// and `output` are strings (UTF-8) or bytes; `metadata` also an object (JSON, sorted
    /// keys). Waits when the queue or the outbox is full. (`index.js` tries `recordNow`
    /// first, so a call that need not wait settles without a trip through the runtime.)
    #[napi(
        ts_args_type = "model: string, input: string | Uint8Array, output: string | Uint8Array, metadata?: string | Uint8Array | Record<string, unknown>"
    )]
    pub async fn record(
        &self,
        model: String,
        input: Content,
        output: Content,
        metadata: Option<Metadata>,
    ) -> napi::Result<Recorded> {
        let recorder = self.get()?;
        let metadata = metadata.as_ref().map(convert::content);
        let recorded = recorder
            .record(
                &model,
                convert::content(&input),
                convert::content(&output),
                metadata,
            )
            .await;
        Ok(Recorded::new(&errors::js(recorded)?, &self.agent))
    }

    /// `record` at once, on the calling thread: the record, or `null` when it would have to
    /// wait (the queue or the outbox is full; `record` waits for room instead).
    #[napi(
        ts_args_type = "model: string, input: string | Uint8Array, output: string | Uint8Array, metadata?: string | Uint8Array | Record<string, unknown>"
    )]
    pub fn record_now(
        &self,
        model: String,
        input: Content,
        output: Content,
        metadata: Option<Metadata>,
    ) -> napi::Result<Option<Recorded>> {
        let recorder = self.get()?;
        let metadata = metadata.as_ref().map(convert::content);
        let future = pin!(recorder.record(
            &model,
            convert::content(&input),
            convert::content(&output),
            metadata,
        ));
        // The SDK's `record` awaits only room in the queue: polled once, it is either done or
        // waiting for room, and dropping it then has queued nothing.
        match future.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(recorded) => Ok(Some(Recorded::new(&errors::js(recorded)?, &self.agent))),
            Poll::Pending => Ok(None),
        }
    }

    /// How far the background tasks got.
    #[napi(getter)]
    pub fn progress(&self) -> napi::Result<Progress> {
        Ok(self.get()?.progress().into())
    }

    /// Resolves once every record so far is in the outbox (survives a crash).
    #[napi]
    pub async fn flush(&self) -> napi::Result<()> {
        let recorder = self.get()?;
        errors::js(recorder.flush().await)
    }

    /// Resolves once every record so far is delivered (has a receipt). Rejects with
    /// `Rejected` if the server refused a batch for good.
    #[napi]
    pub async fn sync(&self) -> napi::Result<()> {
        let recorder = self.get()?;
        errors::js(recorder.sync().await)
    }

    /// Waits for a record's delivery and resolves to its receipt.
    #[napi]
    pub async fn receipt(&self, recorded: Recorded) -> napi::Result<RecordReceipt> {
        let recorder = self.get()?;
        let sequence = u64::try_from(recorded.sequence)
            .map_err(|_| convert::invalid("a record's sequence is ≥ 0"))?;
        let leaf_hash = convert::b256(&recorded.leaf_hash, "leafHash")?;
        Ok(errors::js(recorder.receipt_of(sequence, leaf_hash).await)?.into())
    }

    /// The records in the local file, oldest first.
    #[napi]
    pub async fn records(&self) -> napi::Result<Vec<LocalRecord>> {
        let recorder = self.get()?;
        let records = errors::js(recorder.records().await)?;
        Ok(records
            .into_iter()
            .map(|(sequence, leaf_hash, model)| LocalRecord {
                sequence: i64::try_from(sequence).unwrap_or(i64::MAX),
                leaf_hash: leaf_hash.to_string(),
                model,
            })
            .collect())
    }

    /// A disclosure of one record for an auditor, opening the named commitments
    /// (`"input"`, `"output"`, `"metadata"`; default input and output). Rejects with
    /// `Forgotten` after `forget`.
    #[napi(ts_args_type = "leafHash: string, kinds?: Array<'input' | 'output' | 'metadata'>")]
    pub async fn disclose(
        &self,
        leaf_hash: String,
        kinds: Option<Vec<String>>,
    ) -> napi::Result<Disclosure> {
        let recorder = self.get()?;
        let leaf_hash = convert::b256(&leaf_hash, "leafHash")?;
        let kinds = self::kinds(kinds)?;
        let inner = errors::js(recorder.disclose(leaf_hash, &kinds).await)?;
        Ok(Disclosure { inner })
    }

    /// Crypto-shreds a record: deletes its salts and content from the local files, so its
    /// commitments can never be opened again. The log is untouched.
    #[napi]
    pub async fn forget(&self, leaf_hash: String) -> napi::Result<()> {
        let recorder = self.get()?;
        let leaf_hash = convert::b256(&leaf_hash, "leafHash")?;
        errors::js(recorder.forget(leaf_hash).await)
    }

    /// Persists what is queued and stops the background tasks (undelivered batches stay in
    /// the outbox for the next `Recorder`). Later calls reject with `Closed`; closing twice
    /// is harmless.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        let recorder = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match recorder {
            Some(recorder) => {
                let flushed = errors::js(recorder.flush().await);
                if let Ok(recorder) = Arc::try_unwrap(recorder) {
                    errors::js(recorder.shutdown().await)?;
                }
                flushed
            }
            None => Ok(()),
        }
    }
}

/// The address of `agentKey` (0x hex), as an admin registers it with a deployment: only
/// registered agents may append to its log.
#[napi]
pub fn agent_address(agent_key: String) -> napi::Result<String> {
    Ok(convert::checksummed(self::agent_key(&agent_key)?.address()))
}
