"""`sm.venue_for_host`: the Rust endpoint rules exposed to Python (used by integrations)."""

import pytest
import statemeter as sm


@pytest.mark.parametrize(
    ("host", "venue"),
    [
        ("api.openai.com", "openai"),
        ("contoso.openai.azure.com:443", "azure"),
        ("bedrock-runtime.us-east-1.amazonaws.com", "aws"),
        ("us-central1-aiplatform.googleapis.com", "gcp"),
        ("api.openai.com.evil.net", "unknown"),
    ],
)
def test_builtin_patterns(host: str, venue: str) -> None:
    got, rule, explain = sm.venue_for_host(host)
    assert got == venue
    assert rule == ("venue-unknown-host" if venue == "unknown" else "venue-endpoint")
    assert host.split(":")[0].lower() in explain


def test_user_mapping_first() -> None:
    venues = {"llm-proxy.internal": "on_prem", "*.gw.example.com": "oracle"}
    assert sm.venue_for_host("llm-proxy.internal:8443", venues)[:2] == (
        "on_prem",
        "venue-user-mapping",
    )
    assert sm.venue_for_host("eu.gw.example.com", venues)[0] == "oracle"
    assert sm.venue_for_host("api.openai.com", {"api.openai.com": "azure"})[0] == "azure"


def test_bad_mapping_is_a_validation_error() -> None:
    with pytest.raises(sm.ValidationError, match="venues"):
        sm.venue_for_host("x", {"a": 1})  # type: ignore[dict-item]
    with pytest.raises(sm.ValidationError, match="venues"):
        sm.venue_for_host("x", ["a"])  # type: ignore[arg-type]
