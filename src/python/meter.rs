//! `Meter`, `Session` and `ToolSpan`: the recording API. The record methods are the hot path:
//! they build and validate the event and hand it to the recorder; everything else happens on
//! the writer thread (see `crate::meter`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;

use super::pyrepr;
use pyo3::types::{PyDict, PyTuple};

use super::args::{
    opt_borrowed_str, opt_count, opt_i64, opt_known_text, opt_map, opt_text, req_str, req_text,
    Arg, KnownTexts,
};
use super::classification::Ruleset;
use super::convert;
use super::errors::invalid;
use super::event::Event;
use super::ledger::Ledger;
use crate::classify;
use crate::event::{new_uuid_v7, now_ns, Event as CoreEvent, EventKind, Recorded, Text};
use crate::ledger::{Durability, Store};
use crate::meter::{Recorder, SpanStats, DEFAULT_CAPACITY};

fn submit(py: Python<'_>, recorder: &Recorder, mut ev: CoreEvent) -> PyResult<Event> {
    ev.complete()?;
    push(py, recorder, recorder.wrap(ev))
}

/// Hands a completed event to the recorder.
#[inline(always)]
fn push(py: Python<'_>, recorder: &Recorder, rec: Arc<Recorded>) -> PyResult<Event> {
    match recorder.durability() {
        Durability::Batch => {
            if let Err(back) = recorder.try_push(Arc::clone(&rec))? {
                py.detach(|| recorder.push_blocking(back))?;
            }
        }
        Durability::Sync => super::interrupt::detach(py, || recorder.write_now(&rec))?,
    }
    Ok(Event {
        rec,
        session_tag: None,
    })
}

/// Records events into a ledger. `Meter()` keeps an in-memory ledger; `Meter(path)` opens or
/// creates a SQLite ledger file. `durability="batch"` (default) commits in the background
/// (`flush()` is a barrier; `close()` and interpreter exit flush); `"sync"` returns from each
/// record call after its commit.
#[pyclass(frozen, module = "statemeter")]
pub struct Meter {
    recorder: Arc<Recorder>,
    path: Option<PathBuf>,
}

impl Meter {
    fn warn_if_locks_lost(&self, py: Python<'_>) -> PyResult<()> {
        match self.recorder.store_here() {
            Some(store) => super::sql::warn_if_locks_lost(py, &store),
            None => Ok(()),
        }
    }
}

/// `stats()["spans"]` as a dict: seen, recorded, joined, errors, skipped (reason -> count).
pub fn span_stats<'py>(py: Python<'py>, s: &SpanStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("seen", s.seen)?;
    d.set_item("recorded", s.recorded)?;
    d.set_item("joined", s.joined)?;
    d.set_item("errors", s.errors)?;
    let skipped = PyDict::new(py);
    for (k, v) in &s.skipped {
        skipped.set_item(k, v)?;
    }
    d.set_item("skipped", skipped)?;
    Ok(d)
}

