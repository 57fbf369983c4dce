//! Unit tests of the GenAI span mapping (and of export → parse → map being lossless).

use serde_json::{json, Map, Value};

use super::*;
use crate::otel::{parse_otlp_json, spans_from_events, KIND_INTERNAL};

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

fn span(id: &str, parent: Option<&str>, kind: i64, attrs: Value) -> Span {
    Span {
        trace_id: TRACE.into(),
        span_id: format!("{id:0>16}"),
        parent_span_id: parent.map(|p| format!("{p:0>16}")),
        name: "x".into(),
        kind,
        start_ns: 1_000,
        end_ns: 1_500,
        attributes: attrs.as_object().unwrap().clone(),
        ..Default::default()
    }
}

fn map(spans: &[Span]) -> Vec<Map<String, Value>> {
    Mapper::map_all(BTreeMap::new(), spans).unwrap()
}

#[test]
fn chat_span_current_style() {
    let s = span(
        "1",
        None,
        KIND_CLIENT,
        json!({
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "azure.ai.openai",
            "gen_ai.request.model": "gpt-5",
            "gen_ai.response.id": "resp_abc",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.usage.cache_read.input_tokens": 40,
            "gen_ai.conversation.id": "conv_1",
            "server.address": "contoso.openai.azure.com",
        }),
    );
    let ev = &map(&[s])[0];
    assert_eq!(ev["kind"], "model_call");
    assert_eq!(ev["provider"], "azure.ai.openai");
    assert_eq!(ev["api"], "responses");
    assert_eq!(ev["model"], "gpt-5");
    assert_eq!(ev["venue"], "azure");
    assert_eq!(ev["session_id"], "conv_1");
    assert_eq!(
        (ev["input_tokens"].clone(), ev["cached_tokens"].clone()),
        (json!(100), json!(40))
    );
    assert_eq!(ev["duration_ns"], 500);
    assert_eq!(ev["status"], "ok");
    assert_eq!(ev["attrs"]["venue_evidence"]["rule"], "venue-endpoint");
    assert_eq!(ev["attrs"]["api_inferred_from"], "gen_ai.response.id");
    assert_eq!(ev["id"], format!("otel:{TRACE}:0000000000000001"));
}

#[test]
fn chat_span_old_style_maps_system_names_and_prompt_tokens() {
    let s = span(
        "1",
        None,
        KIND_CLIENT,
        json!({
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "az.ai.openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": "12",
            "gen_ai.usage.completion_tokens": 3,
            "server.address": "llm-proxy.internal",
        }),
    );
    let mut venues = BTreeMap::new();
    venues.insert("llm-proxy.internal".to_owned(), "on_prem".to_owned());
    let ev = &Mapper::map_all(venues, &[s]).unwrap()[0];
    assert_eq!(ev["provider"], "azure.ai.openai");
    assert_eq!(ev["api"], "chat.completions");
    assert_eq!(
        (ev["input_tokens"].clone(), ev["output_tokens"].clone()),
        (json!(12), json!(3))
    );
    assert_eq!(ev["venue"], "on_prem");
    assert_eq!(
        ev["session_id"], TRACE,
        "no conversation id: the trace is the session"
    );
    for (old, new) in [
        ("vertex_ai", "gcp.vertex_ai"),
        ("gemini", "gcp.gemini"),
        ("xai", "x_ai"),
        ("openai", "openai"),
    ] {
        assert_eq!(provider_name(old), new);
    }
}

