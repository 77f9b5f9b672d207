"""The TAK gateway: one listener per party network, CoT in as reports and checks, the shared picture out.

It runs inside the server's event loop (``deconflict serve --tak alfa:8087``). A listener
belongs to one party (TCP and UDP), or takes the party from each device's client
certificate (TLS). What comes in goes through the service as that party's liaison would:
reports in batches (one durable transaction for many devices' positions, each report judged
on its own), withdrawals, checks. What goes out is what the service shows that party,
drawn as CoT and refreshed: each device is sent what changed as soon as it changed, and
everything again every ``tak_refresh_s``; what it was sent goes stale after three times
that, so a gateway that stops leaves nothing on a map that looks current.

A message that cannot be read is dropped and counted, and the device's other messages go
on; a stream whose framing breaks (an oversized message, a bad varint) is closed. The
counts, and the devices connected, are at ``GET /v1/tak`` (server admin).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from deconfliction.errors import DeconflictionError, InvalidInput, NotFound, RetryLater
from deconfliction.feed import Subscription
from deconfliction.model import Role
from deconfliction.service import Caller, Service
from deconfliction.tak import translate as tr
from deconfliction.tak.cot import CotError, CotEvent, from_proto, from_xml, to_proto, to_xml
from deconfliction.tak.framing import Encoding, FramingError, Message, Splitter, frame

log = logging.getLogger("deconfliction.tak")

DEFAULT_TCP_PORT = 8087
DEFAULT_TLS_PORT = 8089
MESH_HEADER = b"\xbf\x01\xbf"  # TAK protocol version 1 over UDP: one TakMessage per datagram after this
BATCH = 1000
ALERTS = ("conflict.detected", "activity.escalated")
"""The notices a party's devices are sent as alerts."""
BACKLOG = 1024
"""Connections waiting to be accepted: a thousand devices reconnecting at once after an outage must not be refused."""
"""Most reports written in one transaction."""
PUBLISH_INTERVAL_S = 0.5
"""Changes are sent to devices at most this often: many reports a second become one update."""
DRAIN_TIMEOUT_S = 10.0
"""A device that takes no data for this long is disconnected: a slow reader must not hold the others' picture back."""
_OFFENDER = re.compile(r"^reports\.(\d+)\b")


@dataclass(frozen=True)
class Listener:
    """``tcp`` or ``udp`` for one party's network, or ``tls`` (the party is each client certificate's organisation)."""

    transport: str
    port: int
    party: str | None = None
    host: str = "0.0.0.0"

    @classmethod
    def parse(cls, text: str, transport: str) -> Listener:
        """``PARTY:PORT`` (``tcp``, ``udp``) or ``PORT`` (``tls``), as the command line gives them."""
        field_ = f"--tak{'' if transport == 'tcp' else '-' + transport}"
        party, _, port = text.rpartition(":") if transport != "tls" else ("", "", text)
        if transport != "tls" and not party:
            raise InvalidInput(f"{text!r}: give PARTY:PORT, for example alfa:{DEFAULT_TCP_PORT}", field=field_)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidInput(f"{text!r}: the port must be 1 to 65535", field=field_)
        return cls(transport, int(port), party or None)


def check_parties(service: Service, listeners: Sequence[Listener]) -> None:
    """Refuse a listener for a party the centre does not have (before anything listens)."""
    for listener in listeners:
        if listener.party is not None and listener.party not in service.picture.parties:
            flag = "--tak" if listener.transport == "tcp" else f"--tak-{listener.transport}"
            raise NotFound(f"there is no party {listener.party!r} to take TAK traffic for", field=flag)


class Counts:
    """What the gateway took, refused and dropped, by reason; written from the loop and from writer threads."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


@dataclass(eq=False)
class Device:
    """One connected stream: its party, and the encoding it last used (answers go back in kind)."""

    party: str
    peer: str
    writer: asyncio.StreamWriter
    encoding: Encoding = Encoding.XML
    connected_at: float = field(default_factory=time.time)
    sent: dict[str, bytes] = field(default_factory=dict)  # uid -> what was sent (times aside), to send only changes

    async def send(self, events: Sequence[CotEvent], then: Encoding | None = None) -> None:
        """Write ``events`` in the device's encoding; with ``then``, switch to it before anything else can be written."""
        if events:
            encode = to_xml if self.encoding is Encoding.XML else to_proto
            self.writer.write(b"".join(frame(Message(self.encoding, encode(e))) for e in events))
        if then is not None:
            self.encoding = then
        if events:
            await asyncio.wait_for(self.writer.drain(), DRAIN_TIMEOUT_S)


