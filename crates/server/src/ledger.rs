//! The payment ledger's rows and the payment columns of decisions, shared by the payments and
//! decisions APIs and the console: what a recorded request asks for (method, tokens, amounts,
//! recipients), the ledger's filters (a bad value is a precise 400) and one page of it, with
//! token units from the chain's (cached, made printable) symbols and decimals.

use std::collections::HashMap;

use chaperone_api::{
    CosignRequest,
    ledger::{DecisionPayment, PaymentKind, PaymentRow, PaymentStatus},
};
use chaperone_core::{
    Address, U256,
    policy::Token,
    readable::{TokenUnits, iso8601, units as in_units},
};
use chaperone_store::{LedgerRow, PaymentDetail, PaymentFilter, PaymentState, Settlement};

use crate::{
    AppState,
    http::ApiError,
    paging::{Params, invalid, next_cursor},
    words::units_of,
};

/// The ledger's columns, in the exports' order: readable beside exact values.
pub(crate) const PAYMENT_COLUMNS: &[&str] = &[
    "created_at_iso",
    "created_at",
    "wallet",
    "agent",
    "method",
    "token_symbol",
    "token_decimals",
    "token",
    "amount",
    "amount_base_units",
    "recipients",
    "status",
    "settlement_tx",
    "settlement_block",
    "settled_at_iso",
    "settled_at",
    "valid_until",
    "request_id",
    "policy_version",
    "approvers",
    "approval_comment",
    "call_leaf_hash",
];

/// A time filter: Unix seconds, a day (`YYYY-MM-DD`, its start) or a UTC date-time
/// (`YYYY-MM-DDTHH:MM`, optionally `:SS` and `Z`), as the console's inputs send it.
pub(crate) fn parse_time(text: &str) -> Option<u64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time.strip_suffix('Z').unwrap_or(time))),
        None => (text, None),
    };
    let day = chaperone_core::readable::date_start(date)?;
    let Some(time) = time else {
        return Some(day);
    };
    let parts: Vec<&str> = time.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let number = |i: usize, max: u64| {
        parts
            .get(i)
            .map_or(Some(0), |p| p.parse::<u64>().ok().filter(|n| *n <= max))
    };
    Some(day + number(0, 23)? * 3600 + number(1, 59)? * 60 + number(2, 59)?)
}

/// What one token of a recorded request moves.
pub(crate) struct AskedSpend {
    pub(crate) token: Token,
    /// Base units, summed over the request's effects on this token.
    pub(crate) amount: U256,
    /// Who receives it, each once, in the order named.
    pub(crate) recipients: Vec<Address>,
}

/// What a recorded request asks for: its method and, per token in the order first moved, the
/// base units and the recipients.
pub(crate) struct Asked {
    pub(crate) method: PaymentKind,
    pub(crate) spends: Vec<AskedSpend>,
}

/// `None` if the recorded request cannot be read back (it was stored as parsed, so only a
/// changed wire format would do that).
pub(crate) fn asked(request_json: &str) -> Option<Asked> {
    let request: CosignRequest = serde_json::from_str(request_json).ok()?;
    let spends = request
        .payment
        .spends()
        .into_iter()
        .map(|(token, amount, recipients)| AskedSpend {
            token,
            amount,
            recipients,
        })
        .collect();
    Some(Asked {
        method: request.payment.kind(),
        spends,
    })
}

pub(crate) fn status_of(state: PaymentState) -> PaymentStatus {
    match state {
        PaymentState::Reserved => PaymentStatus::Reserved,
        PaymentState::Settled => PaymentStatus::Settled,
        PaymentState::Released => PaymentStatus::Released,
        PaymentState::Expired => PaymentStatus::Expired,
        PaymentState::Misused => PaymentStatus::Misused,
    }
}

fn state_of(status: PaymentStatus) -> PaymentState {
    match status {
        PaymentStatus::Reserved => PaymentState::Reserved,
        PaymentStatus::Settled => PaymentState::Settled,
        PaymentStatus::Released => PaymentState::Released,
        PaymentStatus::Expired => PaymentState::Expired,
        PaymentStatus::Misused => PaymentState::Misused,
    }
}

