"""``deconflict soak``: a sustained mix of reports, checks and watchers for a set time, with the server watched.

The server (``deconflict serve`` on a fresh store holding the demo picture and ``units`` more units
per force) takes, for ``minutes``:

- position reports of those units at ``reports_per_s`` (one in fifty deliberately malformed, so the
  refusal path is soaked too), and a batch of 50 every few seconds;
- point checks at ``checks_per_s``, of every kind, anywhere in the valley;
- a watcher that opens the event stream, reads it for a few seconds and hangs up, again and again;
- one client in four opening a new connection for every request, so a socket the server forgets
  to close shows.

Requests leave on a fixed schedule; a late one is timed from when it was due, not from when it
left, so a stalled server cannot hide in fewer samples. Every ``sample_s`` the server's resident
memory, open descriptors, sockets and threads are read from ``/proc``, with the checks' p50 and
p99 over that window. When the load stops, the descriptors must come back to where they were.

The verdict holds the server to: no 5xx and no failed connection; no descriptor kept; memory
after warm-up growing by no more than the picture keys' change log does by design (112 bytes a
report that moves its unit, up to its capacity) plus ``slack_mib``; and it names the checks' p99,
overall and in the worst window, against the benchmark's goal (20 ms over HTTP).
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from deconfliction.bench.ours import free_port, proc_status, rss_kib, start_serving
from deconfliction.bench.servers import stop_process
from deconfliction.demo import TERRITORIES, load_demo
from deconfliction.model import CheckKind, Role
from deconfliction.service import Caller, Service
from deconfliction.stores import open_store

FORCES = ("alfa", "bravo")
GOAL_P99_MS = 20.0  # issue 3's goal for checks over HTTP
CHANGE_BYTES = 56
"""One entry of the picture keys' change log (engine/changes.py: sequence number, box, margin, object),
which grows by design until its capacity (2,000,000 entries) and then halves."""
CHANGES_PER_REPORT = 2
"""Every report the soak sends moves its unit, and a move is two entries: the place left and the place
reached (Picture.put_report)."""
BATCH_EVERY_S = 5.0
BATCH_SIZE = 50
LANES = 4  # each force's units split between the clients that report them


@dataclass
class Window:
    """What happened between two samples."""

    check_ms: list[float] = field(default_factory=list)
    reports: int = 0
    refused: int = 0  # the malformed reports, refused with 422 as they must be
    failures: list[str] = field(default_factory=list)  # 5xx, an unexpected status, a failed connection
    streams: int = 0


class Tally:
    """The load's running window, swapped out at each sample; the lock is held for an append only."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.window = Window()
        self.check_ms: list[float] = []  # the whole soak's, for its percentiles

    def swap(self) -> Window:
        with self.lock:
            window, self.window = self.window, Window()
        return window

    def count(self, what: str, n: int = 1) -> None:
        """Add ``n`` to one of the window's counts: reports, refused, streams."""
        with self.lock:
            setattr(self.window, what, getattr(self.window, what) + n)

    def took(self, ms: float) -> None:
        with self.lock:
            self.window.check_ms.append(ms)
            self.check_ms.append(ms)

    def fail(self, what: str) -> None:
        with self.lock:
            self.window.failures.append(what)


def _box_of(party: str) -> tuple[float, float, float, float]:
    ring = TERRITORIES[party]["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return min(lons), min(lats), max(lons), max(lats)


def _position(rng: random.Random, party: str) -> str:
    west, south, east, north = _box_of(party)
    return f"{rng.uniform(south, north):.6f}, {rng.uniform(west, east):.6f}"


def prepare(db: str, units: int) -> dict[str, str]:
    """The demo picture and ``units`` more units per force, written before the server starts; the tokens."""
    rng = random.Random(7)
    service = Service(open_store(db))
    try:
        tokens = load_demo(service)
        for party in FORCES:
            caller = Caller(party, Role.LIAISON)
            for i in range(units):
                disclosure = ("exact", "coarse", "hidden")[i % 3]
                body = {"id": f"soak-{i}", "kind": "unit", "position": _position(rng, party), "disclosure": disclosure}
                service.register_asset(caller, {**body, "uncertainty_m": 50, "stale_after_s": 3600})
        service.ledger_head()
        return tokens
    finally:
        service.store.close()


def _paced(rate_per_s: float, stop: threading.Event) -> Iterator[float]:
    """Due times at ``rate_per_s`` from now until ``stop``; sleeps until each is due, never skips one."""
    due = time.monotonic()
    while not stop.is_set():
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        yield due
        due += 1 / rate_per_s


def _sent(tally: Tally, http: httpx.Client, path: str, body: Any, expected: set[int]) -> httpx.Response | None:
    """One POST; anything but an expected status, or a failed connection, is a failure of the server."""
    try:
        response = http.post(path, json=body)
    except httpx.HTTPError as exc:
        tally.fail(f"{type(exc).__name__}: {exc}")
        return None
    if response.status_code not in expected:
        tally.fail(f"{response.status_code} {response.text[:200]}")
        return None
    return response


def _http(url: str, token: str, fresh: bool = False) -> httpx.Client:
    """A client on one kept connection, or (``fresh``) on a new connection for every request."""
    limits = httpx.Limits(max_keepalive_connections=0 if fresh else 1)
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10, limits=limits)


