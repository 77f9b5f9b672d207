"""The domain: immutable values with validation, shared by every layer.

The words here are the glossary of DESIGN.md: party, asset (unit or site), report, zone,
territory, area of responsibility (``Aor``), activity, check. Times are aware UTC datetimes;
distances carry their unit in the name (``uncertainty_m``, ``freshness_s``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from shapely.geometry.base import BaseGeometry

from deconfliction.errors import InvalidInput
from deconfliction.geo import LatLon, PickledByFields


class Role(StrEnum):
    ADMIN = "admin"  # operates the server: parties, tokens, territories
    LIAISON = "liaison"  # writes for its party
    VIEWER = "viewer"  # reads and asks checks
    AUDITOR = "auditor"  # reads the record


class AssetKind(StrEnum):
    UNIT = "unit"  # mobile: its position goes stale
    SITE = "site"  # static: its position holds until moved or withdrawn


class Disclosure(StrEnum):
    EXACT = "exact"  # id, name, position, distance
    COARSE = "coarse"  # id, name, H3 cell and distance band only
    HIDDEN = "hidden"  # used by checks, never shown: only the owning party is named


class ZoneKind(StrEnum):
    OPERATING_AREA = "operating_area"
    PROTECTED_AREA = "protected_area"
    NO_FIRE_AREA = "no_fire_area"
    ROUTE = "route"


class CheckKind(StrEnum):
    FIRES = "fires"
    AIR = "air"
    GROUND = "ground"
    OTHER = "other"


class ActivityKind(StrEnum):
    PATROL = "patrol"
    MOVEMENT = "movement"
    AIR = "air"
    FIRES = "fires"

    @property
    def check_kind(self) -> CheckKind:
        """The check whose buffer and rules the activity is held to: patrols and movements are ground."""
        return CheckKind.GROUND if self in (ActivityKind.PATROL, ActivityKind.MOVEMENT) else CheckKind(self.value)


class ActivityState(StrEnum):
    PROPOSED = "proposed"  # waiting for every affected party
    CLEARED = "cleared"  # every affected party acknowledged (or none is affected)
    OBJECTED = "objected"  # an affected party objected
    ESCALATED = "escalated"  # the deadline passed without every answer: still not cleared
    ACTIVE = "active"  # under way
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in (ActivityState.COMPLETED, ActivityState.CANCELLED)


class Status(StrEnum):
    CONFLICT = "conflict"
    UNKNOWN = "unknown"
    CLEAR = "clear"


DEFAULT_BUFFERS_M: dict[CheckKind, float] = {
    CheckKind.FIRES: 1500.0,
    CheckKind.AIR: 1000.0,
    CheckKind.GROUND: 200.0,
    CheckKind.OTHER: 100.0,
}

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def check_id(value: object, field: str) -> str:
    """Ids are lowercase ASCII so that no two ids look alike (no Unicode confusables)."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidInput(
            f"{value!r} is not a valid id: use 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
            field=field,
        )
    return value


def activity_ref(value: object, field: str) -> tuple[str | None, str]:
    """``PROPOSER/ID`` or a plain ``ID`` (the proposer left to the reader): how a person names an activity.

    Activity ids are the proposer's own, as asset ids are the owner's, so another party's
    activity is named with its proposer.
    """
    if isinstance(value, str) and value.count("/") == 1:
        proposer, activity_id = value.split("/")
        return check_id(proposer, field), check_id(activity_id, field)
    if isinstance(value, str) and "/" in value:
        raise InvalidInput(f"{value!r} names no activity: write PROPOSER/ID or ID", field=field)
    return None, check_id(value, field)


def check_text(value: object, field: str, max_length: int = 2000, what: str = "text") -> str:
    """Free text (a purpose, a reason): not empty, not longer than ``max_length``."""
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidInput(f"{what} is 1 to {max_length} characters of text", field=field)
    return value.strip()


def check_name(value: object, field: str) -> str:
    return check_text(value, field, 200, "a name")


