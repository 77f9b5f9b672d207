"""The activity rules: who an activity affects, how answers settle its state, what time does to it.

Pure functions over the picture and :class:`~deconfliction.model.Activity` values; the
service records what they decide. The lifecycle, in docs/activities.md:

    proposed ──every affected party acknowledged──▶ cleared ──proposer──▶ active ──▶ completed
       │  └──any affected party objected──▶ objected                                  ▲
       └──deadline passed, answers missing──▶ escalated (still not cleared)     window ended
    any state before the end ──proposer──▶ cancelled
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from deconfliction.engine.picture import Picture
from deconfliction.engine.rules import check_in, search_area, stakeholders
from deconfliction.errors import InvalidInput
from deconfliction.geo import Box, LatLon, LocalPlane, buffered
from deconfliction.model import Activity, ActivityKind, ActivityState, CheckQuery, Volume, Window, Zone

INSIDE_TOLERANCE_M = 1.0
"""A checked geometry this close outside a notified volume still counts as inside (rounding of typed positions)."""


def volume_query(party: str, kind: ActivityKind, volume: Volume) -> CheckQuery:
    """The check that a volume of an activity amounts to."""
    return CheckQuery(party, kind.check_kind, volume.geometry, volume.window, volume.radius_m, volume.altitude)


def envelope(party: str, kind: ActivityKind, volumes: tuple[Volume, ...], buffer_m: float) -> Box:
    """A lon/lat box around every buffered volume: what a picture key must cover. A volume the rules cannot
    answer for (one reaching past the plane's limit near a pole) is refused here, by its place in the list."""
    boxes = []
    for i, volume in enumerate(volumes):
        try:
            boxes.append(search_area(volume_query(party, kind, volume), buffer_m).envelope)
        except InvalidInput as exc:
            raise exc.at(f"volumes.{i}") from None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def affected_parties(
    picture: Picture, party: str, kind: ActivityKind, volumes: tuple[Volume, ...], now: datetime, buffer_m: float
) -> tuple[str, ...]:
    """Parties with assets or protected zones within the buffer during a window, or whose AOR or territory it touches.

    A stale unit inside the buffer makes its party affected too: it may still be there.
    """
    found: set[str] = set()
    for volume in volumes:
        query = volume_query(party, kind, volume)
        area = search_area(query, buffer_m)
        result = check_in(picture, query, now, area)
        found.update(f.party for f in result.conflicts)
        found.update(g.party for g in result.gaps if g.asset is not None)
        found.update(stakeholders(picture, area))
    found.discard(party)
    return tuple(sorted(found))


def settled(activity: Activity) -> ActivityState:
    """The state the answers so far put a waiting activity in."""
    answers = [activity.answers.get(p) for p in activity.affected]
    if any(a is not None and not a.acknowledged for a in answers):
        return ActivityState.OBJECTED
    if all(a is not None for a in answers):
        return ActivityState.CLEARED
    return ActivityState.ESCALATED if activity.escalated_at is not None else ActivityState.PROPOSED


WAITING = (ActivityState.PROPOSED, ActivityState.ESCALATED, ActivityState.OBJECTED, ActivityState.CLEARED)
"""States in which affected parties may still answer (change their mind) and the proposer may not yet be under way."""


def due(activity: Activity, now: datetime) -> Iterator[str]:
    """What time has done to the activity by ``now``: ``escalated``, ``ended``, or nothing."""
    if activity.state.ended:
        return
    if activity.state is ActivityState.PROPOSED and now >= activity.deadline:
        yield "escalated"
    if now > activity.ends_at:
        yield "ended"


def _shape_m(plane: LocalPlane, volume: Volume, extra_m: float) -> BaseGeometry:
    """A volume on ``plane``, grown by its radius (a point's circle, a route's width) and ``extra_m``."""
    grow = volume.radius_m + extra_m
    shape = plane.project(volume.geometry)
    return buffered(shape, grow) if grow > 0 else shape


def inside_notified(activity: Activity, geometry: BaseGeometry, radius_m: float, window: Window) -> bool:
    """Whether a checked geometry (with its radius) and window lie inside one of the activity's volumes."""
    for volume in activity.volumes:
        if not (volume.window.start <= window.start and window.end <= volume.window.end):
            continue
        p = geometry if isinstance(geometry, Point) else geometry.centroid
        plane = LocalPlane(LatLon(p.y, p.x))
        checked = plane.project(geometry)
        if radius_m > 0:
            checked = buffered(checked, radius_m)
        if _shape_m(plane, volume, INSIDE_TOLERANCE_M).covers(checked):
            return True
    return False


def reaches_point(activity: Activity, buffer_m: float, point: LatLon, uncertainty_m: float) -> float | None:
    """How far a position (less its uncertainty) lies from the nearest volume it is within the buffer of; None: from none."""
    nearest = None
    for volume in activity.volumes:
        area = search_area(volume_query(activity.party, activity.kind, volume), buffer_m)
        x, y = area.plane.xy(np.array([point.lon]), np.array([point.lat]))
        gap = shapely.distance(area.q_xy, Point(float(x[0]), float(y[0])))
        if gap <= area.reach_for(np.array(uncertainty_m)):
            d = max(0.0, gap - uncertainty_m - volume.radius_m)
            nearest = d if nearest is None else min(nearest, d)
    return nearest


def reaches_zone(activity: Activity, buffer_m: float, zone: Zone) -> bool:
    """Whether a zone that the activity's kind must keep clear of lies within its buffer, in time and height."""
    for volume in activity.volumes:
        query = volume_query(activity.party, activity.kind, volume)
        if zone.window is not None and not zone.window.overlaps(volume.window):
            continue
        if zone.altitude is not None and volume.altitude is not None and not zone.altitude.overlaps(volume.altitude):
            continue
        area = search_area(query, buffer_m)
        shape = area.plane.project(zone.geometry)
        if shapely.distance(area.q_xy, shape) <= area.reach_for(np.array(zone.width_m / 2)):
            return True
    return False


OUTSIDE = "outside_notified_volume"
NOT_CLEARED = "not_cleared"


def activity_flags(activity: Activity, query: CheckQuery) -> list[str]:
    """What a check that names ``activity`` shows about the activity: drift from its notice, no clearance."""
    flags = []
    if not inside_notified(activity, query.geometry, query.radius_m, query.window):
        flags.append(OUTSIDE)
    if activity.state not in (ActivityState.CLEARED, ActivityState.ACTIVE):
        flags.append(NOT_CLEARED)
    return flags
