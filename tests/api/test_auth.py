"""Who may do what: bearer tokens, roles, parties, and tokens kept only as hashes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from deconfliction.errors import Unauthenticated
from deconfliction.service import Service
from deconfliction.settings import Settings
from deconfliction.stores import POSTGRES_SCHEMES, open_store
from tests.api.conftest import ALFA_LAND, ROLES, Api, add_parties, box, refusal, running_api

NEAR_BORDER = box(71.0, 34.5, 71.05, 34.55)


# Every write a liaison may make, each a fresh object, for the "who may write" tables.
WRITES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "asset": ("POST", "/v1/assets", {"id": "new-post", "kind": "site", "position": "34.6, 71.1"}),
    "report": ("POST", "/v1/reports", {"asset": "post", "position": "34.61, 71.11"}),
    "batch": ("POST", "/v1/reports/batch", {"reports": [{"asset": "post", "position": "34.61, 71.11"}]}),
    "zone": ("POST", "/v1/zones", {"id": "nfa", "kind": "no_fire_area", "area": NEAR_BORDER}),
    "aor": ("POST", "/v1/aors", {"id": "east", "area": ALFA_LAND, "freshness_s": 3600}),
    "confirm": ("POST", "/v1/aors/held/confirm", None),
    "withdraw-position": ("DELETE", "/v1/assets/post/position", None),
    "withdraw-asset": ("DELETE", "/v1/assets/post", None),
    "withdraw-zone": ("DELETE", "/v1/zones/held-zone", None),
}


def add_alfa_objects(api: Api) -> Api:
    """alfa holds a site ``post``, an AOR ``held`` and a zone ``held-zone`` for the write tables."""
    api.asset("alfa", "post", position="34.6, 71.1")
    api.aor("alfa", "held", box(71.0, 34.6, 71.2, 34.8), confirm=False)
    api.zone("alfa", "held-zone", "protected_area", box(71.1, 34.7, 71.12, 34.72))
    return api


@pytest.fixture
def alfa_objects(api: Api) -> Api:
    return add_alfa_objects(api)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The same picture as ``alfa_objects``, shared by the tests that are refused or only read.

    Each of them checks that the picture version did not move, so sharing cannot hide a change.
    """
    with running_api(tmp_path_factory.mktemp("auth") / "t.db") as api:
        yield add_alfa_objects(add_parties(api))


def send(api: Api, who: str | None, write: str) -> Any:
    method, path, body = WRITES[write]
    return api.call(method, path, who, json=body) if body is not None else api.call(method, path, who)


