//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys, and the key encodings
//! of Go's `golang.org/x/mod/sumdb/note` package.
//!
//! A signed note is a text ending in a newline, a blank line, and one or more signature lines
//! `— <key name> base64(key id || signature)`. The key id of an Ed25519 key is the first four
//! bytes (big-endian) of `SHA-256(name || 0x0A || 0x01 || public key)`. Keys are written
//! `PRIVATE+KEY+<name>+<hex key id>+base64(0x01 || seed)` (signing) and
//! `<name>+<hex key id>+base64(0x01 || public key)` (verifying).
//!
//! The signatures themselves are `ed25519-dalek`'s.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, Verifier};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The signature type byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;
/// The most signature lines a note may carry (the spec asks verifiers to accept 16 at least).
pub const MAX_SIGNATURES: usize = 100;
const DASH: &str = "\u{2014} ";

fn bad(field: &str, message: impl Into<String>) -> Error {
    Error::validation(field, message)
}

/// Whether `name` may name a key: non-empty, no Unicode space and no `+`.
fn check_name(name: &str, field: &str) -> Result<()> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(bad(
            field,
            format!("key name {name:?} must be non-empty, without spaces or '+'"),
        ));
    }
    Ok(())
}

/// The key id of an Ed25519 key named `name`.
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Splits `name+hexid+base64` and checks the id and the type byte; returns the name, the id
/// and the 32 key bytes.
fn parse_key(text: &str, field: &str, what: &str) -> Result<(String, u32, [u8; 32])> {
    let wrong = |m: &str| {
        bad(
            field,
            format!("not a {what} ({m}): expected NAME+KEYID+BASE64"),
        )
    };
    let mut parts = text.trim_end_matches('\n').splitn(3, '+');
    let (Some(name), Some(id), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(wrong("fewer than three '+'-separated parts"));
    };
    check_name(name, field)?;
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(wrong("the key id is not 8 hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| wrong("the key id is not hex"))?;
    let bytes = B64
        .decode(data)
        .map_err(|_| wrong("the key is not standard base64"))?;
    if bytes.len() != 33 || bytes[0] != ED25519 {
        return Err(wrong("not an Ed25519 key: expected 0x01 and 32 bytes"));
    }
    let key: [u8; 32] = bytes[1..].try_into().expect("33 bytes");
    Ok((name.to_string(), id, key))
}

/// An Ed25519 key that signs notes under a name.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    key: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({:?})", self.name)
    }
}

impl SigningKey {
    /// A new key from the operating system's random source.
    pub fn generate(name: &str) -> Result<SigningKey> {
        check_name(name, "name")?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| Error::Ledger(format!("no randomness for a new key: {e}")))?;
        Ok(SigningKey::from_seed(name, &seed))
    }

    fn from_seed(name: &str, seed: &[u8; 32]) -> SigningKey {
        SigningKey {
            name: name.to_string(),
            key: ed25519_dalek::SigningKey::from_bytes(seed),
        }
    }

    /// Parses `PRIVATE+KEY+name+keyid+base64(0x01 || seed)`; `Error::Validation` (field
    /// `key`) when it is not one, or its key id does not match.
    pub fn parse(text: &str) -> Result<SigningKey> {
        let rest = text
            .trim_end_matches('\n')
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("key", "not a signing key: it must start with PRIVATE+KEY+"))?;
        let (name, id, seed) = parse_key(rest, "key", "signing key")?;
        let key = SigningKey::from_seed(&name, &seed);
        if key.verifying_key().id != id {
            return Err(bad(
                "key",
                "the signing key's id does not match its name and key",
            ));
        }
        Ok(key)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifying (public) key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::new(&self.name, self.key.verifying_key())
    }

    /// The signature line of this key over `text`: `— name base64(id || signature)\n`.
    pub fn signature_line(&self, text: &str) -> String {
        let sig = self.key.sign(text.as_bytes());
        let mut payload = self.verifying_key().id.to_be_bytes().to_vec();
        payload.extend_from_slice(&sig.to_bytes());
        format!("{DASH}{} {}\n", self.name, B64.encode(payload))
    }
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut data = vec![ED25519];
        data.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.verifying_key().id,
            B64.encode(data)
        )
    }
}

