//! The typed client of the server's API (feature `client`): the one place outside the server
//! that knows its paths, its headers and how it writes errors. The SDK, the CLI and the Python
//! package call the server through it.

use std::time::Duration;

use chaperone_core::{Address, B256, DisclosureBundle, policy::Policy};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use crate::{
    CosignRequest, CosignResponse, ErrorBody, ErrorCode, Format, Page,
    admin::{
        AdminActionRow, IssuedToken, NewAgent, NewToken, NewWallet, PendingApprovals, PolicySet,
        Registered, RegisteredAgents, Resolved, Revoked, Tokens,
    },
    audit::{CheckpointResponse, IngestResponse, ProofResponse, VerifyResponse},
    compliance::NEXT_CURSOR_HEADER,
    cosign::{CallBody, CallBound},
    evidence::{EvidenceBundle, EvidenceQuery},
};

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or stopped answering mid-way.
    #[error("{url} does not answer (is the server running?): {detail}")]
    Unreachable {
        /// The server.
        url: String,
        /// What the transport said.
        detail: String,
    },
    /// The server refused, with its status, code and message.
    #[error("{status} {code}: {message}")]
    Refused {
        /// The server.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The stable code ([`ErrorCode::Unknown`] when the body was not the API's).
        code: ErrorCode,
        /// The server's message.
        message: String,
        /// Seconds the server asked to wait before sending it again (429, 503).
        retry_after: Option<u64>,
    },
    /// The server answered success with a body this client cannot read.
    #[error("{url} answered with a body this client cannot read: {detail}")]
    Unexpected {
        /// The server.
        url: String,
        /// What did not parse.
        detail: String,
    },
}

impl ClientError {
    /// Whether the same request may succeed if sent again later: the server was unreachable,
    /// busy (429) or failed (5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Refused { status, .. } => *status == 429 || *status >= 500,
            Self::Unexpected { .. } => false,
        }
    }
}

type Result<T> = std::result::Result<T, ClientError>;

/// The co-signer's answer to a co-sign request, with the status it came with (200 approved,
/// 202 pending a human, 403 denied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The decision.
    pub response: CosignResponse,
}

/// One page of an export: the body as the server wrote it and the next page's cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The rows (JSON lines or CSV with its header line).
    pub body: String,
    /// The `cursor` of the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// A client of one Chaperone server.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// Never the bearer token: a client may end up in a log line or a panic message.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// `text` as one URL path segment or query value (percent-encoded: a token's name may hold
