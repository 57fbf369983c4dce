//! Token usage and response ids read from a provider's response body, JSON or streamed
//! (server-sent events), for the capture integrations.
//!
//! Shapes understood (a body may mix them; each field keeps the last value seen, so a stream's
//! cumulative counts win over its first event's):
//! - OpenAI Chat Completions `usage.{prompt_tokens, completion_tokens,
//!   prompt_tokens_details.cached_tokens, completion_tokens_details.reasoning_tokens}` (also
//!   Azure, Bedrock's compatible endpoint; streamed in the last chunk);
//! - OpenAI Responses `usage.{input_tokens, output_tokens, input_tokens_details.cached_tokens,
//!   output_tokens_details.reasoning_tokens}` (streamed in `response.completed`);
//! - Anthropic `usage.{input_tokens, cache_read_input_tokens, cache_creation_input_tokens,
//!   output_tokens}` (streamed in `message_start` and `message_delta`): `input_tokens` there
//!   excludes the cache, so the event's `input_tokens` (OpenTelemetry's, cache included) is the
//!   sum of the three;
//! - Bedrock Converse `usage.{inputTokens, outputTokens, cacheReadInputTokens,
//!   cacheWriteInputTokens}` and InvokeModel's `amazon-bedrock-invocationMetrics`;
//! - Gemini `usageMetadata.{promptTokenCount, candidatesTokenCount, cachedContentTokenCount,
//!   thoughtsTokenCount, toolUsePromptTokenCount}`: output is candidates + thoughts.
//!
//! A managed-agent session object (Claude Managed Agents `"type": "session"`, OpenAI Agents API
//! `"object": "agent.session"`) and the events of a session's stream (`session.*`,
//! `agent.session.*`) carry the session's running total or a turn's usage, not a model call's
//! own: their counts are not read (the runtime's inner steps, read from the event stream, report
//! them), only their ids. Taking them would count every token again on each retrieval. The
//! same holds for a thread run (`"object": "thread.run"`, the Assistants protocol of Azure AI
//! Foundry Agent Service: the run's cumulative usage) and its steps (`"thread.run.step"`), in
//! JSON and in a streamed run's events: the run's steps are recorded as inner calls with their
//! own usage.
//!
//! Completion text is never kept: members other than ids, model names and counts are skipped
//! unparsed.

use std::borrow::Cow;

use serde::Deserialize;

/// What a response says about itself. `None` where the body did not say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens including cached ones (OpenTelemetry `gen_ai.usage.input_tokens`).
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Input tokens read from a prompt cache (≤ `input_tokens`).
    pub cached_tokens: Option<u64>,
    /// Input tokens written to a prompt cache (Anthropic, Bedrock).
    pub cache_creation_tokens: Option<u64>,
    /// Reasoning ("thinking") tokens, part of `output_tokens`.
    pub reasoning_tokens: Option<u64>,
    pub response_id: Option<String>,
    pub response_model: Option<String>,
}

/// Reads `body`. `content_type` `text/event-stream` (or a body that starts like one) is read as
/// server-sent events; anything else as one JSON document, or failing that as JSON lines.
pub fn read_usage(content_type: Option<&str>, body: &[u8]) -> Usage {
    let mut acc = Acc::default();
    let sse = content_type.is_some_and(|c| c.contains("event-stream"))
        || body.starts_with(b"data:")
        || body.starts_with(b"event:");
    if sse {
        for_each_sse_data(body, |data| acc.absorb(data));
    } else if !acc.absorb(body) {
        for line in body.split(|&b| b == b'\n') {
            acc.absorb(line);
        }
    }
    acc.finish()
}

