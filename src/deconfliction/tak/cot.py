"""Cursor on Target events: read from XML or TAK protocol version 1 protobuf, written to either. Pure.

A CoT event is a point with a type, times and a ``<detail>``. A message from a device network
is untrusted input: CoT never declares a DTD, so a message that holds one (``<!DOCTYPE``,
``<!ENTITY``) is refused before parsing, and the standard library's expat parser then has no
entity to expand and nothing external to fetch. (defusedxml does the same refusal inside the
parser, at three times the cost per message; on the gateway's hot path a byte search is
enough.) Protobuf is read with takproto's ``TakMessage``, whose ``xmlDetail`` carries the
detail elements that have no field of their own. Either way the result is one :class:`CotEvent`, and every refusal is a
:class:`CotError` that says which part of the message was wrong and why.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime

from takproto.proto import TakMessage

UNKNOWN = 9_999_999.0
"""CoT's "not known" for hae, ce and le."""


class CotError(ValueError):
    """A message that is not a usable CoT event; ``reason`` is a short counter name, the text says what was wrong."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CotEvent:
    uid: str
    type: str
    time: datetime
    start: datetime
    stale: datetime
    lat: float
    lon: float
    how: str = ""
    hae: float = UNKNOWN
    ce: float = UNKNOWN
    le: float = UNKNOWN
    detail: ET.Element = field(default_factory=lambda: ET.Element("detail"), compare=False)

    @property
    def callsign(self) -> str | None:
        contact = self.detail.find("contact")
        return None if contact is None else contact.get("callsign")


# ---------------------------------------------------------------- reading


def _time(value: str | None, name: str) -> datetime:
    if not value:
        raise CotError("bad_time", f"the event has no {name} time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CotError("bad_time", f"{name}={value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise CotError("bad_time", f"{name}={value!r} has no time zone (CoT times are UTC, ending in Z)")
    return parsed.astimezone(UTC)


Coordinate = str | float | None


def _number(value: Coordinate, name: str, low: float, high: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CotError("bad_point", f"point {name}={value!r} is not a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise CotError("bad_point", f"point {name}={value!r} is outside {low:g} to {high:g}")
    return number


Point = tuple[Coordinate, Coordinate, Coordinate, Coordinate, Coordinate]
"""lat, lon, hae, ce, le as the message gave them."""


Times = tuple[datetime, datetime, datetime]
"""time, start, stale."""


def _event(uid: str | None, type_: str | None, how: str | None, times: Times, point: Point, detail: ET.Element) -> CotEvent:
    if not uid:
        raise CotError("no_uid", "the event has no uid")
    if not type_:
        raise CotError("no_type", f"event {uid} has no type")
    lat, lon, hae, ce, le = point
    return CotEvent(
        uid=uid,
        type=type_,
        how=how or "",
        time=times[0],
        start=times[1],
        stale=times[2],
        lat=_number(lat, "lat", -90.0, 90.0),
        lon=_number(lon, "lon", -180.0, 180.0),
        hae=_number(UNKNOWN if hae in (None, "") else hae, "hae", -1e7, UNKNOWN),
        ce=_number(UNKNOWN if ce in (None, "") else ce, "ce", 0.0, UNKNOWN),
        le=_number(UNKNOWN if le in (None, "") else le, "le", 0.0, UNKNOWN),
        detail=detail,
    )


def _parse(data: bytes | str, what: str) -> ET.Element:
    raw = data.encode() if isinstance(data, str) else data
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise CotError("unsafe_xml", f"{what} declares a DTD or entities, which CoT never needs")
    try:
        return ET.fromstring(raw)
    except ET.ParseError as exc:
        raise CotError("bad_xml", f"{what} is not well-formed XML: {exc}") from None


def from_xml(data: bytes) -> CotEvent:
    """One ``<event>`` element, as a TAK device sends it."""
    root = _parse(data, "the message")
    if root.tag != "event":
        raise CotError("bad_xml", f"the message is a <{root.tag}>, not a CoT <event>")
    point = root.find("point")
    if point is None:
        raise CotError("bad_point", f"event {root.get('uid')} has no <point>")
    times = (_time(root.get("time"), "time"), _time(root.get("start"), "start"), _time(root.get("stale"), "stale"))
    lat, lon, hae, ce, le = (point.get(k) for k in ("lat", "lon", "hae", "ce", "le"))
    detail = root.find("detail")
    detail = detail if detail is not None else ET.Element("detail")
    return _event(root.get("uid"), root.get("type"), root.get("how"), times, (lat, lon, hae, ce, le), detail)


def _ms(value: int, name: str) -> datetime:
    if value <= 0:
        raise CotError("bad_time", f"the event has no {name} time")
    return datetime.fromtimestamp(value / 1000, UTC)


def from_proto(payload: bytes) -> CotEvent:
    """One TAK protocol version 1 ``TakMessage`` (the payload, without its framing)."""
    message = TakMessage()
    try:
        message.ParseFromString(payload)
    except Exception as exc:  # protobuf raises its DecodeError, or others on truncated input
        raise CotError("bad_protobuf", f"the message is not a TAK protocol version 1 TakMessage: {exc}") from None
    if not message.HasField("cotEvent"):
        raise CotError("bad_protobuf", "the TakMessage carries no CoT event")
    e = message.cotEvent
    detail = ET.Element("detail")
    if e.detail.xmlDetail:
        detail = _parse(f"<detail>{e.detail.xmlDetail}</detail>", "the event's xmlDetail")
    if e.detail.HasField("contact") and detail.find("contact") is None:
        ET.SubElement(detail, "contact", {k: v for k, v in (("callsign", e.detail.contact.callsign),) if v})
    times = (_ms(e.sendTime, "send"), _ms(e.startTime, "start"), _ms(e.staleTime, "stale"))
    return _event(e.uid, e.type, e.how, times, (e.lat, e.lon, e.hae, e.ce, e.le), detail)


# ---------------------------------------------------------------- writing


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def to_xml(event: CotEvent) -> bytes:
    """The event as CoT XML, one ``<event>`` (no XML declaration: streams are split at ``</event>``)."""
    root = ET.Element(
        "event",
        {
            "version": "2.0",
            "uid": event.uid,
            "type": event.type,
            "how": event.how or "m-g",
            "time": _iso(event.time),
            "start": _iso(event.start),
            "stale": _iso(event.stale),
        },
    )
    ET.SubElement(
        root,
        "point",
        {"lat": repr(event.lat), "lon": repr(event.lon), "hae": repr(event.hae), "ce": repr(event.ce), "le": repr(event.le)},
    )
    root.append(event.detail)
    return ET.tostring(root)


def to_proto(event: CotEvent) -> bytes:
    """The event as a TAK protocol version 1 ``TakMessage`` (the payload, without its framing)."""
    message = TakMessage()
    e = message.cotEvent
    e.uid, e.type, e.how = event.uid, event.type, event.how or "m-g"
    e.sendTime, e.startTime, e.staleTime = (int(t.timestamp() * 1000) for t in (event.time, event.start, event.stale))
    e.lat, e.lon, e.hae, e.ce, e.le = event.lat, event.lon, event.hae, event.ce, event.le
    e.detail.xmlDetail = "".join(ET.tostring(child, encoding="unicode") for child in event.detail)
    return bytes(message.SerializeToString())
