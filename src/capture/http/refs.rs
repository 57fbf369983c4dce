//! References to provider-held content found inside content members, kept without the content:
//! the ids of stored files that message parts, input items and attachments name, and Gemini
//! Files-API URIs. An id or a URI is a reference (like `previous_response_id`), not content.
//!
//! Reading them costs nothing on the usual request: the whole body is searched once for a
//! `"file_id"` key ([`super::has_key`]); only when there is one are the members of
//! [`FILE_SCANNED`] kept as raw slices and walked, and the walk only descends into values that
//! contain the key.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde_json::Value;

use super::body::{elements, for_each_str_value, Body, KeyFinder};
use super::limits::MAX_KEPT_ITEMS;

/// Defines [`FILE_SCANNED`] and [`is_file_scanned`] from one list (the test runs for every
/// top-level member a body skips, so it is a `match`, not a search of the list).
macro_rules! file_scanned {
    ($(#[$doc:meta])* [$($key:literal),* $(,)?]) => {
        $(#[$doc])*
        pub const FILE_SCANNED: &[&str] = &[$($key),*];

        /// Whether a top-level member is one of [`FILE_SCANNED`].
        pub fn is_file_scanned(k: &str) -> bool {
            matches!(k, $($key)|*)
        }
    };
}

file_scanned! {
    /// The content members that may reference stored files: chat `messages`, Responses `input`,
    /// Assistants message `content` / `attachments` / `additional_messages` / `thread`,
    /// managed-agent session `events`.
    [
        "messages",
        "input",
        "content",
        "attachments",
        "additional_messages",
        "thread",
        "events",
    ]
}

/// Finds a `"file_id"` key (the test every request's body gets).
pub static FILE_ID: LazyLock<KeyFinder> = LazyLock::new(|| KeyFinder::new("file_id"));

/// How deep the walk goes (message → content part → nested tool result → part → source).
const MAX_DEPTH: usize = 12;

/// Appends `id` to `out` unless it is there already. Stops one past the kept-array limit, so
/// that `limits::fit` records the cut without a hostile body making this quadratic.
pub fn push_unique(out: &mut Vec<Value>, id: Cow<'_, str>) {
    if out.len() > MAX_KEPT_ITEMS || id.is_empty() {
        return;
    }
    if !out.iter().any(|v| v.as_str() == Some(&id)) {
        out.push(Value::String(id.into_owned()));
    }
}

/// Appends (deduplicated, document order) the stored files the objects inside `raw` reference:
/// an OpenAI chat file part (`{"type": "file", "file": {"file_id"}}`), a Responses
/// `input_file` / `input_image` with a `file_id`, an Assistants `image_file` part or attachment
/// (`{"file_id", "tools"}`), an Anthropic `source: {"type": "file", "file_id"}` or
/// `container_upload` block, a managed-agent session's `{"type": "file", "file_id"}` resource.
/// Citations of files in replayed outputs and tool-call arguments are not references.
pub fn file_ids(raw: &str, out: &mut Vec<Value>) {
    walk(raw, 0, &mut |obj| {
        if let Some(id) = file_ref(obj) {
            push_unique(out, id);
        }
    });
}

fn file_ref<'a>(obj: &Body<'a>) -> Option<Cow<'a, str>> {
    match obj.str("type").as_deref() {
        Some("input_file" | "input_image" | "container_upload" | "file") => obj
            .str("file_id")
            .or_else(|| obj.object("file").and_then(|f| f.str("file_id"))),
        Some("image_file") => obj.object("image_file")?.str("file_id"),
        None if obj.has("tools") => obj.str("file_id"),
        _ => None,
    }
}

/// Calls `visit` on every object inside `raw` that may hold a `file_id` (depth-first).
fn walk<'a>(raw: &'a str, depth: usize, visit: &mut dyn FnMut(&Body<'a>)) {
    let text = raw.trim_start();
    if depth > MAX_DEPTH || !FILE_ID.in_json(text.as_bytes()) {
        return;
    }
    match text.as_bytes().first() {
        Some(b'{') => {
            if let Some(obj) = Body::parse(text.as_bytes()) {
                visit(&obj);
                for (_, v) in obj.members() {
                    walk(v, depth + 1, visit);
                }
            }
        }
        Some(b'[') => {
            if let Some(items) = elements(text) {
                for item in items {
                    walk(item, depth + 1, visit);
                }
            }
        }
        _ => {}
    }
}

