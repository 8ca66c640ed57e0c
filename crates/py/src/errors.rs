//! One Python exception per `chaperone_sdk::Error` variant, all under `ChaperoneError`. The
//! match in [`to_py`] is exhaustive, so a new SDK error cannot reach Python unmapped.

use chaperone_core::{Address, U256, policy::Reason as PolicyReason};
use chaperone_sdk::Error;
use pyo3::{IntoPyObjectExt, create_exception, exceptions::PyException, prelude::*, types::PyDict};

use crate::{convert, types::PendingPayment, x402::X402Payment};

create_exception!(
    chaperone,
    ChaperoneError,
    PyException,
    "Base class of every Chaperone error."
);
create_exception!(
    chaperone,
    LocalStoreError,
    ChaperoneError,
    "The local SQLite file (outbox and disclosure store) failed."
);
create_exception!(
    chaperone,
    ContentFileError,
    ChaperoneError,
    "The local content file (`<data file>-content`) failed."
);
create_exception!(
    chaperone,
    MigrationError,
    ChaperoneError,
    "The local file's schema migration failed."
);
create_exception!(
    chaperone,
    CoreError,
    ChaperoneError,
    "A record, commitment or signature could not be built or checked."
);
create_exception!(
    chaperone,
    Unreachable,
    ChaperoneError,
    "The server could not be reached or answered garbage; retrying may help. Attributes: `url`, `detail`."
);
create_exception!(
    chaperone,
    Refused,
    ChaperoneError,
    "The server refused the request (a 4xx other than a decision). Attributes: `status`, `code`, `message`."
);
create_exception!(
    chaperone,
    Denied,
    ChaperoneError,
    "The policy denied the payment. Attributes: `request_id`, `reasons` (a list of `Reason`)."
);
create_exception!(
    chaperone,
    Pending,
    ChaperoneError,
    "A human approver must approve first. Attributes: `request_id`, `pending` (pass it to `Wallet.wait_for_approval`)."
);
create_exception!(
    chaperone,
    PendingAuthorization,
    ChaperoneError,
    "A human approver must approve this payment authorization first; ask again once approved. Attribute: `request_id`."
);
create_exception!(
    chaperone,
    PaymentRefused,
    ChaperoneError,
    "The merchant refused an x402 payment the policy had co-signed (it answered 402 again). Attributes: `request_id`, `reason`, `payment` (an `X402Payment`: it may still settle; the client presents it again on a retry of the same request)."
);
create_exception!(
    chaperone,
    PaymentUnanswered,
    Unreachable,
    "An x402 payment was sent and its answer never came (or could not be read): the merchant may hold it. Attributes: `url`, `detail`, `payment` (an `X402Payment`)."
);
create_exception!(
    chaperone,
    Expired,
    ChaperoneError,
    "The request's validity (or the approval wait) ran out before it could execute."
);
create_exception!(
    chaperone,
    ChainError,
    ChaperoneError,
    "The chain failed or reverted the transaction."
);
create_exception!(
    chaperone,
    Forgotten,
    ChaperoneError,
    "The record was forgotten (its salts are deleted), so it can no longer be disclosed. Attribute: `leaf_hash`."
);
create_exception!(
    chaperone,
    UnknownRecord,
    ChaperoneError,
    "No record with this leaf hash is in the local store. Attribute: `leaf_hash`."
);
create_exception!(
    chaperone,
    Rejected,
    ChaperoneError,
    "The server rejected a batch for good; later records cannot be delivered either. Attributes: `batch_id`, `message`."
);
create_exception!(
    chaperone,
    Invalid,
    ChaperoneError,
    "Invalid input, or a disclosure that does not verify."
);
create_exception!(chaperone, Closed, ChaperoneError, "The recorder is closed.");

/// Why the policy decided as it did: `code` (e.g. `"per_transaction_cap"`) and the rule's
/// figures as attributes (amounts are ints, addresses checksummed strings).
#[pyclass(frozen, module = "chaperone")]
pub(crate) struct Reason {
    /// The reason's code.
    #[pyo3(get)]
    code: String,
    fields: Py<PyDict>,
    /// The reason in words, amounts in token units (as the server wrote it).
    #[pyo3(get)]
    text: String,
    json: String,
}

