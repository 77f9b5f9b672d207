"""The record through the HTTP API: entries, signed heads, proofs, and what each party may read of it.

Everything is checked from the outside with ``tests/ledger/rfc9162.py`` (the RFC's definitions
written for the tests) and ``cryptography``'s Ed25519, as a party verifying the record would.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deconfliction.service import ROOT
from deconfliction.stores import POSTGRES_SCHEMES, open_store
from tests.api.conftest import ALFA_LAND, BRAVO_LAND, Api, at, box, refusal
from tests.ledger.rfc9162 import canonical, head_message, independent_consistency, independent_inclusion, mth, sha256

ENTRY_KEYS = {"data", "party", "seq", "time", "type"}
HEAD_KEYS = {"tree_size", "root_hash", "timestamp", "signature"}


# ---------------------------------------------------------------- reading the record as a party would


def size(api: Api) -> int:
    return int(api.ok("GET", "/v1/ledger/entries", "admin", params={"start": 0, "end": 0})["tree_size"])


def read_all(api: Api, who: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every entry, following ``next``, and the raw text of every page."""
    entries: list[dict[str, Any]] = []
    texts: list[str] = []
    start: int | None = 0
    while start is not None:
        response = api.get("/v1/ledger/entries", who, params={"start": start})
        assert response.status_code == 200, response.text
        texts.append(response.text)
        page = response.json()
        entries += page["entries"]
        start = page["next"]
        assert start is None or start == len(entries)
    return entries, texts


def leaf_bytes(entry: dict[str, Any]) -> bytes:
    return bytes.fromhex(entry["leaf_hex"])


def heads(api: Api) -> list[dict[str, Any]]:
    return list(api.ok("GET", "/v1/ledger/heads", "bravo"))


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def assert_signed(head: dict[str, Any], public_key: str) -> None:
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
    message = head_message(head["tree_size"], head["root_hash"], head["timestamp"])
    key.verify(bytes.fromhex(head["signature"]), message)  # raises InvalidSignature if not


def commitment(part: dict[str, Any]) -> str:
    return hashlib.sha256(bytes.fromhex(part["salt"]) + canonical(part["data"])).hexdigest()


@pytest.fixture
def tokens(api: Api) -> Api:
    """Every token the tests use made up front: a token made later is itself an entry."""
    for who in ("alfa", "bravo", "bravo:viewer", "bravo:auditor", "alfa:viewer"):
        api.token(who)
    api.tokens["centre:auditor"] = api.service.create_token(ROOT, None, "auditor")
    return api


# ---------------------------------------------------------------- entries


