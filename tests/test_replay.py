"""Scenario files are acceptance tests: every one must pass through `deconflict replay`, on each store."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from deconfliction.replay import ScenarioError, StepOutcome, load_scenario, run_scenario
from deconfliction.stores import open_store
from tests.conftest import scenario_files

DECONFLICT = str(Path(sys.executable).parent / "deconflict")


def play(scenario: dict[str, Any], db: str) -> list[StepOutcome]:
    """Every step of ``scenario`` played into the store ``db``, which is closed after."""
    with closing(open_store(db)) as store:
        return list(run_scenario(scenario, store))


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: p.name)
def test_replay_scenario_passes_in_process(path: Path, fresh_db: str) -> None:
    outcomes = play(load_scenario(path), fresh_db)
    failures = [(o.line["step"], f) for o in outcomes for f in o.failures]
    assert failures == []
    assert [o.line["step"] for o in outcomes] == list(range(1, len(outcomes) + 1))


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: p.name)
def test_replay_command_prints_one_json_line_per_step(path: Path, fresh_db: str) -> None:
    run = subprocess.run([DECONFLICT, "replay", str(path), "--db", fresh_db], capture_output=True, text=True, timeout=60)
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


# ---------------------------------------------------------------------------- activity steps

OWN = Path(__file__).resolve().parents[1] / "scenarios"


def _failures(scenario: dict[str, Any], fresh_db: str) -> dict[int, list[str]]:
    outcomes = play(scenario, fresh_db)
    return {o.line["step"]: o.failures for o in outcomes if o.failures}


@pytest.mark.parametrize(
    ("file", "step", "expect", "message"),
    [
        ("fires-notification.yaml", 7, {"result": "accepted"}, "expected acceptance"),
        ("fires-notification.yaml", 9, {"state": "cleared"}, "expected state cleared, got proposed"),
        ("fires-notification.yaml", 9, {"affected": []}, "expected affected [], got ['partner']"),
        ("fires-notification.yaml", 10, {"flags": []}, "expected flags [], got ['not_cleared']"),
        ("fires-notification.yaml", 11, {"state": {"strike-1": "proposed"}}, "strike-1 proposed, it is escalated"),
        ("fires-notification.yaml", 13, {"events": ["activity.acknowledged"]}, "to log ['activity.acknowledged']"),
        ("convoy-execution.yaml", 10, {"events": ["conflict.detected"]}, "expected the step to log ['conflict.detected']"),
    ],
)
def test_replay_activity_expectations_fail_when_they_do_not_hold(
    file: str, step: int, expect: dict[str, Any], message: str, fresh_db: str
) -> None:
    """Each new expectation can fail: the same files with one expectation turned wrong."""
    scenario = load_scenario(OWN / file)
    scenario["steps"][step - 1]["expect"] = expect
    failures = _failures(scenario, fresh_db)
    assert list(failures) == [step]
    assert any(message in f for f in failures[step]), failures


def test_replay_old_map_key_is_refused_and_the_latest_accepted(fresh_db: str) -> None:
    """``key: {as_of_step: N}`` is the key from a look after step N; a change since then refuses it, ``latest`` does not."""
    scenario = load_scenario(OWN / "fires-notification.yaml")
    lines = {o.line["step"]: o.line for o in play(scenario, fresh_db)}
    old, fresh = lines[7]["error"], lines[9]
    assert old["code"] == "stale_picture" and [c["id"] for c in old["changed"]] == ["company-b"]
    assert old["key"].split("@")[1] == lines[8]["error"]["key"].split("@")[1]  # the same area, a newer version
    assert fresh["state"] == "proposed" and fresh["affected"] == ["partner"]


@pytest.mark.parametrize("key", ["{as_of_step: 99}", "sometimes", "{as_of_step: first}"])
def test_replay_malformed_key_spec_is_exit_2(tmp_path: Path, key: str) -> None:
    text = f"""
start: "2026-01-01T00:00:00Z"
parties: [{{id: blue}}]
steps:
  - as: blue
    propose: {{kind: patrol, purpose: p, key: {key},
              volumes: [{{position: "34.55, 71.0", window: ["2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"]}}]}}
"""
    run = subprocess.run([DECONFLICT, "replay", str(_write(tmp_path, text))], capture_output=True, text=True)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "key is latest, none or" in run.stderr


def test_replay_tick_moves_the_clock_without_a_party(tmp_path: Path) -> None:
    text = """
start: "2026-01-01T00:00:00Z"
parties: [{id: blue}]
steps:
  - tick: 90m
