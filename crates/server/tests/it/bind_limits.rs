//! Floods of rows, written straight into the database (the decider would take minutes).
//!
//! Red team M3: more rows than a statement may bind parameters (SQLite 32,766, PostgreSQL
//! 65,535). The approvals inbox and the evidence pack read them without one `IN (…)` per row:
//! the inbox shows the oldest and counts the rest, a pack of more decisions than it carries is
//! a precise 400. Never a 500.
//!
//! Red team L2: payments whose requests mention an address without paying it. The ledger's
//! recipient filter reads a bounded number of rows per page and says where to go on.

use axum::http::StatusCode;
use chaperone_api::evidence::MAX_EVIDENCE_DECISIONS;
use chaperone_core::{Address, B256};
use chaperone_store::Store;
use chaperone_testkit::sqlite_file;

use crate::{
    ADMIN, APPROVER, AUDITOR, NOW, Service, call, call_text, cosign::register_wallet,
    get_with_cookie, login, service_on,
};

/// More than PostgreSQL's bind limit, so more than SQLite's too.
const ROWS: usize = 70_000;

/// Runs `statements` on the database at `url`.
async fn run(url: &str, statements: Vec<String>) {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        for sql in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        for sql in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
    }
}

/// The request id of flood row `i`.
fn id(i: usize) -> String {
    B256::left_padding_from(&(i as u64 + 1).to_be_bytes()).to_string()
}

/// `ROWS` requests of `wallet` waiting for a human: literal values, many rows per statement,
/// no bound parameter.
async fn pending_requests(url: &str, wallet: Address) {
    let mut statements = Vec::new();
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(2_000) {
        let ids: Vec<String> = chunk.iter().map(|i| id(*i)).collect();
        let decisions: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(k, id)| {
                format!(
                    "('{id}', '{wallet:#x}', {at}, {until}, '{{}}', 'pending_approval', '[]', 1, '{zero}')",
                    at = NOW - 3_600 + (chunk[k] % 3_000) as u64,
                    until = NOW + 3_600,
                    zero = B256::ZERO,
                )
            })
            .collect();
        statements.push(format!(
            "INSERT INTO decisions (request_id, wallet, created_at, valid_until, request, \
             outcome, reasons, policy_version, policy_hash) VALUES {}",
            decisions.join(", ")
        ));
        let approvals: Vec<String> = ids
            .iter()
            .map(|id| format!("('{id}', 'pending', {}, 1)", NOW + 3_600))
            .collect();
        statements.push(format!(
            "INSERT INTO approvals (request_id, status, expires_at, required) VALUES {}",
            approvals.join(", ")
        ));
    }
    run(url, statements).await;
}

/// The service on each backend, with its database's URL.
async fn services_with_urls() -> Vec<(Service, String, Option<chaperone_testkit::SqliteFile>)> {
    let file = sqlite_file("bind_limits");
    let url = file.url.clone();
    let mut out = vec![(
        service_on(Store::connect(&url).await.unwrap()).await,
        url,
        Some(file),
    )];
    if let Some(url) = chaperone_testkit::postgres_database("chaperone_srv").await {
        out.push((
            service_on(Store::connect(&url).await.unwrap()).await,
            url,
            None,
        ));
    }
    out
}

#[tokio::test]
async fn more_pending_requests_than_a_statement_binds_are_answered() {
    for (s, url, _file) in services_with_urls().await {
        register_wallet(&s).await;
        pending_requests(&url, s.wallet).await;

        // The inbox: the oldest requests, and how many more wait.
        let approver = login(&s.router, APPROVER).await;
        let (status, _, html) = get_with_cookie(&s.router, "/approvals", &approver).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(
            html.contains(&format!("{ROWS} requests are waiting")),
            "{}",
            &html[..html.len().min(4_000)]
        );
        let shown = html.matches("<section class=\"approval\"").count();
        assert!((1..=100).contains(&shown), "{shown} shown");

        // The evidence pack: more decisions than one pack carries is a precise 400.
        let period = format!("from={}&to={}", NOW - 7_200, NOW);
        for what in ["report", "bundle"] {
            let (status, body) = call(
                &s.router,
                "GET",
                &format!("/v1/evidence/{what}?{period}"),
                Some(AUDITOR),
                None,
            )
            .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some("out_of_range")),
                "{what}: {body}"
            );
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("more than {MAX_EVIDENCE_DECISIONS} decisions")),
                "{message}"
            );
        }
        // A period within the bound is answered, its approvals read in one go.
        let (status, html, _, _) = call_text(
            &s.router,
            &format!(
                "/v1/evidence/report?from={}&to={}",
                NOW - 3_600,
                NOW - 3_590
            ),
            ADMIN,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", &html[..html.len().min(2_000)]);
    }
}

