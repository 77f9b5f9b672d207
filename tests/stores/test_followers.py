"""Several nodes (processes) writing to one store: each follows the others, and no write is numbered over another's.

On a SQLite file these are ``deconflict serve --workers N``'s workers, or a command run with ``--db`` while a
server runs; on PostgreSQL, the nodes of a deployment. Two stores opened on one file or database here are two
connections, as two processes' are.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest

from deconfliction.clock import ManualClock
from deconfliction.errors import Behind, NotFound, RateLimited, Unauthenticated
from deconfliction.model import Event
from deconfliction.service import ROOT, Service
from deconfliction.settings import Settings
from deconfliction.stores import open_store
from tests.stores.test_store import BLUE, T0, _build, report


@pytest.fixture
def nodes(fresh_db: str) -> Iterator[tuple[Service, Service]]:
    """Two nodes on one new store."""
    a = Service(open_store(fresh_db), ManualClock(T0))
    b = Service(open_store(fresh_db), ManualClock(T0))
    yield a, b
    a.store.close()
    b.store.close()


def record(n: int) -> Event:
    return Event("check.asked", T0, "blue", {"asker": "blue", "n": n})


def test_a_node_notices_what_another_wrote_and_answers_with_it(nodes: tuple[Service, Service]) -> None:
    a, b = nodes
    b.store.wait_for_writes(0.01)  # type: ignore[attr-defined]  # B listens from here on (PostgreSQL)
    _build(a)
    assert b.store.wait_for_writes(5.0)  # type: ignore[attr-defined]
    assert b.catch_up() == a.store.last_seq()
    assert (b.summary(), b.assets(BLUE), b.zones(BLUE), b.aors(BLUE)) == (
        a.summary(),
        a.assets(BLUE),
        a.zones(BLUE),
        a.aors(BLUE),
    )
    assert b.check(BLUE, {"position": "34.5, 71.53", "kind": "fires"})["status"] == "conflict"
    a.catch_up()
    assert a.store.tree.root() == b.store.tree.root()


def test_a_wait_with_nothing_new_times_out(nodes: tuple[Service, Service]) -> None:
    a, b = nodes
    a.store.append([report("x", 1)])
    b.store.catch_up()  # type: ignore[attr-defined]
    assert not b.store.wait_for_writes(0.05)  # type: ignore[attr-defined]


def test_a_record_is_numbered_after_what_another_node_wrote_not_refused(nodes: tuple[Service, Service]) -> None:
    """A check's record changes nothing in the picture: asked on a node that has not read the other's last
    write, it is written after it, and the node reads that write on the way (for its picture, at the catch-up)."""
    a, b = nodes
    assert a.store.append([report("x", 1)]) == [1]
    assert b.store.append_grouped([record(1)], synced=False) == [2]
    assert a.store.append_grouped([record(2)], synced=False) == [3]
    assert [e.data["asset"] for e in b.store.catch_up()] == ["x"]  # type: ignore[attr-defined]
    assert a.store.catch_up() == []  # type: ignore[attr-defined]  # B's record: nothing for the picture
    assert len(a.store.tree) == len(b.store.tree) == 3
    assert a.store.tree.root() == b.store.tree.root()
    assert [e.type for e in a.store.events()] == ["report.accepted", "check.asked", "check.asked"]


def test_a_write_that_changes_the_picture_on_a_node_behind_is_refused_and_changes_nothing(
    nodes: tuple[Service, Service],
) -> None:
    """B has not read A's write: B's report is refused (503 behind), as it would have been validated against a
    picture without A's; caught up, it goes through."""
    a, b = nodes
    assert a.store.append([report("x", 1)]) == [1]
    with pytest.raises(Behind) as refused:
        b.store.append([report("y", 1)])
    assert (refused.value.status, refused.value.retry_after_s) == (503, 1.0)
    assert [e.seq for e in a.store.events()] == [1]
    assert [e.data["asset"] for e in b.store.catch_up()] == ["x"]  # type: ignore[attr-defined]
    assert b.store.append([report("y", 1)]) == [2]
    assert a.store.catch_up()[0].data["asset"] == "y"  # type: ignore[attr-defined]
    assert a.store.tree.root() == b.store.tree.root()


