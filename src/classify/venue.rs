//! Venue from an endpoint: which cloud served a request, judged from the host name alone; and
//! the third-party operators recognised by their host (who serves an OpenAI-compatible API that
//! is not OpenAI's).
//!
//! A user mapping for gateways and proxies (`{"llm-proxy.internal": "on_prem"}`; a key may start
//! with `*.` to match subdomains) is checked first, so it can override a built-in pattern; then
//! the model vendors' and clouds' own endpoints ([`BUILTIN`]), then the third-party operators
//! ([`OPERATORS`], whose venue is the operator). An unknown host gives `venue = "unknown"` with
//! evidence saying so — never a guess.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// How a venue was decided: the rule id and a human explanation (becomes evidence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VenueMatch {
    pub venue: String,
    pub rule: &'static str,
    pub explain: String,
}

/// `(pattern, venue)`: `*.` prefix = any subdomain; `{r}` = one DNS label (a region).
const BUILTIN: &[(&str, &str)] = &[
    ("api.openai.com", "openai"),
    ("*.openai.azure.com", "azure"),
    ("*.services.ai.azure.com", "azure"),
    ("*.cognitiveservices.azure.com", "azure"),
    // Azure AI Foundry classic agents (`{region}.api.azureml.ms/agents/v1.0/subscriptions/...`).
    ("*.api.azureml.ms", "azure"),
    ("bedrock-runtime.{r}.amazonaws.com", "aws"),
    ("bedrock-runtime-fips.{r}.amazonaws.com", "aws"),
    ("bedrock-agent-runtime.{r}.amazonaws.com", "aws"),
    ("bedrock-agent.{r}.amazonaws.com", "aws"),
    ("bedrock-agentcore.{r}.amazonaws.com", "aws"),
    ("bedrock-agentcore-control.{r}.amazonaws.com", "aws"),
    ("bedrock.{r}.amazonaws.com", "aws"),
    ("bedrock-mantle.{r}.api.aws", "aws"),
    // Interface VPC endpoints (`vpce-{id}.{service}.{region}.vpce.amazonaws.com`).
    ("*.bedrock-runtime.{r}.vpce.amazonaws.com", "aws"),
    ("*.bedrock-agent-runtime.{r}.vpce.amazonaws.com", "aws"),
    ("*.bedrock-agentcore.{r}.vpce.amazonaws.com", "aws"),
    ("*.gateway.bedrock-agentcore.{r}.amazonaws.com", "aws"),
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "gcp"),
    ("aiplatform.googleapis.com", "gcp"),
    ("*-aiplatform.googleapis.com", "gcp"),
];

/// A third-party operator recognised by its host: who serves the request and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operator {
    /// Host pattern (the [`BUILTIN`] syntax).
    pub pattern: &'static str,
    /// The OpenTelemetry `gen_ai.provider.name` well-known value where the registry has one
    /// (`groq`, `mistral_ai`, `deepseek`, `x_ai`, `perplexity`, `cohere`), else statemeter's own
    /// name (docs/classification.md, "Who serves a request").
    pub provider: &'static str,
    /// The operator's venue: its own name, or `oracle` for Oracle Cloud.
    pub venue: &'static str,
}

const fn op(pattern: &'static str, provider: &'static str, venue: &'static str) -> Operator {
    Operator {
        pattern,
        provider,
        venue,
    }
}

/// Operators serving their own models or others' behind an OpenAI-compatible (sometimes also an
/// Anthropic-compatible) API. An OpenAI-shaped request to one of these is never `openai`.
pub const OPERATORS: &[Operator] = &[
    op("api.groq.com", "groq", "groq"),
    op("api.mistral.ai", "mistral_ai", "mistral_ai"),
    op("codestral.mistral.ai", "mistral_ai", "mistral_ai"),
    op("api.deepseek.com", "deepseek", "deepseek"),
    op("api.x.ai", "x_ai", "x_ai"),
    op("api.perplexity.ai", "perplexity", "perplexity"),
    op("api.cohere.com", "cohere", "cohere"),
    op("api.cohere.ai", "cohere", "cohere"),
    op("openrouter.ai", "openrouter", "openrouter"),
    op("api.together.xyz", "together", "together"),
    op("api.together.ai", "together", "together"),
    op("api.fireworks.ai", "fireworks", "fireworks"),
    op("api.cerebras.ai", "cerebras", "cerebras"),
    op("router.huggingface.co", "huggingface", "huggingface"),
    op("api-inference.huggingface.co", "huggingface", "huggingface"),
    op("api.inference.crusoecloud.com", "crusoe", "crusoe"),
    op("api.z.ai", "z_ai", "z_ai"),
    // OCI Generative AI inference, including its OpenAI-compatible `/openai/v1` API.
    op(
        "inference.generativeai.{r}.oci.oraclecloud.com",
        "oci.generative_ai",
        "oracle",
    ),
];

