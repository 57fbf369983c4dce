//! `_AgentTrace`: the inner steps of one Amazon Bedrock Agents `InvokeAgent` turn
//! (`crate::capture::agent_trace`) for the botocore capture. This binding only converts: it hands
//! the response stream's raw bytes, kept as they came (`_StreamTap`), to
//! `crate::capture::trace_part` once the stream has ended (`read_stream`); where those bytes
//! cannot be tapped it reads the named, non-content fields of botocore's parsed stream events
//! (plain dicts, `datetime` times) as they pass (`observe`). It hands the finished steps to a
//! `Session` as events (no mapping per step) or, for any other recording target, as the
//! mappings `Session.record` takes.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyInt, PyString, PyType};
use pyo3::{intern, Py};

use super::errors::invalid;
use super::meter::Session;
use super::stream_tap::StreamTap;
use crate::capture::agent_trace::{
    AgentTrace as CoreTrace, Outcome, Part, Phase, Timing, ToolInput, ToolKind, TraceTime,
    OBSERVATION_OUTPUTS,
};
use crate::capture::agent_turn::{AgentTurn, TurnEvents};
use crate::capture::trace_part::days_from_civil;
use crate::event::{now_ns, Event as CoreEvent, EventKind, Text};
use crate::ledger::Durability;
use crate::meter::{Built, Deferred};

/// A time in a trace part: botocore's `datetime`, kept as botocore gave it and read only when a
/// step needs it, or ns since the epoch read from the stream's bytes.
enum PyTime {
    Datetime(Py<PyAny>),
    Ns(i64),
}

impl From<i64> for PyTime {
    fn from(ns: i64) -> Self {
        PyTime::Ns(ns)
    }
}

/// `datetime.datetime`, the epoch as a naive and as an aware (UTC) `datetime`,
/// `datetime.timezone.utc` and `datetime.timedelta`.
struct Epochs {
    class: Py<PyType>,
    naive: Py<PyAny>,
    aware: Py<PyAny>,
    utc: Py<PyAny>,
    timedelta: Py<PyType>,
}

static EPOCHS: PyOnceLock<Epochs> = PyOnceLock::new();

/// `dateutil.tz`'s `tzutc` and `tzlocal`, once `dateutil.tz` is imported.
struct DateutilZones {
    tzutc: Py<PyType>,
    tzlocal: Py<PyType>,
}

static DATEUTIL: PyOnceLock<DateutilZones> = PyOnceLock::new();

impl TraceTime for PyTime {
    fn ns(&self) -> Option<i64> {
        match self {
            PyTime::Datetime(t) => Python::attach(|py| datetime_ns(t.bind(py)).ok().flatten()),
            PyTime::Ns(ns) => Some(*ns),
        }
    }
}

/// The offset of `tz` in µs where it is known without asking the zone (whose `utcoffset()`
/// is Python code, called by a subtraction of aware datetimes for every time it reads):
/// zero for the `datetime.timezone.utc` singleton and for exactly `dateutil.tz.tzutc`; for
/// exactly `dateutil.tz.tzlocal` (the zone botocore gives the times it reads as epoch seconds, as
/// every time in an InvokeAgent trace) on a machine
/// whose zone has no daylight saving time, its one offset, `_std_offset` (dateutil's own
/// `utcoffset()` returns just that whenever `_hasdst` is false). `None`: ask the zone (any
/// other zone, a subclass, which could say otherwise, or a `tzlocal` with daylight saving time).
fn known_offset_us(tz: &Bound<'_, PyAny>, epochs: &Epochs) -> Option<i64> {
    let py = tz.py();
    if tz.is(epochs.utc.bind(py)) {
        return Some(0);
    }
    let zones = match DATEUTIL.get(py) {
        Some(z) => z,
        None => {
            // Only an imported dateutil can have made the time's zone.
            let module = py
                .import("sys")
                .and_then(|sys| sys.getattr("modules"))
                .ok()?
                .get_item("dateutil.tz")
                .ok()?;
            let class = |name: &str| -> Option<Py<PyType>> {
                Some(
                    module
                        .getattr(name)
                        .ok()?
                        .downcast_into::<PyType>()
                        .ok()?
                        .unbind(),
                )
            };
            let zones = DateutilZones {
                tzutc: class("tzutc")?,
                tzlocal: class("tzlocal")?,
            };
            DATEUTIL.get_or_init(py, || zones)
        }
    };
    let class = tz.get_type();
    if class.is(zones.tzutc.bind(py)) {
        return Some(0);
    }
    if !class.is(zones.tzlocal.bind(py)) {
        return None;
    }
    let has_dst = tz.getattr(intern!(py, "_hasdst")).ok()?;
    if has_dst.downcast::<PyBool>().ok()?.is_true() {
        return None;
    }
    let offset = tz.getattr(intern!(py, "_std_offset")).ok()?;
    if !offset.get_type().is(epochs.timedelta.bind(py)) {
        return None;
    }
    let field = |name: &Bound<'_, PyString>| offset.getattr(name).ok()?.extract::<i64>().ok();
    let secs = field(intern!(py, "days"))? * 86_400 + field(intern!(py, "seconds"))?;
    Some(secs * 1_000_000 + field(intern!(py, "microseconds"))?)
}

