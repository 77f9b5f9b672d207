"""The private cross-check between two nodes over HTTP: the owner's routes, and the asker's side of the wire.

The owner node serves

- ``GET /v1/psi``: what it offers (its party, the H3 resolution, the kinds and their
  buffers, its limits), so that an asker computes its cells at the right resolution;
- ``POST /v1/psi/sessions`` ``{kind, resolution, request}``: the asker's PSI request
  (serialised protobuf, base64), answered with ``{setup, response}`` (the same) made with
  a key used for this session only.

Both need a party token of the owner node, as every other route does: the owner gives
each party it answers a ``viewer`` token (or ``liaison``), and rate-limits per party.
:func:`ask_remote` is the asker's side of the same exchange.

The node offers the places of one party, set by ``DECONFLICT_PSI_PARTY`` (its assets
with a position and the zones each kind must keep clear of, read from the node's own
picture, whatever their disclosure), or a file set by ``DECONFLICT_PSI_PLACES`` (GeoJSON
places, or precomputed cells; the file wins). docs/psi.md has every setting.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from deconfliction import psi
from deconfliction.api.routes import ERRORS, Svc, Who
from deconfliction.api.schemas import ErrorBody
from deconfliction.client import RemoteError
from deconfliction.errors import DeconflictionError, Forbidden, InvalidInput, RetryLater, StoreError
from deconfliction.model import CheckKind, Role
from deconfliction.service import Caller, Service

log = logging.getLogger("deconfliction.psi")
ENV_PREFIX = "DECONFLICT_PSI_"
Json = dict[str, Any]


class NotOffered(DeconflictionError):
    """The node has no places to offer (no PSI party and no places file), or they cannot be read."""

    status = 503
    code = "psi_not_offered"


def _meta(help_: str) -> dict[str, str]:
    return {"help": help_}


@dataclass(frozen=True)
class PsiSettings:
    """The owner node's settings for the private cross-check; ``from_env()`` reads ``DECONFLICT_PSI_<NAME>``."""

    party: str | None = field(default=None, metadata=_meta("The party whose places this node offers, from its picture."))
    places: str | None = field(
        default=None, metadata=_meta("A file of places (GeoJSON) or cells to offer instead of the picture's.")
    )
    resolution: int = field(default=psi.DEFAULT_RESOLUTION, metadata=_meta("H3 resolution of the cells (6 to 11)."))
    fpr: float = field(default=psi.DEFAULT_FPR, metadata=_meta("False-positive rate of the owner's compressed set."))
    rate_per_hour: float = field(default=12.0, metadata=_meta("Sessions per asking party per hour, once its burst is used."))
    burst: int = field(default=10, metadata=_meta("Sessions an asking party may have at once before the hourly rate applies."))
    max_asker_cells: int = field(
        default=4096, metadata=_meta("Most cells (padding included) one request may hold: about 430 km² at resolution 9.")
    )
    max_concurrent: int = field(default=2, metadata=_meta("Sessions answered at once; more wait (503, retry)."))
    pad: bool = field(default=True, metadata=_meta("Pad the offered set with dummies to a size bucket (hides its exact size)."))

    def __post_init__(self) -> None:
        psi.check_resolution(self.resolution, ENV_PREFIX + "RESOLUTION")
        if not 0.0 < self.fpr < 1.0:
            raise InvalidInput(f"{self.fpr!r} is not between 0 and 1", field=ENV_PREFIX + "FPR")
        try:
            self.limits()
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field=ENV_PREFIX + str(exc.field).upper()) from None

    def limits(self) -> psi.Limits:
        return psi.Limits(self.rate_per_hour, self.burst, self.max_asker_cells, self.max_concurrent)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> PsiSettings:
        """Defaults, then ``DECONFLICT_PSI_*`` variables, then ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            kind = type(f.default) if f.default is not None else str
            try:
                values[f.name] = _convert(kind, raw)
            except ValueError:
                raise InvalidInput(f"{raw!r} is not a {kind.__name__}", field=name) from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _convert(kind: type, raw: str) -> Any:
    if kind is bool:
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    return kind(raw)


class PsiNode:
    """The owner's side of a node: where its places come from, their cells per kind (cached), and the desk that answers."""

    def __init__(self, service: Service, settings: PsiSettings) -> None:
        self.service = service
        self.settings = settings
        self.desk = psi.OwnerDesk(
            self.cells_for, limits=settings.limits(), clock=service.clock, fpr=settings.fpr, pad=settings.pad
        )
        service.share_budget("psi.answered", self.desk.budget)  # one budget across the nodes, as the checks'
        self._cache: dict[tuple[CheckKind, object], frozenset[str]] = {}
        self._lock = threading.Lock()

    @property
    def offered(self) -> bool:
        return self.settings.places is not None or self.settings.party is not None

    def cells_for(self, kind: CheckKind) -> frozenset[str]:
        """The owner's cells for ``kind``, recomputed only when the picture (or the places file) changed."""
        s = self.settings
        if s.places is not None:
            path = Path(s.places)
            try:
                stamp: object = path.stat().st_mtime_ns
            except OSError as exc:
                raise NotOffered(f"cannot read the places file {path}: {exc}", field=ENV_PREFIX + "PLACES") from exc
        elif s.party is not None:
            stamp = self.service.picture.version
        else:
            raise NotOffered(
                f"this node offers no private cross-check: set {ENV_PREFIX}PARTY (the party whose places it offers) "
                f"or {ENV_PREFIX}PLACES (a file of places)",
                field=ENV_PREFIX + "PARTY",
            )
        with self._lock:
            cached = self._cache.get((kind, stamp))
            if cached is None:
                cached = self._from_file(kind) if s.places is not None else self._from_picture(kind)
                self._cache = {k: v for k, v in self._cache.items() if k[1] == stamp}
                self._cache[(kind, stamp)] = cached
            return cached

    def _from_picture(self, kind: CheckKind) -> frozenset[str]:
        party = self.settings.party
        assert party is not None
        service = self.service
        # The service's reading lock holds the picture still while the places are copied out;
        # a public Service.places_of(party) would be the cleaner way to do this.
        with service._reading:
            if party not in service.picture.parties:
                raise NotOffered(f"{ENV_PREFIX}PARTY names {party!r}, which is no party here", field=ENV_PREFIX + "PARTY")
            places = psi.picture_places(service.picture, party, service.clock.now())
        return psi.place_cells(places, kind, service.settings.buffer_m(kind), self.settings.resolution)

    def _from_file(self, kind: CheckKind) -> frozenset[str]:
        assert self.settings.places is not None
        path = Path(self.settings.places)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NotOffered(f"cannot read the places file {path}: {exc}", field=ENV_PREFIX + "PLACES") from exc
        try:
            if isinstance(doc, Mapping) and "cells" in doc:
                resolution, by_kind = psi.read_cells(doc)
                if resolution != self.settings.resolution:
                    raise InvalidInput(
                        f"the file's cells are of resolution {resolution}, the node's is {self.settings.resolution}",
                        field="resolution",
                    )
                return by_kind.get(kind, frozenset())
            places = psi.read_places(doc)
            return psi.place_cells(places, kind, self.service.settings.buffer_m(kind), self.settings.resolution)
        except InvalidInput as exc:
            where = f" at {exc.field}" if exc.field else ""
            raise NotOffered(f"the places file {path} is refused{where}: {exc.message}", field=ENV_PREFIX + "PLACES") from None

    def info(self) -> Json:
        s = self.settings
        return {
            "offered": self.offered,
            "party": s.party if s.places is None else None,
            "resolution": s.resolution,
            "buffers_m": {k.value: self.service.settings.buffer_m(k) for k in CheckKind},
            "fpr": s.fpr,
            "padded": s.pad,
            "limits": {
                "rate_per_hour": s.rate_per_hour,
                "burst": s.burst,
                "max_asker_cells": s.max_asker_cells,
                "max_concurrent": s.max_concurrent,
            },
            "encoding": "base64",
        }


