//! The Chaperone server's HTTP API, as the SDK calls it.

use std::time::Duration;

use reqwest::StatusCode;
use serde::{Serialize, de::DeserializeOwned};

use crate::{Error, Result};

/// A client for one Chaperone server.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
}

/// A response the caller interprets by status (the co-sign endpoint answers 200/202/403).
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    bytes: Vec<u8>,
}

impl Answer {
    /// The body as `T`, parsed straight from its bytes (an ingestion answer lists thousands of
    /// positions: parsing them into a `serde_json::Value` first cost more than the rest).
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.bytes)
    }

    /// The body as JSON (`Null` if it is not JSON).
    pub(crate) fn body(&self) -> serde_json::Value {
        self.parse().unwrap_or(serde_json::Value::Null)
    }
}

impl Api {
    pub(crate) fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// POSTs a JSON body (already serialised, so a resend is byte for byte the same).
    pub(crate) async fn post_raw(&self, path: &str, body: Vec<u8>) -> Result<Answer> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.send(request).await
    }

    pub(crate) async fn post<T: Serialize>(&self, path: &str, body: &T) -> Result<Answer> {
        let bytes = serde_json::to_vec(body).map_err(|e| self.garbage(e))?;
        self.post_raw(path, bytes).await
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let answer = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .await?;
        if !answer.status.is_success() {
            return Err(refused(&answer));
        }
        answer.parse().map_err(|e| self.garbage(e))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer> {
        let response = request.send().await.map_err(|e| Error::Unreachable {
            url: self.base.clone(),
            detail: e.to_string(),
        })?;
        let status = response.status();
        let bytes = Vec::from(response.bytes().await.map_err(|e| Error::Unreachable {
            url: self.base.clone(),
            detail: e.to_string(),
        })?);
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Error::Unreachable {
                url: self.base.clone(),
                detail: format!("{status}: {}", String::from_utf8_lossy(&bytes)),
            });
        }
        Ok(Answer { status, bytes })
    }

    fn garbage(&self, e: serde_json::Error) -> Error {
        Error::Unreachable {
            url: self.base.clone(),
            detail: format!("unexpected response: {e}"),
        }
    }
}

/// The API's error body as [`Error::Refused`].
pub(crate) fn refused(answer: &Answer) -> Error {
    let body = answer.body();
    let error = &body["error"];
    Error::Refused {
        status: answer.status.as_u16(),
        code: error["code"].as_str().unwrap_or("unknown").to_owned(),
        message: error["message"].as_str().unwrap_or_default().to_owned(),
    }
}
