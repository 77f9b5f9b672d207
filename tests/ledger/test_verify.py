"""`deconflict ledger verify` as an operator runs it, on a scenario's record and on tampered copies of it.

The record is the project's own scenario (``scenarios/fires-notification.yaml``) played with
``deconflict replay --db``. Each tampering is made on a copy of the store file (and its key) with
plain sqlite3, as someone with access to the file would. A few verifications run as processes
(side by side); the many tamperings run the same command in process, as tests/test_cli.py does,
so that the file stays quick.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from deconfliction.cli import app
from tests.api.test_server_process import Server, clean_env
from tests.conftest import OWN_SCENARIOS
from tests.ledger.rfc9162 import canonical, head_message, mth, sha256

DECONFLICT = str(Path(sys.executable).parent / "deconflict")
SCENARIO = OWN_SCENARIOS / "fires-notification.yaml"
TIMEOUT_S = 30.0


# ---------------------------------------------------------------- the record and what is in it


@dataclass(frozen=True)
class Record:
    db: Path
    entries: int
    head_sizes: list[int]
    public_key: str  # of the key beside the store

    def first_head_covering(self, index: int) -> int:
        return next(k for k, n in enumerate(self.head_sizes) if n > index)


def connect(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, isolation_level=None)


def raw_public_key(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def entry_of(row: tuple[Any, ...]) -> bytes:
    """The bytes of a stored row's entry, as a forger (or auditor) would write them: seq, type, time, party, data."""
    seq, type_, time, party, data = row
    return canonical({"data": json.loads(data), "party": party, "seq": seq, "time": time, "type": type_})


def rows(db: Path) -> list[tuple[Any, ...]]:
    with connect(db) as c:
        return list(c.execute("SELECT seq, type, time, party, data FROM events ORDER BY seq"))


def seq_of(db: Path, type_: str) -> int:
    with connect(db) as c:
        (seq,) = c.execute("SELECT seq FROM events WHERE type = ? ORDER BY seq LIMIT 1", (type_,)).fetchone()
    return int(seq)


def copy_record(source: Path, into: Path, key: bool = True) -> Path:
    into.mkdir()
    for suffix in ("", "-wal", "-shm", *((".key",) if key else ())):
        if Path(f"{source}{suffix}").exists():
            shutil.copy2(f"{source}{suffix}", f"{into / source.name}{suffix}")
    return into / source.name


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Record:
    db = tmp_path_factory.mktemp("record") / "r.db"
    played = subprocess.run(
        [DECONFLICT, "replay", str(SCENARIO), "--db", str(db)], capture_output=True, text=True, env=clean_env(), timeout=TIMEOUT_S
    )
    assert played.returncode == 0, played.stderr
    with connect(db) as c:
        sizes = [int(n) for (n,) in c.execute("SELECT tree_size FROM heads ORDER BY rowid")]
        heads = list(c.execute("SELECT tree_size, root_hash, timestamp, signature FROM heads ORDER BY rowid"))
        leaves = [bytes(leaf) for (leaf,) in c.execute("SELECT leaf FROM events ORDER BY seq")]
    entries = [entry_of(r) for r in rows(db)]
    # what the forger below relies on: the rows' entries are the canonical bytes the leaves hash
    assert leaves == [sha256(b"\x00" + e) for e in entries]
    assert [root for (_, root, _, _) in heads] == [mth(entries[:n]).hex() for n in sizes]
    assert len(sizes) >= 3 and sizes[-1] == len(entries) and sizes == sorted(set(sizes))
    return Record(db, len(entries), sizes, raw_public_key(load_key(Path(f"{db}.key"))))


# ---------------------------------------------------------------- tamperings, each on its own copy

Tamper = Callable[[Path, Record], None]


