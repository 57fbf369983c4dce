//! The inner steps of one Amazon Bedrock Agents `InvokeAgent` response, read from the `trace`
//! events of its response stream (`enableTrace=True`) as the caller consumes them.
//!
//! Each `trace` event is a `TracePart` (`agentId`, `agentAliasId`, `agentVersion`, `sessionId`,
//! `collaboratorName`, `callerChain`, `eventTime`, `trace`) whose `trace` holds one phase:
//! `preProcessingTrace`, `orchestrationTrace`, `postProcessingTrace`, `routingClassifierTrace`
//! (model steps and tool steps), `guardrailTrace`, `failureTrace` or `customOrchestrationTrace`
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/trace-events.html>). A phase part
//! carries one of:
//!
//! - `modelInvocationInput` (`foundationModel`, `type`, `traceId`, and the prompt `text`, never
//!   read) and later `modelInvocationOutput` (`metadata.usage.{inputTokens, outputTokens}`,
//!   `metadata.totalTimeMs`, `traceId`): one `model_call` (`provider="aws.bedrock"`,
//!   `api="invoke_model"`: the agent sends the model the whole prompt it built, as InvokeModel
//!   does) per output, paired with its input by `traceId`;
//! - `invocationInput` (`invocationType`: `ACTION_GROUP`, `KNOWLEDGE_BASE`,
//!   `ACTION_GROUP_CODE_INTERPRETER`, `AGENT_COLLABORATOR`; `FINISH` is no step) and later an
//!   `observation` with the same `traceId` (its `metadata.totalTimeMs`): one `tool_call` — an
//!   action group (`tool_kind="function"`, the tool named `actionGroupName` with the function or
//!   `verb apiPath` in attrs), a knowledge-base lookup (`tool_kind="knowledge_base"`,
//!   `effect="read"`, the knowledge base id in attrs), the code interpreter
//!   (`tool_kind="code_interpreter"`) or a collaborator agent (`tool_kind="agent"`).
//!
//! This module pairs and times the steps; its callers hand it only the named, non-content
//! fields: prompts, rationales, raw responses, parameters, request bodies, retrieved references
//! and outputs are never looked at. The botocore capture reads the stream's raw bytes once, when
//! it has ended ([`crate::capture::trace_part`]); the Python binding can also read botocore's
//! parsed events one by one, where the raw bytes cannot be tapped.
//! The steps are [`Event`]s ready to record: no intermediate mapping per step.
//!
//! A step whose output never came (the stream ended early, failed, or a `failureTrace` ended the
//! turn) is kept with what was seen and `status="error"` (`cancelled` when the caller closed
//! the stream), and counted in [`AgentTrace::unfinished`] when the stream itself ended without
//! it.

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use crate::event::{Event, EventKind, Text};

/// The trace phases with model and tool steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    PreProcessing,
    Orchestration,
    PostProcessing,
    RoutingClassifier,
}

impl Phase {
    /// The phase of a `Trace` member name (`orchestrationTrace`, ...); `None` for the phases
    /// without steps.
    pub fn of(key: &str) -> Option<Phase> {
        Some(match key {
            "orchestrationTrace" => Phase::Orchestration,
            "preProcessingTrace" => Phase::PreProcessing,
            "postProcessingTrace" => Phase::PostProcessing,
            "routingClassifierTrace" => Phase::RoutingClassifier,
            _ => return None,
        })
    }

    /// The step name recorded in `attrs["aws.bedrock.agent.step"]`.
    pub fn step(self) -> &'static str {
        match self {
            Phase::PreProcessing => "pre_processing",
            Phase::Orchestration => "orchestration",
            Phase::PostProcessing => "post_processing",
            Phase::RoutingClassifier => "routing_classifier",
        }
    }
}

/// The observation members that carry a tool's output metadata, in the order they are looked
/// for.
pub const OBSERVATION_OUTPUTS: [&str; 4] = [
    "actionGroupInvocationOutput",
    "knowledgeBaseLookupOutput",
    "codeInterpreterInvocationOutput",
    "agentCollaboratorInvocationOutput",
];

/// What an `invocationInput` asks for: one tool step (the named fields only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolInput {
    /// `ACTION_GROUP`: `actionGroupInvocationInput`'s `actionGroupName`, `function`, `apiPath`,
    /// `verb`, `executionType`, `invocationId`.
    ActionGroup {
        name: Option<String>,
        function: Option<String>,
        api_path: Option<String>,
        verb: Option<String>,
        execution_type: Option<String>,
        invocation_id: Option<String>,
    },
    /// `KNOWLEDGE_BASE`: `knowledgeBaseLookupInput.knowledgeBaseId`.
    KnowledgeBase { id: Option<String> },
    /// `ACTION_GROUP_CODE_INTERPRETER`.
    CodeInterpreter,
    /// `AGENT_COLLABORATOR`: `agentCollaboratorInvocationInput`'s `agentCollaboratorName` and
    /// `agentCollaboratorAliasArn`.
    Collaborator {
        name: Option<String>,
        alias_arn: Option<String>,
    },
}

