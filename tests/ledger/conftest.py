"""The API fixtures of tests/api, for the record's tests through the HTTP API."""

from __future__ import annotations

from tests.api.conftest import api, bare_api

__all__ = ["api", "bare_api"]
