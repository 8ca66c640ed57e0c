//! Administrative actions (admins and auditors): who gave which verdict, changed which policy
//! or token, and when, each with the leaf hash of its record in the log — the proof that the
//! list was not edited since.

use axum::{Router, extract::State, response::Response, routing::get};
use maud::html;

use super::{PageError, Session, page, short, when};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/actions", get(actions))
}

/// The newest actions shown; the API pages through all of them.
const SHOWN: u32 = 200;

async fn actions(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    session.require(&["admin", "auditor"])?;
    let actions = state.store().admin_actions(None, SHOWN).await?;
    Ok(page(
        "Actions",
        &session,
        html! {
            p { "Every verdict, policy change, token change and agent registration, with who made it. "
                "Each is a record of the policy service in the tamper-evident log: its leaf hash opens "
                "the inclusion proof at " code { "/v1/records/{leaf_hash}/proof" } "." }
            p.exports { "Export: " a href="/v1/admin/actions?format=csv" { "CSV" } " · " a href="/v1/admin/actions?format=jsonl" { "JSON Lines" } }
            @if actions.is_empty() {
                p.empty { "No administrative action yet." }
            }
            table.actions {
                thead { tr { th { "When" } th { "Who" } th { "Action" } th { "Subject" } th { "Details" } th { "Leaf hash" } } }
                tbody {
                    @for action in &actions {
                        tr {
                            td { (when(action.at)) }
                            td.actor { (action.actor.name) " " small { "(" (action.actor.role) ")" } }
                            td.action { (action.action) }
                            td { code { (action.subject) } }
                            td { code.detail { (action.detail) } }
                            td {
                                @match action.leaf_hash {
                                    Some(leaf) => { a.leaf href=(format!("/v1/records/{leaf}/proof")) { (short(&leaf)) } }
                                    None => { span.status.received { "not yet logged" } }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}