/// The built-in operator serving `host` (already normalised: see [`normalise_host`]).
pub fn operator_for_host(host: &str) -> Option<&'static Operator> {
    OPERATORS.iter().find(|o| matches(o.pattern, host))
}

/// The entry of a user mapping (`{host pattern: value}`) that applies to `host` (already
/// normalised): `(pattern, value)`. An exact host wins over patterns; among patterns the longest
/// (the most specific) wins, so `{"*.example.com": ..., "gw.example.com": ...}` means what it
/// says whatever the keys' order.
pub fn user_mapping_for_host<'m>(
    host: &str,
    user: &'m BTreeMap<String, String>,
) -> Option<(&'m str, &'m str)> {
    let lower = |p: &'m String| -> Cow<'m, str> {
        if p.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(p.to_ascii_lowercase())
        } else {
            Cow::Borrowed(p.as_str())
        }
    };
    user.iter()
        .filter(|(pattern, _)| matches(&lower(pattern), host))
        .max_by_key(|(pattern, _)| (!pattern.contains('*'), pattern.len()))
        .map(|(p, v)| (p.as_str(), v.as_str()))
}

fn label_ok(l: &str) -> bool {
    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Does `host` match `pattern` (see [`BUILTIN`] for the syntax)?
pub fn matches(pattern: &str, host: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix("*.").filter(|s| s.contains("{r}")) {
        // `*.` then a region pattern: exactly one label in front (an AgentCore gateway id).
        return host
            .split_once('.')
            .is_some_and(|(label, rest)| label_ok(label) && matches(suffix, rest));
    }
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return host.len() > suffix.len() + 1
            && host.ends_with(suffix)
            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.';
    }
    if let Some(suffix) = pattern.strip_prefix("*-") {
        // `*-aiplatform.googleapis.com`: one label ending in `-aiplatform`.
        return host
            .strip_suffix(suffix)
            .and_then(|p| p.strip_suffix('-'))
            .is_some_and(label_ok);
    }
    if let Some((before, after)) = pattern.split_once("{r}") {
        return host
            .strip_prefix(before)
            .and_then(|h| h.strip_suffix(after))
            .is_some_and(label_ok);
    }
    pattern == host
}

/// Normalises a host: lower case, no port, no trailing dot, no brackets.
pub fn normalise_host(host: &str) -> String {
    let h = host.trim().trim_end_matches('.');
    let h = if h.starts_with('[') {
        h.split(']').next().unwrap_or(h).trim_start_matches('[')
    } else {
        h.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(h, |(host, _)| host)
    };
    h.to_ascii_lowercase()
}