/// An Ed25519 public key that checks notes signed under its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyingKey {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl VerifyingKey {
    fn new(name: &str, key: ed25519_dalek::VerifyingKey) -> VerifyingKey {
        VerifyingKey {
            name: name.to_string(),
            id: key_id(name, key.as_bytes()),
            key,
        }
    }

    /// Parses `name+keyid+base64(0x01 || public key)`; `Error::Validation` (field `key`) when
    /// it is not one, its key id does not match, or the bytes are no Ed25519 point.
    pub fn parse(text: &str) -> Result<VerifyingKey> {
        let (name, id, public) = parse_key(text, "key", "verifying key")?;
        if key_id(&name, &public) != id {
            return Err(bad(
                "key",
                "the verifying key's id does not match its name and key",
            ));
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
            .map_err(|_| bad("key", "the verifying key is not a valid Ed25519 public key"))?;
        Ok(VerifyingKey::new(&name, key))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id (the first four bytes of its hash).
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl fmt::Display for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut data = vec![ED25519];
        data.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(data))
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: u32,
    pub signature: Vec<u8>,
}

/// What a note's signatures say about one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    /// A signature line of this key (name and id) verifies.
    Verified,
    /// No signature line carries this key's name and id.
    Unsigned,
    /// A signature line of this key does not verify over the text.
    Invalid,
}