/// Red team L2: `FLOOD` approved payments newer than the one to `TARGET` mention it without
/// paying it (the store's prefilter lets them through). A page reads at most `MAX_SCANNED`
/// rows, then ends with a cursor; following the cursors finds the payment.
#[tokio::test]
async fn a_recipient_search_reads_a_bounded_number_of_rows_per_page() {
    const FLOOD: usize = 6_000;
    const TARGET: Address = Address::repeat_byte(0x7e);
    for (s, url, _file) in services_with_urls().await {
        register_wallet(&s).await;
        let uri = format!("/v1/admin/wallets/{}/policy", s.wallet);
        let policy = serde_json::json!({
            "version": 1,
            "chains": [31337],
            "limits": [{ "token": "native", "per_transaction": "1000", "windows": [{ "window": "24h", "max": "100000" }] }],
        });
        let (status, body) = call(
            &s.router,
            "PUT",
            &uri,
            Some(ADMIN),
            Some(policy.to_string()),
        )
        .await;
        assert!(status.is_success(), "{body}");
        let payment = chaperone_api::Payment::Execute(chaperone_core::Execute {
            calls: vec![chaperone_core::Call {
                to: TARGET,
                value: chaperone_core::U256::from(10),
                data: Default::default(),
            }],
            nonce: chaperone_core::U256::from(1),
            validUntil: NOW + 60,
        });
        let body = chaperone_testkit::signed_cosign_json(&s.agent, 31337, s.wallet, payment);
        let (status, answer) = call(
            &s.router,
            "POST",
            "/v1/cosign",
            None,
            Some(body.to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let paid = answer["request_id"].as_str().unwrap().to_owned();

        let wallet = format!("{:#x}", s.wallet);
        let mention = format!("{{\"note\":\"{TARGET:#x}\"}}");
        let mut statements = Vec::new();
        for chunk in (0..FLOOD).collect::<Vec<_>>().chunks(1_000) {
            let decisions: Vec<String> = chunk
                .iter()
                .map(|i| {
                    format!(
                        "('{}', '{wallet}', {}, {}, '{mention}', 'approved', '[]', 1, '{}')",
                        id(*i),
                        NOW + 1,
                        NOW + 60,
                        B256::ZERO
                    )
                })
                .collect();
            statements.push(format!(
                "INSERT INTO decisions (request_id, wallet, created_at, valid_until, request, \
                 outcome, reasons, policy_version, policy_hash) VALUES {}",
                decisions.join(", ")
            ));
            let reservations: Vec<String> = chunk
                .iter()
                .map(|i| {
                    format!(
                        "('{}', '{wallet}', 'native', '1', {}, {}, 'reserved')",
                        id(*i),
                        NOW + 1,
                        NOW + 60
                    )
                })
                .collect();
            statements.push(format!(
                "INSERT INTO spend_reservations (request_id, wallet, token, amount, created_at, \
                 expires_at, status) VALUES {}",
                reservations.join(", ")
            ));
        }
        run(&url, statements).await;

        let first = format!("/v1/payments?recipient={TARGET}&limit=10");
        let (status, page) = call(&s.router, "GET", &first, Some(AUDITOR), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["items"], serde_json::json!([]), "no flood row pays it");
        let cursor = page["next_cursor"]
            .as_str()
            .expect("the scan stopped with a cursor to go on from")
            .to_owned();
        let (status, page) = call(
            &s.router,
            "GET",
            &format!("{first}&cursor={cursor}"),
            Some(AUDITOR),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{page}");
        assert_eq!(items[0]["request_id"], paid);
        assert!(page["next_cursor"].is_null(), "{page}");
    }
}
