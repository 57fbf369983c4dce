//! `venue_for_host(host, venues=None)`: the endpoint rules of `crate::classify::venue`, shared
//! by every integration that sees a host name (HTTP capture, OpenTelemetry `server.address`).

use std::collections::BTreeMap;

use pyo3::prelude::*;

use super::errors::invalid;
use crate::classify::venue;

/// Reads an optional `{host pattern: venue}` mapping; non-string keys or values are a
/// `ValidationError` naming `venues`.
pub fn user_venues(venues: Option<&Bound<'_, PyAny>>) -> PyResult<BTreeMap<String, String>> {
    user_mapping("venues", "venue", venues)
}

/// Reads an optional `{host pattern: provider}` mapping (who operates a gateway, a proxy, a
/// host statemeter does not know); non-string keys or values are a `ValidationError` naming
/// `providers`.
pub fn user_providers(providers: Option<&Bound<'_, PyAny>>) -> PyResult<BTreeMap<String, String>> {
    user_mapping("providers", "provider", providers)
}

fn user_mapping(
    field: &str,
    what: &str,
    mapping: Option<&Bound<'_, PyAny>>,
) -> PyResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Some(v) = mapping.filter(|v| !v.is_none()) else {
        return Ok(out);
    };
    for (k, val) in super::convert::to_map(field, v)? {
        match val {
            serde_json::Value::String(val) => {
                out.insert(k, val);
            }
            _ => {
                return Err(invalid(
                    field,
                    format!("the {what} for {k:?} must be a string"),
                ))
            }
        }
    }
    Ok(out)
}

/// The venue serving `host` (a host name, optionally with a port): `(venue, rule, explain)`.
/// `venues` maps host patterns (`"llm-proxy.internal"`, `"*.gw.example.com"`) to venues and is
/// checked before the built-in patterns. An unknown host gives `"unknown"`, never a guess.
#[pyfunction]
#[pyo3(signature = (host, venues = None))]
pub fn venue_for_host(
    host: &str,
    venues: Option<&Bound<'_, PyAny>>,
) -> PyResult<(String, &'static str, String)> {
    let m = venue::venue_for_host(host, &user_venues(venues)?);
    Ok((m.venue, m.rule, m.explain))
}
