"""``deconflict bench``: one run, the same theatre and questions for every system, one table.

For each size it measures our engine in process, our store (start-up, durable ingest
with checks running), our HTTP server (wrk on loopback), and the alternatives a team
would reach for, PostGIS and Redis, started from Debian's packages on loopback. Results
go to ``benchmarks/results/`` as JSON and a PNG chart.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deconfliction.bench import ours
from deconfliction.bench.theatre import WIDE_RADIUS_M, Theatre, make_theatre
from deconfliction.engine.rules import check
from deconfliction.model import CheckKind, CheckQuery
from deconfliction.settings import Settings

KINDS = (CheckKind.FIRES, CheckKind.AIR, CheckKind.GROUND, CheckKind.OTHER)
AGREEMENT_SAMPLE = 500  # checks answered by every system and compared
WORKERS = 2
"""``serve --workers`` for the second HTTP measurement: one per core of the machine the figures are from."""


def parse_size(text: str) -> int:
    """``10k`` -> 10000, ``1M`` -> 1000000."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def machine() -> dict[str, Any]:
    """What the figures were measured on, and which code measured them."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        **source(),
    }


def source() -> dict[str, Any]:
    """The commit the measuring code was installed from, and whether it had uncommitted changes: a figure
    in the docs names its commit, and one measured on changes not committed is not that commit's. None
    for both where the installed code is not in a git checkout (a wheel, not ``pip install -e``)."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(Path(__file__).parent), *args], capture_output=True, text=True, timeout=10)

    unknown = {"commit": None, "uncommitted_changes": None}
    try:
        commit, changed = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return unknown
    if commit.returncode or changed.returncode:
        return unknown
    return {"commit": commit.stdout.strip(), "uncommitted_changes": bool(changed.stdout.strip())}


def concurrent_rate(
    make_path: Callable[[], Any], queries: Sequence[CheckQuery], now: datetime, threads: int, seconds: float
) -> float:
    """Checks per second from ``threads`` clients, each with its own connection, for ``seconds``."""
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def client(n: int) -> None:
        path = make_path()
        try:
            i = n
            while time.perf_counter() < stop:
                q = queries[i % len(queries)]
                path.check(q, now, Settings().buffer_m(q.kind))
                done[n] += 1
                i += threads
        finally:
            path.close()

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=seconds + 60)
    return sum(done) / (time.perf_counter() - started)


