use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::classify::Ruleset;
use crate::event::Event;
use crate::ledger::Durability;
use crate::meter::Recorder;
use crate::stored::columns::{load_after, load_stored};

/// Every column of `a` and `b`, compared row by row (string columns by value).
fn assert_same(a: &EventColumns, b: &EventColumns) {
    assert_eq!(a.len, b.len);
    assert_eq!(a.seq, b.seq);
    assert_eq!(a.id.data, b.id.data);
    assert_eq!(a.id.offsets, b.id.offsets);
    assert_eq!(a.kind, b.kind);
    assert_eq!(a.ts, b.ts);
    assert_eq!(a.duration_ns, b.duration_ns);
    for name in STR_FIELDS {
        let (x, y) = (a.str_column(name).unwrap(), b.str_column(name).unwrap());
        for i in 0..a.len {
            assert_eq!(x.get(i), y.get(i), "{name} at row {i}");
        }
    }
    assert_eq!(a.input_tokens, b.input_tokens);
    assert_eq!(a.output_tokens, b.output_tokens);
    assert_eq!(a.cached_tokens, b.cached_tokens);
    assert_eq!(a.bytes, b.bytes);
    assert_eq!(a.tag, b.tag);
    assert_eq!(a.session_tag, b.session_tag);
    assert_eq!(a.consumes_state, b.consumes_state);
    assert_eq!(a.creates_state, b.creates_state);
    assert_eq!(a.session_stateful, b.session_stateful);
    assert_eq!(a.state_holder, b.state_holder);
    assert_eq!(a.state_kinds, b.state_kinds);
    assert_eq!(a.request.data, b.request.data);
    assert_eq!(a.request.offsets, b.request.offsets);
    assert_eq!(a.attrs.data, b.attrs.data);
    assert_eq!(a.attrs.offsets, b.attrs.offsets);
}

/// A varied event: every kind, runtime sessions, requests, attrs, durations, custom ids.
fn event(i: u64) -> Event {
    let kinds = [
        EventKind::SessionStart,
        EventKind::ModelCall,
        EventKind::ModelCall,
        EventKind::ToolCall,
        EventKind::StateOp,
        EventKind::SessionEnd,
    ];
    let mut e = Event::new(kinds[(i % 6) as usize]);
    e.session_id = Some(format!("s{}", i / 6).into());
    e.ts = 1_700_000_000_000_000_000 + (i as i64) * 1_234_567 - (i as i64 % 5) * 999;
    if i % 7 == 0 {
        e.id = format!("custom-{i}").into();
    }
    match e.kind {
        EventKind::SessionStart => {
            e.agent = Some(["support", "sales"][(i % 2) as usize].into());
            e.venue = Some("azure".into());
            if i % 12 == 0 {
                e.runtime = Some("agentcore".into());
                e.runtime_session_id = Some(format!("rs{i}").into());
            }
        }
        EventKind::ModelCall => {
            e.provider = Some("openai".into());
            e.model = Some("gpt-5".into());
            e.api = Some(
                if i % 4 == 1 {
                    "responses"
                } else {
                    "chat.completions"
                }
                .into(),
            );
            if i % 4 == 1 {
                e.request = serde_json::json!({"previous_response_id": format!("r{i}")})
                    .as_object()
                    .cloned();
            }
            e.input_tokens = Some(i * 13 % 9000);
            e.output_tokens = Some(i % 700);
            e.cached_tokens = (i % 3 == 0).then_some(i % 50);
            e.duration_ns = Some((i as i64) * 1_000_003);
        }
        EventKind::ToolCall => {
            e.tool = Some("search".into());
            e.effect = Some("read".into());
            e.status = (i % 5 == 0).then(|| "error".into());
            e.attrs = serde_json::json!({"n": i, "x": "y\n\u{e9}"})
                .as_object()
                .cloned()
                .unwrap();
        }
        EventKind::StateOp => {
            e.op = Some("write".into());
            e.store = Some("agentcore-memory".into());
            e.holder = Some("provider".into());
            e.bytes = Some(2048);
        }
        EventKind::SessionEnd => e.status = Some("ok".into()),
    }
    e
}

struct Ledger {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Arc<Mutex<Store>>,
}

fn ledger() -> Ledger {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let store = Arc::new(Mutex::new(
        Store::open(Some(&path), Durability::Sync).unwrap(),
    ));
    Ledger {
        _dir: dir,
        path,
        store,
    }
}