/// A signed note, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The text, including its final newline.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note; `Error::Validation` (field `note`) naming what is malformed.
    pub fn parse(signed: &str) -> Result<Note> {
        let wrong = |m: &str| bad("note", format!("not a signed note: {m}"));
        if let Some(c) = signed.chars().find(|&c| c < ' ' && c != '\n') {
            return Err(wrong(&format!("it holds the control character {c:?}")));
        }
        if !signed.ends_with('\n') {
            return Err(wrong("it does not end in a newline"));
        }
        let split = signed
            .rfind("\n\n")
            .ok_or_else(|| wrong("no blank line separates the text from the signatures"))?;
        let text = &signed[..=split];
        let mut signatures = Vec::new();
        for line in signed[split + 2..].split_terminator('\n') {
            let rest = line
                .strip_prefix(DASH)
                .ok_or_else(|| wrong(&format!("{line:?} is not a signature line")))?;
            let (name, data) = rest
                .split_once(' ')
                .ok_or_else(|| wrong(&format!("{line:?} has no signature")))?;
            check_name(name, "note")?;
            let bytes = B64
                .decode(data)
                .map_err(|_| wrong(&format!("the signature of {name} is not base64")))?;
            if bytes.len() < 5 {
                return Err(wrong(&format!("the signature of {name} is too short")));
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
                signature: bytes[4..].to_vec(),
            });
            if signatures.len() > MAX_SIGNATURES {
                return Err(wrong(&format!("more than {MAX_SIGNATURES} signatures")));
            }
        }
        if signatures.is_empty() {
            return Err(wrong("it has no signature"));
        }
        Ok(Note {
            text: text.to_string(),
            signatures,
        })
    }

    /// Signs `text` (which must end in a newline, without control characters) with `key`.
    pub fn sign(text: &str, key: &SigningKey) -> Result<Note> {
        if !text.ends_with('\n') || text.chars().any(|c| c < ' ' && c != '\n') {
            return Err(bad(
                "text",
                "a note's text must end in a newline and hold no control characters",
            ));
        }
        let mut note = Note {
            text: text.to_string(),
            signatures: Vec::new(),
        };
        note.add_signature(key);
        Ok(note)
    }

    /// Adds `key`'s signature (a co-signer, e.g. a witness), replacing one of the same key.
    pub fn add_signature(&mut self, key: &SigningKey) {
        let vk = key.verifying_key();
        self.signatures
            .retain(|s| !(s.name == vk.name && s.key_id == vk.id));
        let sig = key.key.sign(self.text.as_bytes());
        self.signatures.push(NoteSignature {
            name: vk.name,
            key_id: vk.id,
            signature: sig.to_bytes().to_vec(),
        });
    }

    /// Checks the signature lines of `key` (same name and key id; others are ignored).
    pub fn check(&self, key: &VerifyingKey) -> Checked {
        let mut result = Checked::Unsigned;
        for s in &self.signatures {
            if s.name != key.name || s.key_id != key.id {
                continue;
            }
            let ok = ed25519_dalek::Signature::from_slice(&s.signature)
                .is_ok_and(|sig| key.key.verify(self.text.as_bytes(), &sig).is_ok());
            if !ok {
                return Checked::Invalid;
            }
            result = Checked::Verified;
        }
        result
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for s in &self.signatures {
            let mut payload = s.key_id.to_be_bytes().to_vec();
            payload.extend_from_slice(&s.signature);
            writeln!(f, "{DASH}{} {}", s.name, B64.encode(payload))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the C2SP signed-note specification (as published up to 2024, with its
    /// verifier key; the current text's example names no key).
    const SPEC_KEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo \
        Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    /// The example of Go's note package documentation (golang.org/x/mod/sumdb/note).
    const GO_SIGNER: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_KEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
        then you don't know what your problem is.\n";
    const GO_NOTE_SIG: &str = "\u{2014} PeterNeumann \
        x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn the_specification_example_verifies() {
        let key = VerifyingKey::parse(SPEC_KEY).unwrap();
        assert_eq!(key.to_string(), SPEC_KEY);
        let note = Note::parse(SPEC_NOTE).unwrap();
        assert_eq!(note.text, "This is an example message.\n");
        assert_eq!(note.check(&key), Checked::Verified);
        assert_eq!(note.to_string(), SPEC_NOTE);
        let edited = Note::parse(&SPEC_NOTE.replace("example message", "example massage")).unwrap();
        assert_eq!(edited.check(&key), Checked::Invalid);
    }

    #[test]
    fn go_keys_sign_byte_for_byte_as_go_does() {
        let signer = SigningKey::parse(GO_SIGNER).unwrap();
        assert_eq!(signer.to_string(), GO_SIGNER);
        assert_eq!(signer.verifying_key().to_string(), GO_KEY);
        let note = Note::sign(GO_TEXT, &signer).unwrap();
        assert_eq!(note.to_string(), format!("{GO_TEXT}\n{GO_NOTE_SIG}"));
        let key = VerifyingKey::parse(GO_KEY).unwrap();
        assert_eq!(note.check(&key), Checked::Verified);
        // Another key of the same name is not this key: its signature is not looked at.
        let other = SigningKey::generate("PeterNeumann")
            .unwrap()
            .verifying_key();
        assert_eq!(note.check(&other), Checked::Unsigned);
    }

    #[test]
    fn cosigners_and_malformed_notes() {
        let a = SigningKey::generate("ledger.example/a").unwrap();
        let w = SigningKey::generate("witness.example/w").unwrap();
        let mut note = Note::sign("text\n\nwith a blank line\n", &a).unwrap();
        note.add_signature(&w);
        let parsed = Note::parse(&note.to_string()).unwrap();
        assert_eq!(parsed.text, "text\n\nwith a blank line\n");
        assert_eq!(parsed.check(&a.verifying_key()), Checked::Verified);
        assert_eq!(parsed.check(&w.verifying_key()), Checked::Verified);
        for bad in [
            "no newline",
            "text\n",
            "text\n\n",
            "text\n\nnot a signature\n",
            "text\n\n\u{2014} name !!!\n",
            "te\u{7}xt\n\n\u{2014} a AAAAAAAA\n",
            "text\n\n\u{2014} a+b AAAAAAAA\n",
        ] {
            assert!(Note::parse(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "",
            "a+b",
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+AhpczQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ] {
            assert!(VerifyingKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(SigningKey::parse(GO_KEY).is_err());
        assert!(SigningKey::generate("bad name").is_err());
        let round = SigningKey::parse(&a.to_string()).unwrap();
        assert_eq!(round.verifying_key(), a.verifying_key());
    }
}
