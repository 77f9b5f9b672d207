"""Checks on the project itself: exports, generated references, docs that name every command and rule."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import deconfliction
from deconfliction import _reference
from deconfliction.engine import rules

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_exports_are_sorted_and_complete() -> None:
    exported = deconfliction.__all__
    assert exported == sorted(exported)
    public = {name for name in vars(deconfliction) if not name.startswith("_") and name[0].isupper()}
    assert public <= set(exported)
    for name in exported:
        assert hasattr(deconfliction, name), name


@pytest.mark.parametrize("name", sorted(_reference.REFERENCES))
def test_generated_reference_is_current(name: str) -> None:
    committed = (DOCS / name).read_text(encoding="utf-8")
    assert committed == _reference.REFERENCES[name](), f"docs/{name} is stale: run python -m deconfliction._reference"


def test_every_cli_command_is_in_the_readme_or_usage() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8") + (DOCS / "usage.md").read_text(encoding="utf-8")
    commands = re.findall(r"^## `deconflict ([a-z ]+)`", (DOCS / "cli.md").read_text(encoding="utf-8"), re.M)
    assert commands
    missing = [c for c in commands if f"deconflict {c}" not in text]
    assert missing == []


def test_every_rule_constant_is_explained_in_docs_rules() -> None:
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    for name in ("SAFETY_FACTOR", "UNCOVERED_AREA_M2", "Level.disk_k", "conflict", "unknown", "clear"):
        assert name in text, name
    assert rules.UNCOVERED_AREA_M2 > 0


def test_readme_quick_start_has_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:sh|bash)?\n(.*?)```", section, re.S)
    commands = [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2, commands
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1].strip() in ci, "CI must run exactly the README's test command"


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def test_ruff_is_clean() -> None:
    run = subprocess.run([_tool("ruff"), "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout


def test_mypy_is_clean_and_strict_on_the_engine() -> None:
    run = subprocess.run([_tool("mypy"), "src/deconfliction"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout
