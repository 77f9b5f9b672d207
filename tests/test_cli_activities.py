"""`deconflict activity`, `look` and `events`, used as an operator would: on a store (each ``--store`` selects), in process.

Each command opens the store anew, as a restarted server does: a picture key is honoured only
if nothing was written since it was issued, so the workflow below takes the fresh key that a
refusal prints, as a user would.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deconfliction.cli import app
from deconfliction.client import RemoteError, sse_events

runner = CliRunner()
KEY = re.compile(r"re-run with --key (\S+)")
POST = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [71.015, 34.55]},
    "properties": {"object": "asset", "id": "post-1", "kind": "site", "disclosure": "exact"},
}


def run(*args: str) -> tuple[int, list, str]:
    result = runner.invoke(app, list(args))
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith(("{", "["))]
    return result.exit_code, lines, result.stderr


def fresh_key(stderr: str) -> str:
    found = KEY.search(stderr)
    assert found, stderr
    return found.group(1)


@pytest.fixture
def db(fresh_db: str, tmp_path: Path) -> str:
    """A store with alfa, bravo (a post near the activities below) and charlie (nothing nearby)."""
    path = fresh_db
    assert run("init", "--db", path)[0] == 0
    for party in ("alfa", "bravo", "charlie"):
        assert run("party", "create", party, party.title(), "--db", path)[0] == 0
    picture = tmp_path / "bravo.geojson"
    picture.write_text(json.dumps({"type": "FeatureCollection", "features": [POST]}))
    assert run("import", str(picture), "--db", path, "--as", "bravo")[0] == 0
    return path


def window() -> tuple[str, str]:
    now = datetime.now(UTC).replace(microsecond=0)
    return (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"), (now + timedelta(hours=2)).isoformat()


@pytest.fixture
def patrol_yaml(tmp_path: Path) -> Path:
    """A patrol 55 m from bravo's post, in YAML with unquoted times (YAML reads them as datetimes)."""
    start, end = window()
    file = tmp_path / "patrol.yaml"
    file.write_text(
        "id: p1\nkind: patrol\npurpose: route clearance\nvolumes:\n"
        f'  - position: "34.5505, 71.0150"\n    radius_m: 100\n    window: {{start: {start}, end: {end}}}\n'
    )
    return file


@pytest.fixture
def fires_json(tmp_path: Path) -> Path:
    start, end = window()
    body = {
        "id": "f1",
        "kind": "fires",
        "purpose": "registration",
        "volumes": [{"position": "34.5520, 71.0130", "window": {"start": start, "end": end}}],
        "key": "not a key",
    }
    file = tmp_path / "fires.json"
    file.write_text(json.dumps(body))
    return file


def propose(db: str, file: Path) -> dict:
    code, _, err = run("activity", "propose", str(file), "--db", db, "--as", "alfa")
    assert code == 2
    code, (activity,), err = run("activity", "propose", str(file), "--key", fresh_key(err), "--db", db, "--as", "alfa")
    assert code == 0, err
    return activity


def test_the_whole_workflow_from_the_command_line(db: str, patrol_yaml: Path) -> None:
    code, out, err = run("activity", "propose", str(patrol_yaml), "--db", db, "--as", "alfa")
    assert code == 2 and out == []
    assert "refused (stale_picture, key)" in err and "changed: []" in err
    code, (activity,), err = run("activity", "propose", str(patrol_yaml), "--key", fresh_key(err), "--db", db, "--as", "alfa")
    assert code == 0, err
    assert (activity["id"], activity["state"], activity["affected"]) == ("p1", "proposed", ["bravo"])
    assert activity["volumes"][0]["window"]["start"].endswith("+00:00")

    code, (answered,), _ = run("activity", "acknowledge", "alfa/p1", "--db", db, "--as", "bravo")
    assert code == 0 and answered["state"] == "cleared" and answered["answers"]["bravo"]["answer"] == "acknowledged"

    code, _, err = run("activity", "activate", "p1", "--db", db, "--as", "alfa")
    assert code == 2 and "stale_picture" in err
    code, (active,), err = run("activity", "activate", "p1", "--key", fresh_key(err), "--db", db, "--as", "alfa")
    assert code == 0, err
    assert active["state"] == "active" and active["override"] is None

    code, (done,), _ = run("activity", "complete", "p1", "--db", db, "--as", "alfa")
    assert code == 0 and done["state"] == "completed" and done["end_reason"] == "completed by the proposer"
    code, (shown,), _ = run("activity", "show", "alfa/p1", "--db", db, "--as", "bravo")
    assert code == 0 and shown["state"] == "completed"
    code, _, err = run("activity", "complete", "p1", "--db", db, "--as", "alfa")
    assert code == 2 and "refused (invalid_state, id)" in err


