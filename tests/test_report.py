"""The investigation report, opened as an investigator would: a file in real (Debian) Chromium, no network.

The page re-hashes every line of its timeline and folds each inclusion proof up to the signed
root with the browser's own SHA-256; a line whose bytes were changed no longer verifies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DECONFLICT = str(Path(sys.executable).parent / "deconflict")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As the machine's notes advise: without these, Chromium keeps trying the (closed) network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]
CHROMIUM_ARGS += ["--disable-component-update", "--disable-sync"]
AREA = {"type": "Polygon", "coordinates": [[[70.9, 34.45], [71.15, 34.45], [71.15, 34.65], [70.9, 34.65], [70.9, 34.45]]]}

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Debian's chromium (see .ci/run)")
    pytest.skip("Debian's chromium is not installed here (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DECONFLICT, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The record of the fire-mission scenario: an old map refused, an escalation, an objection, an override."""
    db = tmp_path_factory.mktemp("record") / "s.db"
    played = _run("replay", str(ROOT / "scenarios" / "fires-notification.yaml"), "--db", str(db))
    assert played.returncode == 0, played.stderr
    return db


def _report(record: Path, tmp_path: Path, *who: str) -> Path:
    area = tmp_path / "area.json"
    area.write_text(json.dumps(AREA))
    out = tmp_path / "report.html"
    made = _run(
        "report", "--area", str(area), "--from", "2016-09-17T12:00:00Z", "--to", "2016-09-17T16:00:00Z",
        "--at", "2016-09-17T13:10:00Z", "--at", "2016-09-17T13:30:00Z", "--out", str(out), "--db", str(record), *who,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _verdicts(browser: object, page_file: Path) -> tuple[str, list[str]]:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(page_file.as_uri())
    page.wait_for_function("document.getElementById('verdict').textContent !== 'not checked yet'", timeout=15_000)
    verdict = page.text_content("#verdict")
    proofs = page.eval_on_selector_all("td.proof", "cells => cells.map(c => c.textContent)")
    page.close()
    return verdict, proofs


def test_every_line_of_the_report_verifies_against_the_signed_root(record: Path, tmp_path: Path, browser: object) -> None:
    verdict, proofs = _verdicts(browser, _report(record, tmp_path, "--as", "coalition"))
    assert len(proofs) >= 8
    assert proofs == ["verified"] * len(proofs)
    assert verdict == f"{len(proofs)} of {len(proofs)} lines verified against the signed root"


def test_a_line_whose_bytes_were_changed_does_not_verify(record: Path, tmp_path: Path, browser: object) -> None:
    """Change one byte of the first line's entry: that line fails, the others still verify."""
    out = _report(record, tmp_path, "--as", "coalition")
    text = out.read_text()
    first = text.index('data-leaf="') + len('data-leaf="')
    tampered = text[:first] + ("0" if text[first] != "0" else "1") + text[first + 1 :]
    out.write_text(tampered)
    verdict, proofs = _verdicts(browser, out)
    assert proofs[0] == "does not verify" and proofs[1:] == ["verified"] * (len(proofs) - 1)
    assert verdict.startswith(f"{len(proofs) - 1} of {len(proofs)}")


def test_the_report_shows_only_what_the_reader_may_see(record: Path, tmp_path: Path) -> None:
    """As the coalition: the partner's hidden post is neither named nor placed, its coarse company not placed.

    The timeline says what the coalition knew.
    """
    text = _report(record, tmp_path, "--as", "coalition").read_text()
    assert "quiet-post" not in text and "Quiet Post" not in text and "34.561" not in text  # the hidden post
    assert "quiet-post" in _report(record, tmp_path, "--as", "partner").read_text()  # the owner's report has it
    assert "34.552" not in text  # the coarse company's latitude
    assert "coalition proposes fires strike-1" in text
    assert "objected coalition/strike-1 by partner (B Company holds the ridge" in text  # the reason: coalition is concerned
    assert "src=" not in text and "href=" not in text  # self-contained: nothing loaded from anywhere