def test_every_accepted_write_and_check_is_one_entry_in_commit_order(tokens: Api) -> None:
    api = tokens
    before = size(api)
    expected: list[tuple[str, str | None, dict[str, Any]]] = []  # (type, acting party, data fields to find) per entry
    times: list[datetime] = []
    refused = 0

    def accepted(response: Any, *entries: tuple[str, str | None, dict[str, Any]]) -> Any:
        assert response.is_success, response.text
        expected.extend(entries)
        times.extend([api.clock.now()] * len(entries))
        assert size(api) == before + len(expected)
        api.advance(1)  # each write at its own second
        return response.json()

    def not_accepted(response: Any, status: int) -> None:
        nonlocal refused
        assert response.status_code == status, response.text
        assert size(api) == before + len(expected), "a refused request added an entry"
        refused += 1

    accepted(
        api.post("/v1/aors", "alfa", json={"id": "east", "area": ALFA_LAND, "freshness_s": 3600}),
        ("aor.declared", "alfa", {"id": "east", "party": "alfa"}),
    )
    accepted(api.post("/v1/aors/east/confirm", "alfa"), ("aor.confirmed", "alfa", {"id": "east"}))
    not_accepted(api.post("/v1/aors/west/confirm", "alfa"), 404)
    accepted(
        api.post("/v1/assets", "alfa", json={"id": "post-1", "kind": "site", "name": "Poste Ñandú", "position": "34.6, 71.1"}),
        ("asset.registered", "alfa", {"id": "post-1", "name": "Poste Ñandú", "disclosure": "exact"}),
        ("report.accepted", "alfa", {"asset": "post-1", "lat": 34.6, "lon": 71.1}),
    )
    not_accepted(api.post("/v1/assets", "alfa", json={"id": "post-1", "kind": "site"}), 409)
    not_accepted(api.post("/v1/assets", "bravo:viewer", json={"id": "b-2", "kind": "unit"}), 403)
    not_accepted(api.post("/v1/assets", None, json={"id": "b-3", "kind": "unit"}), 401)
    accepted(api.post("/v1/assets", "bravo", json={"id": "b-1", "kind": "unit"}), ("asset.registered", "bravo", {"id": "b-1"}))
    not_accepted(api.post("/v1/reports", "bravo", json={"asset": "post-1", "position": "34.6, 71.1"}), 404)
    accepted(
        api.post("/v1/reports", "bravo", json={"asset": "b-1", "position": "34.61, 70.9"}),
        ("report.accepted", "bravo", {"asset": "b-1", "lat": 34.61, "lon": 70.9}),
    )
    accepted(
        api.post("/v1/zones", "alfa", json={"id": "z-1", "kind": "protected_area", "area": box(71.1, 34.5, 71.2, 34.6)}),
        ("zone.declared", "alfa", {"id": "z-1", "kind": "protected_area"}),
    )
    not_accepted(api.post("/v1/checks", "bravo", json={"position": "nowhere", "kind": "fires"}), 422)
    not_accepted(api.post("/v1/checks", "bravo", json={"position": "34.6, 71.1", "kind": "artillery"}), 422)
    answer = accepted(
        api.post("/v1/checks", "bravo", json={"position": "34.6, 71.1", "kind": "fires"}),
        ("check.asked", "bravo", {"asker": "bravo", "status": "conflict"}),
    )
    accepted(api.delete("/v1/zones/z-1", "alfa"), ("zone.withdrawn", "alfa", {"id": "z-1"}))
    not_accepted(api.delete("/v1/zones/z-1", "alfa"), 404)
    accepted(
        api.post("/v1/parties", "admin", json={"id": "charlie", "name": "Charlie"}), ("party.created", None, {"id": "charlie"})
    )
    not_accepted(api.post("/v1/parties", "alfa", json={"id": "delta", "name": "Delta"}), 403)
    accepted(
        api.post("/v1/parties/charlie/tokens", "admin", json={"role": "viewer"}),
        ("token.created", None, {"party": "charlie", "role": "viewer"}),
    )
    accepted(api.delete("/v1/assets/b-1", "bravo"), ("asset.withdrawn", "bravo", {"id": "b-1"}))
    assert refused == 9

    entries, _ = read_all(api, "alfa:viewer")
    assert len(entries) == before + len(expected)
    for i, entry in enumerate(entries):
        data = leaf_bytes(entry)
        assert entry["index"] == i
        assert entry["event"]["seq"] == i + 1
        assert json.loads(data) == entry["event"]
        assert set(entry["event"]) == ENTRY_KEYS
        assert data == canonical(entry["event"]), data  # sorted keys, no spaces, UTF-8 (not \u escapes)
        assert entry["leaf_hash"] == sha256(b"\x00" + data).hex()
    assert "Poste Ñandú".encode() in leaf_bytes(entries[before + 2])

    for entry, (type_, party, fields), t in zip(entries[before:], expected, times, strict=True):
        event = entry["event"]
        assert (event["type"], event["party"], event["time"]) == (type_, party, t.isoformat()), event
        assert fields.items() <= event["data"].items(), event
    check = next(e for e in entries[before:] if e["event"]["type"] == "check.asked")
    assert check["event"]["seq"] == answer["record"]
    assert check["index"] == answer["record"] - 1


def test_entries_can_be_read_in_slices(tokens: Api) -> None:
    entries, _ = read_all(tokens, "bravo")
    n = len(entries)
    assert n > 6
    part = tokens.ok("GET", "/v1/ledger/entries", "bravo", params={"start": 2, "end": 5})
    assert part["entries"] == entries[2:5]
    assert (part["tree_size"], part["next"]) == (n, 5)
    tail = tokens.ok("GET", "/v1/ledger/entries", "bravo", params={"start": n - 2})
    assert tail["entries"] == entries[n - 2 :]
    assert tail["next"] is None
    assert tokens.ok("GET", "/v1/ledger/entries", "bravo", params={"start": n})["entries"] == []
    refusal(tokens.get("/v1/ledger/entries", "bravo", params={"start": n + 1}), 422, field="start")
    refusal(tokens.get("/v1/ledger/entries", "bravo", params={"start": 4, "end": 3}), 422, field="end")
    refusal(tokens.get("/v1/ledger/entries", None), 401)