View = dict[str, tuple[CotEvent, bytes]]
"""A party's view: by uid, the event and what decides whether a device has it already (:func:`_signature`)."""


class Gateway:
    """``await gateway.start()`` opens every listener; ``await gateway.stop()`` closes them and every device."""

    def __init__(self, service: Service, listeners: Sequence[Listener]) -> None:
        self.service = service
        self.listeners = list(listeners)
        self.counts = Counts()
        self.latency = Latency()
        self._servers: list[asyncio.AbstractServer] = []
        self._transports: list[asyncio.BaseTransport] = []
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._devices: dict[str, set[Device]] = {}  # by party
        self._publishers: dict[str, asyncio.Task[None]] = {}
        self._subscriptions: dict[str, Subscription] = {}
        s = service.settings
        if s.tak_unknown_uids not in ("register", "refuse"):
            raise InvalidInput("register or refuse", field="DECONFLICT_TAK_UNKNOWN_UIDS")

    # ---------------------------------------------------------------- listening

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        check_parties(self.service, self.listeners)
        for listener in self.listeners:
            if listener.transport == "udp":
                assert listener.party is not None
                datagrams = functools.partial(_Datagrams, self, listener.party)
                transport, _ = await loop.create_datagram_endpoint(datagrams, local_addr=(listener.host, listener.port))
                self._transports.append(transport)
                continue
            context = self._tls_context() if listener.transport == "tls" else None

            def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, party: str | None = listener.party) -> Any:
                return self._stream(party, reader, writer)

            server = await asyncio.start_server(handle, listener.host, listener.port, ssl=context, backlog=BACKLOG)
            self._servers.append(server)
            log.info(
                "TAK %s listener on %s:%d for %s",
                listener.transport,
                listener.host,
                listener.port,
                listener.party or "certificates",
            )

    def _tls_context(self) -> ssl.SSLContext:
        s = self.service.settings
        if not (s.tak_tls_cert and s.tak_tls_key and s.tak_tls_ca):
            raise InvalidInput(
                "a TLS listener needs DECONFLICT_TAK_TLS_CERT, DECONFLICT_TAK_TLS_KEY and DECONFLICT_TAK_TLS_CA",
                field="--tak-tls",
            )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=s.tak_tls_ca)
        context.load_cert_chain(s.tak_tls_cert, s.tak_tls_key)
        context.verify_mode = ssl.CERT_REQUIRED  # a device without a certificate of the centre's CA is not let in
        return context

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for transport in self._transports:
            transport.close()
        for device in self.devices():
            device.writer.close()
        for task in [*self._writers.values(), *self._publishers.values()]:
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    def devices(self) -> list[Device]:
        """Every device connected now, whatever its party."""
        return [d for party in self._devices.values() for d in party]

    def status(self) -> dict[str, Any]:
        """``GET /v1/tak``: the listeners, the devices connected, and the counts."""
        return {
            "listeners": [{"transport": x.transport, "port": x.port, "party": x.party} for x in self.listeners],
            "devices": [
                {"party": d.party, "peer": d.peer, "encoding": d.encoding.value, "connected_at": d.connected_at}
                for d in sorted(self.devices(), key=lambda d: d.connected_at)
            ],
            "counts": self.counts.snapshot(),
            "report_latency": self.latency.summary(),
        }

    # ---------------------------------------------------------------- one stream

    def _party_of(self, writer: asyncio.StreamWriter, party: str | None) -> str | None:
        if party is not None:
            return party
        certificate = writer.get_extra_info("peercert") or {}
        organisations = [v for rdn in certificate.get("subject", ()) for k, v in rdn if k == "organizationName"]
        if len(organisations) == 1 and organisations[0] in self.service.picture.parties:
            return str(organisations[0])
        return None

    async def _stream(self, party: str | None, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername"))
        found = self._party_of(writer, party)
        if found is None:
            self.counts.add("refused.no_party")
            log.warning("TAK device %s: its certificate names no party of this centre (subject O=); closed", peer)
            writer.close()
            return
        device = Device(found, peer, writer)
        self.counts.add("connections")
        self._join(device)
        splitter = Splitter(self.service.settings.tak_max_message_bytes)
        try:
            while chunk := await reader.read(65536):
                try:
                    messages = splitter.feed(chunk)
                except FramingError as exc:
                    self.counts.add(f"closed.{exc.reason}")
                    log.warning("TAK device %s (%s): %s; closed", peer, device.party, exc)
                    break
                for message in messages:
                    await self._message(device, message)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            self.counts.add("closed.connection_lost")
        finally:
            self._devices[device.party].discard(device)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _message(self, device: Device, message: Message) -> None:
        self.counts.add(f"in.{message.encoding.value}")
        try:
            event = from_xml(message.payload) if message.encoding is Encoding.XML else from_proto(message.payload)
        except CotError as exc:
            self.counts.add(f"dropped.{exc.reason}")
            log.info("TAK device %s (%s): message dropped: %s", device.peer, device.party, exc)
            return
        device.encoding = message.encoding
        if event.type == tr.NEGOTIATION_REQUEST:
            await self._negotiate(device, event)
            return
        if event.type == tr.CHECK:
            await device.send([await self._check(device.party, event)])
            return
        self.take(device.party, event)

    async def _negotiate(self, device: Device, event: CotEvent) -> None:
        """TAK protocol negotiation: a device asking for version 1 gets it, and both sides switch to protobuf."""
        request = event.detail.find("TakControl/TakRequest")
        accepted = request is not None and request.get("version") == "1"
        # The answer goes in XML; anything after it (the publisher may write while this one drains) in protobuf.
        then = Encoding.PROTOBUF if accepted else None
        await device.send([tr.negotiation_response(accepted, self.service.clock.now())], then=then)

    # ---------------------------------------------------------------- in: reports and withdrawals

    def take(self, party: str, event: CotEvent) -> None:
        """One event from a party's device (TCP, TLS or UDP): a report or a withdrawal, queued for the party's writer."""
        if event.uid.startswith(tr.OURS) or (event.type == tr.DELETE and _linked(event).startswith(tr.OURS)):
            self.counts.add("refused.foreign")  # another party's object, sent back: a device reports only its own
            return
        gone = tr.withdraws(event)
        if gone is not None:
            self._queue(party, {"withdraw": tr.asset_id(gone)})
            return
        if not tr.is_friendly_atom(event):
            self.counts.add("ignored")  # hostile, neutral and unknown tracks, chat, drawings: not the party's assets
            return
        try:
            body = tr.report_of(event, self.service.settings.tak_unknown_ce_m)
        except ValueError as exc:
            self.counts.add("refused.unknown_ce")
            log.info("TAK %s report of %s refused: %s", party, event.uid, exc)
            return
        body["name"] = event.callsign or event.uid
        body["received"] = time.monotonic()
        self._queue(party, body)

    def _queue(self, party: str, item: dict[str, Any]) -> None:
        self._pending.setdefault(party, []).append(item)
        if party not in self._writers:
            self._wake[party] = asyncio.Event()
            self._writers[party] = asyncio.create_task(self._write_loop(party))
        self._wake[party].set()

    async def _write_loop(self, party: str) -> None:
        """The party's writer: whatever its devices sent while the last transaction was being written goes in the next."""
        wake = self._wake[party]
        while True:
            await wake.wait()
            wake.clear()
            while self._pending.get(party):
                batch, self._pending[party] = self._pending[party][:BATCH], self._pending[party][BATCH:]
                try:
                    await asyncio.to_thread(self._write, party, batch)
                except Exception:  # a writer that died would silently stop the party's feed
                    log.exception("TAK %s: a batch of %d failed", party, len(batch))
                    self.counts.add("refused.error", len(batch))

    def _write(self, party: str, items: list[dict[str, Any]]) -> None:
        """In a worker thread: withdrawals, registrations of new uids, then the reports in one transaction."""
        caller = Caller(party, Role.LIAISON)
        reports = []
        for item in items:
            if "withdraw" in item:
                self._withdraw(caller, item["withdraw"])
            elif self._known(caller, item):
                reports.append(item)
        while reports:
            try:
                self.service.report_batch(caller, [_report_body(r) for r in reports], field="reports", read_back=False)
                self.counts.add("reports", len(reports))
                self.latency.note(reports)
                return
            except RetryLater as exc:
                self.counts.add(f"refused.{exc.code}", len(reports))
                return
            except DeconflictionError as exc:
                offender = _OFFENDER.match(exc.field or "")
                self.counts.add(f"refused.{exc.code}", 1 if offender else len(reports))
                if offender is None:
                    return
                del reports[int(offender.group(1))]  # each report is judged on its own: the others go in

    def _known(self, caller: Caller, item: dict[str, Any]) -> bool:
        """Whether the report's asset exists, registering it as a unit when the gateway may."""
        assert caller.party is not None
        if (caller.party, item["asset"]) in self.service.picture.assets:
            return True
        if self.service.settings.tak_unknown_uids == "refuse":
            self.counts.add("refused.unknown_uid")
            return False
        try:
            self.service.register_asset(caller, {"id": item["asset"], "kind": "unit", "name": item["name"][:100]})
            self.counts.add("registered")
        except DeconflictionError as exc:
            self.counts.add(f"refused.{exc.code}")
            return False
        return True

    def _withdraw(self, caller: Caller, asset: str) -> None:
        assert caller.party is not None
        held = self.service.picture.reports.get((caller.party, asset))
        if held is None:
            self.counts.add("ignored")  # nothing to withdraw (or not the party's)
            return
        try:
            self.service.withdraw_position(caller, asset)
            self.counts.add("withdrawn")
        except DeconflictionError as exc:
            self.counts.add(f"refused.{exc.code}")

    # ---------------------------------------------------------------- checks

    async def _check(self, party: str, event: CotEvent) -> CotEvent:
        now = self.service.clock.now()
        try:
            answer = await self.service.check_async(Caller(party, Role.LIAISON), tr.check_of(event))
        except DeconflictionError as exc:
            self.counts.add(f"checks.refused.{exc.code}")
            return tr.refusal_event(event, f"{exc.field}: {exc}" if exc.field else str(exc), now)
        self.counts.add("checks")
        return tr.answer_event(event, answer, now)

    # ---------------------------------------------------------------- out: the shared picture

    def _join(self, device: Device) -> None:
        """A device of ``device.party`` joined: the party's publisher sends it the picture at once."""
        party = device.party
        self._devices.setdefault(party, set()).add(device)
        if party not in self._publishers:
            self._publishers[party] = asyncio.create_task(self._publish(party))
        subscription = self._subscriptions.get(party)
        if subscription is not None:
            subscription.signal.set()

    async def _publish(self, party: str) -> None:
        """One per party: after each change (at most every ``PUBLISH_INTERVAL_S``) and every ``tak_refresh_s``,
        the party's view and alerts are made once and each of its devices is sent what it lacks."""
        refresh_s = self.service.settings.tak_refresh_s
        cursor = self.service.store.last_seq()
        last_full = 0.0
        with self.service.feed.subscribe() as woken:
            self._subscriptions[party] = woken
            while True:
                devices = list(self._devices.get(party, ()))
                if devices:
                    full = time.monotonic() - last_full >= refresh_s
                    if full:
                        last_full = time.monotonic()
                    try:
                        now = self.service.clock.now()
                        view = await asyncio.to_thread(self._view, party, now)
                        alerts, cursor = await asyncio.to_thread(self._alerts, party, cursor, now)
                    except Exception:  # the publisher must outlive a failed read (the store away, say)
                        log.exception("TAK %s: the picture could not be read; trying again", party)
                        view, alerts = None, []
                    if view is not None:
                        await asyncio.gather(*(self._send_picture(d, view, alerts, full, now) for d in devices))
                await asyncio.sleep(PUBLISH_INTERVAL_S)  # changes coming fast are sent together
                await woken.wait(refresh_s)

    async def _send_picture(self, device: Device, view: View, alerts: list[CotEvent], full: bool, now: datetime) -> None:
        changed = list(alerts)
        for uid, (event, signature) in view.items():
            if full or device.sent.get(uid) != signature:
                changed.append(event)
                device.sent[uid] = signature
        for uid in set(device.sent) - set(view):
            changed.append(tr.delete_event(uid, now))
            del device.sent[uid]
        try:
            await device.send(changed)
        except Exception as exc:  # gone, too slow, or broken: that device alone is dropped
            self.counts.add("closed.slow_or_gone")
            log.info("TAK device %s (%s): %r; disconnected", device.peer, device.party, exc)
            device.writer.close()
            return
        self.counts.add("out.events", len(changed))

    def _view(self, party: str, now: datetime) -> View:
        """What ``party`` may see of the others, as CoT with each event's signature, made once for all its devices.

        Its own objects are on its devices already.
        """
        viewer = Caller(party, Role.VIEWER)
        stale_s = 3 * self.service.settings.tak_refresh_s
        events: list[CotEvent] = []
        # Its own left out before they are shown, not after: their read-backs (MGRS, the border) took
        # 17 ms every half second with 1,000 units, only to be thrown away.
        for shown in self.service.assets(viewer, others_only=True):
            events += tr.asset_events(shown, now, stale_s)
        for shown in self.service.zones(viewer, others_only=True):
            events += tr.zone_events(shown, now, stale_s)
        for shown in self.service.aors(viewer, others_only=True):
            events += tr.aor_events(shown, now, stale_s)
        return {e.uid: (e, _signature(e)) for e in events}

    def _alerts(self, party: str, cursor: int, now: datetime) -> tuple[list[CotEvent], int]:
        """Conflicts and escalations ``party`` is told of after ``cursor``, as alerts; and the new cursor."""
        alerts: list[CotEvent] = []
        while True:
            shown, after = self.service.events(Caller(party, Role.VIEWER), cursor, 100, ALERTS)
            alerts += [a for e in shown if (a := self._alert(e, now)) is not None]
            if after == cursor:
                return alerts, cursor
            cursor = after

    def _alert(self, shown: dict[str, Any], now: datetime) -> CotEvent | None:
        data = shown["data"]
        key = (data.get("proposer", data.get("party")), data.get("activity", data.get("id")))
        activity = self.service.picture.activities.get(key)
        if activity is None:
            return None
        west, south, east, north = activity.envelope
        if shown["type"] == "conflict.detected":
            found = data["found"]
            what = f"{found['party']}: {found.get('name') or found.get('object') or 'an object'} ({found.get('disclosure')})"
            text = f"CONFLICT: {activity.party}/{activity.id} ({activity.kind.value}) meets {what}"
        else:
            text = f"ESCALATED: {activity.party}/{activity.id} ({activity.kind.value}) was not answered in time"
        return tr.alert_event(f"{shown['type']}.{shown['seq']}", text, (south + north) / 2, (west + east) / 2, now)


class _Datagrams(asyncio.DatagramProtocol):
    """UDP: each datagram is one message, CoT XML or TAK protocol version 1 mesh (``0xbf 0x01 0xbf``, then a TakMessage)."""

    def __init__(self, gateway: Gateway, party: str) -> None:
        self.gateway, self.party = gateway, party

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        counts = self.gateway.counts
        if len(data) > self.gateway.service.settings.tak_max_message_bytes:
            counts.add("dropped.oversized")
            return
        try:
            if data.startswith(MESH_HEADER):
                counts.add("in.protobuf")
                event = from_proto(data[len(MESH_HEADER) :])
            else:
                counts.add("in.xml")
                event = from_xml(data.strip())
        except CotError as exc:
            counts.add(f"dropped.{exc.reason}")
            return
        if event.type == tr.CHECK:
            counts.add("ignored")  # an answer needs a stream to come back on
            return
        self.gateway.take(self.party, event)


def _report_body(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("name", "received")}


class Latency:
    """For the last reports: seconds from the CoT message read to the report applied (queryable by any check), and from
    the device's own ``time`` to applied (the whole way, meaningful where the device's clock is right)."""

    def __init__(self, keep: int = 100_000) -> None:
        self._read: deque[float] = deque(maxlen=keep)
        self._sent: deque[float] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def note(self, reports: Sequence[dict[str, Any]]) -> None:
        now, wall = time.monotonic(), time.time()
        with self._lock:
            self._read.extend(now - r["received"] for r in reports)
            self._sent.extend(wall - datetime.fromisoformat(r["time"]).timestamp() for r in reports)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            read, sent = sorted(self._read), sorted(self._sent)
        return {"reports": len(read), "from_read": _percentiles(read), "from_device_time": _percentiles(sent)}


def _percentiles(ordered: list[float]) -> dict[str, float]:
    """p50, p99 and max of sorted seconds, in milliseconds."""
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": at(1.0)}


def _linked(event: CotEvent) -> str:
    link = event.detail.find("link")
    return "" if link is None else link.get("uid", "")


_NO_TIME = datetime(2000, 1, 1, tzinfo=UTC)


def _signature(event: CotEvent) -> bytes:
    """What a device was sent, times aside: an object is sent again only when this changes (or at a full refresh)."""
    return to_xml(replace(event, time=_NO_TIME, start=_NO_TIME, stale=_NO_TIME))
