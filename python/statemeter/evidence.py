"""Evidence bundles checked offline: ``verify_evidence(bundle, verifying_key)``.

A bundle (``ledger.evidence(...)``) holds a signed checkpoint of a ledger's Merkle tree and,
for each event it names, the record as stored and its inclusion proof. Checking it needs no
ledger: only the bundle and the ledger owner's verifying key (docs/ledger-format.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from statemeter import _core
from statemeter._core import EvidenceResult, VerifyingKey
from statemeter.errors import invalid


def verify_evidence(
    bundle: str | bytes | os.PathLike[str] | Mapping[str, object],
    verifying_key: VerifyingKey | str,
) -> EvidenceResult:
    """Checks an evidence bundle with the ledger owner's verifying key.

    ``bundle`` is the bundle's JSON text (``str`` or ``bytes``), a path to a bundle file, or
    the bundle parsed into a mapping. ``verifying_key`` is a ``VerifyingKey`` or its text
    (``name+keyid+base64``). Returns an ``EvidenceResult``: ``ok`` when the checkpoint is
    signed by the key and every event's record is in the tree it signs; ``failed`` names each
    event that does not check out, ``problem`` what is wrong with the bundle as a whole.
    Never raises for a bundle that does not check out; raises ``ValidationError`` for a key
    that is not one and ``OSError`` for a file that cannot be read.
    """
    if isinstance(bundle, Mapping):
        text = json.dumps(bundle)
    elif isinstance(bundle, bytes):
        text = bundle.decode("utf-8", errors="replace")
    elif isinstance(bundle, os.PathLike):
        with open(bundle, encoding="utf-8") as f:
            text = f.read()
    elif isinstance(bundle, str):
        text = bundle
    else:
        raise invalid("bundle", "must be the bundle's JSON text, bytes, a path or a mapping")
    return _core._verify_evidence(text, verifying_key)