def alter_check(db: Path, record: Record, fix_leaf: bool = False) -> None:
    """The check's answer rewritten: a conflict that was found becomes clear."""
    seq = seq_of(db, "check.asked")
    with connect(db) as c:
        (data,) = c.execute("SELECT data FROM events WHERE seq = ?", (seq,)).fetchone()
        assert '"status":"conflict"' in data
        c.execute("UPDATE events SET data = ? WHERE seq = ?", (data.replace('"status":"conflict"', '"status":"clear"'), seq))
        if fix_leaf:
            (row,) = [r for r in rows(db) if r[0] == seq]
            c.execute("UPDATE events SET leaf = ? WHERE seq = ?", (sha256(b"\x00" + entry_of(row)), seq))


def swap(db: Path, a: int, b: int, fix_leaves: bool = False) -> None:
    """Entries a and b change places: every column but seq."""
    columns = "type, time, party, subject, data, sealed, leaf"
    with connect(db) as c:
        row_a = c.execute(f"SELECT {columns} FROM events WHERE seq = ?", (a,)).fetchone()
        row_b = c.execute(f"SELECT {columns} FROM events WHERE seq = ?", (b,)).fetchone()
        assignment = ", ".join(f"{name.strip()} = ?" for name in columns.split(","))
        c.execute("BEGIN")
        c.execute(f"UPDATE events SET {assignment} WHERE seq = ?", (*row_b, a))
        c.execute(f"UPDATE events SET {assignment} WHERE seq = ?", (*row_a, b))
        c.execute("COMMIT")
        if fix_leaves:
            for row in rows(db):
                if row[0] in (a, b):
                    c.execute("UPDATE events SET leaf = ? WHERE seq = ?", (sha256(b"\x00" + entry_of(row)), row[0]))


def delete(db: Path, seq: int) -> None:
    with connect(db) as c:
        c.execute("DELETE FROM events WHERE seq = ?", (seq,))


def update_head(db: Path, k: int, **values: str) -> None:
    with connect(db) as c:
        rowid = [r for (r,) in c.execute("SELECT rowid FROM heads ORDER BY rowid")][k]
        for name, value in values.items():
            c.execute(f"UPDATE heads SET {name} = ? WHERE rowid = ?", (value, rowid))


def head_row(db: Path, k: int) -> tuple[Any, ...]:
    with connect(db) as c:
        row: tuple[Any, ...] = list(c.execute("SELECT tree_size, root_hash, timestamp, signature FROM heads ORDER BY rowid"))[k]
    return row


def flip_hex(text: str, at: int) -> str:
    return text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1 :]


def replace_key(db: Path, key: Ed25519PrivateKey | None = None) -> None:
    Path(f"{db}.key").write_bytes(pem(key or Ed25519PrivateKey.generate()))


def forge_and_resign(db: Path, record: Record) -> None:
    """The most careful forger: the check rewritten, its leaf fixed, and every head signed again with a key of its own."""
    alter_check(db, record, fix_leaf=True)
    key = Ed25519PrivateKey.generate()
    entries = [entry_of(r) for r in rows(db)]
    with connect(db) as c:
        for rowid, n, timestamp in list(c.execute("SELECT rowid, tree_size, timestamp FROM heads ORDER BY rowid")):
            root = mth(entries[:n]).hex()
            signature = key.sign(head_message(n, root, timestamp)).hex()
            c.execute("UPDATE heads SET root_hash = ?, signature = ? WHERE rowid = ?", (root, signature, rowid))
    replace_key(db, key)


@dataclass(frozen=True)
class Case:
    tamper: Tamper | None
    problem: Callable[[Record], str]  # a pattern the one problem the verdict names must match
    args: Callable[[Record], list[str]] = lambda record: []
    entries_checked: Callable[[Record], int] | None = None  # the "entries" the verdict reports, where it says


def check_index(r: Record) -> int:
    return seq_of(r.db, "check.asked") - 1


