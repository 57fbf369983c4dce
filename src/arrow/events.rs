//! The events of an `EventTable` as Arrow record batches.
//!
//! Scalar and string columns come from [`EventColumns`] (the struct of arrays the report
//! engines scan); the nested parts it leaves out (`attrs`, `request`, `evidence`) and the
//! validity of the per-kind counts are read from the rows. The two halves are built on two
//! threads for big tables. Column order and types: [`schema`].
//!
//! State kinds (`state_kinds`, and `state` in each evidence item) are a closed set: their
//! dictionary is [`STATE_KINDS`], the same for every table, so a kind's code is its position
//! in name order (its bit in [`crate::event::StateKinds`]) and nothing needs re-coding when the
//! two halves are joined.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

use arrow_array::{ArrayRef, ListArray, RecordBatch, StructArray};
use arrow_buffer::{OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use serde_json::{Map, Value};

use crate::canonical;
use crate::error::Result;
use crate::event::EventKind;
use crate::event::{Holder, StateKinds, Tag};
use crate::stored::columns::{EventColumns, StrColumn, TextColumn, NULL};
use crate::stored::rows::Row;

use super::build::{
    booleans, dict_from_codes, dict_slice, dict_type, dict_values, enum_dict, field, int64, text,
    to_i64, ts_type,
};
use super::{chunks, internal, Batches};

/// Dictionary-encoded string fields of the event, in schema order (between `kind` and
/// `request`, then after the token counts).
const HEAD_STRS: &[&str] = &[
    "session_id",
    "parent_id",
    "agent",
    "tenant",
    "venue",
    "runtime",
    "runtime_session_id",
    "status",
    "provider",
    "model",
    "api",
    "endpoint",
];
const TOOL_STATE_STRS: &[&str] = &[
    "tool",
    "tool_kind",
    "effect",
    "mcp_session_id",
    "op",
    "store",
    "holder",
    "scope",
    "key",
];
const TAGS: [&str; 2] = ["stateless", "stateful"];
const HOLDERS: [&str; 3] = ["provider", "client", "unknown"];
/// The dictionary of `state_kinds` items and of evidence `state`: every kind, in name order
/// (the code of a kind is `kind as u8`).
pub const STATE_KINDS: [&str; 5] = [
    "content",
    "conversation",
    "environment",
    "memory",
    "runtime",
];

fn evidence_fields() -> Fields {
    Fields::from(vec![
        field("rule", dict_type(), false),
        field("tag", dict_type(), false),
        field("signal", dict_type(), false),
        field("explain", dict_type(), false),
        field("state", dict_type(), true),
    ])
}

/// The item of `state_kinds`: a kind name (never null).
fn state_kind_item() -> Arc<Field> {
    Arc::new(field("item", dict_type(), false))
}

fn evidence_item() -> Arc<Field> {
    Arc::new(field("item", DataType::Struct(evidence_fields()), false))
}

/// The events schema (the same for every table, filtered or not).
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut f = vec![
                field("seq", DataType::Int64, false),
                field("id", DataType::Utf8, false),
                field("ts", ts_type(), false),
                field("kind", dict_type(), false),
            ];
            f.extend(HEAD_STRS.iter().map(|n| field(n, dict_type(), true)));
            f.push(field("request", DataType::Utf8, true));
            for n in ["input_tokens", "output_tokens", "cached_tokens"] {
                f.push(field(n, DataType::Int64, true));
            }
            f.extend(TOOL_STATE_STRS.iter().map(|n| field(n, dict_type(), true)));
            f.push(field("bytes", DataType::Int64, true));
            f.push(field("duration_ns", DataType::Int64, true));
            f.push(field("attrs", DataType::Utf8, false));
            f.push(field("tag", dict_type(), false));
            f.push(field("session_tag", dict_type(), false));
            f.push(field("consumes_state", DataType::Boolean, false));
            f.push(field("creates_state", DataType::Boolean, false));
            f.push(field("state_holder", dict_type(), true));
            f.push(field(
                "state_kinds",
                DataType::List(state_kind_item()),
                false,
            ));
            f.push(field("session_stateful", DataType::Boolean, false));
            f.push(field("ruleset", dict_type(), false));
            f.push(field("ruleset_digest", dict_type(), false));
            f.push(field("evidence", DataType::List(evidence_item()), false));
            Arc::new(Schema::new(f))
        })
        .clone()
}

