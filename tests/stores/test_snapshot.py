"""A node starts from its snapshot and the log after it, with the picture a whole replay gives; a snapshot
that is not signed by the store's key, not of this log or not of this code is never used."""

from __future__ import annotations

import logging
import pickle
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from deconfliction import snapshot as snapshots
from deconfliction.cli import app
from deconfliction.clock import ManualClock
from deconfliction.model import Role
from deconfliction.service import ROOT, Caller, Service
from deconfliction.stores import SQLiteStore, open_store
from tests.stores.test_store import BLUE, T0, _build

RED = Caller("red", Role.LIAISON)
BUILT = T0 + timedelta(minutes=3)  # the clock as _build leaves it
LATER = T0 + timedelta(minutes=10)


def _after_the_snapshot(service: Service) -> str:
    """Writes of every kind after the snapshot: the tail a start from it must replay. The token made."""
    service.clock.advance_to(LATER)  # type: ignore[attr-defined]
    service.report(BLUE, {"asset": "u1", "position": "34.55, 71.55"})  # supersedes a report the snapshot holds
    service.withdraw_position(BLUE, "s1")
    service.create_party(ROOT, {"id": "red", "name": "Red"})
    service.register_asset(RED, {"id": "r1", "kind": "unit", "position": "34.52, 71.52"})
    service.declare_zone(
        RED,
        {
            "id": "rz",
            "kind": "no_fire_area",
            "area": {"type": "Polygon", "coordinates": [[[71.3, 34.3], [71.4, 34.3], [71.4, 34.4], [71.3, 34.3]]]},
        },
    )
    service.check(RED, {"position": "34.5, 71.55", "kind": "fires"})  # a record, not a picture change
    return service.create_token(ROOT, "red", "viewer")


def _seen(service: Service) -> Any:
    """What users see of a picture: every list for each party, its version, and a check's answer."""
    answer = service.check(BLUE, {"position": "34.5, 71.55", "kind": "fires"})
    parties = [c for c in (BLUE, RED) if c.party in service.picture.parties]
    return (
        service.summary(),
        [(service.assets(c), service.zones(c), service.aors(c)) for c in parties],
        service.picture.version,
        {k: v for k, v in answer.items() if k != "record"},
    )


def test_a_start_from_the_snapshot_and_the_log_after_it_has_the_picture_a_whole_replay_has(fresh_db: str, tmp_path: Path) -> None:
    path = tmp_path / "node.snapshot"
    first = Service(open_store(fresh_db), ManualClock(T0))
    _build(first)
    made = first.write_snapshot(path)
    token = _after_the_snapshot(first)
    first.store.close()

    from_snapshot = Service(open_store(fresh_db), ManualClock(LATER), snapshot=path)
    assert from_snapshot.from_snapshot == made.size > 0
    assert from_snapshot.authenticate(token) == Caller("red", Role.VIEWER)  # a token made after the snapshot
    seen = _seen(from_snapshot)
    from_snapshot.store.close()  # one node at a time on the store: each check is recorded
    replayed = Service(open_store(fresh_db), ManualClock(LATER))
    assert replayed.from_snapshot == 0
    assert _seen(replayed) == seen
    # As after a whole replay, the changes before the restart are not known: a picture key from then is refused.
    assert from_snapshot.picture.changes.horizon == replayed.picture.changes.horizon == replayed.picture.version
    replayed.store.close()


def _snapshot_store(tmp_path: Path) -> tuple[Path, Path, Any]:
    db, path = tmp_path / "p.db", tmp_path / "p.snapshot"
    service = Service(SQLiteStore(db), ManualClock(T0))
    _build(service)
    service.write_snapshot(path)
    seen = _seen(service)
    service.store.close()
    return db, path, seen


def _started(db: Path, path: Path, caplog: pytest.LogCaptureFixture) -> tuple[Service, str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="deconfliction"):
        service = Service(SQLiteStore(db), ManualClock(BUILT), snapshot=path)
    return service, caplog.text


