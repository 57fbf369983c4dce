//! A borrowed view of one ledger record, for the columnar loader ([`crate::stored::columns`]).
//!
//! [`crate::stored::rows::parse_record`] builds a full [`crate::event::Event`] (every field owned,
//! `attrs` and `request` as JSON trees, evidence as shared strings): right for an `EventTable`,
//! wasteful for a report that reads a dozen scalar fields of a million events. This view
//! deserialises the same record (docs/ledger-format.md) straight from the text, borrowing the
//! strings, taking `attrs` and `request` as their canonical JSON text (a slice of the record,
//! not a tree) and skipping `evidence`, about three times faster. The record
//! is still checked: `kind`, `id`, `ts`, the classification flags and tags must be present and
//! well-formed, or the load fails with `Error::Integrity` naming the seq.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::event::EventKind;
use crate::event::{Holder, StateKind, StateKinds, Tag};

#[derive(Deserialize)]
struct RecordView<'a> {
    #[serde(borrow)]
    event: EventView<'a>,
    #[serde(borrow)]
    classification: ClassView<'a>,
}

type S<'a> = Option<Cow<'a, str>>;

#[derive(Deserialize)]
pub struct EventView<'a> {
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    pub ts: i64,
    #[serde(default)]
    pub duration_ns: Option<i64>,
    #[serde(default, borrow)]
    pub session_id: S<'a>,
    #[serde(default, borrow)]
    pub parent_id: S<'a>,
    #[serde(default, borrow)]
    pub agent: S<'a>,
    #[serde(default, borrow)]
    pub tenant: S<'a>,
    #[serde(default, borrow)]
    pub venue: S<'a>,
    #[serde(default, borrow)]
    pub status: S<'a>,
    #[serde(default, borrow)]
    pub runtime: S<'a>,
    #[serde(default, borrow)]
    pub runtime_session_id: S<'a>,
    #[serde(default, borrow)]
    pub provider: S<'a>,
    #[serde(default, borrow)]
    pub model: S<'a>,
    #[serde(default, borrow)]
    pub api: S<'a>,
    #[serde(default, borrow)]
    pub endpoint: S<'a>,
    #[serde(default, borrow)]
    pub tool: S<'a>,
    #[serde(default, borrow)]
    pub tool_kind: S<'a>,
    #[serde(default, borrow)]
    pub effect: S<'a>,
    #[serde(default, borrow)]
    pub mcp_session_id: S<'a>,
    #[serde(default, borrow)]
    pub op: S<'a>,
    #[serde(default, borrow)]
    pub store: S<'a>,
    #[serde(default, borrow)]
    pub holder: S<'a>,
    #[serde(default, borrow)]
    pub scope: S<'a>,
    #[serde(default, borrow)]
    pub key: S<'a>,
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    #[serde(default)]
    pub bytes: Option<u64>,
    /// The canonical JSON text of `request` and `attrs`, as written in the record.
    #[serde(default, borrow)]
    request: Option<&'a RawValue>,
    #[serde(default, borrow)]
    attrs: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ClassView<'a> {
    consumes_state: bool,
    creates_state: bool,
    #[serde(borrow)]
    tag: Cow<'a, str>,
    #[serde(default, borrow)]
    state_holder: S<'a>,
    /// Absent in records written before state kinds existed.
    #[serde(default, borrow)]
    state_kinds: Vec<Cow<'a, str>>,
    session_stateful: bool,
    #[serde(borrow)]
    ruleset: Cow<'a, str>,
    #[serde(borrow)]
    ruleset_digest: Cow<'a, str>,
    #[allow(dead_code)]
    evidence: IgnoredAny,
}

/// What the loader takes from one record.
pub struct Parsed<'a> {
    pub kind: EventKind,
    pub event: EventView<'a>,
    pub tag: Tag,
    pub consumes_state: bool,
    pub creates_state: bool,
    pub session_stateful: bool,
    pub state_holder: Option<Holder>,
    pub state_kinds: StateKinds,
    pub ruleset: Cow<'a, str>,
    /// The digest of the ruleset's evidence catalogue (tells rulesets of one name apart).
    pub ruleset_digest: Cow<'a, str>,
    /// The canonical JSON of `request` (`None`: absent) and of `attrs` (`None`: absent or
    /// empty), for re-classification ([`crate::stored::fields`]).
    pub request: Option<Cow<'a, str>>,
    pub attrs: Option<Cow<'a, str>>,
}

