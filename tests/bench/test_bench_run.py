"""``deconflict bench`` and ``deconflict bench-stores`` run end to end at a tiny size, as a user runs them, and write
every figure; no timing is asserted (the figures are in benchmarks/README.md). The alternatives are left out of the
first: they start PostgreSQL and Redis, and tests/bench/test_alternatives.py holds them to the engine's answers."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deconfliction.bench.run import KINDS, WORKERS, machine
from deconfliction.bench.servers import PG_BIN
from tests.api.test_server_process import DECONFLICT, clean_env
from tests.bench.test_ledger_bench import positive

SIZE = 2_000


def deconflict(*args: str) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, on its defaults (no DECONFLICT_* settings), its table printed wide."""
    env = clean_env() | {"COLUMNS": "200"}
    done = subprocess.run([str(DECONFLICT), *args], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (Debian's package; .ci/run installs it)")
def test_a_tiny_run_prints_every_measurement_and_writes_every_figure_on_checks_answered(tmp_path: Path) -> None:
    tiny = ["--sizes", "2k", "--checks", "100", "--http-seconds", "1", "--no-alternatives"]
    done = deconflict("bench", *tiny, "--out", str(tmp_path))

    rows = [line for line in done.stdout.splitlines() if "2,000" in line]
    asked = [f"{shape} {kind.value}" for kind in KINDS for shape in ("point", "polygon")]
    expected = [f"engine {name}" for name in asked] + [f"HTTP {name}, 16 clients" for name in asked]
    expected += ["engine point air, 100 km radius, no asset within it"]
    expected += [f"HTTP point fires, 16 clients, {WORKERS} workers"]
    expected += ["ingest, batches of 1000, durable", "recorded fires checks (service), no load"]
    expected += ["recorded fires checks during that ingest", "ingest, one report per request, durable", "start-up"]
    for label in expected:
        assert any(label in row for row in rows), (label, done.stdout)

    results: dict[str, Any] = json.loads((tmp_path / "latest.json").read_text())
    assert results["machine"]["cpu"] and positive(results["machine"]["cores"])
    assert results["machine"]["commit"] == machine()["commit"]
    [entry] = results["sizes"]
    assert entry["assets"] == SIZE and entry["zones"] == SIZE // 10
    assert len(entry["engine"]) == 2 * len(KINDS)
    for name, latency in [*entry["engine"].items(), ("wide", entry["engine_wide"])]:
        assert all(positive(latency[k]) for k in ("p50_us", "p99_us", "per_s")), name
    assert list(entry["http"]) == ["point_fires", "polygon_fires"] + [k for k in entry["engine"] if not k.endswith("fires")]
    assert list(entry["http_workers"]) == ["point_fires"] and entry["http_workers"]["point_fires"]["workers"] == WORKERS
    for key, http in [*entry["http"].items(), *entry["http_workers"].items()]:
        # Every check wrk sent was answered 200: a refusal (a budget, a bad body) would be measured as a check.
        assert http["requests"] > 0 and http["non_2xx"] == 0 and http["socket_errors"] == 0, (key, http)
    batched = entry["ingest_batched"]
    assert batched["reports"] == SIZE and batched["batch"] == 1000 and positive(batched["per_s"])
    assert positive(batched["checks_quiet"]["p99_us"]) and positive(batched["checks_under_load"]["p99_us"])
    assert entry["ingest_single"]["reports"] == 300 and positive(entry["ingest_single"]["per_s"])
    assert all(positive(entry[k]) for k in ("startup_s", "server_rss_mib", "memory_per_asset_b", "build_picture_s"))
    assert "postgis" not in entry and "redis" not in entry
    assert (tmp_path / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not (PG_BIN / "initdb").exists(), reason="needs PostgreSQL 15 with PostGIS (.ci/run installs it)")
def test_a_tiny_run_of_the_stores_side_by_side_writes_every_figure_for_both(tmp_path: Path) -> None:
    sizes = ["--checks-size", "2k", "--startup-size", "2k"]
    done = deconflict("bench-stores", *sizes, "--checks", "50", "--batched", "2000", "--single", "20", "--out", str(tmp_path))
    assert "sqlite" in done.stdout and "postgresql" in done.stdout

    results: dict[str, Any] = json.loads((tmp_path / "stores.json").read_text())
    assert results["checks_size"] == results["startup_size"] == SIZE
    assert set(results["stores"]) == {"sqlite", "postgresql"}
    for name, store in results["stores"].items():
        assert store["checks"]["count"] == 50 and positive(store["checks"]["p99_us"]), name
        assert store["checks_during_ingest"]["count"] > 0, name
        rates = ("ingest_batched_per_s", "ingest_batched_checking_per_s", "ingest_single_per_s")
        times = ("load_s", "startup_s", "startup_from_snapshot_s", "snapshot_write_s", "snapshot_mib", "as_of_area_s")
        assert all(positive(store[k]) for k in rates + times), (name, store)


def test_the_figures_name_the_commit_of_the_code_that_measured_them() -> None:
    code = Path(inspect.getfile(machine)).parent
    head = subprocess.run(["git", "-C", str(code), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode:
        pytest.skip("the installed code is not in a git checkout")
    described = machine()
    assert len(described["commit"]) >= 7 and head.stdout.startswith(described["commit"])
    assert described["uncommitted_changes"] in (True, False)