# ---------------------------------------------------------------- heads and proofs


def test_the_head_is_signed_and_its_root_is_the_tree_of_every_entry(tokens: Api) -> None:
    api = tokens
    api.advance(api.service.settings.head_interval_s)  # a head is due: the one served covers every entry
    head = api.ok("GET", "/v1/ledger/head", "bravo:viewer")
    assert set(head) == {*HEAD_KEYS, "public_key"}
    assert re.fullmatch(r"[0-9a-f]{64}", head["root_hash"]) and re.fullmatch(r"[0-9a-f]{128}", head["signature"])
    assert head["timestamp"] == ms(api.clock.now())
    assert_signed(head, head["public_key"])

    entries, _ = read_all(api, "bravo:viewer")
    assert head["tree_size"] == len(entries)
    assert head["root_hash"] == mth([leaf_bytes(e) for e in entries]).hex()

    # the key served is the node's key kept beside the store (in it, on PostgreSQL)
    if not str(api.db).startswith(POSTGRES_SCHEMES):
        key = serialization.load_pem_private_key(Path(f"{api.db}.key").read_bytes(), password=None)
    else:
        with psycopg.connect(api.db) as db:
            (pem,) = db.execute("SELECT pem FROM signing_key").fetchone() or ("",)
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert head["public_key"] == raw.hex()

    # the signature covers the size, the root and the time
    for changed in ({"tree_size": head["tree_size"] - 1}, {"timestamp": head["timestamp"] + 1}, {"root_hash": "00" * 32}):
        with pytest.raises(InvalidSignature):
            assert_signed({**head, **changed}, head["public_key"])
    other = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    with pytest.raises(InvalidSignature):
        assert_signed(head, other.hex())

    # the heads published are kept in the store
    assert heads(api)[-1] == {k: head[k] for k in HEAD_KEYS}
    store = open_store(api.db)
    try:
        assert store.heads() == heads(api)
    finally:
        store.close()


