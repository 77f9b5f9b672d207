"""The crash campaign (``deconflict crash-campaign``): SIGKILL mid-traffic, restart, every acknowledged write still there.

A short campaign runs in the suite on each store; the long one is marked slow and run by hand
(its figures are in docs/reliability.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deconfliction.bench.crash import Acknowledged, BrokenPromise, prepare, run_crash, start_server, verify
from deconfliction.bench.ours import free_port


def test_a_short_campaign_loses_nothing_acknowledged(fresh_db: str) -> None:
    result = run_crash(kills=2, clients=3, min_s=0.5, max_s=1.0, db=fresh_db)
    assert result["kills"] == 2 and result["acknowledged_reports"] > 0 and result["acknowledged_checks"] > 0, result
    assert result["entries"] >= result["acknowledged_reports"] + result["acknowledged_checks"]


def test_the_campaign_notices_an_acknowledged_report_that_is_missing(tmp_path: Path) -> None:
    """The verifier is not a formality: a report it was told of and cannot find ends the campaign."""
    db = str(tmp_path / "c.db")
    tokens = prepare(db)
    acked = Acknowledged()
    acked.reports[("alfa", "never-written")] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    port = free_port()
    server = start_server(db, port, tmp_path / "server.log")
    try:
        with pytest.raises(BrokenPromise, match=r"alfa/never-written's report .* was acknowledged and is gone"):
            verify(f"http://127.0.0.1:{port}", tokens, acked, db, 1)
    finally:
        server.kill()
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_long_campaign_loses_nothing_acknowledged() -> None:
    result = run_crash(kills=50, clients=4, min_s=0.2, max_s=3.0)
    assert result["kills"] == 50
