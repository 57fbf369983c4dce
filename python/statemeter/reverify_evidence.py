#!/usr/bin/env python3
"""Check a statemeter evidence bundle with the standard library and ``cryptography`` only.

    python -m statemeter.reverify_evidence BUNDLE.json --key KEYFILE_OR_TEXT

Prints one line per event (``OK`` or ``FAIL`` with the reason) and exits 0 when the bundle's
checkpoint is signed by the key and every record is in the tree the checkpoint signs, else 1.
This is an independent implementation of docs/ledger-format.md ("Merkle tree", "Checkpoints",
"Evidence bundles"): it does not import statemeter. It checks

- the verifying key ``name+keyid+base64(0x01 || Ed25519 public key)``: its key id is the first
  four bytes of SHA-256(name || 0x0A || 0x01 || public key);
- the checkpoint, a C2SP signed note: text, a blank line, signature lines
  ``— name base64(keyid || signature)``; a line of this key (name and id) must verify with
  Ed25519 over the text; the text is ``origin``, ``size``, ``base64(root)`` lines;
- each item: the RFC 9162 inclusion proof of ``SHA-256(0x00 || record bytes)`` at leaf
  ``seq - 1`` of the tree of ``size`` leaves reaches the checkpoint's root, and the record
  (JSON) is the event ``event_id`` at ``seq``; a version-2 record whose context ``c`` is the
  seq of an earlier record comes with that record (``definition``: its seq, text and proof in
  the same tree), which must define a context; the record's ``e`` and its context's ``event``
  share no key (the event is their union), and no object holds a key twice.

Importable: ``verify(bundle_text, key_text) -> Report`` and the tree helpers ``leaf_hash``,
``tree_root`` and ``verify_inclusion``. It is one file that imports nothing of statemeter, so a
counterparty can read it whole, copy it and run it (``python reverify_evidence.py ...``) with
any Python >= 3.11 and ``pip install cryptography`` (``statemeter[verify]`` brings it).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DASH = "\u2014 "


class Refused(Exception):
    """The bundle, checkpoint or key is not usable."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_root(leaves: list[bytes]) -> bytes:
    """MTH of RFC 9162 over leaf hashes, by its recursive definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(tree_root(leaves[:k]), tree_root(leaves[k:]))


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


@dataclass
class Key:
    name: str
    key_id: bytes
    public: Ed25519PublicKey


def parse_key(text: str) -> Key:
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise Refused("the key is not NAME+KEYID+BASE64")
    name, key_id_hex, data = parts
    try:
        raw = base64.b64decode(data, validate=True)
        key_id = bytes.fromhex(key_id_hex)
    except (binascii.Error, ValueError) as e:
        raise Refused(f"the key is not NAME+KEYID+BASE64: {e}") from None
    if len(raw) != 33 or raw[0] != 1 or len(key_id) != 4:
        raise Refused("the key is not an Ed25519 verifier key")
    if hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4] != key_id:
        raise Refused("the key's id does not match its name and key")
    return Key(name, key_id, Ed25519PublicKey.from_public_bytes(raw[1:]))


def open_note(note: str, key: Key) -> str:
    """The text of a signed note whose signature line by ``key`` verifies."""
    if any(ord(c) < 0x20 and c != "\n" for c in note) or not note.endswith("\n"):
        raise Refused("the checkpoint is not a signed note")
    split = note.rfind("\n\n")
    if split < 0:
        raise Refused("the checkpoint has no signatures")
    text, lines = note[: split + 1], note[split + 2 :].splitlines()
    verified = False
    for line in lines:
        if not line.startswith(DASH) or " " not in line[len(DASH) :]:
            raise Refused(f"not a signature line: {line!r}")
        name, data = line[len(DASH) :].split(" ", 1)
        try:
            sig = base64.b64decode(data, validate=True)
        except binascii.Error:
            raise Refused(f"the signature of {name} is not base64") from None
        if name != key.name or sig[:4] != key.key_id:
            continue  # another signer (a witness): not this key's concern
        try:
            key.public.verify(sig[4:], text.encode())
        except InvalidSignature:
            raise Refused(
                f"the signature of {name} does not verify: the checkpoint was altered"
            ) from None
        verified = True
    if not verified:
        raise Refused(f"the checkpoint carries no signature of the key {key.name}")
    return text


def parse_checkpoint(text: str) -> tuple[str, int, bytes]:
    lines = text.split("\n")
    if len(lines) < 4:
        raise Refused("the checkpoint's text is not origin, size, root")
    origin, size, root = lines[0], lines[1], lines[2]
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise Refused(f"the checkpoint's size {size!r} is not a decimal number")
    try:
        root_bytes = base64.b64decode(root, validate=True)
    except binascii.Error:
        raise Refused("the checkpoint's root is not base64") from None
    if len(root_bytes) != 32:
        raise Refused("the checkpoint's root is not 32 bytes")
    return origin, int(size), root_bytes


@dataclass
class Report:
    ok: bool
    problem: str | None = None
    origin: str | None = None
    size: int | None = None
    items: list[tuple[str, int | None, str | None, dict[str, Any] | None]] = field(
        default_factory=list
    )

    @property
    def failed(self) -> list[str]:
        return [event_id for event_id, _, problem, _ in self.items if problem is not None]


def proven_record(entry: dict[str, Any], seq: int, size: int, root: bytes, what: str) -> str:
    """The entry's record text, once its proof puts it at leaf ``seq - 1`` of the tree."""
    record, proof = entry.get("record"), entry.get("proof")
    if not isinstance(record, str) or not isinstance(proof, list):
        raise Refused(f"no {what} text or proof list")
    try:
        path = [bytes.fromhex(h) for h in proof]
    except (TypeError, ValueError):
        raise Refused(f"a proof hash of the {what} is not hex") from None
    if any(len(h) != 32 for h in path):
        raise Refused(f"a proof hash of the {what} is not 32 bytes")
    if not verify_inclusion(seq - 1, size, leaf_hash(record.encode()), path, root):
        raise Refused(f"the {what} at seq {seq} is not the one the checkpoint's tree holds")
    return record