/// The ledger's filters, read from the query; a bad value is a precise 400.
pub(crate) struct LedgerQuery {
    pub(crate) filter: PaymentFilter,
    pub(crate) recipient: Option<Address>,
}

impl LedgerQuery {
    pub(crate) fn parse(params: &Params) -> Result<Self, ApiError> {
        let time = |name: &str| {
            params
                .0
                .get(name)
                .map(|v| {
                    parse_time(v).ok_or_else(|| {
                        invalid(format!(
                            "`{name}={v}` is not a time (Unix seconds, YYYY-MM-DD or \
                             YYYY-MM-DDTHH:MM[:SS]Z)"
                        ))
                    })
                })
                .transpose()
        };
        let amount = |name: &str| -> Result<Option<U256>, ApiError> {
            params
                .0
                .get(name)
                .map(|v| {
                    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| U256::from_str_radix(v, 10).ok())
                        .flatten()
                        .ok_or_else(|| {
                            invalid(format!(
                                "`{name}={v}` is not an amount in base units (a whole number)"
                            ))
                        })
                })
                .transpose()
        };
        let before = params
            .cursor()
            .map(|c| {
                c.split_once(':')
                    .and_then(|(at, id)| Some((at.parse().ok()?, id.parse::<i64>().ok()?)))
                    .ok_or_else(|| invalid("`cursor` is not one this API gave"))
            })
            .transpose()?;
        let (from, to) = (time("from")?, time("to")?);
        let (min_amount, max_amount) = (amount("min_amount")?, amount("max_amount")?);
        if let (Some(min), Some(max)) = (min_amount, max_amount)
            && min > max
        {
            return Err(invalid("`min_amount` is above `max_amount`"));
        }
        let recipient = params.get("recipient", "an address")?;
        Ok(Self {
            filter: PaymentFilter {
                wallet: params.get("wallet", "an address")?,
                agent: params.get("agent", "an address")?,
                token: params.get("token", "`native` or a token address")?,
                mentions: recipient,
                min_amount,
                max_amount,
                state: params
                    .0
                    .get("status")
                    .map(|s| s.parse::<PaymentStatus>().map_err(invalid))
                    .transpose()?
                    .map(state_of),
                from,
                to,
                before,
                limit: params.limit()?,
            },
            recipient,
        })
    }
}

/// Rows one page reads at most when it filters by recipient, which the store only
/// prefilters (a request that mentions the address): past it the page ends with what matched
/// and a cursor to go on from, so a flood of requests that mention an address without paying
/// it cannot make a page scan the whole ledger.
pub(crate) const MAX_SCANNED: usize = 5_000;

