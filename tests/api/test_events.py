"""The live event stream over HTTP: SSE at ``GET /v1/events`` and the WebSocket at ``/v1/events/ws``.

A console reads the log from a cursor, resumes after a reconnection without missing or
repeating anything, follows live writes, and sees other parties' objects only as
disclosure allows. AOR lapses are emitted by time alone: in process through
``Service.tick`` (the rule), and by a real server's ticker (that it runs).

Every stream read here is bounded: by ``limit``, by a count of messages, or by a last
event the test knows will come; a reader that waits longer than ``TIMEOUT_S`` fails.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import h3
import httpx
import pytest
from starlette.websockets import WebSocketDisconnect

from tests.api.conftest import ALFA_LAND, Api, iso, refusal
from tests.api.test_server_process import DECONFLICT, clean_env, free_port

TIMEOUT_S = 5.0
CELL_RESOLUTION = 7

# alfa's objects, just east of the border on 71.0 E
EXACT = (34.55123, 71.01457)
COARSE = (34.55687, 71.02234)
HIDDEN = (34.54871, 71.00893)
HIDDEN_LATER = (34.54937, 71.00961)
NEAR_BORDER = "34.60, 71.005"  # alfa's fires here reach bravo's land
DEEP_EAST = "34.60, 71.25"  # alfa's patrol here reaches nobody's
BRAVO_SPOT = (34.60, 70.80)  # deep in bravo's land


def position(p: tuple[float, float]) -> str:
    return f"{p[0]}, {p[1]}"


# ---------------------------------------------------------------------------- reading a stream


@dataclass(frozen=True)
class Message:
    """One SSE message: its ``id:``, ``event:`` and the JSON of its ``data:``."""

    id: int
    event: str
    data: dict[str, Any]


@dataclass
class Read:
    status: int
    content_type: str
    cache_control: str | None
    messages: list[Message]
    raw: str

    @property
    def opened(self) -> Message:
        assert self.messages and self.messages[0].event == "stream.opened", self.raw
        return self.messages[0]

    @property
    def events(self) -> list[Message]:
        """The messages after ``stream.opened``."""
        return self.messages[1:] if self.messages else []


Until = int | Callable[[Message], bool]


def parse_sse(lines: Iterable[str], raw: list[str]) -> Iterator[Message | None]:
    """Messages as they arrive; None for a comment (a keep-alive), so the reader may give up between messages."""
    fields: dict[str, str] = {}
    for line in lines:
        raw.append(line)
        if line.startswith(":"):
            yield None
        elif line:
            name, _, value = line.partition(":")
            assert name not in fields, f"{name} twice in one message: {raw}"
            fields[name] = value.removeprefix(" ")
        elif fields:
            assert set(fields) == {"id", "event", "data"}, fields
            yield Message(int(fields["id"]), fields["event"], json.loads(fields["data"]))
            fields = {}


def finished(messages: list[Message], until: Until) -> bool:
    if isinstance(until, int):
        return len(messages) > until  # stream.opened and ``until`` events
    return len(messages) > 1 and until(messages[-1])


@dataclass
class Reader:
    """An SSE stream read in a thread, so that the test can write while it waits; ``result()`` is bounded."""

    api: Api
    who: str
    query: str
    until: Until
    headers: dict[str, str] = field(default_factory=dict)
    opened: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.headers = {**self.api.headers(self.who), **self.headers}  # tokens are made here, not in the thread
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._future = self._pool.submit(self._read)

    def _read(self) -> Read:
        raw: list[str] = []
        messages: list[Message] = []
        with self.api.client.stream("GET", f"/v1/events{self.query}", headers=self.headers) as response:
            for message in parse_sse(response.iter_lines(), raw):
                if self.stop.is_set():
                    break
                if message is None:
                    continue
                messages.append(message)
                self.opened.set()
                if finished(messages, self.until):
                    break
            return Read(
                response.status_code,
                response.headers["content-type"],
                response.headers.get("cache-control"),
                messages,
                "\n".join(raw),
            )

    def result(self, timeout_s: float = TIMEOUT_S) -> Read:
        try:
            return self._future.result(timeout_s)
        except FutureTimeout:
            self.stop.set()  # the thread gives up at the next message or keep-alive
            pytest.fail(f"the stream {self.query!r} did not deliver what was expected within {timeout_s} s")
        finally:
            self._pool.shutdown(wait=False)


def read_sse(api: Api, who: str, query: str, until: Until, headers: dict[str, str] | None = None) -> Read:
    return Reader(api, who, query, until, headers or {}).result()


def is_event(type_: str, **data: Any) -> Callable[[Message], bool]:
    return lambda m: m.event == type_ and all(m.data["data"].get(k) == v for k, v in data.items())


def last_seq(api: Api) -> int:
    return api.service.store.last_seq()


# ---------------------------------------------------------------------------- pictures


@dataclass
class Writes:
    """alfa's site and four reports of it, with what the writes answered."""

    api: Api
    versions: list[int]  # the log position of each report
    times: list[str]
    lats: list[float]


