//! The approvals inbox: pending requests with what they move and why a human is asked;
//! approve or deny with a comment, recorded with the approver's name.

use axum::{
    Form, Router,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chaperone_api::ErrorCode;
use chaperone_core::{B256, policy::Effect};
use maud::html;
use serde::Deserialize;

use super::{PageError, Session, page, reason_line, short, when};
use crate::{
    AppState,
    http::ApiError,
    words::{reason_tokens, units_of},
};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/approvals", get(inbox))
        .route("/approvals/{request_id}", post(resolve))
}

const ROLES: &[&str] = &["admin", "approver"];

/// Time left before an approval expires, to the minute.
fn time_left(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3_600, s / 60 % 60),
    }
}

async fn inbox(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    session.require(ROLES)?;
    let now = state.now();
    let pending = state.store().pending_approval_details(now).await?;
    let mut rows = Vec::new();
    for request in &pending {
        // What the recorded request moves, as the policy counts it.
        let effects = serde_json::from_str::<chaperone_api::CosignRequest>(&request.request)
            .map(|r| r.payment.effects())
            .unwrap_or_default();
        let spends: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Spend {
                    token,
                    amount,
                    recipient,
                } => Some((*token, *amount, *recipient)),
                Effect::OpaqueCall { .. } => None,
            })
            .collect();
        let mut tokens = reason_tokens(&request.reasons);
        tokens.extend(spends.iter().map(|(token, _, _)| *token));
        let units = units_of(&state, tokens).await;
        rows.push((request, spends, units));
    }
    Ok(page(
        "Approvals",
        &session,
        html! {
            p.exports { "Export: " a href="/v1/admin/approvals?format=csv" { "CSV" } " · " a href="/v1/admin/approvals?format=jsonl" { "JSON Lines" } }
            @if pending.is_empty() {
                p.empty { "Nothing is waiting for a human." }
            }
            @for (request, spends, units) in &rows {
                section.approval id=(format!("request-{}", request.request_id)) {
                    h2 { "Request " code { (request.request_id) } }
                    dl {
                        dt { "Wallet" } dd { (short(&request.wallet)) }
                        @for (token, amount, recipient) in spends {
                            dt { "Pays" }
                            dd.amount {
                                (units.get(token).map_or_else(|| amount.to_string(), |u| u.format(*amount)))
                                " to " (short(recipient))
                                small { " (" (amount) " base units of " (token) ")" }
                            }
                        }
                        dt { "Why a human" }
                        dd { @for reason in &request.reasons { div.reason { (reason_line(reason, units)) } } }
                        dt { "Asked" } dd { (when(request.created_at)) }
                        dt { "Expires" }
                        dd { (when(request.expires_at)) " (" (time_left(request.expires_at.saturating_sub(now))) " left)" }
                    }
                    form.verdict method="post" action=(format!("/approvals/{}", request.request_id)) {
                        (session.csrf_field())
                        label { "Comment " input type="text" name="comment" maxlength="500" placeholder="why (recorded with your verdict)"; }
                        button type="submit" name="verdict" value="approve" class="approve" { "Approve" }
                        button type="submit" name="verdict" value="deny" class="deny" { "Deny" }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
struct VerdictForm {
    #[serde(default)]
    csrf: String,
    verdict: String,
    #[serde(default)]
    comment: String,
}

async fn resolve(
    State(state): State<AppState>,
    session: Session,
    Path(request_id): Path<String>,
    Form(form): Form<VerdictForm>,
) -> Result<Response, PageError> {
    session.require(ROLES)?;
    session.check_csrf(&form.csrf)?;
    let id: B256 = request_id.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`{request_id}` is not a request id"),
        )
    })?;
    let approve = match form.verdict.as_str() {
        "approve" => true,
        "deny" => false,
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("verdict `{other}`: approve or deny"),
            )
            .into());
        }
    };
    let comment = form.comment.trim();
    if comment.len() > 500 {
        return Err(
            ApiError::new(ErrorCode::InvalidRequest, "comments are at most 500 bytes").into(),
        );
    }
    state
        .store()
        .resolve_approval(
            id,
            approve,
            &session.name,
            (!comment.is_empty()).then_some(comment),
            state.now(),
        )
        .await?;
    tracing::info!(request = %id, approve, by = %session.name, "approval resolved in the console");
    Ok(Redirect::to("/approvals").into_response())
}
