"""What the CLI talks to: a running server over HTTP, or a store path opened in process.

Both clients offer the same few calls, so every CLI command works either way:
``--server URL --token T`` or ``--db PATH --as PARTY``. Opening a store path directly is
the operator's privilege (whoever can read the file holds the whole record anyway).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

import httpx

from deconfliction.errors import DeconflictionError, InvalidInput, StoreError
from deconfliction.model import Role
from deconfliction.service import ROOT, Caller, Service


class Client(Protocol):
    def create_party(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def parties(self) -> list[dict[str, Any]]: ...
    def create_token(self, party: str, role: str) -> str: ...
    def revoke_token(self, token: str) -> dict[str, Any]: ...
    def put_territory(self, party: str, area: dict[str, Any]) -> dict[str, Any]: ...
    def register_asset(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def declare_zone(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def declare_aor(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def check(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def look(self, area: str | None, kind: str | None, as_of: str | None = None) -> dict[str, Any]: ...
    def propose(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def activities(self) -> list[dict[str, Any]]: ...
    def own_activity(self, activity_id: str) -> str: ...
    def activity(self, proposer: str, activity_id: str) -> dict[str, Any]: ...
    def acknowledge(self, proposer: str, activity_id: str) -> dict[str, Any]: ...
    def object(self, proposer: str, activity_id: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def activate(self, proposer: str, activity_id: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def complete(self, proposer: str, activity_id: str) -> dict[str, Any]: ...
    def cancel(self, proposer: str, activity_id: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def events(self, cursor: int | None, limit: int | None) -> Iterator[dict[str, Any]]: ...
    def probes(self, asker: str | None) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


EVENT_PAGE = 500
"""Events read from the store per call when printing the log in process."""

STREAM_READ_TIMEOUT_S = 60.0
"""A live stream with nothing to say still sends a keep-alive every 15 s; four missed ones mean the server is gone."""


class RemoteError(DeconflictionError):
    """An error answered by a server, carried with its status, code and extra fields (``details``)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error") or {}
        details = {k: v for k, v in error.items() if k not in ("code", "message", "field") and v is not None}
        super().__init__(
            str(error.get("message", body)), field=error.get("field"), code=error.get("code", "http_error"), details=details
        )
        self.status = status


def _error_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON error of a refusal, or a stand-in naming the status when a proxy answered with something else."""
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return {"error": {"code": "http_error", "message": f"the server answered {response.status_code} without a JSON error"}}
    return data


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The ``data`` of each Server-Sent Events message, decoded; comments (keep-alives) are skipped."""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield json.loads("\n".join(data))
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        # "id:" and "event:" repeat what data holds (seq, type); ":" lines are keep-alives


