//! What an agent app embeds to be trusted with autonomy.
//!
//! - [`Recorder`] commits to every model call (salted SHA-256; content and salts stay in a
//!   local SQLite file), batches and signs records, and delivers them through a durable outbox
//!   to a Chaperone server, exactly once, with backpressure instead of unbounded memory.
//!   [`Recorder::disclose`] builds a [`Disclosure`] an auditor verifies against the chain;
//!   [`Recorder::forget`] crypto-shreds a record.
//! - [`Wallet`] pays through the agent's `AgentWallet`: it signs as the agent, gets the policy
//!   service's co-signature and submits; denials, pending approvals and expiry are typed
//!   errors. [`Wallet::sign_payment_authorization`] signs EIP-3009 (x402) authorizations that
//!   the wallet validates through EIP-1271.
//!
//! ```no_run
//! # async fn run() -> chaperone_sdk::Result<()> {
//! use chaperone_sdk::{Recorder, RecorderConfig, Secp256k1Signer};
//!
//! let key = Secp256k1Signer::random()?;
//! let recorder = Recorder::open(
//!     RecorderConfig::new("http://127.0.0.1:8080", "agent.db"),
//!     key,
//! )
//! .await?;
//! let recorded = recorder
//!     .record("gpt-4o", b"What is 2+2?", b"4", None)
//!     .await?;
//! let receipt = recorder.receipt(&recorded).await?;
//! println!("logged at index {}", receipt.index);
//! # Ok(()) }
//! ```

mod authorization;
mod devnet;
mod disclosure;
mod error;
mod evidence;
mod local;
mod recorder;
mod wallet;
mod x402;

pub use authorization::{Counterfactual, SignedAuthorization, SignedPermit2};
pub use chaperone_api::{ErrorCode, audit::AnchorView};
pub use chaperone_core::{
    Address, B256, Call, CommitmentKind, Eip3009Kind, PermitWitnessTransferFrom, Secp256k1Signer,
    TokenDomain, TransferWithAuthorization, U256,
};
pub use devnet::{CounterfactualWallet, DevnetInfo, chaperone_command};
pub use disclosure::{Disclosure, TrustedLog, VerifiedOnChain};
pub use error::{Error, Result};
pub use evidence::{
    EvidencePolicy, ExpectedScope, ServerWord, UnverifiedDecision, VerifiedEvidence,
    verify_evidence,
};
pub use recorder::{Progress, RecordReceipt, Recorded, Recorder, RecorderConfig};
pub use wallet::{Executed, Payment, PendingPayment, Wallet, WalletConfig};
pub use x402::{
    DEFAULT_MAX_BODY_BYTES, PaidAuthorization, PaymentMethod, PaymentStanding, SettledPayment,
    Settlement, X402Answer, X402Client, X402Payment, X402Response,
};