def test_inclusion_and_consistency_proofs_verify_against_the_heads(tokens: Api) -> None:
    api = tokens
    first = api.ok("GET", "/v1/ledger/head", "bravo")
    for i in range(5):
        api.asset("alfa", f"u-{i}", "unit", position=f"34.6{i}, 71.1{i}")
    api.advance(api.service.settings.head_interval_s)
    second = api.ok("GET", "/v1/ledger/head", "bravo")
    assert second["tree_size"] == size(api) >= first["tree_size"] + 10
    assert heads(api)[-2:] == [{k: h[k] for k in HEAD_KEYS} for h in (first, second)]

    entries, _ = read_all(api, "bravo")
    leaves = [leaf_bytes(e) for e in entries]
    for head in (first, second):
        n = head["tree_size"]
        root = bytes.fromhex(head["root_hash"])
        assert_signed(head, head["public_key"])
        assert mth(leaves[:n]) == root
        for i in range(n):
            proof = api.ok("GET", "/v1/ledger/proof/inclusion", "bravo", params={"index": i, "tree_size": n})
            assert set(proof) == {"index", "tree_size", "leaf_hash", "audit_path"}
            assert (proof["index"], proof["tree_size"]) == (i, n)
            assert proof["leaf_hash"] == entries[i]["leaf_hash"] == sha256(b"\x00" + leaves[i]).hex()
            path = [bytes.fromhex(h) for h in proof["audit_path"]]
            assert independent_inclusion(bytes.fromhex(proof["leaf_hash"]), i, n, path, root), (i, n)
            assert not independent_inclusion(bytes.fromhex(entries[(i + 1) % n]["leaf_hash"]), i, n, path, root)

    m, n = first["tree_size"], second["tree_size"]
    for size_before in range(1, n + 1):
        proof = api.ok("GET", "/v1/ledger/proof/consistency", "bravo", params={"first": size_before, "second": n})
        assert (proof["first"], proof["second"]) == (size_before, n)
        path = [bytes.fromhex(h) for h in proof["consistency_path"]]
        old_root = mth(leaves[:size_before])
        assert independent_consistency(size_before, n, old_root, bytes.fromhex(second["root_hash"]), path), size_before
    path = [
        bytes.fromhex(h)
        for h in api.ok("GET", "/v1/ledger/proof/consistency", "bravo", params={"first": m, "second": n})["consistency_path"]
    ]
    assert independent_consistency(m, n, bytes.fromhex(first["root_hash"]), bytes.fromhex(second["root_hash"]), path)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("inclusion", {"index": "SIZE", "tree_size": "SIZE"}, "index"),
        ("inclusion", {"index": 3, "tree_size": 3}, "index"),
        ("inclusion", {"index": -1, "tree_size": 3}, "index"),
        ("inclusion", {"index": 0, "tree_size": 0}, "tree_size"),
        ("inclusion", {"index": 0, "tree_size": "SIZE+1"}, "tree_size"),
        ("inclusion", {"index": 0}, "tree_size"),
        ("inclusion", {"index": "one", "tree_size": 3}, "index"),
        ("consistency", {"first": 4, "second": 3}, "first"),
        ("consistency", {"first": 0, "second": 3}, "first"),
        ("consistency", {"first": 1, "second": "SIZE+1"}, "second"),
        ("consistency", {"first": 1, "second": 0}, "second"),
        ("consistency", {"second": 3}, "first"),
    ],
)
def test_proofs_outside_the_record_are_refused_naming_the_field(
    tokens: Api, path: str, params: dict[str, Any], field: str
) -> None:
    n = size(tokens)
    sent = {k: n if v == "SIZE" else n + 1 if v == "SIZE+1" else v for k, v in params.items()}
    refusal(tokens.get(f"/v1/ledger/proof/{path}", "bravo", params=sent), 422, "invalid_input", field)


# ---------------------------------------------------------------- hidden data stays hidden

UNIT_AT = (34.57183, 71.02647)  # alfa's hidden unit where it was registered
UNIT_NOW = (34.57219, 71.02689)  # and where it then reported
COARSE_AT = (34.58437, 71.03519)  # alfa's coarse site
ZONE = (71.04113, 34.59227, 71.04371, 34.59483)  # alfa's hidden zone: west, south, east, north
BRAVO_ASKS = "34.5705, 71.0251"  # about 200 m from the unit: a fires check there finds it


@pytest.fixture
def secrets(tokens: Api) -> dict[str, Any]:
    """alfa's hidden unit, coarse site and hidden zone; bravo's check near the unit. Returns what must stay hidden."""
    api = tokens
    api.aor("alfa", "alfa-all", ALFA_LAND)
    api.aor("bravo", "bravo-all", BRAVO_LAND)
    unit = api.asset(
        "alfa", "ghost-7q", "unit", name="Kestrel Patrol", position=f"{UNIT_AT[0]}, {UNIT_AT[1]}", disclosure="hidden"
    )
    api.advance(1)
    report = api.report("alfa", "ghost-7q", f"{UNIT_NOW[0]}, {UNIT_NOW[1]}", uncertainty_m=35, how="h-g-i-g-o")
    coarse = api.asset(
        "alfa", "crow-site", "site", name="Crow Site", position=f"{COARSE_AT[0]}, {COARSE_AT[1]}", disclosure="coarse"
    )
    api.zone("alfa", "shadow-zone", "protected_area", box(*ZONE), name="Nightjar Zone", disclosure="hidden")
    api.advance(1)
    answer = api.check("bravo", position=BRAVO_ASKS, kind="fires")
    assert answer["status"] == "conflict"
    assert answer["conflicts"] == [{"party": "alfa", "disclosure": "hidden"}]
    api.advance(1)
    api.ok("DELETE", "/v1/assets/ghost-7q/position", "alfa")
    numbers = [*UNIT_AT, *UNIT_NOW, *COARSE_AT, *ZONE]
    exact = [repr(v) for v in numbers] + ["ghost-7q", "Kestrel Patrol", "shadow-zone", "Nightjar Zone", "h-g-i-g-o"]
    mgrs = [p["position"]["mgrs"] for p in (unit, report, coarse)]
    rendered = [f"{v:.4f}" for v in numbers] + [f"{v:.5f}" for v in numbers] + mgrs + [m.replace(" ", "") for m in mgrs]
    return {"exact": exact, "rendered": rendered, "answer": answer}


