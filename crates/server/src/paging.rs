//! Pages and export formats, shared by every list (the compliance API, pending approvals):
//! the query parameters a list takes (declared once, for parsing and for the OpenAPI
//! document), the cursor, and one page written as JSON, JSON Lines or CSV. Unknown or
//! malformed parameters get 400 `invalid_query`.

use std::{collections::HashMap, str::FromStr};

use axum::{
    Json,
    extract::{Query, rejection::QueryRejection},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use chaperone_api::{
    ErrorCode, Format, Page,
    compliance::{DEFAULT_LIMIT, MAX_LIMIT, NEXT_CURSOR_HEADER},
};
use serde_json::Value;
use utoipa::{IntoParams, openapi::path::ParameterIn};

use crate::http::ApiError;

/// The parameters every paginated list takes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // declared for the document; `Params` reads the query
pub(crate) struct Paging {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// json (default), jsonl or csv; the export formats carry the next cursor in X-Next-Cursor.
    format: Option<Format>,
}

/// The parameter of a list that is not paginated.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // declared for the document; `list_format` reads the query
pub(crate) struct ExportFormat {
    /// json (default), jsonl or csv.
    format: Option<Format>,
}

/// A list that takes no filter.
#[derive(IntoParams)]
pub(crate) struct NoFilters {}

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuery, message)
}

/// Query parameters, checked against the endpoint's list.
pub(crate) struct Params(pub(crate) HashMap<String, String>);

impl Params {
    /// The parameters of a list that takes [`Paging`] and the filters `F` declares.
    pub(crate) fn parse<F: IntoParams>(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    ) -> Result<Self, ApiError> {
        let names: Vec<String> = F::into_params(|| Some(ParameterIn::Query))
            .into_iter()
            .map(|p| p.name)
            .collect();
        let allowed: Vec<&str> = names.iter().map(String::as_str).collect();
        let Query(pairs) = query.map_err(|e| invalid(e.body_text()))?;
        let mut map = HashMap::new();
        for (key, value) in pairs {
            let known = ["cursor", "limit", "format"].contains(&key.as_str())
                || allowed.contains(&key.as_str());
            if !known {
                let mut all = allowed.clone();
                all.extend(["cursor", "limit", "format"]);
                return Err(invalid(format!(
                    "unknown parameter `{key}` (this endpoint takes {})",
                    all.join(", ")
                )));
            }
            if map.insert(key.clone(), value).is_some() {
                return Err(invalid(format!("parameter `{key}` is given twice")));
            }
        }
        Ok(Self(map))
    }

    pub(crate) fn get<T: FromStr>(
        &self,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, ApiError> {
        self.0
            .get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| invalid(format!("`{name}={v}` is not {expected}")))
            })
            .transpose()
    }

    pub(crate) fn limit(&self) -> Result<u32, ApiError> {
        let limit = self
            .get::<u32>("limit", "a number")?
            .unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid(format!("`limit` must be 1 to {MAX_LIMIT}")));
        }
        Ok(limit)
    }

    pub(crate) fn format(&self) -> Result<Format, ApiError> {
        self.0
            .get("format")
            .map_or(Ok(Format::Json), |f| f.parse().map_err(invalid))
    }

    pub(crate) fn cursor(&self) -> Option<&str> {
        self.0.get("cursor").map(String::as_str)
    }
}

/// One CSV cell (RFC 4180), the only way any export writes one.
///
/// Officers open exports in spreadsheets, which run a cell starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return as a formula (OWASP "CSV injection"), and agents choose model
/// ids, token deployers symbols. Such a cell gets a leading `'` (shown as text) and quotes.
/// No column holds a negative number (amounts, times and counts are unsigned), so a `-5`
/// here is always text and is neutralised like any other.
fn csv_field(value: &Value) -> String {
    let scalar = |value: &Value| match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let text = match value {
        // A list of plain values (recipients, approvers, reason codes) reads as one cell, its
        // items joined by `; ` (which no token name may contain). Each item that reads as a
        // formula is neutralised where it stands: a spreadsheet user splits such a cell.
        Value::Array(items) if items.iter().all(|v| !v.is_array() && !v.is_object()) => items
            .iter()
            .map(|item| {
                let text = scalar(item);
                if reads_as_formula(&text) {
                    format!("'{text}")
                } else {
                    text
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => scalar(other),
    };
    let formula = reads_as_formula(&text);
    if formula || text.contains([',', '"', '\n', '\r']) {
        let quote = if formula { "'" } else { "" };
        format!("\"{quote}{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Whether a spreadsheet would run `text` as a formula.
fn reads_as_formula(text: &str) -> bool {
    text.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

pub(crate) fn row(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The `format` of a list that is not paginated (it takes no other parameter).
pub(crate) fn list_format(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Format, ApiError> {
    let params = Params::parse::<NoFilters>(query)?;
    if let Some(key) = ["cursor", "limit"]
        .into_iter()
        .find(|k| params.0.contains_key(*k))
    {
        return Err(invalid(format!(
            "this list is not paginated: `{key}` does not apply (it takes format)"
        )));
    }
    params.format()
}

/// Renders one page of `rows` (JSON objects with `columns` as keys) in `format`.
pub(crate) fn page(
    format: Format,
    columns: &[&str],
    rows: Vec<Value>,
    next: Option<String>,
) -> Response {
    let mut response = match format {
        Format::Json => Json(Page {
            items: rows,
            next_cursor: next.clone(),
        })
        .into_response(),
        Format::JsonLines => {
            let mut body = String::new();
            for row in &rows {
                body.push_str(&row.to_string());
                body.push('\n');
            }
            ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
        }
        Format::Csv => {
            let mut body = columns.join(",");
            body.push('\n');
            for row in &rows {
                let fields: Vec<String> = columns
                    .iter()
                    .map(|c| csv_field(row.get(*c).unwrap_or(&Value::Null)))
                    .collect();
                body.push_str(&fields.join(","));
                body.push('\n');
            }
            ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
        }
    };
    if format != Format::Json
        && let Some(cursor) = next.and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response.headers_mut().insert(NEXT_CURSOR_HEADER, cursor);
    }
    response
}

/// A list without filters paged by one key (an id, an address): reads the paging
/// parameters and the cursor (a bad one is a precise 400), fetches the rows after it with
/// `fetch`, and renders the page with the last row's `key` as the next cursor.
pub(crate) async fn keyed_page<K, T, E, Fut>(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    columns: &[&str],
    fetch: impl FnOnce(Option<K>, u32) -> Fut,
    key: impl Fn(&T) -> String,
    to_row: impl Fn(T) -> Value,
) -> Result<Response, ApiError>
where
    K: FromStr,
    E: Into<ApiError>,
    Fut: Future<Output = Result<Vec<T>, E>>,
{
    let params = Params::parse::<NoFilters>(query)?;
    let (limit, format) = (params.limit()?, params.format()?);
    let after = params
        .cursor()
        .map(|c| {
            c.parse::<K>()
                .map_err(|_| invalid("`cursor` is not one this API gave"))
        })
        .transpose()?;
    let items = fetch(after, limit).await.map_err(Into::into)?;
    let next = next_cursor(items.len(), limit, items.last().map(key));
    let rows = items.into_iter().map(to_row).collect();
    Ok(page(format, columns, rows, next))
}

/// The cursor for the next page: the last row's key, when the page is full.
pub(crate) fn next_cursor(rows: usize, limit: u32, last: Option<String>) -> Option<String> {
    (rows == limit as usize).then_some(last).flatten()
}
