"""Activities are rebuilt from the log after a restart, exactly as they were served; picture keys are not honoured across it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deconfliction import ManualClock, Service
from deconfliction.errors import StalePicture
from deconfliction.model import Role
from deconfliction.service import ROOT, Caller
from deconfliction.stores import open_store
from tests.conftest import service_on

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
ALFA, BRAVO = Caller("alfa", Role.LIAISON), Caller("bravo", Role.LIAISON)
WINDOW = [(T0 + timedelta(hours=1)).isoformat(), (T0 + timedelta(hours=3)).isoformat()]


def _open(db: str, clock: ManualClock) -> Service:
    return Service(open_store(db), clock)


def _propose(svc: Service, activity_id: str, key: str | None = None) -> dict[str, Any]:
    body = {
        "id": activity_id,
        "kind": "fires",
        "purpose": "registration fire",
        "volumes": [{"position": "34.5500, 71.0200", "radius_m": 50, "window": WINDOW}],
    }
    if key is None:
        with pytest.raises(StalePicture) as refused:
            svc.propose(ALFA, body)
        key = refused.value.details["key"]
    return svc.propose(ALFA, {**body, "key": key})


def test_activities_and_their_answers_survive_a_restart(fresh_db: str) -> None:
    clock = ManualClock(T0)
    svc = _open(fresh_db, clock)
    for party in ("alfa", "bravo"):
        svc.create_party(ROOT, {"id": party, "name": party})
    svc.register_asset(BRAVO, {"id": "post", "kind": "site", "position": "34.5510, 71.0210", "disclosure": "hidden"})
    _propose(svc, "f1")
    _propose(svc, "f2")
    svc.object(BRAVO, "alfa", "f1", {"reason": "the post is manned"})
    svc.acknowledge(BRAVO, "alfa", "f2")
    svc.activate(ALFA, "alfa", "f2", {"key": svc.look(ALFA, "70.9,34.4,71.1,34.7")["picture_key"]})
    clock.advance_to(T0 + timedelta(minutes=11))
    _propose(svc, "f3")
    clock.advance_to(T0 + timedelta(minutes=22))
    svc.tick()  # f3's deadline passed: escalated
    before = svc.activities(ALFA)
    svc.store.close()

    with service_on(fresh_db, clock) as again:
        assert again.activities(ALFA) == before
        states = {a["id"]: a["state"] for a in before}
        assert states == {"f1": "objected", "f2": "active", "f3": "escalated"}
        assert again.activity(BRAVO, "alfa", "f1")["answers"]["bravo"]["reason"] == "the post is manned"
        assert again.tick() == []  # nothing fired twice


def test_a_key_from_before_a_restart_is_refused_with_a_fresh_one(fresh_db: str) -> None:
    """The change log is not rebuilt on start-up, so a key older than the last change before it cannot be vouched for."""
    clock = ManualClock(T0)
    svc = _open(fresh_db, clock)
    for party in ("alfa", "bravo"):
        svc.create_party(ROOT, {"id": party, "name": party})
    old = svc.look(ALFA, "70.9,34.4,71.1,34.7")["picture_key"]
    svc.register_asset(BRAVO, {"id": "post", "kind": "site", "position": "34.5510, 71.0210", "disclosure": "hidden"})
    svc.store.close()

    with service_on(fresh_db, clock) as again:
        body = {"kind": "patrol", "purpose": "p", "key": old, "volumes": [{"position": "34.5500, 71.0200", "window": WINDOW}]}
        with pytest.raises(StalePicture, match="restarted") as refused:
            again.propose(ALFA, body)
        assert again.propose(ALFA, {**body, "key": refused.value.details["key"]})["affected"] == ["bravo"]