CASES: dict[str, Case] = {
    "an entry's data altered": Case(
        alter_check, lambda r: rf"^entry {check_index(r)} was altered: its bytes no longer hash to the leaf recorded with it$"
    ),
    "an entry's data altered with its leaf hash": Case(
        lambda db, r: alter_check(db, r, fix_leaf=True),
        lambda r: (
            rf"^tree head {r.first_head_covering(check_index(r))} \(size {r.head_sizes[r.first_head_covering(check_index(r))]}\)"
            " does not match the entries"
        ),
        entries_checked=lambda r: r.entries,
    ),
    "the last entry removed": Case(
        lambda db, r: delete(db, r.entries),
        lambda r: (
            rf"^tree head {len(r.head_sizes) - 1} covers {r.entries} entries, the record has {r.entries - 1}: "
            rf"entries from {r.entries - 1} on were removed$"
        ),
        entries_checked=lambda r: r.entries - 1,
    ),
    "a middle entry removed": Case(lambda db, r: delete(db, 8), lambda r: r"^entry 7 is missing \(the next one is 8\)$"),
    "two entries reordered": Case(lambda db, r: swap(db, 10, 11), lambda r: r"^entry 9 (was altered|is out of order)"),
    "a head's root altered": Case(
        lambda db, r: update_head(db, 1, root_hash=head_row(db, 2)[1]),
        lambda r: rf"^tree head 1 \(size {r.head_sizes[1]}\) does not carry a valid signature",
    ),
    "a head's signature altered": Case(
        lambda db, r: update_head(db, len(r.head_sizes) - 1, signature=flip_hex(head_row(db, -1)[3], 5)),
        lambda r: rf"^tree head {len(r.head_sizes) - 1} \(size {r.entries}\) does not carry a valid signature",
    ),
    "the key file replaced": Case(
        lambda db, r: replace_key(db),
        lambda r: rf"^tree head 0 \(size {r.head_sizes[0]}\) does not carry a valid signature",
    ),
    "held to another key": Case(
        None,
        lambda r: rf"^tree head 0 \(size {r.head_sizes[0]}\) does not carry a valid signature",
        args=lambda r: ["--public-key", raw_public_key(Ed25519PrivateKey.generate())],
    ),
    "forged and signed again, held to the kept key": Case(
        forge_and_resign,
        lambda r: rf"^tree head 0 \(size {r.head_sizes[0]}\) does not carry a valid signature",
        args=lambda r: ["--public-key", r.public_key],
    ),
    "the first entry removed": Case(lambda db, r: delete(db, 1), lambda r: r"^entry 0 is missing \(the next one is 1\)$"),
    "two entries reordered with their leaf hashes": Case(
        lambda db, r: swap(db, 10, 11, fix_leaves=True),
        lambda r: rf"^tree head {r.first_head_covering(9)} \(size {r.head_sizes[r.first_head_covering(9)]}\) does not match",
    ),
}


@dataclass(frozen=True)
class Run:
    code: int
    out: dict[str, Any]


def verify_in_process(db: Path, *args: str) -> Run:
    result = CliRunner().invoke(app, ["ledger", "verify", "--db", str(db), *args])
    lines = result.stdout.splitlines()
    assert len(lines) == 1, (result.stdout, result.stderr)
    return Run(result.exit_code, json.loads(lines[0]))


def start_verify(db: Path, *args: str) -> subprocess.Popen[str]:
    command = [DECONFLICT, "ledger", "verify", "--db", str(db), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())


def finish(process: subprocess.Popen[str]) -> Run:
    try:
        out, err = process.communicate(timeout=TIMEOUT_S)
    finally:
        process.kill()
    lines = out.splitlines()
    assert len(lines) == 1, (out, err)
    return Run(process.returncode, json.loads(lines[0]))


def tampered_copy(record: Record, case: Case, base: Path) -> Path:
    copy = copy_record(record.db, base)
    if case.tamper is not None:
        case.tamper(copy, record)
    return copy


def assert_caught(case: Case, run: Run, record: Record) -> None:
    assert run.code == 1, run
    assert run.out["ok"] is False
    (problem,) = run.out["problems"]
    assert re.search(case.problem(record), problem), (case.problem(record), problem)
    if case.entries_checked is not None:
        assert run.out["entries"] == case.entries_checked(record)


INTACT = {"ok": True, "entries": 19, "heads": 4, "problems": []}  # the scenario's 19 accepted writes and checks