#[pymethods]
impl Meter {
    #[new]
    #[pyo3(
        signature = (path = None, *, ruleset = None, durability = "batch", capacity = None),
        text_signature = "(path=None, *, ruleset=None, durability='batch', capacity=16384)"
    )]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        ruleset: Option<&Bound<'_, Ruleset>>,
        durability: &str,
        capacity: Arg<'_, '_>,
    ) -> PyResult<Self> {
        let capacity = match super::args::opt_count("capacity", capacity)? {
            None => DEFAULT_CAPACITY,
            Some(n) => {
                usize::try_from(n).map_err(|_| invalid("capacity", format!("{n} is too large")))?
            }
        };
        let durability = match durability {
            "batch" => Durability::Batch,
            "sync" => Durability::Sync,
            other => {
                return Err(invalid(
                    "durability",
                    format!("{other:?} is not \"batch\" or \"sync\""),
                ))
            }
        };
        let ruleset = match ruleset {
            Some(r) => Arc::clone(&r.get().inner),
            None => classify::Ruleset::builtin_default(),
        };
        let p = path.clone();
        let store = super::interrupt::detach(py, move || Store::open(p.as_deref(), durability))?;
        // A file ledger's column store is kept up to date as the meter commits.
        let columns = path.as_ref().map(|_| {
            Arc::new(crate::stored::column_store::ColumnWriter::new())
                as Arc<dyn crate::meter::CommitObserver>
        });
        let recorder = Recorder::observed(
            Arc::new(Mutex::new(store)),
            ruleset,
            durability,
            capacity,
            columns,
        )?;
        Ok(Meter {
            recorder: Arc::new(recorder),
            path,
        })
    }

    /// Opens a session: `with meter.session("agent") as s:` records `session_start` on
    /// entry and `session_end` on exit (`status="error"` when an exception escaped).
    #[pyo3(signature = (agent = None, *, session_id = None, tenant = None, venue = None, runtime = None, runtime_session_id = None, attrs = None))]
    #[allow(clippy::too_many_arguments)]
    fn session(
        &self,
        agent: Arg<'_, '_>,
        session_id: Arg<'_, '_>,
        tenant: Arg<'_, '_>,
        venue: Arg<'_, '_>,
        runtime: Arg<'_, '_>,
        runtime_session_id: Arg<'_, '_>,
        attrs: Arg<'_, '_>,
    ) -> PyResult<Session> {
        if self.recorder.is_closed() {
            return Err(crate::error::Error::Ledger("the meter is closed".into()).into());
        }
        Ok(Session {
            recorder: Arc::clone(&self.recorder),
            session_id: opt_text("session_id", session_id)?.unwrap_or_else(|| new_uuid_v7().into()),
            agent: opt_text("agent", agent)?,
            tenant: opt_text("tenant", tenant)?,
            venue: opt_text("venue", venue)?,
            runtime: opt_text("runtime", runtime)?,
            runtime_session_id: opt_text("runtime_session_id", runtime_session_id)?,
            known_texts: Default::default(),
            attrs: opt_map("attrs", attrs)?.unwrap_or_default(),
            started: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            path: self.path.clone(),
        })
    }

    /// Records one raw event given as a mapping with the event fields (integrations use it).
    fn record(&self, py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<Event> {
        let map = convert::to_map("event", event)?;
        submit(py, &self.recorder, CoreEvent::from_map(&map)?)
    }

    /// Records raw event mappings all or nothing (integrations' imports use it): each is
    /// validated first, then all are appended in one transaction after every event recorded
    /// before; `ValidationError` (a bad event, or an id recorded with another payload) or
    /// `LedgerError` means none was recorded. Returns the events.
    fn _record_all(&self, py: Python<'_>, events: &Bound<'_, PyAny>) -> PyResult<Vec<Event>> {
        let mut batch = Vec::new();
        for (i, event) in events.try_iter()?.enumerate() {
            let map = convert::to_map(&format!("events[{i}]"), &event?)?;
            batch.push(CoreEvent::from_map(&map)?.finish()?);
        }
        let r = Arc::clone(&self.recorder);
        let recs = super::interrupt::detach(py, move || r.record_all(batch))?;
        Ok(recs
            .into_iter()
            .map(|rec| Event {
                rec,
                session_tag: None,
            })
            .collect())
    }

    /// Waits until every event recorded so far is committed. Raises `ValidationError` for
    /// events rejected since the last flush (an id re-used with a different payload) and
    /// `LedgerError` while commits fail (the events stay queued and are retried).
    /// Ctrl-C ends the wait (`KeyboardInterrupt`; the events stay queued).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        super::interrupt::flush(py, &self.recorder)?;
        self.warn_if_locks_lost(py)
    }

    /// Flushes and stops recording. Further record calls raise `LedgerError`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        // Wait interruptibly first; close() then only stops the writer threads.
        let flushed = match super::interrupt::flush(py, &self.recorder) {
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) => {
                return Err(e)
            }
            other => other,
        };
        let r = Arc::clone(&self.recorder);
        py.detach(move || r.close())?;
        self.warn_if_locks_lost(py)?;
        flushed
    }

    /// Counters: accepted, written, duplicates, rejected, failed_commits, dropped, pending,
    /// `integration_errors` (failures inside integrations, by source) and `spans` (what became
    /// of the OpenTelemetry spans given to the span processor and the OTLP import).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.recorder.stats();
        let d = PyDict::new(py);
        d.set_item("accepted", s.accepted)?;
        d.set_item("written", s.written)?;
        d.set_item("duplicates", s.duplicates)?;
        d.set_item("rejected", s.rejected)?;
        d.set_item("failed_commits", s.failed_commits)?;
        d.set_item("dropped", s.dropped)?;
        d.set_item("pending", s.pending)?;
        let errors = PyDict::new(py);
        for (k, v) in &s.integration_errors {
            errors.set_item(k, v)?;
        }
        d.set_item("integration_errors", errors)?;
        d.set_item("spans", span_stats(py, &s.spans)?)?;
        Ok(d)
    }

    /// Adds span outcomes to `stats()["spans"]` (the OpenTelemetry doors use it); not for users.
    /// `seen` is the sum of the others.
    fn _note_spans(
        &self,
        recorded: u64,
        joined: u64,
        errors: u64,
        skipped: std::collections::BTreeMap<String, u64>,
    ) {
        let seen = recorded + joined + errors + skipped.values().sum::<u64>();
        self.recorder.note_spans(&SpanStats {
            seen,
            recorded,
            joined,
            errors,
            skipped,
        });
    }

    /// An identity of the ledger writer shared by this meter and its sessions (integrations
    /// find the span processor of the same meter by it); not for users.
    fn _key(&self) -> usize {
        Arc::as_ptr(&self.recorder) as usize
    }

    /// Counts one failure inside an integration (see `statemeter._guard`); not for users.
    fn _note_integration_error(&self, source: &str) {
        self.recorder.note_integration_error(source);
    }

    /// The meter's ledger (reads through it flush the meter first).
    #[getter]
    fn ledger(&self) -> PyResult<Ledger> {
        Ok(Ledger::new(
            self.recorder.store()?,
            Some(Arc::clone(&self.recorder)),
            self.path.clone(),
        ))
    }

    #[getter]
    fn ruleset(&self, py: Python<'_>) -> Ruleset {
        Ruleset::of(py, Arc::clone(self.recorder.ruleset()))
    }

    #[getter]
    fn durability(&self) -> &'static str {
        match self.recorder.durability() {
            Durability::Batch => "batch",
            Durability::Sync => "sync",
        }
    }

    #[getter]
    fn closed(&self) -> bool {
        self.recorder.is_closed()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let s = self.recorder.stats();
        format!(
            "Meter({}, durability={}, ruleset={}, written={}, pending={})",
            self.path
                .as_ref()
                .map(|p| pyrepr::text(py, &p.display().to_string()))
                .unwrap_or_else(|| "<memory>".into()),
            pyrepr::text(py, self.durability()),
            pyrepr::text(py, self.recorder.ruleset().name()),
            s.written,
            s.pending
        )
    }
}