/// The fields of reasons that hold amounts (hex `U256` in the JSON, ints in Python).
const AMOUNT_FIELDS: [&str; 5] = ["amount", "cap", "spent", "max", "threshold"];

impl Reason {
    pub(crate) fn new(
        py: Python<'_>,
        reason: &PolicyReason,
        text: Option<String>,
    ) -> PyResult<Self> {
        let value = serde_json::to_value(reason).unwrap_or_default();
        let fields = PyDict::new(py);
        let mut code = String::new();
        if let serde_json::Value::Object(map) = &value {
            for (key, field) in map {
                match (key.as_str(), field) {
                    ("code", serde_json::Value::String(c)) => code = c.clone(),
                    (name, serde_json::Value::String(hex)) if AMOUNT_FIELDS.contains(&name) => {
                        let amount: U256 = hex.parse().unwrap_or_default();
                        fields.set_item(name, convert::int(py, amount)?)?;
                    }
                    (name, serde_json::Value::String(text)) if text.len() == 42 => {
                        let shown = text
                            .parse::<Address>()
                            .map_or_else(|_| text.clone(), convert::checksummed);
                        fields.set_item(name, shown)?;
                    }
                    (name, other) => fields.set_item(name, convert::json(py, other)?)?,
                }
            }
        }
        let json = value.to_string();
        Ok(Self {
            code,
            fields: fields.unbind(),
            text: text.unwrap_or_else(|| json.clone()),
            json,
        })
    }
}

#[pymethods]
impl Reason {
    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        match self.fields.bind(py).get_item(name)? {
            Some(value) => Ok(value.unbind()),
            None => Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "reason {:?} has no field {name:?}",
                self.code
            ))),
        }
    }

    /// The rule's figures, as a dict (without `code`).
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        Ok(self.fields.bind(py).copy()?.unbind())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut parts = vec![format!("code={:?}", self.code)];
        for (key, value) in self.fields.bind(py).iter() {
            parts.push(format!("{key}={}", value.repr()?));
        }
        Ok(format!("Reason({})", parts.join(", ")))
    }

    fn __str__(&self) -> &str {
        &self.text
    }

    /// The reason as the API's JSON (exact base-unit values).
    fn to_json(&self) -> &str {
        &self.json
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<Reason>() else {
            return Ok(false);
        };
        let other = other.get();
        Ok(self.code == other.code && self.fields.bind(py).eq(other.fields.bind(py))?)
    }
}

