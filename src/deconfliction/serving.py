"""How a node serves its API: in one process, or in several worker processes on one store.

One process answers on one core: Python's interpreter lock serialises the request handling.
``deconfliction serve --workers N`` runs N processes, each with the whole picture in memory, on
one listening socket; they write to the one store and follow each other's writes through it
(the stores' :class:`~deconfliction.stores.base.Follower`), as the nodes of a PostgreSQL
deployment do (docs/deployment.md).
"""

from __future__ import annotations

import copy
import fcntl
import gc
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG, STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from deconfliction.errors import DeconflictionError
from deconfliction.service import SWITCH_INTERVAL_S, Service
from deconfliction.settings import Settings
from deconfliction.stores import open_store

if TYPE_CHECKING:
    from fastapi import FastAPI

    from deconfliction.tak.gateway import Listener


SHUTDOWN_GRACE_S = 5
FULL_COLLECTION_EVERY = 1000
"""Collections of the collector's middle generation between two full ones, in a server (Python's default: 10).
A full collection walks every object made since start-up that lives on (at a million assets, chiefly the probe
watch's trails: 230,000 objects after forty seconds under wrk), and stalled the event loop for 70 to 90 ms,
three times in the first ten seconds (then more rarely, as what it walks grows, each walk dearer). With this,
no stall over 24 ms in forty seconds, and the p99 of HTTP checks 57 to 47 ms over those forty seconds (77 to
101 against 58 to 72 ms in runs of ten). Young cyclic garbage is still collected as often as before."""
KEEP_ALIVE_S = 75
"""How long an idle connection is kept open. uvicorn's 5 s loses a request from any client that reuses a
connection every 5 s or so (a console polling, a device reporting): it arrives as the server closes the
connection, and gets no answer (the soak test caught it). 75 s, as nginx, is longer than a load
balancer's usual idle timeout (60 s), so the balancer, not the node, closes first."""


M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter number for the mmap threshold (``<malloc.h>``)."""
MMAP_THRESHOLD_BYTES = 128 * 1024
"""glibc's own starting value: a block this large or larger gets a mapping of its own."""


def fix_mmap_threshold() -> bool:
    """Hold glibc's mmap threshold at its starting value for the rest of the process; False off glibc.

    glibc raises the threshold (up to 32 MiB) each time a mapped block is freed. After that, the
    arrays that grow by reallocation for as long as a server runs (the change log's, the probe
    watch's) are moved about the heap as they grow, and the holes they leave between other blocks are
    never handed back: in a soak the heap's free memory went from 2 to 11 MiB in 7 minutes while the
    objects in use stayed flat (docs/reliability.md, "Soaked"). Held, a large block grows in its own
    mapping (mremap) and goes back to the system when freed. No library wraps ``mallopt``; ctypes is
    the standard way in.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except AttributeError:  # not glibc (musl, macOS): their allocators have no such threshold to drift
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


WORKER_SILENT_S = 30
"""How long a worker may leave its supervisor's health check unanswered before it is killed and started again.
Not uvicorn's 5 s: a worker starting at a million assets unpickles its snapshot in one call that holds the
interpreter for seconds (the whole start from a snapshot takes 8 s on the 2-core bench machine), and a worker
killed while it starts would be started again, and killed again, for ever. Not much longer either: uvicorn's
supervisor keeps its own end of each worker's pipe open, so a worker that dies while it is being asked (SIGKILL,
the OOM killer) is noticed only when this runs out; mostly it is noticed within half a second."""


def settle(service: Service) -> None:
    """Make this process, its picture loaded, ready to serve for months (memory, the collector, thread switches)."""
    del service  # loaded: what follows concerns every object it made
    fix_mmap_threshold()
    # The picture is loaded and long-lived: move it out of the collector's generations so
    # that garbage collection pauses do not grow with the number of assets. No collection
    # first: a start makes next to no cyclic garbage (317 objects after a whole replay of a
    # million assets, none from a snapshot), and finding it walked every object (1.4 s).
    gc.freeze()
    pace()


def pace() -> tuple[float, tuple[int, int, int]]:
    """Thread switches and the collector's full collections as a server holds them (the benchmark's ingest too);
    returns the switch interval and the collector's thresholds they replaced."""
    previous = sys.getswitchinterval(), gc.get_threshold()
    young, middle, _ = previous[1]
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return previous