fn recorder(l: &Ledger, observer: Option<Arc<ColumnWriter>>) -> Recorder {
    Recorder::observed(
        Arc::clone(&l.store),
        Ruleset::builtin_strict(),
        Durability::Sync,
        16,
        observer.map(|o| o as Arc<dyn CommitObserver>),
    )
    .unwrap()
}

fn record(r: &Recorder, range: std::ops::Range<u64>) {
    for i in range {
        r.write_now(&r.wrap(event(i).finish().unwrap())).unwrap();
    }
}

/// The columns read from the records only.
fn from_records(store: &Store) -> EventColumns {
    let mut cols = EventColumns::default();
    load_after(store, &mut cols).unwrap();
    cols.derive_session_tags();
    cols
}

fn segments(l: &Ledger) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match fs::read_dir(dir_of(&l.path)) {
        Ok(d) => d.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

#[test]
fn the_writer_keeps_segments_that_read_back_as_the_records() {
    let l = ledger();
    let writer = Arc::new(ColumnWriter::new());
    let r = recorder(&l, Some(Arc::clone(&writer)));
    record(&r, 0..200);
    // 200 events: three whole segments of 64, the tail of 8 is left to the records.
    assert_eq!(writer.counts(), (3, 0));
    let files = segments(&l);
    assert_eq!(files.len(), 3);
    assert!(files[1].ends_with("00000000000000000065.seg"));
    let store = l.store.lock();
    let (cols, cov) = load(&store, Projection::ALL);
    assert_eq!((cov.events, cov.segments, cov.rejected), (192, 3, None));
    let all = from_records(&store);
    let mut tail = cols.clone();
    load_after(&store, &mut tail).unwrap();
    tail.derive_session_tags();
    assert_same(&tail, &all);
    assert_same(&load_stored(&store, Projection::ALL).unwrap(), &all);
}

#[test]
fn a_closing_writer_keeps_the_tail_until_the_ledger_outgrows_it() {
    let l = ledger();
    let writer = Arc::new(ColumnWriter::new());
    let r = recorder(&l, Some(Arc::clone(&writer)));
    record(&r, 0..100);
    assert_eq!((writer.counts(), segments(&l).len()), ((1, 0), 1));
    r.close().unwrap();
    // The 36 events after the whole segment are kept as a part segment: nothing is left to
    // the records.
    assert_eq!(writer.counts(), (2, 0));
    let files = segments(&l);
    assert!(files[1].ends_with("00000000000000000065.seg"));
    assert_eq!(events_on_disk(&files[1]), 36);
    {
        let store = l.store.lock();
        let (cols, cov) = load(&store, Projection::ALL);
        assert_eq!((cov.events, cov.segments, cov.rejected), (100, 2, None));
        let all = from_records(&store);
        let mut cols = cols;
        cols.derive_session_tags();
        assert_same(&cols, &all);
        assert_same(&load_stored(&store, Projection::ALL).unwrap(), &all);
    }
    // Closing again writes nothing more.
    r.close().unwrap();
    assert_eq!(writer.counts(), (2, 0));
    // A few more events (no column writer): the part segment still holds, the rest comes
    // from the records.
    record(&recorder(&l, None), 100..110);
    {
        let store = l.store.lock();
        assert_eq!(load(&store, Projection::ALL).1.events, 100);
        assert_same(
            &load_stored(&store, Projection::ALL).unwrap(),
            &from_records(&store),
        );
    }
    // Past the segment's end: the part segment is outgrown, not used; the reader saves the
    // whole segment in its place.
    record(&recorder(&l, None), 110..140);
    let store = l.store.lock();
    assert_eq!(load(&store, Projection::ALL).1.events, 64);
    let all = from_records(&store);
    assert_same(&load_stored(&store, Projection::ALL).unwrap(), &all);
    assert_eq!(events_on_disk(&segments(&l)[1]), 64);
    let (cols, cov) = load(&store, Projection::ALL);
    assert_eq!((cov.events, cov.segments), (128, 2));
    let mut tail = cols;
    load_after(&store, &mut tail).unwrap();
    tail.derive_session_tags();
    assert_same(&tail, &all);
}

#[test]
fn events_appended_by_another_writer_are_read_from_the_records() {
    let l = ledger();
    // Without an observer first (another process, or an earlier release), then with one.
    record(&recorder(&l, None), 0..100);
    let writer = Arc::new(ColumnWriter::new());
    let r = recorder(&l, Some(Arc::clone(&writer)));
    record(&r, 100..140);
    record(&recorder(&l, None), 140..150);
    record(&r, 150..260);
    // Segments 65-128 (its start from the records), 129-192 (a gap filled), 193-256.
    assert_eq!(writer.counts(), (3, 0));
    let files = segments(&l);
    assert_eq!(files.len(), 3);
    assert!(files[0].ends_with("00000000000000000065.seg"));
    let store = l.store.lock();
    // Seqs 1-64 were never written: nothing is trusted, everything comes from the records,
    // and the reader saves the segments it can.
    assert_eq!(load(&store, Projection::ALL).1.events, 0);
    let all = from_records(&store);
    assert_same(&load_stored(&store, Projection::ALL).unwrap(), &all);
    assert_eq!(segments(&l).len(), 4);
    let (cols, cov) = load(&store, Projection::ALL);
    assert_eq!((cov.events, cov.segments), (256, 4));
    let mut tail = cols;
    load_after(&store, &mut tail).unwrap();
    tail.derive_session_tags();
    assert_same(&tail, &all);
}

#[test]
fn damaged_stale_and_foreign_segments_are_not_trusted() {
    let l = ledger();
    // Kept open: the tail of 8 stays with the records.
    let open = recorder(&l, Some(Arc::new(ColumnWriter::new())));
    record(&open, 0..200);
    let all = from_records(&l.store.lock());
    let files = segments(&l);
    let reread = |expect_events: u64, why: &str| {
        let store = l.store.lock();
        let (_, cov) = load(&store, Projection::ALL);
        assert_eq!(cov.events, expect_events, "{why}");
        // Same answers whatever was wrong with the store (and the reader repairs it).
        assert_same(&load_stored(&store, Projection::ALL).unwrap(), &all);
        assert_eq!(
            load(&store, Projection::ALL).1.events,
            192,
            "{why}: saved again"
        );
    };
    // One flipped payload byte in the second segment: the first is still used.
    let original = fs::read(&files[1]).unwrap();
    let mut flipped = original.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut header = original.clone();
    header[20] ^= 1; // the chain hash
    for (what, b) in [
        ("damaged", flipped),
        ("stale", header),
        ("truncated", original[..original.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("not a segment", vec![b'S'; 200]),
        ("format 1", {
            let mut b = original.clone();
            b[7] = 1; // "SMCOLS\0\x01": a segment of the format before this one
            b
        }),
    ] {
        fs::write(&files[1], &b).unwrap();
        let (_, cov) = load(&l.store.lock(), Projection::ALL);
        assert_eq!(cov.events, 64, "{what}");
        assert!(cov.rejected.is_some(), "{what}");
        reread(64, what);
    }
    fs::remove_file(&files[1]).unwrap();
    reread(64, "a missing segment");
    // A segment of another ledger (same seqs, another chain): stale.
    let other = ledger();
    record(
        &recorder(&other, Some(Arc::new(ColumnWriter::new()))),
        1000..1200,
    );
    fs::copy(&segments(&other)[0], &files[0]).unwrap();
    let (_, cov) = load(&l.store.lock(), Projection::ALL);
    assert_eq!(cov.events, 0);
    assert!(cov.rejected.unwrap().contains("stale"));
    // A header naming other seqs than its file name.
    fs::copy(&files[2], &files[0]).unwrap();
    assert_eq!(load(&l.store.lock(), Projection::ALL).1.events, 0);
    reread(0, "a segment under another name");
    fs::remove_file(&files[0]).unwrap();
    reread(0, "the first segment missing");
}

#[test]
fn payloads_round_trip_and_malformed_ones_are_refused() {
    let l = ledger();
    record(&recorder(&l, None), 0..70);
    let store = l.store.lock();
    let cols = from_records(&store);
    let hash = store.hash_at(70).unwrap().unwrap();
    let raw = encode_payload(&cols, 0..70);
    fn slices(p: &[Vec<u8>]) -> Vec<&[u8]> {
        p.iter().map(Vec::as_slice).collect()
    }
    assert!(raw.iter().map(|(n, _)| *n).eq(SECTIONS.iter().copied()));
    let good: Vec<Vec<u8>> = raw.iter().map(|(_, s)| s.clone()).collect();
    let back = decode_payload(&slices(&good), 1, 70, Projection::ALL).unwrap();
    let mut expect = cols.clone();
    // Decoded segments carry provisional session tags: their own session_stateful.
    expect.session_tag = expect
        .session_stateful
        .iter()
        .map(|&s| if s { Tag::Stateful } else { Tag::Stateless })
        .collect();
    assert_same(&back, &expect);
    // Every truncation of a section is an error, never a panic; so is a byte more.
    for (k, (name, section)) in raw.iter().enumerate() {
        for cut in 0..section.len() {
            let mut p = good.clone();
            p[k].truncate(cut);
            assert!(
                decode_payload(&slices(&p), 1, 70, Projection::ALL).is_err(),
                "{name} cut at {cut}"
            );
        }
        let mut p = good.clone();
        p[k].push(0);
        assert!(
            decode_payload(&slices(&p), 1, 70, Projection::ALL).is_err(),
            "{name} longer"
        );
    }
    assert!(decode_payload(&slices(&good[1..]), 1, 70, Projection::ALL).is_err());
    // Ids that are not all UUIDs are kept as text; some are here (custom-0, custom-7, ...).
    assert_eq!(raw[0].1[0], 0);
    let uuids = encode_payload(&cols, 1..7);
    assert_eq!(uuids[0].1[0], 1);
    // UUIDs made at their event's time: the time part costs a byte (a zero difference).
    let ms = |i: usize| cols.ts[i].div_euclid(NS_PER_MS);
    let stamped: Vec<String> = (1..7)
        .map(|i| {
            let mut b = [0x7au8; 16];
            b[..6].copy_from_slice(&ms(i).to_be_bytes()[2..]);
            b[8] = 0x80 | i as u8;
            uuid::Uuid::from_bytes(b).hyphenated().to_string()
        })
        .collect();
    let texts: Vec<&str> = stamped.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    put_ids(&mut out, &texts, Some(&(1..7).map(ms).collect::<Vec<_>>()));
    assert_eq!(out.len(), 1 + 6 + 60);
    assert!(out[1..7].iter().all(|&b| b == 0));
    let mut back = Vec::new();
    Reader { b: &out, pos: 0 }
        .ids(6, Some(&(1..7).map(ms).collect::<Vec<_>>()), |s| {
            back.push(s.to_string())
        })
        .unwrap();
    assert_eq!(back, stamped);
    // Byte planes round-trip, widths 0 to 8.
    for values in [
        vec![0u64; 5],
        vec![1, 255, 256, 70_000],
        vec![u64::MAX, 0, 3],
    ] {
        let mut out = Vec::new();
        put_planes(&mut out, &values);
        let mut r = Reader { b: &out, pos: 0 };
        assert_eq!(r.planes(values.len()).unwrap(), values);
        r.end("planes").unwrap();
    }
    let file = encode(&cols, 0..70, 1, &hash).unwrap();
    assert!(check(&store, 1, &file).is_ok());
    assert!(check(&store, 2, &file).is_err());
    assert_eq!(
        uuid_bytes("0190a5b4-7c3e-7d2a-8b1c-3f4e5d6c7b8a").map(|b| b[0]),
        Some(1)
    );
    assert_eq!(uuid_bytes("0190A5B4-7C3E-7D2A-8B1C-3F4E5D6C7B8A"), None);
    // Other spellings uuid accepts are not the same text: kept as text.
    assert_eq!(uuid_bytes("{0190a5b4-7c3e-7d2a-8b1c-3f4e5d6c7b8}"), None);
    assert_eq!(uuid_bytes("0190a5b47c3e7d2a8b1c3f4e5d6c7b8a0000"), None);
    let mut t = String::new();
    uuid_text(
        &uuid_bytes("0190a5b4-7c3e-7d2a-8b1c-3f4e5d6c7b8a").unwrap(),
        &mut t,
    );
    assert_eq!(t, "0190a5b4-7c3e-7d2a-8b1c-3f4e5d6c7b8a");
    for v in [0, 1, -1, i64::MAX, i64::MIN, 12345, -98765] {
        assert_eq!(unzigzag(zigzag(v)), v);
    }
}

#[test]
fn an_in_memory_ledger_has_no_column_store() {
    let store = Arc::new(Mutex::new(Store::open(None, Durability::Sync).unwrap()));
    let writer = Arc::new(ColumnWriter::new());
    let r = Recorder::observed(
        Arc::clone(&store),
        Ruleset::builtin_default(),
        Durability::Sync,
        16,
        Some(Arc::clone(&writer) as Arc<dyn CommitObserver>),
    )
    .unwrap();
    record(&r, 0..100);
    assert_eq!(writer.counts(), (0, 0));
    let s = store.lock();
    assert_eq!(load(&s, Projection::ALL).1, Coverage::default());
    assert_eq!(save(&s, &from_records(&s), 1, true).unwrap(), 0);
}

/// The columns `need` holds equal those of `all`; the others are empty.
fn assert_projected(p: &EventColumns, all: &EventColumns, need: Projection) {
    assert_eq!(p.present, need);
    assert_eq!(p.len, all.len);
    assert_eq!(p.seq, all.seq);
    assert_eq!(p.kind, all.kind);
    assert_eq!(p.ts, all.ts);
    assert_eq!(p.input_tokens, all.input_tokens);
    assert_eq!(p.output_tokens, all.output_tokens);
    assert_eq!(p.tag, all.tag);
    assert_eq!(p.session_tag, all.session_tag);
    assert_eq!(p.session_stateful, all.session_stateful);
    assert_eq!(p.state_holder, all.state_holder);
    assert_eq!(p.state_kinds, all.state_kinds);
    for (k, name) in STR_FIELDS.iter().enumerate() {
        let (x, y) = (p.str_column(name).unwrap(), all.str_column(name).unwrap());
        if need.str_field(k) {
            assert_eq!(x.codes.len(), p.len, "{name}");
            for i in 0..p.len {
                assert_eq!(x.get(i), y.get(i), "{name} at row {i}");
            }
        } else {
            assert!(x.codes.is_empty() && x.values.is_empty(), "{name} is held");
        }
    }
    let same_or_empty = |held: bool, a: &[u64], b: &[u64]| {
        if held {
            assert_eq!(a, b);
        } else {
            assert!(a.is_empty());
        }
    };
    same_or_empty(need.cached_tokens(), &p.cached_tokens, &all.cached_tokens);
    same_or_empty(need.bytes(), &p.bytes, &all.bytes);
    if need.id() {
        assert_eq!(p.id.data, all.id.data);
    } else {
        assert!(p.id.data.is_empty() && p.id.offsets == [0]);
    }
    if need.duration_ns() {
        assert_eq!(p.duration_ns, all.duration_ns);
    } else {
        assert!(p.duration_ns.is_empty());
    }
    for (held, a, b) in [
        (need.request(), &p.request, &all.request),
        (need.attrs(), &p.attrs, &all.attrs),
    ] {
        if held {
            assert_eq!((&a.data, &a.offsets), (&b.data, &b.offsets));
        } else {
            assert!(a.data.is_empty() && a.offsets == [0]);
        }
    }
}

#[test]
fn a_projection_decodes_only_its_columns_and_the_same_values() {
    let l = ledger();
    let open = recorder(&l, Some(Arc::new(ColumnWriter::new())));
    record(&open, 0..200);
    let store = l.store.lock();
    let all = from_records(&store);
    let needs = [
        Projection::BASE,
        Projection::BASE.with_all(&["venue", "provider", "cached_tokens"]),
        Projection::BASE.with_all(&["id", "duration_ns", "status", "bytes", "attrs"]),
        Projection::BASE.with_all(&["request", "ruleset_digest", "parent_id", "key"]),
    ];
    for need in needs {
        // Three segments and the tail from the records.
        let (segs, cov) = load(&store, need);
        assert_eq!((cov.events, segs.present), (192, need));
        assert_projected(&load_stored(&store, need).unwrap(), &all, need);
        // Every truncation of a section read is an error under a projection too; the
        // sections not read are not looked at.
        let raw = encode_payload(&all, 0..70);
        let good: Vec<Vec<u8>> = raw.iter().map(|(_, s)| s.clone()).collect();
        for (k, (name, section)) in raw.iter().enumerate() {
            let mut p = good.clone();
            p[k].truncate(section.len() / 2);
            let read = section_needed(name, need);
            assert_eq!(
                decode_payload(&sections_of(&p), 1, 70, need).is_err(),
                read && !section.is_empty(),
                "{name} cut"
            );
        }
        let mut expect = all.clone();
        expect.session_tag = expect
            .session_stateful
            .iter()
            .map(|&s| if s { Tag::Stateful } else { Tag::Stateless })
            .collect();
        let mut back = EventColumns {
            present: need,
            ..EventColumns::default()
        };
        append(
            &mut back,
            decode_payload(&sections_of(&good), 1, 70, need).unwrap(),
        )
        .unwrap();
        let mut first = expect;
        first.len = 70;
        truncate_all(&mut first, 70);
        assert_projected(&back, &first, need);
    }
    // Appending nothing changes nothing; appending columns that lack some held is refused.
    let mut part = load_stored(&store, Projection::BASE).unwrap();
    let before = part.len;
    assert!(append(&mut part, EventColumns::default()).is_ok());
    assert_eq!(part.len, before);
    let mut narrower = EventColumns {
        present: Projection::BASE,
        ..EventColumns::default()
    };
    assert!(append(&mut EventColumns::default(), std::mem::take(&mut narrower)).is_err());
}

fn sections_of(p: &[Vec<u8>]) -> Vec<&[u8]> {
    p.iter().map(Vec::as_slice).collect()
}

/// The first `n` events of full columns.
fn truncate_all(c: &mut EventColumns, n: usize) {
    c.seq.truncate(n);
    c.kind.truncate(n);
    c.ts.truncate(n);
    c.duration_ns.truncate(n);
    c.id.offsets.truncate(n + 1);
    c.id.data.truncate(c.id.offsets[n]);
    for name in STR_FIELDS {
        c.str_column_mut(name).codes.truncate(n);
    }
    for col in [
        &mut c.input_tokens,
        &mut c.output_tokens,
        &mut c.cached_tokens,
        &mut c.bytes,
    ] {
        col.truncate(n);
    }
    c.tag.truncate(n);
    c.session_tag.truncate(n);
    c.consumes_state.truncate(n);
    c.creates_state.truncate(n);
    c.session_stateful.truncate(n);
    c.state_holder.truncate(n);
    c.state_kinds.truncate(n);
    for t in [&mut c.request, &mut c.attrs] {
        t.offsets.truncate(n + 1);
        t.data.truncate(t.offsets[n]);
    }
}

#[test]
fn sessions_summarised_a_segment_at_a_time_match_the_records() {
    use crate::stored::columns::{stream_stored, ColumnCache};
    use crate::stored::sessions::{self, SessionsCache, Summary};
    let l = ledger();
    let writer = Arc::new(ColumnWriter::new());
    let r = recorder(&l, Some(Arc::clone(&writer)));
    record(&r, 0..300);
    r.close().unwrap();
    // Four whole segments and a part segment of 44 events; sessions of 6 events span the
    // segment boundaries.
    assert_eq!(segments(&l).len(), 5);
    let want = sessions::summarise(&from_records(&l.store.lock()));
    assert_eq!(want.len(), 50);
    let need = sessions::columns_needed(false);
    let stream = |store: &Store| {
        let mut parts = Vec::new();
        let mut summary = Summary::default();
        let last = stream_stored(store, need, &mut |part| {
            parts.push(part.len);
            summary.add(part, &[]);
            Ok(())
        })
        .unwrap();
        (last, parts, summary.finish())
    };
    let (last, parts, got) = stream(&l.store.lock());
    assert_eq!((last, parts), (300, vec![64, 64, 64, 64, 44]));
    assert_eq!(got, want);
    // A damaged segment: its events and the rest come from the records, as one part.
    let third = &segments(&l)[2];
    let mut bytes = fs::read(third).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(third, bytes).unwrap();
    let (last, parts, got) = stream(&l.store.lock());
    assert_eq!((last, parts), (300, vec![64, 64, 172]));
    assert_eq!(got, want);
    // Through the caches: the same rows, and the same table again while it is held.
    let (columns, tables) = (ColumnCache::new(), SessionsCache::new());
    let first = sessions::sessions_of(&l.store, &columns, &tables).unwrap();
    assert_eq!(*first, want);
    assert!(columns.is_empty());
    let again = sessions::sessions_of(&l.store, &columns, &tables).unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    // Columns already loaded that hold what a summary reads are summarised instead.
    drop((first, again));
    columns.columns(&l.store).unwrap();
    let from_cache = sessions::sessions_of(&l.store, &columns, &tables).unwrap();
    assert_eq!(*from_cache, want);
}

#[test]
fn costs_priced_a_segment_at_a_time_match_the_records() {
    use crate::accounting::costing::{costs_of, costs_streamed, costs_table};
    use crate::accounting::groupby::parse_dims;
    use crate::accounting::pricing::PriceTable;
    use crate::accounting::window::Window;
    use crate::stored::columns::ColumnCache;
    let prices = PriceTable::from_toml(
        r#"
currency = "USD"
[[price]]
provider = "openai"
model = "gpt-5"
input_per_mtok = "1.25"
cached_input_per_mtok = "0.125"
output_per_mtok = "10"
[[runtime_price]]
runtime = "agentcore"
per_session_hour = "0.0895"
[[storage_price]]
store = "agentcore-memory"
per_gb_month = "0.25"
"#,
    )
    .unwrap();
    let l = ledger();
    let writer = Arc::new(ColumnWriter::new());
    let r = recorder(&l, Some(Arc::clone(&writer)));
    // State ops write a few keyed objects (some scoped to their session), replaced across
    // segment boundaries; runtime sessions end in a later segment than they start.
    for i in 0..300u64 {
        let mut e = event(i);
        if e.kind == EventKind::StateOp {
            e.key = (i % 4 != 0).then(|| format!("k{}", i % 3).into());
            e.scope = (i % 5 == 0).then(|| "session".into());
            e.op = Some(if i % 7 == 0 { "delete" } else { "write" }.into());
            // A terabyte: held for milliseconds, still a cost of whole nano-units.
            e.bytes = Some(1_000_000_000_000);
        }
        r.write_now(&r.wrap(e.finish().unwrap())).unwrap();
    }
    r.close().unwrap();
    assert_eq!(segments(&l).len(), 5);
    let all = from_records(&l.store.lock());
    let ts = |i: usize| all.ts[i];
    let windows = [
        Window::default(),
        Window {
            since: Some(ts(40)),
            until: Some(ts(250)),
        },
    ];
    for by in [&[][..], &["venue", "month"], &["agent", "kind", "runtime"]] {
        let dims = parse_dims(&by.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        for w in windows {
            let want = costs_table(&all, &prices, &dims, w).unwrap();
            let got = costs_streamed(&l.store.lock(), &prices, &dims, w).unwrap();
            assert_eq!(got.rows, want.rows, "by {by:?}, {w:?}");
            assert_eq!(got.columns, want.columns);
            let cache = ColumnCache::new();
            let via = costs_of(&l.store, &cache, &prices, &dims, w).unwrap();
            assert_eq!(via.rows, want.rows);
            assert!(cache.is_empty());
        }
    }
    // Every kind of charge is there, priced.
    let t = costs_table(&all, &prices, &[], Window::default()).unwrap();
    let cells = &t.rows[0];
    for (k, c) in cells.iter().enumerate().skip(6) {
        assert!(
            matches!(c, crate::accounting::result::Cell::Int(n) if *n > 0),
            "{k}: {c:?}"
        );
    }
    // By session_tag (derived over the whole ledger): from every column, cached.
    let dims = parse_dims(&["session_tag".into()]).unwrap();
    let cache = ColumnCache::new();
    let via = costs_of(&l.store, &cache, &prices, &dims, Window::default()).unwrap();
    assert_eq!(
        via.rows,
        costs_table(&all, &prices, &dims, Window::default())
            .unwrap()
            .rows
    );
    assert_eq!(cache.len(), 1);
}

#[test]
fn sessions_with_inner_calls_read_every_column() {
    use crate::stored::columns::ColumnCache;
    use crate::stored::sessions::{self, SessionsCache};
    let l = ledger();
    let writer = Arc::new(ColumnWriter::new());
    let r = recorder(&l, Some(Arc::clone(&writer)));
    // Every model call after the first of its session is a child of the first.
    for i in 0..150u64 {
        let mut e = event(i);
        if e.kind == EventKind::ModelCall {
            if i % 6 == 1 {
                e.id = format!("outer-{i}").into();
            } else {
                e.parent_id = Some(format!("outer-{}", i - 1).into());
            }
        }
        r.write_now(&r.wrap(e.finish().unwrap())).unwrap();
    }
    r.close().unwrap();
    let want = sessions::summarise(&from_records(&l.store.lock()));
    assert!(want.iter().all(|s| s.inner_model_calls == 1));
    let (columns, tables) = (ColumnCache::new(), SessionsCache::new());
    let got = sessions::sessions_of(&l.store, &columns, &tables).unwrap();
    assert_eq!(*got, want);
    // Loaded whole with the ids, and cached.
    assert_eq!(columns.len(), 1);
}