def readable_text(api: Api, who: str) -> str:
    """Everything ``who`` gets from the record: the raw pages, and each entry's bytes decoded from hex."""
    entries, texts = read_all(api, who)
    return "\n".join(texts) + "\n".join(leaf_bytes(e).decode() for e in entries)


@pytest.mark.parametrize("who", ["bravo", "bravo:viewer", "bravo:auditor"])
def test_another_party_reads_nothing_hidden_from_the_record(tokens: Api, secrets: dict[str, Any], who: str) -> None:
    readable = readable_text(tokens, who)
    assert [t for t in secrets["exact"] + secrets["rendered"] if t in readable] == []
    centre = readable_text(tokens, "centre:auditor")  # the search would find them: the centre reads them all
    assert [t for t in secrets["exact"] if t not in centre] == []
    entries, _ = read_all(tokens, who)
    for entry in entries:
        parts = entry.get("sealed") or []
        assert len(parts) == len(entry["event"]["data"].get("sealed", [])), entry
        if entry["event"]["party"] == "alfa":
            assert parts == [None] * len(parts), entry
        for part in parts:
            if part is not None:
                assert "bravo" in part["readers"], entry
    sealed = [
        e for e in entries if e["event"]["party"] == "alfa" and e["event"]["data"].get("disclosure") in ("hidden", "coarse")
    ]
    assert [(e["event"]["type"], len(e.get("sealed") or [])) for e in sealed] == [
        ("asset.registered", 1),  # the hidden unit
        ("report.accepted", 1),
        ("report.accepted", 1),
        ("asset.registered", 0),  # the coarse site: its name is shown, its position is not
        ("report.accepted", 1),
        ("zone.declared", 1),
        ("position.withdrawn", 1),
    ]


def test_the_owner_reads_its_sealed_parts_and_they_match_their_commitments(tokens: Api, secrets: dict[str, Any]) -> None:
    entries, _ = read_all(tokens, "alfa")
    mine: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        commitments = entry["event"]["data"].get("sealed", [])
        for part, committed in zip(entry.get("sealed") or [], commitments, strict=True):
            if part is not None:
                assert commitment(part) == committed, entry
                assert "alfa" in part["readers"]
            elif entry["event"]["party"] == "alfa":
                pytest.fail(f"alfa cannot read a part of its own entry {entry['index']}")
        if entry["event"]["party"] == "alfa" and entry.get("sealed"):
            merged: dict[str, Any] = {}
            for part in entry["sealed"]:
                merged |= part["data"]
            mine.setdefault(entry["event"]["type"], []).append(merged)
    assert mine["asset.registered"][0] == {"id": "ghost-7q", "name": "Kestrel Patrol", "kind": "unit"}
    positions = [(r["lat"], r["lon"], r.get("asset")) for r in mine["report.accepted"]]
    assert positions == [(*UNIT_AT, "ghost-7q"), (*UNIT_NOW, "ghost-7q"), (*COARSE_AT, None)]
    assert mine["report.accepted"][1]["uncertainty_m"] == 35
    zone = mine["zone.declared"][0]
    assert (zone["id"], zone["name"]) == ("shadow-zone", "Nightjar Zone")
    assert zone["area"]["coordinates"] == box(*ZONE)["coordinates"]
    assert mine["position.withdrawn"] == [{"id": "ghost-7q"}]
    check = next(e for e in entries if e["event"]["type"] == "check.asked")
    assert check["sealed"] == [None, None]  # bravo's check: neither its question nor the full answer


