"""The PostgreSQL store behaves as the SQLite one where a user can tell: restarts, the record, the command line.

Each test gets a fresh database on one throwaway PostgreSQL 15 + PostGIS server (tests/conftest.py).
What every store must do is proven on this one too, by the ``store`` fixture in tests/stores/test_store.py.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from deconfliction.bench.servers import PostgisServer
from deconfliction.cli import app
from deconfliction.clock import ManualClock
from deconfliction.errors import StoreError
from deconfliction.model import Event
from deconfliction.service import Service
from deconfliction.stores import MemoryStore, default_snapshot, display_name, open_store
from deconfliction.stores.base import newest_reports
from deconfliction.stores.postgres import PostgresStore, update_latest
from tests.api.test_server_process import Server, call
from tests.stores.test_store import BLUE, T0, _build, report

runner = CliRunner()


def test_a_postgresql_url_opens_the_postgresql_store(postgres_url: str) -> None:
    store = open_store(postgres_url)
    try:
        assert isinstance(store, PostgresStore)
    finally:
        store.close()


def test_restart_on_postgresql_restores_the_same_picture_and_answers(postgres_url: str) -> None:
    first = Service(open_store(postgres_url), ManualClock(T0))
    _build(first)
    before = (first.summary(), first.assets(BLUE), first.zones(BLUE), first.aors(BLUE))
    answer = first.check(BLUE, {"position": "34.5, 71.53", "kind": "fires"})
    head = first.ledger_head()
    first.store.close()

    second = Service(open_store(postgres_url), ManualClock(T0 + timedelta(minutes=3)))
    try:
        assert (second.summary(), second.assets(BLUE), second.zones(BLUE), second.aors(BLUE)) == before
        again = second.check(BLUE, {"position": "34.5, 71.53", "kind": "fires"})
        assert {k: v for k, v in again.items() if k != "record"} == {k: v for k, v in answer.items() if k != "record"}
        assert second.public_key() == head["public_key"], "the signing key is kept in the database"
        assert second.ledger_heads()[0]["root_hash"] == head["root_hash"]
    finally:
        second.store.close()


def test_a_node_that_starts_while_another_writes_applies_every_entry_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B's store opens (its tree holds the log so far), A writes on, then B rebuilds its picture: B reads up to
    its tree's size and catches up on the rest, so no entry is applied twice (an activity's step twice would not do)."""
    applied: list[int] = []
    apply = Service._apply
    monkeypatch.setattr(Service, "_apply", lambda self, event: (applied.append(event.seq), apply(self, event))[-1])
    a = Service(open_store(postgres_url), ManualClock(T0))
    b_store = open_store(postgres_url)
    try:
        _build(a)
        applied.clear()
        b = Service(b_store, ManualClock(T0 + timedelta(minutes=3)))
        assert b.catch_up() == a.store.last_seq()
        assert len(applied) == len(set(applied)), "an entry was applied twice"
        assert (b.summary(), b.assets(BLUE), b.zones(BLUE), b.aors(BLUE)) == (
            a.summary(),
            a.assets(BLUE),
            a.zones(BLUE),
            a.aors(BLUE),
        )
    finally:
        a.store.close()
        b_store.close()


def test_an_unreachable_database_is_a_store_error_without_the_password() -> None:
    url = "postgresql://deconfliction:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(StoreError) as refused:
        open_store(url)
    assert "s3cret-pw" not in str(refused.value) and "127.0.0.1:1/nowhere" in str(refused.value)
    assert display_name(url).startswith("postgresql://deconfliction:***@127.0.0.1:1/")


def test_the_command_line_runs_on_postgresql_and_the_record_verifies(postgres_url: str) -> None:
    made = runner.invoke(app, ["init", "--db", postgres_url])
    assert made.exit_code == 0, made.stderr
    assert json.loads(made.stdout)["admin_token"]
    again = runner.invoke(app, ["init", "--db", postgres_url])
    assert again.exit_code == 2 and "initialised already" in again.stderr and "***" in again.stderr
    for args in (["party", "create", "blue", "Blue"], ["readback", "34.5, 71.53"]):
        done = runner.invoke(app, [*args, "--db", postgres_url])
        assert done.exit_code == 0, done.stderr
    store = open_store(postgres_url)
    try:
        store.append([Event("check.asked", T0, "blue", {"asker": "blue", "query": {}, "answer": {}, "full": {}})])
        Service(store).ledger_head()
    finally:
        store.close()
    verified = runner.invoke(app, ["ledger", "verify", "--db", postgres_url])
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True