@pytest.fixture
def writes(api: Api) -> Writes:
    """alfa's exact site and four reports, one a minute; every token exists before, so the log ends with a report."""
    for who in ("alfa", "bravo", "alfa:viewer"):
        api.token(who)
    api.asset("alfa", "post", position=position(EXACT))
    versions, times, lats = [last_seq(api)], [iso(api.clock.now())], [EXACT[0]]  # registration, then its report
    for i in range(1, 4):
        api.advance(60)
        lats.append(round(EXACT[0] + i / 1000, 5))
        report = api.report("alfa", "post", f"{lats[-1]}, {EXACT[1]}")
        versions.append(report["picture_version"])
        times.append(iso(api.clock.now()))
    assert last_seq(api) == versions[-1]
    return Writes(api, versions, times, lats)


def key(api: Api, who: str) -> str:
    return str(api.ok("GET", "/v1/picture", who)["picture_key"])


def propose(api: Api, who: str, activity_id: str, at: str, kind: str = "patrol", radius_m: float = 100.0) -> dict[str, Any]:
    now = api.clock.now()
    volume = {"position": at, "radius_m": radius_m, "window": {"start": iso(now), "end": iso(now + timedelta(hours=2))}}
    body = {"id": activity_id, "kind": kind, "purpose": "test", "volumes": [volume], "key": key(api, who)}
    return dict(api.ok("POST", "/v1/activities", who, 201, json=body))


@dataclass
class Disclosed:
    """alfa's exact, coarse and hidden assets and two activities; bravo's acknowledgement is the last event."""

    api: Api
    start: int
    mgrs: dict[str, str]


@pytest.fixture
def disclosed(api: Api) -> Disclosed:
    for who in ("alfa", "bravo"):
        api.token(who)
    start = last_seq(api)
    mgrs = {}
    mgrs["post-exact"] = api.asset("alfa", "post-exact", position=position(EXACT))["position"]["mgrs"]
    mgrs["post-coarse"] = api.asset("alfa", "post-coarse", disclosure="coarse", position=position(COARSE))["position"]["mgrs"]
    made = api.asset("alfa", "patrol-hidden", kind="unit", disclosure="hidden", position=position(HIDDEN))
    mgrs["patrol-hidden"] = made["position"]["mgrs"]
    api.advance(30)
    later = api.report("alfa", "patrol-hidden", position(HIDDEN_LATER))
    mgrs["patrol-hidden-later"] = later["position"]["mgrs"]
    api.report("alfa", "post-coarse", position(COARSE))
    far = propose(api, "alfa", "far-patrol", DEEP_EAST)
    assert (far["affected"], far["state"]) == ([], "cleared")
    near = propose(api, "alfa", "border-fires", NEAR_BORDER, kind="fires")
    assert (near["affected"], near["state"]) == (["bravo"], "proposed")
    api.ok("POST", "/v1/activities/alfa/far-patrol/cancel", "alfa", 200, json={"reason": "not needed"})
    api.ok("POST", "/v1/activities/alfa/border-fires/acknowledge", "bravo", 200)
    return Disclosed(api, start, mgrs)


