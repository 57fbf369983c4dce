//! The hashed record and the chain: record text, link hash, the [`Head`], and payload identity
//! for idempotent re-recording.
//!
//! A record is the canonical JSON text `{"classification":C,"event":E,"seq":N,"v":1}` (its keys
//! already in canonical order) and `hash_n = SHA-256(hash_{n-1} || utf8(record_n))` with
//! `hash_0` = 32 zero bytes. See docs/ledger-format.md.

use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical;
use crate::error::{Error, Result};

/// The text that ends every version-1 record after its seq digits.
const TAIL: &[u8] = b",\"v\":1}";
/// The text just before the seq digits.
const SEQ_KEY: &[u8] = b",\"seq\":";

/// The chain's last position: keep it outside the ledger to detect truncation or a swap later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Head {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl Head {
    /// The head of an empty ledger: seq 0, 32 zero bytes.
    pub const EMPTY: Head = Head {
        seq: 0,
        hash: [0; 32],
    };

    /// The hash as 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// Parses `"SEQ:HEX"` (the [`Display`](fmt::Display) form); `Error::Validation` on `head`.
    pub fn parse(text: &str) -> Result<Head> {
        let bad =
            |m: &str| Error::validation("head", format!("{m}: expected SEQ:HEX, got {text:?}"));
        let (seq, hash) = text.trim().split_once(':').ok_or_else(|| bad("no ':'"))?;
        let seq = seq
            .parse::<u64>()
            .map_err(|_| bad("seq is not a non-negative integer"))?;
        let bytes = hex::decode(hash).map_err(|_| bad("hash is not hex"))?;
        let hash: [u8; 32] = bytes.try_into().map_err(|_| bad("hash is not 32 bytes"))?;
        Ok(Head { seq, hash })
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hex())
    }
}

/// `SHA-256(prev || record)`: one link of the chain.
pub fn chain_hash(prev: &[u8; 32], record: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(record);
    h.finalize().into()
}

/// Appends the record text `{"classification":C,"event":E,"seq":N,"v":1}` to `out`.
pub fn write_record(out: &mut String, classification_json: &str, event_json: &str, seq: u64) {
    out.reserve(classification_json.len() + event_json.len() + 48);
    out.push_str("{\"classification\":");
    out.push_str(classification_json);
    out.push_str(",\"event\":");
    out.push_str(event_json);
    out.push_str(",\"seq\":");
    canonical::write_u64(out, seq);
    out.push_str(",\"v\":1}");
}

/// The `seq` a record embeds, read from its end without parsing the rest; `None` when the
/// record ends like neither a version-1 nor a version-2 record.
pub fn embedded_seq(record: &[u8]) -> Option<u64> {
    use super::compact::{SEQ_KEY_V2, TAIL_V2};
    let (body, key) = match record.strip_suffix(TAIL) {
        Some(body) => (body, SEQ_KEY),
        None => (record.strip_suffix(TAIL_V2)?, SEQ_KEY_V2),
    };
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let (head, num) = body.split_at(body.len() - digits);
    if !head.ends_with(key) || num.is_empty() || (num.len() > 1 && num[0] == b'0') {
        return None;
    }
    std::str::from_utf8(num).ok()?.parse().ok()
}

/// Compares a stored record's `event` with a new canonical `event` object: `None` when they
/// are the same event (ignoring `ts` unless the new one's `ts` was explicit), else what differs.
pub(crate) fn event_difference(
    stored_record: &str,
    new_event: &str,
    ts_explicit: bool,
) -> Option<String> {
    let stored = serde_json::from_str::<Value>(stored_record)
        .ok()
        .and_then(|mut r| r.get_mut("event").map(Value::take));
    let (Some(Value::Object(mut old)), Ok(Value::Object(mut new))) =
        (stored, serde_json::from_str::<Value>(new_event))
    else {
        return Some("a record is not readable".to_string());
    };
    if !ts_explicit {
        old.remove("ts");
        new.remove("ts");
    }
    if old == new {
        return None;
    }
    let mut keys: Vec<&str> = old
        .keys()
        .chain(new.keys())
        .filter(|k| old.get(k.as_str()) != new.get(k.as_str()))
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    Some(format!("differs in {}", keys.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_text_round_trips() {
        let head = Head {
            seq: 42,
            hash: [0xab; 32],
        };
        let text = head.to_string();
        assert_eq!(text, format!("42:{}", "ab".repeat(32)));
        assert_eq!(head.hex(), "ab".repeat(32));
        assert_eq!(Head::parse(&text).unwrap(), head);
        assert_eq!(Head::parse(&format!(" {text}\n")).unwrap(), head);
        for bad in ["", "42", "x:ab", "-1:00", "1:zz", "1:abab"] {
            let err = Head::parse(bad).unwrap_err();
            assert!(
                matches!(err, Error::Validation { ref field, .. } if field == "head"),
                "{bad}"
            );
        }
    }

    #[test]
    fn record_layout_and_chain_hash() {
        let mut out = String::new();
        write_record(&mut out, r#"{"tag":"stateless"}"#, r#"{"id":"a"}"#, 7);
        assert_eq!(
            out,
            r#"{"classification":{"tag":"stateless"},"event":{"id":"a"},"seq":7,"v":1}"#
        );
        // SHA-256 of 32 zero bytes followed by "abc", computed independently with Python hashlib.
        assert_eq!(
            hex::encode(chain_hash(&[0; 32], b"abc")),
            "365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370"
        );
    }

    #[test]
    fn embedded_seq_reads_the_top_level_seq() {
        let mut r = String::new();
        write_record(&mut r, "{}", r#"{"attrs":{"seq":5},"id":"a"}"#, 123);
        assert_eq!(embedded_seq(r.as_bytes()), Some(123));
        assert_eq!(
            embedded_seq(br#"{"c":1,"e":{"s":4},"s":77,"v":2}"#),
            Some(77)
        );
        for bad in [
            "",
            r#"{"seq":1,"v":1}"#,
            r#"{"x":1,"seq":,"v":1}"#,
            r#"{"x":1,"seq":01,"v":1}"#,
            r#"{"x":1,"seq":1,"v":2}"#,
            r#"{"x":1,"s":1,"v":1}"#,
            r#"{"x":1,"seq":99999999999999999999999,"v":1}"#,
        ] {
            assert_eq!(embedded_seq(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn payload_identity() {
        let mut stored = String::new();
        write_record(
            &mut stored,
            "{}",
            r#"{"attrs":{"k":1.5},"id":"a","ts":5}"#,
            1,
        );
        assert_eq!(
            event_difference(&stored, r#"{"attrs":{"k":1.5},"id":"a","ts":5}"#, true),
            None
        );
        assert_eq!(
            event_difference(&stored, r#"{"attrs":{"k":1.5},"id":"a","ts":9}"#, false),
            None
        );
        assert_eq!(
            event_difference(&stored, r#"{"attrs":{"k":1.5},"id":"a","ts":9}"#, true).as_deref(),
            Some("differs in ts")
        );
        assert_eq!(
            event_difference(
                &stored,
                r#"{"attrs":{"k":2},"id":"a","ts":5,"x":null}"#,
                false
            )
            .as_deref(),
            Some("differs in attrs, x")
        );
        assert!(event_difference("not json", "{}", false).is_some());
    }
}
