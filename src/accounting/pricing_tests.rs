//! Unit tests of [`super`]: parsing, matching and exact costs.

use super::*;
use crate::accounting::calendar::parse_instant;

const TABLE: &str = r#"
currency = "USD"
as_of = "2026-01-15"
[[price]]
provider = "openai"
model = "gpt-5"
input_per_mtok = "1.25"
cached_input_per_mtok = "0.125"
output_per_mtok = "10"

[[price]]
provider = "openai"
model = "gpt-5"
venue = "azure"
effective_from = "2026-01-01"
input_per_mtok = "1.375"
output_per_mtok = "11"
per_call = "0.0001"

[[price]]
provider = "openai"
model = "gpt-5"
effective_from = "2026-03-01"
effective_until = "2026-06-01"
input_per_mtok = "1"
output_per_mtok = "8"

[[runtime_price]]
runtime = "agentcore"
per_session_hour = "0.0895"

[[storage_price]]
store = "agentcore-memory"
per_gb_month = "0.25"
"#;

fn ts(s: &str) -> i64 {
    parse_instant(s).unwrap()
}

fn err(text: &str) -> String {
    PriceTable::from_toml(text).unwrap_err().to_string()
}

#[test]
fn matching_prefers_venue_then_latest_in_force() {
    let t = PriceTable::from_toml(TABLE).unwrap();
    assert_eq!(t.currency, "USD");
    assert_eq!(t.as_of.as_deref(), Some("2026-01-15"));
    let line = |venue: Option<&str>, at: &str| {
        t.token_price("openai", "gpt-5", venue, ts(at))
            .map(|p| p.line)
    };
    // Before 2026-01-01 only the venue-less base price exists.
    assert_eq!(
        line(Some("azure"), "2025-12-31T23:59:59.999999999Z"),
        Some(4)
    );
    // The azure price is in force from its first nanosecond and beats the venue-less ones,
    // even the later-dated one from March.
    assert_eq!(line(Some("azure"), "2026-01-01"), Some(11));
    assert_eq!(line(Some("azure"), "2026-04-01"), Some(11));
    // Other venues: the latest venue-less price in force.
    assert_eq!(line(Some("aws"), "2026-02-28"), Some(4));
    assert_eq!(line(Some("aws"), "2026-03-01"), Some(20));
    assert_eq!(line(None, "2026-05-31T23:59:59Z"), Some(20));
    // effective_until is exclusive: back to the base price.
    assert_eq!(line(None, "2026-06-01"), Some(4));
    assert!(t.token_price("openai", "gpt-4o", None, 0).is_none());
    assert!(t.token_price("anthropic", "gpt-5", None, 0).is_none());
}

#[test]
fn call_costs_are_exact() {
    let t = PriceTable::from_toml(TABLE).unwrap();
    let at = ts("2025-12-01");
    // (1200-200)×1.25 + 200×0.125 + 300×10 per M = 1250 + 25 + 3000 = 4275 per M
    // = 0.004275 USD = 4_275_000 nanos.
    assert_eq!(
        t.call_cost("openai", "gpt-5", Some("azure"), at, (1200, 200, 300))
            .unwrap(),
        Some(4_275_000)
    );
    // Azure from 2026: cached defaults to input: 1200×1.375 + 300×11 = 1650 + 3300 = 4950 per M
    // = 4_950_000 nanos, + per_call 0.0001 = 100_000 nanos.
    let at = ts("2026-02-01");
    assert_eq!(
        t.call_cost("openai", "gpt-5", Some("azure"), at, (1200, 200, 300))
            .unwrap(),
        Some(5_050_000)
    );
    assert_eq!(
        t.call_cost("openai", "nope", None, at, (1, 0, 1)).unwrap(),
        None
    );
    // A zero-token call still costs its per-call fee; without one, exactly 0 (priced, not None).
    assert_eq!(
        t.call_cost("openai", "gpt-5", Some("azure"), at, (0, 0, 0))
            .unwrap(),
        Some(100_000)
    );
    assert_eq!(
        t.call_cost("openai", "gpt-5", None, at, (0, 0, 0)).unwrap(),
        Some(0)
    );
}