/// Calls `f` with the `data` payload of each server-sent event (multi-line data joined by `\n`).
fn for_each_sse_data(body: &[u8], mut f: impl FnMut(&[u8]) -> bool) {
    let mut data: Vec<u8> = Vec::new();
    let mut pending = false;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if pending {
                f(&data);
                data.clear();
                pending = false;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            if pending {
                data.push(b'\n');
            }
            data.extend_from_slice(rest);
            pending = true;
        }
    }
    if pending {
        f(&data);
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Doc<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    /// What the document is (`type` in Anthropic's shapes and stream events, `object` in
    /// OpenAI's): tells a session record from a model call.
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    object: Option<Cow<'a, str>>,
    usage: Option<Counts>,
    #[serde(rename = "usageMetadata")]
    usage_metadata: Option<GeminiCounts>,
    #[serde(rename = "responseId", borrow)]
    response_id: Option<Cow<'a, str>>,
    #[serde(rename = "modelVersion", borrow)]
    model_version: Option<Cow<'a, str>>,
    #[serde(rename = "amazon-bedrock-invocationMetrics")]
    bedrock_metrics: Option<BedrockMetrics>,
    /// Anthropic `message_start` carries the message.
    #[serde(borrow)]
    message: Option<Box<Doc<'a>>>,
    /// Responses stream events carry the response.
    #[serde(borrow)]
    response: Option<Box<Doc<'a>>>,
}