def test_activating_an_objected_activity_needs_an_override(db: str, fires_json: Path) -> None:
    code, _, err = run("activity", "propose", str(fires_json), "--db", db, "--as", "alfa")
    assert code == 2 and "refused (invalid_input, key)" in err  # the file's malformed key is read, not ignored
    world_key = run("look", "--db", db, "--as", "alfa")[1][0]["picture_key"]
    code, (activity,), err = run("activity", "propose", str(fires_json), "--key", world_key, "--db", db, "--as", "alfa")
    assert code == 0, err  # --key wins over the file's key
    assert activity["affected"] == ["bravo"]
    code, (objected,), _ = run("activity", "object", "alfa/f1", "--reason", "post manned", "--db", db, "--as", "bravo")
    assert code == 0 and objected["state"] == "objected" and objected["answers"]["bravo"]["reason"] == "post manned"

    code, out, err = run("activity", "activate", "f1", "--db", db, "--as", "alfa")
    assert code == 2 and out == []
    assert "refused (invalid_state, override)" in err and "objected by: bravo" in err

    _, _, err = run("activity", "activate", "f1", "--override", "troops in contact", "--db", db, "--as", "alfa")
    key = fresh_key(err)  # the override is good; the key (none given) is what is refused now
    code, (active,), err = run(
        "activity", "activate", "f1", "--override", "troops in contact", "--key", key, "--db", db, "--as", "alfa"
    )
    assert code == 0, err
    assert (active["state"], active["override"]) == ("active", "troops in contact")


def test_answers_and_steps_are_refused_to_the_wrong_party(db: str, patrol_yaml: Path) -> None:
    propose(db, patrol_yaml)
    code, _, err = run("activity", "acknowledge", "alfa/p1", "--db", db, "--as", "alfa")
    assert code == 2 and "refused (forbidden, id)" in err
    code, _, err = run("activity", "cancel", "alfa/p1", "--reason", "not yours", "--db", db, "--as", "bravo")
    assert code == 2 and "refused (forbidden, id)" in err
    code, _, err = run("activity", "cancel", "p1", "--reason", "not yours", "--db", db, "--as", "bravo")
    assert code == 2 and "refused (not_found, id)" in err, "a plain id names bravo's own activity: it has none"
    code, _, err = run("activity", "show", "alfa/p1", "--db", db, "--as", "charlie")
    assert code == 2 and "refused (not_found, id)" in err
    code, (cancelled,), _ = run("activity", "cancel", "p1", "--reason", "weather", "--db", db, "--as", "alfa")
    assert code == 0 and (cancelled["state"], cancelled["end_reason"]) == ("cancelled", "weather")


def test_an_answer_names_the_proposer(db: str, patrol_yaml: Path) -> None:
    """Ids are each proposer's own: acknowledge and object take PROPOSER/ID; a malformed name is refused as such."""
    propose(db, patrol_yaml)
    code, out, err = run("activity", "acknowledge", "p1", "--db", db, "--as", "bravo")
    assert code == 2 and out == [] and "refused (invalid_input, activity)" in err and "PROPOSER/ID" in err
    code, _, err = run("activity", "object", "p1", "--reason", "no", "--db", db, "--as", "bravo")
    assert code == 2 and "refused (invalid_input, activity)" in err
    code, _, err = run("activity", "show", "alfa/p1/x", "--db", db, "--as", "bravo")
    assert code == 2 and "refused (invalid_input, activity)" in err
    code, (shown,), _ = run("activity", "show", "p1", "--db", db, "--as", "alfa")
    assert (shown["party"], shown["id"]) == ("alfa", "p1"), "a plain id is the party's own"