/// Which tool step an `invocationType` starts (`None`: `FINISH`, or a type not known here: no
/// tool ran).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolKind {
    ActionGroup,
    KnowledgeBase,
    CodeInterpreter,
    Collaborator,
}

impl ToolKind {
    pub fn of(invocation_type: &str) -> Option<ToolKind> {
        Some(match invocation_type {
            "ACTION_GROUP" => ToolKind::ActionGroup,
            "KNOWLEDGE_BASE" => ToolKind::KnowledgeBase,
            "ACTION_GROUP_CODE_INTERPRETER" => ToolKind::CodeInterpreter,
            "AGENT_COLLABORATOR" => ToolKind::Collaborator,
            _ => return None,
        })
    }
}

/// A time a trace reports (`eventTime`, `metadata.startTime`), read only when a step needs it:
/// the caller's own representation (the binding keeps botocore's `datetime`).
pub trait TraceTime {
    /// Nanoseconds since the epoch, `None` when the value is not a time.
    fn ns(&self) -> Option<i64>;
}

impl TraceTime for i64 {
    fn ns(&self) -> Option<i64> {
        Some(*self)
    }
}

/// What a trace part says about itself: when it happened (`eventTime`), when statemeter read it
/// (wall clock ns), and the collaborator agent it came from in a multi-agent team.
pub struct Part<T> {
    pub event_time: Option<T>,
    pub seen: i64,
    /// `collaboratorName` (as text) and the part's `agentId`, when the part has a collaborator.
    pub collaborator: Option<(String, Option<String>)>,
}

/// The `metadata` of a model invocation's output or a tool's observation: `totalTimeMs` and
/// `startTime`.
pub struct Timing<T> {
    pub total_ms: Option<u64>,
    pub start: Option<T>,
}

impl<T> Default for Timing<T> {
    fn default() -> Self {
        Timing {
            total_ms: None,
            start: None,
        }
    }
}

/// A step whose input was seen, waiting for its output.
struct Pending<T> {
    /// Its `traceId` (`None`: absent or not a string).
    trace_id: Option<String>,
    tool: bool,
    event: Event,
    /// The input part's `eventTime`.
    start: Option<T>,
    /// When statemeter read the input part.
    seen: i64,
}

/// How a stream ended, for the steps still waiting for their output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The stream ended (all read).
    Complete,
    /// Reading the stream failed.
    Error,
    /// The caller closed the stream before its end.
    Cancelled,
}

/// Collects the inner steps of one InvokeAgent turn from its trace parts.
pub struct AgentTrace<T> {
    venue: Option<Text>,
    /// Steps waiting for their output, in the order their inputs came.
    pending: Vec<Pending<T>>,
    steps: Vec<Event>,
    unfinished: usize,
}

fn texts() -> &'static [Text; 3] {
    static TEXTS: OnceLock<[Text; 3]> = OnceLock::new();
    TEXTS.get_or_init(|| {
        [
            "aws.bedrock".into(),
            "invoke_model".into(),
            "unknown".into(),
        ]
    })
}

impl<T: TraceTime> AgentTrace<T> {
    /// A trace whose model steps ran at `venue` (the outer call's; `None`: the session's).
    pub fn new(venue: Option<Text>) -> Self {
        AgentTrace {
            venue,
            pending: Vec::new(),
            steps: Vec::new(),
            unfinished: 0,
        }
    }

    /// Steps cut off by a stream that ended (or failed) without their output; set by
    /// [`AgentTrace::finish`].
    pub fn unfinished(&self) -> usize {
        self.unfinished
    }

    /// The step and its trace id; the agent only where it differs from the outer call's (a
    /// collaborator agent of a multi-agent team).
    fn attrs(part: &Part<T>, phase: Phase, trace_id: Option<&str>) -> Map<String, Value> {
        let mut attrs = Map::new();
        attrs.insert("aws.bedrock.agent.step".into(), phase.step().into());
        if let Some(tid) = trace_id.filter(|t| !t.is_empty()) {
            attrs.insert("aws.bedrock.trace_id".into(), tid.into());
        }
        if let Some((name, agent)) = &part.collaborator {
            attrs.insert("gen_ai.agent.name".into(), name.as_str().into());
            if let Some(agent) = agent {
                attrs.insert("gen_ai.agent.id".into(), agent.as_str().into());
            }
        }
        attrs
    }