/// A session of one agent: events recorded through it carry its `session_id` and inherit
/// its `agent`, `tenant` and `venue` unless given.
#[pyclass(frozen, module = "statemeter")]
pub struct Session {
    recorder: Arc<Recorder>,
    session_id: Text,
    agent: Option<Text>,
    tenant: Option<Text>,
    venue: Option<Text>,
    runtime: Option<Text>,
    runtime_session_id: Option<Text>,
    /// The providers, models, apis and venues `model_call` was given (see `args::req_text`).
    known_texts: [KnownTexts; 4],
    attrs: serde_json::Map<String, serde_json::Value>,
    started: AtomicBool,
    ended: AtomicBool,
    /// The meter's ledger path (for `Session.meter`).
    path: Option<PathBuf>,
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    /// Fills the fields every recorded kind shares into `e` (in place: an event is large, and
    /// this is the hot path).
    fn base(
        &self,
        e: &mut CoreEvent,
        id: Arg<'_, '_>,
        ts: Arg<'_, '_>,
        duration_ns: Arg<'_, '_>,
        parent_id: Arg<'_, '_>,
        attrs: Arg<'_, '_>,
    ) -> PyResult<()> {
        if let Some(id) = opt_borrowed_str("id", id)? {
            if id.is_empty() {
                return Err(invalid("id", "must not be empty"));
            }
            e.id = id.into();
        }
        if let Some(ts) = opt_i64("ts", ts)? {
            e.ts = ts;
            e.ts_explicit = true;
        }
        e.duration_ns = opt_i64("duration_ns", duration_ns)?;
        e.parent_id = opt_text("parent_id", parent_id)?;
        if let Some(a) = opt_map("attrs", attrs)? {
            e.attrs = a;
        }
        e.session_id = Some(self.session_id.clone());
        e.agent = self.agent.clone();
        e.tenant = self.tenant.clone();
        Ok(())
    }

