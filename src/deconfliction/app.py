"""``create_app(service)``: the one place that wires the HTTP API around a service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deconfliction import __version__
from deconfliction import snapshot as snapshots
from deconfliction.api.psi import router as psi_router
from deconfliction.api.routes import CHECKS, check_fast, log_refusal, router
from deconfliction.api.stream import router as stream_router
from deconfliction.console import mount_console
from deconfliction.errors import DeconflictionError, RetryLater, TooLarge
from deconfliction.service import Service
from deconfliction.stores.base import Follower
from deconfliction.tak.gateway import Gateway, Listener

log = logging.getLogger("deconfliction")


def error_body(code: str, message: str, field: str | None) -> dict[str, Any]:
    """The one JSON shape of every refusal: ``{"error": {"code", "message", "field"}}``."""
    return {"error": {"code": code, "message": message, "field": field}}


def _field_of(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    # pydantic names the union branch it tried ("function-after[...]", "str"); drop it
    parts = [p for p in parts if "[" not in p]
    return ".".join(parts) or None


async def _tick(service: Service) -> None:
    """Fire deadlines, window ends and AOR lapses as the clock reaches them, not only when someone asks."""
    while True:
        await asyncio.sleep(service.settings.tick_s)
        try:
            await run_in_threadpool(service.tick)
        except Exception:  # the store is down, or a bug: say so, and try again at the next tick; never stop ticking
            log.exception("the tick failed; deadlines, lapses and heads wait for the next one")


async def _follow(service: Service, stopping: asyncio.Event) -> None:
    """Follow the other nodes on the same database: wake on their commits (or each second), read what they wrote."""
    store = service.store
    if not isinstance(store, Follower):
        return  # a store in memory: one node, nothing to follow
    while not stopping.is_set():
        try:
            await run_in_threadpool(store.wait_for_writes, FOLLOW_WAIT_S)
            await run_in_threadpool(service.catch_up)
        except Exception:  # the database is away: keep answering from memory, and try again
            if stopping.is_set():
                return
            log.exception("following the other nodes failed; trying again in %g s", FOLLOW_WAIT_S)
            await asyncio.sleep(FOLLOW_WAIT_S)


async def _stop_following(service: Service, follower: asyncio.Task[None], stopping: asyncio.Event) -> None:
    """Let the follower finish its wait before the store closes: a connection closed under it would crash the process."""
    stopping.set()
    if isinstance(service.store, Follower):
        with contextlib.suppress(Exception):  # the database may be away; then the wait ends by its timeout
            await run_in_threadpool(service.store.wake_followers)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(follower), FOLLOW_WAIT_S * 2)


FOLLOW_WAIT_S = 1.0
"""Longest a node waits for a notification before it reads the log anyway (a lost one costs at most this)."""


class BodyLimit:
    """Refuses a request body past ``max_bytes`` with 413, by its Content-Length or while it streams in.

    Written as a small ASGI wrapper rather than taken from a library: uvicorn reads bodies of any
    size into memory, and the limits Starlette and FastAPI have had since (``max_body_size``, not in
    every version ``pyproject.toml`` allows) refuse in their own shape (``{"detail": ...}``),
    unlogged, where every other refusal of this API is ``{"error": ...}`` and logged with its reason.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _refusal(self, size: str) -> TooLarge:
        return TooLarge(f"the request body is {size}; this server takes at most {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            exc = self._refusal(f"{int(declared)} bytes")
            log_refusal(HTTPConnection(scope), exc)  # answered here, before the app: logged as the app's refusals are
            await JSONResponse({"error": exc.to_dict()}, status_code=exc.status)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise self._refusal(f"more than {self.max_bytes} bytes")  # answered by the app's refusal handler
            return message

        await self.app(scope, limited, send)


CHECKS_PATH = router.prefix + CHECKS


class HotRoute:
    """``POST /v1/checks`` answered here, ahead of the router; every other request passes on.

    The service's hot route. Through the rest of FastAPI's middleware (its exception handling,
    the stack that closes uploaded files) and Starlette's router to :func:`check_fast`, a check
    spent 11 to 14 µs more of the event loop's thread, on layers that have nothing to do for it
    (benchmarks/README.md, "What would close the gaps"). What a check needs of them is kept: the
    body limit and FastAPI's server error handling lie outside this (a 413, a 500 as for any
    route), and a refusal is answered by the app's own handlers (``handlers``, looked up as
    Starlette does, by the exception's classes in order).
    """

    def __init__(self, app: ASGIApp, handlers: Mapping[Any, Any]) -> None:
        self.app, self.handlers = app, handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _route_path(scope) != CHECKS_PATH:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await check_fast(request)
        except Exception as exc:
            handler = next((self.handlers[c] for c in type(exc).__mro__ if c in self.handlers), None)
            if handler is None:
                raise  # FastAPI's server error handling answers 500 and logs it
            response = await handler(request, exc)
        await response(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The request's path below the app's root path (when mounted under one), as Starlette's router reads it: its
    ``get_route_path``, private, which tests/api/test_checks.py holds this equal to."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


async def _snapshots(service: Service, path: Path, db: str) -> None:
    """Every ``snapshot_every_s``, if the log grew, a snapshot written by a second process (``deconflict snapshot``).

    In this process, writes and checks would wait while the picture is pickled (16 s at a million
    assets); the second process starts from the last snapshot and the log after it, on the other
    core, and holds a second copy of the picture meanwhile. A node that crashes then replays at
    most this long a stretch of the log when it starts again.
    """
    every = service.settings.snapshot_every_s
    written = service.from_snapshot
    while True:
        await asyncio.sleep(every)
        size = len(service.store.tree)
        if size <= written:
            continue
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "deconfliction", "snapshot", "--to", str(path),
                env={**os.environ, "DECONFLICT_DB": db},
            )  # fmt: skip
        except OSError:  # out of processes or memory: the node serves on, and tries again next time
            log.exception("the snapshot process could not start; the next is tried in %g s", every)
            continue
        try:
            if await process.wait() == 0:
                written = size
            else:
                log.error("the snapshot process ended with %d; the next is tried in %g s", process.returncode, every)
        except asyncio.CancelledError:  # the node stops: it writes its own, newer one
            process.terminate()
            await process.wait()
            snapshots.discard_partials(path)
            raise


def write_snapshot_said(service: Service, path: Path) -> None:
    """The picture as it stands, for the node's next start (on standard error, what was written or why not).

    A failure stops nothing: it costs the next start a longer replay.
    """
    started = time.perf_counter()
    try:
        made = service.write_snapshot(path)
    except (DeconflictionError, OSError) as exc:
        print(f"no snapshot written to {path}: {exc}", file=sys.stderr, flush=True)
        return
    took = time.perf_counter() - started
    print(f"snapshot of the log's first {made.size:,} entries written to {path} in {took:.1f} s", file=sys.stderr, flush=True)


def create_app(service: Service, tak: Sequence[Listener] = (), snapshot: Path | None = None, owns_store: bool = False) -> FastAPI:
    """The HTTP API for ``service``; OpenAPI at ``/openapi.json`` and ``/docs``; with ``tak``, the TAK gateway's listeners.

    With ``snapshot``, the picture is written there as the app stops (the last step of its shutdown:
    nothing is written or followed any more), for the node's next start, and by a second process
    every ``snapshot_every_s`` meanwhile. With ``owns_store``, the app closes the service's store last.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_tick(service))
        snapshotter = None
        db = getattr(service.store, "path", None)  # a store in memory has none: another process cannot read it
        if snapshot is not None and db is not None and service.settings.snapshot_every_s > 0:
            snapshotter = asyncio.create_task(_snapshots(service, snapshot, str(db)))
        stopping = asyncio.Event()
        follower = asyncio.create_task(_follow(service, stopping))
        gateway = Gateway(service, tak) if tak else None
        if gateway is not None:
            await gateway.start()
            app.state.tak = gateway
        yield
        if gateway is not None:
            await gateway.stop()
        ticker.cancel()
        await _stop_following(service, follower, stopping)
        if snapshotter is not None:
            snapshotter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await snapshotter
        if snapshot is not None:
            await run_in_threadpool(write_snapshot_said, service, snapshot)
        if owns_store:
            service.store.close()

    app = FastAPI(
        lifespan=lifespan,
        title="deconfliction",
        version=__version__,
        description="Check every planned or urgent activity against every party's units, sites and areas "
        "of responsibility. Answers are conflict, unknown or clear; silence is not clearance.",
    )
    app.state.service = service
    # Middleware added later wraps what was added before: the hot route lies inside the body limit. The refusal
    # handlers below land in the same dict it is given.
    app.add_middleware(HotRoute, handlers=app.exception_handlers)
    app.add_middleware(BodyLimit, max_bytes=service.settings.max_body_bytes)
    app.include_router(router)
    app.include_router(stream_router)
    app.include_router(psi_router)
    mount_console(app, service.settings.console_tiles_url)

    @app.exception_handler(DeconflictionError)
    async def refused(request: Request, exc: DeconflictionError) -> JSONResponse:
        log_refusal(request, exc)
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))} if isinstance(exc, RetryLater) else None
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        del request
        first = exc.errors()[0]
        field = _field_of(tuple(first.get("loc", ())))
        message = str(first.get("msg", "invalid value"))
        if first.get("type") == "extra_forbidden":
            message = "unknown field"
        elif first.get("type") == "json_invalid":
            # pydantic's loc here is a character offset, not a field
            field, message = None, f"the body is not valid JSON: {first.get('ctx', {}).get('error', message)}"
        return JSONResponse(error_body("invalid_input", message, field), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, DeconflictionError):  # refused while FastAPI read the body (BodyLimit)
            return await refused(request, exc.__cause__)
        if exc.status_code == 400:  # FastAPI's "error parsing the body": JSON too deeply nested for its reader
            message = "the body could not be read as JSON (nested too deeply, or not JSON at all)"
            return JSONResponse(error_body("invalid_input", message, None), status_code=422)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail), None), status_code=exc.status_code, headers=exc.headers)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        return {"ok": True, "picture_version": service.picture.version}

    return app
