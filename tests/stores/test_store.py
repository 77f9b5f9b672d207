"""Every store keeps the log in order, durably, and rebuilds the same picture on restart."""

from __future__ import annotations

import gc
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deconfliction.clock import ManualClock
from deconfliction.errors import StoreError
from deconfliction.ledger.merkle import MerkleTree
from deconfliction.model import Event, Role
from deconfliction.service import ROOT, Caller, Service
from deconfliction.stores import MemoryStore, SQLiteStore, Store, open_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BLUE = Caller("blue", Role.LIAISON)


def report(asset: str, n: int) -> Event:
    return Event("report.accepted", T0, "blue", {"party": "blue", "asset": asset, "n": n})


def test_store_append_returns_increasing_sequence_numbers(store: Store) -> None:
    first = store.append([report("a", 1), report("a", 2)])
    second = store.append([report("b", 1)])
    assert first == [1, 2] and second == [3]
    assert [e.seq for e in store.events()] == [1, 2, 3]


def test_store_load_gives_each_assets_newest_report_last_and_no_record(store: Store) -> None:
    store.append([report("a", 1), report("b", 1), report("a", 2), Event("check.asked", T0, "blue", {"x": 1})])
    loaded = [(e.data["asset"], e.data["n"]) for e in store.load()]
    assert loaded[-2:] == [("b", 1), ("a", 2)]
    assert set(loaded) <= {("a", 1), ("b", 1), ("a", 2)}, "a store may give a superseded report, never a record"


def test_store_events_filter_by_type_and_position(store: Store) -> None:
    store.append([report("a", 1), Event("check.asked", T0, "blue", {}), report("a", 2)])
    assert [e.seq for e in store.events(types=["check.asked"])] == [2]
    assert [e.seq for e in store.events(after=1, limit=1)] == [2]


def test_the_record_tree_reads_old_blocks_from_the_store_and_proves_as_a_whole_tree_would(store: Store) -> None:
    """A store's tree keeps only blocks of 1,024 entries and up in memory: a proof about an entry in an
    old block, a past root, and the tree rebuilt on opening must all be what a tree holding every hash gives."""
    whole = MerkleTree()
    for chunk in range(5):
        store.append([report(f"a{chunk}", n) for n in range(500)])
    for row in store.rows(0, store.last_seq()):
        whole.append(row.leaf)
    size = len(whole)
    assert len(store.tree) == size == 2500
    for index in (0, 777, 1023, 1024, 2047, 2048, 2499):
        assert store.tree.leaf(index) == whole.leaf(index)
        assert store.tree.inclusion_proof(index, size) == whole.inclusion_proof(index, size), index
        past = max(index + 1, 2100)  # a proof against an older head
        assert store.tree.inclusion_proof(index, past) == whole.inclusion_proof(index, past), index
    for first in (1, 1000, 1024, 1500, 2048):
        assert store.tree.root(first) == whole.root(first)
        assert store.tree.consistency_proof(first, size) == whole.consistency_proof(first, size), first


def test_store_refuses_data_json_cannot_hold(store: Store) -> None:
    with pytest.raises(ValueError):
        store.append([Event("x", T0, None, {"bad": float("nan")})])
    assert store.events() == []


def _build(service: Service) -> None:
    service.create_party(ROOT, {"id": "blue", "name": "Blue"})
    service.put_territory(ROOT, "blue", {"type": "Polygon", "coordinates": [[[71, 34], [72, 34], [72, 35], [71, 35], [71, 34]]]})
    service.register_asset(BLUE, {"id": "u1", "kind": "unit", "position": "34.5, 71.5"})
    service.register_asset(BLUE, {"id": "s1", "kind": "site", "position": "34.6, 71.6", "disclosure": "hidden"})
    service.register_asset(BLUE, {"id": "gone", "kind": "site", "position": "34.7, 71.7"})
    service.withdraw_asset(BLUE, "gone")
    service.declare_zone(
        BLUE,
        {
            "id": "z",
            "kind": "no_fire_area",
            "area": {"type": "Polygon", "coordinates": [[[71.1, 34.1], [71.2, 34.1], [71.2, 34.2], [71.1, 34.1]]]},
        },
    )
    service.declare_aor(
        BLUE,
        {"id": "a", "area": {"type": "Polygon", "coordinates": [[[71, 34], [72, 34], [72, 35], [71, 34]]]}, "freshness_s": 3600},
    )
    service.confirm_aor(BLUE, "a")
    for minute in range(1, 4):
        service.clock.advance_to(T0 + timedelta(minutes=minute))  # type: ignore[attr-defined]
        service.report(BLUE, {"asset": "u1", "position": f"34.5, 71.5{minute}"})


