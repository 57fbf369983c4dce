//! Model Context Protocol over streamable HTTP: a JSON-RPC 2.0 body, or the `Mcp-Session-Id` /
//! `MCP-Protocol-Version` headers, make a request an MCP `tool_call` on any host. The tool is
//! `params.name` for `tools/call` (and `prompts/get`), else the JSON-RPC method. Arguments,
//! results and resource URIs are never read.

use serde_json::{Map, Value};

use super::body::Body;
use super::Ctx;

pub(super) struct McpCall {
    pub tool: String,
    pub session_id: Option<String>,
    pub attrs: Map<String, Value>,
}

/// Whether `body` is a JSON array (a JSON-RPC batch, MCP revision 2025-03-26).
pub(super) fn is_batch(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
        && Body::parse_first_of_array(body).is_some_and(|(b, _)| b.has("jsonrpc"))
}

pub(super) fn describe(cx: &Ctx<'_>) -> Option<McpCall> {
    let session_id = cx.header("mcp-session-id");
    let version = cx.header("mcp-protocol-version");
    let mut batch = None;
    let owned: Option<Body<'_>>;
    let rpc: Option<&Body<'_>> = match &cx.body {
        Some(b) if b.has("jsonrpc") => Some(b),
        Some(_) => None,
        None => {
            owned = cx
                .raw_body
                .filter(|b| is_batch(b))
                .and_then(Body::parse_first_of_array)
                .map(|(b, n)| {
                    batch = Some(n);
                    b
                });
            owned.as_ref()
        }
    };
    if rpc.is_none() && session_id.is_none() && version.is_none() {
        return None;
    }
    // An empty `method` or tool name names nothing: it is kept out of the event (a tool
    // call's `tool` must not be empty), and the call is then recorded as an unknown one.
    let raw_method = rpc.and_then(|b| b.str("method"));
    let has_method = raw_method.is_some();
    let method = raw_method.filter(|m| !m.is_empty()).map(|m| m.into_owned());
    let name = match method.as_deref() {
        Some("tools/call") | Some("prompts/get") => rpc
            .and_then(|b| b.object("params"))
            .and_then(|p| p.str("name"))
            .filter(|n| !n.is_empty())
            .map(|n| n.into_owned()),
        _ => None,
    };
    let tool = name.clone().or_else(|| method.clone()).unwrap_or_else(|| {
        if rpc.is_some() && !has_method {
            "response".to_owned()
        } else if cx.is("GET") {
            "stream".to_owned()
        } else if cx.is("DELETE") {
            "session/delete".to_owned()
        } else {
            "unknown".to_owned()
        }
    });
    let mut attrs = Map::new();
    if let Some(m) = method {
        attrs.insert("mcp.method.name".into(), Value::String(m));
    }
    if let Some(n) = name {
        attrs.insert("gen_ai.tool.name".into(), Value::String(n));
    }
    if let Some(v) = version {
        attrs.insert("mcp.protocol.version".into(), Value::String(v.to_owned()));
    }
    if let Some(n) = batch {
        attrs.insert("mcp.batch_size".into(), Value::from(n as u64));
    }
    Some(McpCall {
        tool,
        session_id: session_id.map(str::to_owned),
        attrs,
    })
}
