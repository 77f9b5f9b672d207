"""A real server process: ``deconflict init`` then ``deconflict serve``, written to over a socket, killed, restarted.

The writes are acknowledged (2xx) by a server that is then killed with SIGKILL at once; a new
server on the same file must show every acknowledged write. Every wait is bounded and every
process started here is killed in the fixture's teardown.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import pytest

from deconfliction.client import HttpClient
from deconfliction.errors import InvalidInput

DECONFLICT = Path(sys.executable).parent / "deconflict"
TIMEOUT_S = 10.0
BOX = {"type": "Polygon", "coordinates": [[[71.0, 34.3], [71.3, 34.3], [71.3, 34.9], [71.0, 34.9], [71.0, 34.3]]]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The environment without DECONFLICT_* settings, so the server runs on its defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DECONFLICT_")}


@dataclass
class Server:
    """``deconflict serve`` in a process group of its own; ``with Server(...) as server`` starts it and kills it
    at the end, however the block ends. start(), stop() and kill() stay public: a test may kill and restart it inside."""

    db: Path
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    settings: dict[str, str] = field(default_factory=dict)  # DECONFLICT_* variables for this server
    db_url: str | None = None  # a postgresql:// store instead of the file ``db``
    args: list[str] = field(default_factory=list)  # more options for deconflict serve

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(DECONFLICT), "serve", "--db", self.db_url or str(self.db), "--port", str(self.port), *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**clean_env(), **self.settings},
                start_new_session=True,  # its group: the workers of --workers, the snapshot writer
            )
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"the server did not answer /healthz within {TIMEOUT_S} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        """SIGTERM: the server stops as an operator stops it, and writes its snapshot."""
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=TIMEOUT_S)
        self.process = None

    def kill(self) -> None:
        """SIGKILL to the server and every process it started: no shutdown handler, no flush, no checkpoint."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=TIMEOUT_S)
        self.process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


@dataclass
class Run:
    """What the clients saw before the kill and after the restart."""

    acknowledged: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]
    url: str  # the restarted server, running while the tests run


def call(client: httpx.Client, method: str, path: str, token: str, **kwargs: Any) -> Any:
    response = client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    assert response.is_success, (method, path, response.status_code, response.text)
    return response.json()


def seen(client: httpx.Client, token: str) -> dict[str, Any]:
    """What a client sees of the picture."""
    return {
        "picture": call(client, "GET", "/v1/picture", token),
        "assets": call(client, "GET", "/v1/assets", token),
        "parties": call(client, "GET", "/v1/parties", token),
        "aors": call(client, "GET", "/v1/aors", token),
    }


def init(db: Path) -> str:
    """``deconflict init``: a new store, and its admin token."""
    made = subprocess.run(
        [str(DECONFLICT), "init", "--db", str(db)], capture_output=True, env=clean_env(), timeout=TIMEOUT_S, check=True
    )
    return str(json.loads(made.stdout)["admin_token"])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("server")
    db = tmp / "s.db"
    admin = init(db)
    with Server(db, tmp / "server.log") as server:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as client:
            acknowledged: dict[str, Any] = {"admin": admin}
            call(client, "POST", "/v1/parties", admin, json={"id": "alfa", "name": "Alfa Army"})
            call(client, "PUT", "/v1/territories/alfa", admin, json={"area": BOX})
            liaison = call(client, "POST", "/v1/parties/alfa/tokens", admin, json={"role": "liaison"})["token"]
            acknowledged["liaison"] = liaison
            call(client, "POST", "/v1/aors", liaison, json={"id": "east", "area": BOX, "freshness_s": 86400})
            call(client, "POST", "/v1/aors/east/confirm", liaison)
            call(client, "POST", "/v1/assets", liaison, json={"id": "qrf-1", "kind": "unit", "position": "34.60, 71.10"})
            call(client, "POST", "/v1/assets", liaison, json={"id": "post", "kind": "site", "position": "34.55, 71.02"})
            for i in range(1, 6):
                call(client, "POST", "/v1/reports", liaison, json={"asset": "qrf-1", "position": f"34.6{i}, 71.1{i}"})
            batch = [{"asset": "qrf-1", "position": "34.67, 71.17"}, {"asset": "post", "position": "34.56, 71.03"}]
            call(client, "POST", "/v1/reports/batch", liaison, json={"reports": batch})
            before = seen(client, liaison)
            last = call(client, "POST", "/v1/reports", liaison, json={"asset": "qrf-1", "position": "34.68, 71.18"})
            server.kill()  # at once after the 2xx
            acknowledged["last"] = last
        server.start()
        with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as client:
            after = seen(client, liaison)
            after["healthz"] = client.get("/healthz").json()
        yield Run(acknowledged, before, after, server.url)


def test_server_restart_keeps_every_acknowledged_write(run: Run) -> None:
    after = {a["id"]: a for a in run.after["assets"]}
    assert set(after) == {"qrf-1", "post"}
    assert (after["qrf-1"]["position"]["lat"], after["qrf-1"]["position"]["lon"]) == (34.68, 71.18)
    assert after["qrf-1"]["time"] == run.acknowledged["last"]["time"]
    assert after["qrf-1"]["position"] == run.acknowledged["last"]["position"]
    assert after["qrf-1"]["border"] == run.acknowledged["last"]["border"]
    assert after["qrf-1"]["border"]["territory"] == "alfa"
    assert (after["post"]["position"]["lat"], after["post"]["position"]["lon"]) == (34.56, 71.03)
    assert [p["id"] for p in run.after["parties"]] == ["alfa"]
    assert [(a["id"], a["status"]) for a in run.after["aors"]] == [("east", "fresh")]


