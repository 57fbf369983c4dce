//! RFC 8785 (JSON Canonicalization Scheme) writer: the exact bytes of a ledger `record`.
//!
//! Rules, as RFC 8785 states them and with one deliberate refinement:
//! - no whitespace; object keys sorted by their UTF-16 code units;
//! - strings: `"` and `\` escaped, control characters below U+0020 written as `\b \t \n \f \r`
//!   or `\u00xx` (lowercase hex), every other character literal (no `\u` escapes, no `\/`);
//! - floats: ECMAScript `Number.prototype.toString` (shortest round-trip digits, `1e+21`,
//!   `0.000001`, `1e-7`, `-0` → `0`); NaN and infinities have no JSON form and are rejected;
//! - integers (`serde_json` numbers that are `i64`/`u64`, and every `write_i64`/`write_u64`) are
//!   written as their exact decimal digits, never through a double. RFC 8785 would round integers
//!   above 2^53 through a double; nanosecond timestamps (~1.7e18) must stay exact, so the ledger
//!   format defines integers this way (docs/ledger-format.md).
//!
//! Performance notes: this runs on the writer thread for every event. Strings are copied in
//! runs between the (rare) characters that need escaping; integers are formatted into a stack
//! buffer; objects whose keys are already in order (every `serde_json::Map` without
//! `preserve_order`, unless a key holds a character at or above U+E000) are written without
//! sorting or allocating.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Appends `s` as a canonical JSON string, quotes included.
pub fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        // Every byte that needs escaping is ASCII, so `i` is a char boundary.
        out.push_str(&s[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends a float in ECMAScript `Number.prototype.toString` form (`-0` → `0`).
///
/// NaN and ±infinity have no JSON form: `Error::Validation` on field `number`.
pub fn write_f64(out: &mut String, x: f64) -> Result<()> {
    if !x.is_finite() {
        return Err(Error::validation(
            "number",
            format!("{x} is not a finite number and has no JSON form"),
        ));
    }
    if x == 0.0 {
        out.push('0');
        return Ok(());
    }
    let mut buf = ryu_js::Buffer::new();
    out.push_str(buf.format_finite(x));
    Ok(())
}

/// Appends the exact decimal digits of `x`.
pub fn write_u64(out: &mut String, x: u64) {
    let mut buf = [0u8; 20];
    out.push_str(digits(&mut buf, x));
}

/// Appends the exact decimal digits of `x` (with `-` when negative).
pub fn write_i64(out: &mut String, x: i64) {
    if x < 0 {
        out.push('-');
    }
    write_u64(out, x.unsigned_abs());
}

/// Formats `x` into the tail of `buf` and returns the digits.
fn digits(buf: &mut [u8; 20], mut x: u64) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).expect("ASCII digits")
}

/// Orders object keys the way RFC 8785 does: by UTF-16 code units.
///
/// This differs from byte (code point) order only between a character in U+E000..=U+FFFF and
/// one above U+FFFF (whose UTF-16 surrogates sort first).
pub fn cmp_keys(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Appends `v` as canonical JSON.
///
/// Integers are exact; floats go through [`write_f64`]. A `Value` cannot hold NaN or
/// infinities, so this fails only for values built from a custom number representation.
pub fn write_value(out: &mut String, v: &Value) -> Result<()> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                write_u64(out, u);
            } else if let Some(i) = n.as_i64() {
                write_i64(out, i);
            } else {
                let f = n.as_f64().ok_or_else(|| {
                    Error::validation("number", format!("{n} is not representable"))
                })?;
                write_f64(out, f)?;
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map)?,
    }
    Ok(())
}

/// Returns the canonical JSON text of `v`.
pub fn to_canonical(v: &Value) -> Result<String> {
    let mut out = String::with_capacity(256);
    write_value(&mut out, v)?;
    Ok(out)
}

fn write_object(out: &mut String, map: &Map<String, Value>) -> Result<()> {
    out.push('{');
    if keys_in_canonical_order(map) {
        for (i, (k, v)) in map.iter().enumerate() {
            write_member(out, i, k, v)?;
        }
    } else {
        let mut entries: Vec<(&String, &Value)> = map.iter().collect();
        entries.sort_by(|a, b| cmp_keys(a.0, b.0));
        for (i, (k, v)) in entries.into_iter().enumerate() {
            write_member(out, i, k, v)?;
        }
    }
    out.push('}');
    Ok(())
}

fn write_member(out: &mut String, i: usize, k: &str, v: &Value) -> Result<()> {
    if i > 0 {
        out.push(',');
    }
    write_str(out, k);
    out.push(':');
    write_value(out, v)
}

/// True when iterating `map` already yields UTF-16 order: keys strictly ascending by bytes and
/// no key holds a character at or above U+E000 (UTF-8 lead byte 0xEE or higher), the only
/// range where byte order and UTF-16 order disagree.
fn keys_in_canonical_order(map: &Map<String, Value>) -> bool {
    let mut prev: Option<&str> = None;
    for k in map.keys() {
        if k.bytes().any(|b| b >= 0xEE) {
            return false;
        }
        if let Some(p) = prev {
            if p.as_bytes() >= k.as_bytes() {
                return false;
            }
        }
        prev = Some(k);
    }
    true
}