    fn boundary(
        &self,
        py: Python<'_>,
        kind: EventKind,
        status: Option<String>,
        id: Arg<'_, '_>,
        ts: Arg<'_, '_>,
    ) -> PyResult<Event> {
        let mut e = CoreEvent::new(kind);
        if let Some(id) = opt_borrowed_str("id", id)? {
            if id.is_empty() {
                return Err(invalid("id", "must not be empty"));
            }
            e.id = id.into();
        }
        if let Some(ts) = opt_i64("ts", ts)? {
            e.ts = ts;
            e.ts_explicit = true;
        }
        e.session_id = Some(self.session_id.clone());
        e.agent = self.agent.clone();
        e.tenant = self.tenant.clone();
        e.venue = self.venue.clone();
        e.runtime = self.runtime.clone();
        e.runtime_session_id = self.runtime_session_id.clone();
        if kind == EventKind::SessionStart {
            e.attrs = self.attrs.clone();
        } else {
            e.status = status.map(Into::into);
        }
        submit(py, &self.recorder, e)
    }
}

/// The keyword arguments of `Session.model_call`, in this order (see `super::keywords`).
pub const MODEL_CALL_KEYWORDS: [&str; 15] = [
    "provider",
    "model",
    "api",
    "venue",
    "request",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "duration_ns",
    "status",
    "endpoint",
    "attrs",
    "id",
    "ts",
    "parent_id",
];

/// A required argument (the fast path passes `None` for one not given).
fn required<'a, 'py>(field: &str, v: Arg<'a, 'py>) -> PyResult<&'a Bound<'py, PyAny>> {
    v.ok_or_else(|| invalid(field, "is required"))
}

impl Session {
    /// `model_call` with its arguments in [`MODEL_CALL_KEYWORDS`] order (`None`: not given).
    pub fn record_model_call(&self, py: Python<'_>, a: &[Arg<'_, '_>; 15]) -> PyResult<Event> {
        let [provider, model, api, venue, request, input_tokens, output_tokens, cached_tokens, duration_ns, status, endpoint, attrs, id, ts, parent_id] =
            *a;
        // Built where it will stay, filled in place (an event is large; moving it costs more
        // than filling it).
        let rec = self
            .recorder
            .new_event(EventKind::ModelCall, |e| -> PyResult<()> {
                self.base(e, id, ts, duration_ns, parent_id, attrs)?;
                e.provider = Some(req_text(
                    "provider",
                    required("provider", provider)?,
                    &self.known_texts[0],
                )?);
                e.model = Some(req_text(
                    "model",
                    required("model", model)?,
                    &self.known_texts[1],
                )?);
                e.api = Some(req_text(
                    "api",
                    required("api", api)?,
                    &self.known_texts[2],
                )?);
                e.venue =
                    opt_known_text("venue", venue, &self.known_texts[3], self.venue.as_ref())?;
                e.request = opt_map("request", request)?;
                e.input_tokens = opt_count("input_tokens", input_tokens)?;
                e.output_tokens = opt_count("output_tokens", output_tokens)?;
                e.cached_tokens = opt_count("cached_tokens", cached_tokens)?;
                e.status = opt_text("status", status)?;
                e.endpoint = opt_text("endpoint", endpoint)?;
                Ok(e.complete()?)
            })?;
        push(py, &self.recorder, rec)
    }
}