def check_non_negative(value: object, field: str, *, maximum: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{value!r} is not a finite number", field=field)
    if value < 0:
        raise InvalidInput(f"{value:g} is negative; it must be 0 or more", field=field)
    if value > maximum:
        raise InvalidInput(f"{value:g} is more than the {maximum:g} allowed", field=field)
    return float(value)


def check_positive(value: object, field: str, *, maximum: float = math.inf) -> float:
    number = check_non_negative(value, field, maximum=maximum)
    if number == 0:
        raise InvalidInput("it must be more than 0", field=field)
    return number


# Times outside these years are typing errors, and keeping them out keeps date arithmetic
# (a time plus a duration of up to MAX_DURATION_S) from overflowing.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, tzinfo=UTC)
MAX_DURATION_S = 366 * 86400.0
"""The longest stale time or freshness interval: a promise longer than a year is no promise."""


def check_time(value: object, field: str) -> datetime:
    """An aware datetime (or ISO 8601 text with a zone), returned in UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(f"{value!r} is not an ISO 8601 time", field=field) from exc
    if not isinstance(value, datetime):
        raise InvalidInput("a time in ISO 8601 with a time zone is required", field=field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{value.isoformat()} has no time zone; write it in UTC with a Z", field=field)
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput(f"{value.isoformat()} is outside the years {EARLIEST.year} to {LATEST.year}", field=field) from exc
    if not EARLIEST <= utc <= LATEST:
        raise InvalidInput(f"{value.isoformat()} is outside the years {EARLIEST.year} to {LATEST.year}", field=field)
    return utc


def check_enum(enum: type[StrEnum], value: object, field: str) -> Any:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return enum(value)
    except ValueError as exc:
        allowed = ", ".join(e.value for e in enum)
        raise InvalidInput(f"{value!r} is not one of {allowed}", field=field) from exc


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration_s(value: object, field: str) -> float:
    """A duration as seconds: a number of seconds, or text such as ``90m``, ``6h``, ``2d``; at most a year."""
    if isinstance(value, str):
        m = _DURATION.match(value.strip())
        if not m:
            raise InvalidInput(f"{value!r} is not a duration such as 30s, 90m, 6h or 2d", field=field)
        value = float(m[1]) * _UNIT_S[m[2]]
    return check_positive(value, field, maximum=MAX_DURATION_S)


@dataclass(frozen=True, slots=True)
class Window:
    """A closed time interval [start, end]."""

    start: datetime
    end: datetime

    @classmethod
    def parse(cls, start: object, end: object, field: str = "window") -> Window:
        s, e = check_time(start, f"{field}.start"), check_time(end, f"{field}.end")
        if e < s:
            raise InvalidInput(f"the window ends ({e.isoformat()}) before it starts ({s.isoformat()})", field=f"{field}.end")
        return cls(s, e)

    def overlaps(self, other: Window) -> bool:
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True, slots=True)
class AltitudeBand:
    """Metres above mean sea level, [low_m, high_m]."""

    low_m: float
    high_m: float

    @classmethod
    def parse(cls, value: object, field: str = "altitude_m") -> AltitudeBand:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise InvalidInput("an altitude band is [low, high] in metres", field=field)
        low, high = value
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise InvalidInput(f"{v!r} is not a finite number", field=f"{field}.{i}")
        if high < low:
            raise InvalidInput(f"the band's top {high:g} is below its bottom {low:g}", field=field)
        return cls(float(low), float(high))

    def overlaps(self, other: AltitudeBand) -> bool:
        return self.low_m <= other.high_m and other.low_m <= self.high_m


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    name: str
    stale_after_s: float = 1800.0  # default life of a unit's report when the report names none
    default_disclosure: Disclosure = Disclosure.EXACT  # of its new assets and zones that name none


@dataclass(frozen=True, slots=True)
class Asset(PickledByFields):
    party: str
    id: str
    kind: AssetKind
    name: str
    disclosure: Disclosure

    @property
    def key(self) -> tuple[str, str]:
        return (self.party, self.id)


@dataclass(frozen=True, slots=True)
class Report(PickledByFields):
    """An asset's position at a time. ``stale_at`` is None for a site: it holds until moved."""

    party: str
    asset: str
    point: LatLon
    time: datetime
    uncertainty_m: float
    stale_at: datetime | None
    notation: str = "decimal"
    how: str | None = None  # how the position was found, in CoT's words ("m-g": GPS; "h-e": entered by hand)

    def is_stale(self, now: datetime) -> bool:
        return self.stale_at is not None and self.stale_at <= now


@dataclass(frozen=True, slots=True)
class Zone(PickledByFields):
    """A declared area. A route is its LineString widened by ``width_m`` (half on each side)."""

    party: str
    id: str
    kind: ZoneKind
    geometry: BaseGeometry  # lon/lat; for a route, the centre line
    width_m: float = 0.0
    window: Window | None = None
    altitude: AltitudeBand | None = None
    disclosure: Disclosure = Disclosure.EXACT
    name: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.party, self.id)


