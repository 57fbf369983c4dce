//! Unit tests of [`super`] on a small hand-computed fixture (shared with the scenario tests).

use super::*;
use crate::accounting::calendar::parse_instant;
use crate::accounting::groupby::parse_dims;
use crate::classify::Ruleset;
use crate::event::Event;

/// `tests/data/README.md` says what each fixture is for.
pub const CONTRACT: &str = include_str!("../../tests/data/contracts/one-clause.toml");

pub const PRICES: &str = include_str!("../../tests/data/prices/base-and-venue.toml");

/// (session, provider, api, venue, day, input, cached, output, stateful request)
type Spec = (
    Option<&'static str>,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    u64,
    u64,
    u64,
    bool,
);

/// A: s1 azure stateless; B: s1 aws stateful (makes s1 stateful); C: s2 aws; D: s2
/// anthropic (not covered, unpriced); E: after the period; F: no session, no venue.
pub const EVENTS: &[Spec] = &[
    (
        Some("s1"),
        "openai",
        "chat.completions",
        Some("azure"),
        "2026-01-10",
        1000,
        0,
        100,
        false,
    ),
    (
        Some("s1"),
        "openai",
        "responses",
        Some("aws"),
        "2026-01-11",
        2000,
        500,
        200,
        true,
    ),
    (
        Some("s2"),
        "openai",
        "chat.completions",
        Some("aws"),
        "2026-02-01",
        100,
        0,
        10,
        false,
    ),
    (
        Some("s2"),
        "anthropic",
        "messages",
        Some("aws"),
        "2026-02-02",
        50,
        0,
        5,
        false,
    ),
    (
        Some("s3"),
        "openai",
        "chat.completions",
        Some("azure"),
        "2026-03-01",
        10,
        0,
        1,
        false,
    ),
    (
        None,
        "openai",
        "chat.completions",
        None,
        "2026-02-05",
        300,
        0,
        30,
        false,
    ),
];

pub fn fixture() -> EventColumns {
    let rules = Ruleset::builtin_default();
    let mut cols = EventColumns::default();
    for (n, &(session, provider, api, venue, day, input, cached, output, stateful)) in
        EVENTS.iter().enumerate()
    {
        let mut e = Event::new(EventKind::ModelCall);
        e.session_id = session.map(Into::into);
        e.provider = Some(provider.into());
        e.model = Some(
            if provider == "openai" {
                "gpt-5"
            } else {
                "claude"
            }
            .into(),
        );
        e.api = Some(api.into());
        e.venue = venue.map(Into::into);
        e.ts = parse_instant(day).unwrap();
        e.ts_explicit = true;
        e.input_tokens = Some(input);
        e.cached_tokens = Some(cached);
        e.output_tokens = Some(output);
        if stateful {
            e.request = serde_json::json!({"previous_response_id": "resp_1"})
                .as_object()
                .cloned();
        }
        let e = e.finish().unwrap();
        let c = rules.classify(&e);
        cols.push(n as u64 + 1, &e, &c);
    }
    cols.derive_session_tags();
    cols
}

fn int(c: &Cell) -> i128 {
    match c {
        Cell::Int(v) => *v,
        other => panic!("not an int: {other:?}"),
    }
}

fn row<'t>(t: &'t ResultTable, interpretation: &str) -> &'t [Cell] {
    t.rows
        .iter()
        .find(|r| r[0] == Cell::Text(interpretation.into()))
        .unwrap()
}