def _blue_with_a_post(server: Server, admin: str) -> str:
    """Party blue with one site placed, through ``server``; blue's liaison token."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        call(client, "POST", "/v1/parties", admin, json={"id": "blue", "name": "Blue"})
        liaison: str = call(client, "POST", "/v1/parties/blue/tokens", admin, json={"role": "liaison"})["token"]
        call(client, "POST", "/v1/assets", liaison, json={"id": "post", "kind": "site", "position": "34.55, 71.02"})
    return liaison


def _assets(server: Server, token: str) -> list[tuple[str, str, float]]:
    """(party, id, latitude) of every asset ``token`` sees, through ``server``."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        return [(a["party"], a["id"], a["position"]["lat"]) for a in call(client, "GET", "/v1/assets", token)]


def test_the_server_serves_from_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """``deconflict serve --db postgresql://...``: answers, and keeps what it acknowledged across a kill."""
    admin = json.loads(runner.invoke(app, ["init", "--db", postgres_url]).stdout)["admin_token"]
    with Server(tmp_path / "unused.db", tmp_path / "server.log", db_url=postgres_url) as server:
        liaison = _blue_with_a_post(server, admin)
        server.kill()
        server.start()
        assert _assets(server, liaison) == [("blue", "post", 34.55)]


def test_a_postgresql_node_keeps_its_snapshot_in_the_users_state_folder(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --snapshot, a node on PostgreSQL writes its snapshot as it stops under $XDG_STATE_HOME, named after
    the database (nodes share the database, not a disk), and starts from it the next time."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    kept = default_snapshot(postgres_url)
    assert kept is not None and kept.parent == state / "deconfliction"
    assert kept.name.endswith(f"-{postgres_url.rsplit('/', 1)[1]}.snapshot") and "***" not in kept.name
    admin = json.loads(runner.invoke(app, ["init", "--db", postgres_url]).stdout)["admin_token"]
    settings = {"XDG_STATE_HOME": str(state)}
    with Server(tmp_path / "unused.db", tmp_path / "server.log", db_url=postgres_url, settings=settings) as server:
        liaison = _blue_with_a_post(server, admin)
        server.stop()
        assert kept.exists(), server.log.read_text()
        server.start()
        assert f"picture from the snapshot at {kept}" in server.log.read_text()
        assert _assets(server, liaison) == [("blue", "post", 34.55)]


def test_two_servers_on_one_database_see_each_others_writes(postgres_url: str, tmp_path: Path) -> None:
    """A write acknowledged by node A is in node B's answers shortly after, without B being asked to look."""
    admin = json.loads(runner.invoke(app, ["init", "--db", postgres_url]).stdout)["admin_token"]
    with (
        Server(tmp_path / "a.db", tmp_path / "a.log", db_url=postgres_url) as a,
        Server(tmp_path / "b.db", tmp_path / "b.log", db_url=postgres_url) as b,
        httpx.Client(base_url=a.url, timeout=10) as on_a,
        httpx.Client(base_url=b.url, timeout=10) as on_b,
    ):
        call(on_a, "POST", "/v1/parties", admin, json={"id": "blue", "name": "Blue"})
        liaison = call(on_a, "POST", "/v1/parties/blue/tokens", admin, json={"role": "liaison"})["token"]
        call(on_a, "POST", "/v1/assets", liaison, json={"id": "post", "kind": "site", "position": "34.55, 71.02"})
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            seen = on_b.get("/v1/assets", headers={"Authorization": f"Bearer {liaison}"})
            if seen.status_code == 200 and seen.json():
                break
            time.sleep(0.02)
        assert [x["id"] for x in call(on_b, "GET", "/v1/assets", liaison)] == ["post"]
        answer = call(on_b, "POST", "/v1/checks", liaison, json={"position": "34.55, 71.02", "kind": "ground"})
        assert answer["status"] == "conflict"
        # And back: B's write (its check's record) reaches A's record.
        size = call(on_b, "GET", "/v1/ledger/head", liaison)["tree_size"]
        deadline = time.monotonic() + 5.0
        while call(on_a, "GET", "/v1/ledger/head", liaison)["tree_size"] < size and time.monotonic() < deadline:
            time.sleep(0.05)
        assert call(on_a, "GET", "/v1/ledger/head", liaison)["tree_size"] >= size


def test_while_the_database_is_away_checks_answer_from_memory_and_say_so() -> None:
    """The database stops under a running node: checks still answer, frozen and unrecorded, and an AOR whose
    promise runs out meanwhile makes its area unknown, never clear; writes are refused; when the database is
    back the node carries on by itself."""
    with PostgisServer(settings={"shared_buffers": "32MB", "max_wal_size": "256MB"}) as pg:
        clock = ManualClock(T0)
        service = Service(open_store(pg.create_database("away")), clock)
        try:
            _build(service)
            quiet = {"position": "34.3, 71.9", "kind": "ground"}  # inside blue's AOR, far from everything
            assert service.check(BLUE, quiet)["status"] == "clear"
            pg.stop()
            clock.advance_to(T0 + timedelta(minutes=10))
            frozen = service.check(BLUE, quiet)
            assert (frozen["status"], frozen["record"]) == ("clear", None)
            assert frozen["frozen"]["since"] == (T0 + timedelta(minutes=10)).isoformat()
            assert "not recorded" in frozen["frozen"]["reason"]
            with pytest.raises(StoreError):
                service.register_asset(BLUE, {"id": "new", "kind": "site", "position": "34.3, 71.8"})
            assert [a["id"] for a in service.assets(BLUE)] == ["u1", "s1"], "a refused write changes nothing"
            clock.advance_to(T0 + timedelta(hours=2))  # the AOR's hour has run out
            lapsed = service.check(BLUE, quiet)
            assert (lapsed["status"], lapsed["record"]) == ("unknown", None)
            assert lapsed["frozen"]["since"] == frozen["frozen"]["since"]
            pg.start()
            service.register_asset(BLUE, {"id": "new", "kind": "site", "position": "34.3, 71.8"})
            back = service.check(BLUE, quiet)
            assert isinstance(back["record"], int) and "frozen" not in back
        finally:
            service.store.close()


def test_a_database_that_lost_acknowledged_writes_is_not_written_over(postgres_url: str) -> None:
    """As after a failover to a standby that was behind: the node refuses to number over entries it has seen."""
    store = open_store(postgres_url)
    try:
        store.append([report("x", 1), report("x", 2)])
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute("DELETE FROM events WHERE seq = 2")
        with pytest.raises(StoreError, match="lost acknowledged writes"):
            store.append([report("x", 3)])
        assert store.last_seq() == 1
    finally:
        store.close()


# ---------------------------------------------------------------- where things are, in PostGIS types


def _sql(url: str, query: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as db:
        return db.execute(query, args).fetchall()  # type: ignore[arg-type]


def test_the_database_holds_where_things_are_in_postgis_types(postgres_url: str) -> None:
    """A GIS client reading the database finds every asset's current position, and the zones, in EPSG:4326."""
    service = Service(open_store(postgres_url), ManualClock(T0))
    try:
        _build(service)  # u1 moved three times; "gone" was registered, then withdrawn
    finally:
        service.store.close()
    positions = _sql(postgres_url, "SELECT subject, ST_Y(geom), ST_X(geom), ST_SRID(geom) FROM latest ORDER BY subject")
    assert positions == [("blue/s1", 34.6, 71.6, 4326), ("blue/u1", 34.5, 71.53, 4326)]
    (zone,) = _sql(postgres_url, "SELECT ST_AsText(geom) FROM events WHERE type = 'zone.declared'")
    assert zone == ("POLYGON((71.1 34.1,71.2 34.1,71.2 34.2,71.1 34.1))",)
    box = "ST_MakeEnvelope(71.55, 34.55, 71.65, 34.65, 4326)"
    inside = f"SELECT DISTINCT subject FROM events WHERE geom && {box} AND subject IS NOT NULL"
    assert _sql(postgres_url, inside) == [("blue/s1",)]
    with psycopg.connect(postgres_url) as db:
        db.execute("SET enable_seqscan = off")  # a few rows: without this the planner would rightly scan them
        plan = "\n".join(row[0] for row in db.execute(f"EXPLAIN {inside}").fetchall())
    assert "events_geom" in plan, plan


def _latest_through(url: str) -> int:
    return int(str(_sql(url, "SELECT value FROM meta WHERE key = 'latest_through'")[0][0]))


def _wait_for_latest(url: str, last: int) -> None:
    deadline = time.monotonic() + 10
    while _latest_through(url) < last:
        assert time.monotonic() < deadline, "the keeper did not bring latest up to the log"
        time.sleep(0.02)


@pytest.mark.parametrize("behind_from", [0, 1, 2], ids=["empty", "before-the-last-moves", "at-the-first-move"])
def test_a_start_with_latest_behind_the_log_loses_no_position_and_brings_it_up(postgres_url: str, behind_from: int) -> None:
    """A node killed after its commits and before its keeper ran leaves ``latest`` and its mark behind the log:
    the next start still has every asset where its newest report put it, and brings ``latest`` up to the log."""
    made = Service(open_store(postgres_url), ManualClock(T0))
    _build(made)  # u1's three moves are the last three entries
    before = (made.summary(), made.assets(BLUE), made.zones(BLUE), made.aors(BLUE))
    last = made.store.last_seq()
    made.store.close()
    assert _latest_through(postgres_url) == last, "a stopping node brings latest up to its last write"
    kept = _sql(postgres_url, "SELECT subject, seq, ST_AsText(geom) FROM latest ORDER BY subject")
    mark = {0: 0, 1: last - 3, 2: last - 2}[behind_from]
    with psycopg.connect(postgres_url) as db, db.cursor() as cursor:
        cursor.execute("DELETE FROM latest")
        if mark:
            update_latest(cursor, 1, mark)
        cursor.execute("UPDATE meta SET value = %s WHERE key = 'latest_through'", (str(mark),))

    again = Service(open_store(postgres_url), ManualClock(T0))
    try:
        assert (again.summary(), again.assets(BLUE), again.zones(BLUE), again.aors(BLUE)) == before
        _wait_for_latest(postgres_url, last)
        assert _sql(postgres_url, "SELECT subject, seq, ST_AsText(geom) FROM latest ORDER BY subject") == kept
    finally:
        again.store.close()


def test_two_nodes_writing_in_turn_leave_latest_as_the_log_says(postgres_url: str) -> None:
    """Each node's keeper brings ``latest`` up after its own commits, over what the other's did."""
    nodes = [open_store(postgres_url), open_store(postgres_url)]
    try:
        for n in range(60):
            node = nodes[n % 2]
            node.catch_up()  # type: ignore[attr-defined]
            node.append([report(f"a{n % 7}", n), report(f"b{n % 3}", n)])
        newest = newest_reports(nodes[0].rows(0, nodes[0].last_seq()))
    finally:
        for node in nodes:
            node.close()
    assert _latest_through(postgres_url) == 120
    assert dict(_sql(postgres_url, "SELECT subject, seq FROM latest")) == newest


def test_the_history_of_an_area_reads_only_the_assets_ever_there(postgres_url: str) -> None:
    service = Service(open_store(postgres_url), ManualClock(T0))
    try:
        _build(service)
        everything = list(service.store.history(service.store.last_seq()))
        near_s1 = list(service.store.history(service.store.last_seq(), (71.55, 34.55, 71.65, 34.65)))
    finally:
        service.store.close()
    subjects = {e.data.get("asset") or e.data.get("id") for e in near_s1 if e.type.startswith(("asset.", "report."))}
    assert subjects == {"s1"}, "u1 and the withdrawn site were never in the area"
    assert {e.type for e in near_s1} >= {"party.created", "territory.loaded", "zone.declared", "aor.declared", "aor.confirmed"}
    assert [e.seq for e in near_s1] == sorted(e.seq for e in near_s1)
    assert len([e for e in everything if e.type == "report.accepted"]) == 6  # the full history keeps every report


FIRST_POSTGRES_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (seq BIGINT PRIMARY KEY, type TEXT NOT NULL, time TEXT NOT NULL, party TEXT, subject TEXT,
                     data TEXT NOT NULL, sealed TEXT, leaf BYTEA NOT NULL);
CREATE TABLE latest (subject TEXT PRIMARY KEY, seq BIGINT NOT NULL);
CREATE TABLE heads (id BIGSERIAL PRIMARY KEY, tree_size BIGINT NOT NULL, root_hash TEXT NOT NULL,
                    timestamp BIGINT NOT NULL, signature TEXT NOT NULL);
CREATE TABLE signing_key (id INTEGER PRIMARY KEY CHECK (id = 1), pem TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
"""
"""Version 1 as the first PostgreSQL store wrote it: no geometry, a subject only on reports."""


def test_a_first_version_postgresql_store_is_refused_until_migrated_then_has_its_geometry(postgres_url: str) -> None:
    made = Service(MemoryStore(), ManualClock(T0))
    _build(made)
    rows = made.store.rows(0, made.store.last_seq())
    with psycopg.connect(postgres_url) as db:
        db.execute(FIRST_POSTGRES_SCHEMA)
        with db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO events VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(r.seq, r.type, r.time, r.party, r.subject if r.type == "report.accepted" else None, r.data, r.sealed, r.leaf)
                 for r in rows],
            )  # fmt: skip
            cursor.executemany("INSERT INTO latest VALUES (%s, %s)", list(newest_reports(rows).items()))
    with pytest.raises(StoreError, match="deconflict migrate --db"):
        open_store(postgres_url)

    done = runner.invoke(app, ["migrate", "--db", postgres_url])
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {"from": 1, "to": 3}
    assert json.loads(runner.invoke(app, ["migrate", "--db", postgres_url]).stdout) == {"from": 3, "to": 3}

    upgraded = Service(open_store(postgres_url), ManualClock(T0))
    try:
        assert (upgraded.summary(), upgraded.assets(BLUE), upgraded.zones(BLUE)) == (
            made.summary(),
            made.assets(BLUE),
            made.zones(BLUE),
        )
        assert upgraded.store.tree.root() == made.store.tree.root(), "the entries are untouched"
        near_s1 = upgraded.store.history(upgraded.store.last_seq(), (71.55, 34.55, 71.65, 34.65))
        assert {e.data["id"] for e in near_s1 if e.type == "asset.registered"} == {"s1"}
    finally:
        upgraded.store.close()
    assert _sql(postgres_url, "SELECT subject, ST_X(geom) FROM latest ORDER BY subject") == [
        ("blue/s1", 71.6),
        ("blue/u1", 71.53),
    ]


def test_a_version_2_postgresql_store_migrates_with_latest_exact_to_its_last_entry(postgres_url: str) -> None:
    """Version 2 kept ``latest`` in each commit: migrated, its mark is the log's last entry, and the picture is as it was."""
    made = Service(open_store(postgres_url), ManualClock(T0))
    _build(made)
    before = (made.summary(), made.assets(BLUE))
    last = made.store.last_seq()
    made.store.close()
    with psycopg.connect(postgres_url) as db:  # as version 2 left it: no mark
        db.execute("DELETE FROM meta WHERE key = 'latest_through'")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=r"schema version 2.*deconflict migrate --db"):
        open_store(postgres_url)

    done = runner.invoke(app, ["migrate", "--db", postgres_url])
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {"from": 2, "to": 3}
    assert _latest_through(postgres_url) == last
    upgraded = Service(open_store(postgres_url), ManualClock(T0))
    try:
        assert (upgraded.summary(), upgraded.assets(BLUE)) == before
    finally:
        upgraded.store.close()
