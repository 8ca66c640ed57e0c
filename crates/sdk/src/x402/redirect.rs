//! Where a payment may go. A payment header is a bearer instrument: whoever holds it can settle
//! it. So it goes only to the origin (scheme, host and port) whose 402 asked for it, and no
//! redirect carries it anywhere: the client that sends it follows no redirects at all, and a
//! 3xx answer to a paid request comes back to the application as it is.
//!
//! The request *before* payment carries nothing of value, so its redirects are followed here,
//! hop by hop, as a browser would (at most ten; 303, and 301/302 after a POST, become a GET
//! without a body; credentials are dropped when a hop leaves the origin). The last request of
//! the chain is the one that answered 402: it is repeated with the payment, and its URL is
//! the one the payment record names.

use reqwest::{Method, Request, Response, StatusCode, Url, header};

use crate::{Error, Result};

/// As many redirects as reqwest follows by default.
const MAX_REDIRECTS: usize = 10;

/// Headers that must not follow a request to another origin: credentials (the ones reqwest
/// itself drops) and any payment header the application may have set.
const CREDENTIALS: [&str; 6] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "www-authenticate",
    "payment-signature",
    "x-payment",
];

/// Headers that describe a body, dropped with it when a redirect turns the request into a GET.
const BODY_HEADERS: [&str; 4] = [
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
];

/// Whether `a` and `b` are the same origin: scheme, host and port (RFC 6454).
pub(super) fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// Sends `request` (which carries no payment), following its redirects. Returns the last
/// request sent, ready to be sent again, and its answer. `http` must follow no redirects
/// itself.
pub(super) async fn follow(
    http: &reqwest::Client,
    request: Request,
) -> Result<(Request, Response)> {
    let mut request = request;
    for _ in 0..=MAX_REDIRECTS {
        let again = repeatable(&request)?;
        let url = request.url().to_string();
        let response = http
            .execute(request)
            .await
            .map_err(|e| super::unreachable(&url, e))?;
        match next_hop(again, &response)? {
            Hop::Arrived(last) => return Ok((last, response)),
            Hop::Next(next) => request = next,
        }
    }
    Err(Error::Invalid(format!(
        "more than {MAX_REDIRECTS} redirects from {}",
        request.url()
    )))
}

/// A copy of `request` to send again (a streaming body cannot be).
pub(super) fn repeatable(request: &Request) -> Result<Request> {
    request.try_clone().ok_or_else(|| {
        Error::Invalid(
            "an x402 request must be repeatable (a streaming body cannot be sent twice)".into(),
        )
    })
}

enum Hop {
    /// `response` is the answer to this request.
    Arrived(Request),
    /// `response` redirects to this request.
    Next(Request),
}

/// Where `response` (to `sent`) points, if it is a redirect.
fn next_hop(sent: Request, response: &Response) -> Result<Hop> {
    let status = response.status();
    let redirect = matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    );
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok());
    let (true, Some(location)) = (redirect, location) else {
        return Ok(Hop::Arrived(sent));
    };
    let to = sent
        .url()
        .join(location)
        .map_err(|e| Error::Invalid(format!("{} redirects to {location:?}: {e}", sent.url())))?;
    if !matches!(to.scheme(), "http" | "https") {
        return Err(Error::Invalid(format!("{} redirects to {to}", sent.url())));
    }
    let mut next = sent;
    if !same_origin(next.url(), &to) {
        for name in CREDENTIALS {
            next.headers_mut().remove(name);
        }
    }
    // RFC 9110 §15.4: 303 becomes a GET, and 301/302 after a POST do in practice.
    let becomes_get = (status == StatusCode::SEE_OTHER && next.method() != Method::HEAD)
        || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
            && next.method() == Method::POST);
    if becomes_get {
        *next.method_mut() = Method::GET;
        *next.body_mut() = None;
        for name in BODY_HEADERS {
            next.headers_mut().remove(name);
        }
    }
    *next.url_mut() = to;
    Ok(Hop::Next(next))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(
            &url("http://shop.example/a"),
            &url("http://shop.example:80/b?c")
        ));
        assert!(!same_origin(
            &url("http://shop.example/a"),
            &url("https://shop.example/a")
        ));
        assert!(!same_origin(
            &url("http://shop.example/a"),
            &url("http://shop.example:8080/a")
        ));
        assert!(!same_origin(
            &url("http://shop.example/a"),
            &url("http://evil.example/a")
        ));
    }
}
