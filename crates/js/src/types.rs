//! The SDK's result values as JavaScript objects and classes.

use std::path::PathBuf;

use alloy::providers::ProviderBuilder;
use napi::bindgen_prelude::BigInt;
use napi_derive::napi;

use crate::{convert, errors};

/// What one `record` committed to. Pass it to `Recorder.receipt`. (A plain object, not a
/// class: a wrapped object per record would load the garbage collector with one weak handle
/// and finalizer each, which stalled the event loop for tens of ms per 100,000 records.)
#[napi(object)]
pub struct Recorded {
    /// The record's leaf hash: its id in the log and in the local store (`0x…`).
    pub leaf_hash: String,
    /// Its place in the agent's chain of records (0, 1, 2, …).
    pub sequence: i64,
    /// The model id it was recorded under.
    pub model: String,
    /// When it was recorded (ms since the Unix epoch).
    pub timestamp_ms: i64,
    /// The agent that signs it (checksummed).
    pub agent: String,
}

impl Recorded {
    /// The SDK's `Recorded` as a plain object; `agent` is the recorder's, checksummed once.
    pub(crate) fn new(recorded: &chaperone_sdk::Recorded, agent: &str) -> Self {
        Self {
            leaf_hash: recorded.leaf_hash.to_string(),
            sequence: number(recorded.record.sequence),
            model: recorded.record.model.clone(),
            timestamp_ms: number(recorded.record.timestamp_ms),
            agent: agent.to_owned(),
        }
    }
}

/// A delivered record's receipt: the log operator's signed promise to include its batch.
#[napi(object)]
pub struct RecordReceipt {
    /// The record's index in the log.
    pub index: i64,
    /// The log's origin line.
    pub origin: String,
    /// The batch's first index in the log.
    pub batch_first_index: i64,
    /// The batch's size.
    pub batch_size: i64,
    /// RFC 9162 root of the batch.
    pub batch_root: String,
    /// When the log accepted the batch (ms since the Unix epoch).
    pub timestamp_ms: i64,
    /// The operator's signature (65 bytes, `0x…`).
    pub signature: String,
}