def test_restart_restores_the_same_picture(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    first = Service(SQLiteStore(path), ManualClock(T0))
    _build(first)
    before = (first.summary(), first.assets(BLUE), first.zones(BLUE), first.aors(BLUE))
    answer = first.check(BLUE, {"position": "34.5, 71.53", "kind": "fires"})
    first.store.close()

    second = Service(SQLiteStore(path), ManualClock(T0 + timedelta(minutes=3)))
    assert (second.summary(), second.assets(BLUE), second.zones(BLUE), second.aors(BLUE)) == before
    again = second.check(BLUE, {"position": "34.5, 71.53", "kind": "fires"})
    assert {k: v for k, v in again.items() if k != "record"} == {k: v for k, v in answer.items() if k != "record"}


def test_restart_restores_tokens(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    service = Service(SQLiteStore(path), ManualClock(T0))
    service.create_party(ROOT, {"id": "blue", "name": "Blue"})
    token = service.create_token(ROOT, "blue", "viewer")
    service.store.close()
    assert Service(SQLiteStore(path)).authenticate(token) == Caller("blue", Role.VIEWER)


class _WatchedLog(MemoryStore):
    """A store that notes whether the collector runs as each event is read, and may break at the log's end."""

    def __init__(self, breaks: bool = False) -> None:
        super().__init__()
        self.append([Event("party.created", T0, None, {"id": "blue", "name": "Blue", "stale_after_s": 1800.0})])
        self.breaks = breaks
        self.collector_on: list[bool] = []

    def load(self, after: int = 0) -> Iterator[Event]:
        for event in super().load(after):
            self.collector_on.append(gc.isenabled())
            yield event
        if self.breaks:
            raise StoreError("the disk went away")


@pytest.mark.parametrize("enabled", [True, False])
def test_a_rebuild_holds_the_garbage_collector_off_and_leaves_it_as_it_was(enabled: bool) -> None:
    """The rebuild turns the cyclic collector off (it would walk the growing heap for nothing); whether
    the rebuild ends or fails, the collector is as the process had it."""
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        store = _WatchedLog()
        Service(store)
        assert store.collector_on == [False] and gc.isenabled() is enabled
        with pytest.raises(StoreError):
            Service(_WatchedLog(breaks=True))
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


_FREEZING = """
import gc
from deconfliction.service import Service
from deconfliction.stores import MemoryStore
Service(MemoryStore())
assert gc.get_freeze_count() == 0, "a rebuild left objects frozen: they would never be collected"
served = [[i] for i in range(1000)]  # a server's picture, frozen as `deconflict serve` freezes it
gc.freeze()
frozen = gc.get_freeze_count()
Service(MemoryStore())
assert gc.get_freeze_count() == frozen, "a rebuild unfroze the server's picture"
"""


def test_a_rebuild_leaves_what_a_server_froze_frozen_and_freezes_nothing_itself() -> None:
    """A start moves what it made to the collector's oldest generation through the permanent one and
    out again; an as-of picture rebuilt while a server serves must not hand the server's frozen
    picture back to the collector (its pauses would grow with the picture again). In a fresh
    interpreter: the freezing is process-wide, and other tests' threads would race it here."""
    done = subprocess.run([sys.executable, "-c", _FREEZING], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_sqlite_errors_become_store_errors(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    store._db.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError) as caught:
        store.append([report("a", 1)])
    assert isinstance(caught.value.__cause__, sqlite3.Error)


def test_a_failed_write_changes_nothing_in_the_picture(tmp_path: Path) -> None:
    service = Service(SQLiteStore(tmp_path / "p.db"), ManualClock(T0))
    service.create_party(ROOT, {"id": "blue", "name": "Blue"})
    service.register_asset(BLUE, {"id": "u1", "kind": "unit"})
    version = service.picture.version
    service.store._db.execute("PRAGMA query_only = ON")  # type: ignore[attr-defined]
    with pytest.raises(StoreError):
        service.report(BLUE, {"asset": "u1", "position": "34.5, 71.5"})
    assert service.picture.version == version and service.picture.reports == {}


def test_open_store_unreadable_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        open_store(tmp_path / "missing-dir" / "p.db")


def test_grouped_appends_from_many_threads_all_land_once_in_order(store: Store) -> None:
    import threading

    results: dict[int, list[int]] = {}

    def worker(n: int) -> None:
        results[n] = store.append_grouped([report(f"t{n}", 1), report(f"t{n}", 2)])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    seqs = sorted(s for pair in results.values() for s in pair)
    assert seqs == list(range(1, 33))
    assert all(b == a + 1 for a, b in results.values())  # each caller's events stay together
    logged = {e.seq: e.data["asset"] for e in store.events(limit=100)}
    assert all(logged[a] == logged[b] == f"t{n}" for n, (a, b) in results.items())


def test_a_record_appended_without_waiting_for_its_sync_is_committed_and_read_back(store: Store) -> None:
    """What a check's record takes (PostgreSQL: synchronous_commit off for its transaction)."""
    assert store.append_grouped([report("a", 1)], synced=False) == [1]
    assert store.append([report("b", 1)]) == [2]
    assert [(e.seq, e.data["asset"]) for e in store.events()] == [(1, "a"), (2, "b")]


def test_grouped_append_failure_reaches_every_caller_in_the_batch() -> None:
    from deconfliction.stores.base import GroupCommit

    def broken(events: object, synced: bool) -> list[int]:
        raise StoreError("disk full")

    with pytest.raises(StoreError, match="disk full"):
        GroupCommit(broken).submit([report("a", 1)])


def _ask_in_one_turn(store: Store, callers: int, synced: bool = False) -> list[list[int]]:
    """``callers`` appends of two events each, asked in one turn of an event loop (as a turn's checks ask for their
    records); each caller's sequence numbers."""
    import asyncio

    async def all_at_once() -> list[list[int]]:
        asked = [store.append_grouped_async([report(f"t{n}", 1), report(f"t{n}", 2)], synced) for n in range(callers)]
        return list(await asyncio.gather(*asked))

    return asyncio.run(all_at_once())


def test_records_asked_in_one_turn_of_the_event_loop_land_in_the_order_asked(store: Store) -> None:
    assert _ask_in_one_turn(store, 16) == [[2 * n + 1, 2 * n + 2] for n in range(16)]
    logged = [(e.seq, e.data["asset"]) for e in store.events(limit=100)]
    assert logged == [(2 * n + i, f"t{n}") for n in range(16) for i in (1, 2)]
    assert _ask_in_one_turn(store, 3, synced=True)[2] == [37, 38], "an append that waits for its sync is not held back"


def test_records_asked_in_one_turn_share_one_write_on_the_loops_thread() -> None:
    import asyncio

    from deconfliction.stores.base import GroupCommit

    written: list[tuple[str, int]] = []

    def now(events: object) -> list[int]:
        written.append(("on the loop", len(events)))  # type: ignore[arg-type]
        return list(range(1, len(events) + 1))  # type: ignore[arg-type]

    def by_the_writer(events: object, synced: bool) -> list[int]:
        written.append(("by the writer", len(events)))  # type: ignore[arg-type]
        return list(range(1, len(events) + 1))  # type: ignore[arg-type]

    async def turn(group: GroupCommit) -> list[list[int]]:
        return list(await asyncio.gather(*(group.submit_async([report(f"t{n}", 1)], synced=False) for n in range(8))))

    assert asyncio.run(turn(GroupCommit(by_the_writer, now))) == [[n] for n in range(1, 9)]
    assert asyncio.run(turn(GroupCommit(by_the_writer, lambda events: None))) == [[n] for n in range(1, 9)]
    assert written == [("on the loop", 8), ("by the writer", 8)], "one write a turn; the writer's when the loop cannot"


def test_a_failed_write_of_a_turns_records_reaches_every_caller_and_a_cancelled_one_is_left_out() -> None:
    import asyncio

    from deconfliction.stores.base import GroupCommit

    def broken(events: object) -> list[int]:
        raise StoreError("disk full")

    async def turn(group: GroupCommit) -> list[object]:
        asked = (group.submit_async([report("a", n)], False) for n in range(3))
        return list(await asyncio.gather(*asked, return_exceptions=True))

    failed = asyncio.run(turn(GroupCommit(lambda events, synced: [], broken)))
    assert [str(e) for e in failed] == ["disk full"] * 3

    async def one_gives_up(group: GroupCommit) -> list[object]:
        asked = [asyncio.ensure_future(group.submit_async([report("a", n)], False)) for n in range(3)]
        await asyncio.sleep(0)  # each has asked; the write is made at the end of the next turn
        asked[1].cancel()
        return list(await asyncio.gather(*asked, return_exceptions=True))

    answers = asyncio.run(one_gives_up(GroupCommit(lambda events, synced: [], lambda events: [1, 2, 3])))
    assert answers[0] == [1] and isinstance(answers[1], asyncio.CancelledError) and answers[2] == [3]


def test_a_turns_write_stopped_before_it_ran_cancels_its_callers_and_keeps_nothing_gathered() -> None:
    """As when the loop stops between a check asking for its record and the end of the turn: nothing was written."""
    import asyncio

    from deconfliction.stores.base import GroupCommit

    group = GroupCommit(lambda events, synced: [], lambda events: [1])

    async def stopped() -> object:
        asked = asyncio.ensure_future(group.submit_async([report("a", 1)], False))
        await asyncio.sleep(0)  # it has asked; the turn's write is due
        for flush in list(group._flushes):
            flush.cancel()
        return (await asyncio.gather(asked, return_exceptions=True))[0]

    assert isinstance(asyncio.run(stopped()), asyncio.CancelledError)
    assert group._gathered == {} and group._flushes == set()