/// A `datetime.datetime` (exactly that class; UTC when naive) in ns since the epoch, exact to
/// its microsecond; `None` for anything else, or a time `i64` nanoseconds cannot hold. A naive
/// time, or one in a zone whose offset is known (`known_offset_us`), from its fields and that
/// offset, without calling into Python code; any other zone
/// by one subtraction in C (`datetime - epoch`, which applies the time's `utcoffset()`
/// exactly, sub-second offsets included) and the three integer fields of the `timedelta` it
/// gives.
fn datetime_ns(v: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    let py = v.py();
    let epochs = EPOCHS.get_or_try_init(py, || -> PyResult<Epochs> {
        let module = py.import("datetime")?;
        let class = module.getattr("datetime")?.downcast_into::<PyType>()?;
        let naive = class.call1((1970, 1, 1))?;
        let utc = module.getattr("timezone")?.getattr("utc")?;
        let aware = class.call1((1970, 1, 1, 0, 0, 0, 0, &utc))?;
        Ok(Epochs {
            class: class.unbind(),
            naive: naive.unbind(),
            aware: aware.unbind(),
            utc: utc.unbind(),
            timedelta: module
                .getattr("timedelta")?
                .downcast_into::<PyType>()?
                .unbind(),
        })
    })?;
    if !v.get_type().is(epochs.class.bind(py)) {
        return Ok(None);
    }
    let tz = v.getattr(intern!(py, "tzinfo"))?;
    let offset = if tz.is_none() {
        Some(0)
    } else {
        known_offset_us(&tz, epochs)
    };
    let (days, secs, micros) = if let Some(offset) = offset {
        let field = |name: &Bound<'_, PyString>| -> PyResult<i64> { v.getattr(name)?.extract() };
        let date = days_from_civil(
            field(intern!(py, "year"))?,
            field(intern!(py, "month"))?,
            field(intern!(py, "day"))?,
        );
        let secs = field(intern!(py, "hour"))? * 3600
            + field(intern!(py, "minute"))? * 60
            + field(intern!(py, "second"))?;
        let micros = field(intern!(py, "microsecond"))? - offset;
        (date, secs, micros)
    } else {
        let delta = match v.sub(epochs.aware.bind(py)) {
            Ok(delta) => delta,
            // A tzinfo whose `utcoffset()` is None: the time is naive (UTC).
            Err(_) if v.call_method0(intern!(py, "utcoffset"))?.is_none() => {
                let kwargs = PyDict::new(py);
                kwargs.set_item("tzinfo", py.None())?;
                v.call_method("replace", (), Some(&kwargs))?
                    .sub(epochs.naive.bind(py))?
            }
            Err(e) => return Err(e),
        };
        let field =
            |name: &Bound<'_, PyString>| -> PyResult<i64> { delta.getattr(name)?.extract() };
        (
            field(intern!(py, "days"))?,
            field(intern!(py, "seconds"))?,
            field(intern!(py, "microseconds"))?,
        )
    };
    Ok(days
        .checked_mul(86_400)
        .and_then(|d| d.checked_add(secs))
        .and_then(|s| s.checked_mul(1_000_000_000))
        .and_then(|n| n.checked_add(micros * 1000)))
}

