//! The ledger as people read it: the CSV and JSON Lines exports (readable beside exact), the
//! console's Payments and Decisions pages (a bad filter is a message on the page), and a
//! hostile token symbol kept as text in each.

use axum::http::StatusCode;
use serde_json::Value;

use super::{TOKEN, all_pages, get, paid};
use crate::{AUDITOR, call_text, get_with_cookie, login, services};

/// The ledger's columns, as the exports write them.
const COLUMNS: &str = "created_at_iso,created_at,wallet,agent,method,token_symbol,token_decimals,\
token,amount,amount_base_units,recipients,status,settlement_tx,settlement_block,settled_at_iso,\
settled_at,valid_until,request_id,policy_version,approvers,approval_comment,call_leaf_hash";

#[tokio::test]
async fn exports_carry_the_same_columns_readable_beside_exact() {
    for s in services().await {
        let p = paid(&s).await;
        let all = all_pages(&s, "/v1/payments").await;
        let (status, csv, content_type, cursor) =
            call_text(&s.router, "/v1/payments?format=csv&limit=4", AUDITOR).await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.unwrap().starts_with("text/csv"));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], COLUMNS);
        assert_eq!(lines.len(), 5, "a header and four rows:\n{csv}");
        assert!(cursor.is_some(), "the fifth row is on the next page");
        let approved = lines
            .iter()
            .find(|l| l.contains(&p.approved.to_string()))
            .unwrap();
        assert!(
            approved.starts_with("2025-06-15T15:06:40Z,1750000000,"),
            "{approved}"
        );
        assert!(approved.contains(",0.0000000000000007,700,"), "{approved}");
        assert!(approved.contains(",alice,invoice #7,"), "{approved}");

        let (status, jsonl, content_type, _) =
            call_text(&s.router, "/v1/payments?format=jsonl", AUDITOR).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some("application/x-ndjson"));
        let parsed: Vec<Value> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(parsed, all);
        let keys: Vec<&str> = COLUMNS.split(',').collect();
        let mut row_keys: Vec<&str> = parsed[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = keys.clone();
        row_keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(row_keys, expected, "the CSV has every field of a row");

        // The decisions' CSV: the call column, reasons as codes beside words, payments.
        let (_, csv, _, _) = call_text(&s.router, "/v1/decisions?format=csv", AUDITOR).await;
        let header = csv.lines().next().unwrap();
        for column in [
            "call_leaf_hash",
            "agent",
            "method",
            "payments_text",
            "approvers",
        ] {
            assert!(header.split(',').any(|c| c == column), "{column}: {header}");
        }
        assert!(!csv.contains("[{"), "no JSON in the CSV:\n{csv}");
        let approved = csv
            .lines()
            .find(|l| l.contains(&p.approved.to_string()))
            .unwrap();
        assert!(
            approved.contains(",ETH,native,0.0000000000000007,700,"),
            "{approved}"
        );
        assert!(
            approved.contains(",reserved,,,alice,invoice #7"),
            "{approved}"
        );
        assert!(csv.contains(",per_transaction_cap,"), "{csv}");
        assert!(csv.contains("is over the per-payment cap of"), "{csv}");
    }
}