#[test]
fn agent_tree_gives_session_agent_parent_and_mcp() {
    let spans = [
        span(
            "1",
            None,
            KIND_INTERNAL,
            json!({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage", "gen_ai.conversation.id": "c9"}),
        ),
        span(
            "2",
            Some("1"),
            KIND_CLIENT,
            json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-5"}),
        ),
        span(
            "3",
            Some("1"),
            KIND_INTERNAL,
            json!({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup", "mcp.session.id": "m-1", "mcp.method.name": "tools/call"}),
        ),
        span(
            "4",
            Some("3"),
            KIND_CLIENT,
            json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude", "gen_ai.usage.input_tokens": 5, "gen_ai.usage.cache_read.input_tokens": 7}),
        ),
        span("5", None, KIND_INTERNAL, json!({"http.method": "GET"})),
    ];
    let evs = map(&spans);
    assert_eq!(
        evs.len(),
        3,
        "invoke_agent (in-process) and plain spans are not events"
    );
    assert!(evs
        .iter()
        .all(|e| e["session_id"] == "c9" && e["agent"] == "triage"));
    assert!(evs[0].get("parent_id").is_none());
    assert_eq!(evs[1]["kind"], "tool_call");
    assert_eq!(evs[1]["tool_kind"], "mcp");
    assert_eq!(evs[1]["mcp_session_id"], "m-1");
    assert_eq!(
        evs[2]["parent_id"], evs[1]["id"],
        "nested under the tool call"
    );
    assert_eq!(evs[2]["api"], "messages");
    assert_eq!(
        evs[2]["input_tokens"], 12,
        "cached tokens outside input are added back"
    );
    assert_eq!(evs[2]["attrs"]["input_tokens_adjusted"], true);
}

#[test]
fn live_mapper_forgets_finished_spans() {
    let root = span(
        "1",
        None,
        KIND_INTERNAL,
        json!({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a", "gen_ai.conversation.id": "c"}),
    );
    let chat = span(
        "2",
        Some("1"),
        KIND_CLIENT,
        json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m"}),
    );
    let mut m = Mapper::new(BTreeMap::new());
    m.start(&root);
    m.start(&chat);
    let ev = m.end(&chat).unwrap().unwrap();
    assert_eq!(
        (ev["session_id"].clone(), ev["agent"].clone()),
        (json!("c"), json!("a"))
    );
    assert!(m.end(&root).unwrap().is_none());
    assert!(m.nodes.is_empty() && m.traces.is_empty());
}

#[test]
fn remote_agents_memory_and_retrieval() {
    let spans = [
        span(
            "1",
            None,
            KIND_CLIENT,
            json!({"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "aws.bedrock", "gen_ai.agent.id": "AG1", "gen_ai.conversation.id": "sess-1"}),
        ),
        span(
            "2",
            None,
            KIND_CLIENT,
            json!({"gen_ai.operation.name": "search_memory", "gen_ai.provider.name": "aws.bedrock", "gen_ai.memory.store.id": "mem-1", "gen_ai.memory.scope": "user"}),
        ),
        span(
            "3",
            None,
            KIND_INTERNAL,
            json!({"gen_ai.operation.name": "upsert_memory", "gen_ai.memory.record.id": "r1"}),
        ),
        span(
            "4",
            None,
            KIND_INTERNAL,
            json!({"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb"}),
        ),
        span(
            "5",
            None,
            KIND_CLIENT,
            json!({"gen_ai.operation.name": "delete_memory", "gen_ai.memory.store.id": "mem-1"}),
        ),
    ];
    let evs = map(&spans);
    assert_eq!(evs[0]["api"], "invoke_agent");
    assert_eq!(evs[0]["request"]["sessionId"], "sess-1");
    assert_eq!(evs[0]["model"], "unknown");
    let ops: Vec<_> = evs[1..]
        .iter()
        .map(|e| (e["op"].clone(), e["holder"].clone(), e["store"].clone()))
        .collect();
    assert_eq!(
        ops,
        vec![
            (json!("read"), json!("provider"), json!("mem-1")),
            (json!("write"), json!("client"), json!("memory")),
            (json!("read"), json!("client"), json!("kb")),
            (json!("delete"), json!("provider"), json!("mem-1")),
        ]
    );
    assert_eq!(evs[1]["scope"], "user");
    assert_eq!(evs[3]["scope"], "global");
    assert!(evs[1].get("venue").is_none() && evs[1].get("status").is_none());
}

#[test]
fn a_client_agent_span_with_model_calls_beneath_is_in_process() {
    // The OpenTelemetry contrib OpenAI Agents instrumentation marks the in-process agent CLIENT
    // and gives it a provider and a server address; the model calls beneath it are the calls.
    let agent = json!({"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "openai", "server.address": "api.openai.com", "gen_ai.agent.name": "weather_agent"});
    let chat = json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4.1-mini", "gen_ai.usage.input_tokens": 21, "gen_ai.usage.output_tokens": 7});
    let spans = [
        span("1", None, KIND_CLIENT, agent.clone()),
        span("2", Some("1"), KIND_CLIENT, chat.clone()),
    ];
    let evs = map(&spans);
    assert_eq!(evs.len(), 1);
    assert_eq!(
        (&evs[0]["api"], &evs[0]["agent"]),
        (&json!("chat.completions"), &json!("weather_agent"))
    );
    // Alone, or naming the agent id a remote service knows it by, it is a remote agent's call.
    let evs = map(&[span("1", None, KIND_CLIENT, agent.clone())]);
    assert_eq!(evs[0]["api"], "invoke_agent");
    let mut remote = agent;
    remote["gen_ai.agent.id"] = json!("AGENT12345");
    let evs = map(&[
        span("1", None, KIND_CLIENT, remote),
        span("2", Some("1"), KIND_CLIENT, chat),
    ]);
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["api"], "invoke_agent");
}

#[test]
fn errors_and_bad_values() {
    let mut s = span(
        "1",
        None,
        KIND_CLIENT,
        json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m"}),
    );
    s.status_code = STATUS_ERROR;
    assert_eq!(map(&[s])[0]["status"], "error");
    let s = span(
        "1",
        None,
        KIND_CLIENT,
        json!({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": -4}),
    );
    let err = Mapper::map_all(BTreeMap::new(), &[s]).unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, message } if field == "gen_ai.usage.input_tokens" && message.contains("span 0")),
        "{err}"
    );
    let s = span(
        "1",
        None,
        KIND_CLIENT,
        json!({"statemeter.kind": "model_call", "statemeter.request": "[1]"}),
    );
    assert!(Mapper::map_all(BTreeMap::new(), &[s]).is_err());
}

#[test]
fn export_then_import_is_lossless() {
    let rows: Vec<Map<String, Value>> = vec![
        json!({"id": "e1", "kind": "session_start", "ts": 10, "duration_ns": null, "session_id": "s-1", "parent_id": null, "agent": "bot", "tenant": "acme", "attrs": {}, "venue": "aws", "runtime": "agentcore", "runtime_session_id": "rt-1"}),
        json!({"id": "e2", "kind": "model_call", "ts": 11, "duration_ns": 5, "session_id": "s-1", "parent_id": "e1", "agent": "bot", "tenant": "acme", "attrs": {"k": [1, 2.5, "x"]}, "provider": "openai", "model": "gpt-5", "api": "responses", "venue": "azure", "endpoint": "https://c.openai.azure.com/openai/v1/responses", "request": {"previous_response_id": "resp_1", "conversation": {"id": "c"}}, "input_tokens": 9, "output_tokens": 2, "cached_tokens": 4, "status": "ok", "tag": "stateful", "evidence": [{"rule": "openai-responses-previous-response-id"}]}),
        json!({"id": "e3", "kind": "tool_call", "ts": 12, "duration_ns": 0, "session_id": "s-1", "parent_id": null, "agent": null, "tenant": null, "attrs": {}, "tool": "fetch", "tool_kind": "function", "effect": "read", "mcp_session_id": "m1", "status": "error"}),
        json!({"id": "e4", "kind": "state_op", "ts": 13, "duration_ns": null, "session_id": null, "parent_id": null, "agent": null, "tenant": null, "attrs": {}, "op": "write", "store": "ckpt", "holder": "client", "scope": "session", "key": "k1", "bytes": 77}),
        json!({"id": "e5", "kind": "session_end", "ts": 14, "duration_ns": 4, "session_id": "s-1", "parent_id": null, "agent": "bot", "tenant": "acme", "attrs": {}, "venue": null, "runtime": null, "runtime_session_id": null, "status": "cancelled"}),
        json!({"id": "e6", "kind": "model_call", "ts": 15, "duration_ns": null, "session_id": "s-1", "parent_id": null, "agent": null, "tenant": null, "attrs": {}, "provider": "anthropic", "model": "claude", "api": "messages", "venue": null, "endpoint": null, "request": {}, "input_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "status": "ok"}),
    ]
    .into_iter()
    .map(|v| v.as_object().unwrap().clone())
    .collect();
    let doc = spans_from_events(&rows).unwrap();
    let spans = parse_otlp_json(&doc.to_string()).unwrap();
    let back = map(&spans);
    assert_eq!(back.len(), rows.len());
    for (row, ev) in rows.iter().zip(&back) {
        let want = Event::from_map(&row_fields(row))
            .unwrap()
            .finish()
            .unwrap()
            .to_map();
        let got = Event::from_map(ev).unwrap().finish().unwrap().to_map();
        assert_eq!(got, want);
    }
    let model = &spans[1];
    assert_eq!(model.str_attr("statemeter.tag"), Some("stateful"));
    assert_eq!(
        model.attributes["statemeter.evidence"],
        json!(["openai-responses-previous-response-id"])
    );
    assert_eq!(model.str_attr("server.address"), Some("c.openai.azure.com"));
    assert_eq!(
        model.parent_span_id.as_deref(),
        Some(spans[0].span_id.as_str())
    );
    assert_eq!(model.trace_id, spans[0].trace_id, "one session, one trace");
}

/// The record fields of an exported row (without the classification keys).
fn row_fields(row: &Map<String, Value>) -> Map<String, Value> {
    row.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "tag" | "evidence"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn extreme_times_do_not_panic() {
    let mut s = span(
        "1",
        None,
        KIND_CLIENT,
        json!({"gen_ai.operation.name": "chat"}),
    );
    s.start_ns = i64::MIN + 1;
    s.end_ns = i64::MAX;
    let mut m = Mapper::new(BTreeMap::new());
    m.start(&s);
    let ev = m.end(&s).unwrap().unwrap();
    assert_eq!(ev["duration_ns"], i64::MAX);
    let row = json!({"id": "e", "kind": "tool_call", "ts": i64::MAX, "duration_ns": i64::MAX, "tool": "t"});
    let doc = spans_from_events(&[row.as_object().unwrap().clone()]).unwrap();
    let end = &doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["endTimeUnixNano"];
    assert_eq!(end, &json!(i64::MAX.to_string()));
}

/// A Vercel AI SDK `doGenerate` span: `gen_ai.system` is the SDK's provider id, no operation.
fn sdk_span(id: &str, parent: Option<&str>, extra: Value) -> Span {
    let mut attrs = json!({
        "gen_ai.system": "openai.responses",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": "14",
        "gen_ai.usage.output_tokens": "20",
    });
    for (k, v) in extra.as_object().unwrap() {
        attrs[k] = v.clone();
    }
    span(id, parent, KIND_INTERNAL, attrs)
}

#[test]
fn a_span_without_operation_but_with_provider_model_and_usage_is_a_model_call() {
    let ev = &map(&[sdk_span("1", None, json!({"gen_ai.response.id": "resp_1"}))])[0];
    assert_eq!(
        (&ev["kind"], &ev["provider"], &ev["api"], &ev["model"]),
        (
            &json!("model_call"),
            &json!("openai"),
            &json!("responses"),
            &json!("gpt-4o-mini")
        )
    );
    assert_eq!(
        (&ev["input_tokens"], &ev["output_tokens"]),
        (&json!(14), &json!(20))
    );
    assert_eq!(
        ev["attrs"]["inferred"]["from"],
        json!([
            "gen_ai.system",
            "gen_ai.request.model",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens"
        ])
    );
    assert_eq!(ev["attrs"]["inferred"]["kind"], "model_call");
    assert_eq!(ev["attrs"]["api_inferred_from"], "gen_ai.response.id");
    assert_eq!(
        ev["attrs"]["provider_evidence"],
        "gen_ai.system openai.responses is a provider id naming its API: provider openai, API responses"
    );
    Event::from_map(ev).and_then(Event::finish).unwrap();

    // Without a response id the provider id names the API.
    let ev = &map(&[sdk_span("1", None, json!({"gen_ai.system": "azure.chat"}))])[0];
    assert_eq!(
        (
            &ev["provider"],
            &ev["api"],
            &ev["attrs"]["api_inferred_from"]
        ),
        (
            &json!("azure.ai.openai"),
            &json!("chat.completions"),
            &json!("gen_ai.system")
        )
    );
    // A conventional provider name works the same, with the provider's usual API.
    let s = span(
        "1",
        None,
        KIND_CLIENT,
        json!({"gen_ai.provider.name": "anthropic", "gen_ai.response.model": "claude-sonnet-4-6",
               "gen_ai.usage.output_tokens": 3}),
    );
    let ev = &map(&[s])[0];
    assert_eq!(
        (&ev["provider"], &ev["api"], &ev["model"]),
        (
            &json!("anthropic"),
            &json!("messages"),
            &json!("claude-sonnet-4-6")
        )
    );
    assert!(ev["attrs"].get("provider_evidence").is_none());
}

#[test]
fn a_span_missing_provider_model_or_usage_is_recorded_with_what_it_has() {
    let missing = |ev: &Map<String, Value>| ev["attrs"].get("missing").cloned();
    // No provider: the model id names it (gpt-4o-mini: OpenAI), said in attributes_from.
    let mut s = sdk_span("1", None, json!({}));
    s.attributes.remove("gen_ai.system");
    let ev = &map(&[s])[0];
    assert_eq!(
        (&ev["provider"], &ev["model"]),
        (&json!("openai"), &json!("gpt-4o-mini"))
    );
    assert_eq!(
        ev["attrs"]["attributes_from"]["gen_ai.provider.name"],
        json!("gen_ai.request.model")
    );
    assert_eq!(missing(ev), None);
    // No model: `unknown`, and said.
    let mut s = sdk_span("1", None, json!({}));
    s.attributes.remove("gen_ai.request.model");
    s.attributes.remove("gen_ai.response.model");
    let ev = &map(&[s])[0];
    assert_eq!(
        (&ev["model"], &ev["input_tokens"]),
        (&json!("unknown"), &json!(14))
    );
    assert_eq!(missing(ev), Some(json!(["model"])));
    // No usage: a provider and a model are enough.
    let mut s = sdk_span("1", None, json!({}));
    s.attributes.remove("gen_ai.usage.input_tokens");
    s.attributes.remove("gen_ai.usage.output_tokens");
    let ev = &map(&[s])[0];
    assert_eq!(
        ev["attrs"]["inferred"]["from"],
        json!(["gen_ai.system", "gen_ai.request.model"])
    );
    assert_eq!(missing(ev), Some(json!(["usage"])));
    // A provider alone says nothing about a call.
    let s = span("1", None, KIND_INTERNAL, json!({"gen_ai.system": "openai"}));
    assert!(map(std::slice::from_ref(&s)).is_empty());
    assert_eq!(
        Mapper::map_spans(BTreeMap::new(), &[s])
            .pop()
            .unwrap()
            .unwrap(),
        Outcome::Skipped("incomplete_genai")
    );
    // An operation the mapping does not know, with a model and usage: a model call whose API
    // is the operation, with the evidence.
    let s = sdk_span(
        "1",
        None,
        json!({"gen_ai.operation.name": "image_generation", "gen_ai.system": "openai"}),
    );
    let ev = &map(&[s])[0];
    assert_eq!(
        (&ev["kind"], &ev["api"]),
        (&json!("model_call"), &json!("image_generation"))
    );
    assert_eq!(
        ev["attrs"]["api_inferred_from"],
        json!("gen_ai.operation.name")
    );
    assert_eq!(
        ev["attrs"]["inferred"]["from"][0],
        json!("gen_ai.operation.name")
    );
    // Without a model or usage it is not.
    let s = span(
        "1",
        None,
        KIND_INTERNAL,
        json!({"gen_ai.operation.name": "image_generation"}),
    );
    assert_eq!(
        Mapper::map_spans(BTreeMap::new(), &[s])
            .pop()
            .unwrap()
            .unwrap(),
        Outcome::Skipped("unsupported_operation")
    );
}

#[test]
fn an_inferred_call_that_repeats_another_is_not_recorded_twice() {
    // A wrapper summing its calls' usage (above) and an SDK span beneath a `chat` span.
    let spans = [
        sdk_span("1", None, json!({})),
        sdk_span("2", Some("1"), json!({"gen_ai.response.id": "resp_2"})),
        span(
            "3",
            None,
            KIND_CLIENT,
            json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                   "gen_ai.request.model": "gpt-5", "gen_ai.usage.input_tokens": 9}),
        ),
        sdk_span("4", Some("3"), json!({})),
    ];
    let ids = |evs: &[Map<String, Value>]| {
        evs.iter()
            .map(|e| e["attrs"]["otel.span_id"].as_str().unwrap()[15..].to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&map(&spans)), ["2", "3"]);
    // Live spans end children first and learn the same.
    let mut m = Mapper::new(BTreeMap::new());
    for s in &spans {
        m.start(s);
    }
    let mut live = Vec::new();
    for i in [1, 0, 3, 2] {
        live.extend(m.end(&spans[i]).unwrap());
    }
    assert_eq!(ids(&live), ["2", "3"]);
    assert_eq!(m.open_spans(), 0);
}

#[test]
fn request_attributes_become_the_providers_parameters() {
    let conv = "conv_689667905b048191b4740501625afd940c7533ace33a2dab";
    let s = sdk_span(
        "1",
        None,
        json!({
            "gen_ai.system": "openai",
            "gen_ai.openai.request.previous_response_id": "resp_0",
            "gen_ai.openai.request.store": "false",
            "gen_ai.openai.request.background": true,
            "gen_ai.conversation.id": conv,
        }),
    );
    let ev = &map(&[s])[0];
    assert_eq!(
        ev["api"], "responses",
        "previous_response_id is Responses-only"
    );
    assert_eq!(
        ev["attrs"]["api_inferred_from"],
        "gen_ai.openai.request.previous_response_id"
    );
    assert_eq!(
        ev["request"],
        json!({"previous_response_id": "resp_0", "store": false, "background": true,
               "conversation": conv})
    );
    assert_eq!(
        ev["attrs"]["request_from"],
        json!({
            "previous_response_id": "gen_ai.openai.request.previous_response_id",
            "store": "gen_ai.openai.request.store",
            "background": "gen_ai.openai.request.background",
            "conversation": "gen_ai.conversation.id",
        })
    );
    assert_eq!(ev["session_id"], conv);

    // The instrumentation's conversation attribute; a hand-set key wins.
    let s = span(
        "1",
        None,
        KIND_CLIENT,
        json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "azure.ai.openai",
               "gen_ai.request.model": "gpt-5",
               "gen_ai.openai.request.conversation_id": "conv_x",
               "gen_ai.openai.request.store": true,
               "statemeter.request.store": false}),
    );
    let ev = &map(&[s])[0];
    assert_eq!(ev["api"], "responses");
    assert_eq!(
        ev["request"],
        json!({"conversation": "conv_x", "store": false})
    );
    assert_eq!(
        ev["attrs"]["request_from"],
        json!({"conversation": "gen_ai.openai.request.conversation_id"})
    );

    // An application's own conversation id, or one on another API, is only the session.
    for (conv_id, response_id) in [("conv_1", "resp_1"), (conv, "chatcmpl-1")] {
        let s = span(
            "1",
            None,
            KIND_CLIENT,
            json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                   "gen_ai.request.model": "gpt-5", "gen_ai.response.id": response_id,
                   "gen_ai.conversation.id": conv_id}),
        );
        let ev = &map(&[s])[0];
        assert!(ev.get("request").is_none(), "{conv_id} {response_id}");
        assert!(ev["attrs"].get("request_from").is_none());
        assert_eq!(ev["session_id"], conv_id);
    }
    // A value that is not a flag is not a request parameter.
    let s = sdk_span("1", None, json!({"gen_ai.openai.request.store": "yes"}));
    assert!(map(&[s])[0].get("request").is_none());
}

#[test]
fn provider_ids_naming_an_api() {
    use crate::otel::conventions::sdk_provider_id;
    for (id, want) in [
        ("openai.responses", Some(("openai", Some("responses")))),
        ("openai.chat", Some(("openai", Some("chat.completions")))),
        ("openai.completion", Some(("openai", Some("completions")))),
        ("openai.embedding", Some(("openai", Some("embeddings")))),
        (
            "azure.responses",
            Some(("azure.ai.openai", Some("responses"))),
        ),
        ("anthropic.messages", Some(("anthropic", Some("messages")))),
        (
            "google.generative-ai",
            Some(("gcp.gemini", Some("generate_content"))),
        ),
        (
            "google.vertex.chat",
            Some(("gcp.vertex_ai", Some("generate_content"))),
        ),
        ("amazon-bedrock", Some(("aws.bedrock", Some("converse")))),
        (
            "mistral.chat",
            Some(("mistral_ai", Some("chat.completions"))),
        ),
        ("xAI.chat", Some(("x_ai", Some("chat.completions")))),
        ("openai.image", Some(("openai", None))),
        // The conventions' own names, old names and unknown ids are not provider ids.
        ("azure.ai.openai", None),
        ("aws.bedrock", None),
        ("openai", None),
        ("az.ai.openai", None),
        ("openai-compatible.chat", None),
        ("ollama", None),
    ] {
        assert_eq!(sdk_provider_id(id), want, "{id}");
    }
}