def test_activity_list_shows_only_what_concerns_the_party(db: str, patrol_yaml: Path) -> None:
    propose(db, patrol_yaml)
    assert [a["id"] for a in run("activity", "list", "--db", db, "--as", "bravo")[1][0]] == ["p1"]
    assert run("activity", "list", "--db", db, "--as", "charlie")[1] == [[]]


def test_events_print_one_json_object_a_line_as_the_party_may_see_them(db: str, patrol_yaml: Path) -> None:
    propose(db, patrol_yaml)
    code, lines, _ = run("events", "--db", db, "--as", "bravo")
    assert code == 0
    proposed = [e for e in lines if e["type"] == "activity.proposed"]
    assert [e["data"]["id"] for e in proposed] == ["p1"]
    assert [e["seq"] for e in lines] == sorted(e["seq"] for e in lines)
    assert "activity.proposed" not in [e["type"] for e in run("events", "--db", db, "--as", "charlie")[1]]

    seq = proposed[0]["seq"]
    assert run("events", "--cursor", str(seq - 1), "--limit", "1", "--db", db, "--as", "bravo")[1] == proposed
    assert run("events", "--cursor", str(seq), "--db", db, "--as", "bravo")[1] == []


def test_look_prints_a_key_and_with_an_area_what_is_there(db: str, patrol_yaml: Path) -> None:
    code, (whole,), _ = run("look", "--db", db, "--as", "alfa")
    assert code == 0 and re.fullmatch(r"\d+@-180\.000000,-90\.000000,180\.000000,90\.000000", whole["picture_key"])
    code, (there,), _ = run("look", "--area", "71.0,34.54,71.03,34.56", "--db", db, "--as", "alfa")
    assert code == 0 and there["picture_key"] == f"{whole['picture_version']}@71.000000,34.540000,71.030000,34.560000"
    assert [(a["party"], a["id"]) for a in there["assets"]] == [("bravo", "post-1")]
    # a key from look is what propose takes, when nothing was written in between
    code, (activity,), err = run(
        "activity", "propose", str(patrol_yaml), "--key", there["picture_key"], "--db", db, "--as", "alfa"
    )
    assert code == 0 and activity["state"] == "proposed", err


def test_look_refuses_a_malformed_area_naming_it(db: str) -> None:
    code, out, err = run("look", "--area", "71.0,34.54", "--db", db, "--as", "alfa")
    assert code == 2 and out == [] and "refused (invalid_input, area)" in err


@pytest.mark.parametrize("text", ["kind: [patrol", "- just\n- a list\n"], ids=["not-yaml", "not-an-object"])
def test_propose_refuses_an_unreadable_file(db: str, tmp_path: Path, text: str) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    code, out, err = run("activity", "propose", str(file), "--db", db, "--as", "alfa")
    assert code == 2 and out == [] and "cannot read" in err


def test_a_servers_refusal_keeps_its_extra_fields() -> None:
    body = {
        "error": {
            "code": "stale_picture",
            "message": "the picture changed there",
            "field": "key",
            "key": "9@71.0,34.5,71.1,34.6",
            "changed": [{"object": "zone", "party": "bravo", "id": "nfa", "version": 8}],
        }
    }
    error = RemoteError(409, body)
    assert (error.status, error.code, error.field) == (409, "stale_picture", "key")
    assert error.details == {"key": "9@71.0,34.5,71.1,34.6", "changed": body["error"]["changed"]}
    assert error.to_dict() == body["error"]


def test_server_sent_events_are_read_message_by_message() -> None:
    lines = [
        "id: 3",
        "event: stream.opened",
        'data: {"seq": 3, "type": "stream.opened", "data": {"cursor": 3}}',
        "",
        ": keep-alive",
        "",
        "id: 4",
        "event: zone.declared",
        'data: {"seq": 4, "type": "zone.declared",',
        'data:  "data": {"id": "nfa"}}',
        "",
    ]
    assert [e["seq"] for e in sse_events(iter(lines))] == [3, 4]
    assert list(sse_events(iter(lines)))[1]["data"] == {"id": "nfa"}
