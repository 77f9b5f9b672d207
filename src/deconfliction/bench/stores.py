"""``deconflict bench-stores``: the two stores side by side, in one run, on one machine.

For SQLite (a file in a temporary directory) and PostgreSQL 15 + PostGIS (a server started
from Debian's packages on loopback, every commit synced: ``fsync`` and ``synchronous_commit``
on), the same measurements of the service over the store:

- durable report ingest per second (:func:`ours.ingest`): batches of 1,000 alone, batches of
  1,000 while another thread asks a recorded check every millisecond, and one report per
  transaction;
- recorded check latency p50/p99 on a picture of ``checks_size`` assets, no other load (each
  check is answered from memory and its record committed durably before the answer);
- node start-up at ``startup_size`` assets: open the store and rebuild the picture from the
  whole log; then a snapshot written (as ``deconflict serve`` does when it stops) and start-up
  again from it, as the node's next start is;
- then the picture of a 10 km box as of an instant (``GET /v1/picture?area=...&as_of=...``):
  PostgreSQL reads the assets ever in the box through its spatial index, SQLite the whole log.

Not a test: it prints its figures and writes them to JSON.
"""

from __future__ import annotations

import gc
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from deconfliction.bench import ours
from deconfliction.bench.run import machine
from deconfliction.bench.servers import PostgisServer
from deconfliction.bench.theatre import make_theatre
from deconfliction.model import CheckKind, Role
from deconfliction.service import Caller, Service
from deconfliction.stores import open_store

STORES = ("sqlite", "postgresql")
AS_OF_BOX = "39.95,28.95,40.05,29.05"
"""About 10 km across, on the theatre's border: an investigator's area."""


@contextmanager
def _databases(tmp: Path) -> Iterator[Callable[[str, str], str]]:
    """``fresh(store, name)``: a new empty ``--db`` of that store; the PostgreSQL server lives as long as the block."""
    with PostgisServer() as server:

        def fresh(store: str, name: str) -> str:
            return str(tmp / f"{name}.db") if store == "sqlite" else server.create_database(name)

        yield fresh


def run_stores(
    *, checks_size: int, startup_size: int, checks: int, batched: int, single: int, console: Console
) -> dict[str, Any]:
    """Every measurement on both stores; the results as one JSON-able dict."""
    results: dict[str, Any] = {
        "machine": machine(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "checks_size": checks_size,
        "startup_size": startup_size,
        "stores": {s: {} for s in STORES},
    }
    with tempfile.TemporaryDirectory(prefix="deconfliction-stores-") as tmp, _databases(Path(tmp)) as fresh:
        theatre = make_theatre(checks_size)
        fires = theatre.checks(max(checks, 300), CheckKind.FIRES)
        for store in STORES:
            console.log(f"{store}: {checks_size:,} assets, checks and ingest")
            db = fresh(store, f"ingest_{store}")
            ours.load_store(db, theatre)
            out = results["stores"][store]
            alone = ours.ingest(db, theatre, batch=1000, count=batched, check_queries=fires, quiet_checks=checks, checking=False)
            out["checks"] = alone["checks_quiet"]
            out["ingest_batched_per_s"] = alone["per_s"]
            loaded = ours.ingest(db, theatre, batch=1000, count=batched, check_queries=fires)
            out["ingest_batched_checking_per_s"] = loaded["per_s"]
            out["checks_during_ingest"] = loaded["checks_under_load"]
            out["ingest_single_per_s"] = ours.ingest(db, theatre, batch=1, count=single, check_queries=fires)["per_s"]
        del theatre, fires
        gc.collect()
        big = make_theatre(startup_size)
        for store in STORES:
            console.log(f"{store}: {startup_size:,} assets, start-up")
            db = fresh(store, f"startup_{store}")
            out = results["stores"][store]
            out["load_s"] = ours.load_store(db, big)
            gc.collect()
            started = time.perf_counter()
            service = Service(open_store(db))
            out["startup_s"] = time.perf_counter() - started
            # An investigator's question of one area: the picture of a 10 km box as of the theatre's instant.
            started = time.perf_counter()
            seen = service.look(Caller("west", Role.LIAISON), AS_OF_BOX, as_of=big.now.isoformat())
            out["as_of_area_s"] = time.perf_counter() - started
            out["as_of_area_assets"] = len(seen["assets"])
            # As a node stops, and starts again from what it wrote.
            snapshot = Path(tmp) / f"{store}.snapshot"
            started = time.perf_counter()
            service.write_snapshot(snapshot)
            out["snapshot_write_s"] = time.perf_counter() - started
            out["snapshot_mib"] = snapshot.stat().st_size / 2**20
            service.store.close()
            del service
            gc.collect()
            started = time.perf_counter()
            service = Service(open_store(db), snapshot=snapshot)
            out["startup_from_snapshot_s"] = time.perf_counter() - started
            assert service.from_snapshot, "the snapshot just written was not used"
            service.store.close()
            del service
            gc.collect()
    return results


def print_stores(results: dict[str, Any], console: Console) -> None:
    m = results["machine"]
    table = Table(title=f"SQLite and PostgreSQL side by side: {m['cpu']}, {m['cores']} cores, {results['started']}")
    table.add_column("measurement")
    for store in STORES:
        table.add_column(store, justify="right")

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        table.add_row(label, *(cell(results["stores"][s]) for s in STORES))

    n, big = f"{results['checks_size']:,}", f"{results['startup_size']:,}"
    row("ingest, one report per transaction", lambda r: f"{r['ingest_single_per_s']:,.0f}/s")
    row("ingest, batches of 1,000", lambda r: f"{r['ingest_batched_per_s']:,.0f}/s")
    row("ingest, batches of 1,000, a recorded check every ms", lambda r: f"{r['ingest_batched_checking_per_s']:,.0f}/s")
    row(f"recorded check p50 / p99, {n} assets", lambda r: f"{_ms(r['checks']['p50_us'])} / {_ms(r['checks']['p99_us'])}")
    during = "those checks' p50 / p99"
    row(during, lambda r: f"{_ms(r['checks_during_ingest']['p50_us'])} / {_ms(r['checks_during_ingest']['p99_us'])}")
    row(f"start-up, {big} assets, from the whole log", lambda r: f"{r['startup_s']:.1f} s")
    row(f"start-up, {big} assets, from a snapshot", lambda r: f"{r['startup_from_snapshot_s']:.1f} s")
    row("(writing that snapshot, as a node stops)", lambda r: f"{r['snapshot_write_s']:.1f} s, {r['snapshot_mib']:,.0f} MiB")
    row(f"picture of a 10 km box as of an instant, {big} assets", lambda r: f"{r['as_of_area_s']:.2f} s")
    row(f"(writing the {big} assets' store, set-up)", lambda r: f"{r['load_s']:.0f} s")
    console.print(table)


def _ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def save(results: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "stores.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