/// `value` when it is a non-empty `str`.
fn text(v: Option<Bound<'_, PyAny>>) -> Option<String> {
    let v = v?;
    let s = v.downcast::<PyString>().ok()?;
    let s = s.to_str().ok()?;
    (!s.is_empty()).then(|| s.to_owned())
}

/// A `traceId`: a `str` (empty included); anything else pairs as absent.
fn trace_id(body: &Bound<'_, PyDict>) -> Option<String> {
    let v = body.get_item(intern!(body.py(), "traceId")).ok()??;
    let s = v.downcast_exact::<PyString>().ok()?;
    s.to_str().ok().map(str::to_owned)
}

/// A non-negative `int` (not a `bool`); one past `u64` reads as `u64::MAX`, which recording
/// refuses (counted, as any step that cannot be recorded).
fn count(v: Option<Bound<'_, PyAny>>) -> Option<u64> {
    let v = v?;
    if v.downcast::<PyInt>().is_err() || v.downcast::<PyBool>().is_ok() {
        return None;
    }
    match v.extract::<u64>() {
        Ok(n) => Some(n),
        Err(_) => v.extract::<i64>().is_err().then_some(u64::MAX),
    }
}

fn get<'py>(d: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> Option<Bound<'py, PyAny>> {
    d.get_item(key).ok().flatten()
}

/// The dict under `key`, if it is one.
fn sub<'py>(d: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> Option<Bound<'py, PyDict>> {
    get(d, key).and_then(|v| v.downcast_into::<PyDict>().ok())
}

fn exact_dict<'py>(v: Option<Bound<'py, PyAny>>) -> Option<Bound<'py, PyDict>> {
    v?.downcast_into_exact::<PyDict>().ok()
}

/// `metadata.totalTimeMs` and `metadata.startTime` of an exact dict.
fn timing(meta: &Bound<'_, PyDict>) -> Timing<PyTime> {
    Timing {
        total_ms: count(get(meta, intern!(meta.py(), "totalTimeMs"))),
        start: get(meta, intern!(meta.py(), "startTime"))
            .filter(|v| !v.is_none())
            .map(|v| PyTime::Datetime(v.unbind())),
    }
}

/// The part's own fields, shared by every member it carries.
struct PartFields {
    event_time: Option<Py<PyAny>>,
    seen: i64,
    collaborator: Option<(String, Option<String>)>,
}

impl PartFields {
    fn part(&self, py: Python<'_>) -> Part<PyTime> {
        Part {
            event_time: self
                .event_time
                .as_ref()
                .map(|t| PyTime::Datetime(t.clone_ref(py))),
            seen: self.seen,
            collaborator: self.collaborator.clone(),
        }
    }
}

/// Reads the trace of one InvokeAgent response stream: `observe(event)` for each event the
/// caller gets, `finish(outcome)` when the stream ends, then `record(session, parent_id)` (or
/// `steps()` for another recording target).
#[pyclass(module = "statemeter._core", name = "_AgentTrace")]
pub struct AgentTrace {
    inner: CoreTrace<PyTime>,
    /// Where the model steps ran (for a turn handed over, see `hand_over`).
    venue: Option<Text>,
    finished: Vec<CoreEvent>,
    errors: usize,
}

