"""CoT to the service's words and back: reports, deletes and checks in; the shared picture and answers out. Pure.

In, from a party's own devices:

- a friendly atom (``a-f-...``) is a report of the party's asset named by the event's uid
  (:func:`asset_id`); ``point`` is the position, ``ce`` its uncertainty, ``stale`` when it
  goes stale, ``how`` is kept (``h-e``: entered by hand);
- a ``t-x-d-d`` delete naming one of the party's uids, or an atom already stale at its
  start, withdraws that asset's position;
- a ``t-x-deconflict-check`` event is a check at its point (``<deconflict kind= radius_m=/>``).

Out, to those devices: what the party may see of the others (the service's own disclosure
decides; this module only draws it), as neutral atoms, freeform shapes, alerts.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import h3

from deconfliction.geo import WGS84
from deconfliction.tak.cot import UNKNOWN, CotEvent

CHECK = "t-x-deconflict-check"
"""The type of the CoT event a device sends to ask a check."""
ANSWER = "b-a-deconflict-answer"
"""The type of the alert that answers it."""
CONFLICT = "b-a-deconflict-conflict"
"""The type of the alert for a conflict the service announces (an activity meeting the party's objects)."""
DELETE = "t-x-d-d"
NEGOTIATION_REQUEST = "t-x-takp-q"
"""TAK protocol negotiation: a device asks for a version; the gateway answers ``t-x-takp-r``."""
OURS = "deconfliction."
"""Every uid the gateway sends starts so; a device that sends one back is refused (it names another party's object)."""

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def is_friendly_atom(event: CotEvent) -> bool:
    return event.type.startswith("a-f-") or event.type == "a-f"


def asset_id(uid: str) -> str:
    """The asset a device's uid names: the uid itself when it is a valid id, else a readable form with a hash of the uid.

    CoT uids are free text (``ANDROID-58952…``, ``{GUID}``); asset ids are lowercase. A uid
    that is already a valid id is kept as it is; any other gets a lowercase form plus 8 hex
    digits of its SHA-256, so that two uids never land on one asset.
    """
    if _ID.match(uid):
        return uid
    readable = re.sub(r"[^a-z0-9._-]+", "-", uid.lower()).strip("-._")[:48] or "uid"
    return f"{readable}-{hashlib.sha256(uid.encode()).hexdigest()[:8]}"


def report_of(event: CotEvent, unknown_ce_m: float) -> dict[str, Any]:
    """The report body for a friendly atom (the service validates it, as any report)."""
    uncertainty = event.ce
    if uncertainty >= UNKNOWN:
        if unknown_ce_m <= 0:
            raise ValueError("its ce is 9999999 (not known): set DECONFLICT_TAK_UNKNOWN_CE_M to accept such positions")
        uncertainty = unknown_ce_m
    return {
        "asset": asset_id(event.uid),
        "position": f"{event.lat!r}, {event.lon!r}",
        "time": event.time.isoformat(),
        "uncertainty_m": uncertainty,
        "stale_after_s": max(1.0, (event.stale - event.time).total_seconds()),
        "how": event.how or None,
    }


def withdraws(event: CotEvent) -> str | None:
    """The uid whose position this event withdraws: a delete's linked uid, or an atom stale before it starts."""
    if event.type == DELETE:
        link = event.detail.find("link")
        return None if link is None else link.get("uid")
    if is_friendly_atom(event) and event.stale <= event.start:
        return event.uid
    return None


def check_of(event: CotEvent) -> dict[str, Any]:
    """The check a ``t-x-deconflict-check`` asks: its point, and ``kind``/``radius_m`` from ``<deconflict>``."""
    asked = event.detail.find("deconflict")
    body: dict[str, Any] = {"position": f"{event.lat!r}, {event.lon!r}", "kind": "other"}
    if asked is not None:
        if asked.get("kind"):
            body["kind"] = asked.get("kind")
        radius = asked.get("radius_m")
        if radius:
            try:
                body["radius_m"] = float(radius)
            except ValueError:
                body["radius_m"] = radius  # as given: the service refuses it, naming radius_m
    return body


# ---------------------------------------------------------------- out


Place = tuple[float, float]
"""lat, lon."""


def _made(
    uid: str, type_: str, at: Place, now: datetime, lasts: timedelta, detail: ET.Element, how: str = "m-g", ce: float = UNKNOWN
) -> CotEvent:
    """An event the gateway makes now, good for ``lasts``."""
    return CotEvent(uid, type_, now, now, now + lasts, at[0], at[1], how=how, ce=ce, detail=detail)


def _detail(*children: ET.Element) -> ET.Element:
    detail = ET.Element("detail")
    detail.extend(children)
    return detail


def _element(tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.Element(tag, attributes)
    element.text = text
    return element


def _contact(callsign: str) -> ET.Element:
    return _element("contact", callsign=callsign)


def _uid(*parts: str) -> str:
    return OURS + ".".join(parts)


def _cell_centre(cell: str) -> tuple[float, float, float]:
    """A coarse position as drawn: the cell's centre, and the distance to its farthest corner as ``ce``."""
    lat, lon = h3.cell_to_latlng(cell)
    corners = h3.cell_to_boundary(cell)
    _, _, distances = WGS84.inv([lon] * len(corners), [lat] * len(corners), [c[1] for c in corners], [c[0] for c in corners])
    return lat, lon, float(max(distances))


def asset_events(shown: Mapping[str, Any], now: datetime, stale_s: float) -> list[CotEvent]:
    """One of another party's assets, as :meth:`Service.assets` shows it to this party; nothing without a position."""
    if "position" in shown:
        lat, lon = shown["position"]["lat"], shown["position"]["lon"]
        ce = float(shown.get("uncertainty_m") or 0.0)
    elif "cell" in shown:
        lat, lon, ce = _cell_centre(shown["cell"])
    else:
        return []
    # Neutral: a partner is not this device's own force (blue), and not hostile; its own icon keeps them apart.
    type_ = "a-n-G-I" if shown["kind"] == "site" else "a-n-G-U"
    remarks = f"{shown['party']} {shown['kind']}, {shown['disclosure']}" + (" (stale)" if shown.get("stale") else "")
    detail = _detail(_contact(f"{shown['party']}: {shown['name']}"), _element("remarks", remarks))
    return [_made(_uid(shown["party"], shown["id"]), type_, (lat, lon), now, timedelta(seconds=stale_s), detail, ce=ce)]


def _rings(area: Mapping[str, Any]) -> Iterator[list[list[float]]]:
    kind = area["type"]
    if kind == "Polygon":
        yield area["coordinates"][0]
    elif kind == "MultiPolygon":
        for polygon in area["coordinates"]:
            yield polygon[0]
    elif kind == "LineString":
        yield area["coordinates"]
    elif kind == "MultiLineString":
        yield from area["coordinates"]
    elif kind == "Point":
        yield [area["coordinates"]]


def shape_events(
    uid: str, area: Mapping[str, Any], label: str, remarks: str, colour: int, now: datetime, stale_s: float
) -> list[CotEvent]:
    """A zone's or AOR's area as freeform drawings (``u-d-f``), one per ring or line, with their vertices as links."""
    made = []
    for i, ring in enumerate(_rings(area)):
        lon, lat = sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)
        links = [_element("link", point=f"{p[1]!r},{p[0]!r}") for p in ring]
        style = [
            _element("strokeColor", value=str(colour)),
            _element("strokeWeight", value="3.0"),
            _element("fillColor", value=str(colour & 0x00FFFFFF | 0x40000000)),
        ]
        detail = _detail(*links, *style, _contact(label), _element("remarks", remarks))
        part = uid if i == 0 else f"{uid}.{i}"
        made.append(_made(part, "u-d-f", (lat, lon), now, timedelta(seconds=stale_s), detail, how="h-e"))
    return made


RED, AMBER, GREY = -65536, -23296, -8355712  # ARGB as TAK writes colours: opaque red, amber, grey


def zone_events(shown: Mapping[str, Any], now: datetime, stale_s: float) -> list[CotEvent]:
    if "area" not in shown:
        return []  # coarse: the service shows no shape
    label = f"{shown['party']}: {shown['name']}"
    return shape_events(_uid(shown["party"], "zone", shown["id"]), shown["area"], label, shown["kind"], RED, now, stale_s)


def aor_events(shown: Mapping[str, Any], now: datetime, stale_s: float) -> list[CotEvent]:
    lapsed = shown["status"] == "lapsed"
    remarks = "AOR lapsed: its party's picture there is not vouched for (unknown)" if lapsed else "AOR, fresh"
    uid, label = _uid(shown["party"], "aor", shown["id"]), f"{shown['party']} AOR {shown['id']}"
    return shape_events(uid, shown["area"], label, remarks, AMBER if lapsed else GREY, now, stale_s)


def delete_event(uid: str, now: datetime) -> CotEvent:
    """Tells devices to drop an object the gateway sent before (it was withdrawn, or is no longer shown)."""
    link = _element("link", uid=uid, relation="none", type="none")
    detail = _detail(link, _element("__forcedelete"))
    return _made(DELETE, DELETE, (0.0, 0.0), now, timedelta(seconds=60), detail, how="h-g-i-g-o")


def answer_event(asked: CotEvent, answer: Mapping[str, Any], now: datetime) -> CotEvent:
    """A check's answer as an alert at the point asked: the status, and who or what it meets (as disclosed)."""
    parts = [f"{answer['status'].upper()} for {answer.get('kind', 'other')}"]
    for conflict in answer.get("conflicts", []):
        what = conflict.get("name") or conflict.get("object") or "an object"
        parts.append(f"{conflict['party']}: {what} ({conflict.get('disclosure')})")
    for gap in answer.get("gaps", []):
        parts.append(f"unknown: {gap.get('party')} {gap.get('reason', '')}".strip())
    return _answer(asked, answer["status"], "; ".join(parts), now, record=str(answer.get("record")))


def refusal_event(asked: CotEvent, reason: str, now: datetime) -> CotEvent:
    """A check the service refused: the reason, at the point asked."""
    return _answer(asked, "refused", reason, now)


def _answer(asked: CotEvent, status: str, remarks: str, now: datetime, **more: str) -> CotEvent:
    answered = _element("deconflict", status=status, asked=asked.uid, **more)
    detail = _detail(answered, _contact(f"check: {status}"), _element("remarks", remarks))
    return _made(_uid("answer", asked.uid), ANSWER, (asked.lat, asked.lon), now, timedelta(minutes=10), detail)


def alert_event(uid: str, text: str, lat: float, lon: float, now: datetime) -> CotEvent:
    """A notice the party is told of (a conflict, an escalation), at the activity's centre."""
    detail = _detail(_contact(text[:60]), _element("remarks", text))
    return _made(_uid("alert", uid), CONFLICT, (lat, lon), now, timedelta(hours=1), detail)


def negotiation_response(accepted: bool, now: datetime) -> CotEvent:
    """``t-x-takp-r``: whether the device may switch to TAK protocol version 1 (protobuf) on this stream."""
    control = _element("TakControl")
    control.append(_element("TakResponse", status="true" if accepted else "false"))
    return _made("protouid", "t-x-takp-r", (0.0, 0.0), now, timedelta(minutes=1), _detail(control))
