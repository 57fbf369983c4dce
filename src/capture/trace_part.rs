//! An InvokeAgent response stream's trace read from its raw bytes, once, when the stream has
//! ended: the AWS event-stream messages ([`crate::capture::event_stream`]) whose `:event-type` is
//! `trace`, each a `TracePart` in JSON, handed to [`AgentTrace`] as botocore would have parsed
//! them.
//!
//! Only the named, non-content fields are deserialized: every other member (prompts,
//! rationales, raw responses, parameters, retrieved references, outputs) is skipped by the JSON
//! parser without being kept. The reading follows botocore's parser where it decides what a
//! field is:
//!
//! - a phase reads only the members botocore's model gives it (`preProcessingTrace` and
//!   `postProcessingTrace`: model invocations only; `orchestrationTrace` and
//!   `routingClassifierTrace`: also `invocationInput` and `observation`);
//! - `null` is absent; a text is a non-empty string; a count a non-negative integer (a larger one
//!   than `u64` holds reads as `u64::MAX`, which recording refuses);
//! - a time (`eventTime`, `metadata.startTime`) is epoch seconds (a number, or a string holding
//!   one), rounded to the microsecond half to even as Python's `datetime.fromtimestamp` does, or
//!   an ISO 8601 time `YYYY-MM-DD[T ]HH:MM[:SS[.fraction]][Z|±HH[:MM]]` (fraction cut to the
//!   microsecond as `dateutil` does; no zone: UTC). Another form botocore's `dateutil` would read
//!   is taken as absent, and the step's time falls back to when its message came.
//!
//! The messages read are the first `traces` trace messages: the trace events the caller was
//! given. A message botocore could not parse (it raised to the caller) ends the stream there, so
//! what the caller never got is never read, even when its bytes came.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::agent_trace::{AgentTrace, Part, Phase, Timing, ToolInput, ToolKind, TraceTime};
use super::event_stream::read_message;

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d` (Howard Hinnant's
/// `days_from_civil`; the layer below has no calendar, and a date crate would be a dependency
/// for these few lines).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A JSON value where the model has a scalar: kept only as far as the reader needs it. (The
/// structures around these are boxed: serde moves each struct it builds, and unboxed, a part's
/// structure is kilobytes copied level by level.)
#[derive(Debug, Default)]
enum Scalar<'a> {
    #[default]
    Absent,
    Text(Cow<'a, str>),
    Int(i128),
    Float(f64),
    Bool(bool),
    /// `null`, an object or an array.
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Text(Cow::Owned(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Int(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Int(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E>(self) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Scalar<'a>, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Scalar<'a>, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Scalar<'_> {
    /// A non-empty string.
    fn text(&self) -> Option<String> {
        match self {
            Scalar::Text(s) if !s.is_empty() => Some(s.as_ref().to_owned()),
            _ => None,
        }
    }

    /// A `traceId`: any string, the empty one included.
    fn trace_id(&self) -> Option<String> {
        match self {
            Scalar::Text(s) => Some(s.as_ref().to_owned()),
            _ => None,
        }
    }

    /// A non-negative integer; one past `u64` reads as `u64::MAX`.
    fn count(&self) -> Option<u64> {
        match self {
            Scalar::Int(n) if *n >= 0 => Some(u64::try_from(*n).unwrap_or(u64::MAX)),
            // serde_json reads an integer literal past `u64` as a float.
            Scalar::Float(f) if *f >= 18_446_744_073_709_551_616.0 && f.fract() == 0.0 => {
                Some(u64::MAX)
            }
            _ => None,
        }
    }

    /// A time, in ns since the epoch (see the module's documentation).
    fn time(&self) -> Option<i64> {
        match self {
            Scalar::Int(n) => i64::try_from(*n).ok()?.checked_mul(1_000_000_000),
            Scalar::Float(f) => epoch_seconds(*f),
            // Python's bool is an int: botocore reads `true` as one second past the epoch.
            Scalar::Bool(b) => Some(i64::from(*b) * 1_000_000_000),
            Scalar::Text(s) => {
                let s = s.trim();
                match s.parse::<f64>() {
                    Ok(f) => epoch_seconds(f),
                    Err(_) => iso_time(s),
                }
            }
            Scalar::Absent | Scalar::Other => None,
        }
    }

    /// `collaboratorName` when it is set (a truthy value), as Python's `str()` prints it.
    fn collaborator(&self) -> Option<String> {
        match self {
            Scalar::Text(s) if !s.is_empty() => Some(s.as_ref().to_owned()),
            Scalar::Int(n) if *n != 0 => Some(n.to_string()),
            Scalar::Bool(true) => Some("True".into()),
            _ => None,
        }
    }
}

/// Epoch seconds to ns, rounded to the microsecond as `datetime.fromtimestamp` rounds
/// (CPython's `_PyTime_DoubleToDenominator`, half to even).
fn epoch_seconds(d: f64) -> Option<i64> {
    if !d.is_finite() {
        return None;
    }
    let mut secs = d.trunc();
    let mut micros = ((d - secs) * 1e6).round_ties_even();
    if micros >= 1e6 {
        micros -= 1e6;
        secs += 1.0;
    } else if micros < 0.0 {
        micros += 1e6;
        secs -= 1.0;
    }
    if secs.abs() > 1e10 {
        return None;
    }
    (secs as i64)
        .checked_mul(1_000_000_000)?
        .checked_add(micros as i64 * 1000)
}

/// An ISO 8601 time `YYYY-MM-DD[T ]HH:MM[:SS[.fraction]][Z|±HH[:MM]|±HHMM]` or a date, in ns
/// since the epoch; `None` for any other text.
fn iso_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0i64, |n, c| n * 10 + i64::from(c - b'0')))
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    let mut micros = 0;
    let mut i = 10;
    if i < b.len() {
        if !matches!(b[i], b'T' | b't' | b' ') || b.get(i + 3) != Some(&b':') {
            return None;
        }
        let (h, mi) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
        i += 6;
        let mut sec = 0;
        if b.get(i) == Some(&b':') {
            sec = num(i + 1..i + 3)?;
            i += 3;
            if b.get(i) == Some(&b'.') {
                let start = i + 1;
                i = start;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i == start {
                    return None;
                }
                let kept = &b[start..i.min(start + 6)];
                let value = kept.iter().fold(0i64, |n, c| n * 10 + i64::from(c - b'0'));
                micros = value * 10i64.pow(6 - kept.len() as u32);
            }
        }
        if h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        secs += h * 3600 + mi * 60 + sec;
        let offset = match &b[i..] {
            [] | [b'Z'] | [b'z'] => 0,
            [sign @ (b'+' | b'-'), rest @ ..] => {
                let (oh, om) = match rest {
                    [_, _] => (num(i + 1..i + 3)?, 0),
                    [_, _, b':', _, _] => (num(i + 1..i + 3)?, num(i + 4..i + 6)?),
                    [_, _, _, _] => (num(i + 1..i + 3)?, num(i + 3..i + 5)?),
                    _ => return None,
                };
                if oh > 23 || om > 59 {
                    return None;
                }
                let o = oh * 3600 + om * 60;
                if *sign == b'+' {
                    o
                } else {
                    -o
                }
            }
            _ => return None,
        };
        secs -= offset;
    }
    secs.checked_mul(1_000_000_000)?.checked_add(micros * 1000)
}

#[derive(Deserialize)]
struct TracePartJson<'a> {
    #[serde(rename = "agentId", default, borrow)]
    agent_id: Scalar<'a>,
    #[serde(rename = "collaboratorName", default, borrow)]
    collaborator_name: Scalar<'a>,
    #[serde(rename = "eventTime", default, borrow)]
    event_time: Scalar<'a>,
    #[serde(default, borrow)]
    trace: Option<Box<TraceJson<'a>>>,
}

/// The `Trace` union: one phase.
#[derive(Deserialize)]
struct TraceJson<'a> {
    #[serde(rename = "preProcessingTrace", default, borrow)]
    pre_processing: Option<Box<PhaseJson<'a>>>,
    #[serde(rename = "orchestrationTrace", default, borrow)]
    orchestration: Option<Box<PhaseJson<'a>>>,
    #[serde(rename = "postProcessingTrace", default, borrow)]
    post_processing: Option<Box<PhaseJson<'a>>>,
    #[serde(rename = "routingClassifierTrace", default, borrow)]
    routing_classifier: Option<Box<PhaseJson<'a>>>,
    #[serde(rename = "failureTrace", default)]
    failure: Option<IgnoredAny>,
}

/// A phase union: one member.
#[derive(Deserialize)]
struct PhaseJson<'a> {
    #[serde(rename = "modelInvocationInput", default, borrow)]
    model_input: Option<Box<ModelInputJson<'a>>>,
    #[serde(rename = "modelInvocationOutput", default, borrow)]
    model_output: Option<Box<ModelOutputJson<'a>>>,
    #[serde(rename = "invocationInput", default, borrow)]
    invocation_input: Option<Box<InvocationInputJson<'a>>>,
    #[serde(default, borrow)]
    observation: Option<Box<ObservationJson<'a>>>,
}

#[derive(Deserialize)]
struct ModelInputJson<'a> {
    #[serde(rename = "traceId", default, borrow)]
    trace_id: Scalar<'a>,
    #[serde(rename = "foundationModel", default, borrow)]
    foundation_model: Scalar<'a>,
}

#[derive(Deserialize)]
struct ModelOutputJson<'a> {
    #[serde(rename = "traceId", default, borrow)]
    trace_id: Scalar<'a>,
    #[serde(default, borrow)]
    metadata: Option<Box<MetadataJson<'a>>>,
}

#[derive(Deserialize)]
struct MetadataJson<'a> {
    #[serde(default, borrow)]
    usage: Option<Box<UsageJson<'a>>>,
    #[serde(rename = "totalTimeMs", default, borrow)]
    total_time_ms: Scalar<'a>,
    #[serde(rename = "startTime", default, borrow)]
    start_time: Scalar<'a>,
}

#[derive(Deserialize)]
struct UsageJson<'a> {
    #[serde(rename = "inputTokens", default, borrow)]
    input_tokens: Scalar<'a>,
    #[serde(rename = "outputTokens", default, borrow)]
    output_tokens: Scalar<'a>,
}

#[derive(Deserialize)]
struct InvocationInputJson<'a> {
    #[serde(rename = "traceId", default, borrow)]
    trace_id: Scalar<'a>,
    #[serde(rename = "invocationType", default, borrow)]
    invocation_type: Scalar<'a>,
    #[serde(rename = "actionGroupInvocationInput", default, borrow)]
    action_group: Option<Box<ActionGroupJson<'a>>>,
    #[serde(rename = "knowledgeBaseLookupInput", default, borrow)]
    knowledge_base: Option<Box<KnowledgeBaseJson<'a>>>,
    #[serde(rename = "agentCollaboratorInvocationInput", default, borrow)]
    collaborator: Option<Box<CollaboratorJson<'a>>>,
}

#[derive(Deserialize)]
struct ActionGroupJson<'a> {
    #[serde(rename = "actionGroupName", default, borrow)]
    name: Scalar<'a>,
    #[serde(default, borrow)]
    function: Scalar<'a>,
    #[serde(rename = "apiPath", default, borrow)]
    api_path: Scalar<'a>,
    #[serde(default, borrow)]
    verb: Scalar<'a>,
    #[serde(rename = "executionType", default, borrow)]
    execution_type: Scalar<'a>,
    #[serde(rename = "invocationId", default, borrow)]
    invocation_id: Scalar<'a>,
}

#[derive(Deserialize)]
struct KnowledgeBaseJson<'a> {
    #[serde(rename = "knowledgeBaseId", default, borrow)]
    id: Scalar<'a>,
}

#[derive(Deserialize)]
struct CollaboratorJson<'a> {
    #[serde(rename = "agentCollaboratorName", default, borrow)]
    name: Scalar<'a>,
    #[serde(rename = "agentCollaboratorAliasArn", default, borrow)]
    alias_arn: Scalar<'a>,
}

#[derive(Deserialize)]
struct ObservationJson<'a> {
    #[serde(rename = "traceId", default, borrow)]
    trace_id: Scalar<'a>,
    #[serde(rename = "actionGroupInvocationOutput", default, borrow)]
    action_group: Option<Box<ToolOutputJson<'a>>>,
    #[serde(rename = "knowledgeBaseLookupOutput", default, borrow)]
    knowledge_base: Option<Box<ToolOutputJson<'a>>>,
    #[serde(rename = "codeInterpreterInvocationOutput", default, borrow)]
    code_interpreter: Option<Box<ToolOutputJson<'a>>>,
    #[serde(rename = "agentCollaboratorInvocationOutput", default, borrow)]
    collaborator: Option<Box<ToolOutputJson<'a>>>,
}

#[derive(Deserialize)]
struct ToolOutputJson<'a> {
    #[serde(default, borrow)]
    metadata: Option<Box<MetadataJson<'a>>>,
}

fn timing<T: From<i64>>(meta: &MetadataJson<'_>) -> Timing<T> {
    Timing {
        total_ms: meta.total_time_ms.count(),
        start: meta.start_time.time().map(T::from),
    }
}

fn tool_input<'a>(ii: &InvocationInputJson<'a>) -> Option<ToolInput> {
    let kind = ToolKind::of(&ii.invocation_type.text()?)?;
    Some(match kind {
        ToolKind::ActionGroup => {
            let ag = ii.action_group.as_ref();
            let field = |pick: for<'r> fn(&'r ActionGroupJson<'a>) -> &'r Scalar<'a>| {
                ag.and_then(|a| pick(a).text())
            };
            ToolInput::ActionGroup {
                name: field(|a| &a.name),
                function: field(|a| &a.function),
                api_path: field(|a| &a.api_path),
                verb: field(|a| &a.verb),
                execution_type: field(|a| &a.execution_type),
                invocation_id: field(|a| &a.invocation_id),
            }
        }
        ToolKind::KnowledgeBase => ToolInput::KnowledgeBase {
            id: ii.knowledge_base.as_ref().and_then(|kb| kb.id.text()),
        },
        ToolKind::CodeInterpreter => ToolInput::CodeInterpreter,
        ToolKind::Collaborator => ToolInput::Collaborator {
            name: ii.collaborator.as_ref().and_then(|c| c.name.text()),
            alias_arn: ii.collaborator.as_ref().and_then(|c| c.alias_arn.text()),
        },
    })
}

/// What reading a stream's bytes found wrong: messages or parts that could not be read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StreamRead {
    /// Trace parts read.
    pub parts: usize,
    /// A message that could not be read (a checksum, a length), a trace part that is not the
    /// JSON expected, or trace events the caller got that the bytes did not hold.
    pub errors: usize,
}

/// Reads a stream's trace messages chunk by chunk, as the body gave them: a message within a
/// chunk is read where it lies, and only a message split across chunks is copied (into
/// `carry`) until it is whole.
pub struct StreamReader {
    read: StreamRead,
    /// Trace events the caller got: the parts to read.
    traces: usize,
    /// The start of a message whose end is in a later chunk.
    carry: Vec<u8>,
    stopped: bool,
}

impl StreamReader {
    /// A reader of the first `traces` trace messages.
    pub fn new(traces: usize) -> Self {
        StreamReader {
            read: StreamRead::default(),
            traces,
            carry: Vec::new(),
            stopped: traces == 0,
        }
    }

    /// Reads the messages `chunk` completes into `trace`; `false` once the reading is over
    /// (every part wanted read, or a message that cannot be read).
    pub fn feed<T: TraceTime + From<i64>>(
        &mut self,
        trace: &mut AgentTrace<T>,
        mut chunk: &[u8],
        at: i64,
    ) -> bool {
        if self.stopped {
            return false;
        }
        if !self.carry.is_empty() {
            // Complete the prelude, then the message it announces.
            let prelude = 12usize.saturating_sub(self.carry.len()).min(chunk.len());
            self.carry.extend_from_slice(&chunk[..prelude]);
            chunk = &chunk[prelude..];
            if self.carry.len() < 12 {
                return true;
            }
            let total =
                u32::from_be_bytes([self.carry[0], self.carry[1], self.carry[2], self.carry[3]])
                    as usize;
            let more = total.saturating_sub(self.carry.len()).min(chunk.len());
            self.carry.extend_from_slice(&chunk[..more]);
            chunk = &chunk[more..];
            let carry = std::mem::take(&mut self.carry);
            match self.message(trace, &carry, at) {
                Some(0) => {
                    // Still incomplete (or its prelude asks for more than botocore allows,
                    // which `read_message` reports once whole).
                    self.carry = carry;
                    return true;
                }
                Some(_) => {
                    self.carry = carry;
                    self.carry.clear();
                }
                None => return false,
            }
        }
        while !chunk.is_empty() && !self.stopped {
            match self.message(trace, chunk, at) {
                Some(0) => {
                    self.carry.extend_from_slice(chunk);
                    return true;
                }
                Some(len) => chunk = &chunk[len..],
                None => return false,
            }
        }
        !self.stopped
    }

    /// Reads the message at the start of `b`: its length, 0 when `b` holds only part of it,
    /// `None` when it cannot be read (counted; the reading stops).
    fn message<T: TraceTime + From<i64>>(
        &mut self,
        trace: &mut AgentTrace<T>,
        b: &[u8],
        at: i64,
    ) -> Option<usize> {
        let (message, len) = match read_message(b) {
            Ok(Some(m)) => m,
            Ok(None) => return Some(0),
            Err(_) => {
                self.read.errors += 1;
                self.stopped = true;
                return None;
            }
        };
        let kind = message.header(":message-type");
        if !matches!(kind, Some("error" | "exception"))
            && message.header(":event-type") == Some("trace")
        {
            self.read.parts += 1;
            if trace.read_part_json(message.payload, at).is_err() {
                self.read.errors += 1;
            }
            self.stopped = self.read.parts >= self.traces;
        }
        Some(len)
    }

    /// What was read. Bytes that ended before every trace event the caller got (a message cut
    /// short) count as one error, as does a message that could not be read.
    pub fn end(mut self) -> StreamRead {
        if self.read.parts < self.traces && !self.stopped {
            self.read.errors += 1;
        }
        self.read
    }
}

impl<T: TraceTime + From<i64>> AgentTrace<T> {
    /// Reads one `TracePart` (its JSON payload), which came at `seen` (wall clock ns). An empty
    /// payload is a part with nothing in it, as botocore reads it.
    pub fn read_part_json(&mut self, payload: &[u8], seen: i64) -> Result<(), serde_json::Error> {
        if payload.is_empty() {
            return Ok(());
        }
        // Validated as UTF-8 once, so that the parser does not validate string by string.
        let text = std::str::from_utf8(payload).map_err(serde::de::Error::custom)?;
        let part: TracePartJson<'_> = serde_json::from_str(text)?;
        let Some(trace) = part.trace else {
            return Ok(());
        };
        let fields = || Part {
            event_time: part.event_time.time().map(T::from),
            seen,
            collaborator: part
                .collaborator_name
                .collaborator()
                .map(|name| (name, part.agent_id.text())),
        };
        let phases = [
            (Phase::PreProcessing, &trace.pre_processing, false),
            (Phase::Orchestration, &trace.orchestration, true),
            (Phase::PostProcessing, &trace.post_processing, false),
            (Phase::RoutingClassifier, &trace.routing_classifier, true),
        ];
        for (phase, body, tools) in phases {
            let Some(body) = body else { continue };
            if let Some(input) = &body.model_input {
                let model = input.foundation_model.text();
                self.model_input(phase, fields(), input.trace_id.trace_id(), model);
            }
            if let Some(output) = &body.model_output {
                let usage = output.metadata.as_ref().and_then(|m| m.usage.as_ref());
                let tokens = usage.map_or((None, None), |u| {
                    (u.input_tokens.count(), u.output_tokens.count())
                });
                let timing = output.metadata.as_deref().map(timing);
                let tid = output.trace_id.trace_id();
                self.model_output(phase, fields(), tid, tokens, timing);
            }
            if !tools {
                continue;
            }
            if let Some(ii) = &body.invocation_input {
                if let Some(input) = tool_input(ii) {
                    self.tool_input(phase, fields(), ii.trace_id.trace_id(), input);
                }
            }
            if let Some(obs) = &body.observation {
                let out = [
                    &obs.action_group,
                    &obs.knowledge_base,
                    &obs.code_interpreter,
                    &obs.collaborator,
                ]
                .into_iter()
                .find_map(Option::as_ref);
                let timing = out.and_then(|o| o.metadata.as_deref()).map(timing);
                let tid = obs.trace_id.trace_id();
                self.observation(fields(), tid.as_deref(), timing);
            }
        }
        if trace.failure.is_some() {
            self.failure();
        }
        Ok(())
    }

    /// Reads the trace of a response stream from its bytes: each of `chunks` as the body
    /// gave it, with when it came (wall clock ns); `traces` is how many trace events the caller
    /// got (those are the parts read). A message takes the time of the chunk that completed it.
    pub fn read_stream<'c>(
        &mut self,
        chunks: impl IntoIterator<Item = (&'c [u8], i64)>,
        traces: usize,
    ) -> StreamRead {
        let mut reader = StreamReader::new(traces);
        for (chunk, at) in chunks {
            if !reader.feed(self, chunk, at) {
                break;
            }
        }
        reader.end()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::capture::agent_trace::Outcome;
    use crate::event::EventKind;

    #[test]
    fn times_read_as_botocore_reads_them() {
        assert_eq!(Scalar::Int(2).time(), Some(2_000_000_000));
        assert_eq!(
            Scalar::Float(1_793_613_601.25).time(),
            Some(1_793_613_601_250_000_000)
        );
        // Half a microsecond rounds to even, as `datetime.fromtimestamp` does.
        assert_eq!(Scalar::Float(0.0000005).time(), Some(0));
        assert_eq!(Scalar::Float(0.0000015).time(), Some(2_000));
        assert_eq!(Scalar::Float(-1.5).time(), Some(-1_500_000_000));
        assert_eq!(Scalar::Text("12.5".into()).time(), Some(12_500_000_000));
        let iso = |s: &str| Scalar::Text(s.into()).time();
        assert_eq!(
            iso("2026-11-02T10:00:01.250000Z"),
            Some(1_793_613_601_250_000_000)
        );
        assert_eq!(
            iso("2026-11-02T10:00:01.2500009Z"),
            Some(1_793_613_601_250_000_000)
        );
        assert_eq!(
            iso("2026-11-02T15:30:01.25+05:30"),
            Some(1_793_613_601_250_000_000)
        );
        assert_eq!(
            iso("2026-11-02T02:00:01.25-0800"),
            Some(1_793_613_601_250_000_000)
        );
        assert_eq!(iso("2026-11-02 10:00"), Some(1_793_613_600_000_000_000));
        assert_eq!(iso("2026-11-02"), Some(1_793_577_600_000_000_000));
        assert_eq!(iso("1969-12-31T23:59:59.999999"), Some(-1_000));
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-11-02T24:00:00Z",
            "Nov 2 2026",
            "2026-11-02T10",
        ] {
            assert_eq!(iso(bad), None, "{bad}");
        }
        assert_eq!(Scalar::Other.time(), None);
        assert_eq!(Scalar::Float(f64::NAN).time(), None);
    }

    #[test]
    fn counts_and_texts_keep_their_types() {
        assert_eq!(Scalar::Int(7).count(), Some(7));
        assert_eq!(Scalar::Int(-1).count(), None);
        assert_eq!(Scalar::Float(7.0).count(), None);
        assert_eq!(Scalar::Float(1e20).count(), Some(u64::MAX));
        assert_eq!(Scalar::Text("7".into()).count(), None);
        assert_eq!(Scalar::Text("".into()).text(), None);
        assert_eq!(Scalar::Text("".into()).trace_id(), Some(String::new()));
        assert_eq!(Scalar::Int(3).collaborator(), Some("3".into()));
        assert_eq!(Scalar::Bool(false).collaborator(), None);
    }

    fn part(json: &str) -> Vec<u8> {
        json.as_bytes().to_vec()
    }

    #[test]
    fn reads_the_named_fields_of_a_part() {
        let mut t = AgentTrace::<i64>::new(None);
        let input = part(
            r#"{"eventTime": 10, "agentId": "A2", "collaboratorName": "helper",
                "trace": {"orchestrationTrace": {"modelInvocationInput":
                  {"traceId": "t", "foundationModel": "m", "text": "prompt \" skipped"}}}}"#,
        );
        let output = part(
            r#"{"eventTime": "1970-01-01T00:00:12Z", "trace": {"orchestrationTrace":
                {"modelInvocationOutput": {"traceId": "t", "rawResponse": {"content": [1, 2]},
                 "metadata": {"usage": {"inputTokens": 5, "outputTokens": 6},
                              "totalTimeMs": 1500}}}}}"#,
        );
        // A pre-processing phase has no tool steps in botocore's model: skipped.
        let odd = part(
            r#"{"trace": {"preProcessingTrace": {"invocationInput":
                {"invocationType": "ACTION_GROUP", "traceId": "u"}}}}"#,
        );
        t.read_part_json(&input, 1).unwrap();
        t.read_part_json(&odd, 2).unwrap();
        t.read_part_json(b"", 3).unwrap();
        t.read_part_json(&output, 4).unwrap();
        assert!(t.read_part_json(b"{\"trace\": 1}", 5).is_err());
        let steps = t.finish(Outcome::Complete);
        assert_eq!(t.unfinished(), 0);
        assert_eq!(steps.len(), 1);
        let s = &steps[0];
        assert_eq!(s.kind, EventKind::ModelCall);
        assert_eq!((s.ts, s.duration_ns), (10_500_000_000, Some(1_500_000_000)));
        assert_eq!((s.input_tokens, s.output_tokens), (Some(5), Some(6)));
        assert_eq!(s.model.as_deref(), Some("m"));
        assert_eq!(s.attrs["gen_ai.agent.name"], "helper");
        assert_eq!(s.attrs["gen_ai.agent.id"], "A2");
    }

    /// An event-stream message of `kind` with a JSON `payload`.
    pub(crate) fn message(kind: &str, payload: &str) -> Vec<u8> {
        let mut h = Vec::new();
        for (name, value) in [(":event-type", kind), (":message-type", "event")] {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(7);
            h.extend_from_slice(&(value.len() as u16).to_be_bytes());
            h.extend_from_slice(value.as_bytes());
        }
        let total = (16 + h.len() + payload.len()) as u32;
        let mut m = total.to_be_bytes().to_vec();
        m.extend_from_slice(&(h.len() as u32).to_be_bytes());
        m.extend_from_slice(&crc32fast::hash(&m).to_be_bytes());
        m.extend_from_slice(&h);
        m.extend_from_slice(payload.as_bytes());
        m.extend_from_slice(&crc32fast::hash(&m).to_be_bytes());
        m
    }

    pub(crate) fn model_input(tid: &str) -> String {
        format!(
            r#"{{"trace": {{"orchestrationTrace": {{"modelInvocationInput": {{"traceId": "{tid}"}}}}}}}}"#
        )
    }

    #[test]
    fn reads_the_trace_messages_the_caller_got_with_their_chunks_times() {
        let a = message("trace", &model_input("a"));
        let chunk = message("chunk", r#"{"bytes": "b2s="}"#);
        let b = message("trace", &model_input("b"));
        let c = message("trace", &model_input("c"));
        // `b` spans two chunks: it came with the second.
        let bytes = [a.clone(), chunk.clone(), b.clone(), c.clone()].concat();
        let split = a.len() + chunk.len() + 5;
        let mut t = AgentTrace::<i64>::new(None);
        // The caller got two trace events: `c` came, but is not read.
        let read = t.read_stream([(&bytes[..split], 100), (&bytes[split..], 200)], 2);
        assert_eq!(
            read,
            StreamRead {
                parts: 2,
                errors: 0
            }
        );
        let steps = t.finish(Outcome::Cancelled);
        let got: Vec<_> = steps
            .iter()
            .map(|e| {
                (
                    e.attrs["aws.bedrock.trace_id"].as_str().unwrap().to_owned(),
                    e.ts,
                )
            })
            .collect();
        assert_eq!(got, [("a".to_owned(), 100), ("b".to_owned(), 200)]);
    }

    #[test]
    fn messages_split_anywhere_across_chunks_read_alike() {
        let parts: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|t| message("trace", &model_input(t)))
            .collect();
        let bytes = parts.concat();
        let whole = {
            let mut t = AgentTrace::<i64>::new(None);
            assert_eq!(
                t.read_stream([(&bytes[..], 1)], 3),
                StreamRead {
                    parts: 3,
                    errors: 0
                }
            );
            t.finish(Outcome::Cancelled).len()
        };
        assert_eq!(whole, 3);
        for size in [1, 2, 11, 12, 13, 40, parts[0].len(), parts[0].len() + 1] {
            let mut t = AgentTrace::<i64>::new(None);
            let chunks = bytes.chunks(size).enumerate().map(|(i, c)| (c, i as i64));
            assert_eq!(
                t.read_stream(chunks, 3),
                StreamRead {
                    parts: 3,
                    errors: 0
                },
                "{size}"
            );
            let steps = t.finish(Outcome::Cancelled);
            assert_eq!(steps.len(), 3);
            // Each step's time is that of the chunk holding its message's last byte.
            let last = (parts[0].len() - 1) / size;
            assert_eq!(steps[0].ts, last as i64, "{size}");
        }
        // Cut inside the last message: two read, one error.
        let mut t = AgentTrace::<i64>::new(None);
        let cut = &bytes[..bytes.len() - 3];
        let read = t.read_stream(cut.chunks(7).map(|c| (c, 0)), 3);
        assert_eq!(
            read,
            StreamRead {
                parts: 2,
                errors: 1
            }
        );
    }

    #[test]
    fn a_cut_or_corrupt_message_ends_the_reading_with_an_error() {
        let a = message("trace", &model_input("a"));
        let b = message("trace", &model_input("b"));
        let mut corrupt = b.clone();
        *corrupt.last_mut().unwrap() ^= 1;
        for rest in [&b[..b.len() - 1], &corrupt[..]] {
            let bytes = [&a[..], rest].concat();
            let mut t = AgentTrace::<i64>::new(None);
            let read = t.read_stream([(&bytes[..], 7)], 2);
            assert_eq!(
                read,
                StreamRead {
                    parts: 1,
                    errors: 1
                }
            );
            assert_eq!(t.finish(Outcome::Error).len(), 1);
        }
        // A part that is not the JSON expected is counted, and the reading goes on.
        let bytes = [message("trace", "{\"trace\": 5}"), b.clone()].concat();
        let mut t = AgentTrace::<i64>::new(None);
        let read = t.read_stream([(&bytes[..], 7)], 2);
        assert_eq!(
            read,
            StreamRead {
                parts: 2,
                errors: 1
            }
        );
    }
}