def test_server_restart_keeps_the_tokens(run: Run) -> None:
    """The liaison token made before the kill still authenticates after it (the picture seen used it)."""
    assert run.after["picture"]["assets"] == 2
    assert run.after["picture"]["positions"] == 2


def test_server_restart_keeps_the_counts(run: Run) -> None:
    counts = {k: v for k, v in run.after["picture"].items() if k not in ("picture_version", "picture_key")}
    assert counts == {"parties": 1, "assets": 2, "positions": 2, "zones": 0, "aors": 1, "territories": 1, "activities": 0}


def test_server_restart_keeps_the_picture_version(run: Run) -> None:
    """The version names the same picture after a restart, although the store replays only the newest report per asset."""
    assert run.after["picture"]["picture_version"] == run.acknowledged["last"]["picture_version"]
    assert run.after["healthz"]["picture_version"] == run.acknowledged["last"]["picture_version"]
    assert run.acknowledged["last"]["picture_version"] > run.before["picture"]["picture_version"]


def test_a_token_says_whose_it_is_so_a_client_names_its_own_activities(run: Run) -> None:
    """The CLI over --server reads a plain activity id as the caller's own: GET /v1/whoami says whose that is."""
    liaison, admin = HttpClient(run.url, run.acknowledged["liaison"]), HttpClient(run.url, run.acknowledged["admin"])
    try:
        assert liaison.own_activity("fire-1") == "alfa"
        with pytest.raises(InvalidInput, match="PROPOSER/ID"):
            admin.own_activity("fire-1")
    finally:
        liaison.close()
        admin.close()
    with httpx.Client(base_url=run.url, timeout=TIMEOUT_S) as client:
        assert call(client, "GET", "/v1/whoami", run.acknowledged["admin"]) == {"party": None, "role": "admin"}


def alfa_with_a_unit(client: httpx.Client, admin: str) -> str:
    """Party alfa with its territory (BOX) and one unit placed in it; alfa's liaison token."""
    call(client, "POST", "/v1/parties", admin, json={"id": "alfa", "name": "Alfa Army"})
    call(client, "PUT", "/v1/territories/alfa", admin, json={"area": BOX})
    liaison = str(call(client, "POST", "/v1/parties/alfa/tokens", admin, json={"role": "liaison"})["token"])
    call(client, "POST", "/v1/assets", liaison, json={"id": "qrf-1", "kind": "unit", "position": "34.60, 71.10"})
    return liaison


def test_a_server_stopped_writes_its_snapshot_and_the_next_start_is_from_it(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    admin = init(db)
    with Server(db, tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as client:
            liaison = alfa_with_a_unit(client, admin)
            before = seen(client, liaison)
        server.stop()
        assert f"written to {db}.snapshot" in server.log.read_text()
        server.start()
        assert f"picture from the snapshot at {db}.snapshot" in server.log.read_text()
        with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as client:
            assert seen(client, liaison) == before


def test_a_serving_node_writes_snapshots_in_a_second_process_and_a_crashed_one_starts_from_the_last(tmp_path: Path) -> None:
    """Every DECONFLICT_SNAPSHOT_EVERY_S the log grew, a snapshot appears while the node serves; killed (no clean stop,
    so no snapshot of its own), the node starts from that one and the log after it, with every acknowledged write."""
    db = tmp_path / "s.db"
    admin = init(db)
    kept = Path(f"{db}.snapshot")
    with Server(db, tmp_path / "server.log", settings={"DECONFLICT_SNAPSHOT_EVERY_S": "0.5"}) as server:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as client:
            liaison = alfa_with_a_unit(client, admin)
            deadline = time.monotonic() + 3 * TIMEOUT_S
            while not kept.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert kept.exists(), server.log.read_text()
            call(client, "POST", "/v1/reports", liaison, json={"asset": "qrf-1", "position": "34.61, 71.11"})  # after it
            before = seen(client, liaison)
        server.kill()
        server.start()
        assert f"picture from the snapshot at {kept}" in server.log.read_text()
        with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as client:
            assert seen(client, liaison) == before


def test_the_access_log_leaves_out_the_checks_and_reports_the_record_holds_and_keeps_every_other_request(
    tmp_path: Path,
) -> None:
    """A check answered or a report taken is an entry in the record, with who asked and the whole answer: its access
    line would only repeat it, at a sixth of a check's CPU. Every other request, and every refusal, keeps its line."""
    db = tmp_path / "s.db"
    admin = init(db)
    with Server(db, tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT_S) as client:
            liaison = alfa_with_a_unit(client, admin)
            call(client, "POST", "/v1/checks", liaison, json={"position": "34.6, 71.1", "kind": "fires"})
            call(client, "POST", "/v1/reports", liaison, json={"asset": "qrf-1", "position": "34.61, 71.11"})
            call(client, "POST", "/v1/reports/batch", liaison, json={"reports": [{"asset": "qrf-1", "position": "34.62, 71.12"}]})
            call(client, "GET", "/v1/picture", liaison)
            refused = client.post("/v1/checks", headers={"Authorization": f"Bearer {liaison}"}, json={"kind": "fires"})
            assert refused.status_code == 422
        server.stop()
    log = server.log.read_text()
    assert '"GET /v1/picture HTTP/1.1" 200' in log, log
    assert '"POST /v1/assets HTTP/1.1" 201' in log, log
    assert '"POST /v1/checks HTTP/1.1" 422' in log, log  # the refusal keeps its line, beside the service's reason
    assert "refused POST /v1/checks" in log, log
    for recorded in (
        '"POST /v1/checks HTTP/1.1" 200',
        '"POST /v1/reports HTTP/1.1" 201',
        '"POST /v1/reports/batch HTTP/1.1" 201',
    ):
        assert recorded not in log, log
