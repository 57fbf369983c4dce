//! Capture: what the SDK clients really send and receive, turned into events.
//!
//! - [`http`]: a raw HTTP request (method, URL, headers, body) → the classified event it
//!   amounts to (`provider`, `venue`, `api`, `model`, state signals);
//! - [`usage`]: token usage and response ids read from a provider's response;
//! - [`call`]: one observed call kept raw (request as sent, response status and body) and
//!   turned into its event later, on the meter's writer thread;
//! - [`observed_body`]: a response body kept as the caller reads it (the part usage is read
//!   from, whether a stream reached its provider's end marker);
//! - [`agent_trace`]: the inner steps an Amazon Bedrock agent reports in its `InvokeAgent`
//!   trace, paired, timed and turned into events;
//! - [`body_bytes`]: a response body's bytes kept as they came, chunk by chunk;
//! - [`event_stream`]: AWS event-stream framing (the binary messages of Bedrock's streams);
//! - [`trace_part`]: an InvokeAgent stream's trace read from its raw bytes into
//!   [`agent_trace`];
//! - [`agent_turn`]: an InvokeAgent call and its stream's raw bytes, handed over when the
//!   stream ends and turned into the call's event and its steps' on the meter's writer thread.
//!
//! This layer sits above the rules engine (`crate::classify`): it builds events and asks a
//! ruleset for their verdict; nothing below it knows about HTTP.

pub mod agent_trace;
pub mod agent_turn;
pub mod body_bytes;
pub mod call;
pub mod event_stream;
pub mod http;
pub mod observed_body;
pub mod trace_part;
pub mod usage;
