"""Scenario files are acceptance tests: every one must pass through `deconflict replay`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deconfliction.replay import load_scenario, run_scenario
from deconfliction.stores import SQLiteStore
from tests.conftest import scenario_files

DECONFLICT = str(Path(sys.executable).parent / "deconflict")


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: p.name)
def test_replay_scenario_passes_in_process(path: Path, tmp_path: Path) -> None:
    outcomes = list(run_scenario(load_scenario(path), SQLiteStore(tmp_path / "replay.db")))
    failures = [(o.line["step"], f) for o in outcomes for f in o.failures]
    assert failures == []
    assert [o.line["step"] for o in outcomes] == list(range(1, len(outcomes) + 1))


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: p.name)
def test_replay_command_prints_one_json_line_per_step(path: Path) -> None:
    run = subprocess.run([DECONFLICT, "replay", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == len(load_scenario(path)["steps"])
    assert all({"step", "op"} <= line.keys() for line in lines)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


SMALL = """
name: t
start: "2026-01-01T00:00:00Z"
parties: [{id: blue, name: Blue}]
steps:
  - as: blue
    asset: {id: u1, kind: site, position: "34.55, 71.0"}
  - as: blue
    check: {position: "34.55, 71.0", kind: fires}
    expect: {status: %s}
"""


def test_replay_exit_code_1_and_names_the_step_when_an_expectation_fails(tmp_path: Path) -> None:
    run = subprocess.run([DECONFLICT, "replay", str(_write(tmp_path, SMALL % "clear"))], capture_output=True, text=True)
    assert run.returncode == 1
    assert "step 2" in run.stderr and "expected status clear, got conflict" in run.stderr


def test_replay_exit_code_0_when_expectations_hold(tmp_path: Path) -> None:
    run = subprocess.run([DECONFLICT, "replay", str(_write(tmp_path, SMALL % "conflict"))], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("steps: []", id="no-start"),
        pytest.param('start: "2026-01-01T00:00:00Z"\nsteps:\n  - {as: blue}', id="step-without-action"),
        pytest.param(
            'start: "2026-01-01T00:00:00Z"\nparties: [{id: blue}]\nsteps:\n  - {as: red, confirm: {aor: x}}', id="unknown-party"
        ),
        pytest.param("start: [unclosed", id="not-yaml"),
        pytest.param(
            'start: "2026-01-01T00:00:00Z"\nparties: [{id: blue}]\nsteps:\n'
            '  - {as: blue, at: "2025-01-01T00:00:00Z", confirm: {aor: x}}',
            id="clock-moves-back",
        ),
    ],
)
def test_replay_exit_code_2_when_the_file_is_malformed(tmp_path: Path, text: str) -> None:
    run = subprocess.run([DECONFLICT, "replay", str(_write(tmp_path, text))], capture_output=True, text=True)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stderr.strip()


def test_replay_error_expectation_fails_when_the_step_is_accepted(tmp_path: Path) -> None:
    text = SMALL.replace("expect: {status: %s}", "expect: {error: true}")
    run = subprocess.run([DECONFLICT, "replay", str(_write(tmp_path, text))], capture_output=True, text=True)
    assert run.returncode == 1
    assert "expected an error" in run.stderr