impl Doc<'_> {
    /// A managed-agent session object or an event of its stream, whose `usage` is a running
    /// total (or a turn's), not this response's own.
    fn is_session_record(&self) -> bool {
        let session = |s: &str| {
            s == "session"
                || s.starts_with("session.")
                || s == "agent.session"
                || s.starts_with("agent.session.")
        };
        let run = |s: &str| s == "thread.run" || s == "thread.run.step";
        self.kind.as_deref().is_some_and(session)
            || self.object.as_deref().is_some_and(|s| session(s) || run(s))
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Counts {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    completion_tokens_details: Option<Details>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    input_tokens_details: Option<Details>,
    output_tokens_details: Option<Details>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    #[serde(rename = "inputTokens")]
    input_tokens_camel: Option<u64>,
    #[serde(rename = "outputTokens")]
    output_tokens_camel: Option<u64>,
    #[serde(rename = "cacheReadInputTokens")]
    cache_read_camel: Option<u64>,
    #[serde(rename = "cacheWriteInputTokens")]
    cache_write_camel: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Details {
    cached_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct GeminiCounts {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    tool_use_prompt_token_count: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct BedrockMetrics {
    input_token_count: Option<u64>,
    output_token_count: Option<u64>,
    cache_read_input_token_count: Option<u64>,
    cache_write_input_token_count: Option<u64>,
}

/// Which provider convention the counts follow (decides what `input_tokens` includes).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Convention {
    #[default]
    None,
    /// Input includes cached tokens (OpenAI chat and Responses).
    Inclusive,
    /// Cache reads and writes are counted apart from input (Anthropic, Bedrock).
    Exclusive,
    Gemini,
}

#[derive(Default)]
struct Acc {
    convention: Convention,
    input: Option<u64>,
    output: Option<u64>,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
    reasoning: Option<u64>,
    thoughts: Option<u64>,
    tool_prompt: Option<u64>,
    id: Option<String>,
    model: Option<String>,
}

fn set(slot: &mut Option<u64>, v: Option<u64>) {
    if v.is_some() {
        *slot = v;
    }
}

impl Acc {
    /// Folds one JSON document in; `false` when it is not a JSON object.
    fn absorb(&mut self, json: &[u8]) -> bool {
        let trimmed = json.trim_ascii();
        if !trimmed.starts_with(b"{") {
            return false;
        }
        // Once ids are known, skip events that carry no counts (content deltas) unparsed.
        if self.id.is_some()
            && self.model.is_some()
            && !contains(trimmed, b"sage")
            && !contains(trimmed, b"invocationMetrics")
        {
            return true;
        }
        match serde_json::from_slice::<Doc<'_>>(trimmed) {
            Ok(doc) => {
                self.doc(&doc);
                true
            }
            Err(_) => false,
        }
    }

    fn doc(&mut self, d: &Doc<'_>) {
        for nested in [&d.message, &d.response].into_iter().flatten() {
            self.doc(nested);
        }
        if self.id.is_none() {
            self.id =
                d.id.as_deref()
                    .or(d.response_id.as_deref())
                    .map(str::to_owned);
        }
        if let Some(m) = d.model.as_deref().or(d.model_version.as_deref()) {
            self.model = Some(m.to_owned());
        }
        if let Some(u) = d.usage.as_ref().filter(|_| !d.is_session_record()) {
            if u.prompt_tokens.is_some() || u.completion_tokens.is_some() {
                self.convention = Convention::Inclusive;
                set(&mut self.input, u.prompt_tokens);
                set(&mut self.output, u.completion_tokens);
                set(
                    &mut self.cache_read,
                    u.prompt_tokens_details
                        .as_ref()
                        .and_then(|x| x.cached_tokens),
                );
                set(
                    &mut self.reasoning,
                    u.completion_tokens_details
                        .as_ref()
                        .and_then(|x| x.reasoning_tokens),
                );
            } else if u.input_tokens_camel.is_some() || u.output_tokens_camel.is_some() {
                self.convention = Convention::Exclusive;
                set(&mut self.input, u.input_tokens_camel);
                set(&mut self.output, u.output_tokens_camel);
                set(&mut self.cache_read, u.cache_read_camel);
                set(&mut self.cache_write, u.cache_write_camel);
            } else if u.input_tokens.is_some() || u.output_tokens.is_some() {
                let openai = u.input_tokens_details.is_some() || u.output_tokens_details.is_some();
                if openai {
                    self.convention = Convention::Inclusive;
                    set(
                        &mut self.cache_read,
                        u.input_tokens_details
                            .as_ref()
                            .and_then(|x| x.cached_tokens),
                    );
                    set(
                        &mut self.reasoning,
                        u.output_tokens_details
                            .as_ref()
                            .and_then(|x| x.reasoning_tokens),
                    );
                } else if self.convention != Convention::Inclusive {
                    self.convention = Convention::Exclusive;
                    set(&mut self.cache_read, u.cache_read_input_tokens);
                    set(&mut self.cache_write, u.cache_creation_input_tokens);
                }
                set(&mut self.input, u.input_tokens);
                set(&mut self.output, u.output_tokens);
            }
        }
        if let Some(g) = &d.usage_metadata {
            self.convention = Convention::Gemini;
            set(&mut self.input, g.prompt_token_count);
            set(&mut self.output, g.candidates_token_count);
            set(&mut self.cache_read, g.cached_content_token_count);
            set(&mut self.thoughts, g.thoughts_token_count);
            set(&mut self.tool_prompt, g.tool_use_prompt_token_count);
        }
        if let Some(b) = &d.bedrock_metrics {
            self.convention = Convention::Exclusive;
            set(&mut self.input, b.input_token_count);
            set(&mut self.output, b.output_token_count);
            set(&mut self.cache_read, b.cache_read_input_token_count);
            set(&mut self.cache_write, b.cache_write_input_token_count);
        }
    }

    fn finish(self) -> Usage {
        let mut u = Usage {
            response_id: self.id,
            response_model: self.model,
            ..Usage::default()
        };
        match self.convention {
            Convention::None => {}
            Convention::Inclusive => {
                u.input_tokens = self.input;
                u.output_tokens = self.output;
                u.cached_tokens = self.cache_read;
                u.reasoning_tokens = self.reasoning;
            }
            Convention::Exclusive => {
                let parts = [self.input, self.cache_read, self.cache_write];
                // Saturating: a sum past 64 bits stays out of range (and is refused when the
                // event is validated) instead of wrapping to a small, wrong count.
                u.input_tokens = parts.iter().any(Option::is_some).then(|| {
                    parts
                        .iter()
                        .flatten()
                        .fold(0u64, |a, b| a.saturating_add(*b))
                });
                u.output_tokens = self.output;
                u.cached_tokens = self.cache_read;
                u.cache_creation_tokens = self.cache_write;
            }
            Convention::Gemini => {
                u.input_tokens = match (self.input, self.tool_prompt) {
                    (None, None) => None,
                    (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
                };
                u.output_tokens = match (self.output, self.thoughts) {
                    (None, None) => None,
                    (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
                };
                u.cached_tokens = self.cache_read;
                u.reasoning_tokens = self.thoughts;
            }
        }
        // The ledger requires cached <= input; a provider that says otherwise is clamped.
        if let (Some(c), Some(i)) = (u.cached_tokens, u.input_tokens) {
            u.cached_tokens = Some(c.min(i));
        }
        u
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Usage {
        read_usage(Some("application/json"), s.as_bytes())
    }

    #[test]
    fn openai_chat_json() {
        let u = json(
            r#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-5-2025-08-07",
            "choices":[{"message":{"role":"assistant","content":"hello"}}],
            "usage":{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,
                     "prompt_tokens_details":{"cached_tokens":1024},
                     "completion_tokens_details":{"reasoning_tokens":192}}}"#,
        );
        assert_eq!(
            u,
            Usage {
                input_tokens: Some(1200),
                output_tokens: Some(300),
                cached_tokens: Some(1024),
                cache_creation_tokens: None,
                reasoning_tokens: Some(192),
                response_id: Some("chatcmpl-1".into()),
                response_model: Some("gpt-5-2025-08-07".into()),
            }
        );
    }

    #[test]
    fn openai_responses_json_and_stream() {
        let u = json(
            r#"{"id":"resp_1","object":"response","model":"gpt-5","output":[],
            "usage":{"input_tokens":900,"input_tokens_details":{"cached_tokens":0},
                     "output_tokens":80,"output_tokens_details":{"reasoning_tokens":64}}}"#,
        );
        assert_eq!(
            (
                u.input_tokens,
                u.output_tokens,
                u.cached_tokens,
                u.reasoning_tokens
            ),
            (Some(900), Some(80), Some(0), Some(64))
        );
        let sse = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_2\",\"model\":\"gpt-5\",\"usage\":null}}\n\n\
                   event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n\
                   event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_2\",\"model\":\"gpt-5\",\"usage\":{\"input_tokens\":10,\"input_tokens_details\":{\"cached_tokens\":4},\"output_tokens\":3,\"output_tokens_details\":{\"reasoning_tokens\":0}}}}\n\n";
        let u = read_usage(Some("text/event-stream; charset=utf-8"), sse.as_bytes());
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cached_tokens),
            (Some(10), Some(3), Some(4))
        );
        assert_eq!(u.response_id.as_deref(), Some("resp_2"));
    }

    #[test]
    fn openai_chat_stream_usage_in_last_chunk() {
        let sse = "data: {\"id\":\"chatcmpl-9\",\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\r\n\r\n\
                   data: {\"id\":\"chatcmpl-9\",\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}],\"usage\":null}\r\n\r\n\
                   data: {\"id\":\"chatcmpl-9\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\r\n\r\n\
                   data: [DONE]\r\n\r\n";
        let u = read_usage(None, sse.as_bytes());
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cached_tokens),
            (Some(7), Some(2), None)
        );
        assert_eq!(u.response_id.as_deref(), Some("chatcmpl-9"));
    }

    #[test]
    fn anthropic_json_and_stream_add_the_cache_to_input() {
        let u = json(
            r#"{"id":"msg_1","type":"message","model":"claude-sonnet-4-5","content":[{"type":"text","text":"x"}],
            "usage":{"input_tokens":50,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":20}}"#,
        );
        assert_eq!(
            (
                u.input_tokens,
                u.cached_tokens,
                u.cache_creation_tokens,
                u.output_tokens
            ),
            (Some(1150), Some(1000), Some(100), Some(20))
        );
        let sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"model\":\"claude-haiku-4-5\",\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n\
                   event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n\
                   event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n\
                   event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let u = read_usage(Some("text/event-stream"), sse.as_bytes());
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cached_tokens),
            (Some(25), Some(15), Some(0))
        );
        assert_eq!(u.response_id.as_deref(), Some("msg_2"));
        assert_eq!(u.response_model.as_deref(), Some("claude-haiku-4-5"));
    }

    #[test]
    fn sums_past_64_bits_saturate_instead_of_wrapping() {
        let big = u64::MAX / 2 + 1;
        let u = json(&format!(
            r#"{{"type":"message","usage":{{"input_tokens":{big},"cache_read_input_tokens":{big},
            "cache_creation_input_tokens":5,"output_tokens":1}}}}"#
        ));
        assert_eq!(u.input_tokens, Some(u64::MAX));
        let u = json(&format!(
            r#"{{"usageMetadata":{{"promptTokenCount":{big},"toolUsePromptTokenCount":{big},
            "candidatesTokenCount":{big},"thoughtsTokenCount":{big}}}}}"#
        ));
        assert_eq!(u.input_tokens, Some(u64::MAX));
        assert_eq!(u.output_tokens, Some(u64::MAX));
    }

    #[test]
    fn bedrock_and_gemini() {
        let u = json(
            r#"{"output":{"message":{"role":"assistant","content":[{"text":"x"}]}},"stopReason":"end_turn",
            "usage":{"inputTokens":30,"outputTokens":5,"totalTokens":135,"cacheReadInputTokens":100},"metrics":{"latencyMs":120}}"#,
        );
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cached_tokens),
            (Some(130), Some(5), Some(100))
        );
        let u = json(
            r#"{"content":[],"amazon-bedrock-invocationMetrics":{"inputTokenCount":12,"outputTokenCount":4,"invocationLatency":300}}"#,
        );
        assert_eq!((u.input_tokens, u.output_tokens), (Some(12), Some(4)));
        let u = json(
            r#"{"candidates":[{"content":{"parts":[{"text":"x"}]}}],"responseId":"abc","modelVersion":"gemini-2.5-flash",
            "usageMetadata":{"promptTokenCount":100,"candidatesTokenCount":20,"cachedContentTokenCount":64,"thoughtsTokenCount":30,"totalTokenCount":150}}"#,
        );
        assert_eq!(
            (
                u.input_tokens,
                u.output_tokens,
                u.cached_tokens,
                u.reasoning_tokens
            ),
            (Some(100), Some(50), Some(64), Some(30))
        );
        assert_eq!(
            (u.response_id.as_deref(), u.response_model.as_deref()),
            (Some("abc"), Some("gemini-2.5-flash"))
        );
    }

    #[test]
    fn session_records_carry_no_tokens_of_their_own() {
        // Claude Managed Agents session object: cumulative usage, kept out; the id stays.
        let u = json(
            r#"{"type":"session","id":"sesn_1","usage":{"input_tokens":900,"output_tokens":40,"cache_read_input_tokens":5000}}"#,
        );
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cached_tokens),
            (None, None, None)
        );
        assert_eq!(u.response_id.as_deref(), Some("sesn_1"));
        // OpenAI Agents API session object and its stream's turn events.
        let u = json(
            r#"{"object":"agent.session","id":"asess_1","usage":{"input_tokens":8200,"output_tokens":300,"input_tokens_details":{"cached_tokens":100}}}"#,
        );
        assert_eq!((u.input_tokens, u.output_tokens), (None, None));
        let u = read_usage(
            Some("text/event-stream"),
            b"event: agent.session.turn.completed\ndata: {\"type\":\"agent.session.turn.completed\",\"usage\":{\"input_tokens\":8200,\"output_tokens\":300}}\n\n",
        );
        assert_eq!((u.input_tokens, u.output_tokens), (None, None));
        // A thread run (Azure AI Foundry Agent Service): the run's cumulative usage, and a
        // streamed run's step events.
        let u = json(
            r#"{"object":"thread.run","id":"run_1","model":"gpt-4o","usage":{"prompt_tokens":900,"completion_tokens":40,"total_tokens":940}}"#,
        );
        assert_eq!((u.input_tokens, u.output_tokens), (None, None));
        let u = read_usage(
            Some("text/event-stream"),
            b"event: thread.run.step.completed\ndata: {\"object\":\"thread.run.step\",\"id\":\"step_1\",\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}\n\n",
        );
        assert_eq!((u.input_tokens, u.output_tokens), (None, None));
        // A model call's own usage is still read.
        let u = json(
            r#"{"type":"message","id":"msg_1","model":"claude-sonnet-4-6","usage":{"input_tokens":10,"output_tokens":2}}"#,
        );
        assert_eq!((u.input_tokens, u.output_tokens), (Some(10), Some(2)));
    }

    #[test]
    fn garbage_and_truncation_are_tolerated() {
        assert_eq!(read_usage(None, b""), Usage::default());
        assert_eq!(read_usage(None, b"not json at all"), Usage::default());
        assert_eq!(
            read_usage(Some("text/event-stream"), b"data: {\"id\":\"x\",\"usa"),
            Usage {
                response_id: None,
                ..Usage::default()
            }
        );
        // JSON lines: the last document's counts win.
        let u = read_usage(None, b"{\"id\":\"a\",\"model\":\"m\",\"usage\":{\"prompt_tokens\":1}}\n{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n");
        assert_eq!((u.input_tokens, u.output_tokens), (Some(5), Some(1)));
        // cached never exceeds input.
        let u =
            json(r#"{"usage":{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":9}}}"#);
        assert_eq!(u.cached_tokens, Some(3));
    }
}
