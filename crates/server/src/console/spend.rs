//! Spend per wallet and token: settled, reserved and remaining in each policy window, a chart
//! of the last day (an SVG the server draws), and the wallet's on-chain backstop beside it.

use axum::{Router, extract::State, response::Response, routing::get};
use chaperone_chain::AgentWallet;
use chaperone_core::{
    Address, U256,
    policy::Token,
    readable::{TokenUnits, duration, iso8601},
};
use maud::{Markup, html};

use super::{PageError, Session, page, short};
use crate::{AppState, words::units_of};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/spend", get(spend))
}

/// The chart's span and bars: the last 24 hours, hourly.
const CHART_SPAN: u64 = 24 * 3600;
const CHART_BUCKET: u64 = 3600;

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

/// A bar chart of `series` (bucket start, amount), scaled to its largest bar or `cap`. Drawn
/// with maud like the rest of the page: each bar's title carries the token's symbol, which
/// its deployer chose, so nothing here is pasted in as text.
fn chart(series: &[(u64, U256)], cap: U256, units: &TokenUnits) -> Markup {
    let (width, height, bar_gap) = (480u64, 120u64, 2u64);
    let top = series
        .iter()
        .map(|(_, a)| *a)
        .max()
        .unwrap_or_default()
        .max(cap)
        .max(U256::from(1));
    let bar = width / series.len().max(1) as u64;
    // Scaled in U256 (amounts exceed 64 bits), then narrowed: the bar fits `height`.
    let scaled = |amount: U256| u64::try_from(amount * U256::from(height) / top).unwrap_or(height);
    let first = series.first().map(|(t, _)| iso8601(*t)).unwrap_or_default();
    html! {
        svg.chart viewBox=(format!("0 0 {width} {}", height + 16)) role="img" xmlns="http://www.w3.org/2000/svg" {
            title { "Committed per hour, last 24 hours" }
            @for (i, (start, amount)) in series.iter().enumerate() {
                @let h = scaled(*amount);
                rect x=(i as u64 * bar) y=(height - h) width=(bar.saturating_sub(bar_gap)) height=(h) {
                    title { (iso8601(*start)) ": " (units.format(*amount)) }
                }
            }
            @if !cap.is_zero() && cap <= top {
                @let y = height - scaled(cap);
                line.cap x1="0" x2=(width) y1=(y) y2=(y) { title { "hourly share of the cap" } }
            }
            text x="0" y=(height + 14) { (first) }
            text x=(width) y=(height + 14) text-anchor="end" { "now" }
        }
    }
}

async fn spend(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    session.require(&["admin", "auditor"])?;
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
                    now.saturating_sub(CHART_SPAN) + 1,
                    now + 1,
                    CHART_BUCKET,
                )
                .await?;
            // The day's cap spread over its hours, as a guide line.
            let day_cap = limit
                .windows
                .iter()
                .find(|w| w.window.0 == CHART_SPAN)
                .map_or(U256::ZERO, |w| {
                    w.max.0 / U256::from(CHART_SPAN / CHART_BUCKET)
                });
            let backstop = backstop(&state, wallet, limit.token).await;
            tokens.push((limit.token, token_units, windows, series, day_cap, backstop));
        }
        sections.push((wallet, policy.version, tokens));
    }
    Ok(page(
        "Spend",
        &session,
        html! {
            p.exports { "Export: " a href="/v1/spend?format=csv" { "CSV" } " · " a href="/v1/spend?format=jsonl" { "JSON Lines" } }
            @if sections.is_empty() { p.empty { "No wallet has a policy yet." } }
            @for (wallet, version, tokens) in &sections {
                section.wallet {
                    h2 { "Wallet " (short(wallet)) small { " policy v" (version) } }
                    @for (token, units, windows, series, day_cap, backstop) in tokens {
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
                            (chart(series, *day_cap, units))
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
