"""The soak (``deconflict soak``, bench/soak.py): a short one in the suite, and its verdict caught breaking.

The 30-minute soak is run by hand (docs/reliability.md has its figures); this one runs for 15 seconds
at a low rate, so that the script itself is known to work and the server to hold the promises it watches.
"""

from __future__ import annotations

from typing import Any

from deconfliction.bench.soak import Plan, Window, run_soak, verdict


def test_a_short_soak_fails_nothing_keeps_no_descriptor_and_counts_what_it_sent() -> None:
    result = run_soak(Plan(minutes=0.25, reports_per_s=20, checks_per_s=20, units=40, sample_s=3))
    assert result["broken"] == [], result["broken"]
    assert result["failures"] == 0
    assert result["reports"] > 100 and result["checks"] > 100
    assert result["refused_as_they_must_be"] > 0, "one report in fifty is off the globe and must be refused"
    assert result["streams"] > 0
    assert result["fds"]["after"] <= result["fds"]["idle"] + 2
    assert result["checks_ms"]["p50"] is not None


def _sample(t_s: float, rss_mib: float, fds: int, reports: int = 0, failures: int = 0) -> dict[str, Any]:
    return {
        "t_s": t_s,
        "rss_mib": rss_mib,
        "fds": fds,
        "entries": 0,
        "reports": reports,
        "checks": 0,
        "refused": 0,
        "streams": 0,
        "check_p99_ms": 5.0,
        "failures": ["500 boom"] * failures,
        "failure_count": failures,
    }


def test_the_verdict_names_a_leak_of_memory_of_descriptors_and_a_failed_request() -> None:
    idle = _sample(0, 100, 20)
    steady = [_sample(10 * i, 120, 30, reports=1000) for i in range(1, 21)]
    assert verdict(idle, steady, _sample(210, 120, 20), Window(), [5.0], 20)["broken"] == []

    leaking = [_sample(10 * i, 120 + 5 * i, 30, reports=1000) for i in range(1, 21)]  # 5 MiB each 10 s
    kept = _sample(210, 120, 31)
    failed = [*steady[:-1], _sample(200, 120, 30, failures=1)]
    assert "memory grew" in verdict(idle, leaking, _sample(210, 220, 20), Window(), [5.0], 20)["broken"][0]
    assert "descriptors kept" in verdict(idle, steady, kept, Window(), [5.0], 20)["broken"][0]
    assert "500 boom" in verdict(idle, failed, _sample(210, 120, 20), Window(), [5.0], 20)["broken"][0]


def test_the_verdict_allows_the_change_log_two_entries_for_every_report_that_moves_and_no_more() -> None:
    def grown(mib_per_window: float) -> list[dict[str, Any]]:
        return [_sample(10 * i, 120 + mib_per_window * i, 30, reports=10_000) for i in range(1, 21)]

    by_design = 10_000 * 2 * 56 / 2**20  # MiB a window: each report's place left and place reached
    idle, after = _sample(0, 100, 20), _sample(210, 120, 20)
    assert verdict(idle, grown(by_design), after, Window(), [5.0], 0.5)["broken"] == []
    assert "memory grew" in verdict(idle, grown(1.2 * by_design), after, Window(), [5.0], 0.5)["broken"][0]
