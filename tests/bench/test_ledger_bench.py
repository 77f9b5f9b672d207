"""The ledger benchmark runs end to end at a tiny size and writes every figure; no timing is asserted.

The figures themselves (1M entries) are in benchmarks/README.md, section "Ledger".
"""

from __future__ import annotations

import json
import random
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from deconfliction.bench.ledger import batch_plan, main, make_assets, report_events, setup_events
from deconfliction.ledger.heads import public_key_hex
from deconfliction.ledger.merkle import MerkleTree
from deconfliction.ledger.verify import stored_entries, verify_record
from deconfliction.service import Service
from deconfliction.settings import Settings
from deconfliction.stores import SQLiteStore

LATENCY = {"count", "p50_us", "p99_us", "p999_us", "per_s"}


def positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def test_batch_plan_interleaves_the_sizes_and_fills_exactly() -> None:
    assert list(batch_plan(25_000, (1000, 10_000))) == [1000] * 10 + [10_000] + [1000] * 5
    assert sum(batch_plan(2_345, (100, 500))) == 2_345
    assert list(batch_plan(250, (100, 500))) == [100, 100, 50]


def test_a_tiny_run_writes_every_figure_and_verifies(tmp_path: Path) -> None:
    args = ["--entries", "2000", "--out", str(tmp_path), "--batches", "100,500", "--single", "20"]
    code = main([*args, "--proofs", "200", "--http-proofs", "20", "--profile-events", "1000"])
    assert code == 0
    results = json.loads((tmp_path / "ledger.json").read_text())

    assert results["machine"]["cpu"] and positive(results["machine"]["cores"])
    append = results["append"]
    assert {k: append[k]["events"] for k in ("batch_100", "batch_500", "single")} == {
        "batch_100": 1000,
        "batch_500": 1000,
        "single": 20,
    }
    assert all(positive(append[k]["per_s"]) for k in ("batch_100", "batch_500", "single"))
    assert positive(append["event_build_us"])
    assert [c["reports"] for c in append["curve"]] == [200, 400, 1000, 1200, 1400, 2000]  # a head every 200 or so
    assert all(positive(c["per_s"]) for c in append["curve"])
    # parties, 20 assets, 2,000 reports in batches, 20 one by one; then the auditor's token
    size = 2 + 20 + 2000 + 20 + 1
    assert append["tree_size"] == size - 1

    proofs = results["proofs"]
    assert proofs["tree_size"] == size
    assert proofs["verified"] == proofs["checked"] == 400
    for kind in ("inclusion", "consistency"):
        assert set(proofs[kind]) == LATENCY and proofs[kind]["count"] == 200
        assert all(positive(proofs[kind][k]) for k in ("p50_us", "p99_us", "per_s"))
        assert set(results["http_proofs"][kind]) == LATENCY and results["http_proofs"][kind]["count"] == 20
    assert results["http_proofs"]["verified"] == results["http_proofs"]["checked"] == 40

    verify = results["verify"]
    assert verify["ok"] and verify["problems"] == []
    assert verify["entries"] == size
    assert verify["heads"] == 6 + 2  # those of the curve, after the last append, after the token
    assert results["head_covers_all"] and results["head"]["tree_size"] == size
    assert all(positive(verify[k]) for k in ("verify_s", "store_open_s", "tree_rebuild_s", "db_bytes"))
    assert 64 <= verify["tree_bytes_per_entry"] < 128  # two 32-byte hashes per entry, and the arrays' slack

    profile = results["append_profile"]
    assert profile["events"] == 1000
    assert profile["filled_size"] == size + 2 * 1000  # the filled store took the timed appends, then the profiled ones
    for stage in ("seal_us", "json_us", "leaf_hash_us", "rows_us", "tree_us", "append_us", "append_filled_us"):
        assert positive(profile["stages"][stage]), stage
    assert abs(sum(profile["profile_share"].values()) - 1) < 1e-9
    assert positive(profile["profile_sqlite_write_us"]) and positive(profile["profile_sqlite_sync_us"])

    appends, proof_time = results["goals"]
    assert appends["measured"] == max(append["batch_100"]["per_s"], append["batch_500"]["per_s"])
    assert appends["met"] == (appends["measured"] >= 50_000)
    assert proof_time["measured"] == max(proofs["inclusion"]["p99_us"], proofs["consistency"]["p99_us"])
    assert proof_time["met"] == (proof_time["measured"] < 1000)


def test_a_head_signed_while_an_append_is_half_done_still_matches_the_entries(tmp_path: Path) -> None:
    # Found while benchmarking the ledger, fixed in e93b134 (the size grows last); it belongs with the
    # ledger's tests. A head signed between the first leaf and the upper levels of an append carried
    # a wrong root (or raised IndexError), and verification then failed for ever. The interleaving
    # that another thread (the ticker's ledger_head, GET /v1/ledger/head) can hit at a GIL switch is
    # made deterministic: a trace hook in MerkleTree.append, at its first step after the tree's
    # length grew (or at its return), starts a thread that signs a head, and lets the append go on
    # only once that thread has its head and waits to store it (or after 2 s, if it waits for the
    # append itself).
    store = SQLiteStore(tmp_path / "t.db")
    try:
        service = Service(store, settings=Settings(head_interval_s=0.0))
        assets = make_assets(3)
        store.append(setup_events(assets))  # entries 0-4
        before = len(store.tree)
        signed: list[dict[str, Any]] = []
        signer: list[threading.Thread] = []
        storing = threading.Event()

        def in_signer(frame: FrameType, event: str, arg: object) -> Any:
            if event == "call" and frame.f_code is SQLiteStore.add_head.__code__:
                storing.set()

        def sign() -> None:
            sys.settrace(in_signer)
            signed.append(service.ledger_head())

        def in_append(frame: FrameType, event: str, arg: object) -> Any:
            if event in ("line", "return") and not signer and len(store.tree) > before:
                signer.append(threading.Thread(target=sign))
                signer[0].start()
                storing.wait(2)
            return in_append

        def calls(frame: FrameType, event: str, arg: object) -> Any:
            return in_append if event == "call" and frame.f_code is MerkleTree.append.__code__ else None

        previous = sys.gettrace()
        sys.settrace(calls)
        try:
            store.append(report_events(assets, 0, 1, random.Random(0)))  # entry 5: with entry 4 it completes a subtree
        finally:
            sys.settrace(previous)
        signer[0].join(10)
        assert signed and signed[0]["tree_size"] == 6
        verdict = verify_record(stored_entries(store), store.heads(), public_key_hex(store.signing_key()))
        assert verdict.ok, verdict.problems
    finally:
        store.close()