/// What a session fills into the events recorded in it, kept for events the writer builds
/// later ([`crate::meter::Deferred`]): the same fields the keyword methods fill.
#[derive(Clone, Debug)]
pub struct SessionFields {
    session_id: Text,
    agent: Option<Text>,
    tenant: Option<Text>,
    venue: Option<Text>,
}

impl SessionFields {
    /// Fills `e` as `Session.model_call` / `tool_call` do: the session, agent and tenant, and a
    /// model call's venue when it has none.
    pub fn fill(&self, e: &mut CoreEvent) {
        e.session_id = Some(self.session_id.clone());
        e.agent = self.agent.clone();
        e.tenant = self.tenant.clone();
        if e.kind == EventKind::ModelCall && e.venue.is_none() {
            e.venue = self.venue.clone();
        }
    }
}

impl Session {
    /// The recorder and the fields this session fills (for events built later).
    pub fn deferred_target(&self) -> (Arc<Recorder>, SessionFields) {
        (
            Arc::clone(&self.recorder),
            SessionFields {
                session_id: self.session_id.clone(),
                agent: self.agent.clone(),
                tenant: self.tenant.clone(),
                venue: self.venue.clone(),
            },
        )
    }
}

impl Meter {
    /// The recorder (for events built later, outside any session).
    pub fn recorder(&self) -> Arc<Recorder> {
        Arc::clone(&self.recorder)
    }
}

impl Session {
    /// Records events built in Rust (the inner steps a provider-managed runtime reported, see
    /// `crate::capture::agent_trace`) in this session, each a child of `parent_id`: the session
    /// fills `session_id`, `agent`, `tenant` and a model call's `venue` when the step has none,
    /// as the keyword methods do. Returns the failures: a step that fails validation is left
    /// out, the others are recorded. In batch mode the valid steps are queued together, under
    /// one acquisition of the recorder's lock (waiting for room only if the queue is full).
    pub fn record_steps(
        &self,
        py: Python<'_>,
        steps: Vec<CoreEvent>,
        parent_id: Option<Text>,
    ) -> Vec<PyErr> {
        let mut failures = Vec::new();
        let mut ready = Vec::with_capacity(steps.len());
        for mut e in steps {
            e.session_id = Some(self.session_id.clone());
            e.agent = self.agent.clone();
            e.tenant = self.tenant.clone();
            e.parent_id = parent_id.clone();
            if e.kind == EventKind::ModelCall && e.venue.is_none() {
                e.venue = self.venue.clone();
            }
            match e.complete() {
                Ok(()) => ready.push(self.recorder.wrap(e)),
                Err(err) => failures.push(err.into()),
            }
        }
        if self.recorder.durability() == Durability::Sync {
            for rec in ready {
                if let Err(err) = push(py, &self.recorder, rec) {
                    failures.push(err);
                }
            }
            return failures;
        }
        let n = ready.len();
        let rest = match self.recorder.try_push_all(ready) {
            Ok(rest) => rest,
            Err(err) => {
                // Closed: every step fails alike, as each would alone.
                failures.extend((0..n).map(|_| PyErr::from(err.clone())));
                return failures;
            }
        };
        for rec in rest {
            if let Err(err) = py.detach(|| self.recorder.push_blocking(rec)) {
                failures.push(err.into());
            }
        }
        failures
    }
}