fn number(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl From<chaperone_sdk::RecordReceipt> for RecordReceipt {
    fn from(receipt: chaperone_sdk::RecordReceipt) -> Self {
        let batch = receipt.receipt;
        Self {
            index: number(receipt.index),
            origin: batch.origin,
            batch_first_index: number(batch.first_index),
            batch_size: number(batch.size),
            batch_root: batch.batch_root.to_string(),
            timestamp_ms: number(batch.timestamp_ms),
            signature: format!("0x{}", alloy::hex::encode(batch.signature.as_bytes())),
        }
    }
}

/// How far the recorder's background tasks got, in sequence numbers (exclusive).
#[napi(object)]
pub struct Progress {
    /// Records below this are in the outbox (they survive a crash).
    pub persisted: i64,
    /// Records below this have receipts.
    pub delivered: i64,
    /// The batch the server refused for good (its local id); absent normally.
    pub rejected_batch: Option<i64>,
    /// Why the server refused it.
    pub rejected_message: Option<String>,
}

impl From<chaperone_sdk::Progress> for Progress {
    fn from(progress: chaperone_sdk::Progress) -> Self {
        let (rejected_batch, rejected_message) = progress.rejected.unzip();
        Self {
            persisted: number(progress.persisted),
            delivered: number(progress.delivered),
            rejected_batch,
            rejected_message,
        }
    }
}

/// One record in the local file.
#[napi(object)]
pub struct LocalRecord {
    /// Its sequence number.
    pub sequence: i64,
    /// Its leaf hash (`0x…`).
    pub leaf_hash: String,
    /// The model id.
    pub model: String,
}

/// An executed, co-signed transaction.
#[napi(object)]
pub struct Executed {
    /// The co-sign request's id (its EIP-712 digest), as approvers and exports show it.
    pub request_id: String,
    /// The transaction hash.
    pub tx_hash: String,
    /// Its block.
    pub block_number: i64,
    /// Gas it used.
    pub gas_used: i64,
}

impl From<chaperone_sdk::Executed> for Executed {
    fn from(executed: chaperone_sdk::Executed) -> Self {
        Self {
            request_id: executed.request_id.to_string(),
            tx_hash: executed.tx_hash.to_string(),
            block_number: number(executed.block_number),
            gas_used: number(executed.gas_used),
        }
    }
}

/// The token's EIP-712 domain and the validity of an EIP-3009 authorization.
#[napi(object, object_to_js = false)]
pub struct AuthorizationOptions {
    /// The token's EIP-712 domain name (e.g. `"USD Coin"`).
    pub name: String,
    /// The token's EIP-712 domain version (e.g. `"2"`).
    pub version: String,
    /// How long it stays usable, in seconds (default 60).
    pub valid_for: Option<f64>,
}

/// An EIP-712 domain of a token.
#[napi(object, object_from_js = false)]
pub struct TokenDomain {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The chain id.
    pub chain_id: i64,
    /// The token (checksummed).
    pub verifying_contract: String,
}

/// An EIP-3009 `TransferWithAuthorization` message.
#[napi(object, object_from_js = false)]
pub struct TransferAuthorization {
    /// The paying wallet.
    pub from: String,
    /// The payee.
    pub to: String,
    /// The amount in base units.
    pub value: BigInt,
    /// Usable after this Unix time.
    pub valid_after: BigInt,
    /// Usable before this Unix time.
    pub valid_before: BigInt,
    /// The nonce (one of the wallet's authorization slots).
    pub nonce: String,
}

/// An EIP-3009 authorization signed by the agent and co-signed by the policy service, valid
/// through the wallet's EIP-1271 `isValidSignature(hash, signature)`.
#[napi(object, object_from_js = false)]
pub struct SignedAuthorization {
    /// The co-sign decision's id.
    pub request_id: String,
    /// The EIP-712 hash the token passes to the wallet's `isValidSignature`.
    pub hash: String,
    /// The wallet's EIP-1271 signature (agent ‖ co-signer ‖ the authorization), `0x…`.
    pub signature: String,
    /// The token's domain.
    pub domain: TokenDomain,
    /// The authorization.
    pub message: TransferAuthorization,
}

impl From<chaperone_sdk::SignedAuthorization> for SignedAuthorization {
    fn from(signed: chaperone_sdk::SignedAuthorization) -> Self {
        let (domain, message) = (signed.domain, signed.message);
        Self {
            request_id: signed.request_id.to_string(),
            hash: signed.hash.to_string(),
            signature: signed.signature.to_string(),
            domain: TokenDomain {
                name: domain.name,
                version: domain.version,
                chain_id: number(domain.chain_id),
                verifying_contract: convert::checksummed(domain.verifying_contract),
            },
            message: TransferAuthorization {
                from: convert::checksummed(message.from),
                to: convert::checksummed(message.to),
                value: convert::bigint(message.value),
                valid_after: convert::bigint(message.validAfter),
                valid_before: convert::bigint(message.validBefore),
                nonce: message.nonce.to_string(),
            },
        }
    }
}

/// What a disclosure proved, checked against the chain.
#[napi(object)]
pub struct VerifiedOnChain {
    /// The record's leaf hash.
    pub leaf_hash: String,
    /// Its index in the log.
    pub index: i64,
    /// The agent that signed it.
    pub agent: String,
    /// Its model id.
    pub model: String,
    /// When it was recorded (ms since the Unix epoch).
    pub timestamp_ms: i64,
    /// The anchored checkpoint's size.
    pub checkpoint_size: i64,
    /// The anchored checkpoint's root.
    pub checkpoint_root: String,
    /// The `AuditLog` contract.
    pub audit_log: String,
    /// The log's id.
    pub log_id: String,
    /// The log operator.
    pub operator: String,
    /// The log's owner.
    pub log_owner: String,
    /// The anchor's block.
    pub anchor_block: Option<i64>,
    /// When it was anchored (seconds since the Unix epoch).
    pub anchored_at: Option<i64>,
    /// The commitments the disclosed content opened: `"input"`, `"output"`, `"metadata"`.
    pub disclosed: Vec<String>,
}

/// A disclosure of one record for an auditor: the opened content, the record, the agent's
/// signature, the inclusion proof, the signed checkpoint and its anchor.
#[napi]
pub struct Disclosure {
    pub(crate) inner: chaperone_sdk::Disclosure,
}

#[napi]
impl Disclosure {
    /// Reads a disclosure file (what `write` and `chaperone verify` use).
    #[napi(factory)]
    pub fn read(path: String) -> napi::Result<Self> {
        let inner = errors::js(chaperone_sdk::Disclosure::read(&PathBuf::from(path)))?;
        Ok(Self { inner })
    }

    /// Parses the JSON form.
    #[napi(factory)]
    pub fn from_json(text: String) -> napi::Result<Self> {
        serde_json::from_str(&text)
            .map(|inner| Self { inner })
            .map_err(|e| {
                errors::to_js(chaperone_sdk::Error::Invalid(format!(
                    "not a disclosure: {e}"
                )))
            })
    }

    /// The JSON form (also what `POST /v1/verify` takes).
    #[napi]
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.inner).unwrap_or_default()
    }

    /// Writes it as pretty JSON, for `chaperone verify FILE`.
    #[napi]
    pub fn write(&self, path: String) -> napi::Result<()> {
        errors::js(self.inner.write(&PathBuf::from(path)))
    }

    /// The disclosed record's leaf hash.
    #[napi(getter)]
    pub fn leaf_hash(&self) -> napi::Result<String> {
        let hash = self.inner.bundle.record.leaf_hash();
        hash.map(|h| h.to_string())
            .map_err(|e| errors::to_js(e.into()))
    }

    /// Whether the server had anchored the record's checkpoint on chain when it was made
    /// (`verifyOnChain` needs an anchor: disclose again a few seconds later if not).
    #[napi(getter)]
    pub fn anchored(&self) -> bool {
        self.inner.anchor.is_some()
    }

    /// Verifies it end to end against the chain at `rpcUrl` and the log you trust
    /// (`auditLog`, `logId`: yours, never the bundle's own); rejects with `Invalid` if
    /// anything fails to check out, or the bundle is of another log.
    #[napi]
    pub async fn verify_on_chain(
        &self,
        rpc_url: String,
        audit_log: String,
        log_id: String,
    ) -> napi::Result<VerifiedOnChain> {
        let url = rpc_url
            .parse()
            .map_err(|e| convert::invalid(format!("rpc url {rpc_url:?}: {e}")))?;
        let trusted = chaperone_sdk::TrustedLog {
            audit_log: convert::address(&audit_log)?,
            log_id: convert::b256(&log_id, "log id")?,
        };
        let provider = ProviderBuilder::new().connect_http(url);
        let verified = errors::js(self.inner.verify_on_chain(&provider, &trusted).await)?;
        Ok(VerifiedOnChain {
            leaf_hash: verified.leaf_hash.to_string(),
            index: number(verified.index),
            agent: convert::checksummed(verified.agent),
            model: verified.model,
            timestamp_ms: number(verified.timestamp_ms),
            checkpoint_size: number(verified.checkpoint_size),
            checkpoint_root: verified.checkpoint_root.to_string(),
            audit_log: convert::checksummed(verified.audit_log),
            log_id: verified.log_id.to_string(),
            operator: convert::checksummed(verified.operator),
            log_owner: convert::checksummed(verified.log_owner),
            anchor_block: verified.anchor_block.map(number),
            anchored_at: verified.anchored_at.map(number),
            disclosed: verified
                .disclosed
                .iter()
                .map(|kind| format!("{kind:?}").to_lowercase())
                .collect(),
        })
    }
}