LAST = is_event("activity.acknowledged", id="border-fires")


SECRET_NUMBERS = (*HIDDEN, *HIDDEN_LATER, *COARSE)


def as_written(d: Disclosed) -> list[str]:
    """The secrets as alfa's own stream shows them: the hidden unit's id and positions, the coarse site's, the far patrol."""
    mgrs = [d.mgrs[name] for name in ("patrol-hidden", "patrol-hidden-later", "post-coarse")]
    return [*(f"{v:.5f}" for v in SECRET_NUMBERS), *mgrs, "patrol-hidden", "far-patrol"]


def secrets(d: Disclosed) -> list[str]:
    """Text that must never reach bravo: the above, also rounded to 4 decimals and as MGRS without spaces."""
    mgrs = [d.mgrs[name].replace(" ", "") for name in ("patrol-hidden", "patrol-hidden-later", "post-coarse")]
    return [*as_written(d), *(f"{v:.4f}" for v in SECRET_NUMBERS), *mgrs]


# ---------------------------------------------------------------------------- SSE: the format


def test_sse_messages_carry_seq_type_time_and_data_in_log_order(writes: Writes) -> None:
    read = read_sse(writes.api, "bravo", "?cursor=0&limit=5", 5)
    assert read.status == 200
    assert read.content_type.startswith("text/event-stream")
    assert read.cache_control == "no-store"
    assert read.opened == Message(0, "stream.opened", {"seq": 0, "type": "stream.opened", "data": {"cursor": 0}})
    assert [m.event for m in read.events] == ["asset.registered"] + ["report.accepted"] * 4
    for m in read.events:
        assert set(m.data) == {"seq", "type", "time", "data"}, m
        assert (m.id, m.event) == (m.data["seq"], m.data["type"])
    ids = [m.id for m in read.events]
    assert ids == sorted(set(ids)), "strictly increasing"
    reports = read.events[1:]
    assert [m.id for m in reports] == writes.versions  # an event's id is its place in the log
    assert [m.data["time"] for m in reports] == [t.replace("Z", "+00:00") for t in writes.times]
    assert [m.data["data"]["position"]["lat"] for m in reports] == writes.lats
    assert read.events[0].data["data"] == {"party": "alfa", "id": "post", "kind": "site", "name": "post"}


def test_sse_the_stream_ends_after_limit_events(writes: Writes) -> None:
    read = read_sse(writes.api, "bravo", "?cursor=0&limit=2", 99)  # reads until the server closes
    assert [m.event for m in read.events] == ["asset.registered", "report.accepted"]


def test_sse_a_party_sees_its_own_writes_and_a_viewer_what_its_liaison_sees(writes: Writes) -> None:
    liaison = read_sse(writes.api, "alfa", "?cursor=0&limit=5", 5)
    viewer = read_sse(writes.api, "alfa:viewer", "?cursor=0&limit=5", 5)
    assert liaison.messages == viewer.messages
    assert liaison.events[-1].data["data"]["uncertainty_m"] == 0.0


# ---------------------------------------------------------------------------- SSE: resuming


@pytest.mark.parametrize("resume", ["last-event-id", "cursor"])
@pytest.mark.parametrize("first", [1, 2, 4])
def test_sse_resume_misses_nothing_and_repeats_nothing(writes: Writes, resume: str, first: int) -> None:
    whole = read_sse(writes.api, "bravo", "?cursor=0&limit=5", 5).events
    before = read_sse(writes.api, "bravo", f"?cursor=0&limit={first}", first).events
    last = before[-1].id
    rest = 5 - first
    if resume == "last-event-id":
        after = read_sse(writes.api, "bravo", f"?limit={rest}", rest, headers={"Last-Event-ID": str(last)})
    else:
        after = read_sse(writes.api, "bravo", f"?cursor={last}&limit={rest}", rest)
    assert after.opened.data["data"] == {"cursor": last}
    assert before + after.events == whole


