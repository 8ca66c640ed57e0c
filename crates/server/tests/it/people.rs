//! People and their actions on the record: named tokens (who created each), approval quorums
//! (distinct approvers, one denial denies, no co-signature before N, a revoked token refused),
//! and administrative actions logged as records of the policy service with their leaf hash.

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use chaperone_core::{Commitment, CommitmentKind, Salt};
use chaperone_server::{ADMIN_ACTION_MODEL, AnchorPolicy, Anchorer, LogConfig};
use chaperone_store::Actor;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{
    ADMIN, APPROVER, AUDITOR, NOW, Service, call, cosign::register_wallet, get_with_cookie, login,
    service,
};

/// A policy whose payments above 500 wait for one approver and above 700 for two.
fn quorum_policy(version: u32) -> String {
    json!({
        "version": version,
        "chains": [31337],
        "limits": [{ "token": "native", "per_transaction": "1000", "windows": [{ "window": "1h", "max": "5000" }] }],
        "approval": {
            "expires_after": "10m",
            "above": [{ "token": "native", "amount": "500" }],
            "quorum": { "approvers": 2, "above": [{ "token": "native", "amount": "700" }] }
        }
    })
    .to_string()
}

pub(crate) async fn quorum_service() -> Service {
    let s = service().await;
    register_wallet(&s).await;
    let uri = format!("/v1/admin/wallets/{}/policy", s.wallet);
    let (status, body) = call(&s.router, "PUT", &uri, Some(ADMIN), Some(quorum_policy(1))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s
}

/// Creates a token through the API as the admin: the token, shown once.
async fn create_token(s: &Service, name: &str, role: &str) -> String {
    let (status, body) = call(
        &s.router,
        "POST",
        "/v1/admin/tokens",
        Some(ADMIN),
        Some(json!({ "name": name, "role": role }).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

pub(crate) async fn vote(s: &Service, id: &str, token: &str, verdict: &str) -> (StatusCode, Value) {
    call(
        &s.router,
        "POST",
        &format!("/v1/admin/approvals/{id}/{verdict}"),
        Some(token),
        None,
    )
    .await
}

#[tokio::test]
async fn a_quorum_co_signs_only_once_n_distinct_approvers_agree() {
    let s = quorum_service().await;
    let bob = create_token(&s, "bob", "approver").await;

    // Above the single threshold only: one approver is enough.
    let (status, single) = crate::cosign::request(&s, 600, 1).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{single}");
    let (status, answer) = vote(
        &s,
        single["request_id"].as_str().unwrap(),
        APPROVER,
        "approve",
    )
    .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("approved")),
        "{answer}"
    );
    assert_eq!(answer["required"], 1);

    // Above the quorum's threshold: two distinct approvers.
    let (status, pending) = crate::cosign::request(&s, 800, 2).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    let id = pending["request_id"].as_str().unwrap().to_owned();

    let (status, answer) = vote(&s, &id, APPROVER, "approve").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["status"], "pending");
    assert_eq!(answer["approved_by"], json!(["alice"]));
    assert_eq!(
        (answer["required"].as_u64(), answer["remaining"].as_u64()),
        (Some(2), Some(1))
    );

    // No co-signature before N: the agent's next ask is still pending.
    let (status, again) = crate::cosign::request(&s, 800, 2).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert!(again["cosigner_signature"].is_null());

    // The same approver twice counts once.
    let (status, answer) = vote(&s, &id, APPROVER, "approve").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["counted"], false);
    assert_eq!(answer["remaining"], 1);
    let (status, again) = crate::cosign::request(&s, 800, 2).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");

    // A second, distinct approver reaches the quorum: now it is co-signed.
    let (status, answer) = vote(&s, &id, &bob, "approve").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "approved");
    assert_eq!(answer["approved_by"], json!(["alice", "bob"]));
    let (status, signed) = crate::cosign::request(&s, 800, 2).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert!(signed["cosigner_signature"].is_string());

    // The decision names both approvers.
    let verdicts = s.store.verdicts(&[id.parse().unwrap()]).await.unwrap();
    let verdict = verdicts.values().next().unwrap();
    assert_eq!(verdict.decided_by.as_deref(), Some("alice, bob"));
}

#[tokio::test]
async fn one_denial_denies_a_quorum() {
    let s = quorum_service().await;
    let bob = create_token(&s, "bob", "approver").await;
    let (_, pending) = crate::cosign::request(&s, 900, 1).await;
    let id = pending["request_id"].as_str().unwrap().to_owned();
    let (status, _) = vote(&s, &id, APPROVER, "approve").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, answer) = vote(&s, &id, &bob, "deny").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "denied");
    let (status, denied) = crate::cosign::request(&s, 900, 1).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{denied}");
    assert!(denied["cosigner_signature"].is_null());
    // Decided: no one can vote it back.
    let (status, answer) = vote(&s, &id, ADMIN, "approve").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_pending_approval"))
    );
}