"""
    run = subprocess.run([DECONFLICT, "replay", str(_write(tmp_path, text))], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["now"] == "2026-01-01T01:30:00+00:00"


# ---------------------------------------------------------------------------- whose activity a step names

TWO_CONVOYS = """
name: two parties, one activity id each
start: "2024-04-01T16:00:00Z"
parties: [{id: north}, {id: relief}, {id: aid}]
territories:
  north: {type: Polygon, coordinates: [[[34.8, 31.4], [35.2, 31.4], [35.2, 31.7], [34.8, 31.7], [34.8, 31.4]]]}
steps:
  - as: aid
    asset: {id: clinic, kind: site, name: Clinic, position: "31.5000, 34.9510"}
  - as: relief
    propose: {id: convoy-3, kind: movement, purpose: convoy,
              volumes: [{area: {type: LineString, coordinates: [[34.85, 31.45], [34.95, 31.50], [35.05, 31.55]]}, width_m: 300,
                         window: ["2024-04-01T18:00:00Z", "2024-04-01T23:00:00Z"]}]}
    expect: {result: accepted, affected: [aid, north]}
  - as: north
    propose: {id: convoy-3, kind: patrol, purpose: escort,
              volumes: [{position: "31.5000, 34.9500", radius_m: 100, window: ["2024-04-01T18:00:00Z", "2024-04-01T23:00:00Z"]}]}
    expect: {result: accepted, affected: [aid]}
  - as: north
    acknowledge: {activity: convoy-3}
    expect: {error: true}
  - as: north
    acknowledge: {activity: relief/convoy-3}
    expect: {result: accepted, state: proposed}
  - as: aid
    acknowledge: {activity: north/convoy-3}
    expect: {state: cleared}
  - as: aid
    acknowledge: {activity: relief/convoy-3}
    expect: {state: cleared}
  - at: "2024-04-01T18:05:00Z"
    as: relief
    activate: {activity: convoy-3}
    expect: {result: accepted, state: active}
  - as: north
    check: {position: "31.5000, 34.9500", kind: ground, activity: north/convoy-3}
    expect: {flags: [], state: {convoy-3: cleared, relief/convoy-3: active}}
  - as: relief
    complete: {activity: relief/convoy-3}
    expect: {state: completed}
"""


def test_replay_a_plain_id_is_the_step_partys_own_and_proposer_slash_id_anyones(fresh_db: str) -> None:
    """north and relief each have a convoy-3: a plain id is the acting party's own, PROPOSER/ID names either."""
    scenario = yaml.safe_load(TWO_CONVOYS)
    outcomes = play(scenario, fresh_db)
    assert [(o.line["step"], f) for o in outcomes for f in o.failures] == []
    refused = outcomes[3].line["error"]
    assert (refused["code"], refused["field"]) == ("forbidden", "id"), "north's own convoy-3: it cannot answer it"
    assert [o.line.get("party") for o in outcomes[4:8]] == ["relief", "north", "relief", "relief"]


def test_replay_a_plain_id_that_concerns_the_party_once_needs_no_proposer(fresh_db: str) -> None:
    scenario = yaml.safe_load(TWO_CONVOYS)
    answer = {"as": "north", "acknowledge": {"activity": "convoy-3"}, "expect": {"state": "proposed"}}
    scenario["steps"] = [*scenario["steps"][:2], answer]
    (*_, answered) = play(scenario, fresh_db)
    assert answered.failures == [] and answered.line["party"] == "relief" and list(answered.line["answers"]) == ["north"]


@pytest.mark.parametrize(
    "step",
    [
        pytest.param({"as": "aid", "acknowledge": {"activity": "convoy-3"}}, id="action"),
        pytest.param({"tick": {}, "expect": {"state": {"convoy-3": "proposed"}}}, id="state-after-a-tick"),
    ],
)
def test_replay_a_plain_id_several_parties_use_is_ambiguous(fresh_db: str, step: dict[str, Any]) -> None:
    """aid is affected by both convoy-3s: the scenario must say whose (exit 2, naming both)."""
    scenario = yaml.safe_load(TWO_CONVOYS)
    scenario["steps"] = [*scenario["steps"][:3], step]
    ambiguous = r"step 4: .*'convoy-3' is ambiguous.*north/convoy-3, relief/convoy-3; write PROPOSER/ID"
    with pytest.raises(ScenarioError, match=ambiguous):
        play(scenario, fresh_db)


def test_replay_a_malformed_activity_name_is_the_steps_error(fresh_db: str) -> None:
    scenario = yaml.safe_load(TWO_CONVOYS)
    scenario["steps"] = [*scenario["steps"][:3], {"as": "aid", "acknowledge": {"activity": "north/convoy-3/x"}}]
    (*_, refused) = play(scenario, fresh_db)
    assert (refused.line["error"]["code"], refused.line["error"]["field"]) == ("invalid_input", "activity")