#[test]
fn rounding_happens_once_per_event_half_to_even() {
    let t = PriceTable::from_toml(
        "currency = \"EUR\"\n[[price]]\nprovider = \"p\"\nmodel = \"m\"\ninput_per_mtok = \"0.0005\"\noutput_per_mtok = \"0.0015\"\n",
    )
    .unwrap();
    // One input token: 0.0005 × 1000 / 1 = 0.5 nanos -> 0 (half to even).
    assert_eq!(t.call_cost("p", "m", None, 0, (1, 0, 0)).unwrap(), Some(0));
    // One output token: 1.5 -> 2.
    assert_eq!(t.call_cost("p", "m", None, 0, (0, 0, 1)).unwrap(), Some(2));
    // Both: 0.5 + 1.5 = 2.0 exactly (rounding each would give 0 + 2 = 2 too) ...
    assert_eq!(t.call_cost("p", "m", None, 0, (1, 0, 1)).unwrap(), Some(2));
    // ... three inputs: 1.5 -> 2; five inputs: 2.5 -> 2; rounding the sum, not the parts.
    assert_eq!(t.call_cost("p", "m", None, 0, (3, 0, 0)).unwrap(), Some(2));
    assert_eq!(t.call_cost("p", "m", None, 0, (5, 0, 0)).unwrap(), Some(2));
    assert_eq!(t.call_cost("p", "m", None, 0, (3, 0, 1)).unwrap(), Some(3));
    // Huge counts stay exact (u64::MAX tokens at 18 decimal places).
    let t = PriceTable::from_toml(
        "currency = \"USD\"\n[[price]]\nprovider = \"p\"\nmodel = \"m\"\ninput_per_mtok = \"999999999999999.999999999999999999\"\noutput_per_mtok = \"0\"\n",
    )
    .unwrap();
    // (2^64 - 1) × (10^33 - 1) × 1000 / 10^18, computed exactly through 256 bits.
    let big = t.call_cost("p", "m", None, 0, (u64::MAX, 0, 0)).unwrap();
    assert_eq!(big, Some(18446744073709551614999999999999981553));
    let c = t
        .call_cost("p", "m", None, 0, (1_000_000, 0, 0))
        .unwrap()
        .unwrap();
    // 10^6 × (10^33 - 1) × 1000 / 10^18 = 10^24 - 10^-9 -> 10^24.
    assert_eq!(c, 1_000_000_000_000_000_000_000_000);
}

#[test]
fn runtime_and_storage_costs() {
    let t = PriceTable::from_toml(TABLE).unwrap();
    let rt = t.runtime_price("agentcore", Some("aws"), 0).unwrap();
    // 90 minutes at 0.0895/h = 0.13425 USD.
    assert_eq!(rt.cost(90 * 60 * 1_000_000_000).unwrap(), 134_250_000);
    // One second: 0.0895/3600 = 0.0000248611.. USD = 24861.1 nanos -> 24861.
    assert_eq!(rt.cost(1_000_000_000).unwrap(), 24_861);
    assert!(t.runtime_price("foundry", None, 0).is_none());
    let st = t.storage_price("agentcore-memory", 0).unwrap();
    // 2 GB for one billing month at 0.25 = 0.5 USD.
    let month = NS_PER_BILLING_MONTH as u64;
    assert_eq!(st.cost(2_000_000_000, month).unwrap(), 500_000_000);
    // 512 bytes for one day: 512 × 86400e9 × 25 / (2.628e15 × 100) nanos = 4.2082.. -> 4.
    assert_eq!(st.cost(512, 86_400_000_000_000).unwrap(), 4);
}