#[tokio::test]
async fn a_revoked_token_cannot_vote() {
    let s = quorum_service().await;
    let dave = create_token(&s, "dave", "approver").await;
    let (_, pending) = crate::cosign::request(&s, 900, 1).await;
    let id = pending["request_id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &s.router,
        "DELETE",
        "/v1/admin/tokens/dave",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, answer) = vote(&s, &id, &dave, "approve").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    // Nor through the store, should the revocation land between the check of the bearer token
    // and the vote: the vote's own transaction checks the token is live.
    let refused = s
        .store
        .cast_vote(
            id.parse().unwrap(),
            true,
            &Actor::new("dave", "approver"),
            None,
            NOW,
        )
        .await;
    assert!(
        matches!(refused, Err(chaperone_store::Error::RevokedToken(_))),
        "{refused:?}"
    );
    let votes = s.store.votes(&[id.parse().unwrap()]).await.unwrap();
    assert!(votes.values().all(|(_, cast)| cast.is_empty()), "{votes:?}");
}

pub(crate) fn anchorer(s: &Service) -> Anchorer {
    Anchorer::new(
        s.store.clone(),
        LogConfig::unanchored(31337, s.cosigner.clone()),
        s.cosigner.clone(),
        None,
        AnchorPolicy {
            interval_secs: 3600,
            max_records: 1_000_000,
        },
    )
}

