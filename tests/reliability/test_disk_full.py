"""A full disk: writes are refused with 503 and change nothing, checks go on answering, and all is well when space returns.

The store lives on a small tmpfs mounted for the test (root only, as CI runs), filled to the
last byte by another file: SQLite then fails inside the transaction, as on a real full disk.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deconfliction.clock import ManualClock
from deconfliction.errors import StoreError
from deconfliction.model import Role
from deconfliction.service import ROOT, Caller, Service
from deconfliction.stores import SQLiteStore
from tests.stores.test_store import T0

ALFA, BRAVO = Caller("alfa", Role.LIAISON), Caller("bravo", Role.LIAISON)


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs as root)")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    needs_root()
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:  # a container without the right to mount: say so rather than fail
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write zeros beside the store until the disk has no byte left."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 1):  # large pieces, then the last bytes one at a time
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_refuses_writes_keeps_checks_answering_and_recovers(small_disk: Path) -> None:
    clock = ManualClock(T0)
    service = Service(SQLiteStore(small_disk / "centre.db"), clock)
    try:
        for party in ("alfa", "bravo"):
            service.create_party(ROOT, {"id": party, "name": party})
        service.register_asset(ALFA, {"id": "post", "kind": "site", "position": "34.5510, 71.0210"})
        filler = fill(small_disk)
        version, entries = service.picture.version, service.store.last_seq()

        with pytest.raises(StoreError) as refused:
            service.register_asset(ALFA, {"id": "camp", "kind": "site", "position": "34.6, 71.1"})
        assert refused.value.status == 503 and "full" in str(refused.value)
        answer = service.check(BRAVO, {"position": "34.5510, 71.0210", "kind": "fires"})
        assert answer["status"] == "conflict", "checks answer from memory while nothing can be written"
        assert answer["record"] is None and answer["frozen"]["reason"], "and say that the answer is not recorded"
        assert (service.picture.version, service.store.last_seq()) == (version, entries), "nothing half-applied"
        assert "camp" not in {a["id"] for a in service.assets(ALFA)}

        filler.unlink()  # space is back: nobody restarts anything
        service.register_asset(ALFA, {"id": "camp", "kind": "site", "position": "34.6, 71.1"})
        again = service.check(BRAVO, {"position": "34.5510, 71.0210", "kind": "fires"})
        assert again["record"] is not None and "frozen" not in again
        assert service.store.last_seq() == entries + 3  # the asset, its report, the check
    finally:
        service.store.close()