class HttpClient:
    """``HttpClient("http://127.0.0.1:8000", token)``: the API over HTTP."""

    def __init__(self, url: str, token: str | None, timeout_s: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, f"/v1{path}", json=json, params=params)
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the server: {exc}") from exc
        if response.is_error:
            raise RemoteError(response.status_code, _error_body(response))
        return response.json() if response.content else {}

    def create_party(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/parties", body))

    def parties(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/parties"))

    def create_token(self, party: str, role: str) -> str:
        return str(self._call("POST", f"/parties/{party}/tokens", {"role": role})["token"])

    def revoke_token(self, token: str) -> dict[str, Any]:
        return dict(self._call("POST", "/tokens/revoke", {"token": token}))

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

    def look(self, area: str | None, kind: str | None, as_of: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in (("area", area), ("kind", kind), ("as_of", as_of)) if v is not None}
        return dict(self._call("GET", "/picture", params=params))

    def propose(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/activities", body))

    def activities(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/activities"))

    def probes(self, asker: str | None) -> list[dict[str, Any]]:
        return list(self._call("GET", "/probes", params={} if asker is None else {"asker": asker}))

    def own_activity(self, activity_id: str) -> str:
        """The caller's party, as the proposer of its activity ``activity_id`` (the server says whose the token is)."""
        party = self._call("GET", "/whoami")["party"]
        if party is None:
            raise InvalidInput(f"whose {activity_id!r}? this token belongs to no party: name it as PROPOSER/ID", field="id")
        return str(party)

    def activity(self, proposer: str, activity_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/activities/{proposer}/{activity_id}"))

    def acknowledge(self, proposer: str, activity_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/activities/{proposer}/{activity_id}/acknowledge"))

    def object(self, proposer: str, activity_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", f"/activities/{proposer}/{activity_id}/object", body))

    def activate(self, proposer: str, activity_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", f"/activities/{proposer}/{activity_id}/activate", body))

    def complete(self, proposer: str, activity_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/activities/{proposer}/{activity_id}/complete"))

    def cancel(self, proposer: str, activity_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", f"/activities/{proposer}/{activity_id}/cancel", body))

    def events(self, cursor: int | None, limit: int | None) -> Iterator[dict[str, Any]]:
        """The live stream (``GET /v1/events``): the ``stream.opened`` message first, then each event as it comes."""
        params = {k: v for k, v in (("cursor", cursor), ("limit", limit)) if v is not None}
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT_S)
        try:
            with self._http.stream("GET", "/v1/events", params=params, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    raise RemoteError(response.status_code, _error_body(response))
                yield from sse_events(response.iter_lines())
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the server, or its event stream broke off: {exc}") from exc

    def ledger_head(self) -> dict[str, Any]:
        return dict(self._call("GET", "/ledger/head"))

    def public_key(self) -> str:
        return str(self.ledger_head()["public_key"])

    def ledger_heads(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/ledger/heads"))

    def ledger_entries(self, start: int) -> dict[str, Any]:
        return dict(self._call("GET", "/ledger/entries", params={"start": start}))

    def consistency_proof(self, first: int, second: int) -> dict[str, Any]:
        return dict(self._call("GET", "/ledger/proof/consistency", params={"first": first, "second": second}))

    def inclusion_proof(self, index: int, tree_size: int) -> dict[str, Any]:
        return dict(self._call("GET", "/ledger/proof/inclusion", params={"index": index, "tree_size": tree_size}))


class LocalClient:
    """``LocalClient(service, party)``: the same calls on a store opened in this process."""

    def __init__(self, service: Service, party: str | None) -> None:
        self.service = service
        self.caller = Caller(party, Role.LIAISON) if party else ROOT

    def close(self) -> None:
        self.service.store.close()

    def create_party(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.service.create_party(ROOT, body)

    def parties(self) -> list[dict[str, Any]]:
        return self.service.parties(ROOT)

    def create_token(self, party: str, role: str) -> str:
        return self.service.create_token(ROOT, party, role)

    def revoke_token(self, token: str) -> dict[str, Any]:
        return self.service.revoke_token(ROOT, {"token": token})

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

    def look(self, area: str | None, kind: str | None, as_of: str | None = None) -> dict[str, Any]:
        return self.service.look(self.caller, area, kind, as_of)

    def propose(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.service.propose(self.caller, body)

    def activities(self) -> list[dict[str, Any]]:
        return self.service.activities(self.caller)

    def probes(self, asker: str | None) -> list[dict[str, Any]]:
        return self.service.probes_seen(self.caller, asker)

    def own_activity(self, activity_id: str) -> str:
        """The caller's party, as the proposer of its activity ``activity_id``."""
        if self.caller.party is None:
            raise InvalidInput(f"whose activity {activity_id!r}? name it as PROPOSER/ID, or act as a party (--as)", field="id")
        return self.caller.party

    def activity(self, proposer: str, activity_id: str) -> dict[str, Any]:
        return self.service.activity(self.caller, proposer, activity_id)

    def acknowledge(self, proposer: str, activity_id: str) -> dict[str, Any]:
        return self.service.acknowledge(self.caller, proposer, activity_id)

    def object(self, proposer: str, activity_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.service.object(self.caller, proposer, activity_id, body)

    def activate(self, proposer: str, activity_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.service.activate(self.caller, proposer, activity_id, body)

    def complete(self, proposer: str, activity_id: str) -> dict[str, Any]:
        return self.service.complete(self.caller, proposer, activity_id)

    def cancel(self, proposer: str, activity_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.service.cancel(self.caller, proposer, activity_id, body)

    def events(self, cursor: int | None, limit: int | None) -> Iterator[dict[str, Any]]:
        """The log from ``cursor`` (default: its start) as the party may see it, up to ``limit``; then it stops."""
        after = cursor or 0
        left = limit
        while left is None or left > 0:
            page, after = self.service.events(self.caller, after, EVENT_PAGE if left is None else min(EVENT_PAGE, left))
            if not page:
                return
            yield from page
            left = None if left is None else left - len(page)

    def ledger_head(self) -> dict[str, Any]:
        return self.service.ledger_head()

    def ledger_entries(self, start: int) -> dict[str, Any]:
        return self.service.ledger_entries(self.caller, start)

    def inclusion_proof(self, index: int, tree_size: int) -> dict[str, Any]:
        return self.service.inclusion_proof(index, tree_size)