def _object(text: str) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (it would make the event ambiguous)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            twice = next(k for k in keys if keys.count(k) > 1)
            raise Refused(f"the key {twice!r} appears twice in one object")
        return dict(items)

    try:
        parsed = json.loads(text, object_pairs_hook=pairs)
    except ValueError:
        raise Refused("the record is not JSON") from None
    if not isinstance(parsed, dict):
        raise Refused("the record is not a JSON object")
    return parsed


def resolve(
    item: dict[str, Any], seq: int, parsed: dict[str, Any], size: int, root: bytes
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The event and classification a record holds: version 1 as they are; version 2 the
    record's ``e`` and its context's ``event`` (no key in both), the context inline or in the
    item's ``definition``: the record at the seq ``c`` names, proven in the same tree."""
    if parsed.get("v") != 2:
        event, classification = parsed.get("event"), parsed.get("classification")
        if not isinstance(event, dict) or not isinstance(classification, dict):
            raise Refused(f"the record at seq {seq} has no event and classification objects")
        return event, classification
    context, own = parsed.get("c"), parsed.get("e")
    if isinstance(context, int) and not isinstance(context, bool):
        at = context
        definition = item.get("definition")
        if not isinstance(definition, dict):
            raise Refused(
                f"the record at seq {seq} takes its context from seq {at}, and the bundle "
                "does not carry that defining record"
            )
        if definition.get("seq") != at:
            raise Refused(
                f"the record at seq {seq} takes its context from seq {at}, but the bundle's "
                f"defining record is seq {definition.get('seq')}"
            )
        if not 1 <= at < seq:
            raise Refused(f"the record at seq {seq} takes its context from a later seq {at}")
        defining = _object(proven_record(definition, at, size, root, "defining record"))
        context = defining.get("c")
        if defining.get("v") != 2 or defining.get("s") != at or not isinstance(context, dict):
            raise Refused(f"the defining record at seq {at} does not define a context")
    if not isinstance(context, dict) or not isinstance(own, dict):
        raise Refused(f"the record at seq {seq} is not a version-2 record (c, e, s, v)")
    shared, classification = context.get("event"), context.get("classification")
    if not isinstance(shared, dict) or not isinstance(classification, dict):
        raise Refused(f"the context of the record at seq {seq} is not {{classification, event}}")
    both = sorted(own.keys() & shared.keys())
    if both:
        raise Refused(
            f"the record at seq {seq} holds the event key {both[0]!r} twice, in its e and in "
            "its context: the event it stands for is ambiguous"
        )
    return {**own, **shared}, classification


def check_item(
    item: object, size: int, root: bytes
) -> tuple[str, int | None, str | None, dict[str, Any] | None]:
    """(event_id, seq, problem or None, the event with its classification when it checks out)."""
    if not isinstance(item, dict):
        return "", None, "the item is not an object", None
    named_id = item.get("event_id")
    event_id = named_id if isinstance(named_id, str) else ""
    seq = item.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return event_id, None, "no seq of 1 or more", None
    if seq > size:
        return event_id, seq, f"seq {seq} is beyond the checkpoint's {size} records", None
    try:
        parsed = _object(proven_record(item, seq, size, root, "record"))
        # Version 1: the event at "event", the seq at "seq"; version 2: "e" and "s".
        v2 = parsed.get("v") == 2
        event = parsed.get("e" if v2 else "event")
        named = event.get("id") if isinstance(event, dict) else None
        if named != event_id or parsed.get("s" if v2 else "seq") != seq:
            raise Refused(f"the record at seq {seq} is event {named}, not {event_id}")
        event, classification = resolve(item, seq, parsed, size, root)
    except Refused as e:
        return event_id, seq, str(e), None
    return event_id, seq, None, {"event": event, "classification": classification}


def verify(bundle_text: str, key_text: str) -> Report:
    try:
        key = parse_key(key_text)
        doc = json.loads(bundle_text)
        if not isinstance(doc, dict) or doc.get("format") != "statemeter-evidence":
            raise Refused("not a statemeter evidence bundle")
        if doc.get("version") != 1:
            raise Refused("the bundle's version is not 1")
        note = doc.get("checkpoint")
        if not isinstance(note, str):
            raise Refused("the bundle has no checkpoint")
        origin, size, root = parse_checkpoint(open_note(note, key))
        items = doc.get("items")
        if not isinstance(items, list):
            raise Refused("the bundle has no items list")
    except (Refused, ValueError) as e:
        return Report(ok=False, problem=str(e))
    checked = [check_item(item, size, root) for item in items]
    return Report(
        ok=all(p is None for _, _, p, _ in checked),
        origin=origin,
        size=size,
        items=checked,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--key", required=True, help="verifier key file, or the key text")
    args = parser.parse_args(argv)
    key_path = Path(args.key)
    key_text = key_path.read_text() if key_path.is_file() else args.key
    report = verify(args.bundle.read_text(encoding="utf-8"), key_text)
    if report.problem:
        print(f"FAIL bundle: {report.problem}")
        return 1
    print(f"checkpoint {report.origin} size {report.size}: signature OK")
    for event_id, seq, problem, _ in report.items:
        print(f"{'OK  ' if problem is None else 'FAIL'} seq {seq} event {event_id}", end="")
        print("" if problem is None else f": {problem}")
    print("OK" if report.ok else f"FAIL: {len(report.failed)} of {len(report.items)} events")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