/// One page of the ledger: the store's rows whose recipients match, read on until the page
/// is full, the rows run out or [`MAX_SCANNED`] rows were read (then the page may hold fewer
/// rows than asked for, and its cursor continues after the last row read), and the next
/// cursor.
pub(crate) async fn ledger_page(
    state: &AppState,
    query: &LedgerQuery,
) -> Result<(Vec<PaymentRow>, Option<String>), ApiError> {
    let limit = query.filter.limit;
    let mut filter = query.filter.clone();
    if query.recipient.is_some() {
        // Most rows may not match: read in large pages (rows past the last one kept are not
        // consumed, the cursor names the last one kept).
        filter.limit = filter.limit.max(chaperone_api::compliance::MAX_LIMIT);
    }
    let mut kept: Vec<(LedgerRow, Vec<Address>, PaymentKind)> = Vec::new();
    let mut scanned = 0;
    let mut last_read = None;
    let exhausted = loop {
        let rows = state.store().payments(&filter).await?;
        let exhausted = rows.len() < filter.limit as usize;
        for r in rows {
            scanned += 1;
            filter.before = Some((r.created_at, r.id));
            last_read = Some(format!("{}:{}", r.created_at, r.id));
            let asked = asked(&r.request_json);
            let method = asked.as_ref().map_or(PaymentKind::Execute, |a| a.method);
            let recipients = asked
                .and_then(|a| a.spends.into_iter().find(|s| s.token == r.token))
                .map(|s| s.recipients)
                .unwrap_or_default();
            if query.recipient.is_none_or(|a| recipients.contains(&a)) {
                kept.push((r, recipients, method));
                if kept.len() == limit as usize {
                    break;
                }
            }
        }
        if exhausted || kept.len() == limit as usize || scanned >= MAX_SCANNED {
            break exhausted;
        }
    };
    let next = match next_cursor(
        kept.len(),
        limit,
        kept.last()
            .map(|(r, _, _)| format!("{}:{}", r.created_at, r.id)),
    ) {
        Some(cursor) => Some(cursor),
        // The scan stopped before the rows ran out: go on after the last row read.
        None if !exhausted => last_read,
        None => None,
    };
    let units = units_of(state, kept.iter().map(|(r, _, _)| r.token).collect()).await;
    let rows = kept
        .into_iter()
        .map(|(r, recipients, method)| {
            let unit = units
                .get(&r.token)
                .cloned()
                .unwrap_or_else(TokenUnits::native);
            let settled = r.settlement;
            PaymentRow {
                request_id: r.request_id,
                created_at: r.created_at,
                created_at_iso: iso8601(r.created_at),
                wallet: r.wallet,
                agent: r.agent,
                method,
                token: r.token,
                amount: in_units(r.amount, unit.decimals),
                token_symbol: unit.symbol,
                token_decimals: unit.decimals,
                amount_base_units: chaperone_core::policy::Amount(r.amount),
                recipients,
                policy_version: r.policy_version,
                approvers: r.approvers,
                approval_comment: r.approval_comment,
                call_leaf_hash: r.call_leaf_hash,
                status: status_of(r.state),
                valid_until: r.valid_until,
                settlement_tx: settled.and_then(|s| s.tx),
                settlement_block: settled.map(|s| s.block),
                settled_at: settled.and_then(|s| s.time),
                settled_at_iso: settled.and_then(|s| s.time).map(iso8601),
            }
        })
        .collect();
    Ok((rows, next))
}

/// The payment columns of decisions: per decision, what it moves, per token, with the
/// ledger's status of each once co-signed.
pub(crate) fn decision_payments(
    detail: &PaymentDetail,
    units: &HashMap<Token, TokenUnits>,
) -> (Option<PaymentKind>, Vec<DecisionPayment>) {
    let Some(Asked { method, spends }) = asked(&detail.request_json) else {
        return (None, Vec::new());
    };
    let payments = spends
        .into_iter()
        .map(
            |AskedSpend {
                 token,
                 amount,
                 recipients,
             }| {
                let unit = units
                    .get(&token)
                    .cloned()
                    .unwrap_or_else(TokenUnits::native);
                let reservation = detail.reservations.iter().find(|(t, _, _)| *t == token);
                let settled: Option<Settlement> = reservation.and_then(|(_, _, s)| *s);
                DecisionPayment {
                    token,
                    amount: in_units(amount, unit.decimals),
                    token_symbol: unit.symbol,
                    token_decimals: unit.decimals,
                    amount_base_units: chaperone_core::policy::Amount(amount),
                    recipients,
                    status: reservation.map(|(_, s, _)| status_of(*s)),
                    settlement_tx: settled.and_then(|s| s.tx),
                    settled_at: settled.and_then(|s| s.time),
                }
            },
        )
        .collect();
    (Some(method), payments)
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_parse_in_every_documented_form_and_nothing_else() {
        assert_eq!(parse_time("1750000000"), Some(1_750_000_000));
        assert_eq!(parse_time("1970-01-02"), Some(86_400));
        assert_eq!(parse_time("1970-01-02T01:02"), Some(86_400 + 3_720));
        assert_eq!(parse_time("1970-01-02T01:02:03Z"), Some(86_400 + 3_723));
        for bad in [
            "",
            "yesterday",
            "1970-01-02T25:00",
            "1970-01-02T1:2",
            "-5",
            "1970-13-01",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
