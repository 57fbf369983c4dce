//! A response body observed as the caller reads it, kept for reading usage: all of a JSON body
//! up to [`JSON_LIMIT`] bytes (past it, nothing: the call notes why), the first and last
//! [`STREAM_KEEP`] bytes of a server-sent events stream (the provider puts ids in its first
//! events and usage in its last). Whether a stream the caller closed early had already reached
//! its provider's end marker ([`ObservedBody::ended`]) tells a completed call from a cancelled
//! one. The bytes given are decoded (no content encoding left).

use std::collections::VecDeque;

use memchr::memmem;

use super::call::ResponseBody;

/// Response size read for usage (decoded bytes); past it a JSON body is not read.
pub const JSON_LIMIT: usize = 8 * 1024 * 1024;
/// The bytes of an event stream kept at its start and at its end.
pub const STREAM_KEEP: usize = 256 * 1024;
/// How far back from the last byte read [`ObservedBody::ended`] looks for an end marker.
pub const END_WINDOW: usize = 1024;
/// The events providers end a stream with (SDKs stop reading and close the response there,
/// before the transport's own end).
pub const END_MARKERS: [&[u8]; 8] = [
    b"[DONE]",
    b"message_stop",
    b"response.completed",
    b"response.incomplete",
    b"response.failed",
    b"finishReason",
    b"session.status_idle",
    b"agent.session.idle",
];

/// What was kept of one response body.
#[derive(Debug, Default)]
pub struct ObservedBody {
    /// `None`: not read for usage (another content type, or a JSON body past the limit).
    content_type: Option<String>,
    event_stream: bool,
    head: Vec<u8>,
    /// Past the head's limit (event streams only): the last chunks.
    tail: VecDeque<Vec<u8>>,
    tail_size: usize,
    overflow: bool,
}

impl ObservedBody {
    /// A body of `content_type` (lowercased, `""` when absent): read for usage when it is
    /// JSON or an event stream.
    pub fn new(content_type: &str) -> ObservedBody {
        let event_stream = content_type.contains("event-stream");
        let read = event_stream || content_type.contains("json");
        ObservedBody {
            content_type: read.then(|| content_type.to_owned()),
            event_stream,
            ..ObservedBody::default()
        }
    }

    /// Whether the body is kept for reading usage.
    pub fn reads(&self) -> bool {
        self.content_type.is_some()
    }

    /// Whether the body is a server-sent events stream.
    pub fn event_stream(&self) -> bool {
        self.event_stream
    }

    /// Stops keeping the body (it cannot be read): the call is recorded without usage.
    pub fn stop(&mut self) {
        self.content_type = None;
        self.head = Vec::new();
        self.tail.clear();
    }

    /// One chunk as the caller reads it.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.content_type.is_none() || chunk.is_empty() {
            return;
        }
        let limit = if self.event_stream {
            STREAM_KEEP
        } else {
            JSON_LIMIT
        };
        if self.head.len() < limit {
            self.head.extend_from_slice(chunk);
        } else if self.event_stream {
            self.tail.push_back(chunk.to_vec());
            self.tail_size += chunk.len();
            while self.tail.len() > 1 && self.tail_size - self.tail[0].len() >= STREAM_KEEP {
                self.tail_size -= self.tail.pop_front().map_or(0, |c| c.len());
            }
            self.overflow = true;
        } else {
            self.stop();
            self.overflow = true;
        }
    }

    /// Whether one of the providers' end markers is among the last [`END_WINDOW`] bytes read.
    pub fn ended(&self) -> bool {
        let mut last: Vec<u8> = Vec::with_capacity(END_WINDOW);
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut need = END_WINDOW;
        for chunk in self
            .tail
            .iter()
            .rev()
            .map(Vec::as_slice)
            .chain(std::iter::once(self.head.as_slice()))
        {
            if need == 0 {
                break;
            }
            let part = &chunk[chunk.len().saturating_sub(need)..];
            need -= part.len();
            parts.push(part);
        }
        for part in parts.iter().rev() {
            last.extend_from_slice(part);
        }
        END_MARKERS.iter().any(|m| memmem::find(&last, m).is_some())
    }

    /// What the call's event reads usage from: the body kept (an event stream's head and tail
    /// joined by a blank line), why it was not read, or nothing.
    pub fn into_response(self) -> ResponseBody {
        match self.content_type {
            Some(content_type) if !self.head.is_empty() => {
                let mut body = self.head;
                if !self.tail.is_empty() {
                    body.reserve(2 + self.tail_size);
                    body.extend_from_slice(b"\n\n");
                    for chunk in &self.tail {
                        body.extend_from_slice(chunk);
                    }
                }
                ResponseBody::Read { content_type, body }
            }
            _ if self.overflow => {
                ResponseBody::Unread(format!("response body over {JSON_LIMIT} bytes"))
            }
            _ => ResponseBody::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: ObservedBody) -> Vec<u8> {
        match body.into_response() {
            ResponseBody::Read { body, .. } => body,
            other => panic!("not read: {other:?}"),
        }
    }

    #[test]
    fn json_is_kept_whole_and_other_types_not_at_all() {
        let mut b = ObservedBody::new("application/json; charset=utf-8");
        b.feed(b"{\"usage\":");
        b.feed(b"");
        b.feed(b"{}}");
        assert_eq!(read(b), b"{\"usage\":{}}");
        let mut b = ObservedBody::new("text/html");
        b.feed(b"<html>");
        assert!(!b.reads());
        assert!(matches!(b.into_response(), ResponseBody::Nothing));
    }

    #[test]
    fn json_past_the_limit_is_not_read_and_says_why() {
        let mut b = ObservedBody::new("application/json");
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..9 {
            b.feed(&chunk);
        }
        match b.into_response() {
            ResponseBody::Unread(why) => assert_eq!(why, "response body over 8388608 bytes"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_long_stream_keeps_its_head_and_tail() {
        let mut b = ObservedBody::new("text/event-stream");
        let chunk = vec![b'x'; 64 * 1024];
        b.feed(b"data: first\n\n");
        for _ in 0..20 {
            b.feed(&chunk);
        }
        b.feed(b"data: [DONE]\n\n");
        assert!(b.ended());
        let body = read(b);
        assert!(body.starts_with(b"data: first"));
        assert!(body.ends_with(b"data: [DONE]\n\n"));
        // Head (past 256 KiB by less than a chunk), the separator, a tail of 256 KiB or more.
        assert!(body.len() < 2 * STREAM_KEEP + 3 * chunk.len());
    }

    #[test]
    fn the_end_marker_is_looked_for_in_the_last_bytes_read() {
        let mut b = ObservedBody::new("text/event-stream");
        b.feed(b"event: message_stop\ndata: {}\n\n");
        b.feed(b"\n");
        assert!(b.ended(), "across chunks");
        b.feed(&[b' '; END_WINDOW]);
        assert!(!b.ended(), "too far back");
        let b = ObservedBody::new("text/event-stream");
        assert!(!b.ended());
    }
}