def test_sse_last_event_id_wins_over_the_cursor(writes: Writes) -> None:
    """EventSource resends the page's URL (with its first cursor) and adds Last-Event-ID: the header must win."""
    last = writes.versions[1]
    after = read_sse(writes.api, "bravo", "?cursor=0&limit=2", 2, headers={"Last-Event-ID": str(last)})
    assert after.opened.data["data"] == {"cursor": last}
    assert [m.id for m in after.events] == writes.versions[2:]


def test_sse_resume_after_the_end_waits_for_new_events(writes: Writes) -> None:
    reader = Reader(writes.api, "bravo", f"?cursor={writes.versions[-1]}&limit=1", 1)
    assert reader.opened.wait(TIMEOUT_S)
    writes.api.advance(60)
    made = writes.api.report("alfa", "post", position(EXACT))
    read = reader.result()
    assert [(m.id, m.event) for m in read.events] == [(made["picture_version"], "report.accepted")]


@pytest.mark.parametrize(
    ("query", "headers", "field"),
    [
        ("?cursor=-1", {}, "cursor"),
        ("?cursor=abc", {}, "cursor"),
        ("?limit=0", {}, "limit"),
        ("", {"Last-Event-ID": "x"}, "last-event-id"),
        ("", {"Last-Event-ID": "-3"}, "cursor"),
    ],
)
def test_sse_refuses_a_malformed_cursor_or_limit(api: Api, query: str, headers: dict[str, str], field: str) -> None:
    refusal(api.get(f"/v1/events{query}", "bravo", headers=headers), 422, "invalid_input", field)


def test_sse_needs_a_token(api: Api) -> None:
    refusal(api.get("/v1/events?cursor=0&limit=1", None), 401, "unauthenticated")


# ---------------------------------------------------------------------------- SSE: live


def test_sse_without_a_cursor_starts_at_the_end_and_delivers_what_comes_next(writes: Writes) -> None:
    api = writes.api
    assert last_seq(api) == writes.versions[-1]
    reader = Reader(api, "bravo", "?limit=1", 1)
    assert reader.opened.wait(TIMEOUT_S), "stream.opened did not come"
    api.advance(60)
    made = api.report("alfa", "post", "34.5600, 71.0150")
    read = reader.result()
    assert read.opened.data["data"] == {"cursor": writes.versions[-1]}  # nothing older is replayed
    assert len(read.events) == 1
    event = read.events[0]
    assert (event.id, event.event) == (made["picture_version"], "report.accepted")
    assert event.data["data"]["position"]["lat"] == 34.56
    assert event.data["time"] == iso(api.clock.now()).replace("Z", "+00:00")


def test_sse_live_streams_each_get_every_write_once(writes: Writes) -> None:
    api = writes.api
    readers = [Reader(api, who, "?limit=3", 3) for who in ("bravo", "bravo", "alfa")]
    for reader in readers:
        assert reader.opened.wait(TIMEOUT_S)
    made = [api.report("alfa", "post", f"34.57{i}, 71.0150")["picture_version"] for i in range(3)]
    for reader in readers:
        assert [m.id for m in reader.result().events] == made


# ---------------------------------------------------------------------------- SSE: disclosure


def test_sse_bravo_sees_alfas_objects_only_as_disclosed(disclosed: Disclosed) -> None:
    read = read_sse(disclosed.api, "bravo", f"?cursor={disclosed.start}", LAST)
    shown = [(m.event, m.data["data"].get("asset") or m.data["data"]["id"]) for m in read.events]
    assert shown == [
        ("asset.registered", "post-exact"),
        ("report.accepted", "post-exact"),
        ("asset.registered", "post-coarse"),
        ("report.accepted", "post-coarse"),
        ("report.accepted", "post-coarse"),
        ("activity.proposed", "border-fires"),
        ("activity.acknowledged", "border-fires"),
    ]
    for secret in secrets(disclosed):
        assert secret not in read.raw, secret


