//! OTLP/JSON trace files: `{"resourceSpans": [{"resource": {...}, "scopeSpans": [{"spans":
//! [...]}]}]}` as written by the OTLP/HTTP JSON encoding and the collector's file exporter
//! (which writes one such object per line: JSON Lines are accepted too).
//!
//! The protobuf JSON mapping rules apply: trace and span ids are hex (case-insensitive; an
//! empty `parentSpanId` means a root span), 64-bit integers may be decimal strings, enums may be
//! integers or their names (`"SPAN_KIND_CLIENT"`), and unknown fields are ignored. A structural
//! error (a bad id, a time that is not an integer, a `spans` that is not a list) is a
//! `Validation` error whose field is the JSON path, with the line for JSON Lines input.

use serde_json::{Map, Value};

use super::Span;
use crate::error::{Error, Result};

/// Parses every span of one OTLP/JSON document or of a JSON Lines sequence of them.
pub fn parse_otlp_json(text: &str) -> Result<Vec<Span>> {
    let mut spans = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut docs = 0usize;
    loop {
        let offset = stream.byte_offset();
        let doc = match stream.next() {
            None => break,
            Some(Ok(doc)) => doc,
            Some(Err(e)) => {
                return Err(Error::validation(
                    "otlp",
                    format!("not JSON at line {}, column {}: {e}", e.line(), e.column()),
                ))
            }
        };
        docs += 1;
        let rest = &text[offset..];
        let start = offset + (rest.len() - rest.trim_start().len());
        let line = text[..start].matches('\n').count() + 1;
        parse_request(&doc, &mut spans).map_err(|e| at_line(e, line, docs))?;
    }
    if docs == 0 {
        return Err(Error::validation(
            "otlp",
            "empty input: no OTLP JSON document",
        ));
    }
    Ok(spans)
}

fn at_line(e: Error, line: usize, docs: usize) -> Error {
    match e {
        Error::Validation { field, message } if docs > 1 || line > 1 => Error::Validation {
            field,
            message: format!("{message} (document starting at line {line})"),
        },
        other => other,
    }
}

/// One `ExportTraceServiceRequest`.
fn parse_request(doc: &Value, out: &mut Vec<Span>) -> Result<()> {
    let doc = doc
        .as_object()
        .ok_or_else(|| Error::validation("otlp", "must be a JSON object with resourceSpans"))?;
    let Some(resource_spans) = doc.get("resourceSpans") else {
        return Err(Error::validation(
            "resourceSpans",
            "is missing: not an OTLP trace document",
        ));
    };
    for (i, rs) in list(resource_spans, "resourceSpans")?.iter().enumerate() {
        let path = format!("resourceSpans[{i}]");
        let rs = object(rs, &path)?;
        let resource = match rs.get("resource").and_then(|r| r.get("attributes")) {
            Some(a) => attributes(a, &format!("{path}.resource.attributes"))?,
            None => Map::new(),
        };
        // `instrumentationLibrarySpans` is the pre-1.0 name of `scopeSpans`.
        let scopes = rs
            .get("scopeSpans")
            .or_else(|| rs.get("instrumentationLibrarySpans"));
        let Some(scopes) = scopes else { continue };
        for (j, ss) in list(scopes, &format!("{path}.scopeSpans"))?
            .iter()
            .enumerate()
        {
            let spath = format!("{path}.scopeSpans[{j}]");
            let Some(spans) = object(ss, &spath)?.get("spans") else {
                continue;
            };
            for (k, sp) in list(spans, &format!("{spath}.spans"))?.iter().enumerate() {
                out.push(parse_span(sp, &format!("{spath}.spans[{k}]"), &resource)?);
            }
        }
    }
    Ok(())
}