/// `/`, `?` or spaces, a cursor `:`).
pub fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    /// A client of the server at `base` (`http://127.0.0.1:8080`), waiting at most 30 s for an
    /// answer.
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        }
    }

    /// The same client sending `Authorization: Bearer <token>` (the admin, approver and
    /// auditor endpoints).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    // -- the agent's endpoints ------------------------------------------------------------

    /// `POST /v1/cosign`: a decision (approved, pending or denied) or a refusal.
    pub async fn cosign(&self, request: &CosignRequest) -> Result<CosignAnswer> {
        let (status, bytes) = self
            .send(self.request(Method::POST, "/v1/cosign").json(request))
            .await?;
        if matches!(status.as_u16(), 200 | 202 | 403)
            && let Ok(response) = serde_json::from_slice(&bytes)
        {
            return Ok(CosignAnswer {
                status: status.as_u16(),
                response,
            });
        }
        Err(self.refusal(status, &bytes, None))
    }

    /// `POST /v1/tool-decisions`: a tool-policy decision signed by the agent.
    pub async fn tool_decision(
        &self,
        body: &crate::tools::ToolDecisionBody,
    ) -> Result<crate::tools::ToolDecisionStored> {
        self.json(self.request(Method::POST, "/v1/tool-decisions").json(body))
            .await
    }

    /// `GET /v1/tool-decisions/{id}/approval`: the verdict on a tool call waiting for a human.
    pub async fn tool_approval(&self, id: B256) -> Result<crate::tools::ToolApproval> {
        let path = format!("/v1/tool-decisions/{id}/approval");
        self.json(self.request(Method::GET, &path)).await
    }

    /// `POST /v1/tool-decisions/{id}/withdraw`: the agent withdraws its held call (signed by
    /// its record key).
    pub async fn withdraw_tool_approval(
        &self,
        id: B256,
        body: &crate::tools::ToolWithdrawalBody,
    ) -> Result<crate::tools::ToolApproval> {
        let path = format!("/v1/tool-decisions/{id}/withdraw");
        self.json(self.request(Method::POST, &path).json(body))
            .await
    }

    /// `POST /v1/admin/tool-approvals/{id}/approve|deny` (an approver's or admin's token). An
    /// approval names the arguments hash the approver was shown (`Some`); a denial needs none.
    pub async fn resolve_tool_approval(
        &self,
        id: B256,
        arguments_hash: Option<B256>,
    ) -> Result<crate::tools::ToolApproval> {
        match arguments_hash {
            Some(arguments_hash) => {
                let path = format!("/v1/admin/tool-approvals/{id}/approve");
                let body = crate::tools::ToolVerdictBody { arguments_hash };
                self.json(self.request(Method::POST, &path).json(&body))
                    .await
            }
            None => {
                let path = format!("/v1/admin/tool-approvals/{id}/deny");
                self.json(self.request(Method::POST, &path)).await
            }
        }
    }

    /// `POST /v1/decisions/{request_id}/call`.
    pub async fn bind_call(&self, request_id: B256, body: &CallBody) -> Result<CallBound> {
        let path = format!("/v1/decisions/{request_id}/call");
        self.json(self.request(Method::POST, &path).json(body))
            .await
    }

    /// `POST /v1/records` with a signed batch already serialised (so a resend is byte for
    /// byte the same).
    pub async fn ingest(&self, signed_batch_json: Vec<u8>) -> Result<IngestResponse> {
        let request = self
            .request(Method::POST, "/v1/records")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(signed_batch_json);
        self.json(request).await
    }

    /// `GET /v1/records/{leaf_hash}/proof`.
    pub async fn proof(&self, leaf_hash: B256) -> Result<ProofResponse> {
        let path = format!("/v1/records/{leaf_hash}/proof");
        self.json(self.request(Method::GET, &path)).await
    }

    /// `GET /v1/checkpoints/latest`.
    pub async fn latest_checkpoint(&self) -> Result<CheckpointResponse> {
        self.json(self.request(Method::GET, "/v1/checkpoints/latest"))
            .await
    }

    /// `POST /v1/verify`.
    pub async fn verify(&self, bundle: &DisclosureBundle) -> Result<VerifyResponse> {
        self.json(self.request(Method::POST, "/v1/verify").json(bundle))
            .await
    }

    // -- the operator's endpoints ---------------------------------------------------------

    /// `POST /v1/admin/wallets`.
    pub async fn register_wallet(&self, wallet: &NewWallet) -> Result<Registered> {
        self.json(self.request(Method::POST, "/v1/admin/wallets").json(wallet))
            .await
    }

    /// `POST /v1/admin/agents`, with the label people know the agent by, if any.
    pub async fn register_agent(&self, agent: Address, label: Option<&str>) -> Result<Registered> {
        let body = NewAgent {
            address: agent,
            label: label.map(str::to_owned),
        };
        self.json(self.request(Method::POST, "/v1/admin/agents").json(&body))
            .await
    }

    /// `DELETE /v1/admin/agents/{address}`.
    pub async fn unregister_agent(&self, agent: Address) -> Result<Registered> {
        let path = format!("/v1/admin/agents/{agent}");
        self.json(self.request(Method::DELETE, &path)).await
    }

    /// `GET /v1/admin/agents`.
    pub async fn registered_agents(&self) -> Result<RegisteredAgents> {
        self.json(self.request(Method::GET, "/v1/admin/agents"))
            .await
    }

    /// `PUT /v1/admin/wallets/{address}/policy`.
    pub async fn set_policy(&self, wallet: Address, policy: &Policy) -> Result<PolicySet> {
        let path = format!("/v1/admin/wallets/{wallet}/policy");
        self.json(self.request(Method::PUT, &path).json(policy))
            .await
    }

    /// `PUT /v1/admin/wallets/{address}/policy` with the document's own text, TOML or JSON
    /// (`toml`), which the server keeps as submitted, comments and all.
    pub async fn set_policy_text(
        &self,
        wallet: Address,
        text: String,
        toml: bool,
    ) -> Result<PolicySet> {
        let path = format!("/v1/admin/wallets/{wallet}/policy");
        let content_type = if toml {
            "application/toml"
        } else {
            "application/json"
        };
        self.json(
            self.request(Method::PUT, &path)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(text),
        )
        .await
    }

    /// `GET /v1/admin/actions`: administrative actions, newest first, before `cursor`.
    pub async fn admin_actions(
        &self,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<AdminActionRow>> {
        let mut params = vec![("limit", limit.to_string())];
        if let Some(cursor) = cursor {
            params.push(("cursor", cursor.to_owned()));
        }
        self.json(self.request(Method::GET, &with_query("/v1/admin/actions", &params)))
            .await
    }

    /// `GET /v1/admin/wallets/{address}/policy`.
    pub async fn policy(&self, wallet: Address) -> Result<Policy> {
        let path = format!("/v1/admin/wallets/{wallet}/policy");
        self.json(self.request(Method::GET, &path)).await
    }

    /// `GET /v1/admin/approvals`.
    pub async fn pending_approvals(&self) -> Result<PendingApprovals> {
        self.json(self.request(Method::GET, "/v1/admin/approvals"))
            .await
    }

    /// `POST /v1/admin/approvals/{request_id}/approve` (or `/deny`): this approver's vote; the
    /// answer says whether a quorum still waits for more approvers (`status` `pending`).
    pub async fn resolve_approval(&self, request_id: B256, approve: bool) -> Result<Resolved> {
        let verdict = if approve { "approve" } else { "deny" };
        let path = format!("/v1/admin/approvals/{request_id}/{verdict}");
        self.json(self.request(Method::POST, &path)).await
    }

    /// `POST /v1/admin/tokens`.
    pub async fn issue_token(&self, token: &NewToken) -> Result<IssuedToken> {
        self.json(self.request(Method::POST, "/v1/admin/tokens").json(token))
            .await
    }

    /// `GET /v1/admin/tokens`.
    pub async fn tokens(&self) -> Result<Tokens> {
        self.json(self.request(Method::GET, "/v1/admin/tokens"))
            .await
    }

    /// `DELETE /v1/admin/tokens/{name}`.
    pub async fn revoke_token(&self, name: &str) -> Result<Revoked> {
        let path = format!("/v1/admin/tokens/{}", url_escape(name));
        self.json(self.request(Method::DELETE, &path)).await
    }

    // -- the auditor's lists --------------------------------------------------------------

    /// One JSON page of the list at `path` (`/v1/agents`, `/v1/agents/{address}/records`,
    /// `/v1/decisions`, `/v1/spend`, `/v1/payments`) with the filters `params`.
    pub async fn page<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Page<T>> {
        let path = with_query(path, params);
        self.json(self.request(Method::GET, &path)).await
    }

    /// One page of the list at `path` exported as `format` (JSON lines or CSV).
    pub async fn export(
        &self,
        path: &str,
        format: Format,
        params: &[(&str, String)],
    ) -> Result<Export> {
        let mut all = params.to_vec();
        all.push(("format", format.as_str().to_owned()));
        let path = with_query(path, &all);
        let response = self
            .request(Method::GET, &path)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let next_cursor = response
            .headers()
            .get(NEXT_CURSOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            return Err(self.refusal(status, &bytes, None));
        }
        Ok(Export {
            body: String::from_utf8_lossy(&bytes).into_owned(),
            next_cursor,
        })
    }

    // -- the evidence pack -----------------------------------------------------------------

    /// The machine-checkable evidence of a period (`GET /v1/evidence/bundle`).
    pub async fn evidence_bundle(&self, query: &EvidenceQuery) -> Result<EvidenceBundle> {
        let path = with_query("/v1/evidence/bundle", &evidence_params(query));
        self.json(self.request(Method::GET, &path)).await
    }

    /// The human-readable report of a period, one self-contained HTML page
    /// (`GET /v1/evidence/report`).
    pub async fn evidence_report(&self, query: &EvidenceQuery) -> Result<String> {
        let path = with_query("/v1/evidence/report", &evidence_params(query));
        let (status, bytes) = self.send(self.request(Method::GET, &path)).await?;
        if !status.is_success() {
            return Err(self.refusal(status, &bytes, None));
        }
        String::from_utf8(bytes).map_err(|e| ClientError::Unexpected {
            url: self.base.clone(),
            detail: e.to_string(),
        })
    }

    // -- the plumbing ----------------------------------------------------------------------

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request`; a 2xx body parsed as `T`, anything else the server's refusal.
    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let (status, bytes) = self.send(request).await?;
        if !status.is_success() {
            return Err(self.refusal(status, &bytes, None));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected {
            url: self.base.clone(),
            detail: e.to_string(),
        })
    }

    async fn send(&self, request: RequestBuilder) -> Result<(StatusCode, Vec<u8>)> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        // Busy and failing answers are refusals whatever the endpoint's own non-2xx answers
        // are (a 403 co-sign denial is a decision; a 503 never is).
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(self.refusal(status, &bytes, retry_after));
        }
        Ok((status, bytes.into()))
    }

    /// The API's error body as [`ClientError::Refused`]; a body that is not one (a proxy's
    /// page) keeps its first 200 characters as the message.
    fn refusal(&self, status: StatusCode, bytes: &[u8], retry_after: Option<u64>) -> ClientError {
        let (code, message) = match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(body) => (body.error.code, body.error.message),
            Err(_) => (
                ErrorCode::Unknown,
                String::from_utf8_lossy(bytes).chars().take(200).collect(),
            ),
        };
        ClientError::Refused {
            url: self.base.clone(),
            status: status.as_u16(),
            code,
            message,
            retry_after,
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base.clone(),
            detail: e.to_string(),
        }
    }
}

/// An [`EvidenceQuery`] as query parameters.
fn evidence_params(query: &EvidenceQuery) -> Vec<(&'static str, String)> {
    let mut params = vec![
        ("from", query.from.to_string()),
        ("to", query.to.to_string()),
    ];
    if let Some(agents) = &query.agents {
        params.push(("agents", agents.clone()));
    }
    if let Some(wallets) = &query.wallets {
        params.push(("wallets", wallets.clone()));
    }
    params
}

/// `path` with `params` as its query string.
fn with_query(path: &str, params: &[(&str, String)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(key, value)| format!("{key}={}", url_escape(value)))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}