def test_the_asker_reads_its_question_and_answer_but_not_the_full_answer(tokens: Api, secrets: dict[str, Any]) -> None:
    entries, _ = read_all(tokens, "bravo")
    (check,) = [e for e in entries if e["event"]["type"] == "check.asked"]
    asked, full = check["sealed"]
    assert full is None
    assert asked["readers"] == ["bravo"]
    assert asked["data"]["query"] == {"position": BRAVO_ASKS, "kind": "fires"}
    assert asked["data"]["answer"] == {"conflicts": secrets["answer"]["conflicts"], "gaps": secrets["answer"]["gaps"]}
    assert commitment(asked) == check["event"]["data"]["sealed"][0]
    assert check["event"]["data"]["status"] == "conflict"


@pytest.mark.parametrize("who", ["centre:auditor", "admin"])
def test_the_centre_reads_every_sealed_part(tokens: Api, secrets: dict[str, Any], who: str) -> None:
    entries, _ = read_all(tokens, who)
    parts = 0
    for entry in entries:
        commitments = entry["event"]["data"].get("sealed", [])
        assert len(entry.get("sealed") or []) == len(commitments)
        for part, committed in zip(entry.get("sealed") or [], commitments, strict=True):
            assert part is not None, entry
            assert commitment(part) == committed
            parts += 1
    assert parts >= 10
    (check,) = [e for e in entries if e["event"]["type"] == "check.asked"]
    full = check["sealed"][1]
    assert full["readers"] == []
    (finding,) = full["data"]["full"]["conflicts"]
    assert (finding["party"], finding["id"], finding["name"]) == ("alfa", "ghost-7q", "Kestrel Patrol")
    assert (finding["position"]["lat"], finding["position"]["lon"]) == UNIT_NOW


# ---------------------------------------------------------------- heads are published while there are writes


def test_a_head_is_signed_after_writes_once_the_interval_passed_and_not_without_writes(tokens: Api) -> None:
    api = tokens
    interval = api.service.settings.head_interval_s
    api.service.tick()  # a first head, at T0 (the server's own ticker may have signed one already)
    published = heads(api)
    assert published

    api.asset("alfa", "u-1", "unit", position="34.61, 71.11")
    api.service.tick()
    assert heads(api) == published, "a head was signed before the interval passed"

    api.clock.advance_to(at(interval))
    api.service.tick()
    now = heads(api)
    assert now[:-1] == published
    assert (now[-1]["tree_size"], now[-1]["timestamp"]) == (size(api), ms(at(interval)))
    published = now

    api.clock.advance_to(at(10 * interval))
    api.service.tick()
    assert api.ok("GET", "/v1/ledger/head", "bravo")["timestamp"] == ms(at(interval))
    assert heads(api) == published, "a head was signed without new writes"

    api.report("alfa", "u-1", "34.62, 71.12")  # after a quiet time, the first write is signed at the next tick
    api.service.tick()
    now = heads(api)
    assert (now[-1]["tree_size"], now[-1]["timestamp"]) == (size(api), ms(at(10 * interval)))
    assert now[:-1] == published
    published = now

    api.report("alfa", "u-1", "34.63, 71.13")
    api.clock.advance_to(at(10 * interval + interval / 2))
    api.service.tick()
    assert heads(api) == published
    api.clock.advance_to(at(11 * interval))
    api.service.tick()
    now = heads(api)
    assert len(now) == len(published) + 1
    assert (now[-1]["tree_size"], now[-1]["timestamp"]) == (size(api), ms(at(11 * interval)))

    public_key = api.ok("GET", "/v1/ledger/head", "bravo")["public_key"]
    leaves = [leaf_bytes(e) for e in read_all(api, "bravo")[0]]
    for earlier, later in itertools.pairwise(now):
        assert earlier["timestamp"] < later["timestamp"] and earlier["tree_size"] < later["tree_size"]
        m, n = earlier["tree_size"], later["tree_size"]
        path = api.ok("GET", "/v1/ledger/proof/consistency", "bravo", params={"first": m, "second": n})["consistency_path"]
        assert independent_consistency(
            m, n, bytes.fromhex(earlier["root_hash"]), bytes.fromhex(later["root_hash"]), [bytes.fromhex(h) for h in path]
        )
    for head in now:
        assert_signed(head, public_key)
        assert head["root_hash"] == mth(leaves[: head["tree_size"]]).hex()
