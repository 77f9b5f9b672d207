"""``deconflict bench-tak``: many TAK devices on one party's listener, each sending its position every few seconds.

A ``deconflict serve`` process on a fresh SQLite store with a TCP TAK listener for one party;
in this process, ``devices`` asyncio connections, each sending a friendly atom (CoT XML, as a
device's own position report) every ``interval_s``, staggered over the interval, for
``duration_s``, and reading (and discarding) what the gateway sends back. Reported: the
events sent and taken per second, the connections the server dropped, and the gateway's own
report latency (CoT message read to report applied, so queryable by any check), p50/p99.
Client and server share the machine's cores: the figure is for both on one machine.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from deconfliction.bench.ours import free_port, wait_until_serving
from deconfliction.service import ROOT, Service
from deconfliction.stores import SQLiteStore

PARTY = "alfa"
_SA = (
    '<event version="2.0" uid="bench-{i}" type="a-f-G-U-C" how="m-g" time="{t}" start="{t}" stale="{s}">'
    '<point lat="{lat:.6f}" lon="{lon:.6f}" hae="100" ce="10" le="10"/>'
    '<detail><contact callsign="bench {i}"/></detail></event>'
)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def _device(i: int, port: int, interval_s: float, until: float, sent: list[int], dropped: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def drain() -> None:
        while await reader.read(65536):
            pass
        if time.monotonic() < until:
            dropped.append(i)  # the server closed it while the device was still sending

    reading = asyncio.create_task(drain())
    await asyncio.sleep(interval_s * i / max(1, len(sent)))  # staggered over the interval, as real devices are
    lat, lon, step = 30.0 + (i % 100) * 0.01, 40.0 + (i // 100) * 0.01, 0
    due = time.monotonic()
    try:
        while time.monotonic() < until:
            now = datetime.now(UTC)
            step += 1
            message = _SA.format(i=i, t=_iso(now), s=_iso(now + timedelta(minutes=5)), lat=lat + step * 1e-5, lon=lon)
            writer.write(message.encode())
            await writer.drain()
            sent[i] += 1
            # On a fixed beat, as a device's position broadcast is: a sleep of the whole interval after
            # each send would offer less than asked (9,770 a second of 1,000 devices every 0.1 s).
            due += interval_s
            await asyncio.sleep(max(0.0, due - time.monotonic()))
    except ConnectionError:
        dropped.append(i)
    finally:
        writer.close()
        reading.cancel()


async def _load(port: int, devices: int, interval_s: float, duration_s: float) -> dict[str, Any]:
    sent, dropped = [0] * devices, []  # type: ignore[var-annotated]
    started = time.monotonic()
    await asyncio.gather(*(_device(i, port, interval_s, started + duration_s, sent, dropped) for i in range(devices)))
    return {"sent": sum(sent), "seconds": time.monotonic() - started, "dropped": sorted(set(dropped))}


def run_tak(*, devices: int, interval_s: float, duration_s: float) -> dict[str, Any]:
    """The whole measurement; the server is stopped whatever happens."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 2 * devices + 256))  # each side holds one socket per device
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    with tempfile.TemporaryDirectory(prefix="deconfliction-tak-bench-") as tmp:
        db = Path(tmp) / "tak.db"
        service = Service(SQLiteStore(db))
        admin = service.create_token(ROOT, None, "admin")
        service.create_party(ROOT, {"id": PARTY, "name": "Alfa"})
        service.store.close()
        http_port, tak_port = free_port(), free_port()
        command = [str(Path(sys.executable).parent / "deconflict"), "serve", "--db", str(db), "--port", str(http_port)]
        env = {**os.environ, "DECONFLICT_CHECK_RATE_PER_MIN": "0"}
        log = (Path(tmp) / "server.log").open("wb")
        command += ["--tak", f"{PARTY}:{tak_port}"]
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        url = f"http://127.0.0.1:{http_port}"
        try:
            wait_until_serving(url, server, 60)
            load = asyncio.run(_load(tak_port, devices, interval_s, duration_s))
            started = time.monotonic()
            status = _settled(url, admin, load["sent"])
            settling_s = time.monotonic() - started
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
    taken = status["counts"].get("reports", 0)
    return {
        "devices": devices,
        "interval_s": interval_s,
        "duration_s": round(load["seconds"], 1),
        "sent": load["sent"],
        "sent_per_s": round(load["sent"] / load["seconds"]),
        "taken": taken,
        "caught_up_s": round(settling_s, 1),  # after the devices stopped, until the last report was applied
        "taken_per_s": round(taken / (load["seconds"] + settling_s)),
        "dropped_connections": len(load["dropped"]),
        "report_latency": status["report_latency"],
        "counts": status["counts"],
    }


def _settled(url: str, admin: str, sent: int) -> dict[str, Any]:
    """The gateway's status once every report sent was taken or refused (or after 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        status: dict[str, Any] = httpx.get(f"{url}/v1/tak", headers={"Authorization": f"Bearer {admin}"}, timeout=10).json()
        counts = status["counts"]
        done = counts.get("reports", 0) + sum(v for k, v in counts.items() if k.startswith("refused."))
        if done >= sent or time.monotonic() > deadline:
            return status
        time.sleep(0.2)