/// The venue of `host`, using `user` mappings first.
pub fn venue_for_host(host: &str, user: &BTreeMap<String, String>) -> VenueMatch {
    let h = normalise_host(host);
    if let Some((pattern, venue)) = user_mapping_for_host(&h, user) {
        return VenueMatch {
            venue: venue.to_owned(),
            rule: "venue-user-mapping",
            explain: format!(
                "host {h} is mapped to {venue} by the user's venue mapping ({pattern})"
            ),
        };
    }
    let builtin = BUILTIN
        .iter()
        .copied()
        .chain(OPERATORS.iter().map(|o| (o.pattern, o.venue)));
    for (pattern, venue) in builtin {
        if matches(pattern, &h) {
            return VenueMatch {
                venue: venue.to_owned(),
                rule: "venue-endpoint",
                explain: format!("host {h} matches {pattern}, served by {venue}"),
            };
        }
    }
    VenueMatch {
        venue: "unknown".to_owned(),
        rule: "venue-unknown-host",
        explain: format!(
            "host {h} matches no known endpoint and no user mapping; venue not guessed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(host: &str) -> String {
        venue_for_host(host, &BTreeMap::new()).venue
    }

    #[test]
    fn builtin_hosts() {
        assert_eq!(v("api.openai.com"), "openai");
        assert_eq!(v("API.OpenAI.com:443"), "openai");
        assert_eq!(v("contoso.openai.azure.com"), "azure");
        assert_eq!(v("proj.services.ai.azure.com"), "azure");
        assert_eq!(v("x.cognitiveservices.azure.com"), "azure");
        assert_eq!(v("bedrock-runtime.us-east-1.amazonaws.com"), "aws");
        assert_eq!(v("bedrock-agent-runtime.eu-west-1.amazonaws.com"), "aws");
        assert_eq!(v("bedrock-agentcore.us-west-2.amazonaws.com"), "aws");
        assert_eq!(v("bedrock-mantle.us-east-1.api.aws"), "aws");
        assert_eq!(
            v("gw-1a2b.gateway.bedrock-agentcore.us-east-1.amazonaws.com"),
            "aws"
        );
        assert_eq!(
            v("a.b.gateway.bedrock-agentcore.us-east-1.amazonaws.com"),
            "unknown"
        );
        assert_eq!(v("api.anthropic.com"), "anthropic");
        assert_eq!(v("generativelanguage.googleapis.com"), "gcp");
        assert_eq!(v("us-central1-aiplatform.googleapis.com"), "gcp");
    }

    #[test]
    fn lookalikes_are_unknown_not_guessed() {
        assert_eq!(v("openai.azure.com"), "unknown");
        assert_eq!(v("evil-openai.azure.com.attacker.net"), "unknown");
        assert_eq!(v("api.openai.com.evil.net"), "unknown");
        assert_eq!(v("bedrock-runtime.a.b.amazonaws.com"), "unknown");
        assert_eq!(v("localhost"), "unknown");
        let m = venue_for_host("127.0.0.1:8080", &BTreeMap::new());
        assert_eq!(m.rule, "venue-unknown-host");
        assert!(m.explain.contains("127.0.0.1"));
    }

    #[test]
    fn user_mapping_wins_and_supports_wildcards() {
        let mut user = BTreeMap::new();
        user.insert("llm-proxy.internal".to_owned(), "on_prem".to_owned());
        user.insert("*.gw.example.com".to_owned(), "oracle".to_owned());
        assert_eq!(
            venue_for_host("llm-proxy.internal:8443", &user).venue,
            "on_prem"
        );
        assert_eq!(venue_for_host("eu.gw.example.com", &user).venue, "oracle");
        assert_eq!(venue_for_host("gw.example.com", &user).venue, "unknown");
        assert_eq!(venue_for_host("[::1]:80", &user).venue, "unknown");
        // The most specific entry wins, whatever the keys' order.
        user.insert("*.example.com".to_owned(), "gcp".to_owned());
        user.insert("API.GW.example.com".to_owned(), "aws".to_owned());
        assert_eq!(venue_for_host("eu.gw.example.com", &user).venue, "oracle");
        assert_eq!(venue_for_host("api.gw.example.com", &user).venue, "aws");
        assert_eq!(venue_for_host("other.example.com", &user).venue, "gcp");
    }

    #[test]
    fn operators() {
        assert_eq!(v("api.groq.com"), "groq");
        assert_eq!(v("openrouter.ai"), "openrouter");
        assert_eq!(
            v("inference.generativeai.us-chicago-1.oci.oraclecloud.com"),
            "oracle"
        );
        assert_eq!(
            v("inference.generativeai.a.b.oci.oraclecloud.com"),
            "unknown"
        );
        assert_eq!(v("eastus.api.azureml.ms"), "azure");
        assert_eq!(
            v("vpce-0a1b-xyz.bedrock-runtime.us-east-1.vpce.amazonaws.com"),
            "aws"
        );
        let op = operator_for_host("api.mistral.ai").unwrap();
        assert_eq!((op.provider, op.venue), ("mistral_ai", "mistral_ai"));
        assert!(operator_for_host("api.groq.com.evil.example").is_none());
        assert!(operator_for_host("api.openai.com").is_none());
        let m = venue_for_host("api.x.ai", &BTreeMap::new());
        assert_eq!((m.venue.as_str(), m.rule), ("x_ai", "venue-endpoint"));
    }
}
