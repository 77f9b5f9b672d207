"""Fuzz the position parser with atheris (libFuzzer, coverage-guided): see tests/fuzz/invariants.py for what it holds.

By hand, for as long as you like (the seeds and the dictionary steer it towards positions)::

    .venv/bin/python -m tests.fuzz.positions -dict=tests/fuzz/positions.dict -max_total_time=600 tests/fuzz/seeds

The suite runs it for a bounded number of inputs (tests/reliability/test_fuzz_positions.py). A failure prints the input
that broke a promise and writes it as ``crash-*``: add it to the seeds once fixed.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["deconfliction"]):
    from deconfliction import geo  # noqa: F401  (instrumented: the fuzzer sees which branches of the parser an input reaches)

from tests.fuzz.invariants import holds_for


def one_input(data: bytes) -> None:
    # Read as UTF-8 (bad bytes as U+FFFD), not through FuzzedDataProvider: the seeds and the dictionary are then
    # the text they look like, and the fuzzer's byte mutations still make every kind of non-ASCII character.
    holds_for(data.decode("utf-8", errors="replace"))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