/// What [`EventColumns`] leaves out: JSON texts, evidence items, per-kind count validity.
#[derive(Default)]
struct Nested {
    attrs: TextColumn,
    request: TextColumn,
    has_request: Vec<bool>,
    has_tokens: Vec<bool>,
    has_bytes: Vec<bool>,
    /// `len + 1` offsets into the evidence items.
    ev_offsets: Vec<usize>,
    ev_rule: StrColumn,
    ev_tag: StrColumn,
    ev_signal: StrColumn,
    ev_explain: StrColumn,
    /// Each evidence item's state kind (`kind as u8`), if any.
    ev_state: Vec<Option<u8>>,
}

fn write_object(out: &mut String, map: &Map<String, Value>) -> Result<()> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| canonical::cmp_keys(a, b));
    out.push('{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        canonical::write_str(out, k);
        out.push(':');
        canonical::write_value(out, &map[k])?;
    }
    out.push('}');
    Ok(())
}

impl Nested {
    fn from_rows(rows: &[Row]) -> Result<Nested> {
        let mut n = Nested {
            ev_offsets: Vec::with_capacity(rows.len() + 1),
            has_request: Vec::with_capacity(rows.len()),
            has_tokens: Vec::with_capacity(rows.len()),
            has_bytes: Vec::with_capacity(rows.len()),
            ..Default::default()
        };
        n.attrs.offsets.reserve(rows.len());
        n.request.offsets.reserve(rows.len());
        n.ev_offsets.push(0);
        // Loaded events share their evidence with the ruleset catalogue: the four codes of
        // an evidence are computed once per distinct `Arc<Evidence>`.
        let mut seen: HashMap<usize, [u32; 4], BuildHasherDefault<PtrHasher>> = HashMap::default();
        let mut buf = String::new();
        for r in rows {
            let e = &r.rec.event;
            if e.attrs.is_empty() {
                n.attrs.push("{}");
            } else {
                buf.clear();
                write_object(&mut buf, &e.attrs)?;
                n.attrs.push(&buf);
            }
            match &e.request {
                Some(req) => {
                    buf.clear();
                    write_object(&mut buf, req)?;
                    n.request.push(&buf);
                }
                None => n.request.push(""),
            }
            n.has_request.push(e.request.is_some());
            n.has_tokens.push(e.kind == EventKind::ModelCall);
            n.has_bytes.push(e.kind == EventKind::StateOp);
            for ev in r.rec.classification().evidence.iter() {
                let codes = *seen.entry(Arc::as_ptr(ev) as usize).or_insert_with(|| {
                    [
                        n.ev_rule.intern(&ev.rule),
                        n.ev_tag.intern(ev.tag.as_str()),
                        n.ev_signal.intern(&ev.signal),
                        n.ev_explain.intern(&ev.explain),
                    ]
                });
                n.ev_rule.codes.push(codes[0]);
                n.ev_tag.codes.push(codes[1]);
                n.ev_signal.codes.push(codes[2]);
                n.ev_explain.codes.push(codes[3]);
                n.ev_state.push(ev.state.map(|k| k as u8));
            }
            n.ev_offsets.push(n.ev_rule.codes.len());
        }
        Ok(n)
    }
}

impl Nested {
    /// Appends the rows of `b` (built from the rows after this one's).
    fn append(&mut self, b: Nested) {
        merge_text(&mut self.attrs, b.attrs);
        merge_text(&mut self.request, b.request);
        self.has_request.extend(b.has_request);
        self.has_tokens.extend(b.has_tokens);
        self.has_bytes.extend(b.has_bytes);
        let base = *self.ev_offsets.last().expect("len + 1 offsets");
        self.ev_offsets
            .extend(b.ev_offsets[1..].iter().map(|o| o + base));
        merge_str(&mut self.ev_rule, b.ev_rule);
        merge_str(&mut self.ev_tag, b.ev_tag);
        merge_str(&mut self.ev_signal, b.ev_signal);
        merge_str(&mut self.ev_explain, b.ev_explain);
        self.ev_state.extend(b.ev_state);
    }
}

/// A hasher for pointer keys (already well distributed but for their low, aligned bits).
#[derive(Default)]
struct PtrHasher(u64);

