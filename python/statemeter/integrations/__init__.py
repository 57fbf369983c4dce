"""Audit logs from the agent frameworks people already use, one line each:

- `statemeter.integrations.openai_agents`: `MeterProcessor`, `MeteredSession` (OpenAI Agents SDK)
- `statemeter.integrations.langchain`: `MeterCallbackHandler`, `MeteredCheckpointer`,
  `MeteredStore` (LangChain / LangGraph)
- `statemeter.integrations.otel`: `MeterSpanProcessor`, `import_otlp_json`, `export_otlp_json`
  (OpenTelemetry GenAI)
- `statemeter.integrations.agentcore`: `import_spans` (AgentCore Runtime sessions' own spans,
  linked to the client's `InvokeAgentRuntime` calls)

Each module imports its framework lazily, so installing statemeter never pulls them in. No
integration raises into the host application: failures are counted in
``meter.stats()["integration_errors"]`` and logged once (docs/integrations.md).
"""