_node_lock = threading.Lock()


async def psi_node(request: Request) -> PsiNode:
    """The app's PSI node (``app.state.psi``), made from ``DECONFLICT_PSI_*`` on first use unless set already."""
    state = request.app.state
    node: PsiNode | None = getattr(state, "psi", None)
    if node is None:
        with _node_lock:
            node = getattr(state, "psi", None)
            if node is None:
                try:
                    settings = PsiSettings.from_env()
                except InvalidInput as exc:
                    raise NotOffered(f"the node's PSI settings are refused: {exc.message}", field=exc.field) from None
                node = PsiNode(state.service, settings)
                state.psi = node
    return node


Node = Annotated[PsiNode, Depends(psi_node)]

router = APIRouter(
    prefix="/v1/psi",
    tags=["psi"],
    responses={**ERRORS, 429: {"model": ErrorBody, "description": "The asking party has used its sessions; see Retry-After."}},
)


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["fires", "air", "ground", "other", "patrol", "movement"] = Field(
        description="The activity's kind: the owner buffers its places by this kind's buffer."
    )
    resolution: int = Field(description="The H3 resolution of the asker's cells; it must be the node's (GET /v1/psi).")
    request: str = Field(description="The asker's PSI request: serialised protobuf (psi_proto.Request), base64.")


