"""The ledger benchmark: ``python -m deconfliction.bench.ledger [--entries 1000000] [--out benchmarks/results]``.

Measured on this machine, against a real :class:`~deconfliction.stores.SQLiteStore` on disk
(WAL, every append committed and synced to the disk), as docs/ledger.md describes it:

- appends per second: ``store.append`` of ``report.accepted`` events in durable batches
  (1,000 and 10,000 by default, interleaved so that both sample the whole fill) and one
  event per commit; the events carry the theatre's disclosure mix (70 % exact, 20 % coarse,
  10 % hidden), so two in ten are sealed and one in ten seals its asset's name too;
- at the filled size (``--entries`` reports, plus the parties, assets and token that come
  before and after them): inclusion and consistency proofs through the store's own
  ``MerkleTree``, and through the HTTP API in process (FastAPI's test client, one auditor token);
- opening the store (reading every leaf hash and rebuilding the tree), the service's start-up
  on it, and ``verify_record`` over every entry and every signed head, as ``deconflict
  ledger verify --db`` does;
- the tree's memory per entry (tracemalloc, while a tree is rebuilt from the leaves);
- where the time of an append goes: each stage timed on its own, and a cProfile of the append path.

The JSON goes to ``<out>/ledger.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from deconfliction.bench.ours import Latency, time_calls
from deconfliction.bench.run import machine
from deconfliction.events import asset_event, party_event, report_event
from deconfliction.geo import LatLon
from deconfliction.ledger.heads import public_key_hex, sign_head
from deconfliction.ledger.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from deconfliction.ledger.seal import canonical_json, entry_bytes, seal
from deconfliction.ledger.verify import stored_entries, verify_record
from deconfliction.model import Asset, AssetKind, Disclosure, Event, Party, Report
from deconfliction.service import ROOT, Service
from deconfliction.stores import SQLiteStore
from deconfliction.stores.base import rows_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PARTIES = ("alfa", "bravo")
GOAL_APPENDS_PER_S = 50_000
GOAL_PROOF_US = 1_000
PROFILED_EVENTS = 20_000  # events appended under cProfile (and timed stage by stage) on a scratch store


# ---------------------------------------------------------------- the events


def _disclosure(rng: random.Random) -> Disclosure:
    x = rng.random()
    return Disclosure.EXACT if x < 0.7 else Disclosure.COARSE if x < 0.9 else Disclosure.HIDDEN


def make_assets(count: int, seed: int = 5) -> list[Asset]:
    """``count`` assets over two parties: a third sites, the rest units; the theatre's disclosure mix."""
    rng = random.Random(seed)
    assets = []
    for i in range(count):
        kind = AssetKind.SITE if i % 3 == 0 else AssetKind.UNIT
        assets.append(Asset(PARTIES[i % 2], f"a{i:06d}", kind, f"asset {i}", _disclosure(rng)))
    return assets


def setup_events(assets: Sequence[Asset]) -> list[Event]:
    """The parties and assets the reports are about (so that the service can start on the store)."""
    events = [party_event(Party(p, p.title()), T0, None) for p in PARTIES]
    return events + [asset_event(a, T0) for a in assets]


def report_events(assets: Sequence[Asset], first: int, count: int, rng: random.Random) -> list[Event]:
    """Reports ``first`` to ``first + count``, one millisecond apart, round-robin over the assets.

    Accepted together, as one batch of ``POST /v1/reports`` is: the events share their time.
    """
    events = []
    accepted = T0 + timedelta(milliseconds=first + count)
    for i in range(first, first + count):
        asset = assets[i % len(assets)]
        at = T0 + timedelta(milliseconds=i)
        stale = None if asset.kind is AssetKind.SITE else at + timedelta(hours=6)
        point = LatLon(rng.uniform(20.0, 38.0), rng.uniform(39.0, 41.0))
        report = Report(asset.party, asset.id, point, at, round(rng.uniform(5.0, 50.0), 1), stale)
        events.append(report_event(report, accepted, asset.disclosure, asset.kind))
    return events


