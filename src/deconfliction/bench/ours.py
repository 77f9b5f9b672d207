"""Measurements of deconfliction itself: the engine in process, the store, the HTTP server."""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import shapely

from deconfliction import events as ev
from deconfliction.bench.theatre import Theatre
from deconfliction.clock import ManualClock
from deconfliction.engine.picture import Picture
from deconfliction.engine.rules import check
from deconfliction.model import CheckQuery, Event, Role
from deconfliction.service import ROOT, Caller, Service
from deconfliction.serving import pace
from deconfliction.settings import Settings
from deconfliction.stores import open_store


@dataclass(frozen=True)
class Latency:
    """Latency percentiles in microseconds and the rate achieved, per second."""

    count: int
    p50_us: float
    p99_us: float
    p999_us: float
    per_s: float

    @classmethod
    def of(cls, samples_s: Sequence[float], wall_s: float | None = None) -> Latency:
        ordered = sorted(samples_s)
        q = statistics.quantiles(ordered, n=1000, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 999
        wall = wall_s if wall_s is not None else sum(ordered)
        return cls(len(ordered), q[499] * 1e6, q[989] * 1e6, q[998] * 1e6, len(ordered) / wall if wall else 0.0)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def time_calls(call: Callable[[Any], object], items: Sequence[Any]) -> Latency:
    """Call ``call`` on each item in turn, timing each call; the rate is for one thread."""
    samples = []
    started = time.perf_counter()
    for item in items:
        t = time.perf_counter()
        call(item)
        samples.append(time.perf_counter() - t)
    return Latency.of(samples, time.perf_counter() - started)


ENGINE_ROUNDS = 5
"""How many times the engine is asked each list of questions in process, every answer's latency counted."""


def engine_checks(
    picture: Picture, queries: Sequence[CheckQuery], now: datetime, buffer_m: float, rounds: int = ENGINE_ROUNDS
) -> Latency:
    """The engine alone, in process, one thread: what a check costs with no I/O at all.

    The questions are asked ``rounds`` times over, so that a p99.9 is more than the second
    slowest of 2,000 checks. At 1M assets, point fires, one after another on the bench machine
    (2026-12-07): 15 single rounds gave p99 266 to 295 µs and p99.9 300 to 365 µs; four of five
    rounds, 265 to 286 µs and 300 to 337 µs.
    """
    return time_calls(lambda q: check(picture, q, now, buffer_m), list(queries) * rounds)


# ---------------------------------------------------------------- the store


def theatre_events(theatre: Theatre) -> Iterator[Event]:
    """The theatre as the log events the service would have written for it."""
    now = theatre.now
    for party in theatre.parties:
        yield ev.party_event(party, now, None)
    for territory in theatre.territories:
        yield ev.territory_event(territory, now, None)
    for aor in theatre.aors:
        yield ev.aor_event(aor, now)
        if aor.confirmed_at is not None:
            yield Event("aor.confirmed", aor.confirmed_at, aor.party, {"party": aor.party, "id": aor.id})
    assets = {asset.key: asset for asset in theatre.assets}
    for asset in theatre.assets:
        yield ev.asset_event(asset, now)
    for report in theatre.reports:
        asset = assets[(report.party, report.asset)]
        yield ev.report_event(report, now, asset.disclosure, asset.kind)
    for zone in theatre.zones:
        yield ev.zone_event(zone, now)


def load_store(db: str | Path, theatre: Theatre, chunk: int = 20_000) -> float:
    """Write the theatre into a store (a ``--db`` value) in large transactions (set-up, not ingest); seconds."""
    store = open_store(db)
    started = time.perf_counter()
    batch: list[Event] = []
    for event in theatre_events(theatre):
        batch.append(event)
        if len(batch) >= chunk:
            store.append(batch)
            batch = []
    if batch:
        store.append(batch)
    store.close()
    return time.perf_counter() - started


def startup_s(db: str | Path) -> float:
    """Seconds to open the store and rebuild the picture from it, as ``deconflict serve`` does on start."""
    started = time.perf_counter()
    service = Service(open_store(db))
    elapsed = time.perf_counter() - started
    service.store.close()
    return elapsed


def ingest(
    db: str | Path,
    theatre: Theatre,
    *,
    batch: int,
    count: int,
    check_queries: Sequence[CheckQuery],
    quiet_checks: int = 300,
    checking: bool = True,
) -> dict[str, Any]:
    """Durable report ingest into the store, with checks asked at the same time from another thread (unless not ``checking``).

    Before the ingest, ``quiet_checks`` recorded checks alone give the checks' latency without load.
    """
    clock = ManualClock(theatre.now)
    service = Service(open_store(db), clock, Settings(check_rate_per_min=0))  # a load test, not a party
    gc.collect()
    gc.freeze()  # as `deconflict serve` does once the picture is loaded
    west = [r for r in theatre.reports if r.party == "west"]
    caller = Caller("west", Role.LIAISON)
    later = theatre.now + timedelta(minutes=1)
    bodies: list[dict[str, Any]] = [
        {
            "asset": r.asset,
            "position": f"{r.point.lat + 0.0001:.6f}, {r.point.lon:.6f}",
            "time": later.isoformat(),
            "uncertainty_m": 10,
        }
        for r in (west * (count // max(1, len(west)) + 1))[:count]
    ]
    clock.advance_to(later + timedelta(seconds=1))
    stop = threading.Event()
    samples: list[float] = []
    check_bodies = [check_body(q) for q in check_queries]
    asker = Caller("east", Role.LIAISON)
    quiet = time_calls(lambda b: service.check(asker, b), check_bodies[:quiet_checks])

    def checker() -> None:
        i = 0
        while not stop.is_set():
            t = time.perf_counter()
            service.check(asker, check_bodies[i % len(check_bodies)])  # as the server answers: locked, recorded
            samples.append(time.perf_counter() - t)
            i += 1
            time.sleep(0.001)  # a steady stream of checks, not a second flood

    # As `deconflict serve` runs (serving.settle): thread switches, and the collector's full collections held off.
    # The reports a batch replaces live on and are walked by every full collection: with Python's own thresholds
    # batched ingest at 100k was 24,823 and 29,810/s against 28,950 and 32,520/s (2026-12-07).
    previous = pace()
    thread = threading.Thread(target=checker, daemon=True)
    if checking:
        thread.start()
    started = time.perf_counter()
    seen: set[str] = set()
    chunk: list[dict[str, Any]] = []
    for body in bodies:
        if body["asset"] in seen:  # one report per asset per batch keeps them in time order
            service.report_batch(caller, chunk)
            chunk, seen = [], set()
        chunk.append(body)
        seen.add(body["asset"])
        if len(chunk) >= batch:
            service.report_batch(caller, chunk)
            chunk, seen = [], set()
    if chunk:
        service.report_batch(caller, chunk)
    elapsed = time.perf_counter() - started
    stop.set()
    if checking:
        thread.join(timeout=10)
    sys.setswitchinterval(previous[0])
    gc.set_threshold(*previous[1])
    service.store.close()
    gc.unfreeze()
    return {
        "reports": count,
        "batch": batch,
        "per_s": count / elapsed,
        "checks_quiet": quiet.as_dict(),
        "checks_under_load": Latency.of(samples).as_dict() if samples else None,
    }


# ---------------------------------------------------------------- the HTTP server


def free_port() -> int:
    """A TCP port free on loopback now; a server that loses the race to it is started again."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int, name: str) -> int:
    """A number from ``/proc/PID/status`` (``VmRSS`` in KiB, ``Threads``, ...); 0 if it is not there."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    return proc_status(pid, "VmRSS")


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until ``url``'s /healthz answers 200; RuntimeError if the process exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"the server at {url} did not start (exit code {process.poll()})")
        time.sleep(0.05)


DECONFLICT = Path(sys.executable).parent / "deconflict"
LOAD_ENV = {"DECONFLICT_CHECK_RATE_PER_MIN": "0"}
"""A load test is not a party: no check budget."""


def _spawn_serving(
    db: str, port: int, out: IO[bytes] | int, new_session: bool = False, workers: int = 1
) -> subprocess.Popen[bytes]:
    """``deconflict serve`` on ``db`` at ``port`` as a load test runs it, its output (both streams) to ``out``."""
    command = [str(DECONFLICT), "serve", "--db", db, "--port", str(port), "--workers", str(workers)]
    env = {**os.environ, **LOAD_ENV}
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=new_session, env=env)


def start_serving(db: str, port: int, log: Path, timeout_s: float = 120.0) -> subprocess.Popen[bytes]:
    """``deconflict serve`` on ``db`` at ``port``, its output added to ``log``, once it answers; RuntimeError if it
    does not (the process is killed)."""
    with log.open("ab") as out:
        process = _spawn_serving(db, port, out)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", process, timeout_s)
    except RuntimeError as exc:
        process.kill()
        process.wait(timeout=30)
        raise RuntimeError(f"{exc}; see {log}") from exc
    return process


@contextmanager
def server(path: Path, timeout_s: float = 600.0, workers: int = 1) -> Iterator[dict[str, Any]]:
    """``deconflict serve`` on the store, on a free loopback port; yields url, pid, start-up seconds, RSS (of the
    process started: with ``workers``, their supervisor's)."""
    port = free_port()
    started = time.perf_counter()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("a+b") as log:  # appended to: the server's writes never land where this reads
        process = _spawn_serving(str(path), port, log, new_session=True, workers=workers)
        try:
            wait_until_serving(url, process, timeout_s)
            # The first worker up answers /healthz: wait for the others, or a load would be measured on fewer.
            while _started_apps(log) < workers:
                if time.perf_counter() - started > timeout_s:
                    raise RuntimeError(f"only {_started_apps(log)} of the {workers} workers at {url} started")
                time.sleep(0.05)
            yield {"url": url, "pid": process.pid, "startup_s": time.perf_counter() - started, "rss_kib": rss_kib(process.pid)}
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _started_apps(log: IO[bytes]) -> int:
    """How many processes have told, in the server's output so far, that their app started (uvicorn's line)."""
    log.seek(0)
    return log.read().count(b"Application startup complete.")


_WRK_SCRIPT = """
local bodies = {}
local token = ""
local i = 0
init = function(args)
  token = args[1]
  for line in io.lines(args[2]) do bodies[#bodies + 1] = line end
  i = math.random(#bodies)
end
request = function()
  i = i % #bodies + 1
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
  return wrk.format("POST", "/v1/checks", headers, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "socket_errors": %d, "non_2xx": %d, '
    .. '"p50_us": %d, "p99_us": %d, "p999_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"""


def check_body(query: CheckQuery) -> dict[str, Any]:
    """A check as its JSON body."""
    g = query.geometry
    if g.geom_type == "Point":
        return {"position": f"{g.y:.6f}, {g.x:.6f}", "kind": query.kind.value}
    return {"area": shapely.geometry.mapping(g), "kind": query.kind.value}


def http_checks(url: str, token: str, queries: Sequence[CheckQuery], *, connections: int, duration_s: int) -> dict[str, Any]:
    """Concurrent clients on loopback (wrk), bounded in count and time."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        script, bodies = Path(tmp) / "checks.lua", Path(tmp) / "bodies.jsonl"
        script.write_text(_WRK_SCRIPT)
        bodies.write_text("".join(json.dumps(check_body(q)) + "\n" for q in queries))
        command = [
            wrk,
            "-t2",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
            "--",
            token,
            str(bodies),
        ]
        run = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {run.stdout[-500:]} {run.stderr[-500:]}")
    result: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    result["per_s"] = result["requests"] / (result["duration_us"] / 1e6)
    result["connections"] = connections
    return result


def liaison_token(path: Path, party: str) -> str:
    """A liaison token written into the store (before the server starts)."""
    service = Service(open_store(path))
    token = service.create_token(ROOT, party, "liaison")
    service.store.close()
    return token
