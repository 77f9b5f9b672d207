"""When the SQLite store's writes reach the disk, and what a slow or failing disk does to answers and writes.

The disk is held up by holding ``os.fdatasync`` (the one call that syncs the store's WAL) at a gate:
this is how this machine's disk behaves at times (a sync taking up to 0.8 s), made to order.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deconfliction.clock import ManualClock
from deconfliction.errors import StoreError
from deconfliction.model import Event, Role
from deconfliction.service import ROOT, Caller, Service
from deconfliction.stores import SQLiteStore, sqlite

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entry(n: int) -> Event:
    return Event("report.accepted", T0, "blue", {"party": "blue", "asset": f"u{n % 50}", "n": n})


@pytest.fixture
def held_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Every disk sync waits until the returned event is set (at the latest when the test ends)."""
    gate = threading.Event()
    real = os.fdatasync

    def held(fd: int) -> None:
        assert gate.wait(10), "a sync was held for 10 s"
        real(fd)

    monkeypatch.setattr(os, "fdatasync", held)
    yield gate
    gate.set()


def in_thread(call: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def committed(path: Path) -> int:
    """What another connection sees: what a node restarted after a kill would read."""
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def test_a_write_returns_only_once_it_is_on_the_disk(tmp_path: Path, held_disk: threading.Event) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    writer = in_thread(lambda: store.append([entry(1)]))
    writer.join(0.5)
    assert writer.is_alive() and committed(tmp_path / "p.db") == 1  # committed, waiting for its sync
    held_disk.set()
    writer.join(5)
    assert not writer.is_alive()
    store.close()


def test_a_checks_record_is_committed_without_waiting_for_a_held_disk(tmp_path: Path, held_disk: threading.Event) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    writer = in_thread(lambda: store.append([entry(1)]))  # holds the disk's sync
    writer.join(0.2)
    started = time.monotonic()
    seqs = store.append_grouped([entry(2)], synced=False)
    assert time.monotonic() - started < 0.5 and writer.is_alive()
    assert seqs == [2] and committed(tmp_path / "p.db") == 2
    held_disk.set()
    writer.join(5)
    store.close()


def test_a_check_answers_while_the_disk_is_held_and_a_write_waits(tmp_path: Path, held_disk: threading.Event) -> None:
    service = Service(SQLiteStore(tmp_path / "p.db"), ManualClock(T0))
    held_disk.set()
    service.create_party(ROOT, {"id": "blue", "name": "Blue"})
    held_disk.clear()
    write = in_thread(lambda: service.create_party(ROOT, {"id": "red", "name": "Red"}))
    write.join(0.2)
    answer = service.check(Caller("blue", Role.LIAISON), {"position": "34.5, 71.5", "kind": "fires"})
    assert answer["record"] == 3  # recorded, after the write it overtook
    assert write.is_alive() and "red" not in service.picture.parties  # the write waits for the disk
    held_disk.set()
    write.join(5)
    assert "red" in service.picture.parties
    service.store.close()


def test_a_signed_head_waits_until_what_it_covers_is_on_the_disk(tmp_path: Path, held_disk: threading.Event) -> None:
    service = Service(SQLiteStore(tmp_path / "p.db"), ManualClock(T0))
    service.store.append_grouped([entry(1)], synced=False)
    signer = in_thread(service.ledger_head)
    signer.join(0.5)
    assert signer.is_alive()  # the head is not handed out before the disk holds its entries
    held_disk.set()
    signer.join(5)
    assert not signer.is_alive()
    service.store.close()


def test_a_failed_sync_refuses_every_later_write_until_the_node_restarts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    store.append([entry(1)])

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(StoreError, match=r"could not put its writes on the disk.*Input/output error.*since entry 1.*Restart"):
        store.append([entry(2)])
    monkeypatch.undo()  # the disk is well again; the store, which no longer knows what it holds, still refuses
    with pytest.raises(StoreError, match="could not put its writes on the disk"):
        store.append([entry(3)])
    with pytest.raises(StoreError, match="could not put its writes on the disk"):
        store.append_grouped([entry(3)], synced=False)
    store.close()
    restarted = SQLiteStore(tmp_path / "p.db")
    assert restarted.append([entry(3)])[0] in (2, 3)
    restarted.close()


def wal_restarts(db: Path) -> int:
    """How many times the WAL was started over: its header's checkpoint sequence number (sqlite.org/walformat.html)."""
    return int.from_bytes(Path(f"{db}-wal").read_bytes()[12:16], "big")


def test_a_checkpoint_starts_the_wal_over_while_writers_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copied into the database while writers go on, and started over once long, rather than growing for ever:
    SQLite starts a WAL over only when a writer finds it all copied, which steady writers never let happen."""
    monkeypatch.setattr(sqlite, "CHECKPOINT_PAGES", 40)
    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY_S", 3600.0)  # only the checkpoint this test asks for
    store = SQLiteStore(tmp_path / "p.db")
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            store.append_grouped([entry(i) for i in range(n, n + 20)], synced=False)
            n += 20

    writer = in_thread(write)
    time.sleep(0.3)
    before = wal_restarts(tmp_path / "p.db")
    store._checkpoint()
    after = wal_restarts(tmp_path / "p.db")
    stop.set()
    writer.join(5)
    store.close()
    assert after > before


def test_records_committed_within_a_moment_share_one_disk_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks' records, one a millisecond, are synced a moment later, many to one sync rather than one each
    (a sync for every record cost the event loop a third of the engine's time, 2026-12-07)."""
    syncs: list[float] = []
    real = os.fdatasync

    def counted(fd: int) -> None:
        syncs.append(time.monotonic())
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counted)
    store = SQLiteStore(tmp_path / "p.db")
    started = time.monotonic()
    for i in range(100):
        store.append_grouped([entry(i)], synced=False)
        time.sleep(0.001)
    deadline = time.monotonic() + 5
    while store._synced < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    store.close()
    assert store._synced == 100, "every record is on the disk moments later"
    assert len(syncs) <= elapsed / sqlite.SYNC_GATHER_S + 2, f"{len(syncs)} syncs in {elapsed:.2f} s"