class SessionOut(BaseModel):
    session: str = Field(description="An id for both sides' logs; the key behind it is gone already.")
    record: int = Field(description="The owner node's record entry for the session: sizes only, sealed for both sides.")
    owner: str | None
    kind: str
    buffer_m: float
    resolution: int
    asker_cells: int = Field(description="What the owner learnt: the number of cells sent (with padding).")
    setup: str = Field(description="The owner's setup message: serialised protobuf (psi_proto.ServerSetup), base64.")
    response: str = Field(description="The owner's response: serialised protobuf (psi_proto.Response), base64.")


def _asker(who: Caller) -> str:
    if who.party is None:
        raise Forbidden("a private cross-check is asked for a party; the server admin token belongs to none")
    if who.role not in (Role.LIAISON, Role.VIEWER):
        raise Forbidden(f"a private cross-check is asked by a liaison or a viewer; this token's role is {who.role.value}")
    return str(who.party)


@router.get("")
def offer(node: Node, who: Who) -> Json:
    """What this node offers for a private cross-check: its resolution, kinds and buffers, and its limits."""
    _asker(who)
    return node.info()


@router.post("/sessions", response_model=SessionOut)
async def session(data: SessionIn, node: Node, svc: Svc, who: Who) -> Any:
    """Answer one private cross-check with a key made for it: the asker learns how many of its cells meet, not which."""
    asker = _asker(who)
    kind = psi.check_kind(data.kind)
    if data.resolution != node.settings.resolution:
        raise InvalidInput(
            f"this node answers at H3 resolution {node.settings.resolution}, not {data.resolution}", field="resolution"
        )
    most = 4 * (node.settings.max_asker_cells * (psi.ELEMENT_BYTES + 2) + 2) // 3 + 4
    if len(data.request) > most:
        raise InvalidInput(
            f"the request is longer than {node.settings.max_asker_cells} cells can be ({most} base64 characters)", field="request"
        )
    try:
        raw = base64.b64decode(data.request, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"the request is not base64: {exc}", field="request") from exc
    started = time.perf_counter()

    def answer() -> psi.Reply:
        node.cells_for(kind)  # first: a node that cannot offer its places says so before the asker's session counts
        return node.desk.answer(asker, kind, raw)

    try:
        # In a worker thread: the PSI library releases the GIL while it computes, so checks go on meanwhile.
        reply = await run_in_threadpool(answer)
    except RetryLater as exc:
        log.warning("psi session refused: party=%s kind=%s reason=%s", asker, kind.value, exc.code)
        raise
    session_id = secrets.token_hex(8)
    log.info(
        "psi session %s: party=%s kind=%s asker_cells=%d owner_cells=%d in %.3f s",
        session_id,
        asker,
        kind.value,
        reply.asker_cells,
        reply.owner_cells,
        time.perf_counter() - started,
    )
    owner = node.settings.party if node.settings.places is None else None
    sizes = {"session": session_id, "kind": kind.value, "asker_cells": reply.asker_cells, "owner_cells": reply.owner_cells}
    return {
        "session": session_id,
        "record": await svc.record_private_check(asker, owner, sizes),
        "owner": owner,
        "kind": kind.value,
        "buffer_m": svc.settings.buffer_m(kind),
        "resolution": node.settings.resolution,
        "asker_cells": reply.asker_cells,
        "setup": base64.b64encode(reply.setup).decode("ascii"),
        "response": base64.b64encode(reply.response).decode("ascii"),
    }