@dataclass(frozen=True, slots=True)
class Aor:
    """An area of responsibility: the party reports all its assets here every ``freshness_s``."""

    party: str
    id: str
    geometry: BaseGeometry
    freshness_s: float
    confirmed_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.party, self.id)

    def lapsed_since(self, now: datetime) -> datetime | None:
        """When the promise ran out, or None while it holds; never-confirmed AORs lapse at once."""
        if self.confirmed_at is None:
            return datetime.min.replace(tzinfo=UTC)
        until = self.confirmed_at + timedelta(seconds=self.freshness_s)
        return until if until <= now else None


@dataclass(frozen=True, slots=True)
class Territory:
    party: str
    geometry: BaseGeometry  # Polygon or MultiPolygon, lon/lat


@dataclass(frozen=True, slots=True)
class Volume:
    """One space-time volume of an activity: a point with a radius, an area, or a route with a width."""

    geometry: BaseGeometry  # Point, Polygon/MultiPolygon or LineString, lon/lat
    radius_m: float  # a point's radius, half a route's width; 0 for an area
    window: Window
    altitude: AltitudeBand | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """An affected party's answer to a proposed activity."""

    acknowledged: bool  # False: it objected
    at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Activity:
    """A planned patrol, movement, air mission or fire mission, and where it stands.

    ``affected`` is fixed when it is proposed; ``answers`` holds each affected party's
    latest answer. ``envelope`` is a lon/lat box around every buffered volume.
    """

    id: str
    party: str
    kind: ActivityKind
    volumes: tuple[Volume, ...]
    purpose: str
    affected: tuple[str, ...]
    proposed_at: datetime
    deadline: datetime
    envelope: tuple[float, float, float, float]
    state: ActivityState = ActivityState.PROPOSED
    answers: dict[str, Answer] = field(default_factory=dict)
    escalated_at: datetime | None = None
    activated_at: datetime | None = None
    override: str | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(proposer, id): ids are the proposer's own, as asset ids are the owner's."""
        return (self.party, self.id)

    @property
    def ends_at(self) -> datetime:
        return max(v.window.end for v in self.volumes)

    def concerns(self, party: str | None) -> bool:
        """The proposer and the affected parties see the activity; nobody else does."""
        return party == self.party or party in self.affected


@dataclass(frozen=True, slots=True)
class CheckQuery:
    """What a check asks: is it safe to do ``kind`` at ``geometry`` (± ``radius_m``) in ``window``?"""

    asker: str
    kind: CheckKind
    geometry: BaseGeometry  # a Point or a Polygon/MultiPolygon, lon/lat
    window: Window
    radius_m: float = 0.0
    altitude: AltitudeBand | None = None


class Finding(NamedTuple):
    """Something within the buffer: an asset or a zone. Disclosure decides what is shown.

    A named tuple rather than a frozen dataclass like the others: a check at a million assets makes
    twenty to forty of them, and a frozen dataclass took 0.7 µs to make against 0.35 µs (Python 3.11).
    """

    party: str
    object: str  # "unit", "site" or a zone kind
    id: str
    name: str
    disclosure: Disclosure
    distance_m: float
    point: LatLon | None = None  # an asset's position, for coarse cells and read-back


@dataclass(frozen=True, slots=True)
class Gap:
    """Why the service cannot vouch for part of the area: a lapsed AOR, uncovered territory, a stale asset."""

    party: str
    reason: str  # "aor_lapsed", "no_aor", "stale_asset"
    since: datetime | None
    aor: str | None = None
    asset: Finding | None = None


@dataclass(frozen=True, slots=True)
class Border:
    """Whose territory a point lies in and how far it is from that territory's boundary."""

    territory: str | None
    distance_m: float | None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The engine's answer, before disclosure and recording."""

    status: Status
    conflicts: tuple[Finding, ...]
    gaps: tuple[Gap, ...]
    border: Border
    reference: LatLon
    buffer_m: float
    picture_version: int
    envelope: tuple[float, float, float, float] = (-180.0, -90.0, 180.0, 90.0)  # lon/lat box around the buffered area


@dataclass(frozen=True, slots=True)
class Event:
    """One accepted write (or check) as the store logs it, in commit order."""

    type: str
    time: datetime
    party: str | None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