def test_the_command_verifies_the_record_and_fails_on_tampered_copies(record: Record, tmp_path: Path) -> None:
    """As processes, side by side: the intact record, an entry altered, the last entry removed."""
    names = ["an entry's data altered", "the last entry removed"]
    started = {"intact": start_verify(copy_record(record.db, tmp_path / "intact"))}
    for i, name in enumerate(names):
        copy = tampered_copy(record, CASES[name], tmp_path / f"copy-{i}")
        started[name] = start_verify(copy)
    runs = {name: finish(process) for name, process in started.items()}
    assert (runs["intact"].code, runs["intact"].out) == (0, INTACT)
    assert (record.entries, len(record.head_sizes)) == (INTACT["entries"], INTACT["heads"])
    for name in names:
        assert_caught(CASES[name], runs[name], record)


@pytest.mark.parametrize("name", list(CASES))
def test_each_tampering_is_caught_and_named(record: Record, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    copy = tampered_copy(record, case, tmp_path / "copy")
    assert_caught(case, verify_in_process(copy, *case.args(record)), record)


def test_the_record_holds_to_the_kept_key(record: Record, tmp_path: Path) -> None:
    run = verify_in_process(copy_record(record.db, tmp_path / "copy"), "--public-key", record.public_key)
    assert (run.code, run.out) == (0, INTACT)


def test_a_forged_record_signed_again_passes_only_on_its_own_key(record: Record, tmp_path: Path) -> None:
    """Why --public-key matters: the file's own key vouches for whatever the file says."""
    case = CASES["forged and signed again, held to the kept key"]
    copy = tampered_copy(record, case, tmp_path / "copy")
    run = verify_in_process(copy)
    assert (run.code, run.out) == (0, INTACT)
    assert_caught(case, verify_in_process(copy, *case.args(record)), record)


def test_verifying_a_record_without_its_key_is_refused_and_writes_nothing(record: Record, tmp_path: Path) -> None:
    """A verifier reads what is there: without the key beside the store (and no --public-key) it refuses, making no key."""
    copy = copy_record(record.db, tmp_path / "copy", key=False)
    result = CliRunner().invoke(app, ["ledger", "verify", "--db", str(copy)])
    assert result.exit_code == 2
    assert "no signing key" in result.stderr
    assert not Path(f"{copy}.key").exists()


def test_verifying_a_missing_store_is_refused_and_makes_no_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ledger", "verify", "--db", str(tmp_path / "typo.db")])
    assert result.exit_code == 2 and "there is no store" in result.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- over HTTP, against a real server


@pytest.fixture(scope="module")
def served(record: Record, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server on a copy of the record, and a viewer token of one of its parties, made before it started."""
    copy = copy_record(record.db, tmp_path_factory.mktemp("served") / "copy")
    made = subprocess.run(
        [DECONFLICT, "token", "create", "partner", "--role", "viewer", "--db", str(copy)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=TIMEOUT_S,
        check=True,
    )
    token = json.loads(made.stdout)["token"]
    # No ticks while the tests read: the scenario's AORs lapsed years ago, and the ticker would say so in the record.
    with Server(copy, copy.parent / "server.log", settings={"DECONFLICT_TICK_S": "3600"}) as server:
        yield server.url, token


def verify_served(url: str, token: str, *args: str) -> Run:
    command = [DECONFLICT, "ledger", "verify", "--server", url, "--token", token, *args]
    return finish(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env()))


def test_the_served_record_verifies_over_http(served: tuple[str, str], record: Record) -> None:
    url, token = served
    # the token made before the server started is one entry more: the server signs a head for it when asked
    head = httpx.get(f"{url}/v1/ledger/head", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S).json()
    assert (head["tree_size"], head["public_key"]) == (record.entries + 1, record.public_key)
    run = verify_served(url, token)
    assert run.code == 0, run
    assert run.out == {"ok": True, "entries": record.entries + 1, "heads": len(record.head_sizes) + 1, "problems": []}
