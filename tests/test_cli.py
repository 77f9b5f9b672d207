"""The `deconflict` command, used as an operator would: on a store (each ``--store`` selects), in process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deconfliction.cli import app
from deconfliction.model import Role
from deconfliction.service import ROOT, Caller, Service
from deconfliction.stores import MemoryStore
from tests.conftest import service_on

runner = CliRunner()


def run(*args: str) -> tuple[int, list[dict], str]:
    result = runner.invoke(app, list(args))
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith(("{", "["))]
    return result.exit_code, lines, result.stderr


@pytest.fixture
def db(fresh_db: str) -> str:
    code, (out,), _ = run("init", "--db", fresh_db)
    assert code == 0 and len(out["admin_token"]) >= 40
    return fresh_db


def test_every_token_made_can_be_given_on_the_command_line_as_it_was_shown() -> None:
    """A bare URL-safe token begins with '-' once in 64, and the command line took it for an option."""
    service = Service(MemoryStore())
    tokens = [service.create_token(ROOT, None, "auditor") for _ in range(400)]
    assert all(re.fullmatch(r"dcf_[A-Za-z0-9_-]{43}", token) for token in tokens)


def test_init_prints_an_admin_token_that_the_store_knows(db: str) -> None:
    with service_on(db) as service:
        assert service.picture.version == 0
    code, _, err = run("init", "--db", db)
    assert code == 2 and "initialised already" in err


def test_party_and_token_commands_on_a_store(db: str) -> None:
    assert run("party", "create", "alfa", "Alfa Army", "--db", db)[:2] == (
        0,
        [{"id": "alfa", "name": "Alfa Army", "stale_after_s": 1800.0, "default_disclosure": "exact"}],
    )
    code, (parties,), _ = run("party", "list", "--db", db)
    assert code == 0 and [p["id"] for p in parties] == ["alfa"]
    code, (made,), _ = run("token", "create", "alfa", "--role", "viewer", "--db", db)
    assert code == 0 and made["role"] == "viewer"
    with service_on(db) as service:
        assert service.authenticate(made["token"]).party == "alfa"
    assert run("token", "revoke", made["token"], "--db", db)[:2] == (0, [{"revoked": True, "party": "alfa", "role": "viewer"}])
    with service_on(db) as service:
        assert not service.holds(made["token"])
    code, _, err = run("token", "revoke", made["token"], "--db", db)
    assert code == 2 and "no such token" in err


def test_party_create_refuses_a_bad_id_with_exit_2(db: str) -> None:
    code, out, err = run("party", "create", "Alfa!", "Alfa", "--db", db)
    assert code == 2 and out == [] and "not a valid id" in err


def test_check_on_a_store_as_a_party(db: str) -> None:
    run("party", "create", "alfa", "Alfa", "--db", db)
    code, (answer,), _ = run("check", "42S XD 84698 25204", "--kind", "fires", "--db", db, "--as", "alfa")
    assert code == 0 and answer["status"] == "clear" and answer["position"]["mgrs"] == "42S XD 84698 25204"
    assert run("check", "42S XD 84698 25204", "--db", db, "--as", "alfa", "--fail-unless-clear")[0] == 0


def test_a_position_south_or_west_is_a_position_not_an_option(db: str) -> None:
    run("party", "create", "alfa", "Alfa", "--db", db)
    code, (answer,), _ = run("check", "-34.55, -58.4", "--kind", "fires", "--db", db, "--as", "alfa")
    assert code == 0 and answer["position"]["lat"] == -34.55 and answer["position"]["lon"] == -58.4
    code, (out,), _ = run("readback", "-34.55, -58.4")
    assert code == 0 and out["position"]["mgrs"].startswith("21H")
    code, _, err = run("check", "-34.55, -58.4", "--kindd", "fires", "--db", db, "--as", "alfa")
    assert code == 2 and "fires" in err  # a mistyped option is still refused, not read as the position


def test_check_refuses_an_ambiguous_position(db: str) -> None:
    run("party", "create", "alfa", "Alfa", "--db", db)
    code, _, err = run("check", "33S 500000 3800000", "--db", db, "--as", "alfa")
    assert code == 2 and "ambiguous" in err


def test_check_needs_db_or_server() -> None:
    assert run("check", "34.5, 71.0")[0] == 2


def test_import_geojson_features(db: str, tmp_path: Path) -> None:
    run("party", "create", "alfa", "Alfa", "--db", db)
    square = {"type": "Polygon", "coordinates": [[[71.0, 34.4], [71.1, 34.4], [71.1, 34.5], [71.0, 34.4]]]}
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [71.015, 34.55]},
                "properties": {"object": "asset", "id": "volcano", "kind": "site", "disclosure": "hidden"},
            },
            {"type": "Feature", "geometry": square, "properties": {"object": "zone", "id": "nfa", "kind": "no_fire_area"}},
            {"type": "Feature", "geometry": square, "properties": {"object": "aor", "id": "a1", "freshness_s": 3600}},
        ],
    }
    file = tmp_path / "picture.geojson"
    file.write_text(json.dumps(collection))
    code, lines, err = run("import", str(file), "--db", db, "--as", "alfa")
    assert code == 0, err
    assert [(line["object"], line["id"]) for line in lines] == [("asset", "volcano"), ("zone", "nfa"), ("aor", "a1")]
    with service_on(db) as service:
        summary = service.summary()
    assert (summary["assets"], summary["positions"], summary["zones"], summary["aors"]) == (1, 1, 1, 1)


def test_import_names_the_refused_feature(db: str, tmp_path: Path) -> None:
    run("party", "create", "alfa", "Alfa", "--db", db)
    bad = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[[71.0, 34.4], [71.1, 34.4], [71.1, 34.5]]]},
                "properties": {"object": "zone", "id": "z", "kind": "protected_area"},
            }
        ],
    }
    file = tmp_path / "bad.geojson"
    file.write_text(json.dumps(bad))
    code, _, err = run("import", str(file), "--db", db, "--as", "alfa")
    assert code == 2 and "features.0.area.coordinates.0" in err


def test_demo_loads_a_picture_and_prints_a_token_per_party(fresh_db: str) -> None:
    code, (out,), _ = run("demo", "--db", fresh_db, "--no-serve")
    assert code == 0 and set(out["tokens"]) == {"admin", "alfa", "bravo", "relief"}
    with service_on(fresh_db) as service:
        bravo = service.authenticate(out["tokens"]["bravo"])
        answer = service.check(bravo, {"position": "34.5520, 71.0130", "kind": "fires"})
    assert answer["status"] == "conflict"
    assert {"party": "alfa", "disclosure": "hidden"} in answer["conflicts"]


def test_readback_prints_canonical_forms() -> None:
    code, (out,), _ = run("readback", "34°33'00\"N 71°00'54\"E")
    assert code == 0 and out["position"] == {"lat": 34.55, "lon": 71.015, "mgrs": "42S XD 84886 24985"}


def test_settings_lists_every_setting() -> None:
    result = runner.invoke(app, ["settings"], terminal_width=200)
    assert result.exit_code == 0
    assert "DECONFLICT_BUFFER_FIRES_M" in result.stdout and "DECONFLICT_CLOCK_SKEW_S" in result.stdout


@pytest.mark.parametrize(
    "geometry",
    [
        pytest.param({"type": "Point", "coordinates": "71.0, 34.5"}, id="coordinates-not-a-list"),
        pytest.param({"type": "Point", "coordinates": [71.0]}, id="one-number"),
        pytest.param({"type": "Polygon", "coordinates": []}, id="not-a-point"),
    ],
)
def test_import_refuses_a_malformed_asset_point(db: str, tmp_path: Path, geometry: dict) -> None:
    run("party", "create", "alfa", "Alfa", "--db", db)
    feature = {"type": "Feature", "geometry": geometry, "properties": {"object": "asset", "id": "u1", "kind": "unit"}}
    file = tmp_path / "bad.geojson"
    file.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    code, _, err = run("import", str(file), "--db", db, "--as", "alfa")
    assert code == 2 and "features.0.geometry" in err


def test_import_reads_tiny_coordinates_without_exponents(db: str, tmp_path: Path) -> None:
    run("party", "create", "alfa", "Alfa", "--db", db)
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [0.00001, -0.00002]},
        "properties": {"object": "asset", "id": "u1", "kind": "site"},
    }
    file = tmp_path / "tiny.geojson"
    file.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    assert run("import", str(file), "--db", db, "--as", "alfa")[0] == 0
    with service_on(db) as service:
        (asset,) = service.assets(Caller("alfa", Role.VIEWER))
    assert (asset["position"]["lat"], asset["position"]["lon"]) == (-0.00002, 0.00001)


def test_check_area_file_that_is_not_json_exits_2(db: str, tmp_path: Path) -> None:
    run("party", "create", "alfa", "Alfa", "--db", db)
    bad = tmp_path / "area.json"
    bad.write_text("{not json")
    code, out, err = run("check", "--area", str(bad), "--kind", "fires", "--db", db, "--as", "alfa")
    assert code == 2 and out == [] and "cannot read" in err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--tak", "alfa"], "give PARTY:PORT"),
        (["--tak", "alfa:99999"], "the port must be 1 to 65535"),
        (["--tak", "nobody:18087"], "there is no party 'nobody'"),
        (["--tak-udp", "nobody:18087"], "(not_found, --tak-udp)"),
    ],
)
def test_serve_refuses_a_tak_listener_it_cannot_open_before_listening(db: str, flags: list[str], says: str) -> None:
    code, out, err = run("serve", "--db", db, *flags)
    assert code == 2 and out == [] and says in err
