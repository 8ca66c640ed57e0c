//! Values across the boundary: addresses as checksummed strings, hashes as `0x` strings,
//! amounts as Python ints (any size), content as `bytes` or `str`.

use std::str::FromStr;

use chaperone_core::{Address, B256, U256};
use pyo3::{
    exceptions::{PyTypeError, PyValueError},
    prelude::*,
    types::{PyBytes, PyDict, PyInt, PyList, PyString},
};

/// An address from a `0x` string (any case; a mixed-case one must carry a valid checksum).
pub(crate) fn address(text: &str) -> PyResult<Address> {
    let parsed = Address::from_str(text)
        .map_err(|e| PyValueError::new_err(format!("{text:?} is not an address: {e}")))?;
    let mixed_case = text.chars().any(|c| c.is_ascii_uppercase())
        && text[2..].chars().any(|c| c.is_ascii_lowercase());
    if mixed_case && parsed.to_checksum(None) != text {
        return Err(PyValueError::new_err(format!(
            "{text:?} has a wrong EIP-55 checksum (a typo?)"
        )));
    }
    Ok(parsed)
}

/// The EIP-55 form every address leaves as.
pub(crate) fn checksummed(address: Address) -> String {
    address.to_checksum(None)
}

/// A 32-byte hash or key from a `0x` string.
pub(crate) fn b256(text: &str, what: &str) -> PyResult<B256> {
    B256::from_str(text)
        .map_err(|e| PyValueError::new_err(format!("{what} must be 32 bytes of 0x hex: {e}")))
}

/// A non-negative Python int below 2**256.
pub(crate) fn u256(value: &Bound<'_, PyAny>, what: &str) -> PyResult<U256> {
    if !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int (base units), not {}",
            value.get_type().name()?
        )));
    }
    if let Ok(small) = value.extract::<u128>() {
        return Ok(U256::from(small));
    }
    let text = value.str()?.to_string();
    U256::from_str_radix(&text, 10).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be between 0 and 2**256 - 1, not {text}"
        ))
    })
}

/// A `U256` as a Python int.
pub(crate) fn int(py: Python<'_>, value: U256) -> PyResult<Bound<'_, PyAny>> {
    match u128::try_from(value) {
        Ok(small) => Ok(small.into_pyobject(py)?.into_any()),
        Err(_) => py.get_type::<PyInt>().call1((value.to_string(),)),
    }
}

/// Content to commit to: `bytes` as is, `str` as UTF-8, without copying either.
pub(crate) fn content<'a>(value: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a [u8]> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(bytes.as_bytes());
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.to_str()?.as_bytes());
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be str or bytes, not {}",
        value.get_type().name()?
    )))
}

/// Metadata to commit to: `bytes` or `str` as given, anything else JSON-encoded with sorted
/// keys (so the same dict always commits to the same bytes).
pub(crate) fn metadata(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(raw) = content(value, "metadata") {
        return Ok(raw.to_vec());
    }
    let json = value.py().import("json")?;
    let kwargs = PyDict::new(value.py());
    kwargs.set_item("sort_keys", true)?;
    kwargs.set_item("separators", (",", ":"))?;
    kwargs.set_item("default", value.py().get_type::<PyString>())?;
    let text = json.call_method("dumps", (value,), Some(&kwargs))?;
    Ok(text.cast::<PyString>()?.to_str()?.as_bytes().to_vec())
}

/// A JSON value as plain Python objects (dict, list, str, int, float, bool, None).
pub(crate) fn json<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_pyobject(py)?.into_any(),
            (None, Some(i)) => i.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, json(py, item)?)?;
            }
            dict.into_any()
        }
    })
}
