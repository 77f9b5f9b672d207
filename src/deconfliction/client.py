"""What the CLI talks to: a running server over HTTP, or a store path opened in process.

Both clients offer the same few calls, so every CLI command works either way:
``--server URL --token T`` or ``--db PATH --as PARTY``. Opening a store path directly is
the operator's privilege (whoever can read the file holds the whole record anyway).
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from deconfliction.errors import DeconflictionError, StoreError
from deconfliction.model import Role
from deconfliction.service import ROOT, Caller, Service


class Client(Protocol):
    def create_party(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def parties(self) -> list[dict[str, Any]]: ...
    def create_token(self, party: str, role: str) -> str: ...
    def put_territory(self, party: str, area: dict[str, Any]) -> dict[str, Any]: ...
    def register_asset(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def declare_zone(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def declare_aor(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def check(self, body: dict[str, Any]) -> dict[str, Any]: ...


class RemoteError(DeconflictionError):
    """An error answered by a server, carried with its status and code."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error") or {}
        super().__init__(str(error.get("message", body)), field=error.get("field"), code=error.get("code", "http_error"))
        self.status = status


class HttpClient:
    """``HttpClient("http://127.0.0.1:8000", token)``: the API over HTTP."""

    def __init__(self, url: str, token: str | None, timeout_s: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        try:
            response = self._http.request(method, f"/v1{path}", json=json)
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the server: {exc}") from exc
        data = response.json() if response.content else {}
        if response.is_error:
            raise RemoteError(response.status_code, data if isinstance(data, dict) else {})
        return data

    def create_party(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/parties", body))

    def parties(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/parties"))

    def create_token(self, party: str, role: str) -> str:
        return str(self._call("POST", f"/parties/{party}/tokens", {"role": role})["token"])

    def put_territory(self, party: str, area: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("PUT", f"/territories/{party}", {"area": area}))

    def register_asset(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/assets", body))

    def declare_zone(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/zones", body))

    def declare_aor(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/aors", body))

    def check(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/checks", body))


class LocalClient:
    """``LocalClient(service, party)``: the same calls on a store opened in this process."""

    def __init__(self, service: Service, party: str | None) -> None:
        self.service = service
        self.caller = Caller(party, Role.LIAISON) if party else ROOT

    def create_party(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.service.create_party(ROOT, body)

    def parties(self) -> list[dict[str, Any]]:
        return self.service.parties(ROOT)

    def create_token(self, party: str, role: str) -> str:
        return self.service.create_token(ROOT, party, role)

    def put_territory(self, party: str, area: dict[str, Any]) -> dict[str, Any]:
        return self.service.put_territory(ROOT, party, area)

    def register_asset(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.service.register_asset(self.caller, body)

    def declare_zone(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.service.declare_zone(self.caller, body)

    def declare_aor(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.service.declare_aor(self.caller, body)

    def check(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.service.check(self.caller, body)
