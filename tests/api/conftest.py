"""Fixtures for the HTTP API tests: a service on a fresh SQLite file, a manual clock, two parties.

The picture every test starts from (``api``):

- parties ``alfa`` and ``bravo``, with a liaison, a viewer and an auditor token each (made on first use);
- territories on either side of the meridian 71.0 E between 34.3 N and 34.9 N: alfa east, bravo west;
- the clock at 2026-01-01T00:00:00Z, moved only by ``api.clock.advance_to``.

Tests talk to the API as a user would: ``api.post("/v1/assets", "alfa", json=...)`` sends the
request with alfa's liaison token; ``"bravo:viewer"`` names another of the tokens, ``"admin"``
the server admin, ``None`` sends no token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from deconfliction.app import create_app
from deconfliction.clock import ManualClock
from deconfliction.service import ROOT, Service
from deconfliction.settings import Settings
from deconfliction.stores import open_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROLES = ("liaison", "viewer", "auditor")
MERIDIAN = 71.0
SOUTH, NORTH = 34.3, 34.9


def box(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    """A GeoJSON Polygon (lon/lat) for a lat/lon box."""
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


ALFA_LAND = box(MERIDIAN, SOUTH, 71.3, NORTH)
BRAVO_LAND = box(70.7, SOUTH, MERIDIAN, NORTH)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


# TestClient answers with httpx2's Response and the server-process test with httpx's: both
# have the status_code, headers, text and json() that these helpers use.
Response = Any


class _Unchecked:
    """The field of a refusal that a test leaves unchecked."""


UNCHECKED = _Unchecked()


def refusal(
    response: Response, status: int, code: str | None = None, field: str | _Unchecked | None = UNCHECKED
) -> dict[str, Any]:
    """Assert ``response`` is a refusal in the one error shape; return its ``error`` object.

    ``field`` is left unchecked unless given; ``None`` or a string pins it.
    """
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    later = {"retry_after_s"} if error.get("code") in ("rate_limited", "busy", "behind") else set()  # errors.RetryLater
    assert set(error) == {"code", "message", "field", *later}, body
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    assert error["field"] is None or isinstance(error["field"], str), body
    if code is not None:
        assert error["code"] == code, body
    if field is not UNCHECKED:
        assert error["field"] == field, body
    return error


@dataclass
class Api:
    """The app in process, its service, clock and store file, and a token per (party, role)."""

    app: FastAPI
    client: TestClient
    service: Service
    clock: ManualClock
    db: Path | str  # a SQLite file, or a PostgreSQL URL
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, who: str) -> str:
        """The token of ``who`` ("admin", "alfa" for its liaison, "alfa:viewer"), made through the API on first use."""
        key = who if ":" in who or who == "admin" else f"{who}:liaison"
        if key not in self.tokens:
            party, role = key.split(":")
            made = self.ok("POST", f"/v1/parties/{party}/tokens", "admin", 201, json={"role": role})
            assert made == {"token": made["token"], "party": party, "role": role}
            self.tokens[key] = made["token"]
        return self.tokens[key]

    def headers(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.token(who)}"}

    def call(self, method: str, path: str, who: str | None, **kwargs: Any) -> Response:
        headers = {**self.headers(who), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, who: str | None, **kwargs: Any) -> Response:
        return self.call("GET", path, who, **kwargs)

    def post(self, path: str, who: str | None, **kwargs: Any) -> Response:
        return self.call("POST", path, who, **kwargs)

    def put(self, path: str, who: str | None, **kwargs: Any) -> Response:
        return self.call("PUT", path, who, **kwargs)

    def delete(self, path: str, who: str | None, **kwargs: Any) -> Response:
        return self.call("DELETE", path, who, **kwargs)

    def ok(self, method: str, path: str, who: str | None, status: int | None = None, **kwargs: Any) -> Any:
        """Send a request that must succeed (2xx, or exactly ``status``); return its JSON."""
        response = self.call(method, path, who, **kwargs)
        if status is None:
            assert response.is_success, (method, path, response.status_code, response.text)
        else:
            assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json()

    def version(self) -> int:
        return int(self.ok("GET", "/v1/picture", "admin")["picture_version"])

    def advance(self, seconds: float) -> None:
        self.clock.advance_to(self.clock.now() + timedelta(seconds=seconds))

    # -- the usual writes, as a liaison would make them

    def party(self, party_id: str, **extra: Any) -> dict[str, Any]:
        """Create a party; its liaison, viewer and auditor tokens are made when first used."""
        return dict(self.ok("POST", "/v1/parties", "admin", 201, json={"id": party_id, "name": party_id.title(), **extra}))

    def asset(self, who: str, asset_id: str, kind: str = "site", **extra: Any) -> dict[str, Any]:
        return dict(self.ok("POST", "/v1/assets", who, 201, json={"id": asset_id, "kind": kind, **extra}))

    def report(self, who: str, asset_id: str, position: str, **extra: Any) -> dict[str, Any]:
        return dict(self.ok("POST", "/v1/reports", who, 201, json={"asset": asset_id, "position": position, **extra}))

    def zone(self, who: str, zone_id: str, kind: str, area: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return dict(self.ok("POST", "/v1/zones", who, 201, json={"id": zone_id, "kind": kind, "area": area, **extra}))

    def aor(self, who: str, aor_id: str, area: dict[str, Any], freshness_s: float = 3600, confirm: bool = True) -> dict[str, Any]:
        made = self.ok("POST", "/v1/aors", who, 201, json={"id": aor_id, "area": area, "freshness_s": freshness_s})
        if confirm:
            made = self.ok("POST", f"/v1/aors/{aor_id}/confirm", who, 200)
        return dict(made)

    def check(self, who: str, **body: Any) -> dict[str, Any]:
        return dict(self.ok("POST", "/v1/checks", who, 200, json=body))


@contextmanager
def running_api(db: Path | str, settings: Settings | None = None) -> Iterator[Api]:
    """The app over a fresh store at ``db`` (a SQLite path or a PostgreSQL URL), a manual clock at T0, an admin token.

    Unknown tokens are not throttled unless ``settings`` say so: the module-wide services of
    the refusal tests present hundreds of them from one address (the throttle has its own test).
    """
    clock = ManualClock(T0)
    store = open_store(db)
    try:
        service = Service(store, clock, settings or Settings(bad_tokens_per_min=0))
        app = create_app(service)
        with TestClient(app) as client:
            api = Api(app, client, service, clock, db)
            api.tokens["admin"] = service.create_token(ROOT, None, "admin")
            yield api
    finally:
        store.close()


@pytest.fixture
def bare_api(fresh_db: str) -> Iterator[Api]:
    """The app with only a server admin token: no parties yet; every API test runs on each store ``--store`` selects."""
    with running_api(fresh_db) as api:
        yield api


def add_parties(api: Api) -> Api:
    """alfa and bravo with liaison, viewer and auditor tokens, and their territories."""
    api.party("alfa")
    api.party("bravo")
    api.ok("PUT", "/v1/territories/alfa", "admin", 200, json={"area": ALFA_LAND})
    api.ok("PUT", "/v1/territories/bravo", "admin", 200, json={"area": BRAVO_LAND})
    return api


@pytest.fixture
def api(bare_api: Api) -> Api:
    return add_parties(bare_api)


@pytest.fixture
def clock(api: Api) -> ManualClock:
    """The clock of ``api``'s service: ``clock.advance_to(t)`` moves the whole service."""
    return api.clock


@pytest.fixture
def service(api: Api) -> Service:
    return api.service


@pytest.fixture
def lenient(api: Api) -> Iterator[TestClient]:
    """A client on the same app that answers 500 instead of raising the server's exception."""
    with TestClient(api.app, raise_server_exceptions=False) as client:
        yield client