def _unit(rng: random.Random, units: int, lane: int) -> str:
    """A unit of the lane's quarter of the force: no two clients report one unit, so none is refused as out of order."""
    return f"soak-{rng.randrange(units // LANES) * LANES + lane}"


def _reporter(url: str, token: str, rate: float, fresh: bool, lane: int, units: int, tally: Tally, stop: threading.Event) -> None:
    rng = random.Random(lane)
    party = FORCES[lane % 2]
    with _http(url, token, fresh) as http:
        for n, _due in enumerate(_paced(rate, stop)):
            position = _position(rng, party)
            if n % 50 == 49:
                position = "34.5, 181.0"  # off the globe: must be refused, with nothing written
            body = {"asset": _unit(rng, units, lane), "position": position, "time": datetime.now(UTC).isoformat()}
            answer = _sent(tally, http, "/v1/reports", body, {201, 422})
            if answer is not None:
                tally.count("refused" if answer.status_code == 422 else "reports")


def _batcher(url: str, token: str, units: int, tally: Tally, stop: threading.Event) -> None:
    """Batches of alfa's units in lane 1 (alfa's single reports use lanes 0 and 2)."""
    rng = random.Random(11)
    with _http(url, token) as http:
        for _due in _paced(1 / BATCH_EVERY_S, stop):
            now = datetime.now(UTC).isoformat()
            lane_units = rng.sample(range(1, units, LANES), min(BATCH_SIZE, len(range(1, units, LANES))))
            reports = [{"asset": f"soak-{i}", "position": _position(rng, "alfa"), "time": now} for i in lane_units]
            if _sent(tally, http, "/v1/reports/batch", {"reports": reports}, {201}):
                tally.count("reports", len(reports))


def _checker(url: str, token: str, rate: float, fresh: bool, seed: int, tally: Tally, stop: threading.Event) -> None:
    rng = random.Random(seed)
    kinds = list(CheckKind)
    with _http(url, token, fresh) as http:
        for due in _paced(rate, stop):
            body = {"position": _position(rng, rng.choice(FORCES)), "kind": rng.choice(kinds).value}
            if _sent(tally, http, "/v1/checks", body, {200}):
                tally.took((time.monotonic() - due) * 1000)  # from when it was due: a stall counts in full


def _watcher(url: str, token: str, tally: Tally, stop: threading.Event) -> None:
    rng = random.Random(13)
    with _http(url, token) as client:
        while not stop.is_set():
            until = time.monotonic() + rng.uniform(1, 5)
            try:
                with client.stream("GET", "/v1/events") as stream:
                    for _line in stream.iter_lines():
                        if time.monotonic() > until or stop.is_set():
                            break  # hang up mid-stream, as a console closed by its officer does
                tally.count("streams")
            except httpx.HTTPError as exc:
                tally.fail(f"stream: {type(exc).__name__}: {exc}")


def _descriptors(pid: int) -> tuple[int, int]:
    """Open descriptors and, of them, sockets."""
    fds = sockets = 0
    for fd in os.scandir(f"/proc/{pid}/fd"):
        fds += 1
        with contextlib.suppress(OSError):
            sockets += os.readlink(fd.path).startswith("socket:")
    return fds, sockets


def _entries(db: str) -> int:
    """The record's length, read beside the server (a read-only connection; WAL lets it read while the server writes)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as store:
        return int(store.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _percentile(values: list[float], q: float) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _sample(started: float, pid: int, db: str, window: Window, window_s: float) -> dict[str, Any]:
    fds, sockets = _descriptors(pid)
    p50, p99 = _percentile(window.check_ms, 0.5), _percentile(window.check_ms, 0.99)
    return {
        "t_s": round(time.monotonic() - started, 1),
        "rss_mib": round(rss_kib(pid) / 1024, 1),
        "fds": fds,
        "sockets": sockets,
        "threads": proc_status(pid, "Threads"),
        "entries": _entries(db),
        "wal_mib": round(_size(db + "-wal") / 2**20, 1),  # a WAL that never shrinks: a reader holding checkpoints off
        "reports": window.reports,
        "checks": len(window.check_ms),
        "reports_per_s": round(window.reports / window_s, 1),
        "checks_per_s": round(len(window.check_ms) / window_s, 1),
        "check_p50_ms": _round(p50),
        "check_p99_ms": _round(p99),
        "refused": window.refused,
        "streams": window.streams,
        "failures": window.failures[:5],
        "failure_count": len(window.failures),
    }


@dataclass(frozen=True)
class Plan:
    """How long, how hard, and how closely a soak watches."""

    minutes: float
    reports_per_s: float = 100.0
    checks_per_s: float = 100.0
    units: int = 2000
    sample_s: float = 10.0
    slack_mib: float = 10.0


def run_soak(plan: Plan, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Soak a fresh SQLite store's server as ``plan`` says; the settings, the verdict and the samples."""
    with tempfile.TemporaryDirectory(prefix="deconfliction-soak-") as tmp:
        db = str(Path(tmp) / "soak.db")
        tokens = prepare(db, plan.units)
        port = free_port()
        server = start_serving(db, port, Path(tmp) / "server.log")
        try:
            return _soak(plan, f"http://127.0.0.1:{port}", db, server.pid, tokens, progress)
        finally:
            stop_process(server)