def test_a_snapshot_changed_after_it_was_signed_is_not_used_and_the_whole_log_is_replayed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, path, seen = _snapshot_store(tmp_path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # one bit pattern in the pickled picture
    path.write_bytes(bytes(data))
    service, said = _started(db, path, caplog)
    assert "not the one its signed header names" in said
    assert service.from_snapshot == 0
    assert _seen(service) == seen
    service.store.close()


class _Planted:
    """What a forged snapshot would run as it is unpickled."""

    ran: ClassVar[list[str]] = []

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Planted.ran.append, ("unpickled",))


def test_a_snapshot_the_stores_key_did_not_sign_is_never_unpickled(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Unpickling runs code: a forged file, its header and digest made to match, must be refused before that."""
    db, path, seen = _snapshot_store(tmp_path)
    other = SQLiteStore(tmp_path / "other.db").signing_key()  # a key, but not this store's
    forged = snapshots.Snapshot(10_000, b"\0" * 32, _Planted())
    snapshots.write(path, forged, other)
    service, said = _started(db, path, caplog)
    assert "signature is not the store's signing key's" in said
    assert _Planted.ran == []
    assert service.from_snapshot == 0
    assert _seen(service) == seen
    service.store.close()


def test_a_snapshot_of_another_history_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A copy of the store (same key) that went another way afterwards: the log's root at the snapshot's size differs."""
    db = tmp_path / "p.db"
    service = Service(SQLiteStore(db), ManualClock(T0))
    _build(service)
    service.public_key()  # made now, and copied with the store: the copy signs as the same service
    service.store.close()
    shutil.copy(db, tmp_path / "copy.db")
    shutil.copy(f"{db}.key", tmp_path / "copy.db.key")
    for where, position in ((db, "34.51, 71.51"), (tmp_path / "copy.db", "34.59, 71.59")):
        went_on = Service(SQLiteStore(where), ManualClock(T0 + timedelta(minutes=5)))
        went_on.report(BLUE, {"asset": "u1", "position": position})
        if where == db:
            went_on.write_snapshot(tmp_path / "p.snapshot")
        went_on.store.close()
    service, said = _started(tmp_path / "copy.db", tmp_path / "p.snapshot", caplog)
    assert "are not the ones it was made from" in said
    assert service.from_snapshot == 0
    assert service.assets(BLUE)[0]["position"]["lat"] == 34.59  # the copy's own history
    service.store.close()


def test_a_snapshot_made_by_other_code_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, path, seen = _snapshot_store(tmp_path)
    monkeypatch.setattr(snapshots, "code_fingerprint", lambda: "another version")
    service, said = _started(db, path, caplog)
    assert "made by another version" in said
    assert service.from_snapshot == 0
    assert _seen(service) == seen
    service.store.close()


def test_no_snapshot_yet_is_a_whole_replay_and_says_nothing_alarming(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db, path, seen = _snapshot_store(tmp_path)
    path.unlink()
    service, said = _started(db, path, caplog)
    assert said == ""
    assert service.from_snapshot == 0
    assert _seen(service) == seen
    service.store.close()


def test_the_picture_pickles_without_its_change_log(tmp_path: Path) -> None:
    service = Service(SQLiteStore(tmp_path / "p.db"), ManualClock(T0))
    _build(service)
    assert len(service.picture.changes) > 0
    again = pickle.loads(pickle.dumps(service.picture))
    assert len(again.changes) == 0 and again.changes.horizon == service.picture.version
    assert again.reports == service.picture.reports
    service.store.close()


def test_deconflict_snapshot_writes_one_where_the_node_keeps_it_and_asks_where_for_memory(tmp_path: Path) -> None:
    """Beside a SQLite store (a PostgreSQL node's place: tests/stores/test_postgres.py); a store in memory has none."""
    db = tmp_path / "p.db"
    service = Service(SQLiteStore(db), ManualClock(T0))
    _build(service)
    entries = len(service.store.tree)
    service.store.close()
    result = CliRunner().invoke(app, ["snapshot", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert f"the log's first {entries:,} entries written to {db}.snapshot" in result.output.replace("\n", "")
    assert Service(SQLiteStore(db), snapshot=Path(f"{db}.snapshot")).from_snapshot == entries

    refused = CliRunner().invoke(app, ["snapshot", "--db", ":memory:"])
    assert refused.exit_code != 0
    assert "--to" in refused.output
