"""Live events: ``GET /v1/events`` as Server-Sent Events and ``/v1/events/ws`` as a WebSocket.

Both read the log from a cursor (an event's sequence number) and show each event as the
caller's party may see it (:meth:`Service.events`), then wait for the next commit. A
client that reconnects with its last cursor (SSE's ``Last-Event-ID``) misses nothing.
Without a cursor a stream starts at the end of the log: load the current picture first,
then follow.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pydantic_core
from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from deconfliction.api.routes import ERRORS, Positive, Who, Whole, bearer_token, client_of, log_refusal
from deconfliction.errors import DeconflictionError, InvalidInput
from deconfliction.service import Caller, Service

KEEPALIVE_S = 15.0
"""A stream with nothing to say sends a comment this often, so proxies and clients know it lives."""

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["events"])


async def follow(
    svc: Service, who: Caller, cursor: int, limit: int | None, token: str | None
) -> AsyncIterator[dict[str, Any] | None]:
    """Events after ``cursor`` as ``who`` may see them, then live; None when a keep-alive is due.

    The stream ends as soon as ``token`` is revoked: the revocation's commit wakes it.
    """
    sent = 0
    with svc.feed.subscribe() as woken:
        while (limit is None or sent < limit) and svc.holds(token):
            page = 100 if limit is None else min(100, limit - sent)
            events, cursor = await run_in_threadpool(svc.events, who, cursor, page)
            for event in events:
                yield event
            sent += len(events)
            if not events and not await woken.wait(KEEPALIVE_S):
                yield None


def _start(svc: Service, cursor: int | None) -> int:
    if cursor is None:
        return svc.store.last_seq()
    if cursor < 0:
        raise InvalidInput("a cursor is a sequence number, 0 or more", field="cursor")
    return cursor


def _sse(event: dict[str, Any] | None) -> bytes:
    if event is None:
        return b": keep-alive\n\n"
    data = pydantic_core.to_json(event).decode()
    return f"id: {event['seq']}\nevent: {event['type']}\ndata: {data}\n\n".encode()


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "One SSE message per event: id, event, data."}},
)
async def events(
    request: Request,
    who: Who,
    cursor: Annotated[Whole | None, Query(description="Go on after this event's sequence number; default: from now.")] = None,
    last_event_id: Annotated[Whole | None, Header(description="Set by EventSource on reconnection; wins over cursor.")] = None,
    limit: Annotated[Positive | None, Query(description="Close the stream after this many events.")] = None,
) -> StreamingResponse:
    """Server-Sent Events: what the caller's party may see, as it happens, resumable from a cursor.

    The first message, ``stream.opened``, carries the cursor the stream starts from.
    """
    svc: Service = request.app.state.service
    start = _start(svc, last_event_id if last_event_id is not None else cursor)
    token = bearer_token(request.headers.get("authorization"))

    async def body() -> AsyncIterator[bytes]:
        yield _sse({"seq": start, "type": "stream.opened", "data": {"cursor": start}})
        async for event in follow(svc, who, start, limit, token):
            yield _sse(event)

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/events/recent")
def recent(
    request: Request,
    who: Who,
    since: Annotated[str, Query(description="An instant (ISO 8601 with a zone): the events from then on.")],
    limit: Annotated[Whole, Query(description="At most this many (1 to 1000), oldest first.")] = 1000,
) -> dict[str, Any]:
    """The events from an instant on, as the caller may see them, in one JSON answer (a console's timeline).

    ``cursor`` is where a stream (``GET /v1/events?cursor=``) would go on from.
    """
    svc: Service = request.app.state.service
    return svc.events_since(who, since, limit)


@router.websocket("/events/ws")
async def events_ws(websocket: WebSocket, cursor: int | None = None, limit: int | None = None) -> None:
    """The same stream as JSON messages over a WebSocket.

    The token comes in the ``Authorization`` header or, from a browser (which cannot set
    headers on a WebSocket), as the first message ``{"token": "..."}``.
    """
    svc: Service = websocket.app.state.service
    await websocket.accept()
    try:
        token = bearer_token(websocket.headers.get("authorization"))
        if token is None:
            first = json.loads(await websocket.receive_text())
            token = first.get("token") if isinstance(first, dict) else None
        who = svc.authenticate(token, client_of(websocket))
        start = _start(svc, cursor)
        await websocket.send_json({"seq": start, "type": "stream.opened", "data": {"cursor": start}})
        async for event in follow(svc, who, start, limit, token):
            await websocket.send_json(event if event is not None else {"type": "keep-alive"})
        await websocket.close()
    except DeconflictionError as exc:
        log_refusal(websocket, exc)
        await websocket.send_json({"error": exc.to_dict()})
        await websocket.close(code=1008)
    except (json.JSONDecodeError, UnicodeDecodeError):
        await websocket.send_json({"error": {"code": "invalid_input", "message": 'send {"token": "..."} first', "field": None}})
        await websocket.close(code=1008)
    except WebSocketDisconnect:
        return