#[tokio::test]
async fn console_pages_show_the_ledger_and_a_bad_filter_as_a_message() {
    let s = crate::service().await;
    let p = paid(&s).await;
    let cookie = login(&s.router, AUDITOR).await;
    let (status, _, html) = get_with_cookie(&s.router, "/payments", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(">Payments</a>"), "the navigation links it");
    for id in [p.native, p.erc20, p.eip3009, p.permit2, p.approved] {
        assert!(html.contains(&id.to_string()), "{id} is listed");
    }
    assert!(html.contains("EIP-3009") && html.contains("Permit2"));
    assert!(html.contains("invoice #7"));
    assert!(html.contains("/v1/payments?format=csv"), "an export link");

    let uri = format!("/payments?token={TOKEN}&min_amount=300&status=reserved");
    let (_, _, html) = get_with_cookie(&s.router, &uri, &cookie).await;
    assert!(html.contains(&p.eip3009.to_string()) && html.contains(&p.permit2.to_string()));
    assert!(!html.contains(&p.erc20.to_string()) && !html.contains(&p.native.to_string()));
    assert!(
        html.contains("format=csv") && html.contains("min_amount=300"),
        "the export keeps the filters"
    );

    for (uri, said) in [
        ("/payments?min_amount=lots", "min_amount=lots"),
        ("/payments?wallet=0x12", "wallet=0x12"),
        ("/payments?from=2025-13-01T00:00", "from=2025-13-01T00:00"),
        ("/decisions?wallet=0x12", "wallet `0x12`"),
        ("/decisions?reason=made_up", "reason=made_up"),
        ("/decisions?from=someday", "date `someday`"),
    ] {
        let (status, _, html) = get_with_cookie(&s.router, uri, &cookie).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(
            html.contains("This filter cannot be applied"),
            "{uri}:\n{html}"
        );
        assert!(html.contains(said), "{uri} says what is wrong:\n{html}");
        assert!(
            html.contains("<form class=\"filters\""),
            "{uri} keeps the form"
        );
        assert!(!html.contains("<tr class="), "{uri} lists nothing:\n{html}");
    }
    let (_, _, html) = get_with_cookie(&s.router, "/decisions", &cookie).await;
    assert!(
        html.contains("<select name=\"reason\""),
        "reason codes are a list"
    );
    assert!(html.contains("<option value=\"window_cap\""));
    assert_eq!(html.matches("<tr class=").count(), 6, "every decision");
    let (_, _, html) =
        get_with_cookie(&s.router, "/decisions?reason=per_transaction_cap", &cookie).await;
    assert_eq!(html.matches("<tr class=").count(), 1, "{html}");
    assert_eq!(html.matches("<tr class=\"denied\"").count(), 1, "{html}");
}

#[tokio::test]
async fn a_hostile_token_symbol_is_text_in_the_ledger_its_csv_and_its_page() {
    // A formula to a spreadsheet and markup to a browser, in 32 characters.
    const SYMBOL: &str = "=<img src=x onerror=alert(1)>";
    let h = crate::untrusted::hostile(SYMBOL, None).await;
    let (status, answer) = h.pay(100, 1).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, page) = get(&h.s, "/v1/payments").await;
    assert_eq!(
        page["items"][0]["token_symbol"], SYMBOL,
        "JSON keeps it exact"
    );
    assert_eq!(page["items"][0]["amount"], "0.0001", "6 decimals");

    let (status, csv, _, _) = call_text(&h.s.router, "/v1/payments?format=csv", AUDITOR).await;
    assert_eq!(status, StatusCode::OK);
    let rows = crate::untrusted::cells(&csv);
    let column = rows[0].iter().position(|c| c == "token_symbol").unwrap();
    assert_eq!(rows[1][column], format!("'{SYMBOL}"), "neutralised:\n{csv}");
    for cell in rows.iter().flatten() {
        assert!(
            !cell.starts_with(['=', '+', '-', '@']),
            "a formula cell {cell:?}"
        );
    }
    let column = rows[0].iter().position(|c| c == "token").unwrap();
    assert_eq!(
        rows[1][column],
        h.token.to_string(),
        "the address beside the symbol"
    );

    let cookie = login(&h.s.router, AUDITOR).await;
    for uri in ["/payments", "/decisions"] {
        let (_, _, html) = get_with_cookie(&h.s.router, uri, &cookie).await;
        assert!(!html.contains("<img src=x"), "{uri} has no planted markup");
        assert!(
            html.contains("=&lt;img src=x onerror=alert(1)&gt;"),
            "{uri}:\n{html}"
        );
        assert!(
            html.contains(&h.token.to_string()),
            "{uri} shows the token's address"
        );
    }
}
