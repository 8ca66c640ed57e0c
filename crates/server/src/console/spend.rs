//! Spend per wallet and token: settled, reserved and remaining in each policy window, a chart
//! of the last 24 h, 7 d or 30 d against the policy's cap (chart.rs), and the wallet's on-chain
//! backstop beside it.

use axum::{
    Router,
    extract::{Query, State},
    response::Response,
    routing::get,
};
use chaperone_chain::AgentWallet;
use chaperone_core::{
    Address, U256,
    policy::Token,
    readable::{TokenUnits, duration},
};
use maud::html;
use serde::Deserialize;

use super::{
    PageError, Session,
    chart::{Chart, Span},
    page, short,
};
use crate::{AppState, words::units_of};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/spend", get(spend))
}

/// `/spend?span=7d`: the chart's span (24h, 7d or 30d; 24h when absent).
#[derive(Deserialize)]
struct SpendQuery {
    span: Option<String>,
}

/// The on-chain backstop of a token, as the wallet reports it.
struct Backstop {
    limit: U256,
    remaining: U256,
    period: u64,
}

async fn backstop(state: &AppState, wallet: Address, token: Token) -> Option<Backstop> {
    let chain = state.log().chain.as_ref()?;
    let contract = AgentWallet::new(wallet, &chain.provider);
    let address = match token {
        Token::Native => Address::ZERO,
        Token::Erc20(address) => address,
    };
    let configured = contract.backstop(address).call().await.ok()?;
    let remaining = contract.backstopRemaining(address).call().await.ok()?;
    Some(Backstop {
        limit: U256::from(configured.limit),
        remaining,
        period: u64::from(configured.period),
    })
}

async fn spend(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<SpendQuery>,
) -> Result<Response, PageError> {
    session.require(&["admin", "auditor"])?;
    // A span that is not one of the three gets the page with a message, and the default.
    let asked = query.span.as_deref().unwrap_or(Span::Day.param());
    let span = Span::parse(asked).unwrap_or(Span::Day);
    let bad_span = Span::parse(asked).is_none().then(|| asked.to_owned());
    let now = state.now();
    let mut sections = Vec::new();
    for wallet in state.store().wallet_addresses().await? {
        let Some(policy) = state.store().policy(wallet).await? else {
            continue;
        };
        let tokens = policy.limits.iter().map(|l| l.token).collect();
        let units = units_of(&state, tokens).await;
        let mut tokens = Vec::new();
        for limit in &policy.limits {
            let token_units = units
                .get(&limit.token)
                .cloned()
                .unwrap_or_else(TokenUnits::native);
            let mut windows = Vec::new();
            for window in &limit.windows {
                let since = now.saturating_sub(window.window.0);
                let totals = state
                    .store()
                    .spend(Some(wallet), Some(limit.token), since)
                    .await?;
                let (settled, reserved) =
                    totals.iter().fold((U256::ZERO, U256::ZERO), |(s, r), t| {
                        (
                            s.saturating_add(t.settled.0),
                            r.saturating_add(t.reserved.0),
                        )
                    });
                let remaining = window
                    .max
                    .0
                    .saturating_sub(settled.saturating_add(reserved));
                windows.push((window.window.0, window.max.0, settled, reserved, remaining));
            }
            let series = state
                .store()
                .spend_series(
                    wallet,
                    limit.token,
                    now.saturating_sub(span.seconds()) + 1,
                    now + 1,
                    span.bucket(),
                )
                .await?;
            // The cap the chart draws: the policy's window as long as the span, if any.
            let cap = limit
                .windows
                .iter()
                .find(|w| w.window.0 == span.seconds())
                .map(|w| w.max.0);
            let backstop = backstop(&state, wallet, limit.token).await;
            tokens.push((limit.token, token_units, windows, series, cap, backstop));
        }
        sections.push((wallet, policy.version, tokens));
    }
    Ok(page(
        "Spend",
        &session,
        html! {
            p.exports { "Export: " a href="/v1/spend?format=csv" { "CSV" } " · " a href="/v1/spend?format=jsonl" { "JSON Lines" } }
            @if let Some(bad) = &bad_span {
                p.error { "The span “" (bad) "” is not one of 24h, 7d, 30d: showing 24 h." }
            }
            p.spans {
                "Chart: "
                @for (i, each) in Span::ALL.iter().enumerate() {
                    @if i > 0 { " · " }
                    @if *each == span { strong { (each.label()) } }
                    @else { a href=(format!("/spend?span={}", each.param())) { (each.label()) } }
                }
            }
            @if sections.is_empty() { p.empty { "No wallet has a policy yet." } }
            @for (wallet, version, tokens) in &sections {
                section.wallet {
                    h2 { "Wallet " (short(wallet)) small { " policy v" (version) } }
                    @for (token, units, windows, series, cap, backstop) in tokens {
                        div.token {
                            h3 { (units.symbol) small { " " (token) } }
                            table.windows {
                                thead { tr { th { "Window" } th { "Settled" } th { "Reserved" } th { "Remaining" } th { "Cap" } } }
                                tbody {
                                    @for (window, max, settled, reserved, remaining) in windows {
                                        tr {
                                            td { (duration(*window)) }
                                            td { (units.format(*settled)) }
                                            td { (units.format(*reserved)) }
                                            td.remaining { (units.format(*remaining)) }
                                            td { (units.format(*max)) }
                                        }
                                    }
                                }
                            }
                            (Chart { span, series, cap: *cap, units }.render())
                            p.backstop {
                                "On-chain backstop: "
                                @match backstop {
                                    Some(b) if b.limit.is_zero() => { "none set for this token" }
                                    Some(b) => { (units.format(b.remaining)) " of " (units.format(b.limit)) " left this " (duration(b.period)) }
                                    None => { "unknown (the server has no chain)" }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}
