"""The console in a real browser: the demo picture served by a real ``deconflict serve``, driven by Debian's Chromium.

``served`` loads the demo picture (``deconflict demo --no-serve``) into a fresh SQLite file and
starts ``deconflict serve`` on it on a free loopback port; ``browser`` is one headless
Chromium for the module; ``page`` is a fresh tab at 1280x800 that records every request it
makes (``page.requests``), so that a test can show that nothing left the service.

Screenshots go to ``$DECONFLICT_SCREENSHOTS`` (default: a temporary directory); with
``DECONFLICT_UPDATE_DOCS=1`` the signed-in picture is also saved as docs/console.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_server_process import DECONFLICT, TIMEOUT_S, Server, clean_env

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium keeps trying the (closed) network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]
CHROMIUM_ARGS += ["--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}


@dataclass
class Served:
    url: str
    tokens: dict[str, str]  # demo tokens: admin, alfa, bravo, relief (liaisons)
    shots: Path
    server: Server  # to kill and restart it


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("console")
    db = tmp / "demo.db"
    made = subprocess.run(
        [str(DECONFLICT), "demo", "--db", str(db), "--no-serve"],
        capture_output=True, env=clean_env(), timeout=TIMEOUT_S, check=True,
    )  # fmt: skip
    tokens = json.loads(made.stdout)["tokens"]
    shots = Path(os.environ.get("DECONFLICT_SCREENSHOTS") or tmp / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with Server(db, tmp / "server.log") as server:
        yield Served(server.url, tokens, shots, server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the console tests need Debian's chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, base_url=served.url)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.requests = []
    tab.on("request", lambda request: tab.requests.append(request.url))
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == [], f"the page threw: {errors}"