fn parse_span(v: &Value, path: &str, resource: &Map<String, Value>) -> Result<Span> {
    let s = object(v, path)?;
    let trace_id = hex_id(s.get("traceId"), 32, &format!("{path}.traceId"))?
        .ok_or_else(|| Error::validation(format!("{path}.traceId"), "is required"))?;
    let span_id = hex_id(s.get("spanId"), 16, &format!("{path}.spanId"))?
        .ok_or_else(|| Error::validation(format!("{path}.spanId"), "is required"))?;
    let parent_span_id = hex_id(s.get("parentSpanId"), 16, &format!("{path}.parentSpanId"))?;
    let name = match s.get("name") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(n)) => n.clone(),
        Some(_) => {
            return Err(Error::validation(
                format!("{path}.name"),
                "must be a string",
            ))
        }
    };
    let kind = enum_value(s.get("kind"), &format!("{path}.kind"), SPAN_KINDS)?;
    let start_ns = int64(
        s.get("startTimeUnixNano"),
        &format!("{path}.startTimeUnixNano"),
    )?;
    let end_ns = int64(s.get("endTimeUnixNano"), &format!("{path}.endTimeUnixNano"))?;
    if end_ns < start_ns && end_ns != 0 {
        return Err(Error::validation(
            format!("{path}.endTimeUnixNano"),
            format!("{end_ns} is before startTimeUnixNano {start_ns}"),
        ));
    }
    let (status_code, status_message) = match s.get("status") {
        None | Some(Value::Null) => (0, None),
        Some(st) => {
            let st = object(st, &format!("{path}.status"))?;
            let code = enum_value(st.get("code"), &format!("{path}.status.code"), STATUS_CODES)?;
            let msg = st
                .get("message")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .map(str::to_owned);
            (code, msg)
        }
    };
    let attrs = match s.get("attributes") {
        Some(a) => attributes(a, &format!("{path}.attributes"))?,
        None => Map::new(),
    };
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        name,
        kind,
        start_ns,
        end_ns: end_ns.max(start_ns),
        status_code,
        status_message,
        attributes: attrs,
        resource: resource.clone(),
    })
}

const SPAN_KINDS: &[&str] = &[
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];
const STATUS_CODES: &[&str] = &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| Error::validation(path, "must be a JSON object"))
}

fn list<'a>(v: &'a Value, path: &str) -> Result<&'a [Value]> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Null => Ok(&[]),
        _ => Err(Error::validation(path, "must be a list")),
    }
}

/// A hex id of `len` digits, lower-cased; absent or empty is `None`.
fn hex_id(v: Option<&Value>, len: usize, path: &str) -> Result<Option<String>> {
    let s = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => s,
        Some(_) => return Err(Error::validation(path, "must be a hex string")),
    };
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::validation(
            path,
            format!("{s:?} is not {len} hex digits (OTLP/JSON ids are hex, not base64)"),
        ));
    }
    Ok(Some(s.to_ascii_lowercase()))
}

/// An int64 given as a JSON number or a decimal string; absent is 0.
fn int64(v: Option<&Value>, path: &str) -> Result<i64> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_u64().and_then(|u| i64::try_from(u).ok()))
            .ok_or_else(|| Error::validation(path, format!("{n} is not a 64-bit integer"))),
        Some(Value::String(s)) => s.parse::<i64>().map_err(|_| {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                Error::validation(path, format!("{s} is out of the signed 64-bit range"))
            } else {
                Error::validation(path, format!("{s:?} is not a decimal integer"))
            }
        }),
        Some(_) => Err(Error::validation(
            path,
            "must be an integer or a decimal string",
        )),
    }
}

fn enum_value(v: Option<&Value>, path: &str, names: &[&str]) -> Result<i64> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) => names
            .iter()
            .position(|n| n == s)
            .map(|p| p as i64)
            .or_else(|| s.parse().ok())
            .ok_or_else(|| {
                Error::validation(path, format!("{s:?} is not one of {}", names.join(", ")))
            }),
        other => int64(other, path),
    }
}

