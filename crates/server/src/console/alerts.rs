//! Reconciliation in the console: the banner every page shows while an unauthorized spend is
//! unacknowledged, the list of them (`/alerts`, an admin acknowledges each), and the owner's
//! freeze instructions (`/alerts/freeze`), one click from the banner.

use std::collections::BTreeSet;

use alloy::sol_types::SolCall;
use axum::{
    Form, Router,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chaperone_chain::AgentWallet;
use chaperone_core::Address;
use maud::{Markup, html};
use serde::Deserialize;

use super::{PageError, Session, page, short, when};
use crate::AppState;

const READERS: &[&str] = &["admin", "auditor"];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list))
        .route("/alerts/freeze", get(freeze))
        .route("/alerts/{id}/acknowledge", post(acknowledge))
}

/// The banner: shown on every page while any unauthorized spend is unacknowledged, linking
/// to the freeze instructions (every role may open them: whoever sees it should act).
pub(super) fn banner(session: &Session) -> Markup {
    html! {
        @if session.open_alerts > 0 {
            div.alert-banner role="alert" {
                strong { "Unauthorized spend: " }
                (session.open_alerts)
                @if session.open_alerts == 1 { " outflow" } @else { " outflows" }
                " left a wallet without a co-sign decision. The co-signer key may be stolen. "
                a href="/alerts/freeze" { "Freeze the wallet now: the owner's instructions" }
            }
        }
    }
}

async fn list(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    session.require(READERS)?;
    let spends = state.store().unauthorized_spends(false, 500).await?;
    let admin = session.role == "admin";
    Ok(page(
        "Unauthorized spends",
        &session,
        html! {
            p {
                "Every outflow of a registered wallet (an " code { "execute" } ", an EIP-3009 \
                 authorization or a Permit2 payment it signed) is matched with the approved co-sign decision of \
                 exactly what moved. These had none: both keys signed without this service. "
                a href="/alerts/freeze" { "How the owner freezes the wallet" } "."
            }
            @if spends.is_empty() { p.empty { "No unauthorized spend has been found." } }
            @else {
                table.alerts {
                    thead { tr { th { "#" } th { "Wallet" } th { "How" } th { "Why" } th { "Block" } th { "Transaction" } th { "Nonce" } th { "Found" } th { "Acknowledged" } } }
                    tbody {
                        @for s in &spends {
                            tr id=(format!("spend-{}", s.id)) class=(if s.acknowledged.is_some() { "acknowledged" } else { "open" }) {
                                td { (s.id) }
                                td { code { (s.wallet) } }
                                td { (match s.kind.as_str() { "eip3009" => "EIP-3009 authorization", "permit2" => "Permit2 payment", _ => "execute" }) }
                                td { (crate::alerts::reason(s).text()) }
                                td { (s.block_number) }
                                td { @if let Some(tx) = &s.tx_hash { (short(tx)) } @else { "(Permit2 emits no event)" } }
                                td { code { (s.nonce) } }
                                td { (when(s.detected_at)) }
                                td {
                                    @if let Some((by, at)) = &s.acknowledged { (by) " " (when(*at)) }
                                    @else if admin {
                                        form method="post" action=(format!("/alerts/{}/acknowledge", s.id)) {
                                            (session.csrf_field())
                                            button type="submit" { "Acknowledge" }
                                        }
                                    } @else { "open" }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `0x` and the 4-byte selector of a wallet function, for owners who send raw calldata (a
/// Safe's transaction builder).
fn selector<C: SolCall>() -> String {
    format!("0x{}", alloy::hex::encode(C::SELECTOR))
}

async fn freeze(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    let open = state.store().unauthorized_spends(true, 500).await?;
    let wallets: BTreeSet<Address> = open.iter().map(|s| s.wallet).collect();
    let freeze_data = selector::<AgentWallet::freezeCall>();
    Ok(page(
        "Freeze the wallet",
        &session,
        html! {
            p {
                "An outflow left a wallet without a co-sign decision: the agent key and the \
                 co-signer key signed it without this service. Until the owner acts, whoever \
                 holds both keys can spend up to the wallet's on-chain backstop every period. \
                 Only the wallet's owner (the address or Safe that created it) can do what follows."
            }
            @if wallets.is_empty() {
                p.empty { "No unauthorized spend is open. For any wallet, the steps are the same with its address." }
            }
            @for wallet in &wallets {
                section.freeze id=(format!("wallet-{wallet}")) {
                    h2 { "Wallet " code { (wallet) } }
                    ol {
                        li {
                            strong { "Freeze it" } " (" code { "freeze()" } ", calldata " code { (freeze_data) } "): "
                            code { "execute" } " and EIP-1271 signatures (EIP-3009, Permit2) are refused until it is unfrozen. From the owner key:"
                            pre { code { "cast send " (wallet) " \"freeze()\" --rpc-url \"$RPC_URL\" --private-key \"$OWNER_PRIVATE_KEY\"" } }
                            "From a Safe: a transaction to " code { (wallet) } " with value 0 and data " code { (freeze_data) } "."
                        }
                        li {
                            strong { "Check it is frozen:" }
                            pre { code { "cast call " (wallet) " \"frozen()(bool)\" --rpc-url \"$RPC_URL\"" } }
                        }
                        li {
                            strong { "Rotate the co-signer" } " (" code { "setCosigner(address)" } ", which also voids every outstanding co-signature): give the service a new co-signer key, then"
                            pre { code { "cast send " (wallet) " \"setCosigner(address)\" \"$NEW_COSIGNER_ADDRESS\" --rpc-url \"$RPC_URL\" --private-key \"$OWNER_PRIVATE_KEY\"" } }
                            "If the agent key may be out too, rotate it the same way with " code { "setAgent(address)" } "."
                        }
                        li {
                            strong { "Recover funds if needed" } " (works while frozen):"
                            pre { code { "cast send " (wallet) " \"withdraw(address,address,uint256)\" \"$TOKEN\" \"$SAFE_ADDRESS\" \"$AMOUNT\" --rpc-url \"$RPC_URL\" --private-key \"$OWNER_PRIVATE_KEY\"" } }
                        }
                        li {
                            strong { "Unfreeze" } " once the keys are rotated:"
                            pre { code { "cast send " (wallet) " \"unfreeze()\" --rpc-url \"$RPC_URL\" --private-key \"$OWNER_PRIVATE_KEY\"" } }
                        }
                    }
                }
            }
            p {
                "Then an admin acknowledges each spend on " a href="/alerts" { "the alerts page" }
                " (or " code { "POST /v1/unauthorized-spends/{id}/acknowledge" } "); the banner stays until every one is."
            }
        },
    ))
}

#[derive(Deserialize)]
struct AcknowledgeForm {
    #[serde(default)]
    csrf: String,
}

async fn acknowledge(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<AcknowledgeForm>,
) -> Result<Response, PageError> {
    session.require(&["admin"])?;
    session.check_csrf(&form.csrf)?;
    crate::alerts::acknowledge_by(&state, &id, &session.name).await?;
    Ok(Redirect::to("/alerts").into_response())
}
