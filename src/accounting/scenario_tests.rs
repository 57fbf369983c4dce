//! Unit tests of [`super`] on the report fixture.

use super::*;
use crate::accounting::report::tests::{fixture, CONTRACT, PRICES};

fn cond(field: &str, values: &[Option<&str>]) -> Condition {
    Condition {
        field: field.into(),
        values: values.iter().map(|v| v.map(Into::into)).collect(),
    }
}

fn int(c: &Cell) -> i128 {
    match c {
        Cell::Int(v) => *v,
        other => panic!("not an int: {other:?}"),
    }
}

#[test]
fn selection_masks() {
    let cols = fixture();
    let m = |c: Vec<Condition>| Selection::new(c).unwrap().mask(&cols);
    assert_eq!(m(vec![]), [true; 6]);
    assert_eq!(
        m(vec![cond("session_tag", &[Some("stateful")])]),
        [true, true, false, false, false, false]
    );
    assert_eq!(
        m(vec![cond("venue", &[None])]),
        [false, false, false, false, false, true]
    );
    assert_eq!(
        m(vec![
            cond("venue", &[Some("aws"), None]),
            cond("provider", &[Some("openai")])
        ]),
        [false, true, true, false, false, true]
    );
    assert_eq!(m(vec![cond("venue", &[Some("gcp")])]), [false; 6]);
    let e = Selection::new(vec![cond("colour", &[Some("x")])])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("select.colour: is not a field"), "{e}");
    assert!(Selection::new(vec![cond("tag", &[Some("both")])]).is_err());
    assert!(Selection::new(vec![cond("tag", &[])]).is_err());
}

#[test]
fn moving_the_stateful_session_to_azure() {
    let cols = fixture();
    let contract = Contract::from_toml(CONTRACT).unwrap();
    let prices = PriceTable::from_toml(PRICES).unwrap();
    let sc = Scenario {
        name: "s1 to azure".into(),
        selection: Selection::new(vec![cond("session_tag", &[Some("stateful")])]).unwrap(),
        venue: Some("azure".into()),
        prices: None,
        baseline_prices: Some(&prices),
    };
    let r = run(&cols, &contract, &sc, &[], Window::default()).unwrap();
    assert_eq!((r.selected_events, r.moved_events), (2, 1));
    let all = r
        .compliance
        .rows
        .iter()
        .find(|x| x[0] == Cell::Text("all-calls".into()))
        .unwrap();
    // covered 4, selected 2 (A, B), violating 3 -> 2; B re-priced at azure:
    // 2000×2 + 200×20 = 8000 per M = 8,000,000 instead of 3,937,500.
    let got: Vec<Option<i128>> = all[2..]
        .iter()
        .map(|c| match c {
            Cell::Int(v) => Some(*v),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [4, 2, 3, 2, -1, 8_837_500, 12_900_000, 4_062_500, 4_837_500, 900_000, -3_937_500]
            .map(Some)
    );
    // Costs: every billable event; only B changes.
    let c = &r.costs.rows[0];
    assert_eq!(int(&c[0]), 6);
    assert_eq!(int(&c[1]), 2);
    assert_eq!(int(&c[4]), 4_062_500);
    assert_eq!((int(&c[5]), int(&c[6])), (1, 1));
}

#[test]
fn scenarios_judge_each_interpretation_under_its_ruleset() {
    use crate::accounting::report::tests::per_ruleset_contract;
    use crate::stored::reading::tests::{columns, events, CHAINS};
    let cols = columns(
        &events(),
        &crate::classify::Ruleset::from_toml(CHAINS).unwrap(),
    );
    let sc = Scenario {
        name: "all to azure".into(),
        selection: Selection::default(),
        venue: Some("azure".into()),
        prices: None,
        baseline_prices: None,
    };
    let r = run(&cols, &per_ruleset_contract(), &sc, &[], Window::default()).unwrap();
    // interpretation, clause, covered, selected, baseline violating, scenario violating.
    let got: Vec<(Cell, i128, i128, i128, i128)> = r
        .compliance
        .rows
        .iter()
        .map(|x| (x[0].clone(), int(&x[2]), int(&x[3]), int(&x[4]), int(&x[5])))
        .collect();
    let t = |n: &str| Cell::Text(n.into());
    assert_eq!(
        got,
        [
            (t("call-level"), 5, 5, 3, 0),
            (t("call-level-chains"), 5, 5, 3, 0),
            (t("call-level-chains-strict"), 2, 2, 1, 0),
            (t("session-level-chains"), 4, 4, 2, 0),
            (t("session-level-chains-strict"), 0, 0, 0, 0),
        ]
    );
    assert_eq!(r.moved_events, 3);
}
