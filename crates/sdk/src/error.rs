use chaperone_core::{B256, policy::Reason};

/// Everything the SDK can report. Network trouble is an error value, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The local file (outbox and disclosure store) failed.
    #[error("local store: {0}")]
    Local(#[from] sqlx::Error),
    /// The local content file (`<data file>-content`) failed.
    #[error("local content file: {0}")]
    ContentFile(#[from] std::io::Error),
    /// A local file or its folder is open to other users of the machine and the SDK would not
    /// (a folder others can write to) or could not (a file of another user) make it private:
    /// they could read the salts that keep short content secret behind its commitment.
    #[error("{} is open to other users of this machine: {detail}", .path.display())]
    NotPrivate {
        /// The folder or file.
        path: std::path::PathBuf,
        /// What is wrong and what to do about it.
        detail: String,
    },
    /// The local file's migrations failed.
    #[error("local store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A record, commitment or signature could not be built or checked.
    #[error(transparent)]
    Core(#[from] chaperone_core::Error),
    /// The server could not be reached or answered garbage; the request may be retried.
    #[error("the Chaperone server at {url} is unreachable: {detail}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The server refused the request (a 4xx other than a decision).
    #[error("the server refused the request ({status} {code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The API's error code.
        code: chaperone_api::ErrorCode,
        /// The API's message.
        message: String,
    },
    /// The policy service denied the payment.
    #[error("denied by policy: {}", denial_text(.reasons, .reasons_text))]
    Denied {
        /// The request's id (its EIP-712 digest).
        request_id: B256,
        /// Every reason the policy gave, with its exact figures.
        reasons: Vec<Reason>,
        /// The same reasons in words, amounts in token units ("0.5 ETH is over the per-payment
        /// cap of 0.1 ETH"), as the server wrote them (empty from an older server).
        reasons_text: Vec<String>,
    },
    /// A human approver must approve first; pass it to `AgentWallet::wait_for_approval`.
    #[error("pending a human approval (request {})", .0.request_id)]
    Pending(Box<crate::PendingPayment>),
    /// A human approver must approve this payment authorization first. An x402 payment
    /// cannot wait that long: once it is approved, ask again for the same payment.
    #[error("the authorization is pending a human approval (request {request_id})")]
    PendingAuthorization {
        /// The request's id, as approvers see it.
        request_id: B256,
    },
    /// The merchant refused an x402 payment the policy had co-signed (it answered 402 again:
    /// its facilitator found the authorization invalid, used, or unaffordable, or the merchant
    /// keeps it without serving). The merchant may still settle it until it expires: record
    /// it, and `X402Client::watch` it; the client presents this same payment again if the
    /// request is retried, never a second one.
    #[error("the merchant refused the payment (request {request_id}): {reason}")]
    PaymentRefused {
        /// The co-sign request's id.
        request_id: B256,
        /// The merchant's reason.
        reason: String,
        /// The payment sent, with its signed authorization.
        payment: Box<crate::X402Payment>,
    },
    /// A request carrying an x402 payment got no answer (the connection failed after it was
    /// sent): the merchant may hold the authorization. As for [`Error::PaymentRefused`], the
    /// client keeps it and presents it again on a retry.
    #[error("no answer to the payment (request {}): {detail}", .payment.request_id)]
    PaymentUnanswered {
        /// What failed.
        detail: String,
        /// The payment sent, with its signed authorization.
        payment: Box<crate::X402Payment>,
    },
    /// The request's `validUntil` passed (or the approval expired) before it could execute.
    #[error("expired before it could execute")]
    Expired,
    /// The chain failed or reverted the transaction.
    #[error("chain: {0}")]
    Chain(String),
    /// The record was crypto-shredded with `forget`, so it can no longer be disclosed.
    #[error("record {0} was forgotten (its salts are deleted)")]
    Forgotten(B256),
    /// No record with this leaf hash is in the local disclosure store.
    #[error("no local record {0}")]
    UnknownRecord(B256),
    /// The server rejected a batch permanently; later records cannot be delivered either
    /// (their chain builds on it). The message says why.
    #[error("the server rejected batch {batch_id}: {message}")]
    Rejected {
        /// The local batch id.
        batch_id: i64,
        /// The server's reason.
        message: String,
    },
    /// A disclosure bundle failed verification.
    #[error("disclosure does not verify: {0}")]
    Invalid(String),
    /// The recorder's background tasks stopped (the `Agent` was shut down).
    #[error("the recorder is shut down")]
    Closed,
}

fn denial_text(reasons: &[Reason], words: &[String]) -> String {
    if words.len() == reasons.len() && !words.is_empty() {
        return words.join("; ");
    }
    let texts: Vec<String> = reasons
        .iter()
        .map(|r| serde_json::to_string(r).unwrap_or_default())
        .collect();
    texts.join("; ")
}

/// The SDK's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<chaperone_api::ClientError> for Error {
    /// A refusal the same request may outlive (429, 5xx) is [`Error::Unreachable`], which
    /// callers retry; any other is [`Error::Refused`].
    fn from(e: chaperone_api::ClientError) -> Self {
        use chaperone_api::ClientError as E;
        match e {
            E::Refused {
                status,
                code,
                message,
                ..
            } if !(status == 429 || status >= 500) => Self::Refused {
                status,
                code,
                message,
            },
            E::Refused {
                url,
                status,
                code,
                message,
                ..
            } => Self::Unreachable {
                url,
                detail: format!("{status} {code}: {message}"),
            },
            E::Unreachable { url, detail } | E::Unexpected { url, detail } => {
                Self::Unreachable { url, detail }
            }
        }
    }
}