def _load(plan: Plan, url: str, tokens: dict[str, str], tally: Tally, stop: threading.Event) -> list[threading.Thread]:
    """Four reporters and four checkers (one of each on fresh connections), a batcher and a watcher."""
    jobs: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
    for i in range(LANES):
        token, fresh = tokens[FORCES[i % 2]], i == LANES - 1
        jobs.append((_reporter, (url, token, plan.reports_per_s / LANES, fresh, i, plan.units, tally, stop)))
        jobs.append((_checker, (url, token, plan.checks_per_s / LANES, fresh, 100 + i, tally, stop)))
    jobs.append((_batcher, (url, tokens["alfa"], plan.units, tally, stop)))
    jobs.append((_watcher, (url, tokens["relief"], tally, stop)))
    threads = [threading.Thread(target=target, args=args, daemon=True) for target, args in jobs]
    for thread in threads:
        thread.start()
    return threads


def _soak(
    plan: Plan, url: str, db: str, pid: int, tokens: dict[str, str], progress: Callable[[dict[str, Any]], None] | None
) -> dict[str, Any]:
    started = time.monotonic()
    idle = _sample(started, pid, db, Window(), 1)
    tally, stop = Tally(), threading.Event()
    threads = _load(plan, url, tokens, tally, stop)
    samples = []
    ends = started + plan.minutes * 60
    window_from = started
    while (now := time.monotonic()) < ends:
        time.sleep(min(plan.sample_s, ends - now))
        window, window_from, took_s = tally.swap(), time.monotonic(), time.monotonic() - window_from
        samples.append(_sample(started, pid, db, window, took_s))
        if progress:
            progress(samples[-1])
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    last = tally.swap()
    time.sleep(2)  # let the server close what the clients closed
    after = _sample(started, pid, db, Window(), 1)
    return {
        "settings": asdict(plan),
        **verdict(idle, samples, after, last, tally.check_ms, plan.slack_mib),
        "idle": idle,
        "after": after,
        "samples": samples,
    }


def verdict(
    idle: dict[str, Any],
    samples: list[dict[str, Any]],
    after: dict[str, Any],
    last: Window,
    check_ms: list[float],
    slack_mib: float,
) -> dict[str, Any]:
    """The soak's findings, and the promises broken (``broken`` empty when it held)."""
    at = min(len(samples) - 1, max(1, len(samples) // 10))
    warm = samples[at]  # a tenth in: caches and pools are full
    end = samples[-1]
    grown_mib = end["rss_mib"] - warm["rss_mib"]
    reports_after = sum(s["reports"] for s in samples[at + 1 :])
    share_mib = reports_after * CHANGES_PER_REPORT * CHANGE_BYTES / 2**20  # the change log's, by design
    failures = sum(s["failure_count"] for s in samples) + len(last.failures)
    first_failure = next((f for s in samples for f in s["failures"]), last.failures[0] if last.failures else "")
    worst_p99 = max((s["check_p99_ms"] for s in samples if s["check_p99_ms"] is not None), default=None)
    broken = []
    if failures:
        broken.append(f"{failures} requests failed, the first: {first_failure}")
    if after["fds"] > idle["fds"] + 2:
        broken.append(f"descriptors kept: {idle['fds']} before the load, {after['fds']} after it")
    if grown_mib > share_mib + slack_mib:
        broken.append(f"memory grew {grown_mib:.1f} MiB after warm-up; the change log explains {share_mib:.1f}")
    return {
        "broken": broken,
        "reports": sum(s["reports"] for s in samples) + last.reports,
        "checks": sum(s["checks"] for s in samples) + len(last.check_ms),
        "refused_as_they_must_be": sum(s["refused"] for s in samples) + last.refused,
        "streams": sum(s["streams"] for s in samples) + last.streams,
        "checks_ms": {q: _round(_percentile(check_ms, float(q[1:]) / 100)) for q in ("p50", "p99", "p99.9")},
        "checks_p99_worst_window_ms": worst_p99,
        "windows_over_goal": sum(1 for s in samples if (s["check_p99_ms"] or 0) > GOAL_P99_MS),
        "windows": len(samples),
        "checks_p99_goal_ms": GOAL_P99_MS,
        "rss_mib": {"idle": idle["rss_mib"], "warm": warm["rss_mib"], "end": end["rss_mib"], "after": after["rss_mib"]},
        "rss_growth_after_warm_up_mib": round(grown_mib, 1),
        "change_log_share_mib": round(share_mib, 1),
        "unexplained_growth_mib": round(grown_mib - share_mib, 1),
        "fds": {"idle": idle["fds"], "max": max(s["fds"] for s in samples), "after": after["fds"]},
        "entries": {"warm": warm["entries"], "end": end["entries"]},
        "failures": failures,
    }
