//! One Amazon Bedrock Agents `InvokeAgent` call handed over raw when its response stream has
//! ended, for the meter's writer thread to turn into events (`crate::meter::Deferred`): the
//! outer call's event, completed on the caller's thread (its id and time fixed there), and the
//! stream's bytes as they came ([`BodyBytes`], kept while the caller read the stream).
//! [`AgentTurn::events`] reads the trace from those bytes ([`crate::capture::trace_part`]),
//! finishes the turn ([`crate::capture::agent_trace`]) and gives the outer call first, then its
//! inner steps as its children, with the failures met: the caller's thread only converts the
//! outer call.

use crate::capture::agent_trace::{AgentTrace, Outcome};
use crate::capture::body_bytes::BodyBytes;
use crate::event::{Event, Text};

/// The attribute of the outer call that counts its inner steps (the steps carry the tokens).
pub const INNER_STEPS: &str = "statemeter.inner_steps";

/// An InvokeAgent call and its response stream's raw bytes.
pub struct AgentTurn {
    /// The outer call (the InvokeAgent request), completed: it is recorded first.
    pub outer: Event,
    /// The response body's bytes, chunk by chunk as they came.
    pub body: BodyBytes,
    /// How many trace events the caller got (those parts are read).
    pub traces: usize,
    /// How the stream ended.
    pub outcome: Outcome,
    /// Where the model steps ran (the outer call's venue; `None`: the session's).
    pub venue: Option<Text>,
}

/// What an [`AgentTurn`] amounts to: the outer call and then its steps, each a child of it
/// (`parent_id`), and the failures met reading them: each message or trace part that could not
/// be read, and one for a stream that ended with steps unfinished.
#[derive(Debug)]
pub struct TurnEvents {
    pub events: Vec<Event>,
    pub failures: usize,
}

impl AgentTurn {
    /// At most how many events the turn yields: the outer call, and a step for each trace event
    /// read at most.
    pub fn events_at_most(&self) -> usize {
        1 + self.traces
    }

    /// The bytes of the response body it holds until it is read.
    pub fn held_bytes(&self) -> usize {
        self.body.len()
    }

    /// Reads the trace and finishes the turn. The outer call is recorded whatever the trace
    /// holds; when it had steps, `attrs["statemeter.inner_steps"]` counts them.
    pub fn events(self) -> TurnEvents {
        let mut trace = AgentTrace::<i64>::new(self.venue);
        let read = trace.read_stream(self.body.chunks(), self.traces);
        let steps = trace.finish(self.outcome);
        let failures = read.errors + usize::from(trace.unfinished() > 0);
        let mut outer = self.outer;
        if !steps.is_empty() {
            outer.attrs.insert(INNER_STEPS.into(), steps.len().into());
        }
        let parent: Text = outer.id.as_str().into();
        let mut events = Vec::with_capacity(steps.len() + 1);
        events.push(outer);
        events.extend(steps.into_iter().map(|mut e| {
            e.parent_id = Some(parent.clone());
            e
        }));
        TurnEvents { events, failures }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::trace_part::tests::{message, model_input};
    use crate::event::EventKind;

    fn outer() -> Event {
        let mut e = Event::new(EventKind::ModelCall);
        e.provider = Some("aws.bedrock".into());
        e.model = Some("agent".into());
        e.api = Some("invoke_agent".into());
        e.finish().unwrap()
    }

    fn model_output(tid: &str) -> String {
        format!(
            r#"{{"trace": {{"orchestrationTrace": {{"modelInvocationOutput": {{"traceId": "{tid}", "metadata": {{"usage": {{"inputTokens": 7, "outputTokens": 3}}}}}}}}}}}}"#
        )
    }

    /// The turn of `messages`, cut into chunks of `size` bytes that came 10 ns apart.
    fn turn(messages: &[Vec<u8>], size: usize, traces: usize, outcome: Outcome) -> AgentTurn {
        let bytes = messages.concat();
        let body = BodyBytes::of(
            bytes
                .chunks(size)
                .enumerate()
                .map(|(i, chunk)| (chunk, 10 * (i as i64 + 1))),
        );
        AgentTurn {
            outer: outer(),
            body,
            traces,
            outcome,
            venue: Some("aws.bedrock".into()),
        }
    }

    #[test]
    fn the_outer_call_comes_first_and_its_steps_are_its_children() {
        let messages = [
            message("trace", &model_input("a")),
            message("chunk", r#"{"bytes": "b2s="}"#),
            message("trace", &model_output("a")),
            message("trace", &model_input("b")),
        ];
        let t = turn(&messages, 7, 3, Outcome::Complete);
        let id = t.outer.id.clone();
        let got = t.events();
        // The step whose output never came is unfinished: one failure.
        assert_eq!(got.failures, 1);
        let [outer, a, b] = &got.events[..] else {
            panic!("{:?}", got.events)
        };
        assert_eq!(outer.id, id);
        assert_eq!(outer.attrs[INNER_STEPS], 2);
        assert_eq!(
            (outer.parent_id.as_deref(), outer.input_tokens),
            (None, Some(0))
        );
        for step in [a, b] {
            assert_eq!(step.parent_id.as_deref(), Some(id.as_str()));
            assert_eq!(step.venue.as_deref(), Some("aws.bedrock"));
        }
        assert_eq!((a.input_tokens, a.status.as_deref()), (Some(7), Some("ok")));
        assert_eq!(b.status.as_deref(), Some("error"));
    }

    #[test]
    fn a_bad_trace_still_gives_the_outer_call() {
        // Cut in the middle of the second message: the first step is read, the cut counted.
        let messages = [
            message("trace", &model_input("a")),
            message("trace", &model_output("a")),
        ];
        let mut t = turn(&messages, 1_000, 2, Outcome::Cancelled);
        let cut = messages[0].len() + 10;
        t.body = BodyBytes::of([(&messages.concat()[..cut], 5)]);
        let got = t.events();
        assert_eq!(got.failures, 1);
        assert_eq!(got.events.len(), 2);
        assert_eq!(got.events[1].status.as_deref(), Some("cancelled"));
        // Nothing readable: the outer call alone, without a count of steps.
        let mut t = turn(&messages, 1_000, 2, Outcome::Complete);
        t.body = BodyBytes::of([(&b"not an event stream at all"[..], 5)]);
        let got = t.events();
        assert_eq!(got.failures, 1);
        assert_eq!(got.events.len(), 1);
        assert!(!got.events[0].attrs.contains_key(INNER_STEPS));
    }
}