RECORDED = {("POST", "/v1/checks", 200), ("POST", "/v1/reports", 201), ("POST", "/v1/reports/batch", 201)}
"""Requests whose every success the record holds in full (who, what, when, the answer): no access line for them."""


class Unrecorded(logging.Filter):
    """Passes uvicorn's access line for every request but the successes of :data:`RECORDED`.

    A check or a report accepted is an entry in the record, with the asker's party and the whole
    answer, which an access line (an address, a path, a status) only repeats; a refusal is logged
    by the service with its reason and keeps its access line too. Writing that line was a sixth of
    what the server spent on a check (55 of 690 µs of CPU at 100k assets, benchmarks/README).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) != 5:  # not the access line uvicorn writes: keep it
            return True
        _, method, path, _, status = args
        return (method, path, status) not in RECORDED


def log_config() -> dict[str, Any]:
    """uvicorn's logging, with :class:`Unrecorded` on its access log, and the service's own log (refusals with their
    reasons, the TAK gateway's devices) beside uvicorn's on standard error from INFO up. As configuration rather
    than set in this process: uvicorn applies it again in each of ``serve --workers``' processes."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["unrecorded"] = {"()": Unrecorded}
    config["loggers"]["uvicorn.access"]["filters"] = ["unrecorded"]
    config["loggers"]["deconfliction"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _config(app: Any, host: str, port: int, **more: Any) -> uvicorn.Config:
    # Event streams never end by themselves: on shutdown, give open requests a few seconds, then close them.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=log_config(),
        log_level="info",
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        **more,
    )


def serve(service: Service, host: str, port: int, tak: Sequence[Listener] = (), snapshot: Path | None = None) -> None:
    """Serve ``service`` in this process until it is stopped; with ``snapshot``, written there as it stops."""
    from deconfliction.app import create_app

    settle(service)
    writes = snapshot if snapshot is not None and _lead(snapshot) else None
    uvicorn.Server(_config(create_app(service, tak, writes), host, port)).run()


def serve_workers(db: str, host: str, port: int, workers: int, snapshot: Path | None) -> None:
    """Serve the store ``db`` from ``workers`` processes on one socket until stopped.

    uvicorn's supervisor binds the socket, starts the workers, starts again one that dies, and
    stops them all on SIGINT or SIGTERM (SIGHUP replaces them one by one). Each worker builds its
    own service (:class:`Worker`).
    """
    config = _config(Worker(db, snapshot), host, port, factory=True, workers=workers)
    config.timeout_worker_healthcheck = WORKER_SILENT_S
    Multiprocess(config, sockets=[config.bind_socket()]).run()


@dataclass(frozen=True)
class Worker:
    """The app of one of ``serve --workers``' processes, made in that process (uvicorn calls this there).

    Every worker starts from the snapshot; one of them at a time, the one holding the lock
    beside it, writes the snapshots (every ``snapshot_every_s``, and as it stops).
    """

    db: str
    snapshot: Path | None

    def __call__(self) -> FastAPI:
        from deconfliction.app import create_app

        try:
            service = Service(open_store(self.db), settings=Settings.from_env(), snapshot=self.snapshot)
        except DeconflictionError as exc:  # the same on every start: the supervisor stops rather than start it again
            print(f"this worker cannot start: {exc.message}", file=sys.stderr, flush=True)
            sys.exit(STARTUP_FAILURE)
        writes = self.snapshot if self.snapshot is not None and _lead(self.snapshot) else None
        told = f"writes the snapshots to {writes}" if writes else "leaves the snapshots to another worker"
        print(f"worker {os.getpid()}: picture version {service.picture.version}; {told}", file=sys.stderr, flush=True)
        settle(service)
        return create_app(service, (), writes, owns_store=True)


_leading: list[IO[bytes]] = []  # the lock file a leading worker holds open for as long as it lives


def _lead(snapshot: Path) -> bool:
    """Whether this process now writes the snapshots at ``snapshot``: the first to lock the file beside it.

    The lock goes with the process (a worker that dies frees it for the one started in its place).
    """
    try:
        lock = snapshot.with_name(snapshot.name + ".lock").open("ab")
    except OSError:  # a folder this process cannot write to: nor can it write a snapshot there, and says so when it tries
        return True
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return False
    _leading.append(lock)
    return True