#[pymethods]
impl Session {
    #[getter]
    fn session_id(&self) -> &str {
        &self.session_id
    }
    #[getter]
    fn agent(&self) -> Option<&str> {
        self.agent.as_deref()
    }
    #[getter]
    fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
    #[getter]
    fn venue(&self) -> Option<&str> {
        self.venue.as_deref()
    }
    #[getter]
    fn runtime(&self) -> Option<&str> {
        self.runtime.as_deref()
    }
    #[getter]
    fn runtime_session_id(&self) -> Option<&str> {
        self.runtime_session_id.as_deref()
    }
    /// The `Meter` this session records into (integrations count their failures on it).
    #[getter]
    fn meter(&self) -> Meter {
        Meter {
            recorder: Arc::clone(&self.recorder),
            path: self.path.clone(),
        }
    }

    /// Records one model call; returns the `Event`.
    #[pyo3(signature = (*, provider, model, api, venue = None, request = None, input_tokens = None, output_tokens = None, cached_tokens = None, duration_ns = None, status = None, endpoint = None, attrs = None, id = None, ts = None, parent_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn model_call(
        &self,
        py: Python<'_>,
        provider: &Bound<'_, PyAny>,
        model: &Bound<'_, PyAny>,
        api: &Bound<'_, PyAny>,
        venue: Arg<'_, '_>,
        request: Arg<'_, '_>,
        input_tokens: Arg<'_, '_>,
        output_tokens: Arg<'_, '_>,
        cached_tokens: Arg<'_, '_>,
        duration_ns: Arg<'_, '_>,
        status: Arg<'_, '_>,
        endpoint: Arg<'_, '_>,
        attrs: Arg<'_, '_>,
        id: Arg<'_, '_>,
        ts: Arg<'_, '_>,
        parent_id: Arg<'_, '_>,
    ) -> PyResult<Event> {
        self.record_model_call(
            py,
            &[
                Some(provider),
                Some(model),
                Some(api),
                venue,
                request,
                input_tokens,
                output_tokens,
                cached_tokens,
                duration_ns,
                status,
                endpoint,
                attrs,
                id,
                ts,
                parent_id,
            ],
        )
    }

    /// Records one finished tool call; returns the `Event`.
    #[pyo3(signature = (tool, *, tool_kind = None, effect = None, mcp_session_id = None, duration_ns = None, status = None, attrs = None, id = None, ts = None, parent_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn tool_call(
        &self,
        py: Python<'_>,
        tool: &Bound<'_, PyAny>,
        tool_kind: Arg<'_, '_>,
        effect: Arg<'_, '_>,
        mcp_session_id: Arg<'_, '_>,
        duration_ns: Arg<'_, '_>,
        status: Arg<'_, '_>,
        attrs: Arg<'_, '_>,
        id: Arg<'_, '_>,
        ts: Arg<'_, '_>,
        parent_id: Arg<'_, '_>,
    ) -> PyResult<Event> {
        let mut e = CoreEvent::new(EventKind::ToolCall);
        self.base(&mut e, id, ts, duration_ns, parent_id, attrs)?;
        e.tool = Some(req_str("tool", tool)?.into());
        e.tool_kind = opt_text("tool_kind", tool_kind)?;
        e.effect = opt_text("effect", effect)?;
        e.mcp_session_id = opt_text("mcp_session_id", mcp_session_id)?;
        e.status = opt_text("status", status)?;
        submit(py, &self.recorder, e)
    }

    /// Records one read, write or delete of agent state; returns the `Event`.
    #[pyo3(signature = (op, *, store, holder, scope = None, key = None, bytes = None, duration_ns = None, attrs = None, id = None, ts = None, parent_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn state_op(
        &self,
        py: Python<'_>,
        op: &Bound<'_, PyAny>,
        store: &Bound<'_, PyAny>,
        holder: &Bound<'_, PyAny>,
        scope: Arg<'_, '_>,
        key: Arg<'_, '_>,
        bytes: Arg<'_, '_>,
        duration_ns: Arg<'_, '_>,
        attrs: Arg<'_, '_>,
        id: Arg<'_, '_>,
        ts: Arg<'_, '_>,
        parent_id: Arg<'_, '_>,
    ) -> PyResult<Event> {
        let mut e = CoreEvent::new(EventKind::StateOp);
        self.base(&mut e, id, ts, duration_ns, parent_id, attrs)?;
        e.op = Some(req_str("op", op)?.into());
        e.store = Some(req_str("store", store)?.into());
        e.holder = Some(req_str("holder", holder)?.into());
        e.scope = opt_text("scope", scope)?;
        e.key = opt_text("key", key)?;
        e.bytes = opt_count("bytes", bytes)?;
        submit(py, &self.recorder, e)
    }

    /// Times one tool call: `with s.tool("search") as t: ...` records a `tool_call` with the
    /// elapsed `duration_ns` on exit (`status="error"` if an exception escaped). Add to
    /// `t.attrs` inside the block; `t.event` is the recorded event afterwards.
    #[pyo3(signature = (tool, *, tool_kind = None, effect = None, mcp_session_id = None, attrs = None, parent_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn tool(
        slf: Py<Self>,
        py: Python<'_>,
        tool: &Bound<'_, PyAny>,
        tool_kind: Arg<'_, '_>,
        effect: Arg<'_, '_>,
        mcp_session_id: Arg<'_, '_>,
        attrs: Arg<'_, '_>,
        parent_id: Arg<'_, '_>,
    ) -> PyResult<ToolSpan> {
        let d = PyDict::new(py);
        if let Some(a) = opt_map("attrs", attrs)? {
            for (k, v) in &a {
                d.set_item(k, convert::to_py(py, v)?)?;
            }
        }
        Ok(ToolSpan {
            session: slf,
            tool: req_str("tool", tool)?.into(),
            tool_kind: opt_text("tool_kind", tool_kind)?,
            effect: opt_text("effect", effect)?,
            mcp_session_id: opt_text("mcp_session_id", mcp_session_id)?,
            parent_id: opt_text("parent_id", parent_id)?,
            attrs: d.unbind(),
            started: Mutex::new(None),
            event: Mutex::new(None),
        })
    }

    /// Records a raw event mapping in this session (fills `session_id`, `agent`, `tenant`).
    fn record(&self, py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<Event> {
        let mut map = convert::to_map("event", event)?;
        map.entry("session_id")
            .or_insert_with(|| (*self.session_id).into());
        for (k, v) in [("agent", &self.agent), ("tenant", &self.tenant)] {
            if let Some(v) = v {
                map.entry(k).or_insert_with(|| (**v).into());
            }
        }
        submit(py, &self.recorder, CoreEvent::from_map(&map)?)
    }

    /// Records `session_start` (once); `with` does it for you. `ts` (int ns) and `id` are
    /// optional, as for the other record methods (replays and simulations set them).
    #[pyo3(signature = (*, ts = None, id = None))]
    fn start(&self, py: Python<'_>, ts: Arg<'_, '_>, id: Arg<'_, '_>) -> PyResult<Option<Event>> {
        if self.started.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        self.boundary(py, EventKind::SessionStart, None, id, ts)
            .map(Some)
    }

    /// Records `session_end` (once) with `status` (`"ok"`, `"error"` or `"cancelled"`);
    /// `ts` and `id` as for `start`.
    #[pyo3(signature = (status = "ok", *, ts = None, id = None))]
    fn end(
        &self,
        py: Python<'_>,
        status: &str,
        ts: Arg<'_, '_>,
        id: Arg<'_, '_>,
    ) -> PyResult<Option<Event>> {
        if self.ended.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        self.boundary(py, EventKind::SessionEnd, Some(status.to_owned()), id, ts)
            .map(Some)
    }

    fn __enter__(slf: Py<Self>, py: Python<'_>) -> PyResult<Py<Self>> {
        slf.get().start(py, None, None)?;
        Ok(slf)
    }

    #[pyo3(signature = (exc_type = None, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let failing = exc_type.is_some_and(|t| !t.is_none());
        let ended = self.end(py, if failing { "error" } else { "ok" }, None, None);
        keep_users_exception(py, failing, ended.map(|_| ()))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Session(session_id={}, agent={}, venue={}, runtime={})",
            pyrepr::text(py, &self.session_id),
            pyrepr::opt_text(py, self.agent.as_deref()),
            pyrepr::opt_text(py, self.venue.as_deref()),
            pyrepr::opt_text(py, self.runtime.as_deref()),
        )
    }
}