# ---------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/v1/assets", id="assets"),
        pytest.param("POST", "/v1/checks", id="check"),
        pytest.param("POST", "/v1/parties", id="create-party"),
        pytest.param("GET", "/v1/readback?position=34.5,71.0", id="readback"),
    ],
)
@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param("Bearer not-a-token-of-this-service", id="unknown-token"),
        pytest.param("Bearer ", id="empty-bearer"),
        pytest.param("Basic YWxmYTpzZWNyZXQ=", id="basic-scheme"),
    ],
)
def test_auth_without_a_known_token_is_401(shared: Api, method: str, path: str, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    version = shared.version()
    response = shared.call(method, path, None, headers=headers, json={"kind": "fires", "position": "34.5, 71.1"})
    refusal(response, 401, "unauthenticated", None)
    assert shared.version() == version


def test_auth_unknown_token_says_so(shared: Api) -> None:
    error = refusal(shared.get("/v1/picture", None, headers={"Authorization": "Bearer nope"}), 401, "unauthenticated")
    assert "not known" in error["message"]


def test_auth_altered_token_is_unknown(shared: Api) -> None:
    """A token is looked up by its hash, not by its shape: a well-formed near miss is refused."""
    stranger = shared.token("alfa")[:-4] + "AAAA"
    refusal(shared.get("/v1/picture", None, headers={"Authorization": f"Bearer {stranger}"}), 401, "unauthenticated")


# ---------------------------------------------------------------------------- the admin


def test_auth_a_client_guessing_tokens_is_stopped_even_when_it_guesses_right(
    fresh_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """20 unknown tokens from one address, then 429 for any token from it (a right guess too), until the budget refills.
    Every refusal is logged as a warning with the address, the route and the reason, and never the token."""
    caplog.set_level(logging.INFO, logger="deconfliction")
    with running_api(fresh_db, Settings()) as api:
        real = api.tokens["admin"]
        for i in range(20):
            refusal(api.client.get("/v1/parties", headers={"Authorization": f"Bearer guess-{i}"}), 401, "unauthenticated")
        stopped = api.client.get("/v1/parties", headers={"Authorization": f"Bearer {real}"})
        assert refusal(stopped, 429, "rate_limited")["retry_after_s"] > 0 and stopped.headers["Retry-After"] == "6"
        api.clock.advance_to(api.clock.now() + timedelta(seconds=6))  # 10 a minute: one more is allowed
        assert api.client.get("/v1/parties", headers={"Authorization": f"Bearer {real}"}).status_code == 200
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused ")]
    assert len(refusals) == 21 and all(r.levelno == logging.WARNING for r in refusals)
    assert refusals[0].getMessage().startswith("refused GET /v1/parties from testclient: 401 unauthenticated")
    assert refusals[-1].getMessage().startswith("refused GET /v1/parties from testclient: 429 rate_limited")
    assert not any(real in r.getMessage() or "guess-" in r.getMessage() for r in caplog.records), "no token in the log"


def test_auth_a_forbidden_write_and_a_bad_field_are_logged(shared: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="deconfliction")
    refusal(send(shared, "alfa:viewer", "report"), 403, "forbidden", None)
    shared.call("POST", "/v1/checks", "alfa", json={"kind": "fires", "position": "somewhere"})
    forbidden, invalid = (r for r in caplog.records if r.getMessage().startswith("refused "))
    assert forbidden.levelno == logging.WARNING and "POST /v1/reports from testclient: 403 forbidden" in forbidden.getMessage()
    assert invalid.levelno == logging.INFO and "422 invalid_position" in invalid.getMessage()


def test_auth_admin_creates_parties_tokens_and_territories(bare_api: Api) -> None:
    api = bare_api
    assert api.ok("POST", "/v1/parties", "admin", 201, json={"id": "alfa", "name": "Alfa Army"}) == {
        "id": "alfa",
        "name": "Alfa Army",
        "stale_after_s": 1800.0,
        "default_disclosure": "exact",
    }
    made = api.ok("POST", "/v1/parties/alfa/tokens", "admin", 201, json={"role": "liaison"})
    assert made["party"] == "alfa" and made["role"] == "liaison"
    assert isinstance(made["token"], str) and len(made["token"]) >= 32
    territory = api.ok("PUT", "/v1/territories/alfa", "admin", 200, json={"area": ALFA_LAND})
    assert territory["party"] == "alfa"
    assert territory["area"]["type"] == "Polygon"
    # the new token works at once, as alfa's liaison
    api.tokens["alfa:liaison"] = made["token"]
    api.asset("alfa", "post", position="34.6, 71.1")
    assert [p["id"] for p in api.ok("GET", "/v1/parties", "alfa")] == ["alfa"]
    assert [t["party"] for t in api.ok("GET", "/v1/territories", "alfa")] == ["alfa"]


def test_auth_party_admin_manages_only_its_own_partys_tokens(api: Api) -> None:
    """An admin token of a party is not a server admin: it cannot write as another party."""
    made = api.ok("POST", "/v1/parties/alfa/tokens", "admin", 201, json={"role": "admin"})
    api.tokens["alfa:admin"] = made["token"]
    viewer = api.ok("POST", "/v1/parties/alfa/tokens", "alfa:admin", 201, json={"role": "viewer"})
    assert viewer["party"] == "alfa"
    version = api.version()
    refusal(api.post("/v1/parties/bravo/tokens", "alfa:admin", json={"role": "liaison"}), 403, "forbidden")
    refusal(api.post("/v1/parties", "alfa:admin", json={"id": "charlie", "name": "C"}), 403, "forbidden")
    refusal(api.put("/v1/territories/alfa", "alfa:admin", json={"area": ALFA_LAND}), 403, "forbidden")
    assert api.version() == version


def test_auth_tokens_are_distinct(api: Api) -> None:
    tokens = [api.ok("POST", "/v1/parties/alfa/tokens", "admin", 201, json={"role": "liaison"})["token"] for _ in range(5)]
    assert len(set(tokens)) == 5 and api.tokens["admin"] not in tokens
    for token in tokens:  # each of them works
        assert api.get("/v1/picture", None, headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("write", [pytest.param(w, id=w) for w in ("asset", "report", "batch", "zone", "aor")])
def test_auth_admin_cannot_write_for_a_party(shared: Api, write: str) -> None:
    version = shared.version()
    refusal(send(shared, "admin", write), 403, "forbidden", None)
    assert shared.version() == version


def test_auth_admin_cannot_ask_a_check(shared: Api) -> None:
    """The server admin belongs to no party, so there is nobody for whom the check would be asked."""
    refusal(shared.post("/v1/checks", "admin", json={"position": "34.6, 71.1", "kind": "fires"}), 403, "forbidden")


def test_auth_token_for_unknown_party_is_404(shared: Api) -> None:
    refusal(shared.post("/v1/parties/charlie/tokens", "admin", json={"role": "liaison"}), 404, "not_found", "party")


def test_auth_territory_for_unknown_party_is_404(shared: Api) -> None:
    refusal(shared.put("/v1/territories/charlie", "admin", json={"area": ALFA_LAND}), 404, "not_found", "party")


# ---------------------------------------------------------------------------- liaisons, viewers, auditors


@pytest.mark.parametrize("who", ["alfa", "alfa:viewer", "alfa:auditor"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/v1/parties", {"id": "charlie", "name": "Charlie"}, id="create-party"),
        pytest.param("POST", "/v1/parties/alfa/tokens", {"role": "liaison"}, id="token-own-party"),
        pytest.param("POST", "/v1/parties/alfa/tokens", {"role": "admin"}, id="admin-token"),
        pytest.param("POST", "/v1/parties/bravo/tokens", {"role": "liaison"}, id="token-other-party"),
        pytest.param("PUT", "/v1/territories/alfa", {"area": ALFA_LAND}, id="territory"),
    ],
)
def test_auth_only_admin_does_admin_work(shared: Api, who: str, method: str, path: str, body: dict[str, Any]) -> None:
    version = shared.version()
    refusal(shared.call(method, path, who, json=body), 403, "forbidden", None)
    assert shared.version() == version
    assert [p["id"] for p in shared.ok("GET", "/v1/parties", who)] == ["alfa", "bravo"]


@pytest.mark.parametrize("write", [pytest.param(w, id=w) for w in WRITES])
def test_auth_liaison_writes_for_own_party(alfa_objects: Api, write: str) -> None:
    api = alfa_objects
    version = api.version()
    response = send(api, "alfa", write)
    assert response.is_success, response.text
    assert api.version() > version


@pytest.mark.parametrize("who", [pytest.param("alfa:viewer", id="viewer"), pytest.param("alfa:auditor", id="auditor")])
@pytest.mark.parametrize("write", [pytest.param(w, id=w) for w in WRITES])
def test_auth_viewer_and_auditor_cannot_write(shared: Api, who: str, write: str) -> None:
    version = shared.version()
    refusal(send(shared, who, write), 403, "forbidden", None)
    assert shared.version() == version


@pytest.mark.parametrize(
    ("write", "field"),
    [
        pytest.param("report", "asset", id="report"),
        pytest.param("batch", "reports.0.asset", id="batch"),
        pytest.param("confirm", "aor", id="confirm"),
        pytest.param("withdraw-position", "id", id="withdraw-position"),
        pytest.param("withdraw-asset", "id", id="withdraw-asset"),
        pytest.param("withdraw-zone", "id", id="withdraw-zone"),
    ],
)
def test_auth_liaison_cannot_touch_another_partys_objects(shared: Api, write: str, field: str) -> None:
    version = shared.version()
    refusal(send(shared, "bravo", write), 404, "not_found", field)
    assert shared.version() == version
    mine = {a["id"]: a for a in shared.ok("GET", "/v1/assets", "alfa")}
    assert mine["post"]["position"]["lat"] == 34.6
    assert [z["id"] for z in shared.ok("GET", "/v1/zones", "alfa")] == ["held-zone"]


def test_auth_liaison_objects_land_in_its_own_party(api: Api) -> None:
    """The same id in two parties is two objects: a liaison writes under its token's party only."""
    api.asset("alfa", "post", position="34.6, 71.1")
    api.asset("bravo", "post", position="34.6, 70.9")
    shown = {(a["party"], a["id"]): a for a in api.ok("GET", "/v1/assets", "alfa:viewer")}
    assert shown[("alfa", "post")]["position"]["lon"] == 71.1
    assert shown[("bravo", "post")]["position"]["lon"] == 70.9


@pytest.mark.parametrize("who", ["alfa:viewer", "alfa:auditor", "bravo:viewer", "bravo:auditor"])
def test_auth_readers_can_read_the_picture(shared: Api, who: str) -> None:
    assert [p["id"] for p in shared.ok("GET", "/v1/parties", who, 200)] == ["alfa", "bravo"]
    assert sorted(t["party"] for t in shared.ok("GET", "/v1/territories", who, 200)) == ["alfa", "bravo"]
    assert [(a["party"], a["id"]) for a in shared.ok("GET", "/v1/assets", who, 200)] == [("alfa", "post")]
    assert shared.ok("GET", "/v1/assets/alfa/post", who, 200)["position"]["lat"] == 34.6
    assert [(z["party"], z["id"]) for z in shared.ok("GET", "/v1/zones", who, 200)] == [("alfa", "held-zone")]
    assert [(a["party"], a["id"]) for a in shared.ok("GET", "/v1/aors", who, 200)] == [("alfa", "held")]
    summary = shared.ok("GET", "/v1/picture", who, 200)
    assert (summary["assets"], summary["zones"], summary["aors"]) == (1, 1, 1)


def test_auth_viewer_can_ask_a_check(shared: Api) -> None:
    answer = shared.check("bravo:viewer", position="34.6, 71.1", kind="fires")
    assert answer["status"] == "conflict"
    assert [(c["party"], c["id"]) for c in answer["conflicts"]] == [("alfa", "post")]
    assert isinstance(answer["record"], int)


# ---------------------------------------------------------------------------- tokens at rest


def _everything_stored(db: Path | str) -> bytes:
    """Every byte the store holds: the SQLite file and its WAL, or every table of the PostgreSQL database as text."""
    if not str(db).startswith(POSTGRES_SCHEMES):
        db = Path(db)
        files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
        assert db.with_name(db.name + "-wal") in files
        return b"".join(p.read_bytes() for p in files)
    with psycopg.connect(db) as conn:
        tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return "".join(str(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables).encode()


def test_auth_tokens_are_stored_only_as_hashes(api: Api) -> None:
    for party in ("alfa", "bravo"):
        for role in ROLES:
            api.token(f"{party}:{role}")
    api.asset("alfa", "post", position="34.6, 71.1")  # traffic with the tokens, too
    api.check("bravo:viewer", position="34.6, 71.1", kind="fires")
    stored = _everything_stored(api.db)
    assert len(api.tokens) == 7
    for who, token in api.tokens.items():
        assert token.encode() not in stored, f"the {who} token is stored in clear"
        # ...while its hash is there: the bytes read are the store's
        assert hashlib.sha256(token.encode()).hexdigest().encode() in stored, who


def test_auth_a_revoked_token_opens_nothing_at_once_and_its_stream_ends(api: Api) -> None:
    """alfa's admin revokes alfa's viewer token: the next request with it is 401, and a stream opened with it ends."""
    viewer = api.token("alfa:viewer")
    assert api.get("/v1/parties", "alfa:viewer").status_code == 200
    with api.client.stream("GET", "/v1/events?cursor=0", headers={"Authorization": f"Bearer {viewer}"}) as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("id: ")  # stream.opened
        revoked = api.ok("POST", "/v1/tokens/revoke", "alfa:admin", 200, json={"token": viewer})
        assert revoked == {"revoked": True, "party": "alfa", "role": "viewer"}
        list(lines)  # the stream ends by itself once the token is revoked (one that did not would hang here)
    refusal(api.get("/v1/parties", "alfa:viewer"), 401, "unauthenticated")
    refusal(api.post("/v1/tokens/revoke", "alfa:admin", json={"token": viewer}), 404, "not_found", "token")
    refusal(api.post("/v1/tokens/revoke", "bravo:admin", json={"token": api.token("alfa")}), 403, "forbidden")
    refusal(api.post("/v1/tokens/revoke", "alfa", json={"token": api.token("alfa:auditor")}), 403, "forbidden")
    restarted = Service(open_store(api.db), api.clock)
    try:
        with pytest.raises(Unauthenticated):
            restarted.authenticate(viewer)  # and after a restart: the revocation is in the log
    finally:
        restarted.store.close()