impl AgentTrace {
    fn read_part(&mut self, part: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = part.py();
        let Ok(part) = part.downcast::<PyDict>() else {
            return Ok(());
        };
        let Some(trace) = part
            .get_item(intern!(py, "trace"))?
            .and_then(|t| t.downcast_into::<PyDict>().ok())
        else {
            return Ok(());
        };
        let collaborator = match part.get_item(intern!(py, "collaboratorName"))? {
            Some(c) if c.is_truthy()? => {
                let name = match c.downcast::<PyString>() {
                    Ok(s) => s.to_str()?.to_owned(),
                    Err(_) => c.str()?.to_str()?.to_owned(),
                };
                Some((name, text(get(part, intern!(part.py(), "agentId")))))
            }
            _ => None,
        };
        let fields = PartFields {
            event_time: part
                .get_item(intern!(py, "eventTime"))?
                .filter(|t| !t.is_none())
                .map(Bound::unbind),
            seen: now_ns(),
            collaborator,
        };
        for (key, phase) in trace.iter() {
            let Ok(key) = key.downcast_into::<PyString>() else {
                continue;
            };
            let key = key.to_str()?;
            if let Some(p) = Phase::of(key) {
                if let Ok(phase) = phase.downcast::<PyDict>() {
                    self.read_phase(p, phase, &fields)?;
                }
            } else if key == "failureTrace" && phase.downcast::<PyDict>().is_ok() {
                self.inner.failure();
            }
        }
        Ok(())
    }