def test_sse_coarse_reports_show_a_cell_and_exact_ones_a_position(disclosed: Disclosed) -> None:
    read = read_sse(disclosed.api, "bravo", f"?cursor={disclosed.start}", LAST)
    reports = {m.data["data"]["asset"]: m.data["data"] for m in read.events if m.event == "report.accepted"}
    coarse = reports["post-coarse"]
    assert set(coarse) == {"party", "asset", "time", "stale_at", "cell"}
    assert coarse["cell"] == h3.latlng_to_cell(*COARSE, CELL_RESOLUTION)
    exact = reports["post-exact"]
    assert (exact["position"]["lat"], exact["position"]["lon"]) == EXACT
    assert exact["position"]["mgrs"] == disclosed.mgrs["post-exact"]


def test_sse_activities_reach_the_proposer_and_the_affected_only(disclosed: Disclosed) -> None:
    bravo = read_sse(disclosed.api, "bravo", f"?cursor={disclosed.start}", LAST)
    proposed = next(m for m in bravo.events if m.event == "activity.proposed")
    assert proposed.data["data"]["id"] == "border-fires"
    assert proposed.data["data"]["affected"] == ["bravo"]
    alfa = read_sse(disclosed.api, "alfa", f"?cursor={disclosed.start}", LAST)
    activities = [(m.event, m.data["data"]["id"]) for m in alfa.events if m.event.startswith("activity.")]
    assert activities == [
        ("activity.proposed", "far-patrol"),
        ("activity.proposed", "border-fires"),
        ("activity.cancelled", "far-patrol"),
        ("activity.acknowledged", "border-fires"),
    ]
    assert alfa.events[-1].data["data"]["state"] == "cleared"


def test_sse_the_owner_sees_everything_bravo_may_not(disclosed: Disclosed) -> None:
    """The secrets are in the log: alfa's own stream carries them, so their absence from bravo's is disclosure at work."""
    alfa = read_sse(disclosed.api, "alfa", f"?cursor={disclosed.start}", LAST)
    hidden = [m.data["data"] for m in alfa.events if m.data["data"].get("asset") == "patrol-hidden"]
    assert [(d["position"]["lat"], d["position"]["lon"]) for d in hidden] == [HIDDEN, HIDDEN_LATER]
    for secret in as_written(disclosed):
        assert secret in alfa.raw, secret


def test_sse_a_party_with_no_stake_sees_none_of_the_activities(disclosed: Disclosed) -> None:
    api = disclosed.api
    api.party("charlie")
    api.asset("charlie", "marker")  # charlie's own write ends its read
    read = read_sse(api, "charlie", f"?cursor={disclosed.start}", is_event("asset.registered", id="marker"))
    assert not [m for m in read.events if m.event.startswith("activity.")]
    assert "border-fires" not in read.raw


def test_sse_conflict_with_a_hidden_unit_names_only_its_party_to_the_proposer(api: Api) -> None:
    for who in ("alfa", "bravo"):
        api.token(who)
    made = propose(api, "bravo", "bravo-patrol", position(BRAVO_SPOT), radius_m=500.0)
    assert (made["affected"], made["state"]) == ([], "cleared")
    api.ok("POST", "/v1/activities/bravo/bravo-patrol/activate", "bravo", 200, json={"key": key(api, "bravo")})
    start = last_seq(api)
    inside = f"{BRAVO_SPOT[0] + 0.002}, {BRAVO_SPOT[1]}"  # 220 m north of its centre
    api.asset("alfa", "patrol-hidden", kind="unit", disclosure="hidden", position=inside)
    conflict = is_event("conflict.detected")
    bravo = read_sse(api, "bravo", f"?cursor={start}", conflict)
    assert [m.event for m in bravo.events] == ["conflict.detected"]
    assert bravo.events[0].data["data"] == {
        "activity": "bravo-patrol",
        "proposer": "bravo",
        "found": {"party": "alfa", "disclosure": "hidden"},
    }
    assert "patrol-hidden" not in bravo.raw
    assert f"{BRAVO_SPOT[0] + 0.002:.3f}" not in bravo.raw
    assert f"{BRAVO_SPOT[0] + 0.002:.3f}" in read_sse(api, "alfa", f"?cursor={start}", conflict).raw
    alfa = read_sse(api, "alfa", f"?cursor={start}", conflict)
    found = alfa.events[-1].data["data"]
    assert found["found"]["id"] == "patrol-hidden"
    assert (found["kind"], found["activity"]) == ("patrol", "bravo-patrol")