# ---------------------------------------------------------------------------- the asker's side of the wire


def ask_remote(
    url: str,
    token: str,
    cells_at: Callable[[int], frozenset[str]],
    kind: str,
    *,
    pad: bool = True,
    timeout_s: float = 60.0,
    http: httpx.Client | None = None,
) -> Json:
    """Ask an owner node whether an activity meets its places: ``cells_at(resolution)`` gives the activity's cells.

    Returns ``{meets, cells_met, asker_cells, elapsed_s, bytes_sent, bytes_received, ...}``;
    the bytes are those of the HTTP bodies both ways (the offer and the session).
    """
    kind = psi.check_kind(kind).value
    started = time.perf_counter()
    own = http is None
    client = http or httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s)
    headers = {"Authorization": f"Bearer {token}"}
    sent = received = 0
    try:
        offer_response = _send(client, "GET", "/v1/psi", headers)
        received += len(offer_response.content)
        offered = offer_response.json()
        resolution = int(offered["resolution"])
        asker = psi.Asker(cells_at(resolution), pad=pad)
        body = json.dumps(
            {"kind": kind, "resolution": resolution, "request": base64.b64encode(asker.request()).decode("ascii")}
        ).encode()
        sent += len(body)
        answer_response = _send(client, "POST", "/v1/psi/sessions", {**headers, "content-type": "application/json"}, body)
        received += len(answer_response.content)
        answer = answer_response.json()
        try:
            setup = base64.b64decode(answer["setup"], validate=True)
            response = base64.b64decode(answer["response"], validate=True)
        except (KeyError, binascii.Error, ValueError) as exc:
            raise InvalidInput(f"the owner's answer is not {{setup, response}} in base64: {exc}", field="setup") from exc
        meeting = asker.meeting(setup, response)
    finally:
        if own:
            client.close()
    return {
        "meets": meeting.meets,
        "cells_met": meeting.cells_met,
        "asker_cells": meeting.asker_cells,
        "sent_cells": meeting.sent_cells,
        "kind": kind,
        "buffer_m": answer.get("buffer_m"),
        "resolution": resolution,
        "owner": answer.get("owner"),
        "session": answer.get("session"),
        "elapsed_s": round(time.perf_counter() - started, 4),
        "bytes_sent": sent,
        "bytes_received": received,
    }


def _send(client: httpx.Client, method: str, path: str, headers: dict[str, str], content: bytes | None = None) -> httpx.Response:
    try:
        response = client.request(method, path, headers=headers, content=content)
    except httpx.HTTPError as exc:
        raise StoreError(f"cannot reach the owner node: {exc}") from exc
    if response.is_error:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {"error": {"code": "http_error", "message": f"the owner node answered {response.status_code}"}}
        if response.status_code == 404 and body.get("error", {}).get("code") == "not_found" and path.startswith("/v1/psi"):
            body["error"]["message"] = f"the node at {client.base_url} offers no private cross-check ({path} not found)"
        raise RemoteError(response.status_code, body)
    return response