def batch_plan(total: int, batches: Sequence[int]) -> Iterator[int]:
    """Batch sizes filling ``total`` events: for each size in turn, as many batches as make up the largest size.

    With (1000, 10000): ten batches of 1,000 then one of 10,000, over and over, so that
    every batch size is measured along the whole fill rather than on one end of the table.
    """
    largest, left = max(batches), total
    while left > 0:
        for size in batches:
            for _ in range(max(1, largest // size)):
                if left <= 0:
                    return
                take = min(size, left)
                yield take
                left -= take


# ---------------------------------------------------------------- the measurements


def _rate(events: int, seconds: float) -> dict[str, float]:
    return {"events": events, "seconds": seconds, "per_s": events / seconds if seconds else 0.0}


def _sign(store: SQLiteStore, key: Any) -> dict[str, Any]:
    size = len(store.tree)
    head = sign_head(key, size, store.tree.root(size), int(time.time() * 1000))
    store.add_head(head)
    return head


def fill(
    db: Path, entries: int, batches: Sequence[int], single: int, head_every: int, step: Callable[[str], None]
) -> dict[str, Any]:
    """Append the parties, assets and ``entries`` reports in timed durable batches, then ``single`` one by one.

    Only ``store.append`` is timed (sealing, encoding, hashing, the SQLite transaction and its
    sync, the tree); building the events, which the service does before, is timed apart.
    A head is signed every ``head_every`` entries or so, and one at the end.
    """
    rng = random.Random(1)
    assets = make_assets(min(10_000, max(10, entries // 100)))
    store = SQLiteStore(db)
    try:
        key = store.signing_key()
        store.append(setup_events(assets))
        timed = dict.fromkeys(batches, 0.0)
        counted = dict.fromkeys(batches, 0)
        build_s, made, last_head, segment_s = 0.0, 0, 0, 0.0
        curve = []  # appends per second over each stretch between heads: how the rate changes as the table grows
        for size in batch_plan(entries, batches):
            started = time.perf_counter()
            events = report_events(assets, made, size, rng)
            build_s += time.perf_counter() - started
            nominal = min((b for b in batches if b >= size), default=max(batches))
            started = time.perf_counter()
            store.append(events)
            took = time.perf_counter() - started
            timed[nominal] += took
            segment_s += took
            counted[nominal] += size
            made += size
            if made - last_head >= head_every:
                curve.append({"reports": made, "per_s": (made - last_head) / segment_s})
                segment_s = 0.0
                _sign(store, key)
                last_head = made
                step(f"appended {made:,} of {entries:,} reports")
        events = report_events(assets, made, single, rng)
        started = time.perf_counter()
        for event in events:
            store.append([event])
        single_s = time.perf_counter() - started
        _sign(store, key)
        result: dict[str, Any] = {f"batch_{b}": {"batch": b, **_rate(counted[b], timed[b])} for b in batches if counted[b]}
        result["single"] = {"batch": 1, **_rate(single, single_s)}
        result["curve"] = curve
        result["event_build_us"] = build_s / max(1, made) * 1e6
        result["assets"] = len(assets)
        result["tree_size"] = len(store.tree)
    finally:
        store.close()
    return result


def proofs(tree: MerkleTree, count: int, seed: int = 7) -> dict[str, Any]:
    """``count`` random inclusion proofs (any entry, in the whole tree) and consistency proofs (any prefix to the whole)."""
    rng = random.Random(seed)
    size = len(tree)
    indices = [rng.randrange(size) for _ in range(count)]
    firsts = [rng.randrange(1, size + 1) for _ in range(count)]
    inclusion = time_calls(lambda i: tree.inclusion_proof(i, size), indices)
    consistency = time_calls(lambda m: tree.consistency_proof(m, size), firsts)
    root = tree.root(size)
    good = sum(verify_inclusion(tree.leaf(i), i, size, tree.inclusion_proof(i, size), root) for i in indices)
    good += sum(verify_consistency(m, size, tree.root(m), root, tree.consistency_proof(m, size)) for m in firsts)
    return {
        "tree_size": size,
        "inclusion": inclusion.as_dict(),
        "consistency": consistency.as_dict(),
        "path_length": len(tree.inclusion_proof(0, size)),
        "verified": good,
        "checked": 2 * count,
    }


def http_proofs(service: Service, token: str, count: int, seed: int = 11) -> dict[str, Any] | None:
    """The same proofs through ``GET /v1/ledger/proof/*`` of the app in process (FastAPI's test client)."""
    try:
        from fastapi.testclient import TestClient
    except ImportError:  # the test client needs the test extra
        return None
    from deconfliction.app import create_app

    tree = service.store.tree
    size = len(tree)
    rng = random.Random(seed)
    root = tree.root(size)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(service)) as client:

        def inclusion(i: int) -> dict[str, Any]:
            r = client.get("/v1/ledger/proof/inclusion", params={"index": i, "tree_size": size}, headers=headers)
            r.raise_for_status()
            return dict(r.json())

        def consistency(m: int) -> dict[str, Any]:
            r = client.get("/v1/ledger/proof/consistency", params={"first": m, "second": size}, headers=headers)
            r.raise_for_status()
            return dict(r.json())

        indices = [rng.randrange(size) for _ in range(count)]
        firsts = [rng.randrange(1, size + 1) for _ in range(count)]
        included = time_calls(inclusion, indices)
        consistent = time_calls(consistency, firsts)
        good = 0
        for i in indices[:50]:
            answer = inclusion(i)
            path = [bytes.fromhex(h) for h in answer["audit_path"]]
            good += verify_inclusion(bytes.fromhex(answer["leaf_hash"]), i, size, path, root)
        for m in firsts[:50]:
            path = [bytes.fromhex(h) for h in consistency(m)["consistency_path"]]
            good += verify_consistency(m, size, tree.root(m), root, path)
    return {
        "inclusion": included.as_dict(),
        "consistency": consistent.as_dict(),
        "verified": good,
        "checked": len(indices[:50]) + len(firsts[:50]),
    }


def verification(db: Path) -> dict[str, Any]:
    """Open the store afresh (the tree rebuilt from its leaf hashes), then verify every entry and head."""
    gc.collect()
    started = time.perf_counter()
    store = SQLiteStore(db)
    open_s = time.perf_counter() - started
    try:
        key = public_key_hex(store.signing_key())
        started = time.perf_counter()
        verdict = verify_record(stored_entries(store), store.heads(), key)
        verify_s = time.perf_counter() - started
        leaves = [store.tree.leaf(i) for i in range(len(store.tree))]
    finally:
        store.close()
    # The tree alone, from leaf hashes already in memory: the part of opening that is not SQLite.
    gc.collect()
    started = time.perf_counter()
    tree = MerkleTree()
    for leaf in leaves:
        tree.append(leaf)
    rebuild_s = time.perf_counter() - started
    del tree
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tree = MerkleTree()
    for leaf in leaves:
        tree.append(leaf)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    n = len(leaves)
    return {
        "ok": verdict.ok,
        "entries": verdict.entries,
        "heads": verdict.heads,
        "problems": verdict.problems,
        "verify_s": verify_s,
        "verify_per_entry_us": verify_s / max(1, n) * 1e6,
        "store_open_s": open_s,
        "tree_rebuild_s": rebuild_s,
        "tree_bytes": held,
        "tree_bytes_per_entry": held / max(1, n),
        "db_bytes": db.stat().st_size + sum(p.stat().st_size for p in db.parent.glob(db.name + "-*")),
    }


_SQLITE, _HASH, _JSON, _SEAL, _OTHER = (
    "SQLite: insert, commit and sync",
    "hashing: SHA-256 of leaves, commitments, tree",
    "JSON: canonical encoding of entries and parts",
    "sealing: rules, salts, commitments",
    "other: rows, datetimes, Python glue",
)


def _category(file: str, name: str) -> str:
    if "sqlite3." in name:
        return _SQLITE
    if file.endswith("merkle.py") or "_hashlib" in name or "sha256" in name:
        return _HASH
    if "/json/" in file or "_json" in name or name in ("canonical_json", "entry_bytes", "<method 'encode' of 'str' objects>"):
        return _JSON
    if file.endswith("seal.py") or "urandom" in name or "hex" in name:
        return _SEAL
    return _OTHER


def where_time_goes(tmp: Path, filled: Path, count: int) -> dict[str, Any]:
    """Where an append's time goes, for ``count`` events in batches of 1,000.

    Each stage is timed alone; then whole appends onto a fresh store and onto the ``filled``
    one (its secondary indexes are then large); then, on the filled store, the appends of
    as many more events again under cProfile.
    """
    rng = random.Random(3)
    assets = make_assets(1000)
    batches = [report_events(assets, k, 1000, rng) for k in range(0, count, 1000)]
    n = sum(len(b) for b in batches)

    def timed(work: Callable[[], object]) -> float:
        started = time.perf_counter()
        work()
        return (time.perf_counter() - started) / n * 1e6

    # Stage by stage, batch by batch, each batch's results dropped before the next, as in an append.
    stages = {"seal_us": timed(lambda: [len([seal(e) for e in b]) for b in batches])}
    sealed = [[seal(e) for e in b] for b in batches]

    def encode(k: int) -> list[bytes]:
        out = []
        time_ = batches[k][0].time.isoformat()  # the batch's one time, formatted once as rows_for does
        for seq, (e, (public, parts)) in enumerate(zip(batches[k], sealed[k], strict=True), 1):
            data = canonical_json(public)
            if parts:
                canonical_json([p.as_json() for p in parts])
            out.append(entry_bytes(seq, time_, e.party, e.type, data))
        return out

    stages["json_us"] = timed(lambda: [len(encode(k)) for k in range(len(batches))])
    entries = [encode(k) for k in range(len(batches))]
    stages["leaf_hash_us"] = timed(lambda: [len([leaf_hash(entry) for entry in b]) for b in entries])
    stages["rows_us"] = timed(lambda: [len(rows_for(b, 1)) for b in batches])  # all three, as the store does them
    leaves = [leaf_hash(entry) for b in entries for entry in b]
    stages["tree_us"] = timed(lambda: _grow(leaves))
    store = SQLiteStore(tmp / "plain.db")
    try:
        stages["append_us"] = timed(lambda: [store.append(b) for b in batches])
    finally:
        store.close()
    stages["sqlite_us"] = stages["append_us"] - stages["rows_us"] - stages["tree_us"]
    store = SQLiteStore(filled)
    try:
        stages["append_filled_us"] = timed(lambda: [store.append(b) for b in batches])
        stages["sqlite_filled_us"] = stages["append_filled_us"] - stages["rows_us"] - stages["tree_us"]
        profiler = cProfile.Profile()
        profiler.enable()
        for b in batches:
            store.append(b)
        profiler.disable()
        at = len(store.tree)
    finally:
        store.close()
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    shares: dict[str, float] = dict.fromkeys((_SQLITE, _HASH, _JSON, _SEAL, _OTHER), 0.0)
    seal_cumulative = write = sync = 0.0
    for (file, _line, name), (_cc, _nc, tottime, cumtime, _callers) in stats.items():
        shares[_category(file, name)] += tottime
        if file.endswith("seal.py") and name == "seal":
            seal_cumulative = cumtime
        elif name == "<method 'execute' of 'sqlite3.Connection' objects>":
            write = tottime  # the inserts, committed: C calls, barely slowed by the profiler
        elif name == "<built-in method posix.fdatasync>":
            sync = tottime
    total = sum(shares.values())
    return {
        "events": n,
        "batch": 1000,
        "filled_size": at,
        "stages": stages,
        "profile_share": {k: v / total for k, v in shares.items()},
        "profile_seal_cumulative_share": seal_cumulative / total,
        "profile_sqlite_write_us": write / n * 1e6,
        "profile_sqlite_sync_us": sync / n * 1e6,
        "profile_overhead": total / n * 1e6 / stages["append_filled_us"],
    }


def _grow(leaves: Sequence[bytes]) -> MerkleTree:
    tree = MerkleTree()
    for leaf in leaves:
        tree.append(leaf)
    return tree


def serve_and_prove(db: Path, proof_count: int, http_count: int) -> dict[str, Any]:
    """Start the service on the filled store, add an auditor token and sign a head over everything; then the proofs."""
    store = SQLiteStore(db)
    try:
        started = time.perf_counter()
        service = Service(store)
        start_s = time.perf_counter() - started
        token = service.create_token(ROOT, None, "auditor")
        _sign(store, store.signing_key())
        head = service.ledger_head()
        return {
            "service_start_s": start_s,
            "head": {k: head[k] for k in ("tree_size", "root_hash", "timestamp")},
            "head_covers_all": head["tree_size"] == len(store.tree),
            "proofs": proofs(store.tree, proof_count),
            "http_proofs": http_proofs(service, token, http_count) if http_count else None,
        }
    finally:
        store.close()


# ---------------------------------------------------------------- the run


def run(
    entries: int,
    out_dir: Path,
    *,
    batches: Sequence[int] = (1000, 10_000),
    single: int = 1000,
    proof_count: int = 2000,
    http_count: int = 500,
    head_every: int = 50_000,
    profile_events: int = PROFILED_EVENTS,
    console: Console | None = None,
) -> dict[str, Any]:
    """Every measurement; writes ``out_dir/ledger.json`` and returns it."""
    console = console or Console(stderr=True)
    results: dict[str, Any] = {
        "machine": machine(),
        "load_average_before": os.getloadavg(),  # other work on the machine meanwhile skews every figure
        "entries": entries,
        "proof_tree": "the filled SQLiteStore's own tree, rebuilt from its leaf hashes on open",
    }

    def step(text: str) -> None:
        console.log(text)

    with tempfile.TemporaryDirectory(prefix="deconfliction-ledger-bench-") as tmp:
        db = Path(tmp) / "ledger.db"
        step(f"filling a store with {entries:,} reports (batches of {', '.join(f'{b:,}' for b in batches)})")
        results["append"] = fill(db, entries, batches, single, head_every, step)

        step("starting the service on the store; proofs in process and over HTTP")
        results.update(serve_and_prove(db, proof_count, http_count))
        gc.collect()  # the service's picture is gone: the measurements below run on a small heap, as the fill did

        step("verifying every entry and head; the tree's memory")
        results["verify"] = verification(db)
        step(f"profiling {profile_events:,} appends")
        results["append_profile"] = where_time_goes(Path(tmp), db, profile_events)
    results["load_average_after"] = os.getloadavg()

    results["goals"] = goals(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ledger.json").write_text(json.dumps(results, indent=2))
    return results


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals against the figures: met or not, and by how much."""
    append = results["append"]
    best = max(v["per_s"] for k, v in append.items() if k.startswith("batch_"))
    p = results["proofs"]
    worst_p99 = max(p["inclusion"]["p99_us"], p["consistency"]["p99_us"])
    size = p["tree_size"]
    return [
        {
            "goal": f"at least {GOAL_APPENDS_PER_S:,} appends/s, durable commits batched",
            "measured": best,
            "met": best >= GOAL_APPENDS_PER_S,
            "ratio": best / GOAL_APPENDS_PER_S,
        },
        {
            "goal": f"proofs under 1 ms at {size:,} entries (p99, in process)",
            "measured": worst_p99,
            "met": worst_p99 < GOAL_PROOF_US,
            "ratio": GOAL_PROOF_US / worst_p99 if worst_p99 else 0.0,
        },
    ]


def _us(value: float) -> str:
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.1f} µs"


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The table: measurement, p50, p99, rate or figure."""
    out: list[tuple[str, str, str, str]] = []
    append = results["append"]
    for key, value in append.items():
        if key.startswith("batch_") or key == "single":
            label = "append, one event per commit" if key == "single" else f"append, batches of {value['batch']:,}"
            out.append((f"{label} ({value['events']:,} events)", "", "", f"{value['per_s']:,.0f}/s"))
    out.append(("building the events (not in the appends)", "", "", f"{append['event_build_us']:.1f} µs/event"))
    p = results["proofs"]
    size = f"{p['tree_size']:,}"
    for kind in ("inclusion", "consistency"):
        lat = Latency(**p[kind])
        out.append((f"{kind} proof, in process, {size} entries", _us(lat.p50_us), _us(lat.p99_us), f"{lat.per_s:,.0f}/s"))
    http = results.get("http_proofs")
    if http:
        for kind in ("inclusion", "consistency"):
            lat = Latency(**http[kind])
            label = f"{kind} proof, HTTP in process, {size} entries"
            out.append((label, _us(lat.p50_us), _us(lat.p99_us), f"{lat.per_s:,.0f}/s"))
    v = results["verify"]
    verdict = "ok" if v["ok"] else "FAILED: " + "; ".join(v["problems"])
    out.append((f"verify_record, {v['entries']:,} entries, {v['heads']} heads ({verdict})", "", "", f"{v['verify_s']:.1f} s"))
    out.append(("open the store (read leaves, rebuild tree)", "", "", f"{v['store_open_s']:.2f} s"))
    out.append(("rebuild the tree from leaves in memory", "", "", f"{v['tree_rebuild_s']:.2f} s"))
    out.append(("service start-up on the store", "", "", f"{results['service_start_s']:.2f} s"))
    out.append(("tree memory", "", "", f"{v['tree_bytes_per_entry']:.1f} B/entry"))
    profile = results["append_profile"]
    s = profile["stages"]
    out.append((f"one append in batches of {profile['batch']:,}, in all", "", "", f"{s['append_us']:.1f} µs/event"))
    out.append(("  sealing (rules, salts, commitments)", "", "", f"{s['seal_us']:.1f} µs/event"))
    out.append(("  canonical JSON of data, parts and entry", "", "", f"{s['json_us']:.1f} µs/event"))
    out.append(("  leaf hash", "", "", f"{s['leaf_hash_us']:.1f} µs/event"))
    out.append(("  the three, as rows_for does them", "", "", f"{s['rows_us']:.1f} µs/event"))
    out.append(("  tree append", "", "", f"{s['tree_us']:.1f} µs/event"))
    out.append(("  SQLite (the rest of the append)", "", "", f"{s['sqlite_us']:.1f} µs/event"))
    filled = f"{profile['filled_size']:,}"
    out.append(
        (
            f"one append in batches of {profile['batch']:,}, onto the store of {filled}",
            "",
            "",
            f"{s['append_filled_us']:.1f} µs/event",
        )
    )
    out.append(("  SQLite (the rest of the append)", "", "", f"{s['sqlite_filled_us']:.1f} µs/event"))
    out.append(("    of which insert and commit / disk sync (cProfile)", "", "", _split(profile)))
    return out


def _split(profile: dict[str, Any]) -> str:
    return f"{profile['profile_sqlite_write_us']:.1f} / {profile['profile_sqlite_sync_us']:.1f} µs/event"


def print_table(results: dict[str, Any], console: Console) -> None:
    m = results["machine"]
    table = Table(
        "measurement", "p50", "p99", "rate / figure", title=f"ledger: {m['cpu']}, {m['cores']} cores, Python {m['python']}"
    )
    for row in rows(results):
        table.add_row(*row)
    console.print(table)
    profile = results["append_profile"]
    console.print(
        f"cProfile of {profile['events']:,} appends onto the store of {profile['filled_size']:,} entries "
        f"(self time; profiler overhead x{profile['profile_overhead']:.1f}):"
    )
    for name, share in sorted(profile["profile_share"].items(), key=lambda kv: -kv[1]):
        console.print(f"  {share:6.1%}  {name}")
    console.print(f"  seal() with everything it calls: {profile['profile_seal_cumulative_share']:.1%}")
    curve = results["append"]["curve"]
    if curve:
        shown = ", ".join(f"{c['reports'] / 1000:,.0f}k: {c['per_s']:,.0f}/s" for c in curve)
        console.print(f"appends per second along the fill (reports so far: rate since the previous mark): {shown}")
    for goal in results["goals"]:
        console.print(f"goal: {goal['goal']}: {'met' if goal['met'] else 'NOT met'} ({goal['ratio']:.2f}x the goal's figure)")


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deconfliction.bench.ledger", description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="report events to append (default 1,000,000)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="where ledger.json goes")
    parser.add_argument("--batches", type=_sizes, default=[1000, 10_000], help="batch sizes, comma-separated")
    parser.add_argument("--single", type=int, default=1000, help="events appended one per commit")
    parser.add_argument("--proofs", type=int, default=2000, help="random proofs of each kind, in process")
    parser.add_argument("--http-proofs", type=int, default=500, help="random proofs of each kind over HTTP (0: none)")
    parser.add_argument("--profile-events", type=int, default=PROFILED_EVENTS, help="appends timed stage by stage and profiled")
    args = parser.parse_args(argv)
    if args.entries < 1 or not args.batches or min(args.batches) < 1:
        parser.error("--entries and every batch size must be positive")
    console = Console(stderr=True)
    results = run(
        args.entries,
        args.out,
        batches=args.batches,
        single=args.single,
        proof_count=args.proofs,
        http_count=args.http_proofs,
        head_every=max(1, min(50_000, args.entries // 10)),
        profile_events=max(1000, args.profile_events),
        console=console,
    )
    print_table(results, Console(width=max(120, Console().width)))
    return 0 if results["verify"]["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
