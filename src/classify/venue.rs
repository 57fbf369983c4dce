//! Venue from an endpoint: which cloud served a request, judged from the host name alone.
//!
//! Built-in host patterns (first match wins), then a user mapping for gateways and proxies
//! (`{"llm-proxy.internal": "on_prem"}`; a key may start with `*.` to match subdomains). The
//! user mapping is checked first, so it can override a built-in pattern. An unknown host gives
//! `venue = "unknown"` with evidence saying so — never a guess.

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
    ("bedrock-runtime.{r}.amazonaws.com", "aws"),
    ("bedrock-runtime-fips.{r}.amazonaws.com", "aws"),
    ("bedrock-agent-runtime.{r}.amazonaws.com", "aws"),
    ("bedrock-agent.{r}.amazonaws.com", "aws"),
    ("bedrock-agentcore.{r}.amazonaws.com", "aws"),
    ("bedrock-agentcore-control.{r}.amazonaws.com", "aws"),
    ("bedrock.{r}.amazonaws.com", "aws"),
    ("bedrock-mantle.{r}.api.aws", "aws"),
    ("*.gateway.bedrock-agentcore.{r}.amazonaws.com", "aws"),
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "gcp"),
    ("aiplatform.googleapis.com", "gcp"),
    ("*-aiplatform.googleapis.com", "gcp"),
];

fn label_ok(l: &str) -> bool {
    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Does `host` match `pattern` (see [`BUILTIN`] for the syntax)?
fn matches(pattern: &str, host: &str) -> bool {
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
    for (pattern, venue) in user {
        if matches(&pattern.to_ascii_lowercase(), &h) {
            return VenueMatch {
                venue: venue.clone(),
                rule: "venue-user-mapping",
                explain: format!(
                    "host {h} is mapped to {venue} by the user's venue mapping ({pattern})"
                ),
            };
        }
    }
    for (pattern, venue) in BUILTIN {
        if matches(pattern, &h) {
            return VenueMatch {
                venue: (*venue).to_owned(),
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
    }
}