    fn model_event(&self, model: Option<String>, attrs: Map<String, Value>) -> Event {
        let [provider, api, unknown] = texts();
        let mut event = Event::new(EventKind::ModelCall);
        event.provider = Some(provider.clone());
        event.model = Some(model.map(Arc::from).unwrap_or_else(|| unknown.clone()));
        event.api = Some(api.clone());
        event.venue = self.venue.clone();
        event.attrs = attrs;
        event
    }

    /// A `modelInvocationInput` (`foundationModel`: `None` when absent or empty).
    pub fn model_input(
        &mut self,
        phase: Phase,
        part: Part<T>,
        trace_id: Option<String>,
        model: Option<String>,
    ) {
        let event = self.model_event(model, Self::attrs(&part, phase, trace_id.as_deref()));
        self.pending.push(Pending {
            trace_id,
            tool: false,
            event,
            start: part.event_time,
            seen: part.seen,
        });
    }

    /// A `modelInvocationOutput`: closes the oldest model step waiting with its `traceId` (one
    /// of its own when its input was not in the stream).
    pub fn model_output(
        &mut self,
        phase: Phase,
        part: Part<T>,
        trace_id: Option<String>,
        tokens: (Option<u64>, Option<u64>),
        timing: Option<Timing<T>>,
    ) {
        let mut pending = match self.take(false, trace_id.as_deref()) {
            Some(p) => p,
            None => {
                let attrs = Self::attrs(&part, phase, trace_id.as_deref());
                Pending {
                    event: self.model_event(None, attrs),
                    trace_id,
                    tool: false,
                    start: None,
                    seen: part.seen,
                }
            }
        };
        if tokens.0.is_some() {
            pending.event.input_tokens = tokens.0;
        }
        if tokens.1.is_some() {
            pending.event.output_tokens = tokens.1;
        }
        self.close(pending, timing, part.event_time, part.seen, "ok");
    }

    /// An `invocationInput` of a known kind: a tool step waiting for its observation.
    pub fn tool_input(
        &mut self,
        phase: Phase,
        part: Part<T>,
        trace_id: Option<String>,
        input: ToolInput,
    ) {
        let mut attrs = Self::attrs(&part, phase, trace_id.as_deref());
        let mut put = |key: &str, v: Option<String>| {
            if let Some(v) = v {
                attrs.insert(key.into(), v.into());
            }
        };
        let (name, kind, effect) = match input {
            ToolInput::ActionGroup {
                name,
                function,
                api_path,
                verb,
                execution_type,
                invocation_id,
            } => {
                put("aws.bedrock.action_group.function", function);
                put("aws.bedrock.action_group.api_path", api_path);
                put("http.request.method", verb.map(|v| v.to_uppercase()));
                put("aws.bedrock.action_group.execution_type", execution_type);
                put("gen_ai.tool.call.id", invocation_id);
                (
                    name.unwrap_or_else(|| "action_group".into()),
                    "function",
                    "none",
                )
            }
            ToolInput::KnowledgeBase { id } => {
                put("gen_ai.data_source.id", id);
                ("knowledge_base".into(), "knowledge_base", "read")
            }
            ToolInput::CodeInterpreter => ("code_interpreter".into(), "code_interpreter", "none"),
            ToolInput::Collaborator { name, alias_arn } => {
                put("aws.bedrock.agent_collaborator.alias_arn", alias_arn);
                (
                    name.unwrap_or_else(|| "agent_collaborator".into()),
                    "agent",
                    "none",
                )
            }
        };
        let mut event = Event::new(EventKind::ToolCall);
        event.tool = Some(name.into());
        event.tool_kind = Some(kind.into());
        event.effect = Some(effect.into());
        event.attrs = attrs;
        self.pending.push(Pending {
            trace_id,
            tool: true,
            event,
            start: part.event_time,
            seen: part.seen,
        });
    }

    /// An `observation`: closes the oldest tool step waiting with its `traceId` (none: an
    /// observation nobody asked for, skipped).
    pub fn observation(
        &mut self,
        part: Part<T>,
        trace_id: Option<&str>,
        timing: Option<Timing<T>>,
    ) {
        if let Some(pending) = self.take(true, trace_id) {
            self.close(pending, timing, part.event_time, part.seen, "ok");
        }
    }

    /// A `failureTrace`: every step still waiting ends with `status="error"`.
    pub fn failure(&mut self) {
        self.fail_pending("error");
    }

    fn take(&mut self, tool: bool, trace_id: Option<&str>) -> Option<Pending<T>> {
        let at = self
            .pending
            .iter()
            .position(|p| p.tool == tool && p.trace_id.as_deref() == trace_id)?;
        Some(self.pending.remove(at))
    }