def test_sse_a_reused_id_does_not_disclose_a_withdrawn_hidden_assets_positions(api: Api) -> None:
    for who in ("alfa", "bravo"):
        api.token(who)
    start = last_seq(api)
    api.asset("alfa", "x", kind="unit", disclosure="hidden", position=position(HIDDEN))
    api.ok("DELETE", "/v1/assets/x", "alfa", 200)
    api.asset("alfa", "x", kind="unit", disclosure="exact", position=position(EXACT))
    read = read_sse(api, "bravo", f"?cursor={start}", is_event("report.accepted", asset="x"))
    assert f"{HIDDEN[0]:.5f}" not in read.raw
    assert [m.data["data"]["position"]["lat"] for m in read.events if m.event == "report.accepted"] == [EXACT[0]]


# ---------------------------------------------------------------------------- WebSocket


def ws_read(ws: Any, count: int) -> list[dict[str, Any]]:
    """``stream.opened`` and ``count`` events; then the server closes normally (the query's limit)."""
    messages = [ws.receive_json() for _ in range(count + 1)]
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 1000
    return messages


def test_ws_token_in_the_header(writes: Writes) -> None:
    api = writes.api
    sse = read_sse(api, "bravo", "?cursor=0&limit=5", 5)
    with api.client.websocket_connect("/v1/events/ws?cursor=0&limit=5", headers=api.headers("bravo")) as ws:
        messages = ws_read(ws, 5)
    assert messages[0] == {"seq": 0, "type": "stream.opened", "data": {"cursor": 0}}
    assert messages[1:] == [m.data for m in sse.events]  # the same events as SSE, the same JSON


def test_ws_token_as_the_first_message(writes: Writes) -> None:
    api = writes.api
    with api.client.websocket_connect("/v1/events/ws?cursor=0&limit=2") as ws:
        ws.send_json({"token": api.token("bravo")})
        messages = ws_read(ws, 2)
    assert [m["type"] for m in messages] == ["stream.opened", "asset.registered", "report.accepted"]


@pytest.mark.parametrize("how", ["header", "message", "missing"])
def test_ws_wrong_token_is_refused_and_closed(api: Api, how: str) -> None:
    headers = {"Authorization": "Bearer not-a-token"} if how == "header" else {}
    with api.client.websocket_connect("/v1/events/ws?cursor=0", headers=headers) as ws:
        if how == "message":
            ws.send_json({"token": "not-a-token"})
        elif how == "missing":
            ws.send_json({"hello": "there"})
        answer = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert set(answer) == {"error"}
    assert answer["error"]["code"] == "unauthenticated"
    assert answer["error"]["message"]
    assert closed.value.code == 1008


def test_ws_first_message_not_json_is_refused_and_closed(api: Api) -> None:
    with api.client.websocket_connect("/v1/events/ws") as ws:
        ws.send_text("Bearer xyz")
        answer = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert answer["error"]["code"] == "invalid_input"
    assert closed.value.code == 1008


def test_ws_negative_cursor_is_refused_and_closed(api: Api) -> None:
    with api.client.websocket_connect("/v1/events/ws?cursor=-1", headers=api.headers("bravo")) as ws:
        answer = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert (answer["error"]["code"], answer["error"]["field"]) == ("invalid_input", "cursor")
    assert closed.value.code == 1008