#[test]
fn every_cell_by_hand() {
    let cols = fixture();
    assert_eq!(cols.tag[1], Tag::Stateful);
    assert_eq!(cols.session_tag[0], Tag::Stateful);
    let contract = Contract::from_toml(CONTRACT).unwrap();
    let prices = PriceTable::from_toml(PRICES).unwrap();
    let t = report_table(&cols, &contract, Some(&prices), &[], Window::default()).unwrap();
    assert_eq!(t.columns.len(), 2 + REPORT_COLUMNS.len());
    assert_eq!(t.rows.len(), 3);
    // A = 4,000,000 (azure: 1000×2 + 100×20 per M); B = 3,937,500 ((2000-500)×1.25 +
    // 500×0.125 + 200×10); C = 225,000; F = 675,000.
    let expect = |name: &str, v: [i128; 10]| {
        let r = row(&t, name);
        let got: Vec<i128> = r[2..].iter().map(int).collect();
        assert_eq!(got, v, "{name}");
    };
    // call-level: covered A, C, F; violating C, F.
    expect(
        "call-level",
        [3, 1400, 140, 4_900_000, 2, 400, 40, 900_000, 0, 0],
    );
    // session-level: s1 is stateful, so covered C, F; both violate.
    expect(
        "session-level",
        [2, 400, 40, 900_000, 2, 400, 40, 900_000, 0, 0],
    );
    // all-calls: A, B, C, F; violating B, C, F.
    expect(
        "all-calls",
        [4, 3400, 340, 8_837_500, 3, 2400, 240, 4_837_500, 0, 0],
    );
    // Without prices the cost and unpriced cells are None.
    let t = report_table(&cols, &contract, None, &[], Window::default()).unwrap();
    let r = row(&t, "all-calls");
    assert_eq!(
        (&r[5], &r[9], &r[10]),
        (&Cell::Null, &Cell::Null, &Cell::Null)
    );
}

#[test]
fn groups_and_windows() {
    let cols = fixture();
    let contract = Contract::from_toml(CONTRACT).unwrap();
    let dims = parse_dims(&["venue".into(), "month".into()]).unwrap();
    let t = report_table(&cols, &contract, None, &dims, Window::default()).unwrap();
    let call: Vec<(Cell, Cell, i128)> = t
        .rows
        .iter()
        .filter(|r| r[0] == Cell::Text("call-level".into()))
        .map(|r| (r[2].clone(), r[3].clone(), int(&r[4])))
        .collect();
    let s = |v: &str| Cell::Text(v.into());
    assert_eq!(
        call,
        [
            (s("aws"), s("2026-02"), 1),
            (s("azure"), s("2026-01"), 1),
            (Cell::Null, s("2026-02"), 1)
        ]
    );
    // A window that keeps February only.
    let w = Window {
        since: Some(parse_instant("2026-02-01").unwrap()),
        until: Some(parse_instant("2026-03-01").unwrap()),
    };
    let t = report_table(&cols, &contract, None, &[], w).unwrap();
    assert_eq!(int(&row(&t, "all-calls")[2]), 2);
    let v = violating_rows(&cols, &contract, "all-calls", "c1", Window::default()).unwrap();
    assert_eq!(v, [1, 2, 5]);
    assert!(violating_rows(&cols, &contract, "nope", "c1", w).is_err());
    assert!(Window {
        since: w.until,
        until: w.since
    }
    .check()
    .is_err());
}

#[test]
fn costs_count_unpriced_events_never_as_zero() {
    let cols = fixture();
    let prices = PriceTable::from_toml(PRICES).unwrap();
    let t =
        crate::accounting::costing::costs_table(&cols, &prices, &[], Window::default()).unwrap();
    // events, input, cached, output, cost, unpriced, model, runtime, storage
    // E (azure) = 10×2 + 1×20 = 40 per M = 40,000; D (anthropic) unpriced.
    let got: Vec<Cell> = t.rows[0].clone();
    let total = 4_000_000 + 3_937_500 + 225_000 + 40_000 + 675_000;
    assert_eq!(
        got,
        [6, 3460, 500, 346, total, 1, total, 0, 0]
            .map(Cell::Int)
            .to_vec()
    );
    let dims = parse_dims(&["provider".into()]).unwrap();
    let t =
        crate::accounting::costing::costs_table(&cols, &prices, &dims, Window::default()).unwrap();
    assert_eq!(t.rows.len(), 2);
    // anthropic sorts first; its only event is unpriced: cost None, not 0.
    assert_eq!(t.rows[0][0], Cell::Text("anthropic".into()));
    assert_eq!((&t.rows[0][5], int(&t.rows[0][6])), (&Cell::Null, 1));
}