def test_a_record_read_ahead_of_the_picture_holds_the_nodes_next_write_and_snapshot_until_it_catches_up(
    nodes: tuple[Service, Service],
) -> None:
    """B's record read A's report into B's tree; B's picture has not applied it yet, so B's own report waits."""
    a, b = nodes
    a.store.append([report("x", 1)])
    b.store.append_grouped([record(1)], synced=False)
    with pytest.raises(Behind):
        b.store.append([report("y", 1)])
    assert b.store.settled() == 0  # type: ignore[attr-defined]  # a snapshot of B's picture holds no entry yet
    b.store.catch_up()  # type: ignore[attr-defined]
    assert b.store.settled() == 2  # type: ignore[attr-defined]
    assert b.store.append([report("y", 1)]) == [3]


def test_a_write_through_the_service_is_validated_against_the_other_nodes_writes(nodes: tuple[Service, Service]) -> None:
    """The service catches up before it validates a write: B reports a unit A registered a moment ago, unasked."""
    a, b = nodes
    _build(a)
    b.catch_up()
    a.register_asset(BLUE, {"id": "u2", "kind": "unit", "position": "34.5, 71.5"})
    b.clock.advance_to(T0 + timedelta(minutes=5))  # type: ignore[attr-defined]
    assert b.report(BLUE, {"asset": "u2", "position": "34.51, 71.51"})["asset"] == "u2"
    a.withdraw_asset(BLUE, "u2")
    with pytest.raises(NotFound):  # not a report of a unit B still thinks exists
        b.report(BLUE, {"asset": "u2", "position": "34.52, 71.52"})


def test_a_write_refused_as_behind_is_tried_again_caught_up_and_validated_anew(nodes: tuple[Service, Service]) -> None:
    """A writes between B's catching up and B's commit: the store refuses B's write (nothing written), and the
    service tries it again, caught up, rather than hand the caller a 503. Validated anew: B's report of a unit A
    withdrew in that moment is refused for that, not written."""
    a, b = nodes
    _build(a)
    b.catch_up()
    b.clock.advance_to(T0 + timedelta(minutes=5))  # type: ignore[attr-defined]
    commit = b.store.append
    tries: list[int] = []

    def another_node_writes_first(events: Any, *args: Any, **kwargs: Any) -> list[int]:
        tries.append(len(tries))
        if len(tries) == 1:
            a.register_asset(BLUE, {"id": "u2", "kind": "unit", "position": "34.5, 71.5"})
        if len(tries) == 3:
            a.withdraw_asset(BLUE, "u2")
        return commit(events, *args, **kwargs)

    with patch.object(b.store, "append", another_node_writes_first):
        assert b.report(BLUE, {"asset": "u1", "position": "34.51, 71.51"})["asset"] == "u1"
        assert len(tries) == 2  # refused once, then written after A's registration
        assert "u2" in {x["id"] for x in b.assets(BLUE)}
        with pytest.raises(NotFound):  # u2 withdrawn by A between B's catching up and B's commit
            b.report(BLUE, {"asset": "u2", "position": "34.52, 71.52"})
    assert [e.data.get("asset") for e in b.store.events(types=["report.accepted"])][-1] == "u1"


def test_a_token_made_on_one_node_is_taken_at_once_by_another(nodes: tuple[Service, Service]) -> None:
    """Made on A and shown to B before B has followed A's write: B looks in what A wrote before it refuses it."""
    a, b = nodes
    a.create_party(ROOT, {"id": "blue", "name": "Blue"})
    token = a.create_token(ROOT, "blue", "liaison")
    assert b.authenticate(token).party == "blue"
    with pytest.raises(Unauthenticated):
        b.authenticate("dcf_" + "x" * 43)