/// The first 16 hex digits of SHA-256(catalogue): how records name their catalogue.
pub fn catalogue_digest(catalogue: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(catalogue.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_str(s: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, s);
        out
    }

    #[test]
    fn string_escaping_follows_rfc8785() {
        assert_eq!(json_str("plain"), r#""plain""#);
        assert_eq!(json_str("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json_str("\u{8}\t\n\u{c}\r"), r#""\b\t\n\f\r""#);
        assert_eq!(json_str("\u{0}\u{1f}\u{1b}"), r#""\u0000\u001f\u001b""#);
        // DEL, non-ASCII and U+2028 are written verbatim.
        assert_eq!(json_str("\u{7f}é€\u{2028}😀"), "\"\u{7f}é€\u{2028}😀\"");
        // Agrees with serde_json on a string with every control character.
        let all: String = (0u8..0x20)
            .map(char::from)
            .chain("x\"\\y".chars())
            .collect();
        let ours = json_str(&all);
        assert_eq!(serde_json::from_str::<String>(&ours).unwrap(), all);
        assert!(ours.starts_with(r#""\u0000\u0001"#) && ours.contains(r#"\u000b\f\r\u000e"#));
    }

    use std::path::PathBuf;

    fn canon(text: &str) -> String {
        to_canonical(&serde_json::from_str(text).unwrap()).unwrap()
    }

    /// The RFC 8785 vectors in the shared test data beside the repository
    /// (`../shared/testdata/jcs`), when it is there.
    fn vector_dir() -> Option<PathBuf> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/jcs");
        dir.is_dir().then_some(dir)
    }

    #[test]
    fn serde_json_parses_floats_exactly() {
        // Records are read back with serde_json; its default float parser can be one ulp off,
        // which would change attrs on read-back and break these vectors. The crate enables
        // serde_json's `float_roundtrip` feature for this.
        for text in [
            "9.999999999999997e-7",
            "123456789012345680000.0",
            "0.1",
            "5e-324",
        ] {
            let parsed: f64 = serde_json::from_str(text).unwrap();
            assert_eq!(
                parsed,
                text.parse::<f64>().unwrap(),
                "serde_json parsed {text} inexactly: enable serde_json's `float_roundtrip` feature"
            );
        }
    }

    #[test]
    fn rfc8785_vectors() {
        let Some(dir) = vector_dir() else {
            eprintln!("skipped: ../shared/testdata/jcs (the RFC 8785 vectors) is not present");
            return;
        };
        let mut names: Vec<_> = std::fs::read_dir(dir.join("input"))
            .expect("jcs/input")
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert!(
            names.len() >= 6,
            "expected the six JCS vectors, found {names:?}"
        );
        for name in names {
            let input = std::fs::read_to_string(dir.join("input").join(&name)).unwrap();
            let expected = std::fs::read_to_string(dir.join("output").join(&name)).unwrap();
            assert_eq!(canon(&input), expected, "vector {name:?}");
            // Canonical output is a fixed point.
            assert_eq!(
                canon(&expected),
                expected,
                "vector {name:?} re-canonicalized"
            );
        }
    }

    #[test]
    fn string_escaping() {
        let mut out = String::new();
        write_str(&mut out, "a\"b\\c\u{8}\t\n\u{c}\r\u{0}\u{1f}\u{7f}/é😂");
        assert_eq!(
            out,
            "\"a\\\"b\\\\c\\b\\t\\n\\f\\r\\u0000\\u001f\u{7f}/é😂\""
        );
        out.clear();
        write_str(&mut out, "");
        assert_eq!(out, "\"\"");
    }

    #[test]
    fn ecmascript_numbers() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (56.0, "56"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (9.999999999999997e-7, "9.999999999999997e-7"),
            (0.1, "0.1"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (333_333_333.333_333_3, "333333333.3333333"),
        ];
        for &(x, want) in cases {
            let mut out = String::new();
            write_f64(&mut out, x).unwrap();
            assert_eq!(out, want, "{x:e}");
        }
    }

    #[test]
    fn non_finite_numbers_are_rejected() {
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = write_f64(&mut String::new(), x).unwrap_err();
            assert!(matches!(err, Error::Validation { ref field, .. } if field == "number"));
        }
    }

    #[test]
    fn integers_are_exact() {
        let mut out = String::new();
        write_i64(&mut out, i64::MIN);
        out.push(' ');
        write_i64(&mut out, 1_761_000_000_123_456_789);
        out.push(' ');
        write_u64(&mut out, u64::MAX);
        out.push(' ');
        write_u64(&mut out, 0);
        assert_eq!(
            out,
            "-9223372036854775808 1761000000123456789 18446744073709551615 0"
        );
        // Through a Value too: 2^53 + 1 is not a double, and must not be rounded.
        assert_eq!(
            canon("[9007199254740993,-9007199254740993]"),
            "[9007199254740993,-9007199254740993]"
        );
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // U+1F602 (surrogates D83D DE02) sorts before U+FB33 in UTF-16, after it by code point.
        assert_eq!(cmp_keys("\u{1F602}", "\u{FB33}"), Ordering::Less);
        assert_eq!(cmp_keys("a", "b"), Ordering::Less);
        assert_eq!(cmp_keys("ab", "a"), Ordering::Greater);
        assert_eq!(
            canon(r#"{"דּ":1,"😂":2,"a":{"b":1,"a":2}}"#),
            r#"{"a":{"a":2,"b":1},"😂":2,"דּ":1}"#
        );
    }

    #[test]
    fn nested_structures() {
        assert_eq!(
            canon(r#" { "z" : [ 1 , { "y" : null , "x" : true } , [ ] , "s" ] , "a" : { } } "#),
            r#"{"a":{},"z":[1,{"x":true,"y":null},[],"s"]}"#
        );
    }
}