    /// Times a step: it ends at its output's `eventTime` (else when statemeter read the
    /// output) and lasted `metadata.totalTimeMs` (else since its input).
    fn close(
        &mut self,
        pending: Pending<T>,
        timing: Option<Timing<T>>,
        when: Option<T>,
        seen: i64,
        status: &str,
    ) {
        let timing = timing.unwrap_or_default();
        let mut start = timing.start.as_ref().and_then(T::ns);
        let end = when.as_ref().and_then(T::ns).unwrap_or(seen);
        let duration = match timing.total_ms {
            Some(ms) => {
                let d = i64::try_from(ms)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000);
                start.get_or_insert(end.saturating_sub(d));
                d
            }
            None => {
                let s = *start.get_or_insert_with(|| {
                    pending
                        .start
                        .as_ref()
                        .and_then(T::ns)
                        .unwrap_or(pending.seen)
                });
                end.saturating_sub(s).max(0)
            }
        };
        let mut event = pending.event;
        event.ts = start.unwrap_or(end);
        event.ts_explicit = true;
        event.duration_ns = Some(duration);
        event.status = Some(status.into());
        self.steps.push(event);
    }

    /// Ends every step still waiting with `status`; returns how many.
    fn fail_pending(&mut self, status: &str) -> usize {
        let waiting = std::mem::take(&mut self.pending);
        let n = waiting.len();
        for p in waiting {
            let seen = p.seen;
            self.close(p, None, None, seen, status);
        }
        n
    }

    /// Ends the turn: the steps still waiting end with `status="error"` (`cancelled` when the
    /// caller closed the stream), counted in [`AgentTrace::unfinished`] unless cancelled.
    /// Returns the steps in order of their start (equal starts in the order they ended).
    pub fn finish(&mut self, outcome: Outcome) -> Vec<Event> {
        let cut = self.fail_pending(if outcome == Outcome::Cancelled {
            "cancelled"
        } else {
            "error"
        });
        if outcome != Outcome::Cancelled {
            self.unfinished = cut;
        }
        let mut steps = std::mem::take(&mut self.steps);
        steps.sort_by_key(|e| e.ts);
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(at: i64) -> Part<i64> {
        Part {
            event_time: Some(at),
            seen: 5,
            collaborator: None,
        }
    }

    fn timing(ms: u64) -> Option<Timing<i64>> {
        Some(Timing {
            total_ms: Some(ms),
            start: None,
        })
    }

    #[test]
    fn pairs_inputs_and_outputs_by_trace_id_and_times_them() {
        let mut t = AgentTrace::new(None);
        let o = Phase::Orchestration;
        t.model_input(o, part(1_000), Some("a".into()), Some("m".into()));
        t.tool_input(o, part(2_000), Some("a".into()), ToolInput::CodeInterpreter);
        t.model_input(o, part(3_000), Some("b".into()), None);
        t.model_output(o, part(9_000), Some("b".into()), (Some(7), None), None);
        t.observation(part(4_000_000), Some("a"), timing(1));
        t.model_output(
            o,
            part(10_000_000),
            Some("a".into()),
            (Some(1), Some(2)),
            timing(2),
        );
        let steps = t.finish(Outcome::Complete);
        assert_eq!(t.unfinished(), 0);
        let got: Vec<_> = steps
            .iter()
            .map(|e| {
                (
                    e.kind,
                    e.ts,
                    e.duration_ns,
                    e.input_tokens,
                    e.model.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    EventKind::ModelCall,
                    3_000,
                    Some(6_000),
                    Some(7),
                    Some("unknown")
                ),
                (EventKind::ToolCall, 3_000_000, Some(1_000_000), None, None),
                (
                    EventKind::ModelCall,
                    8_000_000,
                    Some(2_000_000),
                    Some(1),
                    Some("m")
                ),
            ]
        );
        assert_eq!(steps[1].tool.as_deref(), Some("code_interpreter"));
        assert_eq!(steps[2].attrs["aws.bedrock.trace_id"], "a");
    }

    #[test]
    fn unfinished_steps_end_as_error_or_cancelled() {
        let mut t = AgentTrace::new(Some("aws.bedrock".into()));
        t.model_input(Phase::PreProcessing, part(1), None, None);
        let steps = t.finish(Outcome::Error);
        assert_eq!(t.unfinished(), 1);
        assert_eq!(steps[0].status.as_deref(), Some("error"));
        assert_eq!((steps[0].ts, steps[0].duration_ns), (1, Some(4)));
        let mut t = AgentTrace::<i64>::new(None);
        t.model_input(Phase::PreProcessing, part(1), None, None);
        t.failure();
        t.model_input(Phase::PreProcessing, part(2), None, None);
        let steps = t.finish(Outcome::Cancelled);
        assert_eq!(t.unfinished(), 0);
        let statuses: Vec<_> = steps.iter().map(|e| e.status.as_deref()).collect();
        assert_eq!(statuses, [Some("error"), Some("cancelled")]);
    }
}