/// The Python exception for an SDK error, with its details as attributes.
pub(crate) fn to_py(error: Error) -> PyErr {
    Python::attach(|py| {
        let message = error.to_string();
        let (err, attributes): (PyErr, Vec<(&str, Py<PyAny>)>) = match error {
            Error::Local(_) | Error::NotPrivate { .. } => {
                (LocalStoreError::new_err(message), vec![])
            }
            Error::ContentFile(_) => (ContentFileError::new_err(message), vec![]),
            Error::Migrate(_) => (MigrationError::new_err(message), vec![]),
            Error::Core(_) => (CoreError::new_err(message), vec![]),
            Error::Unreachable { url, detail } => (
                Unreachable::new_err(message),
                vec![("url", object(py, url)), ("detail", object(py, detail))],
            ),
            Error::Refused {
                status,
                code,
                message: refusal,
            } => (
                Refused::new_err(message),
                vec![
                    ("status", object(py, status)),
                    ("code", object(py, code.as_str())),
                    ("message", object(py, refusal)),
                ],
            ),
            Error::Denied {
                request_id,
                reasons,
                reasons_text,
            } => {
                let reasons: Vec<Py<PyAny>> = reasons
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| Reason::new(py, r, reasons_text.get(i).cloned()).ok())
                    .filter_map(|r| Py::new(py, r).ok().map(Py::into_any))
                    .collect();
                (
                    Denied::new_err(message),
                    vec![
                        ("request_id", object(py, request_id.to_string())),
                        ("reasons", object(py, reasons)),
                    ],
                )
            }
            Error::Pending(pending) => {
                let request_id = pending.request_id.to_string();
                let pending = Py::new(py, PendingPayment::from(*pending))
                    .map(Py::into_any)
                    .unwrap_or_else(|_| py.None());
                (
                    Pending::new_err(message),
                    vec![("request_id", object(py, request_id)), ("pending", pending)],
                )
            }
            Error::PendingAuthorization { request_id } => (
                PendingAuthorization::new_err(message),
                vec![("request_id", object(py, request_id.to_string()))],
            ),
            Error::PaymentRefused {
                request_id,
                reason,
                payment,
            } => (
                PaymentRefused::new_err(message),
                vec![
                    ("request_id", object(py, request_id.to_string())),
                    ("reason", object(py, reason)),
                    ("payment", payment_object(py, *payment)),
                ],
            ),
            Error::PaymentUnanswered { detail, payment } => (
                PaymentUnanswered::new_err(message),
                vec![
                    ("url", object(py, payment.resource.clone())),
                    ("detail", object(py, detail)),
                    ("payment", payment_object(py, *payment)),
                ],
            ),
            Error::Expired => (Expired::new_err(message), vec![]),
            Error::Chain(_) => (ChainError::new_err(message), vec![]),
            Error::Forgotten(leaf_hash) => (
                Forgotten::new_err(message),
                vec![("leaf_hash", object(py, leaf_hash.to_string()))],
            ),
            Error::UnknownRecord(leaf_hash) => (
                UnknownRecord::new_err(message),
                vec![("leaf_hash", object(py, leaf_hash.to_string()))],
            ),
            Error::Rejected {
                batch_id,
                message: why,
            } => (
                Rejected::new_err(message),
                vec![
                    ("batch_id", object(py, batch_id)),
                    ("message", object(py, why)),
                ],
            ),
            Error::Invalid(_) => (Invalid::new_err(message), vec![]),
            Error::Closed => (Closed::new_err(message), vec![]),
        };
        let value = err.value(py);
        for (name, attribute) in attributes {
            // Setting an attribute on a fresh exception instance cannot fail.
            let _ = value.setattr(name, attribute);
        }
        err
    })
}

fn payment_object(py: Python<'_>, payment: chaperone_sdk::X402Payment) -> Py<PyAny> {
    Py::new(py, X402Payment::from(payment))
        .map(Py::into_any)
        .unwrap_or_else(|_| py.None())
}

fn object<'py, T: IntoPyObject<'py>>(py: Python<'py>, value: T) -> Py<PyAny> {
    value.into_py_any(py).unwrap_or_else(|_| py.None())
}

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add_class::<Reason>()?;
    for (name, class) in [
        ("ChaperoneError", py.get_type::<ChaperoneError>()),
        ("LocalStoreError", py.get_type::<LocalStoreError>()),
        ("ContentFileError", py.get_type::<ContentFileError>()),
        ("MigrationError", py.get_type::<MigrationError>()),
        ("CoreError", py.get_type::<CoreError>()),
        ("Unreachable", py.get_type::<Unreachable>()),
        ("Refused", py.get_type::<Refused>()),
        ("Denied", py.get_type::<Denied>()),
        ("Pending", py.get_type::<Pending>()),
        (
            "PendingAuthorization",
            py.get_type::<PendingAuthorization>(),
        ),
        ("PaymentRefused", py.get_type::<PaymentRefused>()),
        ("PaymentUnanswered", py.get_type::<PaymentUnanswered>()),
        ("Expired", py.get_type::<Expired>()),
        ("ChainError", py.get_type::<ChainError>()),
        ("Forgotten", py.get_type::<Forgotten>()),
        ("UnknownRecord", py.get_type::<UnknownRecord>()),
        ("Rejected", py.get_type::<Rejected>()),
        ("Invalid", py.get_type::<Invalid>()),
        ("Closed", py.get_type::<Closed>()),
    ] {
        module.add(name, class)?;
    }
    Ok(())
}
