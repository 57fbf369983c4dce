"""Signed checkpoints, Merkle proofs and evidence bundles (docs/ledger-format.md).

The ledger's tree is checked against the RFC 9162 definition computed independently by the
reference verifier (statemeter.reverify_evidence, stdlib + cryptography), proofs for every pair
of sizes up to 64, tampering with every byte that matters, checkpoints taken by several
processes, a rewritten ledger, and SIGKILL while the tree is extended.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import statemeter as sm

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "python/statemeter/reverify_evidence.py"
sys.path.insert(0, str(REF.parent))
import reverify_evidence as ref  # noqa: E402

# The example of Go's note package (golang.org/x/mod/sumdb/note): its keys and signed note.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# The example of the C2SP signed-note specification, with the verifier key it was published
# with (the specification's current example names none).
SPEC_KEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n\u2014 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)


def record_n(meter: sm.Meter, n: int, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + n):
        e = meter.record(
            {"kind": "tool_call", "tool": "search", "ts": 1_700_000_000_000_000_000 + i}
        )
        ids.append(e.id)
    return ids


def records(ledger: sm.Ledger) -> list[bytes]:
    return [r[0].encode() for r in ledger.sql("SELECT record FROM events ORDER BY seq")]


def ref_root(recs: list[bytes]) -> str:
    return ref.tree_root([ref.leaf_hash(r) for r in recs]).hex()


@pytest.fixture
def key() -> sm.SigningKey:
    return sm.SigningKey.generate("statemeter.example/test")


def test_keys_are_written_as_gos_note_package_writes_them() -> None:
    signer = sm.SigningKey.from_str(GO_SIGNER)
    assert str(signer) == GO_SIGNER
    assert signer.name == "PeterNeumann"
    vk = signer.verifying_key()
    assert str(vk) == GO_KEY and vk.key_id == "c74f20a3"
    assert sm.VerifyingKey.from_str(GO_KEY) == vk
    assert "PRIVATE" not in repr(signer)
    generated = sm.SigningKey.generate("example.com/a")
    assert str(generated).startswith("PRIVATE+KEY+example.com/a+")
    assert sm.SigningKey.from_str(str(generated)).verifying_key() == generated.verifying_key()
    for bad in ["", "PeterNeumann", GO_KEY.replace("c74f20a3", "c74f20a4"), GO_SIGNER]:
        with pytest.raises(sm.ValidationError):
            sm.VerifyingKey.from_str(bad)
    with pytest.raises(sm.ValidationError):
        sm.SigningKey.from_str(GO_KEY)
    with pytest.raises(sm.ValidationError):
        sm.SigningKey.generate("two words")


def test_the_reference_verifier_opens_the_published_notes() -> None:
    assert ref.open_note(SPEC_NOTE, ref.parse_key(SPEC_KEY)) == "This is an example message.\n"
    assert ref.open_note(GO_NOTE, ref.parse_key(GO_KEY)) == GO_TEXT
    with pytest.raises(ref.Refused):
        ref.open_note(GO_NOTE.replace("cryptography", "Cryptography"), ref.parse_key(GO_KEY))


def test_tree_roots_match_rfc9162_for_every_size_to_300(key: sm.SigningKey) -> None:
    meter = sm.Meter(durability="sync")
    assert meter.ledger.checkpoint(key).root_hash == ref_root([])
    roots = []
    for _ in range(300):
        record_n(meter, 1)
        roots.append(meter.ledger.checkpoint(key).root_hash)
    recs = records(meter.ledger)
    for n in range(1, 301):
        assert roots[n - 1] == ref_root(recs[:n]), n
    # Larger random sizes, written in batches.
    rnd = random.Random(13)
    batch = sm.Meter()
    total = 0
    for _ in range(4):
        k = rnd.randrange(300, 3000)
        record_n(batch, k, total)
        total += k
        cp = batch.ledger.checkpoint(key)
        assert cp.size == total
        assert cp.root_hash == ref_root(records(batch.ledger)), total


def test_inclusion_and_consistency_for_every_pair_up_to_64(key: sm.SigningKey) -> None:
    meter = sm.Meter(durability="sync")
    ledger = meter.ledger
    ids: list[str] = []
    cps = [ledger.checkpoint(key)]
    for _ in range(64):
        ids += record_n(meter, 1)
        cps.append(ledger.checkpoint(key))
    recs = records(ledger)
    for n in range(1, 65):
        cp = cps[n]
        root = bytes.fromhex(cp.root_hash)
        for i in range(n):
            proof = ledger.prove(ids[i], cp)
            assert (proof.leaf_index, proof.tree_size) == (i, n)
            assert proof.verify(recs[i], cp), (i, n)
            assert proof.verify(recs[i].decode(), cp)
            path = [bytes.fromhex(h) for h in proof.hashes]
            assert ref.verify_inclusion(i, n, ref.leaf_hash(recs[i]), path, root)
            assert not proof.verify(recs[(i + 1) % 64], cp) or recs[(i + 1) % 64] == recs[i]
        for m in range(n + 1):
            c = ledger.consistency(cps[m], cp)
            assert (c.old_size, c.new_size) == (m, n)
            assert c.verify(cps[m], cp), (m, n)
            if 0 < m < n:
                assert not c.verify(cps[m - 1], cp)
                assert not sm.ConsistencyProof(m, n, c.hashes).verify(cp, cps[m])
    with pytest.raises(sm.ValidationError):
        ledger.consistency(cps[10], cps[5])
    with pytest.raises(sm.ValidationError):
        ledger.prove(ids[40], cps[20])
    kept = ledger.checkpoints()
    assert len(kept) == 65 and kept[-1] == cps[-1]


def test_tampering_with_any_byte_is_detected(key: sm.SigningKey) -> None:
    meter = sm.Meter(durability="sync")
    ids = record_n(meter, 23)
    ledger = meter.ledger
    cp = ledger.checkpoint(key)
    vk = key.verifying_key()
    assert cp.verify(vk) and cp.verify(str(vk))
    record = ledger.record(ids[9]).encode()
    proof = ledger.prove(ids[9], cp)
    assert proof.verify(record, cp)
    for i in range(len(record)):
        edited = record[:i] + bytes([record[i] ^ 0x01]) + record[i + 1 :]
        assert not proof.verify(edited, cp), i
    for h in range(len(proof.hashes)):
        raw = bytes.fromhex(proof.hashes[h])
        for i in range(32):
            hashes = list(proof.hashes)
            hashes[h] = (raw[:i] + bytes([raw[i] ^ 0x80]) + raw[i + 1 :]).hex()
            assert not sm.InclusionProof(9, 23, hashes).verify(record, cp)
    assert not sm.InclusionProof(9, 24, proof.hashes).verify(record, cp)
    assert not sm.InclusionProof(8, 23, proof.hashes).verify(record, cp)
    # The checkpoint: size, root, origin and every signature byte.
    text = cp.text
    body, sig_line = text.rsplit("\n\n", 1)
    origin, size, root = body.split("\n")
    other_root = base64.b64encode(bytes(32)).decode()
    for edited_body in [
        f"{origin}\n{int(size) + 1}\n{root}",
        f"{origin}\n{size}\n{other_root}",
        f"{origin}x\n{size}\n{root}",
    ]:
        assert not sm.Checkpoint.parse(f"{edited_body}\n\n{sig_line}").verify(vk)
    name, sig = sig_line.rstrip("\n").rsplit(" ", 1)
    raw = base64.b64decode(sig)
    for i in range(len(raw)):
        flipped = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]
        note = f"{body}\n\n{name} {base64.b64encode(flipped).decode()}\n"
        assert not sm.Checkpoint.parse(note).verify(vk), i
    with pytest.raises(sm.ValidationError):
        sm.Checkpoint.parse(text.replace("\n\n", "\n"))
    # A witness co-signs; both signatures verify; an unknown key does not.
    witness = sm.SigningKey.generate("witness.example")
    both = sm.Checkpoint.parse(cp.cosign(witness).text)
    assert both.verify(vk) and both.verify(witness.verifying_key())
    assert both.signers == ["statemeter.example/test", "witness.example"]
    assert not cp.verify(witness.verifying_key())


def test_evidence_bundles_verify_offline_and_name_each_edited_event(
    key: sm.SigningKey, tmp_path: Path
) -> None:
    meter = sm.Meter(tmp_path / "l.db", durability="sync")
    with meter.session(agent="a", venue="azure") as s:
        for i in range(30):
            s.model_call(provider="openai", model="gpt-5", api="responses", input_tokens=i)
    ledger = meter.ledger
    cp = ledger.checkpoint(key)
    assert cp.origin == f"statemeter/{ledger.ledger_id}"
    calls = ledger.events(kind="model_call")
    bundle = ledger.evidence(calls[:4], cp, rows=[{"calls": 4}], context={"clause": "c"})
    vk = key.verifying_key()
    result = sm.verify_evidence(bundle, vk)
    assert result.ok and not result.failed and result.problem is None
    assert [i["event_id"] for i in result.items] == [e.id for e in calls[:4]]
    assert result.rows == [{"calls": 4}] and result.context == {"clause": "c"}
    assert result.checkpoint == cp
    assert sm.verify_evidence(json.loads(bundle), str(vk)).ok
    path = tmp_path / "b.json"
    path.write_text(bundle)
    assert sm.verify_evidence(path, vk).ok
    assert ref.verify(bundle, str(vk)).ok
    # Bundles disclose metered fields only: ids, counts, names — records hold no text.
    doc = json.loads(bundle)
    assert set(doc) == {"checkpoint", "context", "format", "items", "rows", "version"}
    # An edited record: statemeter and the reference name that event, and only it.
    target = doc["items"][2]
    edited = json.loads(bundle)
    edited["items"][2]["record"] = target["record"].replace('"input_tokens":', '"input_tokens":1')
    assert edited["items"][2]["record"] != target["record"]
    r = sm.verify_evidence(edited, vk)
    assert not r.ok and r.failed == [target["event_id"]] and r.problem is None
    assert ref.verify(json.dumps(edited), str(vk)).failed == [target["event_id"]]
    # Another signer's key: the whole bundle is refused.
    other = sm.SigningKey.generate("statemeter.example/test").verifying_key()
    r = sm.verify_evidence(bundle, other)
    assert not r.ok and "no signature" in (r.problem or "")
    assert not ref.verify(bundle, str(other)).ok
    # Ids work as well as an EventTable; unknown ids are refused.
    assert sm.verify_evidence(ledger.evidence([calls[0].id], cp), vk).ok
    with pytest.raises(sm.ValidationError):
        ledger.evidence(["no-such-event"], cp)
    proc = subprocess.run(
        [sys.executable, str(REF), str(path), "--key", str(vk)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stdout
    path.write_text(json.dumps(edited))
    proc = subprocess.run(
        [sys.executable, str(REF), str(path), "--key", str(vk)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and target["event_id"] in proc.stdout


def test_a_bundle_of_version_2_records_carries_their_contexts(
    key: sm.SigningKey, tmp_path: Path
) -> None:
    meter = sm.Meter(tmp_path / "l.db", durability="sync")
    with meter.session(agent="a", venue="azure") as s:
        for i in range(20):
            s.model_call(provider="openai", model="gpt-5", api="responses", input_tokens=i)
    ledger = meter.ledger
    cp = ledger.checkpoint(key)
    calls = ledger.events(kind="model_call")
    vk = key.verifying_key()
    doc = json.loads(ledger.evidence(calls[5:7], cp))
    # Both refer to the record that defined their context, which comes with each item.
    for item, call in zip(doc["items"], calls[5:7], strict=True):
        at = json.loads(item["record"])["c"]
        assert (
            item["event_id"] == call.id
            and isinstance(at, int)
            and item["definition"]["seq"] == at < item["seq"]
        )
        assert isinstance(json.loads(item["definition"]["record"])["c"], dict)
    result = sm.verify_evidence(doc, vk)
    assert result.ok, result.items
    report = ref.verify(json.dumps(doc), str(vk))
    assert report.ok, report.items
    for item, checked, call in zip(result.items, report.items, calls[5:7], strict=True):
        # The event whole, as the ledger reads it, from the signed records alone.
        assert item["event"]["agent"] == "a" and item["event"]["venue"] == "azure"
        assert item["event"]["input_tokens"] == call.input_tokens
        assert item["event"]["id"] == call.id
        assert item["classification"]["tag"] == call.classification.tag
        assert checked[3] == {"event": item["event"], "classification": item["classification"]}
    first = doc["items"][0]

    def caught(edit: dict, words: str) -> None:
        r = sm.verify_evidence(edit, vk)
        assert not r.ok and r.failed == [first["event_id"]], r.items
        assert words in r.items[0]["problem"] and r.items[0]["event"] is None
        rep = ref.verify(json.dumps(edit), str(vk))
        assert rep.failed == [first["event_id"]] and words in (rep.items[0][2] or "")

    missing = json.loads(json.dumps(doc))
    del missing["items"][0]["definition"]
    caught(missing, "does not carry that defining record")
    altered = json.loads(json.dumps(doc))
    definition = altered["items"][0]["definition"]
    definition["record"] = definition["record"].replace('"venue":"azure"', '"venue":"openai"')
    assert definition["record"] != first["definition"]["record"]
    caught(altered, "not the one the checkpoint's tree holds")
    # Another signed record (its own proof and seq) put in place of the one referenced.
    other = json.loads(ledger.evidence([calls[6].id], cp))["items"][0]
    swapped = json.loads(json.dumps(doc))
    swapped["items"][0]["definition"] = {k: other[k] for k in ("proof", "record", "seq")}
    caught(swapped, f"defining record is seq {other['seq']}")
    meter.close()


APPENDER = textwrap.dedent(
    """
    import sys, statemeter as sm
    path, key, n, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with sm.Meter(path) as m:
        for i in range(n):
            m.record({"kind": "tool_call", "tool": tag, "attrs": {"i": i}})
    print(sm.Ledger.open(path).checkpoint(sm.SigningKey.from_str(key)).text, end="")
    """
)


def test_checkpoints_from_several_processes_are_consistent_and_a_rewrite_is_not(
    key: sm.SigningKey, tmp_path: Path
) -> None:
    path = tmp_path / "shared.db"
    sm.Meter(path).close()
    texts = []
    for _ in range(3):
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", APPENDER, str(path), str(key), str(37 + w), f"p{w}"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for w in range(3)
        ]
        for p in procs:
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0
            texts.append(out)
    cps = sorted((sm.Checkpoint.parse(t) for t in texts), key=lambda c: c.size)
    vk = key.verifying_key()
    ledger = sm.Ledger.open(path)
    assert all(c.verify(vk) and c.origin == f"statemeter/{ledger.ledger_id}" for c in cps)
    latest = ledger.checkpoint(key)
    for old in cps:
        for new in [*cps, latest]:
            if old.size <= new.size:
                assert ledger.consistency(old, new).verify(old, new), (old.size, new.size)
    assert latest.root_hash == ref_root(records(ledger))
    del ledger

    # A rewrite: one record edited, the chain re-derived and the tree rebuilt (as someone
    # covering their tracks would), in a process of its own (Python's sqlite3).
    rewrite = textwrap.dedent(
        """
        import hashlib, sqlite3, sys
        con = sqlite3.connect(sys.argv[1])
        rows = con.execute("SELECT seq, record FROM events ORDER BY seq").fetchall()
        prev = bytes(32)
        for seq, record in rows:
            if seq == 5:
                record = record.replace('"ts":1', '"ts":2', 1)
            prev = hashlib.sha256(prev + record.encode()).digest()
            con.execute("UPDATE events SET record = ?, hash = ? WHERE seq = ?", (record, prev, seq))
        con.execute("DELETE FROM merkle_nodes")
        con.commit()
        """
    )
    subprocess.run([sys.executable, "-c", rewrite, str(path)], check=True)
    ledger = sm.Ledger.open(path)
    assert ledger.verify().ok, "the chain was re-derived: it verifies on its own"
    rewritten = ledger.checkpoint(key)
    assert rewritten.size == latest.size and rewritten.root_hash != latest.root_hash
    for old in cps:
        assert not ledger.consistency(old, rewritten).verify(old, rewritten)
    with pytest.raises(sm.IntegrityError):
        ledger.prove(ledger.events()[0].id, cps[0])


TREE_CHECK = textwrap.dedent(
    """
    import json, sqlite3, sys
    sys.path.insert(0, sys.argv[2])
    import reverify_evidence as ref
    con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    leaves = [ref.leaf_hash(r.encode()) for (r,) in
              con.execute("SELECT record FROM events ORDER BY seq")]
    nodes = {(l, i): bytes(h) for l, i, h in
             con.execute("SELECT level, idx, hash FROM merkle_nodes")}
    want = {}
    level = 4
    while (1 << level) <= len(leaves):
        for i in range(len(leaves) >> level):
            want[(level, i)] = ref.tree_root(leaves[i << level:(i + 1) << level])
        level += 1
    print(json.dumps([len(leaves), len(nodes), nodes == want]))
    """
)


def tree_agrees(path: Path) -> tuple[int, int, bool]:
    out = subprocess.run(
        [sys.executable, "-c", TREE_CHECK, str(path), str(REF.parent)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    n, nodes, same = json.loads(out)
    return n, nodes, same


CHILD = textwrap.dedent(
    """
    import sys, statemeter as sm
    m = sm.Meter(sys.argv[1], durability=sys.argv[2])
    print("open", flush=True)
    i = 0
    while True:
        m.record({"kind": "tool_call", "tool": "t", "attrs": {"i": i}})
        i += 1
        if i % 97 == 0:
            m.flush()
    """
)


def kill_trials(tmp_path: Path, trials: int, key: sm.SigningKey, per_ledger: int = 6) -> None:
    """`trials` SIGKILLs of a recording process; every `per_ledger` trials start a new ledger,
    so the reference recomputation of the whole tree (in Python) stays small."""
    rnd = random.Random(1313)
    for t in range(trials):
        if t % per_ledger == 0:
            path = tmp_path / f"crash-{t // per_ledger}.db"
            last_cp = None
        durability = "batch" if t % 2 == 0 else "sync"
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), durability],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        time.sleep(rnd.uniform(0.02, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        # Before statemeter opens the file again: the stored tree is exactly the records'.
        n, nodes, same = tree_agrees(path)
        assert same, f"trial {t}: the tree of {n} records ({nodes} nodes) disagrees"
        ledger = sm.Ledger.open(path)
        assert ledger.verify().ok
        cp = ledger.checkpoint(key)
        assert cp.size == n and cp.root_hash == ref_root(records(ledger)), t
        if last_cp is not None:
            assert ledger.consistency(last_cp, cp).verify(last_cp, cp), t
        last_cp = cp
        del ledger


def test_sigkill_while_the_tree_is_extended_leaves_tree_and_chain_agreeing(
    key: sm.SigningKey, tmp_path: Path
) -> None:
    kill_trials(tmp_path, 6, key)


@pytest.mark.long
# 60 kill trials in one test: more than the suite's per-test limit (300 s) on a loaded machine.
@pytest.mark.timeout(1800)
def test_sigkill_while_the_tree_is_extended_long(key: sm.SigningKey, tmp_path: Path) -> None:
    kill_trials(tmp_path, 60, key)


def test_an_older_ledger_gets_its_id_and_tree_on_a_writable_open(
    key: sm.SigningKey, tmp_path: Path
) -> None:
    path = tmp_path / "old.db"
    with sm.Meter(path) as m:
        record_n(m, 100)
    script = textwrap.dedent(
        """
        import sqlite3, sys
        con = sqlite3.connect(sys.argv[1])
        con.executescript("DROP TABLE merkle_nodes; DROP TABLE checkpoints; "
                          "DELETE FROM meta WHERE key = 'ledger_id';")
        """
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    os.chmod(path, 0o444)
    try:
        # Opened read-only (not possible for a user who may write any file), the ledger has
        # no id to name it in a checkpoint.
        if not os.access(path, os.W_OK):
            read = sm.Ledger.open(path)
            assert read.ledger_id is None
            with pytest.raises(sm.LedgerError, match="no ledger_id"):
                read.checkpoint(key)
            del read
    finally:
        os.chmod(path, 0o644)
    ledger = sm.Ledger.open(path)
    assert ledger.ledger_id is not None
    cp = ledger.checkpoint(key)
    assert cp.size == 100 and cp.root_hash == ref_root(records(ledger))
    assert tree_agrees(path)[2]
    assert ledger.verify().ok
    assert ledger.sql("SELECT count(*) FROM merkle_nodes")[0] == (10,)


def test_reprs_are_python_literals_and_keep_the_secret_out(key: sm.SigningKey) -> None:
    import ast

    meter = sm.Meter(durability="sync")
    ids = record_n(meter, 3)
    cp = meter.ledger.checkpoint(key)
    proof = meter.ledger.prove(ids[0], cp)
    result = sm.verify_evidence(meter.ledger.evidence(ids, cp), key.verifying_key())
    for obj in [key, cp, proof, meter.ledger.consistency(cp, cp), result]:
        text = repr(obj)
        call = ast.parse(text, mode="eval").body
        assert isinstance(call, ast.Call), text
        for k in call.keywords:
            ast.literal_eval(k.value)
        assert "Some(" not in text and '="' not in text, text
    assert str(key) not in repr(key)
    assert ast.literal_eval(ast.parse(repr(key.verifying_key()), mode="eval").body.args[0]) == str(
        key.verifying_key()
    )