#[tokio::test]
async fn who_changed_a_limit_is_a_record_an_auditor_can_prove() {
    let s = quorum_service().await;
    create_token(&s, "treasury-desk", "approver").await;
    // A policy sent as TOML, with a comment that must survive.
    let toml = "# raised for the quarter-end run (ticket OPS-12)\nversion = 2\nchains = [31337]\n\n[[limits]]\ntoken = \"native\"\nper_transaction = \"2000\"\n";
    let request = Request::builder()
        .method("PUT")
        .uri(format!("/v1/admin/wallets/{}/policy", s.wallet))
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/toml")
        .body(Body::from(toml))
        .unwrap();
    let response = s.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let history = s.store.policy_history(s.wallet).await.unwrap();
    assert_eq!(history[0].source.as_deref(), Some(toml));
    assert_eq!(history[0].installed_by.as_deref(), Some("ops"));
    // The Policies page shows who installed it, and the source with its comment.
    let cookie = login(&s.router, AUDITOR).await;
    let (_, _, html) =
        get_with_cookie(&s.router, &format!("/policies/{}", s.wallet), &cookie).await;
    assert!(
        html.contains("# raised for the quarter-end run (ticket OPS-12)"),
        "{html}"
    );
    assert!(html.contains("installed by ops"), "{html}");

    // The token list says who created each token.
    let (_, tokens) = call(&s.router, "GET", "/v1/admin/tokens", Some(ADMIN), None).await;
    let desk = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "treasury-desk")
        .unwrap();
    assert_eq!(desk["created_by"], "ops");

    // Approvers cannot read the actions; auditors can.
    let (status, _) = call(&s.router, "GET", "/v1/admin/actions", Some(APPROVER), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, page) = call(&s.router, "GET", "/v1/admin/actions", Some(AUDITOR), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let kinds: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "policy.set",
            "token.create",
            "policy.set",
            "wallet.register"
        ],
        "newest first"
    );
    assert!(page["items"][0]["leaf_hash"].is_null(), "not logged yet");

    // The anchorer logs them; the newest policy change now has a leaf hash and a proof.
    let report = anchorer(&s).flush(NOW).await.unwrap();
    assert_eq!(report.actions_logged, 4);
    let (_, page) = call(&s.router, "GET", "/v1/admin/actions", Some(AUDITOR), None).await;
    let change = &page["items"][0];
    assert_eq!(
        (change["actor"].as_str(), change["actor_role"].as_str()),
        (Some("ops"), Some("admin"))
    );
    let leaf = change["leaf_hash"].as_str().expect("logged").to_owned();
    let (status, proof) = call(
        &s.router,
        "GET",
        &format!("/v1/records/{leaf}/proof"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let logged = s
        .store
        .record(leaf.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(logged.record.model, ADMIN_ACTION_MODEL);
    assert_eq!(logged.record.agent, s.cosigner.address());
    // The content and salt the API gives open the record's input commitment: the auditor sees
    // who changed the limit, to what, and when, and the log proves it was not edited since.
    let salt: Salt = serde_json::from_value(change["input_salt"].clone()).unwrap();
    let content = change["content"].as_str().unwrap();
    assert_eq!(
        Commitment::compute(CommitmentKind::Input, &salt, content.as_bytes()),
        logged.record.input
    );
    let content: Value = serde_json::from_str(content).unwrap();
    assert_eq!(content["actor"], "ops");
    assert_eq!(
        content["detail"]["policy"]["limits"][0]["per_transaction"],
        "2000"
    );
    assert_eq!(anchorer(&s).flush(NOW).await.unwrap().actions_logged, 0);
}

/// The CSRF field of a console page.
pub(crate) fn csrf(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries a CSRF field")
        .to_owned()
}

pub(crate) async fn post_form(
    s: &Service,
    uri: &str,
    cookie: &str,
    form: &str,
) -> (StatusCode, Option<String>, String) {
    let request = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    let response = s.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        location,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn the_people_page_creates_tokens_shown_once_for_admins_only() {
    let s = service().await;
    let approver = login(&s.router, APPROVER).await;
    let (status, _, _) = get_with_cookie(&s.router, "/people", &approver).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let admin = login(&s.router, ADMIN).await;
    let (status, _, html) = get_with_cookie(&s.router, "/people", &admin).await;
    assert_eq!(status, StatusCode::OK);
    let token = csrf(&html);
    // Without the CSRF field nothing is created.
    let (status, _, _) = post_form(&s, "/people", &admin, "name=mallory&role=admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A hostile name is data: escaped on the page.
    let name = "<script>x</script>";
    let form = format!("csrf={token}&name=%3Cscript%3Ex%3C%2Fscript%3E&role=approver");
    let (status, _, html) = post_form(&s, "/people", &admin, &form).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(!html.contains(name), "the name is not escaped");
    assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
    let issued = html
        .split("id=\"issued-token\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the token is shown once")
        .to_owned();
    assert!(issued.starts_with("chp_"), "{issued}");
    // The token works, and the list names who created it; the page never shows it again.
    let (status, _) = call(&s.router, "GET", "/v1/admin/approvals", Some(&issued), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, html) = get_with_cookie(&s.router, "/people", &admin).await;
    assert!(!html.contains(&issued));
    assert!(html.contains("<td>ops</td>"), "created by ops: {html}");

    // Revoked from the console: the token stops working at once.
    let form = format!("csrf={token}&name=%3Cscript%3Ex%3C%2Fscript%3E");
    let (status, location, _) = post_form(&s, "/people/revoke", &admin, &form).await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/people"))
    );
    let (status, _) = call(&s.router, "GET", "/v1/admin/approvals", Some(&issued), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let actions = s.store.admin_actions(None, 10).await.unwrap();
    let kinds: Vec<(&str, &str)> = actions
        .iter()
        .map(|a| (a.action.as_str(), a.actor.name.as_str()))
        .collect();
    assert_eq!(kinds, [("token.revoke", "ops"), ("token.create", "ops")]);
}

#[tokio::test]
async fn the_approvals_page_shows_the_quorum_and_confirms_each_vote() {
    let s = quorum_service().await;
    let (_, pending) = crate::cosign::request(&s, 800, 1).await;
    let id = pending["request_id"].as_str().unwrap().to_owned();
    let alice = login(&s.router, APPROVER).await;
    let (_, _, html) = get_with_cookie(&s.router, "/approvals", &alice).await;
    assert!(html.contains("0 of 2 approved"), "{html}");
    let form = format!("csrf={}&verdict=approve&comment=ok", csrf(&html));
    let (status, location, _) = post_form(&s, &format!("/approvals/{id}"), &alice, &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = location.unwrap();
    assert_eq!(location, format!("/approvals?done={id}"));
    let (_, _, html) = get_with_cookie(&s.router, &location, &alice).await;
    assert!(
        html.contains("1 of 2 approvers so far, 1 more needed"),
        "{html}"
    );
    assert!(html.contains("1 of 2 approved"), "{html}");
    assert!(
        html.contains("<span class=\"approver\">alice</span>"),
        "{html}"
    );
    assert!(html.contains("you have voted"), "{html}");

    // The admin is the second approver: confirmed, and the request leaves the inbox.
    let admin = login(&s.router, ADMIN).await;
    let (_, _, html) = get_with_cookie(&s.router, "/approvals", &admin).await;
    let form = format!("csrf={}&verdict=approve", csrf(&html));
    let (_, location, _) = post_form(&s, &format!("/approvals/{id}"), &admin, &form).await;
    let (_, _, html) = get_with_cookie(&s.router, &location.unwrap(), &admin).await;
    assert!(html.contains("Approved by alice, ops"), "{html}");
    assert!(html.contains("Nothing is waiting for a human."), "{html}");
}

#[tokio::test]
async fn the_actions_page_lists_who_did_what_with_leaf_hashes() {
    let s = quorum_service().await;
    anchorer(&s).flush(NOW).await.unwrap();
    let auditor = login(&s.router, AUDITOR).await;
    let (status, _, html) = get_with_cookie(&s.router, "/actions", &auditor).await;
    assert_eq!(status, StatusCode::OK);
    let actions = s.store.admin_actions(None, 10).await.unwrap();
    let leaf = actions[0].leaf_hash.expect("logged");
    assert!(html.contains(&leaf.to_string()), "{html}");
    assert!(html.contains("policy.set"), "{html}");
    let approver = login(&s.router, APPROVER).await;
    let (status, _, _) = get_with_cookie(&s.router, "/actions", &approver).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Red team M2: one admin, a request above the quorum's threshold, and two approver tokens
/// minted once it waits. Only a token issued before the request may vote on it, so the
/// admin's puppets are refused (403) and the request is not co-signed.
#[tokio::test]
async fn an_admin_cannot_mint_the_rest_of_a_quorum() {
    let s = quorum_service().await;
    let (status, pending) = crate::cosign::request(&s, 800, 1).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    let id = pending["request_id"].as_str().unwrap().to_owned();
    let mallory = create_token(&s, "mallory", "approver").await;
    let trent = create_token(&s, "trent", "approver").await;
    let (status, answer) = vote(&s, &id, APPROVER, "approve").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    for token in [&mallory, &trent] {
        let (status, answer) = vote(&s, &id, token, "approve").await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{answer}"
        );
    }
    let (status, again) = crate::cosign::request(&s, 800, 1).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert!(again["cosigner_signature"].is_null());
}

/// Red team M2: names are normalised (trimmed, spaces collapsed, lower case) and ASCII, and
/// a live name is taken whatever its case.
#[tokio::test]
async fn token_names_are_normalised_and_a_live_one_is_taken_in_any_case() {
    let s = service().await;
    let issue = |name: &str| {
        let body = json!({ "name": name, "role": "approver" }).to_string();
        let router = s.router.clone();
        async move { call(&router, "POST", "/v1/admin/tokens", Some(ADMIN), Some(body)).await }
    };
    let (status, body) = issue("  Treasury   Desk ").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "treasury desk");
    for taken in ["treasury desk", "TREASURY DESK", "Treasury\tDesk", "ALICE"] {
        let (status, body) = issue(taken).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("name_taken")),
            "{taken}: {body}"
        );
    }
    // Look-alikes and separators are refused: Cyrillic а, a full-width A, a zero-width
    // joiner, a comma.
    for bad in [
        "\u{430}lice",
        "\u{ff21}lice",
        "al\u{200d}ice",
        "alice, bob",
        "a;b",
        "",
    ] {
        let (status, body) = issue(bad).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_name")),
            "{bad:?}: {body}"
        );
    }
    // Revoked in any case.
    let (status, body) = call(
        &s.router,
        "DELETE",
        "/v1/admin/tokens/Treasury%20DESK",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revoked"], 1);
}

/// Fourth red-team review of issue 29 (C, Medium-low): the console shows a vote of a token
/// the configuration issued as "token issued by the configuration"; an admin could name a
/// token "the configuration" and its puppets' votes read as configured. The name is
/// reserved, in any case and spacing.
#[tokio::test]
async fn a_token_named_the_configuration_is_refused() {
    let s = service().await;
    for reserved in [
        "the configuration",
        "Configuration",
        "  THE   Configuration ",
        "config",
    ] {
        let body = json!({ "name": reserved, "role": "admin" }).to_string();
        let (status, body) = call(
            &s.router,
            "POST",
            "/v1/admin/tokens",
            Some(ADMIN),
            Some(body),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_name")),
            "{reserved:?}: {body}"
        );
    }
    // A vote shows its issuers back to the configuration, which is a badge, not a name.
    let s = quorum_service().await;
    let mallet = create_token(&s, "mallet", "admin").await;
    let (status, body) = call(
        &s.router,
        "POST",
        "/v1/admin/tokens",
        Some(&mallet),
        Some(json!({ "name": "puppet", "role": "approver" }).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let puppet = body["token"].as_str().unwrap().to_owned();
    let (_, pending) = crate::cosign::request(&s, 800, 1).await;
    let id = pending["request_id"].as_str().unwrap().to_owned();
    let (status, answer) = vote(&s, &id, &puppet, "approve").await;
    assert_eq!(
        (status, answer["counted"].as_bool()),
        (StatusCode::ACCEPTED, Some(true)),
        "{answer}"
    );
    let alice = login(&s.router, APPROVER).await;
    let (_, _, html) = get_with_cookie(&s.router, "/approvals", &alice).await;
    assert!(
        html.contains(
            "<span class=\"approver\">mallet</span>, issued by <span class=\"approver\">ops</span>, \
             issued by <em class=\"configured\">the configuration</em>"
        ),
        "{html}"
    );
}

/// A quorum's approvers are a list in the ledger and the decisions (one name each, not one
/// joined string), and each name in an export's cell is text: a name that reads as a formula
/// is neutralised where it stands in the list.
#[tokio::test]
async fn a_quorums_approvers_are_a_list_in_the_ledger_and_a_safe_csv_cell() {
    let s = quorum_service().await;
    let first = create_token(&s, "!audit desk", "approver").await;
    let formula = create_token(&s, "=cmd|' /c calc'!A0", "approver").await;
    let (_, pending) = crate::cosign::request(&s, 800, 1).await;
    let id = pending["request_id"].as_str().unwrap().to_owned();
    for token in [&first, &formula] {
        let (status, answer) = vote(&s, &id, token, "approve").await;
        assert!(status.is_success(), "{answer}");
    }
    let (status, signed) = crate::cosign::request(&s, 800, 1).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let names = json!(["!audit desk", "=cmd|' /c calc'!a0"]);
    let (status, ledger) = call(&s.router, "GET", "/v1/payments", Some(AUDITOR), None).await;
    assert_eq!(status, StatusCode::OK, "{ledger}");
    assert_eq!(ledger["items"][0]["approvers"], names, "{ledger}");
    let (_, decisions) = call(&s.router, "GET", "/v1/decisions", Some(AUDITOR), None).await;
    let decision = decisions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["request_id"] == id)
        .unwrap();
    assert_eq!(decision["approvers"], names, "{decision}");
    let (status, csv, _, _) = crate::call_text(&s.router, "/v1/payments?format=csv", AUDITOR).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        csv.contains(",!audit desk; '=cmd|' /c calc'!a0,"),
        "each name a safe part of the cell:\n{csv}"
    );
}

/// Relabelling an agent is an administrative action on the record (who, the old and the new
/// label), like registering it; asking again with the same label changes nothing.
#[tokio::test]
async fn relabelling_an_agent_is_recorded_as_an_admin_action() {
    let s = service().await;
    let agent = chaperone_core::Address::repeat_byte(0x5a);
    for (label, expected) in [
        (Some("support bot"), StatusCode::CREATED),
        (Some("treasury bot"), StatusCode::OK),
        (Some("treasury bot"), StatusCode::OK),
        (None, StatusCode::OK),
    ] {
        let body = json!({ "address": agent, "label": label }).to_string();
        let (status, answer) = call(
            &s.router,
            "POST",
            "/v1/admin/agents",
            Some(ADMIN),
            Some(body),
        )
        .await;
        assert_eq!(status, expected, "{answer}");
    }
    let actions = s.store.admin_actions(None, 10).await.unwrap();
    let done: Vec<(&str, &str)> = actions
        .iter()
        .map(|a| (a.action.as_str(), a.actor.name.as_str()))
        .collect();
    assert_eq!(done, [("agent.relabel", "ops"), ("agent.register", "ops")]);
    let detail: serde_json::Value = serde_json::from_str(&actions[0].detail).unwrap();
    assert_eq!(detail["from"], "support bot");
    assert_eq!(detail["to"], "treasury bot");
}

/// Third red-team review of issue 29: a name the configuration's token has or had is not
/// issued by an admin (409), even once that token is revoked: its votes would read beside the
/// configuration's person.
#[tokio::test]
async fn a_configured_tokens_name_is_not_issued_even_once_revoked() {
    let s = service().await;
    let (status, body) = call(
        &s.router,
        "DELETE",
        "/v1/admin/tokens/alice",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        (status, body["revoked"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{body}"
    );
    let (status, body) = call(
        &s.router,
        "POST",
        "/v1/admin/tokens",
        Some(ADMIN),
        Some(json!({ "name": "Alice", "role": "approver" }).to_string()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("name_taken")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("configuration")),
        "{body}"
    );
}