def test_ws_resume_with_a_cursor(writes: Writes) -> None:
    api = writes.api
    headers = api.headers("bravo")
    with api.client.websocket_connect("/v1/events/ws?cursor=0&limit=2", headers=headers) as ws:
        before = ws_read(ws, 2)[1:]
    last = before[-1]["seq"]
    with api.client.websocket_connect(f"/v1/events/ws?cursor={last}&limit=3", headers=headers) as ws:
        after = ws_read(ws, 3)
    assert after[0]["data"] == {"cursor": last}
    with api.client.websocket_connect("/v1/events/ws?cursor=0&limit=5", headers=headers) as ws:
        whole = ws_read(ws, 5)[1:]
    assert before + after[1:] == whole


def test_ws_without_a_cursor_follows_live_writes(writes: Writes) -> None:
    api = writes.api
    with api.client.websocket_connect("/v1/events/ws?limit=1", headers=api.headers("bravo")) as ws:
        opened = ws.receive_json()
        made = api.report("alfa", "post", position(EXACT))
        event = ws.receive_json()
    assert opened["data"] == {"cursor": writes.versions[-1]}
    assert (event["seq"], event["type"]) == (made["picture_version"], "report.accepted")


def test_ws_applies_the_same_disclosure_as_sse(disclosed: Disclosed) -> None:
    api = disclosed.api
    sse = read_sse(api, "bravo", f"?cursor={disclosed.start}", LAST)
    count = len(sse.events)
    with api.client.websocket_connect(
        f"/v1/events/ws?cursor={disclosed.start}&limit={count}", headers=api.headers("bravo")
    ) as ws:
        messages = ws_read(ws, count)[1:]
    assert messages == [m.data for m in sse.events]
    text = json.dumps(messages)
    for secret in secrets(disclosed):
        assert secret not in text, secret


# ---------------------------------------------------------------------------- AOR lapses, by time alone


def test_tick_lapses_an_aor_once_when_its_freshness_runs_out(api: Api) -> None:
    """The rule, in process: no lapse before the freshness runs out, one at it, none again until a new confirmation.

    The app's own ticker may fire the lapse before the test's ``tick()`` does, so the
    test reads what bravo's stream says rather than which call fired it.
    """
    for who in ("alfa", "bravo"):
        api.token(who)
    api.aor("alfa", "east", ALFA_LAND, freshness_s=2)
    confirmed_at = api.clock.now()
    start = last_seq(api)
    api.advance(1.9)
    assert api.service.tick() == []
    api.asset("bravo", "mark-1")
    api.advance(0.1)  # confirmed + freshness: the promise has run out
    api.service.tick()
    api.advance(30)
    assert api.service.tick() == []  # announced once
    api.asset("bravo", "mark-2")
    read = read_sse(api, "bravo", f"?cursor={start}", is_event("asset.registered", id="mark-2"))
    assert [(m.event, m.data["data"]["id"]) for m in read.events] == [
        ("asset.registered", "mark-1"),
        ("aor.lapsed", "east"),
        ("asset.registered", "mark-2"),
    ]
    lapsed = read.events[1].data
    lapse_at = (confirmed_at + timedelta(seconds=2)).isoformat()
    assert lapsed["data"] == {"party": "alfa", "id": "east", "since": lapse_at}
    assert lapsed["time"] == lapse_at
    assert [a["status"] for a in api.ok("GET", "/v1/aors", "bravo")] == ["lapsed"]

    api.ok("POST", "/v1/aors/east/confirm", "alfa", 200)  # a new promise: its end is announced again
    again = last_seq(api)
    api.advance(2)
    assert api.service.tick() in ([], [{"type": "aor.lapsed", "party": "alfa", "id": "east"}])
    read = read_sse(api, "bravo", f"?cursor={again}", is_event("aor.lapsed"))
    assert read.events[-1].data["data"]["since"] == iso(api.clock.now()).replace("Z", "+00:00")


def test_tick_never_lapses_an_unconfirmed_aor(api: Api) -> None:
    """An AOR never confirmed is lapsed from the start (checks say unknown); there is no moment of lapsing to announce."""
    api.token("bravo")
    api.aor("alfa", "east", ALFA_LAND, freshness_s=2, confirm=False)
    start = last_seq(api)
    api.advance(60)
    api.service.tick()
    api.asset("bravo", "mark")
    read = read_sse(api, "bravo", f"?cursor={start}", is_event("asset.registered", id="mark"))
    assert [m.event for m in read.events] == ["asset.registered"]


