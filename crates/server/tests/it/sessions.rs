//! Console sessions and tokens, attacked as the second review did: a copied session cookie
//! must open nothing after logout, a revoked token nothing at all, and the cookie never holds
//! the bearer token.

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use crate::{ADMIN, call, get_with_cookie, login, service};

/// A cookie that opens the console and the API's reads (its export links).
async fn opens(s: &crate::Service, cookie: &str) -> bool {
    let (page, _, _) = get_with_cookie(&s.router, "/approvals", cookie).await;
    let (api, _, _) = get_with_cookie(&s.router, "/v1/decisions", cookie).await;
    assert_eq!(
        page == StatusCode::OK,
        api == StatusCode::OK,
        "{page} {api}"
    );
    page == StatusCode::OK
}

async fn logout(s: &crate::Service, cookie: &str) -> (StatusCode, String) {
    let (_, _, html) = get_with_cookie(&s.router, "/approvals", cookie).await;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries a CSRF field")
        .to_owned();
    let request = Request::builder()
        .method("POST")
        .uri("/logout")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("csrf={csrf}")))
        .unwrap();
    let response = s.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let cleared = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let _ = response.into_body().collect().await;
    (status, cleared)
}

#[tokio::test]
async fn a_session_is_a_random_server_side_id_that_logout_ends() {
    let s = service().await;
    let cookie = login(&s.router, ADMIN).await;
    assert!(
        !cookie.contains(ADMIN),
        "the cookie holds the bearer token: {cookie}"
    );
    assert!(opens(&s, &cookie).await);
    // The attack: the raw token as the cookie (what the cookie used to be) opens nothing.
    assert!(!opens(&s, &format!("chaperone_session={ADMIN}")).await);
    // Another login is another session.
    let second = login(&s.router, ADMIN).await;
    assert_ne!(second, cookie);

    let (status, cleared) = logout(&s, &cookie).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The attack: a copy of the cookie kept from before the logout.
    let (status, location, _) = get_with_cookie(&s.router, "/approvals", &cookie).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a logged-out session opened the console"
    );
    assert!(location.unwrap().starts_with("/login"));
    assert!(
        !opens(&s, &cookie).await,
        "a logged-out session read the API"
    );
    assert!(opens(&s, &second).await, "logout ends only its own session");
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_https_and_never_readable_by_scripts() {
    let s = service().await;
    for (proto, secure) in [(None, false), (Some("https"), true), (Some("http"), false)] {
        let csrf = "cd".repeat(32);
        let mut request = Request::builder()
            .method("POST")
            .uri("/login")
            .header(header::COOKIE, format!("chaperone_login={csrf}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        let request = request
            .body(Body::from(format!("token={ADMIN}&csrf={csrf}")))
            .unwrap();
        let response = s.router.clone().oneshot(request).await.unwrap();
        let set = response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        assert_eq!(set.contains("; Secure"), secure, "{proto:?}: {set}");
    }
}

#[tokio::test]
async fn an_admin_issues_and_revokes_tokens_and_revocation_ends_their_sessions() {
    let s = service().await;
    let issue = json!({ "name": "dora", "role": "approver" }).to_string();
    let (status, issued) = call(
        &s.router,
        "POST",
        "/v1/admin/tokens",
        Some(ADMIN),
        Some(issue.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let token = issued["token"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &s.router,
        "POST",
        "/v1/admin/tokens",
        Some(ADMIN),
        Some(issue),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "one live token per name");
    let (status, _) = call(&s.router, "GET", "/v1/admin/approvals", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "the new token works");
    let cookie = login(&s.router, &token).await;
    let (status, _, _) = get_with_cookie(&s.router, "/approvals", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&s.router, "GET", "/v1/admin/tokens", Some(&token), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only an admin lists tokens");

    let (status, body) = call(
        &s.router,
        "DELETE",
        "/v1/admin/tokens/dora",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(&s.router, "GET", "/v1/admin/approvals", Some(&token), None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked token still works"
    );
    let (status, _, _) = get_with_cookie(&s.router, "/approvals", &cookie).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a revoked token's session still opens"
    );
    let (status, _) = call(
        &s.router,
        "DELETE",
        "/v1/admin/tokens/dora",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = call(&s.router, "GET", "/v1/admin/tokens", Some(ADMIN), None).await;
    let dora = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "dora")
        .unwrap();
    assert!(dora["revoked_at"].is_u64(), "{dora}");
    assert!(
        !list.to_string().contains(&token),
        "a listing never shows a token"
    );
}
