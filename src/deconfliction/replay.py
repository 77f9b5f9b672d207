"""Scenario replay: play a YAML timeline of party actions against a fresh store and check expectations.

The format is ../shared/scenarios/README.md. Each step becomes a call on the same
:class:`~deconfliction.service.Service` that the HTTP API uses, as a liaison of the
step's party, with the scenario's clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from deconfliction.clock import ManualClock
from deconfliction.errors import DeconflictionError, InvalidInput
from deconfliction.geo import LatLon, geodesic_m
from deconfliction.model import Role, check_time, parse_duration_s
from deconfliction.service import ROOT, Caller, Service
from deconfliction.settings import Settings
from deconfliction.stores import Store

ACTIONS = ("aor", "confirm", "asset", "report", "zone", "check")


class ScenarioError(InvalidInput):
    """The scenario file itself is malformed (exit code 2), as opposed to a failed expectation."""

    code = "invalid_scenario"


@dataclass
class StepOutcome:
    """What one step printed, and which of its expectations failed."""

    line: dict[str, Any]
    failures: list[str] = field(default_factory=list)


def load_scenario(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list) or not data.get("start"):
        raise ScenarioError(f"{path}: a scenario needs 'start' and a list of 'steps'")
    return data


def run_scenario(scenario: Mapping[str, Any], store: Store) -> Iterator[StepOutcome]:
    """Yield one outcome per step. Raises ScenarioError when the file cannot be played."""
    start = check_time(_when(scenario["start"]), "start")
    clock = ManualClock(start)
    settings = Settings.from_env().with_buffers(scenario.get("buffers_m") or {})
    service = Service(store, clock, settings)
    for party in scenario.get("parties") or []:
        service.create_party(ROOT, {"id": party["id"], "name": party.get("name") or party["id"]})
    for party_id, area in (scenario.get("territories") or {}).items():
        service.put_territory(ROOT, party_id, area)
    for number, step in enumerate(scenario["steps"], start=1):
        yield _play(service, clock, number, step)


def _when(value: object) -> object:
    # YAML reads unquoted ISO times as datetimes; quoted ones stay text. Both are fine.
    return value.isoformat() if isinstance(value, datetime) else value


def _play(service: Service, clock: ManualClock, number: int, step: object) -> StepOutcome:
    if not isinstance(step, Mapping) or "as" not in step:
        raise ScenarioError(f"step {number}: every step needs 'as' and one action")
    actions = [a for a in ACTIONS if a in step]
    if len(actions) != 1:
        raise ScenarioError(f"step {number}: exactly one of {', '.join(ACTIONS)} is needed, found {actions or 'none'}")
    (op,) = actions
    if "at" in step:
        at = check_time(_when(step["at"]), f"steps.{number}.at")
        if at < clock.now():
            raise ScenarioError(f"step {number}: 'at' {at.isoformat()} moves the clock back")
        clock.advance_to(at)
    caller = Caller(str(step["as"]), Role.LIAISON)
    if caller.party not in service.picture.parties:
        raise ScenarioError(f"step {number}: party {caller.party!r} is not among the scenario's parties")
    version_before = service.picture.version
    line: dict[str, Any] = {"step": number, "op": op}
    try:
        line.update(_act(service, caller, op, step[op]))
    except DeconflictionError as exc:
        line["error"] = exc.to_dict()
    outcome = StepOutcome(line)
    expect = step.get("expect")
    if expect is not None:
        outcome.failures = _judge(expect, line, service.picture.version != version_before and "error" in line)
    return outcome


def _act(service: Service, caller: Caller, op: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidInput(f"the {op} action needs a mapping of fields", field=op)
    body = dict(body)
    if op == "aor":
        body["freshness_s"] = parse_duration_s(body.pop("freshness", None), "freshness")
        return service.declare_aor(caller, body)
    if op == "confirm":
        return service.confirm_aor(caller, str(body.get("aor")))
    if op == "asset":
        return service.register_asset(caller, body)
    if op == "report":
        if "stale_after" in body:
            body["stale_after_s"] = parse_duration_s(body.pop("stale_after"), "stale_after")
        return service.report(caller, body)
    if op == "zone":
        if isinstance(body.get("window"), list | tuple):
            body["window"] = [_when(t) for t in body["window"]]
        return service.declare_zone(caller, body)
    if isinstance(body.get("window"), list | tuple):
        body["window"] = [_when(t) for t in body["window"]]
    return service.check(caller, body)


def _judge(expect: object, line: Mapping[str, Any], changed_on_error: bool) -> list[str]:
    if not isinstance(expect, Mapping):
        raise ScenarioError(f"step {line['step']}: 'expect' must be a mapping")
    failures = []
    error = line.get("error")
    for key, wanted in expect.items():
        if key == "error":
            if bool(wanted) != (error is not None):
                failures.append(f"expected {'an error' if wanted else 'no error'}, got {error or 'success'}")
            elif changed_on_error:
                failures.append("the step was refused but the picture changed")
            continue
        if error is not None:
            failures.append(f"expected {key}={wanted!r}, but the step was refused: {error['message']}")
            continue
        if key == "status":
            if line.get("status") != wanted:
                failures.append(f"expected status {wanted}, got {line.get('status')}")
        elif key == "parties":
            got = sorted({c["party"] for c in line.get("conflicts", [])})
            if got != sorted(wanted or []):
                failures.append(f"expected conflicts with {sorted(wanted or [])}, got {got}")
        elif key == "territory":
            territory = (line.get("border") or {}).get("territory")
            if territory != wanted:
                failures.append(f"expected territory {wanted}, got {territory}")
        elif key == "position":
            pos = line.get("position") or {}
            d = geodesic_m(LatLon(pos["lat"], pos["lon"]), LatLon(float(wanted["lat"]), float(wanted["lon"])))
            if d > float(wanted["within_m"]):
                failures.append(f"read-back {pos['lat']}, {pos['lon']} is {d:.1f} m from the expected point")
        else:
            raise ScenarioError(f"step {line['step']}: unknown expectation {key!r}")
    return failures
