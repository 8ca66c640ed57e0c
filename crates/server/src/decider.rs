//! Group commit for `/v1/cosign`: the requests that arrive while a decision transaction runs
//! are decided together in the next one ([`Store::decide_batch`]), whatever their wallets.
//!
//! One request alone is decided at once (a batch of one); under load the batches grow, and
//! the database's work per decision falls from a dozen statements and a commit to a share of
//! them (docs/benchmarks.md). Decisions stay exact: a batch holds the locks of all its wallets,
//! and requests of one wallet are decided in order, each seeing what the ones before reserved.

use std::sync::{Arc, OnceLock};

use chaperone_core::{
    Address, B256, Bytes, Secp256k1Signer, U256,
    policy::{CosignRequest, RequestKind, evaluate},
};
use chaperone_store::{Decided, MAX_BATCH, RequestRecord, Store, StoredDecision};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::api::ApiError;

/// How many decision transactions one replica runs at once on PostgreSQL: one fills while
/// the other commits. SQLite has one writer, so one.
const POSTGRES_BATCHES_IN_FLIGHT: usize = 2;

/// A request checked by the handler (shape, agent signature, admission), to be decided.
pub(crate) struct Job {
    pub(crate) wallet: Address,
    pub(crate) request_id: B256,
    pub(crate) kind: RequestKind,
    pub(crate) nonce: Option<U256>,
    pub(crate) authorization: Option<(Address, B256)>,
    /// The request as received (JSON), for the audit trail.
    pub(crate) json: String,
    pub(crate) valid_until: u64,
}

type Answer = Result<StoredDecision, ApiError>;

/// What deciding needs, shared by the batches (not the whole `AppState`, so that the
/// dispatcher ends when the state is dropped).
#[derive(Clone)]
struct Deps {
    store: Store,
    cosigner: Secp256k1Signer,
    chain_id: u64,
    clock: fn() -> u64,
}

/// The queue of requests waiting for a decision transaction, and its dispatcher (started on
/// first use, on the runtime that serves requests).
pub(crate) struct Decider {
    deps: Deps,
    queue: OnceLock<mpsc::UnboundedSender<(Job, oneshot::Sender<Answer>)>>,
}

impl Decider {
    pub(crate) fn new(
        store: Store,
        cosigner: Secp256k1Signer,
        chain_id: u64,
        clock: fn() -> u64,
    ) -> Self {
        Self {
            deps: Deps {
                store,
                cosigner,
                chain_id,
                clock,
            },
            queue: OnceLock::new(),
        }
    }

    /// Decides `job` in the next batch. Admission (admission.rs) bounds what waits here: at
    /// most `MAX_INFLIGHT_PER_WALLET` requests per wallet.
    pub(crate) async fn decide(&self, job: Job) -> Answer {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(dispatch(self.deps.clone(), rx));
            tx
        });
        let (answer, answered) = oneshot::channel();
        if queue.send((job, answer)).is_err() {
            return Err(ApiError::internal("the decision dispatcher stopped"));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(ApiError::internal("a decision batch was dropped")))
    }
}

/// Takes what is queued (up to `MAX_BATCH`) whenever a transaction slot is free, and decides
/// it; ends when the state, and with it the queue's sender, is dropped.
async fn dispatch(deps: Deps, mut queue: mpsc::UnboundedReceiver<(Job, oneshot::Sender<Answer>)>) {
    let in_flight = match deps.store.backend() {
        chaperone_store::Backend::Sqlite => 1,
        chaperone_store::Backend::Postgres => POSTGRES_BATCHES_IN_FLIGHT,
    };
    let slots = Arc::new(Semaphore::new(in_flight));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let deps = deps.clone();
        tokio::spawn(async move {
            deps.decide(batch).await;
            drop(slot);
        });
    }
}

impl Deps {
    async fn decide(&self, batch: Vec<(Job, oneshot::Sender<Answer>)>) {
        let (jobs, answers): (Vec<Job>, Vec<_>) = batch.into_iter().unzip();
        let records: Vec<RequestRecord<'_>> = jobs
            .iter()
            .map(|job| RequestRecord {
                wallet: job.wallet,
                request_id: job.request_id,
                nonce: job.nonce,
                authorization: job.authorization,
                json: &job.json,
                valid_until: job.valid_until,
            })
            .collect();
        let decided = self
            .store
            .decide_batch(
                &records,
                self.clock,
                |i, policy, history, human_approved, now| {
                    let job = &jobs[i];
                    let request = CosignRequest {
                        chain_id: self.chain_id,
                        wallet: job.wallet,
                        now,
                        kind: job.kind.clone(),
                        human_approved,
                    };
                    let decision = evaluate(policy, &request, history);
                    let signature = decision
                        .sign
                        .then(|| self.cosigner.sign_digest(&job.request_id).ok())
                        .flatten()
                        .map(|s| Bytes::from(s.as_bytes().to_vec()).to_string());
                    Decided {
                        decision,
                        signature,
                    }
                },
            )
            .await;
        match decided {
            Ok(decided) => {
                for (answer, decision) in answers.into_iter().zip(decided) {
                    // A requester that gave up (its timeout) is not waiting: nothing to do.
                    let _ = answer.send(decision.map_err(ApiError::from));
                }
            }
            Err(e) => {
                let error = ApiError::from(e);
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }
}
