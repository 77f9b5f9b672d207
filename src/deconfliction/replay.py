"""Scenario replay: play a YAML timeline of party actions against a fresh store and check expectations.

The format is ../shared/scenarios/README.md. Each step becomes a call on the same
:class:`~deconfliction.service.Service` that the HTTP API uses, as a liaison of the
step's party, with the scenario's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from deconfliction.clock import ManualClock
from deconfliction.engine.changes import PictureKey
from deconfliction.errors import DeconflictionError, InvalidInput, StalePicture
from deconfliction.geo import LatLon, geodesic_m
from deconfliction.model import Role, activity_ref, check_time, parse_duration_s
from deconfliction.service import ROOT, Caller, Service
from deconfliction.settings import Settings
from deconfliction.stores import Store

ACTIONS = (
    "aor",
    "confirm",
    "asset",
    "report",
    "zone",
    "check",
    "propose",
    "acknowledge",
    "object",
    "activate",
    "complete",
    "cancel",
    "tick",
)
EXPECTATIONS = ("error", "result", "status", "parties", "territory", "position", "state", "affected", "flags", "events")


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


@dataclass
class Run:
    """A scenario being played: its service, its clock and the picture version after each step (for old keys)."""

    service: Service
    clock: ManualClock
    versions: dict[int, int] = field(default_factory=dict)


def run_scenario(scenario: Mapping[str, Any], store: Store) -> Iterator[StepOutcome]:
    """Yield one outcome per step. Raises ScenarioError when the file cannot be played."""
    start = check_time(_when(scenario["start"]), "start")
    clock = ManualClock(start)
    settings = Settings.from_env().with_buffers(scenario.get("buffers_m") or {})
    run = Run(Service(store, clock, settings), clock)
    for party in scenario.get("parties") or []:
        run.service.create_party(ROOT, {"id": party["id"], "name": party.get("name") or party["id"]})
    for party_id, area in (scenario.get("territories") or {}).items():
        run.service.put_territory(ROOT, party_id, area)
    run.versions[0] = run.service.picture.version
    for number, step in enumerate(scenario["steps"], start=1):
        yield _play(run, number, step)
        run.versions[number] = run.service.picture.version
    run.service.ledger_head()  # the record of the scenario ends with a signed head, so that it can be verified


def _when(value: object) -> object:
    # YAML reads unquoted ISO times as datetimes; quoted ones stay text. Both are fine.
    return value.isoformat() if isinstance(value, datetime) else value


def _play(run: Run, number: int, step: object) -> StepOutcome:
    service, clock = run.service, run.clock
    if not isinstance(step, Mapping):
        raise ScenarioError(f"step {number}: every step needs 'as' and one action")
    actions = [a for a in ACTIONS if a in step]
    if len(actions) != 1:
        raise ScenarioError(f"step {number}: exactly one of {', '.join(ACTIONS)} is needed, found {actions or 'none'}")
    (op,) = actions
    if "as" not in step and op != "tick":
        raise ScenarioError(f"step {number}: every step but a tick needs 'as', the acting party")
    if "at" in step:
        at = check_time(_when(step["at"]), f"steps.{number}.at")
        if at < clock.now():
            raise ScenarioError(f"step {number}: 'at' {at.isoformat()} moves the clock back")
        clock.advance_to(at)
        service.tick()  # what a running server would have fired while the clock moved
    caller = Caller(str(step.get("as")), Role.LIAISON)
    if op != "tick" and caller.party not in service.picture.parties:
        raise ScenarioError(f"step {number}: party {caller.party!r} is not among the scenario's parties")
    version_before = service.picture.version
    logged_before = service.store.last_seq()
    line: dict[str, Any] = {"step": number, "op": op}
    try:
        line.update(_act(run, caller, op, step[op]))
    except ScenarioError as exc:
        raise ScenarioError(f"step {number}: {exc.message}", field=exc.field) from exc
    except DeconflictionError as exc:
        line["error"] = exc.to_dict()
    outcome = StepOutcome(line)
    expect = step.get("expect")
    if expect is not None:
        logged = [e.type for e in service.store.events(logged_before, 100_000) if e.type != "check.asked"]
        try:
            states = _states(service, step.get("as"), expect)
        except ScenarioError as exc:
            raise ScenarioError(f"step {number}: expect: {exc.message}", field=exc.field) from exc
        changed = service.picture.version != version_before and "error" in line
        outcome.failures = _judge(expect, line, changed, Observed(logged, states))
    return outcome


@dataclass(frozen=True)
class Observed:
    """What a step did beyond its answer: the event types it logged, and the states of the activities it expects."""

    logged: list[str]
    states: dict[str, str]  # by the name the expectation gives (ID or PROPOSER/ID)


def _activity(service: Service, party: str | None, named: object) -> tuple[str, str] | None:
    """(proposer, id) of the activity a step names, or None when there is none by that name.

    ``PROPOSER/ID`` names it outright. A plain ``ID`` is the step party's own activity, or
    else the one activity by that id that concerns the party (with no party: the one by
    that id); when several parties' activities answer to it, the scenario must say whose.
    """
    proposer, activity_id = activity_ref(named, "activity")
    if proposer is not None:
        return proposer, activity_id
    if party is not None and (party, activity_id) in service.picture.activities:
        return party, activity_id
    found = sorted(
        key for key, a in service.picture.activities.items() if a.id == activity_id and (party is None or a.concerns(party))
    )
    if len(found) > 1:
        whose = "" if party is None else f" that concern {party}"
        raise ScenarioError(
            f"activity {activity_id!r} is ambiguous: the activities{whose} by that id are "
            f"{', '.join(f'{p}/{i}' for p, i in found)}; write PROPOSER/ID"
        )
    return found[0] if found else None


def _states(service: Service, party: object, expect: object) -> dict[str, str]:
    """The state of each activity an ``expect: {state: {ACTIVITY: STATE}}`` names, as the step's party would name it."""
    wanted = expect.get("state") if isinstance(expect, Mapping) else None
    if not isinstance(wanted, Mapping):
        return {}
    states = {}
    for named in wanted:
        try:
            key = _activity(service, None if party is None else str(party), str(named))
        except ScenarioError:
            raise
        except InvalidInput as exc:
            raise ScenarioError(f"state: {exc.message}", field="state") from exc
        if key is not None:
            states[str(named)] = service.picture.activities[key].state.value
    return states


