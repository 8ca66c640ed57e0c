//! Policies: each wallet's current policy (as submitted, comments kept), its history with who
//! installed each version, and a line diff between two versions.

use axum::{
    Router,
    extract::{Path, Query, State},
    response::Response,
    routing::get,
};
use chaperone_api::ErrorCode;
use chaperone_core::{Address, policy::Policy};
use maud::html;
use serde::Deserialize;
use similar::{ChangeTag, TextDiff};

use super::{PageError, Session, page, short, when};
use crate::{AppState, http::ApiError};
use chaperone_store::PolicyVersion;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/policies", get(policies))
        .route("/policies/{wallet}", get(history))
}

const ROLES: &[&str] = &["admin", "approver", "auditor"];

/// A policy as its TOML file reads (the format operators write), JSON if TOML cannot hold it.
fn document(policy: &Policy) -> String {
    toml::to_string_pretty(policy)
        .or_else(|_| serde_json::to_string_pretty(policy).map_err(|_| ()))
        .unwrap_or_default()
}

/// Who installed a version: a token's name, or the service's configuration.
fn installer(version: &PolicyVersion) -> &str {
    version.installed_by.as_deref().unwrap_or("configuration")
}

async fn policies(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    session.require(ROLES)?;
    let mut rows = Vec::new();
    for wallet in state.store().wallet_addresses().await? {
        let history = state.store().policy_history(wallet).await?;
        rows.push((wallet, history));
    }
    Ok(page(
        "Policies",
        &session,
        html! {
            table.policies {
                thead { tr { th { "Wallet" } th { "Version" } th { "Mode" } th { "Installed" } th { "Installed by" } th { "Versions" } } }
                tbody {
                    @for (wallet, history) in &rows {
                        tr {
                            td { a href=(format!("/policies/{wallet}")) { (short(wallet)) } }
                            @match history.first() {
                                Some(current) => {
                                    td { "v" (current.version) }
                                    td { (format!("{:?}", current.policy.mode).to_lowercase()) }
                                    td { (when(current.created_at)) }
                                    td.installed-by { (installer(current)) }
                                }
                                None => { td colspan="4" { "no policy" } }
                            }
                            td { (history.len()) }
                        }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
struct DiffQuery {
    from: Option<u32>,
    to: Option<u32>,
}

async fn history(
    State(state): State<AppState>,
    session: Session,
    Path(wallet): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Result<Response, PageError> {
    session.require(ROLES)?;
    let address: Address = wallet.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`{wallet}` is not an address"),
        )
    })?;
    let history = state.store().policy_history(address).await?;
    let current = history
        .first()
        .ok_or_else(|| ApiError::not_found(format!("wallet {address} has no policy")))?;
    let to = query.to.unwrap_or(current.version);
    let from = query.from.unwrap_or(to.saturating_sub(1));
    let find = |version: u32| history.iter().find(|p| p.version == version);
    let (old, new) = (find(from), find(to));
    let new_text = new.map(|p| document(&p.policy)).unwrap_or_default();
    let old_text = old.map(|p| document(&p.policy)).unwrap_or_default();
    let diff = TextDiff::from_lines(&old_text, &new_text);
    Ok(page(
        "Policy history",
        &session,
        html! {
            p { "Wallet " code { (address) } }
            table.history {
                thead { tr { th { "Version" } th { "Hash" } th { "Installed" } th { "By" } th { } } }
                tbody {
                    @for (i, version) in history.iter().enumerate() {
                        tr {
                            td { "v" (version.version) }
                            td { code { (version.hash) } }
                            td { (when(version.created_at)) }
                            td.installed-by { (installer(version)) }
                            td {
                                @if let Some(older) = history.get(i + 1) {
                                    a href=(format!("/policies/{address}?from={}&to={}", older.version, version.version)) { "diff with v" (older.version) }
                                }
                            }
                        }
                    }
                }
            }
            @if old.is_some() && new.is_some() {
                h2 { "v" (from) " → v" (to) }
                pre.diff {
                    @for change in diff.iter_all_changes() {
                        @match change.tag() {
                            ChangeTag::Delete => { del { "- " (change.value()) } }
                            ChangeTag::Insert => { ins { "+ " (change.value()) } }
                            ChangeTag::Equal => { span { "  " (change.value()) } }
                        }
                    }
                }
            }
            h2 { "Current policy (v" (current.version) "), installed by " (installer(current)) }
            @match &current.source {
                Some(source) => {
                    p { "As submitted, comments kept (the hash is of the normalised document):" }
                    pre.policy.source { (source) }
                }
                None => { pre.policy { (document(&current.policy)) } }
            }
        },
    ))
}
