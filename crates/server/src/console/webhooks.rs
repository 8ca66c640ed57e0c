//! The webhook delivery log: every notification, its attempts, and why the last one failed.

use axum::{Router, extract::State, response::Response, routing::get};
use maud::html;

use super::{PageError, Session, page, when};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/webhooks", get(log))
}

async fn log(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    session.require(&["admin"])?;
    let deliveries = state.store().webhook_log(200).await?;
    let configured = state.notifier().is_some();
    Ok(page(
        "Webhook deliveries",
        &session,
        html! {
            @if !configured {
                p.empty { "No webhook is configured (see " code { "[webhook]" } " in deploy/chaperone.example.toml)." }
            }
            @if deliveries.is_empty() { p.empty { "Nothing has been notified yet." } }
            table.webhooks {
                thead { tr { th { "#" } th { "Event" } th { "Queued" } th { "Attempts" } th { "Status" } th { "Last error" } th { "Next attempt" } } }
                tbody {
                    @for d in &deliveries {
                        tr class=(d.status) {
                            td { (d.id) }
                            td { code { (d.event) } }
                            td { (when(d.created_at)) }
                            td { (d.attempts) }
                            td.status {
                                (d.status)
                                @if let Some(at) = d.delivered_at { " " (when(at)) }
                            }
                            td { (d.last_error.clone().unwrap_or_default()) }
                            td { @if d.status == "pending" { (when(d.next_attempt_at)) } }
                        }
                    }
                }
            }
        },
    ))
}