/// The per-ruleset fixture: `tests/data/contracts/per-ruleset.toml`, its rulesets resolved
/// next to it.
pub fn per_ruleset_contract() -> Contract {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/contracts");
    Contract::from_toml_with(
        include_str!("../../tests/data/contracts/per-ruleset.toml"),
        &crate::accounting::contract::Rulesets {
            base: Some(base),
            named: Vec::new(),
        },
    )
    .unwrap()
}

/// One clause read under the recorded classification and under two rulesets, at call and
/// session level (events: `crate::stored::reading::tests::events`, recorded under `chains`).
#[test]
fn a_clause_read_under_each_ruleset() {
    use crate::stored::reading::tests::{columns, events, CHAINS};
    let cols = columns(&events(), &Ruleset::from_toml(CHAINS).unwrap());
    let contract = per_ruleset_contract();
    let t = report_table(&cols, &contract, None, &[], Window::default()).unwrap();
    let got: Vec<(String, i128, i128, i128)> = t
        .rows
        .iter()
        .map(|r| match &r[0] {
            Cell::Text(name) => (name.clone(), int(&r[2]), int(&r[3]), int(&r[6])),
            other => panic!("{other:?}"),
        })
        .collect();
    let row =
        |n: &str, covered: i128, violating: i128| (n.to_owned(), covered, 100 * covered, violating);
    assert_eq!(
        got,
        [
            // Recorded under chains: A, C, D, E, F are stateless; A, D, E are off Azure.
            row("call-level", 5, 3),
            row("call-level-chains", 5, 3),
            // Stored responses are stateful when read strictly: only the chat calls C, E.
            row("call-level-chains-strict", 2, 1),
            // s1 is stateful (B continues A): C, D, E, F.
            row("session-level-chains", 4, 2),
            // Strictly every session is stateful (s3 by its client-held memory write).
            row("session-level-chains-strict", 0, 0),
        ]
    );
    let v = violating_rows(
        &cols,
        &contract,
        "call-level-chains-strict",
        "openai-on-azure",
        Window::default(),
    )
    .unwrap();
    assert_eq!(v, [4], "E");
    // Each ruleset was classified once and is kept with the columns.
    assert_eq!(cols.readings.len(), 2);
}

#[test]
fn violations_under_a_ruleset_show_the_events_as_read_under_it() {
    use crate::ledger::Durability;
    use crate::meter::Recorder;
    use crate::stored::columns::load;
    use crate::stored::reading::tests::{events, CHAINS};
    let store = std::sync::Arc::new(parking_lot::Mutex::new(
        Store::open(None, Durability::Sync).unwrap(),
    ));
    let chains = std::sync::Arc::new(Ruleset::from_toml(CHAINS).unwrap());
    let recorder =
        Recorder::new(std::sync::Arc::clone(&store), chains, Durability::Sync, 16).unwrap();
    for e in events() {
        recorder.write_now(&recorder.wrap(e)).unwrap();
    }
    let cols = load(&store.lock()).unwrap();
    let contract = per_ruleset_contract();
    let w = Window::default();
    let rows = violations(
        &store.lock(),
        &cols,
        &contract,
        "call-level",
        "openai-on-azure",
        w,
    )
    .unwrap();
    assert_eq!(rows.len(), 3, "A, D, E as recorded");
    assert_eq!(&*rows[2].rec.classification().ruleset, "chains");
    assert_eq!(rows[2].session_tag, Tag::Stateless);
    // E read strictly: its session s3 is stateful (the client-held memory write counts).
    let rows = violations(
        &store.lock(),
        &cols,
        &contract,
        "call-level-chains-strict",
        "openai-on-azure",
        w,
    )
    .unwrap();
    assert_eq!(rows.len(), 1);
    let e = &rows[0];
    assert_eq!(e.rec.seq(), Some(5));
    assert_eq!(e.rec.event.api.as_deref(), Some("chat.completions"));
    let c = e.rec.classification();
    assert_eq!((&*c.ruleset, c.tag), ("chains-strict", Tag::Stateless));
    assert_eq!(e.session_tag, Tag::Stateful);
    assert_eq!(cols.session_tag[4], Tag::Stateless, "as recorded");
}