    /// A phase part carries one member (a union); rationales and other members are skipped
    /// without being looked at.
    fn read_phase(
        &mut self,
        phase: Phase,
        body: &Bound<'_, PyDict>,
        fields: &PartFields,
    ) -> PyResult<()> {
        let py = body.py();
        for (member, body) in body.iter() {
            let (Ok(member), Ok(body)) = (
                member.downcast_into::<PyString>(),
                body.downcast_into_exact::<PyDict>(),
            ) else {
                continue;
            };
            match member.to_str()? {
                "modelInvocationOutput" => {
                    let meta = exact_dict(get(&body, intern!(body.py(), "metadata")));
                    let usage = meta
                        .as_ref()
                        .and_then(|m| exact_dict(get(m, intern!(m.py(), "usage"))));
                    let tokens = match &usage {
                        Some(u) => (
                            count(get(u, intern!(u.py(), "inputTokens"))),
                            count(get(u, intern!(u.py(), "outputTokens"))),
                        ),
                        None => (None, None),
                    };
                    self.inner.model_output(
                        phase,
                        fields.part(py),
                        trace_id(&body),
                        tokens,
                        meta.as_ref().map(timing),
                    );
                }
                "modelInvocationInput" => {
                    let model = text(get(&body, intern!(body.py(), "foundationModel")));
                    self.inner
                        .model_input(phase, fields.part(py), trace_id(&body), model);
                }
                "invocationInput" => {
                    if let Some(input) = tool_input(&body) {
                        self.inner
                            .tool_input(phase, fields.part(py), trace_id(&body), input);
                    }
                }
                "observation" => {
                    let mut meta = None;
                    let keys = [
                        intern!(py, "actionGroupInvocationOutput"),
                        intern!(py, "knowledgeBaseLookupOutput"),
                        intern!(py, "codeInterpreterInvocationOutput"),
                        intern!(py, "agentCollaboratorInvocationOutput"),
                    ];
                    debug_assert!(keys.iter().zip(OBSERVATION_OUTPUTS).all(|(k, o)| k == o));
                    for key in keys {
                        if let Some(out) = get(&body, key).filter(|o| !o.is_none()) {
                            meta = exact_dict(Some(out))
                                .and_then(|o| exact_dict(get(&o, intern!(o.py(), "metadata"))));
                            break;
                        }
                    }
                    self.inner.observation(
                        fields.part(py),
                        trace_id(&body).as_deref(),
                        meta.as_ref().map(timing),
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The tool step an `invocationInput` starts, from its named fields (`None`: no tool ran).
fn tool_input(ii: &Bound<'_, PyDict>) -> Option<ToolInput> {
    let kind = ToolKind::of(&text(get(ii, intern!(ii.py(), "invocationType")))?)?;
    let py = ii.py();
    Some(match kind {
        ToolKind::ActionGroup => match sub(ii, intern!(py, "actionGroupInvocationInput")) {
            Some(ag) => ToolInput::ActionGroup {
                name: text(get(&ag, intern!(ag.py(), "actionGroupName"))),
                function: text(get(&ag, intern!(ag.py(), "function"))),
                api_path: text(get(&ag, intern!(ag.py(), "apiPath"))),
                verb: text(get(&ag, intern!(ag.py(), "verb"))),
                execution_type: text(get(&ag, intern!(ag.py(), "executionType"))),
                invocation_id: text(get(&ag, intern!(ag.py(), "invocationId"))),
            },
            None => ToolInput::ActionGroup {
                name: None,
                function: None,
                api_path: None,
                verb: None,
                execution_type: None,
                invocation_id: None,
            },
        },
        ToolKind::KnowledgeBase => ToolInput::KnowledgeBase {
            id: sub(ii, intern!(py, "knowledgeBaseLookupInput"))
                .and_then(|kb| text(get(&kb, intern!(kb.py(), "knowledgeBaseId")))),
        },
        ToolKind::CodeInterpreter => ToolInput::CodeInterpreter,
        ToolKind::Collaborator => {
            let c = sub(ii, intern!(py, "agentCollaboratorInvocationInput"));
            ToolInput::Collaborator {
                name: c
                    .as_ref()
                    .and_then(|c| text(get(c, intern!(c.py(), "agentCollaboratorName")))),
                alias_arn: c
                    .as_ref()
                    .and_then(|c| text(get(c, intern!(c.py(), "agentCollaboratorAliasArn")))),
            }
        }
    })
}

#[pymethods]
impl AgentTrace {
    /// A trace whose model steps ran at `venue` (the outer call's; `None`: the session's).
    #[new]
    #[pyo3(signature = (venue = None))]
    fn new(venue: Option<&str>) -> Self {
        let venue = venue.map(Text::from);
        AgentTrace {
            inner: CoreTrace::new(venue.clone()),
            venue,
            finished: Vec::new(),
            errors: 0,
        }
    }

    /// Reads one event of the response stream: `True` when it was a `trace` event (read, or
    /// skipped when its shape is unknown), `False` for any other event. Never raises: a part
    /// that cannot be read is counted in `errors`.
    fn observe(&mut self, event: &Bound<'_, PyAny>) -> bool {
        let Ok(event) = event.downcast::<PyDict>() else {
            return false;
        };
        let part = match event.get_item(intern!(event.py(), "trace")) {
            Ok(Some(p)) if !p.is_none() => p,
            _ => return false,
        };
        if self.read_part(&part).is_err() {
            self.errors += 1;
        }
        true
    }

    /// Reads the trace of the response stream from its raw bytes, once, when the stream has
    /// ended: what `tap` kept of them (the chunks the response body gave botocore, and when
    /// each came), up to the last trace event the caller got. Never raises: a message or part
    /// that cannot be read is counted in `errors`.
    fn read_stream(&mut self, tap: &Bound<'_, StreamTap>) {
        let tap = tap.get();
        let body = tap.take();
        self.errors += self
            .inner
            .read_stream(body.chunks(), tap.trace_events())
            .errors;
    }

    /// Hands the whole turn to the meter's writer thread when the stream has ended, instead of
    /// `read_stream`, `finish` and recording here: `event` (the outer call's mapping, as
    /// `Session.model_call` takes it, converted and validated now: its id and time are fixed
    /// here), what `tap` kept of the stream (taken from it) and `outcome` as for `read_stream`
    /// and `finish`. The writer reads the trace and records the outer call, then its steps as
    /// its children, all in `session`; what it cannot read is counted under `source` in
    /// `stats()["integration_errors"]`. Returns `False`, having done nothing, where the turn
    /// cannot be handed over: `session` is not a `Session`, or the meter writes each event as
    /// it is recorded (`durability="sync"`). Waits for room in a full queue. Raises what
    /// `Session.model_call` would raise for `event`, and `LedgerError` for a closed meter.
    fn hand_over(
        &self,
        py: Python<'_>,
        session: &Bound<'_, PyAny>,
        event: &Bound<'_, PyAny>,
        tap: &Bound<'_, StreamTap>,
        outcome: &str,
        source: &str,
    ) -> PyResult<bool> {
        let Ok(session) = session.downcast::<Session>() else {
            return Ok(false);
        };
        let (recorder, fields) = session.get().deferred_target();
        if recorder.durability() != Durability::Batch {
            return Ok(false);
        }
        let outcome = parse_outcome(outcome)?;
        let map = super::convert::to_map("event", event)?;
        let mut outer = CoreEvent::from_map(&map)?;
        if outer.kind != EventKind::ModelCall {
            return Err(invalid("event", "the outer call must be a model_call"));
        }
        fields.fill(&mut outer);
        outer.complete()?;
        let tap = tap.get();
        let turn = AgentTurn {
            outer,
            body: tap.take(),
            traces: tap.trace_events(),
            outcome,
            venue: self.venue.clone(),
        };
        let deferred = Deferred {
            source: source.into(),
            places: Deferred::places_for(turn.events_at_most(), turn.held_bytes()),
            build: Box::new(move || {
                let TurnEvents {
                    mut events,
                    failures,
                } = turn.events();
                for step in events.iter_mut().skip(1) {
                    fields.fill(step);
                }
                Ok(Built { events, failures })
            }),
        };
        if let Err(back) = recorder.try_defer(deferred)? {
            py.detach(|| recorder.defer(back))?;
        }
        Ok(true)
    }

    /// Ends the turn (`outcome`: "complete", "error" or "cancelled"); returns how many steps
    /// it had, each now finished (those cut off with `status` "error", or "cancelled").
    fn finish(&mut self, outcome: &str) -> PyResult<usize> {
        let outcome = parse_outcome(outcome)?;
        let steps = self.inner.finish(outcome);
        self.finished.extend(steps);
        Ok(self.finished.len())
    }

    /// Steps cut off by a stream that ended (or failed) without their output.
    #[getter]
    fn unfinished(&self) -> usize {
        self.inner.unfinished()
    }

    /// Trace parts that could not be read.
    #[getter]
    fn errors(&self) -> usize {
        self.errors
    }

    /// Records the finished steps in `session`, each a child of `parent_id`; returns the
    /// failures (a step that cannot be recorded is left out, the others are recorded).
    #[pyo3(signature = (session, parent_id = None))]
    fn record(
        &mut self,
        py: Python<'_>,
        session: &Bound<'_, Session>,
        parent_id: Option<&str>,
    ) -> Vec<PyErr> {
        let steps = std::mem::take(&mut self.finished);
        session
            .get()
            .record_steps(py, steps, parent_id.map(Text::from))
    }

    /// The finished steps as event mappings (`Session.record`'s shape), for a recording target
    /// that is not a `Session`.
    fn steps<'py>(&mut self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let steps = std::mem::take(&mut self.finished);
        steps.iter().map(|e| step_dict(py, e)).collect()
    }
}

fn parse_outcome(outcome: &str) -> PyResult<Outcome> {
    Ok(match outcome {
        "complete" => Outcome::Complete,
        "error" => Outcome::Error,
        "cancelled" => Outcome::Cancelled,
        other => {
            return Err(PyValueError::new_err(format!(
                "outcome must be \"complete\", \"error\" or \"cancelled\", not {other:?}"
            )))
        }
    })
}

fn step_dict<'py>(py: Python<'py>, e: &CoreEvent) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("kind", e.kind.as_str())?;
    if e.kind == EventKind::ModelCall {
        d.set_item("provider", e.provider.as_deref())?;
        d.set_item("model", e.model.as_deref())?;
        d.set_item("api", e.api.as_deref())?;
        if let Some(v) = &e.venue {
            d.set_item("venue", &**v)?;
        }
        if let Some(n) = e.input_tokens {
            d.set_item("input_tokens", n)?;
        }
        if let Some(n) = e.output_tokens {
            d.set_item("output_tokens", n)?;
        }
    } else {
        d.set_item("tool", e.tool.as_deref())?;
        d.set_item("tool_kind", e.tool_kind.as_deref())?;
        d.set_item("effect", e.effect.as_deref())?;
    }
    d.set_item("attrs", super::convert::map_to_py(py, &e.attrs)?)?;
    d.set_item("ts", e.ts)?;
    d.set_item("duration_ns", e.duration_ns)?;
    d.set_item("status", e.status.as_deref())?;
    Ok(d)
}
