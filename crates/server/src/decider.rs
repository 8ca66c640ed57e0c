//! Group commit for `/v1/cosign`: the requests that arrive while a decision transaction runs
//! are decided together in the next one ([`Store::decide_batch`]), whatever their wallets.
//!
//! One request alone is decided at once (a batch of one); under load the batches grow, and
//! the database's work per decision falls from a dozen statements and a commit to a share of
//! them (docs/benchmarks.md). Decisions stay exact: a batch holds the locks of all its wallets,
//! and requests of one wallet are decided in order, each seeing what the ones before reserved.
//!
//! The batches run on a thread of their own, with database connections of their own. A batch
//! waits on the database some eight times (statements and commit); on the serving runtime each
//! wake-up queued behind every ready HTTP task, so under a flood of requests (even ones
//! refused at once) a batch took 30 ms and more. On its own thread the wake-ups are the
//! operating system's to schedule, and that thread, mostly waiting, is served promptly: the
//! saturated rate on PostgreSQL rose by about a quarter and a flood's bystanders wait less
//! (docs/benchmarks.md).

use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex, OnceLock},
};

use chaperone_core::{
    Address, B256, Bytes, Secp256k1Signer, U256,
    policy::{PolicyRequest, RequestKind, evaluate},
};
use chaperone_store::{
    AuthorizedTransfer, Decided, MAX_BATCH, RequestRecord, Store, StoredDecision,
};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use crate::http::ApiError;

/// How many decision transactions one replica runs at once on PostgreSQL: one fills while the
/// other commits (four measured slower on two cores: 2,580/s against ~4,000/s). SQLite has one
/// writer, so one.
const POSTGRES_BATCHES_IN_FLIGHT: u32 = 2;

/// A request checked by the handler (shape, agent signature, admission), to be decided.
pub(crate) struct Job {
    pub(crate) wallet: Address,
    pub(crate) request_id: B256,
    pub(crate) kind: RequestKind,
    pub(crate) nonce: Option<U256>,
    pub(crate) authorization: Option<(Address, B256)>,
    /// What an x402 authorization may pay (reconciliation compares the transfer with it).
    pub(crate) pays: Option<AuthorizedTransfer>,
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
/// first use, on a thread of its own that ends when the state is dropped).
pub(crate) struct Decider {
    deps: Deps,
    queue: OnceLock<mpsc::UnboundedSender<Entry>>,
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
            let deps = self.deps.clone();
            let started = std::thread::Builder::new()
                .name("chaperone-decider".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    match runtime {
                        Ok(runtime) => runtime.block_on(dispatch(deps, rx)),
                        // The queue's receiver is dropped: every request is told below.
                        Err(e) => tracing::error!(error = %e, "the decision runtime did not start"),
                    }
                });
            if let Err(e) = started {
                tracing::error!(error = %e, "the decision thread did not start");
            }
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

type Entry = (Job, oneshot::Sender<Answer>);

/// Takes what is queued (up to `MAX_BATCH`) whenever a transaction slot is free, and decides
/// it; ends when the state, and with it the queue's sender, is dropped. A wallet is in one
/// batch at a time: its requests wait for the next batch rather than queue on its lock inside
/// another transaction (which would hold a slot doing nothing), so a hot wallet's requests
/// gather into one batch while other wallets' batches run beside it.
async fn dispatch(mut deps: Deps, mut queue: mpsc::UnboundedReceiver<Entry>) {
    let in_flight = match deps.store.backend() {
        chaperone_store::Backend::Sqlite => 1,
        chaperone_store::Backend::Postgres => POSTGRES_BATCHES_IN_FLIGHT,
    };
    // Connections opened here, so that this runtime's I/O driver is the one that wakes them.
    deps.store = deps.store.with_own_pool(in_flight);
    let slots = Arc::new(Semaphore::new(in_flight as usize));
    // Wallets in a running batch, and a wake-up when a batch ends.
    let busy: Arc<Mutex<HashSet<Address>>> = Arc::default();
    let batch_done = Arc::new(Notify::new());
    // Requests received, oldest first, not yet in a batch.
    let mut waiting: VecDeque<Entry> = VecDeque::new();
    let mut open = true;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let batch = loop {
            while let Ok(entry) = queue.try_recv() {
                waiting.push_back(entry);
            }
            let batch = take_batch(&mut waiting, &busy);
            if !batch.is_empty() {
                break batch;
            }
            if !open && waiting.is_empty() {
                // Let the running batches answer before this runtime, and they, are dropped.
                drop(slot);
                let _ = slots.acquire_many(in_flight).await;
                return;
            }
            // Nothing can run yet: wait for a request, or for a batch to free its wallets.
            tokio::select! {
                entry = queue.recv(), if open => match entry {
                    Some(entry) => waiting.push_back(entry),
                    None => open = false,
                },
                () = batch_done.notified() => {}
            }
        };
        let wallets: HashSet<Address> = batch.iter().map(|(job, _)| job.wallet).collect();
        lock(&busy).extend(wallets.iter().copied());
        let running = Running {
            wallets,
            busy: busy.clone(),
            batch_done: batch_done.clone(),
            _slot: slot,
        };
        let deps = deps.clone();
        tokio::spawn(async move {
            deps.decide(batch).await;
            drop(running);
        });
    }
}

/// A running batch's wallets and transaction slot, given back when it ends, even by a panic
/// (a wallet left busy would never be decided again).
struct Running {
    wallets: HashSet<Address>,
    busy: Arc<Mutex<HashSet<Address>>>,
    batch_done: Arc<Notify>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Running {
    fn drop(&mut self) {
        lock(&self.busy).retain(|w| !self.wallets.contains(w));
        self.batch_done.notify_one();
    }
}

/// The oldest waiting requests (up to `MAX_BATCH`) whose wallets are in no running batch,
/// taken out of `waiting` in order (so one wallet's requests keep their order).
fn take_batch(waiting: &mut VecDeque<Entry>, busy: &Mutex<HashSet<Address>>) -> Vec<Entry> {
    let busy = lock(busy);
    let mut batch = Vec::new();
    let mut kept = VecDeque::with_capacity(waiting.len());
    for entry in waiting.drain(..) {
        if batch.len() < MAX_BATCH && !busy.contains(&entry.0.wallet) {
            batch.push(entry);
        } else {
            kept.push_back(entry);
        }
    }
    *waiting = kept;
    batch
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Deps {
    async fn decide(&self, batch: Vec<Entry>) {
        let (jobs, answers): (Vec<Job>, Vec<_>) = batch.into_iter().unzip();
        let records: Vec<RequestRecord<'_>> = jobs
            .iter()
            .map(|job| RequestRecord {
                wallet: job.wallet,
                request_id: job.request_id,
                nonce: job.nonce,
                authorization: job.authorization,
                pays: job.pays,
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
                    let request = PolicyRequest {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(wallet: u8, nonce: u64) -> Entry {
        let job = Job {
            wallet: Address::repeat_byte(wallet),
            request_id: B256::from(U256::from(nonce)),
            kind: RequestKind::Execute(chaperone_core::Execute {
                calls: Vec::new(),
                nonce: U256::from(nonce),
                validUntil: 0,
            }),
            nonce: Some(U256::from(nonce)),
            authorization: None,
            pays: None,
            json: String::new(),
            valid_until: 0,
        };
        (job, oneshot::channel().0)
    }

    fn nonces(entries: impl IntoIterator<Item = Entry>) -> Vec<u64> {
        entries
            .into_iter()
            .map(|(job, _)| job.nonce.unwrap_or_default().to::<u64>())
            .collect()
    }

    #[test]
    fn a_wallet_in_a_running_batch_waits_in_order_while_others_are_taken() {
        let mut waiting: VecDeque<Entry> = [(1, 0), (2, 1), (1, 2), (3, 3), (2, 4)]
            .into_iter()
            .map(|(w, n)| entry(w, n))
            .collect();
        let busy = Mutex::new(HashSet::from([Address::repeat_byte(2)]));
        assert_eq!(nonces(take_batch(&mut waiting, &busy)), [0, 2, 3]);
        assert_eq!(nonces(waiting.drain(..)), [1, 4]);
    }

    #[test]
    fn a_batch_takes_at_most_max_batch_requests_oldest_first() {
        let mut waiting: VecDeque<Entry> = (0..MAX_BATCH as u64 + 3).map(|n| entry(1, n)).collect();
        let batch = take_batch(&mut waiting, &Mutex::default());
        assert_eq!(nonces(batch), (0..MAX_BATCH as u64).collect::<Vec<_>>());
        let max = MAX_BATCH as u64;
        assert_eq!(
            nonces(waiting.drain(..)),
            (max..max + 3).collect::<Vec<_>>()
        );
    }
}
