//! `classify_request` on typical requests, JSON parse included, without Python:
//! `cargo bench --bench classify_request` prints one JSON line per request shape with the best
//! ns/request over several rounds (the issue's target: <= 2 µs for a 2 KB JSON body): wall
//! clock, and on-CPU time from /proc/thread-self/schedstat (Linux), which a loaded machine
//! inflates much less. `BENCH_ONLY=text` runs only the shapes whose name contains `text`, and
//! `BENCH_ONLY==name` only the shape named exactly `name`; `BENCH_N=n` makes it one round of `n`
//! calls. Together they count one shape's instructions per request, which load does not inflate
//! at all: the difference between `valgrind --tool=callgrind` totals at two values of `BENCH_N`,
//! divided by the difference in calls.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use _core::capture::http::{classify_request, describe_request, HttpRequest};
use _core::classify::Ruleset;

/// A realistic ~2 KB Chat Completions body: system prompt, a few turns, a tool definition.
fn chat_body() -> Vec<u8> {
    let para = "The quarterly report shows revenue grew 12% while operating costs held flat; \
                summarise the drivers and flag anything unusual in the regional breakdown. ";
    let body = serde_json::json!({
        "model": "gpt-5",
        "messages": [
            {"role": "system", "content": format!("You are a careful financial analyst. {para}")},
            {"role": "user", "content": para.repeat(6)},
            {"role": "assistant", "content": para.repeat(3)},
            {"role": "user", "content": "And the \"EMEA\" numbers?\nList them."},
        ],
        "tools": [{"type": "function", "function": {"name": "lookup_region",
            "description": "Look up a region's figures", "parameters": {"type": "object",
            "properties": {"region": {"type": "string"}}, "required": ["region"]}}}],
        "temperature": 0.2,
        "store": true,
        "stream": true,
        "stream_options": {"include_usage": true},
        "prompt_cache_key": "tenant-42",
    });
    serde_json::to_vec(&body).unwrap()
}

fn responses_body() -> Vec<u8> {
    let text = "Continue the analysis with the figures from the previous answer. ".repeat(28);
    serde_json::to_vec(&serde_json::json!({
        "model": "gpt-5", "input": text, "previous_response_id": "resp_68af0c2e",
        "store": false, "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}],
    }))
    .unwrap()
}

/// Nanoseconds this thread has run on a CPU (Linux schedstat), if available.
fn cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The best ns per call of `f` over `rounds` rounds of `n` calls: wall clock and on-CPU.
fn best_of(rounds: usize, n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut best = f64::INFINITY;
    let mut best_cpu = f64::INFINITY;
    for _ in 0..rounds {
        let c0 = cpu_ns();
        let t0 = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(t0.elapsed().as_nanos() as f64 / n as f64);
        if let (Some(a), Some(b)) = (c0, cpu_ns()) {
            best_cpu = best_cpu.min((b - a) as f64 / n as f64);
        }
    }
    (best, best_cpu)
}

/// Whether `BENCH_ONLY` (when set) selects the shape `name`.
fn selected(name: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| match only.strip_prefix('=') {
        Some(exact) => name == exact,
        None => name.contains(&only),
    })
}

fn print(name: &str, body: &[u8], (best, best_cpu): (f64, f64), rounds: usize, n: usize) {
    let cpu = if best_cpu.is_finite() {
        format!("{best_cpu:.1}")
    } else {
        "null".into()
    };
    println!(
        "{{\"bench\": \"{name}\", \"body_bytes\": {}, \"ns_per_request\": {best:.1}, \"cpu_ns_per_request\": {cpu}, \"requests\": {n}, \"rounds\": {rounds}}}",
        body.len()
    );
}

fn bench(name: &str, url: &str, headers: &[(&str, &str)], body: &[u8], rounds: usize, n: usize) {
    if !selected(name) {
        return;
    }
    let rs = Ruleset::builtin_default();
    let venues = BTreeMap::new();
    let req = HttpRequest {
        method: "POST",
        url,
        headers,
        body: Some(body),
    };
    // Warm up and check it classifies.
    let (ev, _) = classify_request(&req, &rs, &venues).unwrap();
    assert_ne!(ev.api.as_deref(), Some("unknown"));
    let t = best_of(rounds, n, || {
        black_box(classify_request(black_box(&req), &rs, &venues).unwrap());
    });
    print(name, body, t, rounds, n);
}

/// The capture part alone (URL, headers, body, event; no rules).
fn bench_describe(name: &str, url: &str, body: &[u8], rounds: usize, n: usize) {
    if !selected(name) {
        return;
    }
    let venues = BTreeMap::new();
    let req = HttpRequest {
        method: "POST",
        url,
        headers: &[("content-type", "application/json")],
        body: Some(body),
    };
    let t = best_of(rounds, n, || {
        black_box(describe_request(black_box(&req), &venues).unwrap());
    });
    print(name, body, t, rounds, n);
}

fn main() {
    let quick = std::env::var("QUICK").is_ok();
    let fixed = std::env::var("BENCH_N").ok().and_then(|n| n.parse().ok());
    let (rounds, n) = match fixed {
        Some(n) => (1, n),
        None if quick => (3, 20_000),
        None => (7, 100_000),
    };
    let headers = [
        ("content-type", "application/json"),
        ("openai-beta", "assistants=v2"),
    ];
    bench(
        "chat.completions 2KB",
        "https://api.openai.com/v1/chat/completions",
        &headers,
        &chat_body(),
        rounds,
        n,
    );
    bench(
        "responses 2KB",
        "https://contoso.openai.azure.com/openai/v1/responses",
        &headers,
        &responses_body(),
        rounds,
        n,
    );
    let converse = br#"{"messages":[{"role":"user","content":[{"text":"hello there"}]}],"inferenceConfig":{"maxTokens":512}}"#;
    bench("bedrock converse", "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse", &[], converse, rounds, n);
    bench(
        "chat.completions 2KB, an operator's host",
        "https://api.groq.com/openai/v1/chat/completions",
        &headers,
        &chat_body(),
        rounds,
        n,
    );
    bench(
        "chat.completions 2KB, an unknown host",
        "http://127.0.0.1:8080/v1/chat/completions",
        &headers,
        &chat_body(),
        rounds,
        n,
    );
    bench_describe(
        "describe only: chat.completions 2KB",
        "https://api.openai.com/v1/chat/completions",
        &chat_body(),
        rounds,
        n,
    );
}
