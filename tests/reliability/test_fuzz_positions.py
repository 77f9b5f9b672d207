"""The position parser under atheris, coverage-guided, for a bounded number of inputs (tests/fuzz/positions.py).

Hypothesis holds the parser to the same promises in tests/test_geo.py; atheris finds its own way into
the branches. Run it by hand for longer as tests/fuzz/positions.py says.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "tests" / "fuzz"
RUNS = 30_000


def test_atheris_finds_no_text_the_parser_misreads(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"  # libFuzzer writes what it learns to the first folder: not the seeds'
    shutil.copytree(FUZZ / "seeds", corpus)
    fuzzed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.positions",
            f"-dict={FUZZ / 'positions.dict'}",
            f"-runs={RUNS}",
            "-seed=1",
            str(corpus),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    tail = fuzzed.stderr[-3000:]
    assert fuzzed.returncode == 0, tail
    assert f"Done {RUNS} runs" in fuzzed.stderr, tail