#[test]
fn errors_name_the_entry_field_and_line() {
    let e = err(&TABLE.replace("output_per_mtok = \"10\"", "output_per_mtok = 10.5"));
    assert!(
        e.contains("floats are not exact") && e.contains("line 9"),
        "{e}"
    );
    let e = err(&TABLE.replace("\"1.25\"", "\"-1.25\""));
    assert!(
        e.contains("negative") && e.contains("price 1") && e.contains("line 7"),
        "{e}"
    );
    let e = err(&TABLE.replace("currency = \"USD\"\n", ""));
    assert!(e.contains("`currency` is required"), "{e}");
    let e = err(&TABLE.replace("\"USD\"", "\"dollars\""));
    assert!(e.contains("ISO 4217"), "{e}");
    let e = err(&TABLE.replace("per_call = \"0.0001\"", "per_cal = \"0.0001\""));
    assert!(
        e.contains("unknown key `per_cal`") && e.contains("line 18"),
        "{e}"
    );
    let e = err(&TABLE.replace(
        "effective_until = \"2026-06-01\"",
        "effective_until = \"2026-03-01\"",
    ));
    assert!(
        e.contains("must be after `effective_from`") && e.contains("line 24"),
        "{e}"
    );
    let e = err(&TABLE.replace("output_per_mtok = \"8\"", ""));
    assert!(
        e.contains("`output_per_mtok` is required") && e.contains("price 3"),
        "{e}"
    );
    // The same model, venue and effective_from twice is ambiguous.
    let dup = format!("{TABLE}\n[[price]]\nprovider = \"openai\"\nmodel = \"gpt-5\"\ninput_per_mtok = \"2\"\noutput_per_mtok = \"2\"\n");
    let e = err(&dup);
    assert!(
        e.contains("already priced at line 4") && e.contains("ambiguous"),
        "{e}"
    );
    let e = err("currency = \"USD\"\n[[price]]\nprovider = \"p\"\nmodel = \"m\"\ninput_per_mtok = \"1.0000000000000000001\"\noutput_per_mtok = \"1\"\n");
    assert!(e.contains("more than 18 digits"), "{e}");
    let e = err("currency = \"USD\"\nprice = 3\n");
    assert!(e.contains("[[price]]") && e.contains("line 2"), "{e}");
}

#[test]
fn the_narrow_cost_rounds_as_the_exact_one_and_gives_way_on_overflow() {
    let price = |input: &str, cached: &str, output: &str, per_call: &str| {
        let text = format!(
            "currency = \"USD\"\n[[price]]\nprovider = \"p\"\nmodel = \"m\"\ninput_per_mtok = \"{input}\"\ncached_input_per_mtok = \"{cached}\"\noutput_per_mtok = \"{output}\"\nper_call = \"{per_call}\"\n"
        );
        PriceTable::from_toml(&text).unwrap().prices.remove(0)
    };
    let prices = [
        price("2.5", "0.25", "10", "0"),
        price("3", "0.3", "15", "0.0001"),
        price(
            "0.000000000000000007",
            "0.5",
            "1.123456789012345678",
            "0.000000001",
        ),
        price("1.0005", "0.00015", "7.77777", "0.0000005"),
        price("999999999", "999999999", "999999999", "999999999"),
    ];
    let counts = [
        0u64,
        1,
        2,
        3,
        7,
        999,
        1_000,
        123_457,
        1_000_000,
        9_876_543_210,
    ];
    for p in &prices {
        for &i in &counts {
            for &c in &counts[..5] {
                for &o in &counts {
                    let s = p.scale;
                    let cached = c.min(i);
                    let terms = [
                        (i - cached, p.input_per_mtok.units_at(s)),
                        (cached, p.cached_input_per_mtok.units_at(s)),
                        (o, p.output_per_mtok.units_at(s)),
                        (1_000_000, p.per_call.units_at(s)),
                    ];
                    assert_eq!(
                        p.cost(i, c, o).unwrap(),
                        p.wide_cost(&terms).unwrap(),
                        "{i} {c} {o} at line {}",
                        p.line
                    );
                }
            }
        }
    }
    // Past u128 the narrow sum gives way to the exact one.
    let terms = [(u64::MAX, u128::MAX / 2), (0, 0), (0, 0), (0, 0)];
    assert_eq!(narrow_cost(&terms, 0), None);
    assert_eq!(narrow_cost(&[(3, 5), (0, 0), (0, 0), (0, 0)], 4), Some(2)); // 1.5 -> 2
    assert_eq!(narrow_cost(&[(5, 5), (0, 0), (0, 0), (0, 0)], 4), Some(2)); // 2.5 -> 2
    assert_eq!(narrow_cost(&[(7, 5), (0, 0), (0, 0), (0, 0)], 4), Some(4)); // 3.5 -> 4
}