/// What `chaperone up` wrote to `<data dir>/devnet.json`: URLs, contracts and demo keys.
/// Development only: it holds private keys in the clear.
#[napi(object)]
pub struct Devnet {
    /// The Chaperone server.
    pub server_url: String,
    /// The chain's JSON-RPC URL.
    pub rpc_url: String,
    /// The chain id.
    pub chain_id: i64,
    /// The `AuditLog` contract.
    pub audit_log: String,
    /// The log's id.
    pub log_id: String,
    /// The wallet factory.
    pub wallet_factory: String,
    /// The demo wallet.
    pub wallet: String,
    /// Its owner.
    pub owner: String,
    /// The demo token (6 decimals).
    pub token: String,
    /// The demo agent.
    pub agent: String,
    /// The demo agent's key (`0x…`).
    pub agent_key: String,
    /// The co-signer.
    pub cosigner: String,
    /// The admin API's bearer token.
    pub admin_token: String,
    /// The policy file `up` installed.
    pub policy_file: String,
}

/// Reads `devnet.json` (default: `.chaperone/devnet.json`, where `make up` writes it).
#[napi]
pub fn read_devnet(path: Option<String>) -> napi::Result<Devnet> {
    let path = PathBuf::from(path.unwrap_or_else(|| ".chaperone/devnet.json".to_owned()));
    let info = errors::js(chaperone_sdk::DevnetInfo::read(&path))?;
    Ok(Devnet {
        server_url: info.server_url,
        rpc_url: info.rpc_url,
        chain_id: number(info.chain_id),
        audit_log: convert::checksummed(info.audit_log),
        log_id: info.log_id.to_string(),
        wallet_factory: convert::checksummed(info.wallet_factory),
        wallet: convert::checksummed(info.wallet),
        owner: convert::checksummed(info.owner),
        token: convert::checksummed(info.token),
        agent: convert::checksummed(info.agent),
        agent_key: info.agent_key.to_string(),
        cosigner: convert::checksummed(info.cosigner),
        admin_token: info.admin_token,
        policy_file: info.policy_file,
    })
}