def _key(body: dict[str, Any], versions: Mapping[int, int], attempt: Callable[[dict[str, Any]], object]) -> None:
    """Turn a step's ``key: latest | none | {as_of_step: N}`` into a picture key, as the party would hold it.

    ``latest`` is the key of a careful client that looks at the area right before: the
    service's refusal of a keyless request (``attempt``) carries exactly that key.
    ``{as_of_step: N}`` is the key it would have kept from a look after step N: an old map.
    """
    wanted = body.pop("key", "latest")
    if wanted in ("none", None):
        return
    try:
        attempt(body)
    except StalePicture as exc:
        fresh = PictureKey.parse(exc.details["key"], "key")
    else:
        raise ScenarioError("the step was accepted without a picture key")
    if wanted == "latest":
        body["key"] = str(fresh)
    elif isinstance(wanted, Mapping) and wanted.get("as_of_step") in versions:
        body["key"] = str(PictureKey(versions[wanted["as_of_step"]], fresh.box))
    else:
        raise ScenarioError(f"key is latest, none or {{as_of_step: N}} with N an earlier step, not {wanted!r}")


def _windows(body: dict[str, Any]) -> None:
    # YAML reads unquoted times as datetimes; the service takes ISO text.
    if isinstance(body.get("window"), list | tuple):
        body["window"] = [_when(t) for t in body["window"]]
    for volume in body.get("volumes") or []:
        if isinstance(volume, dict):
            _windows(volume)