impl Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64 >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Dictionaries shared by all batches of one table.
struct Dicts {
    strs: Vec<(&'static str, ArrayRef)>,
    kind: ArrayRef,
    tag: ArrayRef,
    holder: ArrayRef,
    state_kind: ArrayRef,
    ruleset: ArrayRef,
    ruleset_digest: ArrayRef,
    ev: [ArrayRef; 4],
}

/// Builds the batches of `rows` (in their order).
pub fn batches(rows: &[Row]) -> Result<Batches> {
    let (cols, nested) = if rows.len() >= 20_000 {
        // Two threads, each reading half of the rows (reading the rows' scattered heap objects
        // is the cost); the halves' dictionaries are then merged.
        let (first, second) = rows.split_at(rows.len() / 2);
        let half = |rows: &[Row]| -> Result<(EventColumns, Nested)> {
            Ok((EventColumns::from_rows(rows), Nested::from_rows(rows)?))
        };
        let (a, b) = std::thread::scope(|s| {
            let other = s.spawn(|| half(second));
            (
                half(first),
                other.join().expect("the column builder panicked"),
            )
        });
        let ((mut cols, mut nested), (cols_b, nested_b)) = (a?, b?);
        merge_columns(&mut cols, cols_b);
        nested.append(nested_b);
        (cols, nested)
    } else {
        (EventColumns::from_rows(rows), Nested::from_rows(rows)?)
    };
    from_parts(&cols, &nested)
}

/// Appends `b`'s codes to `a`, re-coded into `a`'s dictionary.
fn merge_str(a: &mut StrColumn, b: StrColumn) {
    let map: Vec<u32> = b.values.iter().map(|v| a.intern(v)).collect();
    a.codes.extend(
        b.codes
            .iter()
            .map(|&c| if c == NULL { NULL } else { map[c as usize] }),
    );
}

fn merge_text(a: &mut TextColumn, b: TextColumn) {
    let base = a.data.len();
    a.data.push_str(&b.data);
    a.offsets.extend(b.offsets[1..].iter().map(|o| o + base));
}

/// Appends the rows of `b` (built from the rows after `a`'s) to `a`.
fn merge_columns(a: &mut EventColumns, b: EventColumns) {
    a.len += b.len;
    a.seq.extend(b.seq);
    merge_text(&mut a.id, b.id);
    a.kind.extend(b.kind);
    a.ts.extend(b.ts);
    a.duration_ns.extend(b.duration_ns);
    for (x, y) in [
        (&mut a.session_id, b.session_id),
        (&mut a.parent_id, b.parent_id),
        (&mut a.agent, b.agent),
        (&mut a.tenant, b.tenant),
        (&mut a.venue, b.venue),
        (&mut a.status, b.status),
        (&mut a.runtime, b.runtime),
        (&mut a.runtime_session_id, b.runtime_session_id),
        (&mut a.provider, b.provider),
        (&mut a.model, b.model),
        (&mut a.api, b.api),
        (&mut a.endpoint, b.endpoint),
        (&mut a.tool, b.tool),
        (&mut a.tool_kind, b.tool_kind),
        (&mut a.effect, b.effect),
        (&mut a.mcp_session_id, b.mcp_session_id),
        (&mut a.op, b.op),
        (&mut a.store, b.store),
        (&mut a.holder, b.holder),
        (&mut a.scope, b.scope),
        (&mut a.key, b.key),
        (&mut a.ruleset, b.ruleset),
        (&mut a.ruleset_digest, b.ruleset_digest),
    ] {
        merge_str(x, y);
    }
    a.input_tokens.extend(b.input_tokens);
    a.output_tokens.extend(b.output_tokens);
    a.cached_tokens.extend(b.cached_tokens);
    a.bytes.extend(b.bytes);
    a.tag.extend(b.tag);
    a.session_tag.extend(b.session_tag);
    a.consumes_state.extend(b.consumes_state);
    a.creates_state.extend(b.creates_state);
    a.session_stateful.extend(b.session_stateful);
    a.state_holder.extend(b.state_holder);
    a.state_kinds.extend(b.state_kinds);
    debug_assert!(a.seq.len() == a.len && a.session_id.codes.len() == a.len);
}

fn from_parts(cols: &EventColumns, n: &Nested) -> Result<Batches> {
    let schema = schema();
    let strs = HEAD_STRS
        .iter()
        .chain(TOOL_STATE_STRS)
        .map(|&name| {
            let col = cols.str_column(name).expect("a known string field");
            (name, dict_values(&col.values))
        })
        .collect();
    let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    let d = Dicts {
        strs,
        kind: dict_values(&kinds),
        tag: dict_values(&TAGS),
        holder: dict_values(&HOLDERS),
        state_kind: dict_values(&STATE_KINDS),
        ruleset: dict_values(&cols.ruleset.values),
        ruleset_digest: dict_values(&cols.ruleset_digest.values),
        ev: [
            dict_values(&n.ev_rule.values),
            dict_values(&n.ev_tag.values),
            dict_values(&n.ev_signal.values),
            dict_values(&n.ev_explain.values),
        ],
    };
    let ranges: Vec<(usize, usize)> = chunks(cols.len).collect();
    let build = |rs: &[(usize, usize)]| -> Result<Vec<RecordBatch>> {
        rs.iter()
            .map(|&(a, b)| batch(&schema, cols, n, &d, a, b))
            .collect()
    };
    let batches = if ranges.len() >= 4 {
        // Two threads, each building a contiguous half of the batches.
        let (first, second) = ranges.split_at(ranges.len() / 2);
        let (x, y) = std::thread::scope(|s| {
            let other = s.spawn(|| build(second));
            let x = build(first);
            (x, other.join().expect("the batch builder panicked"))
        });
        let mut all = x?;
        all.extend(y?);
        all
    } else {
        build(&ranges)?
    };
    Ok(Batches { schema, batches })
}

/// The classification columns of the events schema (`tag`, `session_tag`, `consumes_state`,
/// `creates_state`, `state_holder`, `state_kinds`, `session_stateful`, `ruleset`,
/// `ruleset_digest`, `evidence`), in its types: row `i` has the classification
/// `distinct[rows[i]]` (a batch holds few distinct ones: each is encoded once, then copied by
/// index into pre-sized columns).
pub fn classification_arrays(
    distinct: &[crate::event::Classification],
    rows: &[u32],
    session_tags: &[Tag],
) -> Result<Vec<(&'static str, ArrayRef)>> {
    let mut ruleset = StrColumn::default();
    let mut digest = StrColumn::default();
    let mut n = Nested::default();
    // Per distinct classification: its ruleset codes and its evidence items' codes.
    let mut seen: HashMap<usize, [u32; 4], BuildHasherDefault<PtrHasher>> = HashMap::default();
    let mut items: Vec<([u32; 4], u32)> = Vec::new();
    let mut own: Vec<(u32, u32, usize, usize)> = Vec::with_capacity(distinct.len());
    for x in distinct {
        let from = items.len();
        for ev in x.evidence.iter() {
            let codes = *seen.entry(Arc::as_ptr(ev) as usize).or_insert_with(|| {
                [
                    n.ev_rule.intern(&ev.rule),
                    n.ev_tag.intern(ev.tag.as_str()),
                    n.ev_signal.intern(&ev.signal),
                    n.ev_explain.intern(&ev.explain),
                ]
            });
            items.push((codes, ev.state.map_or(NULL, |k| u32::from(k as u8))));
        }
        own.push((
            ruleset.intern(&x.ruleset),
            digest.intern(&x.ruleset_digest),
            from,
            items.len(),
        ));
    }
    let total: usize = rows
        .iter()
        .map(|&r| own[r as usize].3 - own[r as usize].2)
        .sum();
    let mut ev: [Vec<u32>; 5] = std::array::from_fn(|_| Vec::with_capacity(total));
    n.ev_offsets = Vec::with_capacity(rows.len() + 1);
    n.ev_offsets.push(0);
    ruleset.codes.reserve(rows.len());
    digest.codes.reserve(rows.len());
    for &r in rows {
        let (rs, dg, a, b) = own[r as usize];
        ruleset.codes.push(rs);
        digest.codes.push(dg);
        for (codes, state) in &items[a..b] {
            for (col, &code) in ev.iter_mut().zip(codes) {
                col.push(code);
            }
            ev[4].push(*state);
        }
        n.ev_offsets.push(ev[0].len());
    }
    let [rule, tag, signal, explain, state] = ev;
    n.ev_rule.codes = rule;
    n.ev_tag.codes = tag;
    n.ev_signal.codes = signal;
    n.ev_explain.codes = explain;
    n.ev_state = state
        .into_iter()
        .map(|c| (c != NULL).then_some(c as u8))
        .collect();
    let d = Dicts {
        strs: Vec::new(),
        kind: dict_values::<&str>(&[]),
        tag: dict_values(&TAGS),
        holder: dict_values(&HOLDERS),
        state_kind: dict_values(&STATE_KINDS),
        ruleset: dict_values(&ruleset.values),
        ruleset_digest: dict_values(&digest.values),
        ev: [
            dict_values(&n.ev_rule.values),
            dict_values(&n.ev_tag.values),
            dict_values(&n.ev_signal.values),
            dict_values(&n.ev_explain.values),
        ],
    };
    let per_row = |f: &dyn Fn(&crate::event::Classification) -> bool| -> ArrayRef {
        let each: Vec<bool> = distinct.iter().map(f).collect();
        let bits =
            arrow_buffer::BooleanBuffer::collect_bool(rows.len(), |i| each[rows[i] as usize]);
        Arc::new(arrow_array::BooleanArray::new(bits, None))
    };
    let tags: Vec<Option<u8>> = distinct.iter().map(|x| tag_code(x.tag)).collect();
    let holders: Vec<Option<u8>> = distinct
        .iter()
        .map(|x| x.state_holder.map(holder_code))
        .collect();
    let kinds: Vec<StateKinds> = rows
        .iter()
        .map(|&r| distinct[r as usize].state_kinds)
        .collect();
    let len = rows.len();
    Ok(vec![
        (
            "tag",
            enum_dict(rows.iter().map(|&r| tags[r as usize]), &d.tag)?,
        ),
        (
            "session_tag",
            enum_dict(session_tags.iter().map(|&t| tag_code(t)), &d.tag)?,
        ),
        ("consumes_state", per_row(&|x| x.consumes_state)),
        ("creates_state", per_row(&|x| x.creates_state)),
        (
            "state_holder",
            enum_dict(rows.iter().map(|&r| holders[r as usize]), &d.holder)?,
        ),
        ("state_kinds", state_kinds(&kinds, &d.state_kind)?),
        ("session_stateful", per_row(&|x| x.session_stateful)),
        ("ruleset", dict_slice(&ruleset, &d.ruleset, 0, len)?),
        (
            "ruleset_digest",
            dict_slice(&digest, &d.ruleset_digest, 0, len)?,
        ),
        ("evidence", evidence(&n, &d, 0, len)?),
    ])
}

fn holder_code(h: Holder) -> u8 {
    match h {
        Holder::Provider => 0,
        Holder::Client => 1,
        Holder::Unknown => 2,
    }
}

fn tag_code(t: Tag) -> Option<u8> {
    Some(match t {
        Tag::Stateless => 0,
        Tag::Stateful => 1,
    })
}

fn batch(
    schema: &SchemaRef,
    c: &EventColumns,
    n: &Nested,
    d: &Dicts,
    a: usize,
    b: usize,
) -> Result<RecordBatch> {
    let dict = |name: &str| -> Result<ArrayRef> {
        let (_, values) = d.strs.iter().find(|(n, _)| *n == name).expect("known");
        dict_slice(c.str_column(name).expect("known"), values, a, b)
    };
    let counts = |v: &[u64], valid: &[bool]| {
        int64(
            v[a..b].iter().map(|&x| to_i64(x)).collect(),
            Some(valid[a..b].to_vec()),
        )
    };
    let kind_pos = |k: EventKind| EventKind::ALL.iter().position(|&x| x == k).unwrap() as u8;
    let mut arrays: Vec<ArrayRef> = vec![
        int64(c.seq[a..b].iter().map(|&s| to_i64(s)).collect(), None),
        text(&c.id.data, &c.id.offsets[a..=b], None)?,
        super::build::timestamps(c.ts[a..b].to_vec(), None),
        enum_dict(c.kind[a..b].iter().map(|&k| Some(kind_pos(k))), &d.kind)?,
    ];
    for name in HEAD_STRS {
        arrays.push(dict(name)?);
    }
    arrays.push(text(
        &n.request.data,
        &n.request.offsets[a..=b],
        Some(&n.has_request[a..b]),
    )?);
    arrays.push(counts(&c.input_tokens, &n.has_tokens));
    arrays.push(counts(&c.output_tokens, &n.has_tokens));
    arrays.push(counts(&c.cached_tokens, &n.has_tokens));
    for name in TOOL_STATE_STRS {
        arrays.push(dict(name)?);
    }
    arrays.push(counts(&c.bytes, &n.has_bytes));
    arrays.push(int64(
        c.duration_ns[a..b].iter().map(|d| d.unwrap_or(0)).collect(),
        Some(c.duration_ns[a..b].iter().map(Option::is_some).collect()),
    ));
    arrays.push(text(&n.attrs.data, &n.attrs.offsets[a..=b], None)?);
    arrays.push(enum_dict(c.tag[a..b].iter().map(|&t| tag_code(t)), &d.tag)?);
    arrays.push(enum_dict(
        c.session_tag[a..b].iter().map(|&t| tag_code(t)),
        &d.tag,
    )?);
    arrays.push(booleans(&c.consumes_state[a..b]));
    arrays.push(booleans(&c.creates_state[a..b]));
    arrays.push(enum_dict(
        c.state_holder[a..b].iter().map(|h| h.map(holder_code)),
        &d.holder,
    )?);
    arrays.push(state_kinds(&c.state_kinds[a..b], &d.state_kind)?);
    arrays.push(booleans(&c.session_stateful[a..b]));
    arrays.push(dict_slice(&c.ruleset, &d.ruleset, a, b)?);
    arrays.push(dict_slice(&c.ruleset_digest, &d.ruleset_digest, a, b)?);
    arrays.push(evidence(n, d, a, b)?);
    RecordBatch::try_new(Arc::clone(schema), arrays).map_err(internal)
}

fn evidence(n: &Nested, d: &Dicts, a: usize, b: usize) -> Result<ArrayRef> {
    let (ia, ib) = (n.ev_offsets[a], n.ev_offsets[b]);
    let mut items: Vec<ArrayRef> = [&n.ev_rule, &n.ev_tag, &n.ev_signal, &n.ev_explain]
        .iter()
        .zip(&d.ev)
        .map(|(col, values)| dict_slice(col, values, ia, ib))
        .collect::<Result<_>>()?;
    items.push(enum_dict(
        n.ev_state[ia..ib].iter().copied(),
        &d.state_kind,
    )?);
    let structs = StructArray::try_new(evidence_fields(), items, None).map_err(internal)?;
    let offsets: Vec<i32> = n.ev_offsets[a..=b]
        .iter()
        .map(|&o| i32::try_from(o - ia).expect("fewer than 2^31 evidence items per batch"))
        .collect();
    let list = ListArray::try_new(
        evidence_item(),
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Arc::new(structs),
        None,
    )
    .map_err(internal)?;
    Ok(Arc::new(list))
}

/// `list<dictionary<int32, utf8>>` of each event's kinds, in name order, over `values`
/// ([`STATE_KINDS`]).
fn state_kinds(sets: &[StateKinds], values: &ArrayRef) -> Result<ArrayRef> {
    let mut offsets = Vec::with_capacity(sets.len() + 1);
    let mut codes: Vec<u32> = Vec::new();
    offsets.push(0i32);
    for s in sets {
        if !s.is_empty() {
            codes.extend(s.iter().map(|k| u32::from(k as u8)));
        }
        offsets.push(i32::try_from(codes.len()).expect("at most 5 kinds per event"));
    }
    let keys = dict_from_codes(&codes, values)?;
    let list = ListArray::try_new(
        state_kind_item(),
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        keys,
        None,
    )
    .map_err(internal)?;
    Ok(Arc::new(list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Ruleset;
    use crate::event::Recorded;
    use crate::event::{Event, StateKind};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type};
    use arrow_array::Array;

    fn row(kind: EventKind, seq: u64, f: impl FnOnce(&mut Event)) -> Row {
        let mut e = Event::new(kind);
        e.session_id = Some("s1".into());
        f(&mut e);
        let pending = Recorded::pending(e.finish().unwrap(), Ruleset::builtin_default());
        let class = pending.classification().clone();
        let rec = Arc::new(Recorded::stored(pending.event, class, seq));
        Row {
            session_tag: Tag::Stateful,
            rec,
        }
    }

    fn sample() -> Vec<Row> {
        vec![
            row(EventKind::ModelCall, 1, |e| {
                e.provider = Some("openai".into());
                e.model = Some("gpt-5".into());
                e.api = Some("responses".into());
                e.input_tokens = Some(10);
                e.output_tokens = Some(3);
                e.cached_tokens = Some(0);
                e.request = serde_json::json!({"previous_response_id": "r", "store": true})
                    .as_object()
                    .cloned();
                e.attrs = serde_json::json!({"b": 1, "a": [1.5, "x"]})
                    .as_object()
                    .cloned()
                    .unwrap();
            }),
            row(EventKind::ToolCall, 2, |e| {
                e.tool = Some("search".into());
                e.duration_ns = Some(5);
            }),
        ]
    }

    #[test]
    fn batches_carry_every_column_with_the_documented_types() {
        let rows = sample();
        let b = batches(&rows).unwrap();
        assert_eq!(b.num_rows(), 2);
        let batch = &b.batches[0];
        assert_eq!(batch.schema(), schema());
        let col = |n: &str| batch.column_by_name(n).unwrap().clone();
        assert_eq!(col("seq").as_primitive::<Int64Type>().values(), &[1, 2]);
        assert_eq!(col("id").as_string::<i32>().value(1), rows[1].rec.event.id);
        // Counts are null where the kind has none.
        let input = col("input_tokens");
        assert_eq!(input.as_primitive::<Int64Type>().value(0), 10);
        assert!(input.is_null(1));
        assert!(col("bytes").is_null(0));
        assert!(col("duration_ns").is_null(0));
        assert_eq!(col("duration_ns").as_primitive::<Int64Type>().value(1), 5);
        // JSON text is canonical (sorted keys); absent request is null, absent attrs is {}.
        let attrs = col("attrs");
        assert_eq!(
            attrs.as_string::<i32>().value(0),
            r#"{"a":[1.5,"x"],"b":1}"#
        );
        assert_eq!(attrs.as_string::<i32>().value(1), "{}");
        let request = col("request");
        assert_eq!(
            request.as_string::<i32>().value(0),
            r#"{"previous_response_id":"r","store":true}"#
        );
        assert!(request.is_null(1));
        // Dictionaries decode to the values.
        let tool = col("tool");
        let tool = tool.as_dictionary::<Int32Type>();
        assert!(tool.is_null(0));
        let values = tool.values().as_string::<i32>();
        assert_eq!(values.value(tool.keys().value(1) as usize), "search");
        let tag = col("tag");
        let tag = tag.as_dictionary::<Int32Type>();
        assert_eq!(tag.keys().values(), &[1, 0]);
        // Evidence is a list of structs, one item per matched rule.
        let ev = col("evidence");
        let ev = ev.as_list::<i32>();
        let n0 = rows[0].rec.classification().evidence.len();
        assert_eq!(ev.value_length(0) as usize, n0);
        let first = ev.value(0);
        let rule = first.as_struct().column_by_name("rule").unwrap();
        let rule = rule.as_dictionary::<Int32Type>();
        let rv = rule.values().as_string::<i32>();
        assert_eq!(
            rv.value(rule.keys().value(0) as usize),
            &*rows[0].rec.classification().evidence[0].rule
        );
    }

    /// A ruleset whose rules name kinds of state (and one note that names none).
    const KINDS: &str = r#"
[[rule]]
id = "chain"
has = ["request.prev"]
consumes_state = true
state_holder = "provider"
state = "conversation"
tag = "stateful"
explain = "continues a stored response"
[[rule]]
id = "file"
has = ["request.file_id"]
consumes_state = true
state_holder = "provider"
state = "content"
explain = "reads an uploaded file"
[[rule]]
id = "note"
has = ["request.cache"]
explain = "prompt caching is not state"
"#;

    /// A model call classified by [`KINDS`], with the request keys `keys` set.
    fn kinds_row(seq: u64, keys: &[&str]) -> Row {
        static RULES: OnceLock<Arc<Ruleset>> = OnceLock::new();
        let rules = RULES.get_or_init(|| Arc::new(Ruleset::from_toml(KINDS).unwrap()));
        let mut e = Event::new(EventKind::ModelCall);
        e.provider = Some("openai".into());
        e.model = Some("gpt-5".into());
        e.api = Some("responses".into());
        e.request = Some(keys.iter().map(|k| (k.to_string(), "x".into())).collect());
        let e = e.finish().unwrap();
        let class = rules.classify(&e);
        Row {
            session_tag: class.tag,
            rec: Arc::new(Recorded::stored(e, class, seq)),
        }
    }

    fn kind_names(list: &ArrayRef, i: usize) -> Vec<String> {
        let item = list.as_list::<i32>().value(i);
        let dict = item.as_dictionary::<Int32Type>();
        let values = dict.values().as_string::<i32>();
        dict.keys()
            .values()
            .iter()
            .map(|&k| values.value(k as usize).to_string())
            .collect()
    }

    #[test]
    fn state_kind_dictionary_is_the_kinds_in_name_order() {
        for k in StateKind::ALL {
            assert_eq!(STATE_KINDS[k as usize], k.as_str());
        }
    }

    #[test]
    fn state_kinds_are_a_list_of_kind_names_and_evidence_names_its_kind() {
        let rows = vec![
            kinds_row(1, &["prev", "file_id", "cache"]),
            kinds_row(2, &[]),
            kinds_row(3, &["file_id"]),
        ];
        let b = batches(&rows).unwrap();
        let batch = &b.batches[0];
        let col = batch.column_by_name("state_kinds").unwrap();
        assert_eq!(
            col.data_type(),
            &DataType::List(Arc::new(Field::new("item", dict_type(), false)))
        );
        assert_eq!(col.null_count(), 0);
        assert_eq!(kind_names(col, 0), ["content", "conversation"], "sorted");
        assert!(kind_names(col, 1).is_empty(), "no kinds: an empty list");
        assert_eq!(kind_names(col, 2), ["content"]);
        // Evidence items carry their rule's kind; a rule naming none has a null state.
        let ev = batch.column_by_name("evidence").unwrap().as_list::<i32>();
        let first = ev.value(0);
        let items = first.as_struct();
        let rule = items
            .column_by_name("rule")
            .unwrap()
            .as_dictionary::<Int32Type>();
        let rules = rule.values().as_string::<i32>();
        let state = items.column_by_name("state").unwrap();
        let state = state.as_dictionary::<Int32Type>();
        let names = state.values().as_string::<i32>();
        let got: Vec<(&str, Option<&str>)> = (0..items.len())
            .map(|i| {
                let r = rules.value(rule.keys().value(i) as usize);
                let s = (!state.is_null(i)).then(|| names.value(state.keys().value(i) as usize));
                (r, s)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("chain", Some("conversation")),
                ("file", Some("content")),
                ("note", None)
            ]
        );
        // The fallback evidence of an event no rule matched names no kind either.
        let second = ev.value(1);
        assert!(second
            .as_struct()
            .column_by_name("state")
            .unwrap()
            .is_null(0));
    }

    #[test]
    fn state_kinds_survive_the_two_thread_build_and_many_batches() {
        let shapes: [&[&str]; 4] = [&["prev"], &[], &["file_id", "prev"], &["cache"]];
        let n = super::super::BATCH_ROWS + 20_000;
        let rows: Vec<Row> = (0..n)
            .map(|i| kinds_row(i as u64 + 1, shapes[(i * 7 + i / 3) % 4]))
            .collect();
        let b = batches(&rows).unwrap();
        assert_eq!(b.batches.len(), 2);
        let mut i = 0;
        for batch in &b.batches {
            let col = batch.column_by_name("state_kinds").unwrap();
            for j in 0..batch.num_rows() {
                let want: Vec<String> = rows[i]
                    .rec
                    .classification()
                    .state_kinds
                    .iter()
                    .map(|k| k.as_str().to_string())
                    .collect();
                assert_eq!(kind_names(col, j), want, "row {i}");
                i += 1;
            }
        }
        assert_eq!(i, n);
    }

    #[test]
    fn halves_built_in_parallel_equal_one_pass() {
        let one = sample();
        let rows: Vec<Row> = (0..25_001)
            .map(|i| {
                if i % 5 == 3 {
                    return kinds_row(i as u64, &["prev", "file_id"][..i % 3]);
                }
                let mut r = one[i % 2].clone();
                if i % 7 == 0 {
                    // A value that first appears in the second half.
                    let mut e = r.rec.event.clone();
                    e.tool = Some(format!("tool-{}", i % 5).into());
                    let c = r.rec.classification().clone();
                    r.rec = Arc::new(Recorded::stored(e, c, i as u64));
                }
                r
            })
            .collect();
        let parallel = batches(&rows).unwrap();
        let (cols, nested) = (
            EventColumns::from_rows(&rows),
            Nested::from_rows(&rows).unwrap(),
        );
        let sequential = from_parts(&cols, &nested).unwrap();
        assert_eq!(parallel.num_rows(), rows.len());
        for (p, q) in parallel.batches.iter().zip(&sequential.batches) {
            for (x, y) in p.columns().iter().zip(q.columns()) {
                // Dictionaries may be ordered differently: compare decoded values.
                let dx = arrow_array::cast::AsArray::as_any_dictionary_opt(x.as_ref());
                match dx {
                    Some(d) => {
                        let dy = y.as_any_dictionary();
                        if d.values().is_empty() || dy.values().is_empty() {
                            assert_eq!(x.null_count(), x.len());
                            assert_eq!(y.null_count(), y.len());
                            continue;
                        }
                        let (kx, ky) = (d.normalized_keys(), dy.normalized_keys());
                        let (vx, vy) = (
                            d.values().as_string::<i32>(),
                            dy.values().as_string::<i32>(),
                        );
                        for i in 0..x.len() {
                            let a = (!x.is_null(i)).then(|| vx.value(kx[i]));
                            let b = (!y.is_null(i)).then(|| vy.value(ky[i]));
                            assert_eq!(a, b);
                        }
                    }
                    None => assert_eq!(x.to_data(), y.to_data()),
                }
            }
        }
    }

    #[test]
    fn big_tables_split_into_batches_sharing_one_dictionary() {
        let one = sample();
        let rows: Vec<Row> = (0..(super::super::BATCH_ROWS + 10))
            .map(|i| one[i % 2].clone())
            .collect();
        let b = batches(&rows).unwrap();
        assert_eq!(b.batches.len(), 2);
        assert_eq!(b.num_rows(), rows.len());
        let d0 = b.batches[0].column_by_name("tool").unwrap();
        let d1 = b.batches[1].column_by_name("tool").unwrap();
        let v0 = d0.as_dictionary::<Int32Type>().values();
        let v1 = d1.as_dictionary::<Int32Type>().values();
        assert!(Arc::ptr_eq(v0, v1));
        assert!(batches(&[]).unwrap().batches.is_empty());
    }
}
