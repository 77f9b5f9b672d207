"""Many TAK devices at once on one listener: every position taken, no connection dropped (``deconflict bench-tak``).

The small run is part of the suite; the issue's full load (1,000 devices) is marked slow, and
its figures are in the README, measured with ``deconflict bench-tak``.
"""

from __future__ import annotations

import pytest

from deconfliction.bench.tak import run_tak


def test_a_hundred_devices_each_position_is_taken_and_no_connection_dropped() -> None:
    result = run_tak(devices=100, interval_s=0.5, duration_s=3.0)
    assert result["sent"] >= 100 * 4, result  # 3 s at one every 0.5 s, the starts staggered over the first 0.5 s
    assert result["taken"] == result["sent"] and result["dropped_connections"] == 0, result
    assert result["counts"]["registered"] == 100 and result["counts"]["connections"] == 100
    assert result["report_latency"]["from_read"]["p99_ms"] < 5_000, "a light load is applied within seconds"


@pytest.mark.slow
def test_a_thousand_devices_stay_connected_and_every_position_is_taken() -> None:
    result = run_tak(devices=1000, interval_s=1.0, duration_s=30.0)
    assert result["taken"] == result["sent"] and result["dropped_connections"] == 0, result