/// Appends the Gemini Files-API URIs that `fileData.fileUri` / `file_data.file_uri` parts inside
/// `contents` name (`https://generativelanguage.googleapis.com/v1beta/files/{id}`). Other URIs
/// (`gs://`, YouTube, any web URL) point at data Google does not hold for the caller and are
/// not kept.
pub fn gemini_file_uris(contents: &str, out: &mut Vec<Value>) {
    for key in ["fileUri", "file_uri"] {
        for_each_str_value(contents, key, |uri| {
            if is_gemini_file(&uri) {
                // Without a query or fragment: the file's name is the reference.
                let end = uri.find(['?', '#']).unwrap_or(uri.len());
                push_unique(out, Cow::Borrowed(&uri[..end]));
            }
        });
    }
}

fn is_gemini_file(uri: &str) -> bool {
    uri.strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .and_then(|rest| rest.strip_prefix("generativelanguage.googleapis.com/"))
        .is_some_and(|path| {
            let path = path.split(['?', '#']).next().unwrap_or("");
            path.split('/').any(|s| s == "files")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(v: Value) -> Vec<Value> {
        let text = v.to_string();
        let mut out = Vec::new();
        file_ids(&text, &mut out);
        out
    }

    #[test]
    fn file_references_by_shape() {
        let openai = json!([
            {"role": "user", "content": [
                {"type": "text", "text": "SECRET"},
                {"type": "file", "file": {"file_id": "file-a"}},
                {"type": "input_file", "file_id": "file-b"},
                {"type": "input_image", "file_id": "file-c", "detail": "auto"},
                {"type": "image_file", "image_file": {"file_id": "file-d"}},
            ]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "x", "annotations": [
                {"type": "file_citation", "file_id": "file-cited"},
                {"type": "container_file_citation", "file_id": "cfile-1"},
            ]}]},
            {"file_id": "file-e", "tools": [{"type": "file_search"}]},
            {"type": "file", "file": {"file_id": "file-a"}},
        ]);
        assert_eq!(
            ids(openai),
            json!(["file-a", "file-b", "file-c", "file-d", "file-e"])
                .as_array()
                .unwrap()
                .clone()
        );
        let anthropic = json!([{"role": "user", "content": [
            {"type": "document", "source": {"type": "file", "file_id": "file_1"}},
            {"type": "container_upload", "file_id": "file_2"},
            {"type": "tool_result", "tool_use_id": "t", "content": [
                {"type": "image", "source": {"type": "file", "file_id": "file_3"}}]},
            {"type": "tool_use", "id": "t2", "name": "f", "input": {"file_id": "not-a-ref"}},
            {"type": "document", "source": {"type": "base64", "data": "SECRET"}},
        ]}]);
        assert_eq!(
            ids(anthropic),
            json!(["file_1", "file_2", "file_3"])
                .as_array()
                .unwrap()
                .clone()
        );
        assert!(ids(json!([{"content": "say \"file_id\": \"x\""}])).is_empty());
    }

    #[test]
    fn collection_stops_past_the_limit() {
        let parts: Vec<Value> = (0..500)
            .map(|i| json!({"type": "input_file", "file_id": format!("file-{i}")}))
            .collect();
        assert_eq!(ids(Value::Array(parts)).len(), MAX_KEPT_ITEMS + 1);
    }

    #[test]
    fn only_files_api_uris() {
        let contents = json!([{"parts": [
            {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc", "mimeType": "audio/mpeg"}},
            {"file_data": {"file_uri": "https://generativelanguage.googleapis.com/v1beta/files/def?alt=media"}},
            {"fileData": {"fileUri": "https://youtu.be/x"}},
            {"fileData": {"fileUri": "gs://bucket/files/a.pdf"}},
            {"fileData": {"fileUri": "https://generativelanguage.googleapis.com.evil.example/v1beta/files/x"}},
            {"fileData": {"fileUri": "https://example.com/generativelanguage.googleapis.com/files/x"}},
            {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}},
        ]}])
        .to_string();
        let mut out = Vec::new();
        gemini_file_uris(&contents, &mut out);
        assert_eq!(
            out,
            json!([
                "https://generativelanguage.googleapis.com/v1beta/files/abc",
                "https://generativelanguage.googleapis.com/v1beta/files/def"
            ])
            .as_array()
            .unwrap()
            .clone()
        );
    }
}
