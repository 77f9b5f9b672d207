"""Commands and queries with authorisation and disclosure: the one place that joins store and engine.

Every command validates everything first, then appends its events to the store (durably,
in one transaction), then applies them to the in-memory picture. A refused command has
changed nothing. Requests arrive as plain mappings (JSON bodies, scenario steps, CLI
arguments), so that every outlet gets the same validation and the same error messages.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import shapely
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from deconfliction import events as ev
from deconfliction import snapshot as snapshots
from deconfliction.budget import Budget
from deconfliction.clock import Clock, ManualClock, SystemClock
from deconfliction.disclosure import GRANTABLE, level_for, show_cell, show_finding, show_gap, show_point
from deconfliction.engine.activities import (
    OUTSIDE,
    WAITING,
    activity_flags,
    affected_parties,
    due,
    envelope,
    reaches_point,
    reaches_zone,
)
from deconfliction.engine.changes import Changed, PictureKey
from deconfliction.engine.picture import Picture
from deconfliction.engine.probes import ProbeWatch, Sighting, sightings
from deconfliction.engine.rules import border, borders, check_in, search_area, zone_applies
from deconfliction.errors import (
    AlreadyExists,
    Behind,
    DeconflictionError,
    Forbidden,
    InvalidInput,
    InvalidState,
    NotFound,
    OutOfOrder,
    StalePicture,
    StoreError,
    Unauthenticated,
)
from deconfliction.feed import Feed
from deconfliction.geo import (
    Box,
    LatLon,
    LocalPlane,
    degrees_envelope,
    in_envelope,
    parse_geojson,
    parse_position,
    to_geojson,
    wrapped_box,
)
from deconfliction.ledger.heads import public_key_hex, sign_head
from deconfliction.ledger.seal import may_read
from deconfliction.model import (
    MAX_DURATION_S,
    Activity,
    ActivityKind,
    ActivityState,
    AltitudeBand,
    Aor,
    Asset,
    AssetKind,
    Border,
    CheckKind,
    CheckQuery,
    Disclosure,
    Event,
    Finding,
    Party,
    Report,
    Role,
    Territory,
    Volume,
    Window,
    Zone,
    ZoneKind,
    check_enum,
    check_id,
    check_name,
    check_non_negative,
    check_positive,
    check_text,
    check_time,
    parse_duration_s,
)
from deconfliction.settings import Settings
from deconfliction.stores import MemoryStore, Store
from deconfliction.stores.base import Follower, sealed_parts

MAX_UNCERTAINTY_M = 100_000.0
_HOW = re.compile(r"^[a-z](-[a-z0-9]+)*$")
MAX_RADIUS_M = 200_000.0
MAX_ROUTE_WIDTH_M = 50_000.0
AREA_TYPES = ("Polygon", "MultiPolygon")
APPLY_CHUNK = 100  # reports applied between two chances for a waiting check
SWITCH_INTERVAL_S = 0.001
"""How often a long write hands the interpreter to a waiting check (Python's default is 5 ms)."""
MAX_VOLUMES = 20
LOOK_MARGIN = 1.01
"""A look with a kind widens its box by the buffer and this much more: a little over the engine's safety factor."""
LOOK_LIMIT = 5000
"""Most assets a look at an area lists (``truncated`` says when there were more)."""
TOKEN_PREFIX = "dcf_"
"""Begins every token made: one in 64 bare URL-safe tokens begins with ``-``, which a command line takes for an option
(``deconflict token revoke -Xq...`` fails), and a fixed prefix lets secret scanners recognise a leaked token."""
_MOVES = ("report.accepted", "position.withdrawn", "asset.withdrawn")
"""Events after which an asset is elsewhere or nowhere: the probe watch forgets what askers learnt of it."""
EVENT_PAGE = 1000
LEDGER_PAGE = 1000
"""Most entries one ledger read returns; ``next`` says where to go on."""
WORLD: Box = (-180.0, -90.0, 180.0, 90.0)


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


def _synced(check_events: Sequence[Event]) -> bool:
    """Whether a check's answer waits for its record's disk sync: not for the record alone, which a
    slow disk must not hold up (committed, it survives the node being killed, and is synced moments
    later); yes when the check also changed something (an activity's drift notice), as every write does."""
    return len(check_events) > 1


log = logging.getLogger("deconfliction")


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector held off while the picture is rebuilt.

    A rebuild makes millions of objects that all live on, and none that are cyclic garbage; the
    collector would walk the growing heap again and again for nothing (at a million assets it took
    11 of the rebuild's 38 seconds). Process-wide while it lasts; put back as it was.

    At a start the objects made are moved into the oldest generation, where they would be after
    surviving, without a walk: the first collection after the block would otherwise go through
    every one of them (1.3 s at a million assets). They are collected as any old object is. Not
    once a server has frozen its picture (an as-of picture rebuilt while it serves): unfreezing
    would hand the frozen picture back to the collector.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()  # every generation, with everything the block made, to the permanent one...
            gc.unfreeze()  # ...and from there to the oldest: two list splices
        if was_enabled:
            gc.enable()


def parse_box(text: object, field: str) -> Box:
    """``west,south,east,north`` in decimal degrees."""
    parts = text.split(",") if isinstance(text, str) else []
    try:
        w, s, e, n = (float(x) for x in parts)
    except ValueError:
        raise InvalidInput("an area is a box: west,south,east,north in decimal degrees", field=field) from None
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise InvalidInput(
            "the box must have -180 <= west <= east <= 180 and -90 <= south <= north <= 90 (no antimeridian crossing)",
            field=field,
        )
    return (w, s, e, n)


def _check_kind(kind: object) -> CheckKind:
    """A check kind, or an activity kind read as the check it is held to (patrol and movement: ground)."""
    if kind in tuple(ActivityKind):
        return ActivityKind(str(kind)).check_kind
    value: CheckKind = check_enum(CheckKind, kind, "kind")
    return value


def show_volume(v: Volume) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "area": to_geojson(v.geometry),
        "window": {"start": v.window.start.isoformat(), "end": v.window.end.isoformat()},
    }
    if v.geometry.geom_type == "Point":
        shown["radius_m"] = v.radius_m
    elif v.geometry.geom_type == "LineString":
        shown["width_m"] = v.radius_m * 2
    shown["altitude_m"] = None if v.altitude is None else [v.altitude.low_m, v.altitude.high_m]
    return shown


def _ahead(time: datetime, now: datetime) -> dict[str, float]:
    """``clock_ahead_s`` for a report timed after the server's clock (accepted within ``clock_skew_s``): marked, not trusted."""
    return {"clock_ahead_s": round((time - now).total_seconds(), 3)} if time > now else {}


def _show_readback(point: LatLon, b: Border) -> dict[str, Any]:
    return {"position": show_point(point), "border": {"territory": b.territory, "distance_m": b.distance_m}}


BRIEF_CATCH_UP_S = 0.01
"""Longest an unknown token waits for the writing lock to look for itself in what other nodes wrote: a token made
on another worker a moment ago is known here within its follow lag (up to 50 ms), and is then taken, not 401."""
BEHIND_ATTEMPTS = 8
"""How often a write is tried before a refusal as ``behind`` is the caller's (503, ask again)."""

_Write = TypeVar("_Write", bound=Callable[..., Any])


def _caught_up_when_behind(write: _Write) -> _Write:
    """``write`` tried again, caught up, when the store refuses it as behind: another node (or worker) wrote
    between this one's catching up and its commit, and nothing was written. Each try validates against the
    picture anew (a report of a unit the other just withdrew is then refused for that). Two workers each taking
    one report per request from 8 clients had 525 of 5,523 refused without it (2026-12-07)."""

    @functools.wraps(write)
    def tried(self: Service, *args: Any, **kwargs: Any) -> Any:
        for _ in range(BEHIND_ATTEMPTS - 1):
            try:
                return write(self, *args, **kwargs)
            except Behind:
                if self._in_write_turn():  # inside another write of this thread's: that one tries again, caught up
                    raise
        return write(self, *args, **kwargs)

    return cast(_Write, tried)


class Service:
    """``Service(store, clock, settings)``: the deconfliction service over one store.

    On construction it replays the store's log into the in-memory picture. All methods
    are thread-safe; writes are serialised.
    """

    def __init__(
        self, store: Store, clock: Clock | None = None, settings: Settings | None = None, snapshot: Path | None = None
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.settings = settings or Settings()
        self.picture = Picture()
        self._tokens: dict[str, Caller] = {}
        # Writers take turns (validation, durable append and apply must not interleave);
        # readers (checks, lists) only need the picture not to change under them, so a
        # writer holds the reading lock just while it applies, in short chunks.
        self._writing = threading.RLock()
        self._writer: int | None = None  # the ident of the thread inside a write's turn (see _write_turn)
        self._reading = threading.RLock()
        # A check waiting for the picture goes before a batch's next chunk: Python's locks are not fair, and the
        # batch's thread, holding the interpreter, would take the reading lock straight back chunk after chunk.
        self._turn = threading.Lock()
        self.feed = Feed()
        self._key: Ed25519PrivateKey | None = None
        self._heads_lock = threading.Lock()
        self._last_head: dict[str, Any] | None = None
        self._store_lost_at: datetime | None = None  # when a check first found the store away, since it was last reached
        s = self.settings
        self.budget = Budget(s.check_rate_per_min / 60.0, s.check_burst, "checks", self.clock)  # checks and proposals
        self._budgets = {"check.asked": self.budget}  # shared with the other nodes, by the record that spends them
        self.bad_tokens = Budget(s.bad_tokens_per_min / 60.0, s.bad_token_burst, "unknown tokens", self.clock)  # by address
        self.probes = ProbeWatch(s.probe_alarm_m, s.probe_checks, s.probe_window_s)
        # The log's entries the picture was taken from a snapshot for (0: it was rebuilt from the whole log).
        self.from_snapshot = 0 if snapshot is None else self._from_snapshot(snapshot)
        # A picture key issued before the restart cannot be honoured (superseded reports are not replayed).
        self._rebuild(store.load(after=self.from_snapshot))

    # ------------------------------------------------------------------ plumbing

    def _rebuild(self, events: Iterable[Event]) -> None:
        """Replay a log into the empty picture: no changes noted, points sorted once, the collector held off."""
        with self.picture.loading(), _no_cycle_collection():
            for event in events:
                self._apply(event)

    def _from_snapshot(self, path: Path) -> int:
        """The picture and tokens of the snapshot at ``path`` if it is of this log and code; the entries it holds (0: none)."""
        if not path.exists():
            log.info("no snapshot at %s yet: the picture is rebuilt from the whole log", path)
            return 0
        try:
            with _no_cycle_collection():  # millions of objects made that all live on, as in a rebuild
                found = snapshots.read(path, self._signing_key().public_key())
            tree = self.store.tree
            if found.size > len(tree) or tree.root(found.size) != found.root:
                raise snapshots.Refused(f"the log's first {found.size} entries are not the ones it was made from")
        except snapshots.Refused as exc:
            log.warning("the snapshot at %s is not used: %s; the picture is rebuilt from the whole log", path, exc)
            return 0
        self.picture, self._tokens = found.state
        return found.size

    def write_snapshot(self, path: Path) -> snapshots.Snapshot:
        """Write the picture as the whole log so far makes it to ``path``, for the next start to begin from.

        Writes and checks wait meanwhile (at a million assets, about 20 s): a node does it as it stops.
        """
        with self._write_turn(), self._reading:
            # A record may have read others' entries the picture does not have yet.
            size = self.store.settled() if isinstance(self.store, Follower) else len(self.store.tree)
            made = snapshots.Snapshot(size, self.store.tree.root(size), (self.picture, self._tokens))
            snapshots.write(path, made, self._signing_key())
        return made

    def _apply(self, event: Event) -> None:
        if event.type == "token.created":
            d = event.data
            self._tokens[d["hash"]] = Caller(d["party"], Role(d["role"]))
        elif event.type == "token.revoked":
            self._tokens.pop(event.data["hash"], None)
        else:
            ev.apply(self.picture, event)
            # Not in a rebuild (the picture notes no changes then): no checks yet, so no trails to forget.
            if event.type in _MOVES and self.picture.changes.enabled:
                key = (event.data["party"], event.data["asset" if event.type == "report.accepted" else "id"])
                report = self.picture.reports.get(key)
                self.probes.moved(*key, None if report is None else report.point)

    def _commit(self, events: Sequence[Event]) -> list[int]:
        """Append durably, then apply, then wake the event streams; the caller holds the writing lock."""
        seqs = self.store.append(events)
        with self._reading:
            for event, seq in zip(events, seqs, strict=True):
                self._apply(replace(event, seq=seq))
        self.feed.publish()
        return seqs

    def catch_up(self) -> int:
        """Apply what other nodes (or processes) on the same store wrote since this node last read; how many events."""
        with self._writing:
            return self._follow()

    @contextmanager
    def _write_turn(self) -> Iterator[None]:
        """The writing lock, the picture first brought up to what other nodes wrote: a write is then validated
        against the whole log before it, or refused by the store as behind if another node writes in between."""
        with self._writing:
            if self._in_write_turn():  # a write inside another of this thread's: that one caught up
                yield
                return
            self._writer = threading.get_ident()
            try:
                self._follow()
                yield
            finally:
                self._writer = None

    def _caught_up_briefly(self) -> bool:
        """Catch up now if the writing lock is free within ``BRIEF_CATCH_UP_S``; whether it was. For the event loop,
        which may wait that long and no longer: an unknown token is looked for in what the others wrote."""
        if not isinstance(self.store, Follower) or not self._writing.acquire(timeout=BRIEF_CATCH_UP_S):
            return False
        try:
            self._follow()
        finally:
            self._writing.release()
        return True

    def _in_write_turn(self) -> bool:
        """Whether this thread is inside a write's turn (the writing lock held)."""
        return self._writer == threading.get_ident()

    def _follow(self) -> int:
        """:meth:`catch_up`, the writing lock held."""
        if not isinstance(self.store, Follower):
            return 0  # a store in memory: one node, nothing to follow
        events = self.store.catch_up()
        if events:
            with self._reading:
                for event in events:
                    self._apply(event)
            self.feed.publish()
        # A party's budgets are the party's across every node: what it spent on the others is spent here.
        for (record, party), count in self.store.recorded_elsewhere().items():
            budget = self._budgets.get(record)
            if budget is not None:
                budget.spent_elsewhere(party, count)
        for event in events:
            if event.type == "activity.proposed" and event.party is not None:
                self.budget.spent_elsewhere(event.party, 1)
        return len(events)

    def share_budget(self, record: str, budget: Budget) -> None:
        """Spend on ``budget`` what the records of type ``record`` that other nodes write say a party spent there
        (the checks' budget is shared so from the start; the private cross-checks' desk shares its own)."""
        self._budgets[record] = budget

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

    def require_admin(self, caller: Caller, party: str | None = None) -> None:
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

    def authenticate(self, token: str | None, client: str | None = None) -> Caller:
        """The caller a bearer token stands for; ``client`` (its address) is throttled after many unknown tokens.

        Once a client has presented ``bad_token_burst`` unknown tokens (refilled at
        ``bad_tokens_per_min``), every token from it is refused with 429, known or not, so
        guessing cannot go on at speed. The API logs every refusal with the address.
        """
        if not token:
            raise Unauthenticated("a bearer token is required: Authorization: Bearer TOKEN")
        if client is not None:
            self.bad_tokens.check(client)
        # Looked up by its SHA-256: lookup timing depends on the hash, which an attacker
        # cannot steer towards a stored one, not on how much of a real token was guessed.
        digest = hash_token(token)
        caller = self._tokens.get(digest)
        if caller is None and self._caught_up_briefly():  # made a moment ago on another node or worker, perhaps
            caller = self._tokens.get(digest)
        if caller is None:
            if client is not None:
                self.bad_tokens.take(client)
            raise Unauthenticated("the token is not known to this service")
        return caller

    @_caught_up_when_behind
    def create_party(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        self.require_admin(caller)
        body = _fields(body, "", ("id", "name", "stale_after_s"), ("id", "name"))
        party = Party(
            id=check_id(body["id"], "id"),
            name=check_name(body["name"], "name"),
            stale_after_s=parse_duration_s(body.get("stale_after_s", self.settings.stale_after_s), "stale_after_s"),
        )
        with self._write_turn():
            if party.id in self.picture.parties:
                raise AlreadyExists(f"party {party.id!r} exists already", field="id")
            self._commit([ev.party_event(party, self.clock.now(), caller.party)])
        return self._show_party(party)

    def _show_party(self, party: Party) -> dict[str, Any]:
        return {
            "id": party.id,
            "name": party.name,
            "stale_after_s": party.stale_after_s,
            "default_disclosure": party.default_disclosure.value,
        }

    def parties(self, caller: Caller) -> list[dict[str, Any]]:
        del caller  # every authenticated caller may know who takes part
        with self._reading:
            return [self._show_party(p) for p in self.picture.parties.values()]

    @_caught_up_when_behind
    def create_token(self, caller: Caller, party: str | None, role: object) -> str:
        """A new random token for ``party`` (None: the server itself, admin only)."""
        self.require_admin(caller, party)
        chosen: Role = check_enum(Role, role, "role")
        if party is None and chosen not in (Role.ADMIN, Role.AUDITOR):
            raise InvalidInput("only the centre's admin and auditor tokens may belong to no party", field="role")
        if party is not None and party not in self.picture.parties:
            raise NotFound(f"there is no party {party!r}", field="party")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        data = {"hash": hash_token(token), "party": party, "role": chosen.value}
        with self._write_turn():
            self._commit([Event("token.created", self.clock.now(), caller.party, data)])
        return token

    @_caught_up_when_behind
    def revoke_token(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        """``{"token"}``: from now on it opens nothing and its streams end (an admin of its party, or the server's)."""
        if caller.role is not Role.ADMIN:
            raise Forbidden(f"only an admin may revoke a token; this token's role is {caller.role.value}")
        token = _fields(body, "", ("token",), ("token",))["token"]
        digest = hash_token(token) if isinstance(token, str) else None
        held = None if digest is None else self._tokens.get(digest)
        if held is None:
            raise NotFound("this service holds no such token (revoked already, or never made)", field="token")
        self.require_admin(caller, held.party)
        data = {"hash": digest, "party": held.party, "role": held.role.value}
        with self._write_turn():
            self._commit([Event("token.revoked", self.clock.now(), caller.party, data)])
        return {"revoked": True, "party": held.party, "role": held.role.value}

    def holds(self, token: str | None) -> bool:
        """Whether ``token`` still opens anything: an open stream asks at each wake, and ends once it is revoked."""
        return token is not None and hash_token(token) in self._tokens

    @_caught_up_when_behind
    def put_territory(self, caller: Caller, party: str, area: object) -> dict[str, Any]:
        self.require_admin(caller)
        if party not in self.picture.parties:
            raise NotFound(f"there is no party {party!r}", field="party")
        territory = Territory(party, parse_geojson(area, "area", AREA_TYPES))
        with self._write_turn():
            self._commit([ev.territory_event(territory, self.clock.now(), caller.party)])
        return {"party": party, "area": to_geojson(territory.geometry), "picture_version": self.picture.version}

    def territories(self, caller: Caller) -> list[dict[str, Any]]:
        del caller  # the shared border reference is public to every party
        with self._reading:
            return [{"party": t.party, "area": to_geojson(t.geometry)} for _, t in self.picture.territories]

    # ------------------------------------------------------------------ assets and reports

    @_caught_up_when_behind
    def register_asset(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        party = self._liaison(caller)
        allowed = ("id", "kind", "name", "disclosure", "position", "uncertainty_m", "time", "stale_after_s")
        body = _fields(body, "", allowed, ("id", "kind"))
        asset = Asset(
            party=party,
            id=check_id(body["id"], "id"),
            kind=check_enum(AssetKind, body["kind"], "kind"),
            name=check_name(body.get("name") or body["id"], "name"),
            disclosure=check_enum(Disclosure, body.get("disclosure", self._default_disclosure(party)), "disclosure"),
        )
        with self._write_turn():
            if asset.key in self.picture.assets:
                raise AlreadyExists(f"{party} has an asset {asset.id!r} already", field="id")
            now = self.clock.now()
            events = [ev.asset_event(asset, now)]
            report = None
            if body.get("position") is not None:
                report = self._report(
                    asset, {k: v for k, v in body.items() if k not in ("id", "kind", "name", "disclosure")}, now
                )
                events.append(ev.report_event(report, now, asset.disclosure, asset.kind))
                events += self._entering_positions([report], now, asset)
            self._commit(events)
        shown = self._show_asset(asset, report, party)
        assert shown is not None, "a party always sees its own assets"
        return shown

    def _report(self, asset: Asset, body: Mapping[str, Any], now: datetime) -> Report:
        """``body``'s report of ``asset``; a refusal names the field within ``body`` (a batch puts its place in front)."""
        parsed = parse_position(body.get("position"), "position")
        uncertainty = check_non_negative(body.get("uncertainty_m", 0.0), "uncertainty_m", maximum=MAX_UNCERTAINTY_M)
        time = now if body.get("time") is None else check_time(body["time"], "time")
        if time > now + timedelta(seconds=self.settings.clock_skew_s):
            raise InvalidInput(
                f"the report's time {time.isoformat()} is more than {self.settings.clock_skew_s:g} s ahead of the "
                f"server's clock ({now.isoformat()})",
                field="time",
            )
        held = self.picture.reports.get(asset.key)
        if held is not None and time < held.time:
            raise OutOfOrder(
                f"{asset.id} already has a newer report ({held.time.isoformat()}) than this one ({time.isoformat()})",
                field="time",
            )
        stale_at = None
        if asset.kind is AssetKind.SITE and "stale_after_s" in body:
            raise InvalidInput(
                "a site's position holds until it is moved or withdrawn; stale_after_s is for units",
                field="stale_after_s",
            )
        if asset.kind is AssetKind.UNIT:
            default = self.picture.parties[asset.party].stale_after_s
            life = timedelta(seconds=parse_duration_s(body.get("stale_after_s", default), "stale_after_s"))
            # A device whose clock runs ahead must not buy its report a longer life: it lasts from the earlier of its
            # own time and the server's.
            stale_at = min(time, now) + life
        how = body.get("how")
        if how is not None and (not isinstance(how, str) or not _HOW.match(how)):
            raise InvalidInput(f"how {how!r} is not a CoT how code such as m-g or h-e", field="how")
        return Report(
            party=asset.party,
            asset=asset.id,
            point=parsed.point,
            time=time,
            # A coarse notation (MGRS at 100 m) cannot claim more certainty than it names.
            uncertainty_m=max(uncertainty, parsed.precision_m),
            stale_at=stale_at,
            notation=parsed.notation,
            how=how,
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

    @_caught_up_when_behind
    def report_batch(
        self, caller: Caller, bodies: Sequence[Mapping[str, Any]], field: str = "reports", read_back: bool = True
    ) -> list[dict[str, Any]]:
        """Several reports, all or nothing: one bad report refuses the batch and names it.

        Each is answered with its read-back (MGRS, the border), unless a caller that shows
        nobody the answer (the TAK gateway) asks for none: then the list is empty.
        """
        party = self._liaison(caller)
        if len(bodies) > self.settings.max_batch:
            raise InvalidInput(f"{len(bodies)} reports is more than the {self.settings.max_batch} allowed at once", field=field)
        allowed = ("asset", "position", "time", "uncertainty_m", "stale_after_s", "how")
        with self._write_turn():
            now = self.clock.now()
            reports: list[Report] = []
            assets: list[Asset] = []
            newest: dict[str, Report] = {}
            for i, body in enumerate(bodies):
                try:
                    body = _fields(body, "", allowed, ("asset", "position"))
                    asset = self._own_asset(party, body["asset"], "asset")
                    report = self._report(asset, body, now)
                    earlier = newest.get(asset.id)
                    if earlier is not None and report.time < earlier.time:
                        raise OutOfOrder(f"reports of {asset.id} in one batch must be in time order", field="time")
                except DeconflictionError as exc:
                    if field:  # the field names are made on a refusal only, not for every report taken
                        exc.at(f"{field}.{i}")
                    raise
                newest[asset.id] = report
                reports.append(report)
                assets.append(asset)
            notices = self._entering_positions(reports, now)
            made = [ev.report_event(r, now, a.disclosure, a.kind) for r, a in zip(reports, assets, strict=True)]
            seqs = self.store.append(made + notices)
            # The events were made from these very reports: apply them as they are rather
            # than decode again what was just encoded (the hot path of streaming ingest).
            # Each report is a fact of its own, so checks may run between chunks.
            for start in range(0, len(reports), APPLY_CHUNK):
                with self._turn:
                    pass
                with self._reading:
                    for report, seq in zip(reports[start : start + APPLY_CHUNK], seqs[start:], strict=False):
                        self.picture.put_report(report, seq)
                        self.probes.moved(report.party, report.asset, report.point)
            self.feed.publish()
            if not read_back:
                return []
            lats = np.fromiter((r.point.lat for r in reports), float, len(reports))
            lons = np.fromiter((r.point.lon for r in reports), float, len(reports))
            found = borders(self.picture, lats, lons)
            version = self.picture.version
            return [
                {"asset": r.asset, **self._report_fields(r, b, e.data), **_ahead(r.time, now), "picture_version": version}
                for r, b, e in zip(reports, found, made, strict=True)
            ]

    def _report_fields(
        self, report: Report, border_: Border | None = None, written: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The report as it is read back; ``written``: its event's data, whose times are formatted already (a batch's)."""
        if written is None:
            written = {"time": report.time.isoformat(), "stale_at": ev.iso_or_none(report.stale_at)}
        shown = {
            "time": written["time"],
            "uncertainty_m": report.uncertainty_m,
            "stale_at": written["stale_at"],
            "notation": report.notation,
            **_show_readback(report.point, border_ or border(self.picture, report.point)),
        }
        if report.how is not None:
            shown["how"] = report.how
            # A position someone typed or tapped is not a fix: the read-back says so, for the liaison to confirm.
            shown["entered_by_hand"] = report.how.startswith("h-e")
        return shown

    @_caught_up_when_behind
    def withdraw_asset(self, caller: Caller, asset_id: str) -> dict[str, Any]:
        party = self._liaison(caller)
        with self._write_turn():
            asset = self._own_asset(party, asset_id, "id")
            self._commit([ev.withdrawal_event("asset.withdrawn", party, asset.id, self.clock.now(), asset.disclosure)])
        return {"withdrawn": asset.id, "picture_version": self.picture.version}

    @_caught_up_when_behind
    def withdraw_position(self, caller: Caller, asset_id: str) -> dict[str, Any]:
        """The asset's position no longer holds (a site moved away, a unit's report was wrong)."""
        party = self._liaison(caller)
        with self._write_turn():
            asset = self._own_asset(party, asset_id, "id")
            self._commit([ev.withdrawal_event("position.withdrawn", party, asset.id, self.clock.now(), asset.disclosure)])
        return {"withdrawn": f"{asset.id} position", "picture_version": self.picture.version}

    def _show_asset(self, asset: Asset, report: Report | None, viewer: str | None) -> dict[str, Any] | None:
        level = level_for(asset.party, asset.disclosure, viewer, asset.kind.value, self.picture.grants)
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

    def assets(self, caller: Caller, others_only: bool = False) -> list[dict[str, Any]]:
        """Every asset the caller may see: its own (unless ``others_only``), and others' by their disclosure."""
        skipped = caller.party if others_only else None
        with self._reading:
            shown = [
                self._show_asset(a, self.picture.reports.get(k), caller.party)
                for k, a in self.picture.assets.items()
                if a.party != skipped
            ]
        return [s for s in shown if s is not None]

    def asset(self, caller: Caller, party: str, asset_id: str) -> dict[str, Any]:
        with self._reading:
            asset = self.picture.assets.get((party, asset_id))
            shown = None if asset is None else self._show_asset(asset, self.picture.reports.get(asset.key), caller.party)
        if shown is None:
            raise NotFound(f"no visible asset {party}/{asset_id}", field="id")
        return shown

    # ------------------------------------------------------------------ disclosure: defaults and grants

    def _default_disclosure(self, party: str) -> Disclosure:
        return self.picture.parties[party].default_disclosure

    @_caught_up_when_behind
    def set_default_disclosure(self, caller: Caller, party_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The level the party's new assets and zones get when they name none (its own liaison sets it)."""
        party = self._liaison(caller)
        if party_id != party:
            raise Forbidden(f"a liaison of {party} sets only its own party's default", field="party")
        body = _fields(body, "", ("disclosure",), ("disclosure",))
        level: Disclosure = check_enum(Disclosure, body["disclosure"], "disclosure")
        with self._write_turn():
            self._commit([Event("party.defaults", self.clock.now(), party, {"party": party, "disclosure": level})])
            return self._show_party(self.picture.parties[party])

    @_caught_up_when_behind
    def grant(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        """Let a named party see more of a class of the caller's objects: ``{grantee, what: unit|site|zone, level}``."""
        party = self._liaison(caller)
        body = _fields(body, "", ("grantee", "what", "level"), ("grantee", "what", "level"))
        grantee = check_id(body["grantee"], "grantee")
        if grantee not in self.picture.parties:
            raise NotFound(f"there is no party {grantee!r}", field="grantee")
        if grantee == party:
            raise InvalidInput("a party always sees its own objects exactly", field="grantee")
        if body["what"] not in GRANTABLE:
            raise InvalidInput(f"{body['what']!r} is not one of {', '.join(GRANTABLE)}", field="what")
        level: Disclosure = check_enum(Disclosure, body["level"], "level")
        if level is Disclosure.HIDDEN:
            raise InvalidInput("a grant opens: exact or coarse; withdraw it to close again", field="level")
        data = {"party": party, "grantee": grantee, "what": body["what"], "level": level}
        with self._write_turn():
            self._commit([Event("grant.given", self.clock.now(), party, data)])
        return {k: str(v) for k, v in data.items()}

    @_caught_up_when_behind
    def withdraw_grant(self, caller: Caller, grantee: str, what: str) -> dict[str, Any]:
        party = self._liaison(caller)
        with self._write_turn():
            if (party, grantee, what) not in self.picture.grants:
                raise NotFound(f"{party} has granted {grantee!r} nothing on its {what!r}", field="grantee")
            data = {"party": party, "grantee": grantee, "what": what}
            self._commit([Event("grant.withdrawn", self.clock.now(), party, data)])
        return {"withdrawn": data}

    def grants(self, caller: Caller) -> list[dict[str, Any]]:
        """Grants the caller's party gave and those it was given."""
        with self._reading:
            return [
                {"party": owner, "grantee": grantee, "what": what, "level": level.value}
                for (owner, grantee, what), level in self.picture.grants.items()
                if caller.party in (owner, grantee)
            ]

    def probes_seen(self, caller: Caller, asker: str | None = None) -> list[dict[str, Any]]:
        """Signs that another party is mapping the caller's hidden assets, newest first (the centre sees all); the
        newest ``PROBES_KEPT`` per owner, the older ones are in the record.

        Only ever the owner's: an asker is not told that its checks were noticed, nor which of them hit.
        """
        if caller.party is not None:
            self._party_of(caller, "listing probes")
        if asker is not None:
            check_id(asker, "asker")
        with self._reading:
            owners = self.picture.probes.keys() if caller.party is None else [caller.party]
            notices = [dict(p) for owner in owners for p in self.picture.probes.get(owner, ()) if asker in (None, p["asker"])]
        return sorted(notices, key=lambda p: p["record"], reverse=True)

    # ------------------------------------------------------------------ zones and AORs

    @_caught_up_when_behind
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
            geometry = self._area(body["area"], "area", AREA_TYPES)
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
            disclosure=check_enum(Disclosure, body.get("disclosure", self._default_disclosure(party)), "disclosure"),
            name=check_name(body.get("name") or body["id"], "name"),
        )
        with self._write_turn():
            if zone.key in {k for k, _ in self.picture.zones}:
                raise AlreadyExists(f"{party} has a zone {zone.id!r} already", field="id")
            now = self.clock.now()
            self._commit([ev.zone_event(zone, now), *self._entering_zone(zone, now)])
        shown = self._show_zone(zone, party)
        assert shown is not None
        return {**shown, "picture_version": self.picture.version}

    def _area(self, value: object, field: str, allowed: Sequence[str]) -> BaseGeometry:
        """A GeoJSON area a party writes or asks about, held to ``max_area_km2`` (territories, the admin's, are not)."""
        return parse_geojson(value, field, allowed, self.settings.max_area_km2)

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
        level = level_for(zone.party, zone.disclosure, viewer, "zone", self.picture.grants)
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

    def zones(self, caller: Caller, others_only: bool = False) -> list[dict[str, Any]]:
        """Every zone the caller may see: its own (unless ``others_only``), and others' by their disclosure."""
        skipped = caller.party if others_only else None
        with self._reading:
            shown = [self._show_zone(z, caller.party) for _, z in self.picture.zones if z.party != skipped]
        return [s for s in shown if s is not None]

    @_caught_up_when_behind
    def withdraw_zone(self, caller: Caller, zone_id: str) -> dict[str, Any]:
        party = self._liaison(caller)
        with self._write_turn():
            zone = self.picture.zones.get((party, zone_id))
            if zone is None:
                raise NotFound(f"{party} has no zone {zone_id!r}", field="id")
            self._commit([ev.withdrawal_event("zone.withdrawn", party, zone_id, self.clock.now(), zone.disclosure)])
        return {"withdrawn": zone_id, "picture_version": self.picture.version}

    @_caught_up_when_behind
    def declare_aor(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        party = self._liaison(caller)
        body = _fields(body, "", ("id", "area", "freshness_s"), ("id", "area", "freshness_s"))
        aor = Aor(
            party=party,
            id=check_id(body["id"], "id"),
            geometry=self._area(body["area"], "area", AREA_TYPES),
            freshness_s=parse_duration_s(body["freshness_s"], "freshness_s"),
        )
        with self._write_turn():
            if self.picture.aors.get(aor.key) is not None:
                raise AlreadyExists(f"{party} has an AOR {aor.id!r} already", field="id")
            self._commit([ev.aor_event(aor, self.clock.now())])
        return {**self._show_aor(aor), "picture_version": self.picture.version}

    @_caught_up_when_behind
    def confirm_aor(self, caller: Caller, aor_id: str) -> dict[str, Any]:
        """The party states that its picture in this AOR is complete as of now."""
        party = self._liaison(caller)
        with self._write_turn():
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

    def aors(self, caller: Caller, others_only: bool = False) -> list[dict[str, Any]]:
        """Every AOR, the caller's own too unless ``others_only``: where a party vouches for its picture is shared
        with everyone, by design."""
        skipped = caller.party if others_only else None
        with self._reading:
            return [self._show_aor(a) for _, a in self.picture.aors if a.party != skipped]

    # ------------------------------------------------------------------ checks

    def check(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        """Answer a check and record it: ``{position | area, radius_m?, kind, window?, altitude_m?, activity?}``.

        The answer returns once its record is committed; ``record`` is its sequence number.
        """
        answer, events, seen = self._answer(caller, body)
        try:
            answer["record"] = self.store.append_grouped(events, _synced(events))[0]
        except StoreError as exc:
            return self._unrecorded(answer, exc, caller)
        self._store_lost_at = None
        if len(events) > 1:
            self.feed.publish()
        self._watch(seen)
        return answer

    async def check_async(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`check` for an event loop: the check runs inline, the record is awaited.

        A check as of a past instant rebuilds the picture from the record first: that runs in
        a worker thread, so that it does not hold up the other checks.
        """
        if isinstance(body, Mapping) and body.get("as_of") is not None:
            answer, events, seen = await asyncio.to_thread(self._answer, caller, body)
        else:
            answer, events, seen = self._answer(caller, body)
        try:
            answer["record"] = (await self.store.append_grouped_async(events, _synced(events)))[0]
        except StoreError as exc:
            return self._unrecorded(answer, exc, caller)
        self._store_lost_at = None
        if len(events) > 1:
            self.feed.publish()
        self._watch(seen)
        return answer

    def _unrecorded(self, answer: dict[str, Any], exc: StoreError, caller: Caller) -> dict[str, Any]:
        """A check answered while the store is away: from the picture in memory, frozen, and saying so.

        The answer is still the rules' answer at that picture, so an AOR whose promise runs out
        meanwhile turns its area ``unknown``, never a silent clear; but nothing is recorded,
        and the answer says since when this node has not reached its store.
        """
        now = self.clock.now()
        self._store_lost_at = self._store_lost_at or now
        # Not in the record, so said here: the log is then the only trace of this answer.
        log.warning(
            "%s's %s check asked at %s answered %s and not recorded: %s",
            caller.party,
            answer["kind"],
            answer["asked_at"],
            answer["status"],
            exc.message,
        )
        answer["record"] = None
        answer["frozen"] = {
            "since": self._store_lost_at.isoformat(),
            "reason": f"the store cannot be reached ({exc.message}): this is the picture as this node last read it, "
            "and this answer is not recorded",
        }
        return answer

    async def record_private_check(self, asker: str, owner: str | None, session: Mapping[str, Any]) -> int:
        """Record that this node answered ``asker``'s private cross-check: who, when, what kind, the set sizes.

        Never the cells or the keys: only what both sides learnt anyway. Sealed for the
        asker and the owner party (and the centre): others see that a session took place.
        """
        data = {"asker": asker, "owner": owner, **session}
        return (await self.store.append_grouped_async([Event("psi.answered", self.clock.now(), asker, data)], synced=False))[0]

    def _watch(self, seen: Sequence[Sighting]) -> None:
        """Note what an answer told its asker about hidden assets; owners hear of probing at the next tick.

        At the tick, not in the answer's wake: the record's public entries would otherwise
        show the asker which of its checks raised one.
        """
        if seen:
            self.probes.observe(seen)

    def _answer(self, caller: Caller, body: Mapping[str, Any]) -> tuple[dict[str, Any], list[Event], list[Sighting]]:
        """A check's answer as the asker may see it, the event that records it in full, any notice it raises, and
        what it told the asker about hidden assets (for the probe watch).

        A check changes nothing in the picture, so only the check itself runs under the
        lock; its record shares a disk sync with concurrent checks (group commit).
        """
        asker = self._party_of(caller, "a check")
        allowed = ("position", "radius_m", "area", "kind", "window", "altitude_m", "activity", "as_of")
        body = _fields(body, "", allowed, ("kind",))
        if body.get("as_of") is not None:
            return self._answer_as_of(caller, body)
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
            geometry = self._area(body["area"], "area", AREA_TYPES)
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
        self.budget.check(asker)  # a party that has spent its budget is refused before any work
        with self._turn, self._reading:
            activity = None if body.get("activity") is None else self._own_activity(asker, body["activity"], "activity")
            area = search_area(query, self.settings.buffer_m(kind))
            result = check_in(self.picture, query, now, area)
            seen = sightings(self.picture, query, area, self.settings.probe_near_m, now)
        # Spent once the check could be answered: a refusal (an unknown activity, a place past the plane's
        # reach) changes nothing, the budget included.
        self.budget.take(asker)
        flags = [] if activity is None else activity_flags(activity, query)
        resolution = self.settings.coarse_resolution
        answer = {
            "status": result.status.value,
            "kind": kind.value,
            "buffer_m": result.buffer_m,
            "asked_at": now.isoformat(),
            "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
            **_show_readback(result.reference, result.border),
            "conflicts": [show_finding(f, asker, resolution, self.picture.grants) for f in result.conflicts],
            "gaps": [show_gap(g, asker, resolution, self.picture.grants) for g in result.gaps],
            "flags": flags,
            "picture_version": result.picture_version,
            "picture_key": str(PictureKey.issue(result.picture_version, result.envelope)),
        }
        if activity is not None:
            answer["activity"] = activity.id
        # The record keeps what was asked, the answer as the asker saw it, and the full answer
        # before disclosure (sealed in the ledger for the centre's auditors).
        record = {
            "asker": asker,
            "query": dict(body),
            "status": result.status.value,
            "answer": {"conflicts": answer["conflicts"], "gaps": answer["gaps"]},
            "full": {
                # What the asker saw exactly is what its owner sees: shown once (at a million assets a fires
                # check has about 20 findings, each a position in MGRS).
                "conflicts": [
                    seen if seen["disclosure"] == "exact" else show_finding(f, f.party, resolution)
                    for f, seen in zip(result.conflicts, answer["conflicts"], strict=True)
                ],
                "gaps": [show_gap(g, g.party, resolution) for g in result.gaps],
            },
            "flags": flags,
            "picture_version": result.picture_version,
        }
        events = [Event("check.asked", now, asker, record)]
        if activity is not None and OUTSIDE in flags:
            notice = {"query": dict(body), "kind": kind.value, "window": answer["window"], "reference": answer["position"]}
            events.append(ev.transition_event("activity.outside_notified_volume", activity, now, asker, **notice))
        return answer, events, seen

    # ------------------------------------------------------------------ as of a past instant

    def _answer_as_of(self, caller: Caller, body: Mapping[str, Any]) -> tuple[dict[str, Any], list[Event], list[Sighting]]:
        """A check answered as the service would have answered it at ``as_of``; recorded now, with the instant."""
        when = self._past_instant(body["as_of"])
        past = self._as_of(when)
        if caller.party not in past.picture.parties:
            raise NotFound(f"party {caller.party} did not take part yet at {when.isoformat()}", field="as_of")
        self.budget.take(str(caller.party))  # here: the past's own service has a budget of its own, unspent
        answer, events, seen = past._answer(caller, {k: v for k, v in body.items() if k not in ("as_of", "activity")})
        answer.pop("picture_key")  # a key of the past proves nothing about the present
        answer["as_of"] = when.isoformat()
        record = events[0]
        record.data["query"] = dict(body)
        # What the past told the asker about hidden assets counts as much as what the present tells it.
        return answer, [replace(record, time=self.clock.now())], seen

    def _past_instant(self, value: object) -> datetime:
        when = check_time(value, "as_of")
        if when > self.clock.now():
            raise InvalidInput(f"as_of {when.isoformat()} is in the future; the record answers for the past", field="as_of")
        return when

    def _as_of(self, when: datetime, area: Box | None = None) -> Service:
        """A service over the picture as the record had it at ``when``: the writes up to then, replayed.

        It reads the store's history (the record is the source): the whole log, or with
        ``area`` what the store keeps for it (PostgreSQL: only the assets ever reported
        there). Its clock stands at ``when``; its picture version is the record's length then.
        """
        # The last entry written at or before `when` (times have microseconds; the log's grow with it).
        until = self._seq_before(when + timedelta(microseconds=1))
        past = Service(MemoryStore(), ManualClock(when), self.settings)
        past._rebuild(self.store.history(until, area))
        past.picture.version = until
        return past

    def picture_then(self, caller: Caller, area: str | None, kind: object, when: datetime) -> dict[str, Any]:
        """On a service from :meth:`_as_of`: what ``caller`` could see then (in ``area``, or everywhere); no key."""
        if caller.party is not None:
            self._party_of(caller, "looking at the picture")  # the party must have existed then
        if area is not None:
            shown = self.look(caller, area, kind)
            shown.pop("picture_key")
        else:
            shown = {
                "assets": self.assets(caller),
                "zones": self.zones(caller),
                "aors": self.aors(caller),
                "activities": self.activities(caller),
                "territories": self.territories(caller),
                "picture_version": self.picture.version,
            }
        return {"as_of": when.isoformat(), **shown}

    # ------------------------------------------------------------------ picture keys

    def look(self, caller: Caller, area: str | None = None, kind: object = None, as_of: object = None) -> dict[str, Any]:
        """``GET /v1/picture``: the picture version, and with ``area`` what the caller may see there and its key.

        ``area`` is a box ``west,south,east,north`` in degrees; with ``kind`` it is widened
        by that kind's buffer, as an activity's volumes are. The key covers the box. With
        ``as_of``, the picture as the caller could have seen it then, rebuilt from the record.
        """
        box = self._look_box(area, kind)
        if as_of is not None:
            when = self._past_instant(as_of)
            return self._as_of(when, box).picture_then(caller, area, kind, when)
        viewer = self._party_of(caller, "looking at the picture") if caller.party is not None else None
        if box is None:
            with self._reading:
                return {**self.summary(viewer), "picture_key": str(PictureKey.issue(self.picture.version, WORLD))}
        with self._reading:
            return {**self._look(box, viewer), "picture_version": self.picture.version}

    def _look_box(self, area: str | None, kind: object) -> Box | None:
        """The box a look covers: ``area``, widened by ``kind``'s buffer as an activity's volumes are."""
        if area is None:
            if kind is not None:
                raise InvalidInput("kind widens an area; give the area too", field="kind")
            return None
        box = parse_box(area, "area")
        if kind is not None:
            # As an activity's volumes are widened: by the buffer and the engine's safety margin.
            box = degrees_envelope(box, self.settings.buffer_m(_check_kind(kind)) * LOOK_MARGIN + 1.0)
        return box

    def _look(self, box: Box, viewer: str | None) -> dict[str, Any]:
        """What ``viewer`` may see inside ``box``, with the key that proves it was seen; under the reading lock."""
        p = self.picture
        shape = wrapped_box(box)  # a box widened by a kind's buffer may reach across the antimeridian
        centre = LatLon((box[1] + box[3]) / 2, (box[0] + box[2]) / 2)  # the box's own, not its two parts'
        slots = p.positions.near(shape, LocalPlane(centre), 0.0)
        inside = slots[in_envelope(p.positions.lon[slots], p.positions.lat[slots], box)]
        placed = p.positions.values(inside[:LOOK_LIMIT])
        assets = [self._show_asset(asset, report, viewer) for asset, report in placed]
        zones = [self._show_zone(z, viewer) for z in p.zones.within(shape)]
        activities = [
            self._show_activity(a)
            for a in p.activities.values()
            if not a.state.ended and a.concerns(viewer) and wrapped_box(a.envelope).intersects(shape)
        ]
        return {
            "area": list(box),
            "picture_key": str(PictureKey.issue(p.version, box)),
            "assets": [a for a in assets if a is not None],
            "zones": [z for z in zones if z is not None],
            "aors": [self._show_aor(a) for a in p.aors.within(shape)],
            "activities": activities,
            "truncated": len(inside) > LOOK_LIMIT,
        }

    def _verify_key(self, party: str, text: object, box: Box, own: str | None = None) -> PictureKey:
        """Refuse a missing key, one that does not cover ``box``, or one older than a change inside it.

        Changes to the caller's own assets do not count (it knows where its units are), nor
        does the caller's own activity ``own`` that the key is presented for, nor anything the
        caller may not see: looking again would not show it, and a refusal, even a count,
        would tell the caller that something hidden moved in the box. Hidden objects are
        accounted for where they belong: their owner is among the affected parties.
        """
        fresh = PictureKey.issue(self.picture.version, box)
        details: dict[str, Any] = {"key": str(fresh), "area": list(fresh.box), "changed": []}
        if text is None:
            raise StalePicture(
                "a picture key is required: look at the area first (GET /v1/picture?area=...) and present its key; "
                "this refusal carries a fresh one",
                field="key",
                details=details,
            )
        key = PictureKey.parse(text, "key")
        if key.version > self.picture.version:
            raise InvalidInput(f"this service has not issued a key for version {key.version} yet", field="key")
        if not key.covers(box):
            raise StalePicture(
                "the key does not cover the activity's buffered volumes; look at the whole area", field="key", details=details
            )
        if key.version < self.picture.changes.horizon:
            raise StalePicture(
                "the key is older than the changes this service still holds (it restarted, or the key is hours old); "
                "look at the area again",
                field="key",
                details=details,
            )
        changed = self.picture.changes.since(key.version, box)
        shown = [
            {"object": thing.what, "party": thing.party, "id": thing.id, "version": seq}
            for thing, seq in sorted(changed.items(), key=lambda item: item[1])
            if not (thing.party == party and (thing.what == "asset" or (thing.what == "activity" and thing.id == own)))
            and self._may_see(thing, party)
        ]
        if shown:
            details.update(changed=shown)
            raise StalePicture(
                f"the picture changed there since the key's version {key.version}: {len(shown)} change(s); "
                "look again and present the fresh key",
                field="key",
                details=details,
            )
        return key

    def _may_see(self, thing: Changed, viewer: str) -> bool:
        if thing.what == "activity":
            activity = self.picture.activities.get((thing.party, thing.id))
            return activity is not None and activity.concerns(viewer)
        asset = self.picture.assets.get((thing.party, thing.id)) if thing.what == "asset" else None
        what = asset.kind.value if asset is not None else "zone" if thing.what == "zone" else None
        return level_for(thing.party, thing.disclosure, viewer, what, self.picture.grants) is not Disclosure.HIDDEN

    # ------------------------------------------------------------------ activities

    @_caught_up_when_behind
    def propose(self, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
        """Propose an activity: ``{id?, kind, purpose, volumes: [...], key}``; it waits for every affected party."""
        party = self._liaison(caller)
        body = _fields(body, "", ("id", "kind", "purpose", "volumes", "key"), ("kind", "purpose", "volumes"))
        kind: ActivityKind = check_enum(ActivityKind, body["kind"], "kind")
        purpose = check_text(body["purpose"], "purpose", 2000, "a purpose")
        with self._write_turn():
            now = self.clock.now()
            volumes = self._volumes(body["volumes"], now)
            activity_id = self._new_activity_id(party, body.get("id"))
            buffer = self.settings.buffer_m(kind.check_kind)
            box = envelope(party, kind, volumes, buffer)
            self.budget.take(party)  # who a proposal affects tells as much as a check's answer
            self._verify_key(party, body.get("key"), box)
            activity = Activity(
                id=activity_id,
                party=party,
                kind=kind,
                volumes=volumes,
                purpose=purpose,
                affected=affected_parties(self.picture, party, kind, volumes, now, buffer),
                proposed_at=now,
                deadline=now + timedelta(seconds=self.settings.deadline_s(kind)),
                envelope=box,
            )
            try:
                self._commit([ev.activity_event(activity, now)])
            except Behind:  # nothing written: the try again spends anew
                self.budget.give_back(party)
                raise
            queries = [CheckQuery(party, kind.check_kind, v.geometry, v.window, v.radius_m, v.altitude) for v in volumes]
            near_m = self.settings.probe_near_m
            seen = [s for q in queries for s in sightings(self.picture, q, search_area(q, buffer), near_m, now)]
            shown = self._show_activity(self.picture.activities[activity.key])
        self._watch(seen)
        return shown

    def _new_activity_id(self, party: str, value: object) -> str:
        """A new id among the party's own activities: other parties' ids are theirs, and none of its business."""
        if value is not None:
            activity_id = check_id(value, "id")
            if (party, activity_id) in self.picture.activities:
                raise AlreadyExists(f"{party} has an activity {activity_id!r} already; choose another id", field="id")
            return activity_id
        # Counted among the party's own activities: a count of all would tell how many others it cannot see.
        n = sum(a.party == party for a in self.picture.activities.values()) + 1
        while (party, f"{party}-{n}") in self.picture.activities:
            n += 1
        return f"{party}-{n}"

    def _volumes(self, value: object, now: datetime) -> tuple[Volume, ...]:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_VOLUMES:
            raise InvalidInput(f"volumes is a list of 1 to {MAX_VOLUMES} volumes", field="volumes")
        return tuple(self._volume(v, f"volumes.{i}", now) for i, v in enumerate(value))

    def _volume(self, value: object, field: str, now: datetime) -> Volume:
        """``{position, radius_m?}`` or ``{area}`` (a LineString route takes ``width_m``), with a window and an altitude band."""
        allowed = ("position", "radius_m", "area", "width_m", "window", "altitude_m")
        body = _fields(value, field, allowed, ("window",))
        geometry: BaseGeometry
        if (body.get("position") is None) == (body.get("area") is None):
            raise InvalidInput("give either a position (with an optional radius_m) or an area", field=f"{field}.position")
        if body.get("position") is not None:
            if "width_m" in body:
                raise InvalidInput("width_m is for routes (a LineString area)", field=f"{field}.width_m")
            parsed = parse_position(body["position"], f"{field}.position")
            geometry = Point(parsed.point.lon, parsed.point.lat)
            radius = check_non_negative(body.get("radius_m", 0.0), f"{field}.radius_m", maximum=MAX_RADIUS_M) + parsed.precision_m
        else:
            if "radius_m" in body:
                raise InvalidInput("radius_m goes with a position", field=f"{field}.radius_m")
            geometry = self._area(body["area"], f"{field}.area", (*AREA_TYPES, "LineString"))
            radius = 0.0
            if geometry.geom_type == "LineString":
                if "width_m" not in body:
                    raise InvalidInput("a route needs width_m, its full width in metres", field=f"{field}.width_m")
                radius = check_positive(body["width_m"], f"{field}.width_m", maximum=MAX_ROUTE_WIDTH_M) / 2
            elif "width_m" in body:
                raise InvalidInput("width_m is for routes (a LineString area)", field=f"{field}.width_m")
        window = self._window(body["window"], f"{field}.window")
        assert window is not None
        if window.end <= now:
            raise InvalidInput(
                f"the window ended at {window.end.isoformat()}, before now ({now.isoformat()})", field=f"{field}.window.end"
            )
        if (window.end - window.start).total_seconds() > MAX_DURATION_S:
            raise InvalidInput("a window of an activity is at most a year long", field=f"{field}.window.end")
        altitude = None if body.get("altitude_m") is None else AltitudeBand.parse(body["altitude_m"], f"{field}.altitude_m")
        return Volume(geometry, radius, window, altitude)

    def _visible_activity(self, viewer: str | None, proposer: object, activity_id: object, field: str = "id") -> Activity:
        """``proposer``'s activity ``activity_id``, if it concerns ``viewer``."""
        activity = self.picture.activities.get((str(proposer), str(activity_id)))
        if activity is None or not activity.concerns(viewer):
            # The same answer for an activity that does not exist and one the caller may not know of.
            raise NotFound(f"there is no activity {proposer}/{activity_id} that concerns {viewer}", field=field)
        return activity

    def _own_activity(self, party: str, activity_id: object, field: str = "activity", proposer: object = None) -> Activity:
        """The party's own activity ``activity_id``; a ``proposer`` named in a path must be the party."""
        activity = self._visible_activity(party, party if proposer is None else proposer, activity_id, field)
        if activity.party != party:
            raise Forbidden(
                f"only the proposer ({activity.party}) may do this with activity {activity.party}/{activity.id}", field=field
            )
        return activity

    def acknowledge(self, caller: Caller, proposer: str, activity_id: str) -> dict[str, Any]:
        """An affected party acknowledges ``proposer``'s activity: it has seen it and has nothing against it."""
        return self._answer_activity(caller, proposer, activity_id, None)

    def object(self, caller: Caller, proposer: str, activity_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """An affected party objects to ``proposer``'s activity, with a reason; it is not cleared while that stands."""
        body = _fields(body, "", ("reason",), ("reason",))
        return self._answer_activity(caller, proposer, activity_id, check_text(body["reason"], "reason", 2000, "a reason"))

    @_caught_up_when_behind
    def _answer_activity(self, caller: Caller, proposer: str, activity_id: str, objection: str | None) -> dict[str, Any]:
        party = self._liaison(caller)
        with self._write_turn():
            activity = self._visible_activity(party, proposer, activity_id, "id")
            if party not in activity.affected:
                raise Forbidden(f"{party} proposed {activity.id!r}; only the parties it affects answer it", field="id")
            if activity.state not in WAITING:
                raise InvalidState(
                    f"activity {activity.id!r} is {activity.state.value}: answers are taken only before it is under way",
                    field="id",
                )
            now = self.clock.now()
            if objection is None:
                event = ev.transition_event("activity.acknowledged", activity, now, party)
            else:
                event = ev.transition_event("activity.objected", activity, now, party, reason=objection)
            self._commit([event])
            return self._show_activity(self.picture.activities[activity.key])

    @_caught_up_when_behind
    def activate(self, caller: Caller, proposer: str, activity_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The proposer starts a cleared activity, presenting a current picture key; ``override`` starts an uncleared one."""
        party = self._liaison(caller)
        body = _fields(body, "", ("key", "override"))
        override = None if body.get("override") is None else check_text(body["override"], "override", 2000, "an override reason")
        with self._write_turn():
            activity = self._own_activity(party, activity_id, "id", proposer)
            if activity.state not in WAITING:
                raise InvalidState(f"activity {activity.id!r} is {activity.state.value}; it cannot be activated", field="id")
            if activity.state is not ActivityState.CLEARED and override is None:
                waiting = [p for p in activity.affected if p not in activity.answers]
                objected = [p for p, a in activity.answers.items() if not a.acknowledged]
                raise InvalidState(
                    f"activity {activity.id!r} is {activity.state.value}, not cleared (objected by: "
                    f"{', '.join(objected) or 'none'}; no answer from: {', '.join(waiting) or 'none'}); "
                    "activating it needs an override with a reason",
                    field="override",
                )
            if activity.state is ActivityState.CLEARED and override is not None:
                raise InvalidInput(f"activity {activity.id!r} is cleared: there is nothing to override", field="override")
            now = self.clock.now()
            if now > activity.ends_at:
                raise InvalidState(f"activity {activity.id!r}'s windows have ended", field="id")
            self._verify_key(party, body.get("key"), activity.envelope, own=activity.id)
            data = (
                {} if activity.state is ActivityState.CLEARED else {"override": override, "uncleared_state": activity.state.value}
            )
            self._commit([ev.transition_event("activity.activated", activity, now, party, **data)])
            return self._show_activity(self.picture.activities[activity.key])

    @_caught_up_when_behind
    def complete(self, caller: Caller, proposer: str, activity_id: str) -> dict[str, Any]:
        party = self._liaison(caller)
        with self._write_turn():
            activity = self._own_activity(party, activity_id, "id", proposer)
            if activity.state is not ActivityState.ACTIVE:
                raise InvalidState(
                    f"activity {activity.id!r} is {activity.state.value}; only an active one completes "
                    "(cancel one that never started)",
                    field="id",
                )
            self._commit(
                [ev.transition_event("activity.completed", activity, self.clock.now(), party, reason="completed by the proposer")]
            )
            return self._show_activity(self.picture.activities[activity.key])

    @_caught_up_when_behind
    def cancel(self, caller: Caller, proposer: str, activity_id: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        party = self._liaison(caller)
        body = _fields(body or {}, "", ("reason",))
        reason = check_text(body.get("reason", "cancelled by the proposer"), "reason", 2000, "a reason")
        with self._write_turn():
            activity = self._own_activity(party, activity_id, "id", proposer)
            if activity.state.ended:
                raise InvalidState(f"activity {activity.id!r} is {activity.state.value} already", field="id")
            self._commit([ev.transition_event("activity.cancelled", activity, self.clock.now(), party, reason=reason)])
            return self._show_activity(self.picture.activities[activity.key])

    def activities(self, caller: Caller) -> list[dict[str, Any]]:
        """Activities the caller's party proposed or is affected by."""
        with self._reading:
            return [self._show_activity(a) for a in self.picture.activities.values() if a.concerns(caller.party)]

    def activity(self, caller: Caller, proposer: str, activity_id: str) -> dict[str, Any]:
        """``proposer``'s activity ``activity_id``, if it concerns the caller; otherwise not found, as if it did not exist."""
        with self._reading:
            return self._show_activity(self._visible_activity(caller.party, proposer, activity_id, "id"))

    def _show_activity(self, a: Activity) -> dict[str, Any]:
        """An activity as its proposer and affected parties see it: in full (they share it by its nature)."""
        return {
            "id": a.id,
            "party": a.party,
            "kind": a.kind.value,
            "purpose": a.purpose,
            "state": a.state.value,
            "volumes": [show_volume(v) for v in a.volumes],
            "affected": list(a.affected),
            "answers": {
                p: {"answer": "acknowledged" if x.acknowledged else "objected", "at": x.at.isoformat(), "reason": x.reason}
                for p, x in a.answers.items()
            },
            "waiting_for": [p for p in a.affected if p not in a.answers],
            "proposed_at": a.proposed_at.isoformat(),
            "deadline": a.deadline.isoformat(),
            "escalated_at": ev.iso_or_none(a.escalated_at),
            "activated_at": ev.iso_or_none(a.activated_at),
            "override": a.override,
            "ended_at": ev.iso_or_none(a.ended_at),
            "end_reason": a.end_reason,
            "area": list(a.envelope),
        }

    # ------------------------------------------------------------------ what time does

    @_caught_up_when_behind
    def tick(self) -> list[dict[str, Any]]:
        """Fire what the clock has made due: escalations, windows ended, AORs lapsed, probes seen. Run every ``tick_s``."""
        with self._write_turn():
            now = self.clock.now()
            events: list[Event] = []
            for activity in list(self.picture.activities.values()):
                fired = list(due(activity, now))
                if "ended" in fired:
                    if activity.state is ActivityState.ACTIVE:
                        events.append(ev.transition_event("activity.completed", activity, now, None, reason="its windows ended"))
                    else:
                        reason = f"its windows ended before it was activated (it was {activity.state.value})"
                        events.append(ev.transition_event("activity.cancelled", activity, now, None, reason=reason))
                elif "escalated" in fired:
                    waiting = [p for p in activity.affected if p not in activity.answers]
                    events.append(ev.transition_event("activity.escalated", activity, now, None, waiting_for=waiting))
            for key, aor in self.picture.aors:
                lapsed = aor.lapsed_since(now)
                if aor.confirmed_at is not None and lapsed is not None and key not in self.picture.lapses_noticed:
                    events.append(Event("aor.lapsed", now, None, {"party": aor.party, "id": aor.id, "since": lapsed.isoformat()}))
            events += [Event("probe.suspected", now, None, probe.as_json()) for probe in self.probes.take_due(now)]
            if events:
                self._commit(events)
        self.ledger_head()  # published while there are writes: signs only when the tree grew and the last is old
        return [{"type": e.type, "party": e.data["party"], "id": e.data["id"]} for e in events]

    # ------------------------------------------------------------------ conflicts with what is under way

    def _entering_positions(self, reports: Sequence[Report], now: datetime, new: Asset | None = None) -> list[Event]:
        """``conflict.detected`` for each report that brings an asset into an active activity's buffered volumes.

        Entering, not being inside: a unit that keeps reporting inside raises it once. A
        party's own assets count for its fires and air activities only (its patrols are
        made of them).
        """
        if not len(self.picture.active):
            return []
        events: list[Event] = []
        previous: dict[tuple[str, str], Report | None] = {}
        for report in reports:
            key = (report.party, report.asset)
            before = previous.get(key, self.picture.reports.get(key))
            previous[key] = report
            for activity in self.picture.active.near(shapely.Point(report.point.lon, report.point.lat), report.uncertainty_m):
                if report.party == activity.party and activity.kind not in (ActivityKind.FIRES, ActivityKind.AIR):
                    continue
                buffer = self.settings.buffer_m(activity.kind.check_kind)
                distance = reaches_point(activity, buffer, report.point, report.uncertainty_m)
                if distance is None or (
                    before is not None and reaches_point(activity, buffer, before.point, before.uncertainty_m) is not None
                ):
                    continue
                asset = new if new is not None and new.key == key else self.picture.assets[key]
                found: dict[str, Any] = {"object": asset.kind.value, "owner": asset.party, "id": asset.id, "name": asset.name}
                found["disclosure"] = asset.disclosure
                found |= {"lat": report.point.lat, "lon": report.point.lon, "distance_m": round(distance, 1)}
                events.append(ev.transition_event("conflict.detected", activity, now, None, found=found))
        return events

    def _entering_zone(self, zone: Zone, now: datetime) -> list[Event]:
        """``conflict.detected`` for each active activity of another party whose buffered volumes a new zone reaches."""
        events: list[Event] = []
        for activity in self.picture.active.near(zone.geometry, zone.width_m / 2):
            if activity.party == zone.party or not zone_applies(zone, activity.kind.check_kind):
                continue
            if reaches_zone(activity, self.settings.buffer_m(activity.kind.check_kind), zone):
                found = {
                    "object": zone.kind.value,
                    "owner": zone.party,
                    "id": zone.id,
                    "name": zone.name,
                    "disclosure": zone.disclosure,
                }
                events.append(ev.transition_event("conflict.detected", activity, now, None, found=found))
        return events

    # ------------------------------------------------------------------ the event stream

    def events(
        self, caller: Caller, after: int = 0, limit: int = 100, types: Sequence[str] = ()
    ) -> tuple[list[dict[str, Any]], int]:
        """The log after ``after`` (of ``types``, if given), as the caller's party may see it: (events, cursor to go on from).

        The cursor moves past events the caller may not see, so a stream never reads them twice.
        """
        viewer = caller.party
        shown: list[dict[str, Any]] = []
        cursor = after
        while len(shown) < limit:
            page = self.store.events(cursor, EVENT_PAGE, types)
            if not page:
                break
            for event in page:
                cursor = event.seq
                with self._reading:
                    data = self._show_event(event, viewer)
                if data is not None:
                    shown.append({"seq": event.seq, "type": event.type, "time": event.time.isoformat(), "data": data})
                    if len(shown) == limit:
                        break
        return shown, cursor

    def events_since(self, caller: Caller, since: Any, limit: int = EVENT_PAGE) -> dict[str, Any]:
        """The first ``limit`` events from the instant ``since`` on, as the caller may see them (a console's timeline)."""
        when = check_time(since, "since")
        if not 1 <= limit <= EVENT_PAGE:
            raise InvalidInput(f"limit is 1 to {EVENT_PAGE}", field="limit")
        shown, cursor = self.events(caller, self._seq_before(when), limit)
        return {"events": shown, "cursor": cursor}

    def _seq_before(self, when: datetime) -> int:
        """The last sequence number written before ``when``: a binary search, as the log's times grow with it."""
        low, high = 0, self.store.last_seq()
        while low < high:
            middle = (low + high + 1) // 2
            (event,) = self.store.events(middle - 1, 1)
            if event.time < when:
                low = middle
            else:
                high = middle - 1
        return low

    def _show_event(self, event: Event, viewer: str | None) -> dict[str, Any] | None:
        """One event's data as ``viewer`` may see it, or None: every stream goes through the disclosure policy."""
        d = event.data
        if event.type.startswith("aor."):
            return dict(d)  # where parties vouch for their picture is shared with everyone
        if event.type in ("asset.registered", "report.accepted", "asset.withdrawn", "position.withdrawn"):
            # The disclosure the event was written with, not that of whatever holds the id now.
            declared = Disclosure(d.get("disclosure", Disclosure.HIDDEN))
            level = level_for(d["party"], declared, viewer, d.get("kind"), self.picture.grants)
            if level is Disclosure.HIDDEN:
                return None
            if event.type != "report.accepted":
                return {k: d[k] for k in ("party", "id", "kind", "name") if k in d}
            shown = {"party": d["party"], "asset": d["asset"], "time": d["time"], "stale_at": d["stale_at"]}
            point = LatLon(d["lat"], d["lon"])
            if level is Disclosure.EXACT:
                return shown | {"uncertainty_m": d["uncertainty_m"], "position": show_point(point)}
            return shown | {"cell": show_cell(point, self.settings.coarse_resolution)}
        if event.type == "zone.declared":
            return self._show_zone(ev.zone_of(d), viewer)
        if event.type == "zone.withdrawn":
            declared = Disclosure(d.get("disclosure", Disclosure.HIDDEN))
            hidden = level_for(d["party"], declared, viewer, "zone", self.picture.grants) is Disclosure.HIDDEN
            return None if hidden else {"party": d["party"], "id": d["id"]}
        if event.type == "conflict.detected":
            return self._show_conflict(d, viewer)
        if event.type.startswith("grant."):
            return dict(d) if viewer in (d["party"], d["grantee"]) else None
        if event.type == "probe.suspected":
            return dict(d) if viewer == d["party"] else None  # never to the asker
        if event.type.startswith("activity."):
            if viewer != d["party"] and viewer not in d["affected"]:
                return None
            # A proposal is shown as the activity was proposed, in the shape of GET /v1/activities/{party}/{id}.
            return self._show_activity(ev.activity_of(d, event.time)) if event.type == "activity.proposed" else dict(d)
        return None  # parties, tokens, territories and checks are not streamed

    def _show_conflict(self, d: Mapping[str, Any], viewer: str | None) -> dict[str, Any] | None:
        found = d["found"]
        point = LatLon(found["lat"], found["lon"]) if "lat" in found else None
        finding = Finding(
            party=found["owner"],
            object=found["object"],
            id=found["id"],
            name=found["name"],
            disclosure=Disclosure(found["disclosure"]),
            distance_m=found.get("distance_m", 0.0),
            point=point,
        )
        shown = {
            "activity": d["id"],
            "proposer": d["party"],
            "found": show_finding(finding, viewer, self.settings.coarse_resolution, self.picture.grants),
        }
        if viewer == d["party"]:
            return shown
        if viewer == found["owner"]:
            activity = self.picture.activities.get((d["party"], d["id"]))
            return shown if activity is None else shown | {"kind": activity.kind.value, "area": list(activity.envelope)}
        return None

    # ------------------------------------------------------------------ the record

    def ledger_head(self) -> dict[str, Any]:
        """The latest signed tree head, signed afresh when the tree grew and the last is ``head_interval_s`` old."""
        with self._heads_lock:
            if self._last_head is None:
                heads = self.store.heads()
                self._last_head = heads[-1] if heads else None
            last = self._last_head
            size = len(self.store.tree)
            now_ms = int(self.clock.now().timestamp() * 1000)
            due = last is None or now_ms - last["timestamp"] >= self.settings.head_interval_s * 1000
            if last is None or (last["tree_size"] < size and due):
                last = sign_head(self._signing_key(), size, self.store.tree.root(size), now_ms)
                self.store.add_head(last)
                self._last_head = last
            assert last is not None
            return {**last, "public_key": self.public_key()}

    def _signing_key(self) -> Ed25519PrivateKey:
        if self._key is None:
            self._key = self.store.signing_key()
        return self._key

    def public_key(self) -> str:
        return public_key_hex(self._signing_key())

    def ledger_heads(self) -> list[dict[str, Any]]:
        """Every signed tree head published, oldest first."""
        return self.store.heads()

    def ledger_entries(self, caller: Caller, start: int, end: int | None = None) -> dict[str, Any]:
        """Entries ``start`` to ``end`` (exclusive, at most ``LEDGER_PAGE``): the leaf bytes everyone may see,
        and the sealed parts this caller may read."""
        size = len(self.store.tree)
        end = min(size if end is None else end, start + LEDGER_PAGE)
        if not 0 <= start <= size:
            raise InvalidInput(f"start {start} is outside the record of {size} entries", field="start")
        if end < start:
            raise InvalidInput(f"end {end} is before start {start}", field="end")
        entries = []
        for row in self.store.rows(start, end):
            entry = row.entry
            shown: dict[str, Any] = {
                "index": row.seq - 1,
                "leaf_hex": entry.hex(),
                "leaf_hash": row.leaf.hex(),  # as the store recorded it when the entry was written
                "event": json.loads(entry),
            }
            parts = sealed_parts(row.sealed)
            if parts:
                shown["sealed"] = [p.as_json() if may_read(p, caller.party) else None for p in parts]
            entries.append(shown)
        return {"entries": entries, "tree_size": size, "next": end if end < size else None}

    def inclusion_proof(self, index: int, tree_size: int) -> dict[str, Any]:
        tree = self.store.tree
        if not 0 < tree_size <= len(tree):
            raise InvalidInput(f"tree_size must be between 1 and {len(tree)}", field="tree_size")
        if not 0 <= index < tree_size:
            raise InvalidInput(f"index must be between 0 and {tree_size - 1}", field="index")
        path = tree.inclusion_proof(index, tree_size)
        leaf = tree.leaf(index).hex()
        return {"index": index, "tree_size": tree_size, "leaf_hash": leaf, "audit_path": [h.hex() for h in path]}

    def consistency_proof(self, first: int, second: int) -> dict[str, Any]:
        tree = self.store.tree
        if not 0 < second <= len(tree):
            raise InvalidInput(f"second must be between 1 and {len(tree)}", field="second")
        if not 0 < first <= second:
            raise InvalidInput(f"first must be between 1 and second ({second})", field="first")
        path = tree.consistency_proof(first, second)
        return {"first": first, "second": second, "consistency_path": [h.hex() for h in path]}

    def summary(self, viewer: str | None = None) -> dict[str, Any]:
        """Counts of what ``viewer`` may see (everything for the centre) and the picture version, for the console's header.

        Counts go through the disclosure policy too: a count of all assets would tell a
        party how many it cannot see.
        """
        p = self.picture
        grants = p.grants

        def seen(party: str, disclosure: Disclosure, what: str) -> bool:
            return level_for(party, disclosure, viewer, what, grants) is not Disclosure.HIDDEN or viewer is None

        assets = [k for k, a in p.assets.items() if seen(a.party, a.disclosure, a.kind.value)]
        return {
            "picture_version": p.version,
            "parties": len(p.parties),
            "assets": len(assets),
            "positions": sum(k in p.reports for k in assets),
            "zones": sum(seen(z.party, z.disclosure, "zone") for _, z in p.zones),
            "aors": len(p.aors),
            "territories": len(p.territories),
            "activities": sum(not a.state.ended and (viewer is None or a.concerns(viewer)) for a in p.activities.values()),
        }