@dataclass
class LiveServer:
    url: str
    admin: str


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """``deconflict serve`` in its own process with a 0.2 s tick, on the system clock; killed at teardown."""
    db = tmp_path / "live.db"
    made = subprocess.run(
        [str(DECONFLICT), "init", "--db", str(db)], capture_output=True, env=clean_env(), timeout=TIMEOUT_S * 2, check=True
    )
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(DECONFLICT), "serve", "--db", str(db), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**clean_env(), "DECONFLICT_TICK_S": "0.2"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT_S * 2
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /healthz:\n{log.read_text()}")
            time.sleep(0.05)
        yield LiveServer(url, json.loads(made.stdout)["admin_token"])
    finally:
        process.kill()
        process.wait(timeout=TIMEOUT_S)


def test_server_announces_an_aor_lapse_without_being_asked(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=TIMEOUT_S) as client:

        def call(method: str, path: str, token: str, **kwargs: Any) -> Any:
            response = client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
            assert response.is_success, (method, path, response.status_code, response.text)
            return response.json()

        admin = live_server.admin
        tokens = {}
        for party in ("alfa", "bravo"):
            call("POST", "/v1/parties", admin, json={"id": party, "name": party.title()})
            tokens[party] = call("POST", f"/v1/parties/{party}/tokens", admin, json={"role": "liaison"})["token"]
        call("PUT", "/v1/territories/alfa", admin, json={"area": ALFA_LAND})
        call("POST", "/v1/aors", tokens["alfa"], json={"id": "east", "area": ALFA_LAND, "freshness_s": 2})
        headers = {"Authorization": f"Bearer {tokens['bravo']}"}
        with client.stream("GET", "/v1/events", headers=headers) as stream:
            lines = stream.iter_lines()
            messages = parse_sse(lines, [])
            opened = next(m for m in messages if m is not None)
            assert opened.event == "stream.opened"
            confirming = time.monotonic()
            confirmed = call("POST", "/v1/aors/east/confirm", tokens["alfa"])
            seen = []
            for message in messages:  # no one asks anything from here on
                if message is None:
                    continue
                seen.append(message)
                if message.event == "aor.lapsed":
                    break
            elapsed = time.monotonic() - confirming
    assert [m.event for m in seen] == ["aor.confirmed", "aor.lapsed"]
    assert seen[-1].data["data"] == {"party": "alfa", "id": "east", "since": confirmed["fresh_until"]}
    assert 1.9 <= elapsed <= 2.0 + 2.5, elapsed  # the freshness, then a few ticks (0.2 s each) on a busy machine


def test_recent_events_start_at_an_instant_and_follow_disclosure(api: Api) -> None:
    """``GET /v1/events/recent?since=T``: one JSON answer for a timeline, from T on, as the caller may see it."""
    api.asset("alfa", "early", position="34.60, 71.10")
    api.advance(600)
    middle = iso(api.clock.now())
    api.asset("alfa", "late", position="34.61, 71.11")
    api.asset("alfa", "secret", position="34.62, 71.12", disclosure="hidden")
    seen = api.ok("GET", "/v1/events/recent", "bravo", 200, params={"since": middle})
    assert [(e["type"], e["data"].get("id") or e["data"].get("asset")) for e in seen["events"]] == [
        ("asset.registered", "late"),
        ("report.accepted", "late"),
    ]
    assert seen["cursor"] == api.service.store.last_seq()
    owner = api.ok("GET", "/v1/events/recent", "alfa", 200, params={"since": middle, "limit": 3})["events"]
    assert [e["data"].get("id") or e["data"].get("asset") for e in owner] == ["late", "late", "secret"]
    refusal(api.get("/v1/events/recent", "bravo", params={"since": "yesterday"}), 422, "invalid_input", "since")
    refusal(api.get("/v1/events/recent", "bravo", params={"since": middle, "limit": 0}), 422, "invalid_input", "limit")