/// Parses the record at `seq`.
pub fn parse(seq: u64, text: &str) -> Result<Parsed<'_>> {
    let bad = |what: String| Error::Integrity(format!("record at seq {seq}: {what}"));
    let r: RecordView<'_> = serde_json::from_str(text).map_err(|e| bad(format!("{e}")))?;
    let request = r.event.request.map(|v| Cow::Borrowed(v.get()));
    let attrs = r
        .event
        .attrs
        .map(RawValue::get)
        .filter(|t| *t != "{}")
        .map(Cow::Borrowed);
    let kind = EventKind::parse(&r.event.kind).map_err(|e| bad(e.to_string()))?;
    let tag = match &*r.classification.tag {
        "stateless" => Tag::Stateless,
        "stateful" => Tag::Stateful,
        other => return Err(bad(format!("classification: bad tag {other:?}"))),
    };
    let state_holder = match r.classification.state_holder.as_deref() {
        None => None,
        Some("provider") => Some(Holder::Provider),
        Some("client") => Some(Holder::Client),
        Some("unknown") => Some(Holder::Unknown),
        Some(other) => return Err(bad(format!("classification: bad state_holder {other:?}"))),
    };
    let state_kinds = r
        .classification
        .state_kinds
        .iter()
        .map(|k| StateKind::parse(k))
        .collect::<Result<StateKinds>>()
        .map_err(|_| {
            bad(format!(
                "classification: bad state_kinds {:?}",
                r.classification.state_kinds
            ))
        })?;
    Ok(Parsed {
        kind,
        tag,
        consumes_state: r.classification.consumes_state,
        creates_state: r.classification.creates_state,
        session_stateful: r.classification.session_stateful,
        state_holder,
        state_kinds,
        ruleset: r.classification.ruleset,
        ruleset_digest: r.classification.ruleset_digest,
        request,
        attrs,
        event: r.event,
    })
}

impl<'a> Parsed<'a> {
    /// The same view of an event already in memory.
    pub fn of(e: &'a crate::event::Event, c: &'a crate::event::Classification) -> Self {
        Parsed {
            kind: e.kind,
            event: EventView {
                kind: Cow::Borrowed(e.kind.as_str()),
                id: Cow::Borrowed(&*e.id),
                ts: e.ts,
                duration_ns: e.duration_ns,
                session_id: e.session_id.as_deref().map(Cow::Borrowed),
                parent_id: e.parent_id.as_deref().map(Cow::Borrowed),
                agent: e.agent.as_deref().map(Cow::Borrowed),
                tenant: e.tenant.as_deref().map(Cow::Borrowed),
                venue: e.venue.as_deref().map(Cow::Borrowed),
                status: e.status.as_deref().map(Cow::Borrowed),
                runtime: e.runtime.as_deref().map(Cow::Borrowed),
                runtime_session_id: e.runtime_session_id.as_deref().map(Cow::Borrowed),
                provider: e.provider.as_deref().map(Cow::Borrowed),
                model: e.model.as_deref().map(Cow::Borrowed),
                api: e.api.as_deref().map(Cow::Borrowed),
                endpoint: e.endpoint.as_deref().map(Cow::Borrowed),
                tool: e.tool.as_deref().map(Cow::Borrowed),
                tool_kind: e.tool_kind.as_deref().map(Cow::Borrowed),
                effect: e.effect.as_deref().map(Cow::Borrowed),
                mcp_session_id: e.mcp_session_id.as_deref().map(Cow::Borrowed),
                op: e.op.as_deref().map(Cow::Borrowed),
                store: e.store.as_deref().map(Cow::Borrowed),
                holder: e.holder.as_deref().map(Cow::Borrowed),
                scope: e.scope.as_deref().map(Cow::Borrowed),
                key: e.key.as_deref().map(Cow::Borrowed),
                input_tokens: e.input_tokens,
                output_tokens: e.output_tokens,
                cached_tokens: e.cached_tokens,
                bytes: e.bytes,
                request: None,
                attrs: None,
            },
            tag: c.tag,
            consumes_state: c.consumes_state,
            creates_state: c.creates_state,
            session_stateful: c.session_stateful,
            state_holder: c.state_holder,
            state_kinds: c.state_kinds,
            ruleset: Cow::Borrowed(&*c.ruleset),
            ruleset_digest: Cow::Borrowed(&*c.ruleset_digest),
            request: e.request.as_ref().map(|m| Cow::Owned(canonical_map(m))),
            attrs: (!e.attrs.is_empty()).then(|| Cow::Owned(canonical_map(&e.attrs))),
        }
    }
}

/// The canonical JSON of a validated mapping (the bytes its record holds).
fn canonical_map(m: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut out = String::new();
    crate::event::write_map(&mut out, m).expect("a validated mapping always encodes");
    out
}