def test_checks_on_two_nodes_in_turn_are_all_recorded_in_one_log(nodes: tuple[Service, Service]) -> None:
    a, b = nodes
    _build(a)
    b.catch_up()
    records = [(a if i % 2 else b).check(BLUE, {"position": f"34.5, 71.5{i}", "kind": "fires"})["record"] for i in range(10)]
    assert records == sorted(records) and len(set(records)) == 10
    a.catch_up()
    b.catch_up()
    assert a.store.tree.root() == b.store.tree.root()
    assert [e.seq for e in a.store.events(after=records[0] - 1, types=["check.asked"])] == records


def test_a_partys_checks_on_one_node_spend_its_budget_on_every_node(fresh_db: str) -> None:
    """A party's budget of checks is one across the nodes, not one per node (a balancer, or the kernel between
    workers, would otherwise hand it N budgets): each node counts the checks the others' records say it asked."""
    budget = Settings(check_rate_per_min=1, check_burst=3)
    a = Service(open_store(fresh_db), ManualClock(T0), settings=budget)
    b = Service(open_store(fresh_db), ManualClock(T0), settings=budget)
    try:
        _build(a)
        b.catch_up()
        b.check(BLUE, {"position": "34.5, 71.5", "kind": "fires"})
        for i in range(2):
            a.check(BLUE, {"position": f"34.5, 71.5{i}", "kind": "fires"})
        a.catch_up()
        with pytest.raises(RateLimited):  # one on B and two here: its three spent
            a.check(BLUE, {"position": "34.5, 71.53", "kind": "fires"})
        b.catch_up()
        with pytest.raises(RateLimited):  # and the same on B, told by A's two records
            b.check(BLUE, {"position": "34.5, 71.53", "kind": "fires"})
        b.clock.advance_to(T0 + timedelta(minutes=1))  # type: ignore[attr-defined]
        assert b.check(BLUE, {"position": "34.5, 71.53", "kind": "fires"})["status"]  # refilled: one a minute
    finally:
        a.store.close()
        b.store.close()


def test_a_proposal_refused_as_behind_and_tried_again_spends_one_of_the_partys_budget(fresh_db: str) -> None:
    """The refused try wrote nothing, so what it spent is given back: the try that goes through spends it anew."""
    budget = Settings(check_rate_per_min=1, check_burst=2)
    a = Service(open_store(fresh_db), ManualClock(T0), settings=budget)
    b = Service(open_store(fresh_db), ManualClock(T0), settings=budget)
    window = [(T0 + timedelta(hours=1)).isoformat(), (T0 + timedelta(hours=2)).isoformat()]

    def proposal(n: int) -> dict[str, Any]:
        volume = {"position": f"34.2, 71.2{n}", "radius_m": 50, "window": window}
        key = b.look(BLUE, "71.1,34.1,71.4,34.3", kind="fires")["picture_key"]
        return {"id": f"f{n}", "kind": "fires", "purpose": "registration fire", "volumes": [volume], "key": key}

    try:
        _build(a)
        b.catch_up()
        commit, tries = b.store.append, []

        def another_node_writes_first(events: Any, *args: Any, **kwargs: Any) -> list[int]:
            tries.append(len(tries))
            if len(tries) == 1:  # far from the proposal: its key still holds
                a.register_asset(BLUE, {"id": "u9", "kind": "unit", "position": "34.9, 71.9"})
            return commit(events, *args, **kwargs)

        with patch.object(b.store, "append", another_node_writes_first):
            assert b.propose(BLUE, proposal(1))["id"] == "f1"
        assert len(tries) == 2  # refused once, then written
        assert b.propose(BLUE, proposal(2))["id"] == "f2"  # the second of its two
        with pytest.raises(RateLimited):
            b.propose(BLUE, proposal(3))
    finally:
        a.store.close()
        b.store.close()