/// `[{"key": k, "value": AnyValue}, ...]` as a JSON object (a repeated key keeps the last).
fn attributes(v: &Value, path: &str) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (i, kv) in list(v, path)?.iter().enumerate() {
        let kv = object(kv, &format!("{path}[{i}]"))?;
        let Some(Value::String(key)) = kv.get("key") else {
            return Err(Error::validation(
                format!("{path}[{i}].key"),
                "must be a string",
            ));
        };
        let value = match kv.get("value") {
            None | Some(Value::Null) => Value::Null,
            Some(av) => any_value(av, &format!("{path}.{key}"), 0)?,
        };
        out.insert(key.clone(), value);
    }
    Ok(out)
}

/// OTLP `AnyValue` → JSON. Unknown or empty variants are `null`.
fn any_value(v: &Value, path: &str, depth: usize) -> Result<Value> {
    if depth > crate::event::MAX_DEPTH {
        return Err(Error::validation(path, "nested too deeply"));
    }
    let v = object(v, path)?;
    if let Some(s) = v.get("stringValue") {
        return Ok(match s {
            Value::String(_) => s.clone(),
            _ => return Err(Error::validation(path, "stringValue must be a string")),
        });
    }
    if let Some(b) = v.get("boolValue") {
        return match b {
            Value::Bool(_) => Ok(b.clone()),
            _ => Err(Error::validation(path, "boolValue must be a boolean")),
        };
    }
    if let Some(i) = v.get("intValue") {
        return Ok(Value::from(int64(Some(i), path)?));
    }
    if let Some(d) = v.get("doubleValue") {
        return match d {
            Value::Number(_) => Ok(d.clone()),
            // NaN and infinities are strings in the protobuf JSON mapping; JSON has no such numbers.
            Value::String(s) => match s.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Value::from(x)),
                _ => Ok(Value::String(s.clone())),
            },
            _ => Err(Error::validation(path, "doubleValue must be a number")),
        };
    }
    if let Some(b) = v.get("bytesValue") {
        return match b {
            Value::String(_) => Ok(b.clone()),
            _ => Err(Error::validation(
                path,
                "bytesValue must be a base64 string",
            )),
        };
    }
    if let Some(a) = v.get("arrayValue") {
        let values = a.get("values").unwrap_or(&Value::Null);
        return list(values, &format!("{path}.arrayValue.values"))?
            .iter()
            .enumerate()
            .map(|(i, x)| any_value(x, &format!("{path}[{i}]"), depth + 1))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array);
    }
    if let Some(kv) = v.get("kvlistValue") {
        let values = kv.get("values").unwrap_or(&Value::Null);
        let mut out = Map::new();
        for (i, e) in list(values, &format!("{path}.kvlistValue.values"))?
            .iter()
            .enumerate()
        {
            let e = object(e, &format!("{path}.kvlistValue.values[{i}]"))?;
            let Some(Value::String(key)) = e.get("key") else {
                return Err(Error::validation(
                    format!("{path}.kvlistValue.values[{i}].key"),
                    "must be a string",
                ));
            };
            let value = match e.get("value") {
                None | Some(Value::Null) => Value::Null,
                Some(x) => any_value(x, &format!("{path}.{key}"), depth + 1)?,
            };
            out.insert(key.clone(), value);
        }
        return Ok(Value::Object(out));
    }
    Ok(Value::Null)
}