/// The result of a `with` block's `__exit__` that recorded its closing event: when the block
/// is leaving on an exception (`failing`), a failure to record (a closed meter, a storage
/// fault) must not replace the user's exception, so it is logged (logger `statemeter`) and the
/// user's exception propagates.
fn keep_users_exception(py: Python<'_>, failing: bool, recorded: PyResult<()>) -> PyResult<bool> {
    match recorded {
        Ok(()) => Ok(false),
        Err(e) if failing => {
            let logged = py
                .import("logging")
                .and_then(|m| m.call_method1("getLogger", ("statemeter",)))
                .and_then(|log| {
                    log.call_method1(
                        "warning",
                        (
                            "could not record the end of a block left on an exception: %s",
                            e.value(py),
                        ),
                    )
                });
            if let Err(log_error) = logged {
                log_error.write_unraisable(py, None);
            }
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// A running tool call (see `Session.tool`).
#[pyclass(frozen, module = "statemeter")]
pub struct ToolSpan {
    session: Py<Session>,
    tool: Text,
    tool_kind: Option<Text>,
    effect: Option<Text>,
    mcp_session_id: Option<Text>,
    parent_id: Option<Text>,
    attrs: Py<PyDict>,
    started: Mutex<Option<i64>>,
    event: Mutex<Option<Py<Event>>>,
}

#[pymethods]
impl ToolSpan {
    #[getter]
    fn attrs(&self, py: Python<'_>) -> Py<PyDict> {
        self.attrs.clone_ref(py)
    }

    /// The recorded `tool_call`, once the block has exited.
    #[getter]
    fn event(&self, py: Python<'_>) -> Option<Py<Event>> {
        self.event.lock().as_ref().map(|e| e.clone_ref(py))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        *slf.get().started.lock() = Some(now_ns());
        slf
    }

    #[pyo3(signature = (exc_type = None, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let end = now_ns();
        let start = self.started.lock().take().unwrap_or(end);
        let session = self.session.get();
        let mut e = CoreEvent::new(EventKind::ToolCall);
        session.base(&mut e, None, None, None, None, None)?;
        e.ts = start;
        e.ts_explicit = true;
        e.duration_ns = Some((end - start).max(0));
        e.tool = Some(self.tool.clone());
        e.tool_kind = self.tool_kind.clone();
        e.effect = self.effect.clone();
        e.mcp_session_id = self.mcp_session_id.clone();
        e.parent_id = self.parent_id.clone();
        e.attrs = convert::to_map("attrs", self.attrs.bind(py).as_any())?;
        if exc_type.is_some_and(|t| !t.is_none()) {
            e.status = Some("error".into());
        }
        let ev = match submit(py, &session.recorder, e) {
            Ok(ev) => ev,
            Err(e) => {
                return keep_users_exception(py, exc_type.is_some_and(|t| !t.is_none()), Err(e))
            }
        };
        *self.event.lock() = Some(Py::new(py, ev)?);
        Ok(false)
    }
}