def bench_size(
    size: int, *, checks: int, http_s: int, connections: int, alternatives: bool, step: Callable[[str], None]
) -> dict[str, Any]:
    """Every measurement at one size; ``step`` reports progress."""
    result: dict[str, Any] = {"assets": size, "zones": size // 10}
    step(f"{size:,} assets: building the theatre")
    # Timed now: the server answers on its own clock, so that over HTTP it is asked the questions the engine and
    # the alternatives are asked (a few minutes later: units' reports go stale 5 to 60 minutes after ``now``).
    theatre = make_theatre(size, now=datetime.now(UTC).replace(microsecond=0))
    started = time.perf_counter()
    picture = theatre.picture()
    gc.collect()
    gc.freeze()  # as the server does after loading: the GC no longer walks the whole picture
    result["build_picture_s"] = time.perf_counter() - started

    step(f"{size:,} assets: engine checks in process")
    # The same questions in process and over HTTP: point and polygon checks of each kind.
    questions: dict[str, list[CheckQuery]] = {}
    for kind in KINDS:
        questions[f"point_{kind.value}"] = theatre.checks(checks, kind)
        questions[f"polygon_{kind.value}"] = theatre.checks(max(100, checks // 4), kind, area=True)
    result["engine"] = {
        name: ours.engine_checks(picture, asked, theatre.now, Settings().buffer_m(asked[0].kind)).as_dict()
        for name, asked in questions.items()
    }
    # Wide checks where the picture is sparse: what the index's search costs when its reach is large (a scan of
    # every point beyond a cell count, see CELLS_PER_POINT_MAX). Fewer of them: at 1M each takes milliseconds.
    wide = theatre.wide_checks(max(20, checks // 40))
    result["engine_wide"] = ours.engine_checks(picture, wide, theatre.now, Settings().buffer_m(wide[0].kind)).as_dict()
    fires = questions["point_fires"]
    ours_answers = [check(picture, q, theatre.now, 1500.0) for q in fires[:AGREEMENT_SAMPLE]]
    del picture
    gc.unfreeze()
    gc.collect()

    with tempfile.TemporaryDirectory(prefix="deconfliction-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        step(f"{size:,} assets: writing the store")
        result["store_load_s"] = ours.load_store(db, theatre)
        step(f"{size:,} assets: start-up from the store")
        result["startup_s"] = ours.startup_s(db)
        step(f"{size:,} assets: durable ingest with checks running")
        result["ingest_batched"] = ours.ingest(db, theatre, batch=1000, count=min(100_000, size), check_queries=fires)
        result["ingest_single"] = ours.ingest(db, theatre, batch=1, count=300, check_queries=fires)
        token = ours.liaison_token(db, "west")
        step(f"{size:,} assets: HTTP checks with wrk")
        with ours.server(db) as srv:
            result["http_after_s"] = (datetime.now(UTC) - theatre.now).total_seconds()
            result["server_startup_s"] = srv["startup_s"]
            result["server_rss_mib"] = srv["rss_kib"] / 1024
            # Fires first, the checks the goals and the alternatives are compared on. At 1M assets on the bench
            # machine the server answers about 3 minutes after the theatre was built, and the workers (next) are
            # asked before 5: before any more units' reports go stale (they do from 5 minutes on).
            fires_first = sorted(questions, key=lambda name: not name.endswith("_fires"))
            result["http"] = {
                name: ours.http_checks(srv["url"], token, questions[name], connections=connections, duration_s=http_s)
                for name in fires_first
            }
        step(f"{size:,} assets: HTTP checks with wrk, {WORKERS} workers")
        with ours.server(db, workers=WORKERS) as srv:
            measured = ours.http_checks(srv["url"], token, fires, connections=connections, duration_s=http_s)
            result["http_workers"] = {"point_fires": measured | {"workers": WORKERS}}
    result["memory_per_asset_b"] = None  # filled by run_bench against the empty server

    if alternatives:
        result.update(_alternatives(theatre, fires, ours_answers, checks=checks, seconds=http_s, step=step, size=size))
    return result


def _alternatives(
    theatre: Theatre,
    fires: list[CheckQuery],
    ours_answers: list[Any],
    *,
    checks: int,
    seconds: int,
    step: Callable[[str], None],
    size: int,
) -> dict[str, Any]:
    from deconfliction.bench.alternatives import PostgisPath, RedisPath, RedisServer, ours_answer
    from deconfliction.bench.servers import PostgisServer

    out: dict[str, Any] = {}
    mine = [ours_answer(r) for r in ours_answers]
    systems: list[tuple[str, Any, Any, bool]] = [
        ("postgis", PostgisServer, PostgisPath, False),
        ("redis", RedisServer, RedisPath, True),
    ]
    for name, server_cls, path_cls, assets_only in systems:
        step(f"{size:,} assets: {name}")
        out[name] = _measure(theatre, server_cls, path_cls, fires, mine, assets_only=assets_only, checks=checks, seconds=seconds)
        out[name]["answers"] = "assets only" if assets_only else "assets, zones and gaps"
    return out


def _measure(
    theatre: Theatre,
    server_cls: Any,
    path_cls: Any,
    fires: list[CheckQuery],
    mine: list[Any],
    *,
    assets_only: bool,
    checks: int,
    seconds: int,
) -> dict[str, Any]:
    """Load, then one client's latency, agreement with our answers, batched ingest, 8 clients' rate."""
    from deconfliction.bench.alternatives import agreement, borderline

    with server_cls() as server:
        path = path_cls(server)
        load_s = path.load(theatre)
        latency = ours.time_calls(lambda q: path.check(q, theatre.now, 1500.0), fires[: max(200, checks // 2)])
        answers = [path.check(q, theatre.now, 1500.0) for q in fires[: len(mine)]]
        differ = [
            i for i, (a, b) in enumerate(zip(mine, answers, strict=True)) if agreement([a], [b], assets_only=assets_only) < 1
        ]
        # Our engine widens every buffer by a safety margin; an object within 1 % of the edge
        # may be a conflict for us and not for them. Those are counted apart from real differences.
        edge = sum(borderline(path, fires[i], theatre.now, 1500.0) for i in differ)
        batch = theatre.reports[:1000]
        started = time.perf_counter()
        for _ in range(5):
            path.report_batch(batch)
        ingest_per_s = 5 * len(batch) / (time.perf_counter() - started)
        path.close()
        rate = concurrent_rate(lambda: path_cls(server), fires, theatre.now, threads=8, seconds=seconds)
    return {
        "load_s": load_s,
        "point_fires": latency.as_dict(),
        "concurrent_per_s": rate,
        "ingest_batched_per_s": ingest_per_s,
        "agreement": 1 - len(differ) / len(mine),
        "borderline": edge,
        "differences": len(differ) - edge,
        "compared": len(mine),
    }


def run_bench(
    sizes: Sequence[int],
    *,
    out_dir: Path,
    checks: int = 2000,
    http_s: int = 10,
    connections: int = 16,
    alternatives: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run everything, write JSON and PNG under ``out_dir``, return the results."""
    console = console or Console(stderr=True)
    results: dict[str, Any] = {"machine": machine(), "sizes": []}
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("starting", total=len(sizes) * (11 if alternatives else 8))

        def step(text: str) -> None:
            progress.update(task, description=text, advance=1)

        with tempfile.TemporaryDirectory() as tmp:
            empty = Path(tmp) / "empty.db"
            ours.load_store(empty, make_theatre(0))
            with ours.server(empty) as srv:
                empty_rss_kib = srv["rss_kib"]
        for size in sizes:
            entry = bench_size(size, checks=checks, http_s=http_s, connections=connections, alternatives=alternatives, step=step)
            if size:
                entry["memory_per_asset_b"] = (entry["server_rss_mib"] * 1024 - empty_rss_kib) * 1024 / size
            results["sizes"].append(entry)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2))
    chart(results, out_dir / "latest.png")
    return results


Row = tuple[str, str, str, str, str, str, str]


def _row(n: str, label: str, latency: dict[str, float] | None = None, rate: str = "", versus: str = "") -> Row:
    if latency is None:
        return (n, label, "", "", "", rate, versus)
    return (n, label, _us(latency["p50_us"]), _us(latency["p99_us"]), _us(latency["p999_us"]), rate, versus)


def _rate(per_s: float) -> str:
    return f"{per_s:,.0f}/s"


def rows(results: dict[str, Any]) -> list[Row]:
    """The table: one row per measurement and size, with ratios to the alternatives."""
    table: list[Row] = []
    for entry in results["sizes"]:
        n = f"{entry['assets']:,}"
        engine = entry["engine"]
        for key, value in engine.items():
            table.append(_row(n, f"engine {key.replace('_', ' ')}", value, _rate(value["per_s"])))
        wide = entry["engine_wide"]
        label = f"engine point air, {WIDE_RADIUS_M / 1000:.0f} km radius, no asset within it"
        table.append(_row(n, label, wide, _rate(wide["per_s"])))
        for key, http in entry["http"].items():
            table.append(_row(n, f"HTTP {key.replace('_', ' ')}, {http['connections']} clients", http, _rate(http["per_s"])))
        for key, http in entry["http_workers"].items():
            label = f"HTTP {key.replace('_', ' ')}, {http['connections']} clients, {http['workers']} workers"
            table.append(_row(n, label, http, _rate(http["per_s"])))
        ing = entry["ingest_batched"]
        table.append(_row(n, f"ingest, batches of {ing['batch']}, durable", rate=_rate(ing["per_s"])))
        table.append(_row(n, "recorded fires checks (service), no load", ing["checks_quiet"]))
        table.append(_row(n, "recorded fires checks during that ingest", ing["checks_under_load"]))
        table.append(_row(n, "ingest, one report per request, durable", rate=_rate(entry["ingest_single"]["per_s"])))
        for name in ("postgis", "redis"):
            alt = entry.get(name)
            if not alt:
                continue
            mine, theirs = engine["point_fires"]["per_s"], alt["point_fires"]["per_s"]
            versus = f"ours {mine / theirs:.1f}x (1 client), {mine / alt['concurrent_per_s']:.1f}x (8 clients)"
            table.append(_row(n, f"{name} point fires ({alt['answers']}), 1 client", alt["point_fires"], _rate(theirs), versus))
            agreement = f"same {alt['agreement']:.1%}; {alt['borderline']} at the edge, {alt['differences']} other"
            table.append(_row(n, f"{name} point fires, 8 clients", rate=_rate(alt["concurrent_per_s"]), versus=agreement))
            ratio = f"ours {ing['per_s'] / alt['ingest_batched_per_s']:.1f}x"
            table.append(_row(n, f"{name} ingest, batches of 1000", rate=_rate(alt["ingest_batched_per_s"]), versus=ratio))
        mem = entry.get("memory_per_asset_b")
        footprint = f"start-up {entry['startup_s']:.1f} s, server {entry['server_rss_mib']:,.0f} MiB"
        table.append(_row(n, footprint, versus=f"{mem:,.0f} B per asset" if mem else ""))
    return table


def _us(value: float) -> str:
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} µs"


def print_table(results: dict[str, Any], console: Console) -> None:
    m = results["machine"]
    table = Table(
        "assets",
        "measurement",
        "p50",
        "p99",
        "p99.9",
        "rate",
        "versus",
        title=f"{m['cpu']}, {m['cores']} cores, Python {m['python']}",
    )
    for row in rows(results):
        table.add_row(*row)
    console.print(table)


def chart(results: dict[str, Any], path: Path) -> None:
    """Checks per second by system and size, and p99 latency, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [e["assets"] for e in results["sizes"]]
    labels = [f"{s:,}" for s in sizes]
    series = {
        "ours, engine (1 thread)": [e["engine"]["point_fires"]["per_s"] for e in results["sizes"]],
        "ours, HTTP": [e["http"]["point_fires"]["per_s"] for e in results["sizes"]],
        f"ours, HTTP, {WORKERS} workers": [e["http_workers"]["point_fires"]["per_s"] for e in results["sizes"]],
        "PostGIS, 8 clients": [e.get("postgis", {}).get("concurrent_per_s", 0) for e in results["sizes"]],
        "Redis GEOSEARCH, 8 clients": [e.get("redis", {}).get("concurrent_per_s", 0) for e in results["sizes"]],
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        left.bar([x + i * width for x in range(len(sizes))], values, width, label=name)
    left.set_xticks([x + 0.4 - width / 2 for x in range(len(sizes))], labels)
    left.set_yscale("log")
    left.set_ylabel("point fires checks per second")
    left.set_xlabel("assets")
    left.legend(fontsize=8)
    p99 = {
        "ours, engine": [e["engine"]["point_fires"]["p99_us"] / 1000 for e in results["sizes"]],
        "ours, HTTP": [e["http"]["point_fires"]["p99_us"] / 1000 for e in results["sizes"]],
        f"ours, HTTP, {WORKERS} workers": [e["http_workers"]["point_fires"]["p99_us"] / 1000 for e in results["sizes"]],
        "PostGIS, 1 client": [e.get("postgis", {}).get("point_fires", {}).get("p99_us", 0) / 1000 for e in results["sizes"]],
        "Redis, 1 client": [e.get("redis", {}).get("point_fires", {}).get("p99_us", 0) / 1000 for e in results["sizes"]],
    }
    for name, values in p99.items():
        right.plot(labels, values, marker="o", label=name)
    right.set_yscale("log")
    right.set_ylabel("p99 latency, ms")
    right.set_xlabel("assets")
    right.legend(fontsize=8)
    m = results["machine"]
    fig.suptitle(f"deconfliction benchmark: {m['cpu']}, {m['cores']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