def _act(run: Run, caller: Caller, op: str, body: Any) -> dict[str, Any]:
    service = run.service
    if op == "tick":
        return _tick(run, body)
    if not isinstance(body, Mapping):
        raise InvalidInput(f"the {op} action needs a mapping of fields", field=op)
    body = dict(body)
    _windows(body)
    if op in ("acknowledge", "object", "activate", "complete", "cancel"):
        assert caller.party is not None
        named = body.pop("activity", None)
        # No activity by that name: ask for the step party's own by that id, and the service answers "not found".
        proposer, activity = _activity(service, caller.party, named) or (caller.party, str(named))
        if op == "activate":
            _key(body, run.versions, lambda b: service.activate(caller, proposer, activity, b))
            return service.activate(caller, proposer, activity, body)
        if op == "object":
            return service.object(caller, proposer, activity, body)
        if op == "cancel":
            return service.cancel(caller, proposer, activity, body)
        if op == "acknowledge":
            return service.acknowledge(caller, proposer, activity)
        return service.complete(caller, proposer, activity)
    if op == "propose":
        _key(body, run.versions, lambda b: service.propose(caller, b))
        return service.propose(caller, body)
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
        return service.declare_zone(caller, body)
    if isinstance(body.get("activity"), str) and body["activity"].startswith(f"{caller.party}/"):
        body["activity"] = body["activity"].split("/", 1)[1]  # a check names one of the asker's own activities, by id
    return service.check(caller, body)


def _tick(run: Run, value: object) -> dict[str, Any]:
    """``tick: 11m`` moves the clock on by a duration (``tick: {}`` with ``at`` only fires what is due)."""
    if isinstance(value, str | int | float):
        run.clock.advance_to(run.clock.now() + timedelta(seconds=parse_duration_s(value, "tick")))
    elif value not in (None, {}):
        raise ScenarioError(f"tick takes a duration such as 11m, not {value!r}")
    return {"now": run.clock.now().isoformat(), "fired": run.service.tick()}


def _judge(expect: object, line: Mapping[str, Any], changed_on_error: bool, observed: Observed) -> list[str]:
    if not isinstance(expect, Mapping):
        raise ScenarioError(f"step {line['step']}: 'expect' must be a mapping")
    failures = []
    error = line.get("error")
    for key, wanted in expect.items():
        if key not in EXPECTATIONS:
            raise ScenarioError(f"step {line['step']}: unknown expectation {key!r}")
        if key in ("error", "result"):
            refused = bool(wanted) if key == "error" else wanted == "rejected"
            if key == "result" and wanted not in ("accepted", "rejected"):
                raise ScenarioError(f"step {line['step']}: result is accepted or rejected, not {wanted!r}")
            if refused != (error is not None):
                failures.append(f"expected {'an error (rejected)' if refused else 'acceptance'}, got {error or 'acceptance'}")
            elif changed_on_error:
                failures.append("the step was refused but the picture changed")
            continue
        if key == "state" and isinstance(wanted, Mapping):  # states of named activities, after any step
            for activity, state in wanted.items():
                if observed.states.get(activity) != state:
                    failures.append(f"expected activity {activity} {state}, it is {observed.states.get(activity, 'unknown')}")
            continue
        if key == "events":
            missing = [t for t in wanted or [] if t not in observed.logged]
            if missing:
                failures.append(f"expected the step to log {missing}, it logged {observed.logged}")
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
        elif key == "state":
            if line.get("state") != wanted:
                failures.append(f"expected state {wanted}, got {line.get('state')}")
        elif key in ("affected", "flags"):
            got = sorted(line.get(key) or [])
            if got != sorted(wanted or []):
                failures.append(f"expected {key} {sorted(wanted or [])}, got {got}")
        elif key == "position":
            pos = line.get("position") or {}
            d = geodesic_m(LatLon(pos["lat"], pos["lon"]), LatLon(float(wanted["lat"]), float(wanted["lon"])))
            if d > float(wanted["within_m"]):
                failures.append(f"read-back {pos['lat']}, {pos['lon']} is {d:.1f} m from the expected point")
    return failures
