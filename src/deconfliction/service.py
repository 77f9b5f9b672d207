"""Commands and queries with authorisation and disclosure: the one place that joins store and engine.

Every command validates everything first, then appends its events to the store (durably,
in one transaction), then applies them to the in-memory picture. A refused command has
changed nothing. Requests arrive as plain mappings (JSON bodies, scenario steps, CLI
arguments), so that every outlet gets the same validation and the same error messages.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from deconfliction import events as ev
from deconfliction.clock import Clock, SystemClock
from deconfliction.disclosure import level_for, show_cell, show_finding, show_gap, show_point
from deconfliction.engine.picture import Picture
from deconfliction.engine.rules import border, borders, check
from deconfliction.errors import AlreadyExists, Forbidden, InvalidInput, NotFound, OutOfOrder, Unauthenticated
from deconfliction.geo import LatLon, parse_geojson, parse_position, to_geojson
from deconfliction.model import (
    AltitudeBand,
    Aor,
    Asset,
    AssetKind,
    Border,
    CheckKind,
    CheckQuery,
    Disclosure,
    Event,
    Party,
    Report,
    Role,
    Territory,
    Window,
    Zone,
    ZoneKind,
    check_enum,
    check_id,
    check_name,
    check_non_negative,
    check_positive,
    check_time,
    parse_duration_s,
)
from deconfliction.settings import Settings
from deconfliction.stores import Store

MAX_UNCERTAINTY_M = 100_000.0
MAX_RADIUS_M = 200_000.0
MAX_ROUTE_WIDTH_M = 50_000.0
AREA_TYPES = ("Polygon", "MultiPolygon")
APPLY_CHUNK = 100  # reports applied between two chances for a waiting check
SWITCH_INTERVAL_S = 0.001
"""How often a long write hands the interpreter to a waiting check (Python's default is 5 ms)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the token's party (None for the server's own admin) and role."""

    party: str | None
    role: Role


ROOT = Caller(None, Role.ADMIN)


def hash_token(token: str) -> str:
    """Tokens are stored only as SHA-256 hashes; they are 256-bit random, so no salt is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def _fields(body: object, field: str, allowed: Sequence[str], required: Sequence[str] = ()) -> Mapping[str, Any]:
    """Refuse unknown and missing fields; an explicit null means the field is absent."""
    if not isinstance(body, Mapping):
        raise InvalidInput("an object is required", field=field or None)
    prefix = f"{field}." if field else ""
    for name in body:
        if name not in allowed:
            raise InvalidInput(f"unknown field {name!r}; allowed: {', '.join(allowed)}", field=f"{prefix}{name}")
    for name in required:
        if body.get(name) is None:
            raise InvalidInput("this field is required", field=f"{prefix}{name}")
    return {name: value for name, value in body.items() if value is not None}


def _show_readback(point: LatLon, b: Border) -> dict[str, Any]:
    return {"position": show_point(point), "border": {"territory": b.territory, "distance_m": b.distance_m}}


class Service:
    """``Service(store, clock, settings)``: the deconfliction service over one store.

    On construction it replays the store's log into the in-memory picture. All methods
    are thread-safe; writes are serialised.
    """

    def __init__(self, store: Store, clock: Clock | None = None, settings: Settings | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.settings = settings or Settings()
        self.picture = Picture()
        self._tokens: dict[str, Caller] = {}
        # Writers take turns (validation, durable append and apply must not interleave);
        # readers (checks, lists) only need the picture not to change under them, so a
        # writer holds the reading lock just while it applies, in short chunks.
        self._writing = threading.RLock()
        self._reading = threading.RLock()
        for event in store.load():
            self._apply(event)

    # ------------------------------------------------------------------ plumbing

    def _apply(self, event: Event) -> None:
        if event.type == "token.created":
            d = event.data
            self._tokens[d["hash"]] = Caller(d["party"], Role(d["role"]))
        else:
            ev.apply(self.picture, event)

    def _commit(self, events: Sequence[Event]) -> list[int]:
        """Append durably, then apply; the caller holds the writing lock."""
        seqs = self.store.append(events)
        with self._reading:
            for event, seq in zip(events, seqs, strict=True):
                self._apply(replace(event, seq=seq))
        return seqs

    def _liaison(self, caller: Caller) -> str:
        if caller.role is not Role.LIAISON or caller.party is None:
            raise Forbidden(f"only a liaison of a party may write for it; this token's role is {caller.role.value}")
        return self._party_of(caller, "writing")

    def _party_of(self, caller: Caller, action: str) -> str:
        if caller.party is None:
            raise Forbidden(f"{action} is done for a party; the server admin token belongs to none")
        if caller.party not in self.picture.parties:
            raise NotFound(f"there is no party {caller.party!r}", field="party")
        return caller.party

    def _admin(self, caller: Caller, party: str | None = None) -> None:
        """Server admins (no party) may do everything; a party's admin only manages that party's tokens."""
        if caller.role is not Role.ADMIN:
            raise Forbidden(f"only an admin may do this; this token's role is {caller.role.value}")
        if caller.party is not None and (party is None or party != caller.party):
            raise Forbidden(f"an admin of {caller.party} manages only its own party's tokens")

    def readback(self, point: LatLon) -> dict[str, Any]:
        """The canonical read-back of a position: lat/lon, MGRS, and the border."""
        return _show_readback(point, border(self.picture, point))

    def read_position(self, text: object) -> dict[str, Any]:
        """Parse a human position and read it back, storing nothing (for a console or CLI)."""
        parsed = parse_position(text)
        with self._reading:
            return {**self.readback(parsed.point), "notation": parsed.notation}

    # ------------------------------------------------------------------ admin

    def authenticate(self, token: str | None) -> Caller:
        if not token:
            raise Unauthenticated("a bearer token is required: Authorization: Bearer TOKEN")
        # Looked up by its SHA-256: lookup timing depends on the hash, which an attacker
        # cannot steer towards a stored one, not on how much of a real token was guessed.
        caller = self._tokens.get(hash_token(token))
        if caller is None:
            raise Unauthenticated("the token is not known to this service")
        return caller

    def create_party(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        self._admin(caller)
        body = _fields(body, "", ("id", "name", "stale_after_s"), ("id", "name"))
        party = Party(
            id=check_id(body["id"], "id"),
            name=check_name(body["name"], "name"),
            stale_after_s=parse_duration_s(body.get("stale_after_s", self.settings.stale_after_s), "stale_after_s"),
        )
        with self._writing:
            if party.id in self.picture.parties:
                raise AlreadyExists(f"party {party.id!r} exists already", field="id")
            self._commit([ev.party_event(party, self.clock.now(), caller.party)])
        return self._show_party(party)

    def _show_party(self, party: Party) -> dict[str, Any]:
        return {"id": party.id, "name": party.name, "stale_after_s": party.stale_after_s}

    def parties(self, caller: Caller) -> list[dict[str, Any]]:
        del caller  # every authenticated caller may know who takes part
        with self._reading:
            return [self._show_party(p) for p in self.picture.parties.values()]

    def create_token(self, caller: Caller, party: str | None, role: object) -> str:
        """A new random token for ``party`` (None: the server itself, admin only)."""
        self._admin(caller, party)
        chosen: Role = check_enum(Role, role, "role")
        if party is None and chosen is not Role.ADMIN:
            raise InvalidInput("only an admin token may belong to no party", field="role")
        if party is not None and party not in self.picture.parties:
            raise NotFound(f"there is no party {party!r}", field="party")
        token = secrets.token_urlsafe(32)
        data = {"hash": hash_token(token), "party": party, "role": chosen.value}
        with self._writing:
            self._commit([Event("token.created", self.clock.now(), caller.party, data)])
        return token

    def put_territory(self, caller: Caller, party: str, area: object) -> dict[str, Any]:
        self._admin(caller)
        if party not in self.picture.parties:
            raise NotFound(f"there is no party {party!r}", field="party")
        territory = Territory(party, parse_geojson(area, "area", AREA_TYPES))
        with self._writing:
            self._commit([ev.territory_event(territory, self.clock.now(), caller.party)])
        return {"party": party, "area": to_geojson(territory.geometry), "picture_version": self.picture.version}

    def territories(self, caller: Caller) -> list[dict[str, Any]]:
        del caller  # the shared border reference is public to every party
        with self._reading:
            return [{"party": t.party, "area": to_geojson(t.geometry)} for _, t in self.picture.territories]

    # ------------------------------------------------------------------ assets and reports

    def register_asset(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        party = self._liaison(caller)
        allowed = ("id", "kind", "name", "disclosure", "position", "uncertainty_m", "time", "stale_after_s")
        body = _fields(body, "", allowed, ("id", "kind"))
        asset = Asset(
            party=party,
            id=check_id(body["id"], "id"),
            kind=check_enum(AssetKind, body["kind"], "kind"),
            name=check_name(body.get("name") or body["id"], "name"),
            disclosure=check_enum(Disclosure, body.get("disclosure", "exact"), "disclosure"),
        )
        with self._writing:
            if asset.key in self.picture.assets:
                raise AlreadyExists(f"{party} has an asset {asset.id!r} already", field="id")
            now = self.clock.now()
            events = [ev.asset_event(asset, now)]
            report = None
            if body.get("position") is not None:
                report = self._report(
                    asset, {k: v for k, v in body.items() if k not in ("id", "kind", "name", "disclosure")}, "", now
                )
                events.append(ev.report_event(report, now))
            self._commit(events)
        shown = self._show_asset(asset, report, party)
        assert shown is not None, "a party always sees its own assets"
        return shown

    def _report(self, asset: Asset, body: Mapping[str, Any], field: str, now: datetime) -> Report:
        prefix = f"{field}." if field else ""
        parsed = parse_position(body.get("position"), f"{prefix}position")
        uncertainty = check_non_negative(body.get("uncertainty_m", 0.0), f"{prefix}uncertainty_m", maximum=MAX_UNCERTAINTY_M)
        time = now if body.get("time") is None else check_time(body["time"], f"{prefix}time")
        if time > now + timedelta(seconds=self.settings.clock_skew_s):
            raise InvalidInput(
                f"the report's time {time.isoformat()} is more than {self.settings.clock_skew_s:g} s ahead of the "
                f"server's clock ({now.isoformat()})",
                field=f"{prefix}time",
            )
        held = self.picture.reports.get(asset.key)
        if held is not None and time < held.time:
            raise OutOfOrder(
                f"{asset.id} already has a newer report ({held.time.isoformat()}) than this one ({time.isoformat()})",
                field=f"{prefix}time",
            )
        stale_at = None
        if asset.kind is AssetKind.SITE and "stale_after_s" in body:
            raise InvalidInput(
                "a site's position holds until it is moved or withdrawn; stale_after_s is for units",
                field=f"{prefix}stale_after_s",
            )
        if asset.kind is AssetKind.UNIT:
            default = self.picture.parties[asset.party].stale_after_s
            stale_at = time + timedelta(seconds=parse_duration_s(body.get("stale_after_s", default), f"{prefix}stale_after_s"))
        return Report(
            party=asset.party,
            asset=asset.id,
            point=parsed.point,
            time=time,
            # A coarse notation (MGRS at 100 m) cannot claim more certainty than it names.
            uncertainty_m=max(uncertainty, parsed.precision_m),
            stale_at=stale_at,
            notation=parsed.notation,
        )

    def _own_asset(self, party: str, asset_id: object, field: str) -> Asset:
        asset = self.picture.assets.get((party, str(asset_id)))
        if asset is None:
            # The same answer whether another party has such an asset or nobody has:
            # a refusal must not confirm that a hidden asset exists.
            raise NotFound(f"{party} has no asset {asset_id!r}; a party reports only its own assets", field=field)
        return asset

    def report(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        """One position report: ``{asset, position, time?, uncertainty_m?, stale_after_s?}``."""
        return self.report_batch(caller, [body], field="")[0]

    def report_batch(self, caller: Caller, bodies: Sequence[Mapping[str, Any]], field: str = "reports") -> list[dict[str, Any]]:
        """Several reports, all or nothing: one bad report refuses the batch and names it."""
        party = self._liaison(caller)
        if len(bodies) > self.settings.max_batch:
            raise InvalidInput(f"{len(bodies)} reports is more than the {self.settings.max_batch} allowed at once", field=field)
        allowed = ("asset", "position", "time", "uncertainty_m", "stale_after_s")
        with self._writing:
            now = self.clock.now()
            reports: list[Report] = []
            newest: dict[str, Report] = {}
            for i, body in enumerate(bodies):
                where = f"{field}.{i}" if field else ""
                body = _fields(body, where, allowed, ("asset", "position"))
                asset = self._own_asset(party, body["asset"], f"{where}.asset" if where else "asset")
                report = self._report(asset, body, where, now)
                earlier = newest.get(asset.id)
                if earlier is not None and report.time < earlier.time:
                    raise OutOfOrder(f"reports of {asset.id} in one batch must be in time order", field=f"{where}.time")
                newest[asset.id] = report
                reports.append(report)
            seqs = self.store.append([ev.report_event(r, now) for r in reports])
            # The events were made from these very reports: apply them as they are rather
            # than decode again what was just encoded (the hot path of streaming ingest).
            # Each report is a fact of its own, so checks may run between chunks.
            for start in range(0, len(reports), APPLY_CHUNK):
                with self._reading:
                    for report in reports[start : start + APPLY_CHUNK]:
                        self.picture.put_report(report)
                    self.picture.version = seqs[min(start + APPLY_CHUNK, len(reports)) - 1]
            lats = np.fromiter((r.point.lat for r in reports), float, len(reports))
            lons = np.fromiter((r.point.lon for r in reports), float, len(reports))
            found = borders(self.picture, lats, lons)
            version = self.picture.version
            return [
                {"asset": r.asset, **self._report_fields(r, b), "picture_version": version}
                for r, b in zip(reports, found, strict=True)
            ]

    def _report_fields(self, report: Report, border_: Border | None = None) -> dict[str, Any]:
        return {
            "time": report.time.isoformat(),
            "uncertainty_m": report.uncertainty_m,
            "stale_at": None if report.stale_at is None else report.stale_at.isoformat(),
            "notation": report.notation,
            **_show_readback(report.point, border_ or border(self.picture, report.point)),
        }

    def withdraw_asset(self, caller: Caller, asset_id: str) -> dict[str, Any]:
        party = self._liaison(caller)
        with self._writing:
            asset = self._own_asset(party, asset_id, "id")
            self._commit([ev.withdrawal_event("asset.withdrawn", party, asset.id, self.clock.now())])
        return {"withdrawn": asset.id, "picture_version": self.picture.version}

    def withdraw_position(self, caller: Caller, asset_id: str) -> dict[str, Any]:
        """The asset's position no longer holds (a site moved away, a unit's report was wrong)."""
        party = self._liaison(caller)
        with self._writing:
            asset = self._own_asset(party, asset_id, "id")
            self._commit([ev.withdrawal_event("position.withdrawn", party, asset.id, self.clock.now())])
        return {"withdrawn": f"{asset.id} position", "picture_version": self.picture.version}

    def _show_asset(self, asset: Asset, report: Report | None, viewer: str | None) -> dict[str, Any] | None:
        level = level_for(asset.party, asset.disclosure, viewer)
        if level is Disclosure.HIDDEN:
            return None
        shown: dict[str, Any] = {
            "party": asset.party,
            "id": asset.id,
            "kind": asset.kind.value,
            "name": asset.name,
            "disclosure": asset.disclosure.value,
        }
        if report is not None:
            now = self.clock.now()
            shown["time"] = report.time.isoformat()
            shown["stale"] = report.is_stale(now)
            if level is Disclosure.EXACT:
                shown.update(self._report_fields(report))
            else:
                shown["cell"] = show_cell(report.point, self.settings.coarse_resolution)
        return shown

    def assets(self, caller: Caller) -> list[dict[str, Any]]:
        """Every asset the caller may see: its own, and others' by their disclosure."""
        with self._reading:
            shown = [self._show_asset(a, self.picture.reports.get(k), caller.party) for k, a in self.picture.assets.items()]
        return [s for s in shown if s is not None]

    def asset(self, caller: Caller, party: str, asset_id: str) -> dict[str, Any]:
        with self._reading:
            asset = self.picture.assets.get((party, asset_id))
            shown = None if asset is None else self._show_asset(asset, self.picture.reports.get(asset.key), caller.party)
        if shown is None:
            raise NotFound(f"no visible asset {party}/{asset_id}", field="id")
        return shown

    # ------------------------------------------------------------------ zones and AORs

    def declare_zone(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        party = self._liaison(caller)
        allowed = ("id", "kind", "name", "area", "width_m", "window", "altitude_m", "disclosure")
        body = _fields(body, "", allowed, ("id", "kind", "area"))
        kind = check_enum(ZoneKind, body["kind"], "kind")
        if kind is ZoneKind.ROUTE:
            geometry = parse_geojson(body["area"], "area", ("LineString",))
            width = (
                check_positive(body.get("width_m"), "width_m", maximum=MAX_ROUTE_WIDTH_M)
                if body.get("width_m") is not None
                else None
            )
            if width is None:
                raise InvalidInput("a route needs width_m, its full width in metres", field="width_m")
        else:
            geometry = parse_geojson(body["area"], "area", AREA_TYPES)
            if body.get("width_m") is not None:
                raise InvalidInput("width_m is for routes only", field="width_m")
            width = 0.0
        zone = Zone(
            party=party,
            id=check_id(body["id"], "id"),
            kind=kind,
            geometry=geometry,
            width_m=width,
            window=self._window(body.get("window")),
            altitude=None if body.get("altitude_m") is None else AltitudeBand.parse(body["altitude_m"]),
            disclosure=check_enum(Disclosure, body.get("disclosure", "exact"), "disclosure"),
            name=check_name(body.get("name") or body["id"], "name"),
        )
        with self._writing:
            if zone.key in {k for k, _ in self.picture.zones}:
                raise AlreadyExists(f"{party} has a zone {zone.id!r} already", field="id")
            self._commit([ev.zone_event(zone, self.clock.now())])
        shown = self._show_zone(zone, party)
        assert shown is not None
        return {**shown, "picture_version": self.picture.version}

    def _window(self, value: object, field: str = "window") -> Window | None:
        if value is None:
            return None
        if isinstance(value, Mapping):
            _fields(value, field, ("start", "end"), ("start", "end"))
            return Window.parse(value["start"], value["end"], field)
        if isinstance(value, list | tuple) and len(value) == 2:
            return Window.parse(value[0], value[1], field)
        raise InvalidInput("a window is {start, end} in ISO 8601 with a time zone", field=field)

    def _show_zone(self, zone: Zone, viewer: str | None) -> dict[str, Any] | None:
        level = level_for(zone.party, zone.disclosure, viewer)
        if level is Disclosure.HIDDEN:
            return None
        shown: dict[str, Any] = {
            "party": zone.party,
            "id": zone.id,
            "kind": zone.kind.value,
            "name": zone.name,
            "disclosure": zone.disclosure.value,
            "window": None
            if zone.window is None
            else {"start": zone.window.start.isoformat(), "end": zone.window.end.isoformat()},
            "altitude_m": None if zone.altitude is None else [zone.altitude.low_m, zone.altitude.high_m],
        }
        if level is Disclosure.EXACT:
            shown["area"] = to_geojson(zone.geometry)
            if zone.kind is ZoneKind.ROUTE:
                shown["width_m"] = zone.width_m
        return shown

    def zones(self, caller: Caller) -> list[dict[str, Any]]:
        with self._reading:
            shown = [self._show_zone(z, caller.party) for _, z in self.picture.zones]
        return [s for s in shown if s is not None]

    def withdraw_zone(self, caller: Caller, zone_id: str) -> dict[str, Any]:
        party = self._liaison(caller)
        with self._writing:
            if self.picture.zones.get((party, zone_id)) is None:
                raise NotFound(f"{party} has no zone {zone_id!r}", field="id")
            self._commit([ev.withdrawal_event("zone.withdrawn", party, zone_id, self.clock.now())])
        return {"withdrawn": zone_id, "picture_version": self.picture.version}

    def declare_aor(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        party = self._liaison(caller)
        body = _fields(body, "", ("id", "area", "freshness_s"), ("id", "area", "freshness_s"))
        aor = Aor(
            party=party,
            id=check_id(body["id"], "id"),
            geometry=parse_geojson(body["area"], "area", AREA_TYPES),
            freshness_s=parse_duration_s(body["freshness_s"], "freshness_s"),
        )
        with self._writing:
            if self.picture.aors.get(aor.key) is not None:
                raise AlreadyExists(f"{party} has an AOR {aor.id!r} already", field="id")
            self._commit([ev.aor_event(aor, self.clock.now())])
        return {**self._show_aor(aor), "picture_version": self.picture.version}

    def confirm_aor(self, caller: Caller, aor_id: str) -> dict[str, Any]:
        """The party states that its picture in this AOR is complete as of now."""
        party = self._liaison(caller)
        with self._writing:
            if self.picture.aors.get((party, aor_id)) is None:
                raise NotFound(f"{party} has no AOR {aor_id!r}", field="aor")
            self._commit([ev.withdrawal_event("aor.confirmed", party, aor_id, self.clock.now())])
            aor = self.picture.aors.get((party, aor_id))
        assert aor is not None
        return {**self._show_aor(aor), "picture_version": self.picture.version}

    def _show_aor(self, aor: Aor) -> dict[str, Any]:
        now = self.clock.now()
        lapsed = aor.lapsed_since(now)
        return {
            "party": aor.party,
            "id": aor.id,
            "area": to_geojson(aor.geometry),
            "freshness_s": aor.freshness_s,
            "confirmed_at": None if aor.confirmed_at is None else aor.confirmed_at.isoformat(),
            "fresh_until": None
            if aor.confirmed_at is None
            else (aor.confirmed_at + timedelta(seconds=aor.freshness_s)).isoformat(),
            "status": "fresh" if lapsed is None else "lapsed",
        }

    def aors(self, caller: Caller) -> list[dict[str, Any]]:
        del caller  # where a party vouches for its picture is shared with everyone, by design
        with self._reading:
            return [self._show_aor(a) for _, a in self.picture.aors]

    # ------------------------------------------------------------------ checks

    def check(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        """Answer a check and record it: ``{position | area, radius_m?, kind, window?, altitude_m?}``.

        The answer returns once its record is durable; ``record`` is its sequence number.
        """
        answer, record = self._answer(caller, body)
        (answer["record"],) = self.store.append_grouped([record])
        return answer

    async def check_async(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`check` for an event loop: the check runs inline, the record is awaited."""
        answer, record = self._answer(caller, body)
        (answer["record"],) = await self.store.append_grouped_async([record])
        return answer

    def _answer(self, caller: Caller, body: Mapping[str, Any]) -> tuple[dict[str, Any], Event]:
        """A check's answer as the asker may see it, and the event that records it in full.

        A check changes nothing in the picture, so only the check itself runs under the
        lock; its record shares a disk sync with concurrent checks (group commit).
        """
        asker = self._party_of(caller, "a check")
        body = _fields(body, "", ("position", "radius_m", "area", "kind", "window", "altitude_m"), ("kind",))
        kind = check_enum(CheckKind, body["kind"], "kind")
        geometry: BaseGeometry
        if (body.get("position") is None) == (body.get("area") is None):
            raise InvalidInput("give either a position (with an optional radius_m) or an area, not both", field="position")
        radius = 0.0
        if body.get("position") is not None:
            parsed = parse_position(body["position"])
            geometry = Point(parsed.point.lon, parsed.point.lat)
            radius = check_non_negative(body.get("radius_m", 0.0), "radius_m", maximum=MAX_RADIUS_M) + parsed.precision_m
        else:
            if body.get("radius_m") is not None:
                raise InvalidInput("radius_m goes with a position, not an area", field="radius_m")
            geometry = parse_geojson(body["area"], "area", AREA_TYPES)
        now = self.clock.now()
        window = self._window(body.get("window")) or Window(now, now)
        if window.end < now - timedelta(seconds=self.settings.clock_skew_s):
            raise InvalidInput(
                f"the window ended at {window.end.isoformat()}, before now ({now.isoformat()}): a check answers on "
                "the current picture, so it cannot speak for the past",
                field="window.end",
            )
        altitude = None if body.get("altitude_m") is None else AltitudeBand.parse(body["altitude_m"])
        query = CheckQuery(asker, kind, geometry, window, radius, altitude)
        with self._reading:
            result = check(self.picture, query, now, self.settings.buffer_m(kind))
        resolution = self.settings.coarse_resolution
        answer = {
            "status": result.status.value,
            "kind": kind.value,
            "buffer_m": result.buffer_m,
            "asked_at": now.isoformat(),
            "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
            **_show_readback(result.reference, result.border),
            "conflicts": [show_finding(f, asker, resolution) for f in result.conflicts],
            "gaps": [show_gap(g, asker, resolution) for g in result.gaps],
            "picture_version": result.picture_version,
        }
        # The record keeps what was asked and the full answer, before disclosure.
        full = {
            "asker": asker,
            "query": dict(body),
            "status": result.status.value,
            "conflicts": [show_finding(f, f.party, resolution) for f in result.conflicts],
            "gaps": [show_gap(g, g.party, resolution) for g in result.gaps],
            "picture_version": result.picture_version,
        }
        return answer, Event("check.asked", now, asker, full)

    def summary(self) -> dict[str, Any]:
        """Counts and the picture version, for health and the console's header."""
        p = self.picture
        return {
            "picture_version": p.version,
            "parties": len(p.parties),
            "assets": len(p.assets),
            "positions": len(p.reports),
            "zones": len(p.zones),
            "aors": len(p.aors),
            "territories": len(p.territories),
        }
