//! AWS event-stream framing (`application/vnd.amazon.eventstream`): the binary messages of
//! Bedrock's streaming responses (InvokeAgent's `completion`, ConverseStream, ...).
//!
//! A message is a prelude (total length and headers length, big-endian `u32`s, and the CRC-32 of
//! those 8 bytes), its headers (each a 1-byte name length, the name, a 1-byte value type and the
//! value), its payload, and the CRC-32 of everything before it
//! (the format of the AWS SDKs' event streams, which botocore's `botocore.eventstream` reads). The checksums are `crc32fast`'s; the framing is
//! written here because the crates that read it (`aws-smithy-eventstream`) come with the async
//! runtime and body types of the Rust SDK, and the framing is these few lines over a byte slice.

/// The longest message botocore accepts (16 MiB), and the longest headers block (128 KiB).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
const MAX_HEADERS: usize = 128 * 1024;
/// Prelude (12 bytes) and message CRC (4 bytes).
const OVERHEAD: usize = 16;

/// Why a message cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The prelude's CRC does not match its 8 bytes.
    PreludeChecksum,
    /// The message's CRC does not match its bytes.
    MessageChecksum,
    /// A length in the prelude is out of range.
    Length,
    /// A header runs past the headers block or has an unknown value type.
    Header,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameError::PreludeChecksum => "an event-stream message's prelude checksum is wrong",
            FrameError::MessageChecksum => "an event-stream message's checksum is wrong",
            FrameError::Length => "an event-stream message's length is out of range",
            FrameError::Header => "an event-stream message's headers cannot be read",
        })
    }
}

/// One message: its headers block (read with [`Message::header`]) and its payload.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    headers: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// The value of the string header `name` (`:event-type`, `:message-type`, ...); `None` when
    /// absent or of another type.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        let mut rest = self.headers;
        while let Some(h) = next_header(rest) {
            if h.name == name.as_bytes() && h.kind == 7 {
                return std::str::from_utf8(h.value).ok();
            }
            rest = h.rest;
        }
        None
    }
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// One header: its name, value type and value bytes, and the headers after it.
struct Header<'a> {
    name: &'a [u8],
    kind: u8,
    value: &'a [u8],
    rest: &'a [u8],
}

/// The first header of `b`; `None` at the end of the block or when the header runs past it.
fn next_header(b: &[u8]) -> Option<Header<'_>> {
    let (&len, b) = b.split_first()?;
    let name = b.get(..len as usize)?;
    let b = &b[len as usize..];
    let (&kind, b) = b.split_first()?;
    let size = match kind {
        0 | 1 => 0,
        2 => 1,
        3 => 2,
        4 => 4,
        5 | 8 => 8,
        9 => 16,
        6 | 7 => {
            let n = u16::from_be_bytes([*b.first()?, *b.get(1)?]) as usize;
            return Some(Header {
                name,
                kind,
                value: b.get(2..2 + n)?,
                rest: &b[2 + n..],
            });
        }
        _ => return None,
    };
    Some(Header {
        name,
        kind,
        value: b.get(..size)?,
        rest: &b[size..],
    })
}

/// Reads the message at the start of `b`: `Ok(None)` when `b` holds only part of it (a stream
/// cut there), else the message and its length.
pub fn read_message(b: &[u8]) -> Result<Option<(Message<'_>, usize)>, FrameError> {
    if b.len() < 12 {
        return Ok(None);
    }
    let (total, headers) = (be32(b), be32(&b[4..]));
    if crc32fast::hash(&b[..8]) as usize != be32(&b[8..]) {
        return Err(FrameError::PreludeChecksum);
    }
    if !(OVERHEAD..=MAX_MESSAGE).contains(&total)
        || headers > MAX_HEADERS
        || headers > total - OVERHEAD
    {
        return Err(FrameError::Length);
    }
    let Some(message) = b.get(..total) else {
        return Ok(None);
    };
    if crc32fast::hash(&message[..total - 4]) as usize != be32(&message[total - 4..]) {
        return Err(FrameError::MessageChecksum);
    }
    let block = &message[12..12 + headers];
    let mut rest = block;
    while !rest.is_empty() {
        rest = next_header(rest).ok_or(FrameError::Header)?.rest;
    }
    Ok(Some((
        Message {
            headers: block,
            payload: &message[12 + headers..total - 4],
        },
        total,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message as botocore's tests and AWS build it (string headers, CRCs).
    fn message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let mut h = Vec::new();
        for (name, value) in headers {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(7);
            h.extend_from_slice(&(value.len() as u16).to_be_bytes());
            h.extend_from_slice(value.as_bytes());
        }
        let total = (OVERHEAD + h.len() + payload.len()) as u32;
        let mut m = total.to_be_bytes().to_vec();
        m.extend_from_slice(&(h.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        m.extend_from_slice(&h);
        m.extend_from_slice(payload);
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        m
    }

    #[test]
    fn reads_headers_and_payload() {
        let m = message(
            &[(":event-type", "trace"), (":message-type", "event")],
            b"{\"a\":1}",
        );
        let (msg, len) = read_message(&m).unwrap().unwrap();
        assert_eq!(len, m.len());
        assert_eq!(msg.header(":event-type"), Some("trace"));
        assert_eq!(msg.header(":message-type"), Some("event"));
        assert_eq!(msg.header(":content-type"), None);
        assert_eq!(msg.payload, b"{\"a\":1}");
    }

    #[test]
    fn a_cut_message_is_incomplete_and_a_bad_checksum_an_error() {
        let m = message(&[(":event-type", "trace")], b"{}");
        for cut in 0..m.len() {
            assert!(read_message(&m[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        let mut bad = m.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(read_message(&bad).unwrap_err(), FrameError::MessageChecksum);
        let mut bad = m.clone();
        bad[3] ^= 1;
        assert_eq!(read_message(&bad).unwrap_err(), FrameError::PreludeChecksum);
    }

    #[test]
    fn headers_of_every_type_are_skipped() {
        // bool true, bool false, byte, short, int, long, bytes, timestamp, uuid, then a string.
        let mut h = Vec::new();
        for (kind, value) in [
            (0u8, vec![]),
            (1, vec![]),
            (2, vec![1]),
            (3, vec![0, 1]),
            (4, vec![0; 4]),
            (5, vec![0; 8]),
            (6, vec![0, 2, 9, 9]),
            (8, vec![0; 8]),
            (9, vec![0; 16]),
        ] {
            h.extend_from_slice(&[1, b'x', kind]);
            h.extend_from_slice(&value);
        }
        h.extend_from_slice(&[1, b'y', 7, 0, 2, b'o', b'k']);
        let msg = Message {
            headers: &h,
            payload: b"",
        };
        assert_eq!(msg.header("y"), Some("ok"));
        assert_eq!(msg.header("x"), None);
        assert!(next_header(&[1, b'x', 10]).is_none());
    }
}
