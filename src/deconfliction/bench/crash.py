"""``deconflict crash-campaign``: kill the server with SIGKILL at random moments, many times, and hold it to its promises.

Each round starts ``deconflict serve`` on the same store, lets several clients stream reports
and checks at it over HTTP, and kills it with SIGKILL after a random delay, mid-traffic. The
next round's server must then show:

- every report that got a 2xx: its asset's position is that report's or a newer one (a write
  in flight when the server died may have landed too; an acknowledged one may not be lost);
- every check that got a 2xx: its record is in the log, at the sequence number it was given,
  as a ``check.asked``;
- a log without holes (sequence numbers 1 to N) and a record that verifies
  (``deconflict ledger verify``: every leaf, every signed head, their consistency).

Loopback only, bounded (``kills`` rounds), and it stops by itself; the first broken promise
ends the campaign with the round and what was missing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from deconfliction.bench.ours import DECONFLICT, free_port, start_serving
from deconfliction.model import Role
from deconfliction.service import ROOT, Caller, Service
from deconfliction.stores import open_store

PARTIES = ("alfa", "bravo")


@dataclass
class Acknowledged:
    """What the clients were told was written: per asset its newest acknowledged report time, and check records."""

    reports: dict[tuple[str, str], str] = field(default_factory=dict)
    checks: set[int] = field(default_factory=set)
    report_count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class BrokenPromise(AssertionError):
    pass


def prepare(db: str) -> dict[str, str]:
    """Parties, their liaison tokens, and one unit per client, written before the first server starts."""
    service = Service(open_store(db))
    try:
        tokens = {}
        for party in PARTIES:
            service.create_party(ROOT, {"id": party, "name": party.title()})
            tokens[party] = service.create_token(ROOT, party, "liaison")
        return tokens
    finally:
        service.store.close()


def start_server(db: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """The server on the store; one that does not come back after a kill breaks the campaign's promise."""
    try:
        return start_serving(db, port, log)
    except RuntimeError as exc:
        raise BrokenPromise(str(exc)) from exc


def _client(url: str, party: str, token: str, unit: str, stop: threading.Event, acked: Acknowledged) -> None:
    """Reports of one unit (time always forward), and a check after each; every 2xx noted, everything else let go."""
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(unit)
    with httpx.Client(base_url=url, headers=headers, timeout=5) as http:
        while not stop.is_set():
            now = datetime.now(UTC).isoformat()
            lat, lon = 34.5 + rng.random() * 0.2, 71.0 + rng.random() * 0.2
            try:
                made = http.post("/v1/reports", json={"asset": unit, "position": f"{lat:.6f}, {lon:.6f}", "time": now})
                if made.status_code == 201:
                    with acked.lock:
                        acked.reports[(party, unit)] = now
                        acked.report_count += 1
                asked = http.post("/v1/checks", json={"position": f"{lat:.6f}, {lon:.6f}", "kind": "fires"})
                if asked.status_code == 200 and asked.json().get("record") is not None:
                    with acked.lock:
                        acked.checks.add(int(asked.json()["record"]))
            except httpx.HTTPError:
                time.sleep(0.01)  # the server is down: the next round's server is asked


def verify(url: str, tokens: dict[str, str], acked: Acknowledged, db: str, round_: int) -> int:
    """Every acknowledged write present, the log whole and verified; the number of entries."""
    with acked.lock:
        reports, checks = dict(acked.reports), set(acked.checks)
    for party, token in tokens.items():
        shown = httpx.get(f"{url}/v1/assets", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
        held = {(a["party"], a["id"]): a.get("time") for a in shown}
        for (owner, unit), time_ in reports.items():
            if owner == party and (held.get((owner, unit)) is None or held[(owner, unit)] < time_):
                raise BrokenPromise(f"round {round_}: {owner}/{unit}'s report of {time_} was acknowledged and is gone")
    verified = subprocess.run([str(DECONFLICT), "ledger", "verify", "--db", db], capture_output=True, text=True, timeout=600)
    verdict = json.loads(verified.stdout or "{}")
    if verified.returncode != 0 or not verdict.get("ok"):
        raise BrokenPromise(f"round {round_}: the record does not verify: {verdict.get('problems') or verified.stderr[-500:]}")
    store = open_store(db)
    try:
        entries = store.last_seq()
        seqs = [e.seq for page_start in range(0, entries, 10_000) for e in store.events(page_start, 10_000)]
        if seqs != list(range(1, entries + 1)):
            raise BrokenPromise(f"round {round_}: the log has holes or repeats")
        for seq in checks:
            (event,) = store.events(seq - 1, 1)
            if event.seq != seq or event.type != "check.asked":
                raise BrokenPromise(f"round {round_}: check record {seq} was acknowledged and is {event.type}")
    finally:
        store.close()
    return entries


def run_crash(*, kills: int, clients: int, min_s: float, max_s: float, db: str | None = None, seed: int = 1) -> dict[str, Any]:
    """``kills`` rounds of traffic then SIGKILL; raises :class:`BrokenPromise` at the first round that breaks one."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="deconfliction-crash-") as tmp:
        store = db or str(Path(tmp) / "crash.db")
        log = Path(tmp) / "server.log"
        tokens = prepare(store)
        units = [(PARTIES[i % len(PARTIES)], f"unit-{i}") for i in range(clients)]
        first = Service(open_store(store))
        try:
            for party, unit in units:
                first.register_asset(Caller(party, Role.LIAISON), {"id": unit, "kind": "unit"})
            first.ledger_head()  # the node's key and a first signed head: every later head is held to it
        finally:
            first.store.close()
        acked = Acknowledged()
        port = free_port()
        started = time.monotonic()
        entries = 0
        for round_ in range(1, kills + 1):
            server = start_server(store, port, log)
            url = f"http://127.0.0.1:{port}"
            if round_ > 1:
                entries = verify(url, tokens, acked, store, round_)
            stop = threading.Event()
            threads = [
                threading.Thread(target=_client, args=(url, party, tokens[party], unit, stop, acked), daemon=True)
                for party, unit in units
            ]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(min_s, max_s))
            os.kill(server.pid, signal.SIGKILL)  # no shutdown handler, no flush: the disk has what it has
            server.wait(timeout=30)
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        server = start_server(store, port, log)
        try:
            entries = verify(f"http://127.0.0.1:{port}", tokens, acked, store, kills + 1)
        finally:
            server.kill()
            server.wait(timeout=30)
    return {
        "kills": kills,
        "clients": clients,
        "acknowledged_reports": acked.report_count,
        "acknowledged_checks": len(acked.checks),
        "entries": entries,
        "seconds": round(time.monotonic() - started, 1),
        "store": "postgresql" if db and "://" in db else "sqlite",
    }
