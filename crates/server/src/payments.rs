//! The payment ledger, `GET /v1/payments` (role `auditor`, or `admin`, like `/v1/decisions`):
//! one row per payment (a token leaving a wallet under an approved decision) with its agent,
//! method, recipients, decision, approvers, the model call it was made in, and how it ended on
//! chain, newest first. The rows are built in `ledger.rs`, which the console shares.

use axum::{
    extract::{Query, State, rejection::QueryRejection},
    response::Response,
};
use chaperone_api::{
    Format, Page,
    ledger::{PaymentRow, PaymentStatus},
};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    http::{ApiError, Caller},
    ledger::{LedgerQuery, PAYMENT_COLUMNS, ledger_page},
    openapi::error_answers,
    paging::{Paging, Params, page, row},
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(payments))
}

error_answers!(LedgerErrors: InvalidQuery, OutOfRange);

/// The filters of the ledger.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // declared for the document and the parser; `Params` reads the query
struct PaymentFilters {
    /// One wallet's.
    wallet: Option<String>,
    /// Those of the wallets this agent key acts for.
    agent: Option<String>,
    /// `native` or a token address.
    token: Option<String>,
    /// Payments to this address (or allowances to this spender).
    recipient: Option<String>,
    /// At least this many base units.
    min_amount: Option<String>,
    /// At most this many base units.
    max_amount: Option<String>,
    /// reserved, settled, released, expired or misused.
    status: Option<PaymentStatus>,
    /// Co-signed at or after: Unix seconds, `2026-12-07` or `2026-12-07T10:30[:00][Z]` (UTC).
    from: Option<String>,
    /// Co-signed before, in the same forms.
    to: Option<String>,
}

/// Every payment, newest first, with its decision, approvers and settlement.
#[utoipa::path(
    get,
    path = "/v1/payments",
    description = "Roles: auditor, admin. One row per payment: a token leaving a wallet under \
        an approved decision (execute, EIP-3009 or Permit2). Amounts in token units and exact \
        base units; `status` goes reserved -> settled, released, expired or misused (a Permit2 nonce another payment used).",
    security(("bearer" = [])),
    params(PaymentFilters, Paging),
    responses(
        (status = 200, description = "a page of payments", content(
            (Page<PaymentRow> = "application/json"),
            (PaymentRow = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        LedgerErrors,
    )
)]
async fn payments(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&["auditor", "admin"])?;
    let params = Params::parse::<PaymentFilters>(query)?;
    let ledger = LedgerQuery::parse(&params)?;
    let format: Format = params.format()?;
    let (rows, next) = ledger_page(&state, &ledger).await?;
    Ok(page(
        format,
        PAYMENT_COLUMNS,
        rows.into_iter().map(row).collect(),
        next,
    ))
}