/// JSON → OTLP `AnyValue` (the inverse of `any_value`, used by the export).
pub fn to_any_value(v: &Value) -> Value {
    use serde_json::json;
    match v {
        Value::Null => json!({}),
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => json!({ "intValue": i.to_string() }),
            None => match n.as_u64() {
                Some(u) => json!({ "intValue": u.to_string() }),
                None => json!({ "doubleValue": n }),
            },
        },
        Value::String(s) => json!({ "stringValue": s }),
        Value::Array(a) => {
            json!({ "arrayValue": { "values": a.iter().map(to_any_value).collect::<Vec<_>>() } })
        }
        Value::Object(m) => {
            json!({ "kvlistValue": { "values": m.iter().map(|(k, v)| json!({"key": k, "value": to_any_value(v)})).collect::<Vec<_>>() } })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(span: Value) -> String {
        json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
            "scopeSpans": [{"scope": {"name": "x"}, "spans": [span]}]
        }]})
        .to_string()
    }

    fn good_span() -> Value {
        json!({
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "EEE19B7EC3C1B174",
            "parentSpanId": "",
            "name": "chat gpt-5",
            "kind": 3,
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000",
            "attributes": [
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}},
                {"key": "temp", "value": {"doubleValue": 0.5}},
                {"key": "ok", "value": {"boolValue": true}},
                {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 2}]}}},
                {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}}
            ],
            "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
            "droppedAttributesCount": 0,
            "someFutureField": {"x": 1}
        })
    }

    #[test]
    fn parses_ids_ints_values_and_ignores_unknown_fields() {
        let spans = parse_otlp_json(&doc(good_span())).unwrap();
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!(s.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(s.span_id, "eee19b7ec3c1b174");
        assert_eq!(s.parent_span_id, None);
        assert_eq!(s.kind, 3);
        assert_eq!(s.start_ns, 1_544_712_660_000_000_000);
        assert_eq!(s.end_ns, 1_544_712_661_000_000_000);
        assert_eq!(s.status_code, 2);
        assert_eq!(s.status_message.as_deref(), Some("boom"));
        assert_eq!(s.attributes["gen_ai.usage.input_tokens"], json!(10));
        assert_eq!(s.attributes["temp"], json!(0.5));
        assert_eq!(s.attributes["list"], json!(["a", 2]));
        assert_eq!(s.attributes["kv"], json!({"k": "v"}));
        assert_eq!(s.resource["service.name"], json!("svc"));
    }

    #[test]
    fn json_lines_are_read_and_errors_name_the_path_and_line() {
        let text = format!("{}\n{}\n", doc(good_span()), doc(good_span()));
        assert_eq!(parse_otlp_json(&text).unwrap().len(), 2);
        let mut bad = good_span();
        bad["spanId"] = json!("7u6e5Q==");
        let text = format!("{}\n{}\n", doc(good_span()), doc(bad));
        let err = parse_otlp_json(&text).unwrap_err();
        let Error::Validation { field, message } = err else {
            panic!()
        };
        assert_eq!(field, "resourceSpans[0].scopeSpans[0].spans[0].spanId");
        assert!(message.contains("hex"), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn structural_errors() {
        for (mutate, field) in [
            (json!({"startTimeUnixNano": "12x"}), "startTimeUnixNano"),
            (json!({"traceId": "abc"}), "traceId"),
            (json!({"attributes": {"k": 1}}), "attributes"),
            (json!({"kind": "SPAN_KIND_WEIRD"}), "kind"),
        ] {
            let mut s = good_span();
            for (k, v) in mutate.as_object().unwrap() {
                s[k] = v.clone();
            }
            let err = parse_otlp_json(&doc(s)).unwrap_err();
            assert!(
                matches!(&err, Error::Validation { field: f, .. } if f.ends_with(field)),
                "{err}"
            );
        }
        assert!(parse_otlp_json("").is_err());
        assert!(parse_otlp_json("{\"resourceSpans\": [").is_err());
        assert!(parse_otlp_json("{}").is_err());
        assert!(parse_otlp_json("{\"resourceSpans\": []}")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn every_prefix_and_mutation_is_an_error_or_spans_never_a_panic() {
        let text = doc(good_span());
        for end in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
            let _ = parse_otlp_json(&text[..end]);
        }
        let bytes = text.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            for replacement in [b'"', b'{', b'[', b'0', b'-', b'x'] {
                if *b == replacement {
                    continue;
                }
                let mut m = bytes.to_vec();
                m[i] = replacement;
                if let Ok(t) = std::str::from_utf8(&m) {
                    let _ = parse_otlp_json(t);
                }
            }
        }
    }

    #[test]
    fn any_value_round_trip() {
        for v in [
            json!("s"),
            json!(true),
            json!(-3),
            json!(1.5),
            json!(["a", 1]),
            json!({"k": {"n": 1}}),
        ] {
            let av = to_any_value(&v);
            assert_eq!(any_value(&av, "x", 0).unwrap(), v);
        }
    }
}
