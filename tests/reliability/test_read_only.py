"""A store that turns read-only under a running node: writes are refused with 503 naming the cause and change
nothing, checks go on answering, and once the disk is repaired a restarted node has every acknowledged write.

SQLite: the store lives on a small ext4 file system (a loop device, root only, as CI runs) mounted with
``errors=remount-ro``; the test makes the kernel find an error on it (``trigger_fs_error``), so the file
system turns read-only with the store open, as a failing disk does. The kernel will not make such a file
system writable again while it is mounted: the operator unmounts it, runs ``e2fsck``, mounts it and
restarts the node, and so does the test.

PostgreSQL: the database turns read-only under the node (``default_transaction_read_only``, and the
node's sessions cut, as a failover to a standby not yet promoted looks), then writable again.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from deconfliction.clock import ManualClock
from deconfliction.errors import StoreError
from deconfliction.ledger.verify import stored_entries, verify_record
from deconfliction.model import Role
from deconfliction.service import ROOT, Caller, Service
from deconfliction.stores import SQLiteStore, open_store
from tests.reliability.test_disk_full import needs_root
from tests.stores.test_store import T0

ALFA, BRAVO = Caller("alfa", Role.LIAISON), Caller("bravo", Role.LIAISON)
POST = {"position": "34.5510, 71.0210", "kind": "fires"}


def _run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, check=False)


class Ext4Disk:
    """A 16 MiB ext4 image on a loop device, mounted with errors=remount-ro."""

    def __init__(self, image: Path, folder: Path) -> None:
        self.image, self.folder = image, folder

    def mount(self) -> None:
        mounted = _run("mount", "-o", "loop,errors=remount-ro", self.image, self.folder)
        if mounted.returncode != 0:  # a container without loop devices: say so rather than fail
            pytest.skip(f"cannot mount an ext4 image here: {mounted.stderr.strip()}")

    def fail(self) -> None:
        """What a failing disk does: the kernel finds an error and makes the file system read-only, files open."""
        device = Path(_run("findmnt", "-no", "SOURCE", self.folder).stdout.strip()).name
        Path(f"/sys/fs/ext4/{device}/trigger_fs_error").write_text("test: a failing disk\n")

    def repair(self) -> None:
        """The operator's part: unmount, check the file system, mount it again."""
        _run("umount", self.folder)
        checked = _run("e2fsck", "-fy", self.image)
        assert checked.returncode in (0, 1), checked.stdout + checked.stderr  # 1: errors corrected
        self.mount()


@pytest.fixture
def ext4_disk(tmp_path: Path) -> Iterator[Ext4Disk]:
    needs_root()
    if shutil.which("mkfs.ext4") is None or shutil.which("e2fsck") is None:
        pytest.skip("e2fsprogs is not installed")
    image, folder = tmp_path / "disk.img", tmp_path / "disk"
    folder.mkdir()
    with image.open("wb") as made:
        made.truncate(16 * 2**20)
    assert _run("mkfs.ext4", "-q", "-F", image).returncode == 0
    disk = Ext4Disk(image, folder)
    disk.mount()
    try:
        yield disk
    finally:
        _run("umount", "-l", folder)


def _picture(service: Service) -> None:
    for party in ("alfa", "bravo"):
        service.create_party(ROOT, {"id": party, "name": party})
    service.register_asset(ALFA, {"id": "post", "kind": "site", "position": POST["position"]})


def _refused_and_unchanged(service: Service, caplog: pytest.LogCaptureFixture) -> StoreError:
    """A write refused with a StoreError, the picture and the log as they were; checks answer, unrecorded."""
    version, entries = service.picture.version, service.store.last_seq()
    with pytest.raises(StoreError) as refused:
        service.register_asset(ALFA, {"id": "camp", "kind": "site", "position": "34.6, 71.1"})
    assert refused.value.status == 503
    assert (service.picture.version, service.store.last_seq()) == (version, entries), "nothing half-applied"
    assert "camp" not in {a["id"] for a in service.assets(ALFA)}
    caplog.clear()
    answer = service.check(BRAVO, POST)
    assert answer["status"] == "conflict", "checks answer from memory while nothing can be written"
    assert answer["record"] is None and answer["frozen"]["reason"]
    assert f"bravo's fires check asked at {answer['asked_at']} answered conflict and not recorded" in caplog.text
    return refused.value


def test_a_disk_turned_read_only_refuses_writes_keeps_checks_answering_and_loses_nothing(
    ext4_disk: Ext4Disk, caplog: pytest.LogCaptureFixture
) -> None:
    path = ext4_disk.folder / "centre.db"
    service = Service(SQLiteStore(path), ManualClock(T0))
    try:
        _picture(service)
        acknowledged = service.check(BRAVO, POST)["record"]
        service.ledger_head()  # a signed head from before the failure: the record after repair must extend it
        ext4_disk.fail()
        for _attempt in range(2):  # the first write meets the error, the next the read-only file system
            assert "read-only" in str(_refused_and_unchanged(service, caplog))
    finally:
        service.store.close()

    ext4_disk.repair()
    again = Service(SQLiteStore(path), ManualClock(T0 + timedelta(minutes=5)))
    try:
        assert [a["id"] for a in again.assets(ALFA)] == ["post"], "every acknowledged write is there"
        (record,) = again.store.events(acknowledged - 1, 1)
        assert record.type == "check.asked"
        again.register_asset(ALFA, {"id": "camp", "kind": "site", "position": "34.6, 71.1"})
        assert again.check(BRAVO, POST)["record"] == acknowledged + 3  # camp, its report, this check
        again.ledger_head()  # a second head, held consistent with the one signed before the failure
        verdict = verify_record(stored_entries(again.store), again.store.heads(), again.public_key())
        assert verdict.ok and verdict.heads == 2, verdict.problems
    finally:
        again.store.close()


def test_a_database_turned_read_only_refuses_writes_and_takes_them_again_when_writable(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    service = Service(open_store(postgres_url), ManualClock(T0))
    database = postgres_url.rsplit("/", 1)[1]
    cut = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    try:
        _picture(service)
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
            admin.execute(cut, (database,))
            refusals = [str(_refused_and_unchanged(service, caplog)) for _attempt in range(2)]
            assert "read-only" in refusals[-1]

            admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
            admin.execute(cut, (database,))
        service.register_asset(ALFA, {"id": "camp", "kind": "site", "position": "34.6, 71.1"})
        back = service.check(BRAVO, POST)
        assert isinstance(back["record"], int) and "frozen" not in back
        assert {a["id"] for a in service.assets(ALFA)} == {"post", "camp"}
    finally:
        service.store.close()
