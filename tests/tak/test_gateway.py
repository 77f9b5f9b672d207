"""The TAK gateway, used by real TAK client code: pytak connects (TCP, TLS, UDP) and sends CoT; takproto frames protobuf.

One ``deconflict serve`` process for the module, with a TCP listener for alfa's network and one
for bravo's, a UDP listener for alfa, and a TLS listener whose devices are named by their
client certificates (a throwaway CA made here). The picture before any device connects:

- alfa: a hidden post, an exact clinic, a coarse unit, a no-fire area and an AOR;
- bravo and charlie: nothing yet.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import json
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytak
import pytest
import takproto
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deconfliction.model import Role
from deconfliction.service import ROOT, Caller, Service
from deconfliction.stores import SQLiteStore
from deconfliction.tak.translate import asset_id
from tests.api.test_server_process import Server, free_port

POST, CLINIC, PATROL = (34.5510, 71.0210), (34.5600, 71.0300), (34.5800, 71.0500)
NO_FIRE = {"type": "Polygon", "coordinates": [[[71.06, 34.50], [71.08, 34.50], [71.08, 34.52], [71.06, 34.52], [71.06, 34.50]]]}
AOR = {"type": "Polygon", "coordinates": [[[71.0, 34.4], [71.3, 34.4], [71.3, 34.9], [71.0, 34.9], [71.0, 34.4]]]}
WAIT_S = 10.0

# pytak's TLS client still sets the TLS 1.0/1.1 exclusions by their deprecated flags; that is pytak's, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.OP_NO_SSL:DeprecationWarning")


# ---------------------------------------------------------------- a CA, a server certificate, device certificates


def _name(common: str, organisation: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if organisation:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(parts)


def _certificate(
    subject: x509.Name, issuer: x509.Name, key: Any, signer: Any, ca: bool = False, dns: str | None = None
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    devices: dict[str, tuple[Path, Path]]  # organisation -> (cert, key)


def make_pki(folder: Path, organisations: tuple[str, ...]) -> Pki:
    def write(name: str, cert: x509.Certificate, key: Any) -> tuple[Path, Path]:
        c, k = folder / f"{name}.pem", folder / f"{name}.key"
        c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        k.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        return c, k

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("test centre CA")
    ca = _certificate(ca_name, ca_name, ca_key, ca_key, ca=True)
    ca_path, _ = write("ca", ca, ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert, server_key_path = write(
        "server", _certificate(_name("localhost"), ca_name, server_key, ca_key, dns="localhost"), server_key
    )
    devices = {}
    for organisation in organisations:
        key = ec.generate_private_key(ec.SECP256R1())
        devices[organisation] = write(
            f"device-{organisation}", _certificate(_name(f"{organisation}-device", organisation), ca_name, key, ca_key), key
        )
    return Pki(ca_path, server_cert, server_key_path, devices)


# ---------------------------------------------------------------- the server


def at(point: tuple[float, float]) -> str:
    return f"{point[0]:f}, {point[1]:f}"


@dataclass
class Centre:
    url: str
    tcp: dict[str, int]
    udp: int
    tls: int
    pki: Pki
    tokens: dict[str, str]

    def get(self, path: str, who: str, **params: Any) -> Any:
        response = httpx.get(self.url + path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = self.get("/v1/tak", "admin")["counts"]
        return counts

    def wait_for(self, what: Callable[[], Any], message: str) -> Any:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            found = what()
            if found:
                return found
            time.sleep(0.1)
        pytest.fail(f"{message} within {WAIT_S} s; counts {self.counts()}")


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centre]:
    folder = tmp_path_factory.mktemp("tak")
    db = folder / "centre.db"
    service = Service(SQLiteStore(db))
    tokens = {"admin": service.create_token(ROOT, None, "admin")}
    for party in ("alfa", "bravo", "charlie"):
        service.create_party(ROOT, {"id": party, "name": party.title()})
        tokens[party] = service.create_token(ROOT, party, "liaison")
    alfa = Caller("alfa", Role.LIAISON)
    service.register_asset(alfa, {"id": "post", "kind": "site", "disclosure": "hidden", "position": at(POST)})
    service.register_asset(alfa, {"id": "clinic", "kind": "site", "name": "Clinic", "position": at(CLINIC), "uncertainty_m": 5})
    service.register_asset(alfa, {"id": "patrol", "kind": "unit", "disclosure": "coarse", "position": at(PATROL)})
    service.declare_zone(alfa, {"id": "nfa", "kind": "no_fire_area", "name": "School", "area": NO_FIRE})
    service.declare_aor(alfa, {"id": "east", "area": AOR, "freshness_s": 86_400})
    service.confirm_aor(alfa, "east")
    service.store.close()
    pki = make_pki(folder, ("alfa", "nobody"))
    tcp = {"alfa": free_port(), "bravo": free_port()}
    udp, tls = free_port(), free_port()
    with Server(
        db,
        folder / "server.log",
        args=[
            "--tak",
            f"alfa:{tcp['alfa']}",
            "--tak",
            f"bravo:{tcp['bravo']}",
            "--tak-udp",
            f"alfa:{udp}",
            "--tak-tls",
            str(tls),
        ],
        settings={
            "DECONFLICT_TAK_REFRESH_S": "1",
            "DECONFLICT_CHECK_RATE_PER_MIN": "0",
            "DECONFLICT_TAK_TLS_CERT": str(pki.server_cert),
            "DECONFLICT_TAK_TLS_KEY": str(pki.server_key),
            "DECONFLICT_TAK_TLS_CA": str(pki.ca),
        },
    ) as server:
        yield Centre(server.url, tcp, udp, tls, pki, tokens)


# ---------------------------------------------------------------- a device, as pytak makes it


def pytak_config(**values: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser["device"] = values
    return parser["device"]


class Device:
    """A TAK client: pytak's connection, and CoT read back as XML (or as protobuf, with takproto)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.protobuf = False  # what this device writes; it reads either

    @classmethod
    async def connect(cls, url: str, **tls: str) -> Device:
        reader, writer = await pytak.protocol_factory(pytak_config(COT_URL=url, **tls))
        return cls(reader, writer)

    async def send(self, cot: bytes) -> None:
        self.writer.write(bytes(takproto.xml2proto(cot, takproto.TAKProtoVer.STREAM)) if self.protobuf else cot)
        await self.writer.drain()

    async def _read_one(self) -> ET.Element:
        """The next event on the stream, XML or protobuf (a gateway writes XML until the device speaks protobuf),
        with the encoding it came in as ``via``."""
        head = await self.reader.readexactly(1)
        if head == b"<":
            event = ET.fromstring(head + await self.reader.readuntil(b"</event>"))
            event.set("via", "xml")
            return event
        assert head == b"\xbf", head
        length = bytearray(await self.reader.readexactly(1))
        while length[-1] & 0x80:
            length += await self.reader.readexactly(1)
        size, shift = 0, 0
        for byte in length:
            size |= (byte & 0x7F) << shift
            shift += 7
        message = takproto.parse_proto(bytearray(head + bytes(length) + await self.reader.readexactly(size)))
        e = message.cotEvent
        event = ET.Element("event", uid=e.uid, type=e.type, via="protobuf")
        ET.SubElement(event, "point", lat=repr(e.lat), lon=repr(e.lon), ce=repr(e.ce))
        detail = ET.fromstring(f"<detail>{e.detail.xmlDetail}</detail>")
        event.append(detail)
        return event

    async def wait_for(self, match: Callable[[ET.Element], bool], timeout_s: float = WAIT_S) -> ET.Element:
        async def look() -> ET.Element:
            while True:
                event = await self._read_one()
                if match(event):
                    return event

        return await asyncio.wait_for(look(), timeout_s)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


def sa(
    uid: str, lat: float, lon: float, ce: float = 10.0, callsign: str = "", stale_s: int = 120, type_: str = "a-f-G-U-C"
) -> bytes:
    """A device's own position, as pytak generates it."""
    made = pytak.gen_cot(
        lat=lat, lon=lon, ce=ce, hae=100, le=10, uid=uid, stale=stale_s, cot_type=type_, callsign=callsign or uid
    )
    assert made is not None
    return made


def uid_is(uid: str) -> Callable[[ET.Element], bool]:
    return lambda e: e.get("uid") == uid


def point(event: ET.Element) -> tuple[float, float, float]:
    p = event.find("point")
    assert p is not None
    return float(p.get("lat", "nan")), float(p.get("lon", "nan")), float(p.get("ce", "nan"))


def own_asset(centre: Centre, party: str, asset: str) -> dict[str, Any] | None:
    return next((a for a in centre.get("/v1/assets", party) if a["party"] == party and a["id"] == asset), None)


def reported(centre: Centre, party: str, asset: str) -> dict[str, Any] | None:
    """The party's asset once a report placed it. The gateway registers a new uid and then reports its position in
    two writes: an asset seen between them has no position yet."""
    found = own_asset(centre, party, asset)
    return found if found is not None and "position" in found else None


# ---------------------------------------------------------------- in


def test_a_devices_position_is_its_partys_report_with_ce_as_uncertainty(centre: Centre) -> None:
    async def go() -> None:
        device = await Device.connect(f"tcp://127.0.0.1:{centre.tcp['bravo']}")
        await device.send(sa("ANDROID-bravo-1", 34.6000, 70.9000, ce=12.5, callsign="Bravo 6"))
        await device.close()

    asyncio.run(go())
    named = asset_id("ANDROID-bravo-1")
    assert named.startswith("android-bravo-1-") and named != asset_id("android-bravo-1"), "uids differing in case stay apart"
    asset = centre.wait_for(lambda: reported(centre, "bravo", named), "bravo's device position was not a report")
    assert (asset["kind"], asset["name"]) == ("unit", "Bravo 6")
    assert (asset["position"]["lat"], asset["position"]["lon"], asset["uncertainty_m"]) == (34.6, 70.9, 12.5)
    assert asset["how"] == "m-g" and asset["entered_by_hand"] is False
    lasts = datetime.fromisoformat(asset["stale_at"]) - datetime.fromisoformat(asset["time"])
    assert abs(lasts - timedelta(seconds=120)) < timedelta(seconds=1)


def test_another_partys_devices_see_what_its_disclosure_lets_them_and_nothing_hidden(centre: Centre) -> None:
    """bravo's device: alfa's exact clinic where it is, the coarse patrol at its cell's centre, never the hidden post."""

    async def go() -> dict[str, ET.Element]:
        device = await Device.connect(f"tcp://127.0.0.1:{centre.tcp['bravo']}")
        seen: dict[str, ET.Element] = {}
        wanted = {
            "deconfliction.alfa.clinic",
            "deconfliction.alfa.patrol",
            "deconfliction.alfa.zone.nfa",
            "deconfliction.alfa.aor.east",
        }

        def collect(event: ET.Element) -> bool:
            seen[str(event.get("uid"))] = event
            return wanted <= set(seen)

        await device.wait_for(collect)
        await device.close()
        return seen

    seen = asyncio.run(go())
    assert not any("post" in uid for uid in seen), "a hidden post is never sent"
    clinic = seen["deconfliction.alfa.clinic"]
    assert clinic.get("type") == "a-n-G-I" and point(clinic) == (CLINIC[0], CLINIC[1], 5.0)
    lat, lon, ce = point(seen["deconfliction.alfa.patrol"])
    assert ce > 1000 and (lat, lon) != PATROL, "a coarse unit is drawn at its cell's centre, with the cell's reach as ce"
    zone = seen["deconfliction.alfa.zone.nfa"]
    assert zone.get("type") == "u-d-f" and len(zone.findall("detail/link")) == 5
    stale = datetime.fromisoformat(str(clinic.get("stale")))
    assert timedelta(seconds=1) < stale - datetime.fromisoformat(str(clinic.get("time"))) <= timedelta(seconds=3)


def test_a_protobuf_device_is_understood_and_answered_in_protobuf(centre: Centre) -> None:
    async def go() -> ET.Element:
        device = await Device.connect(f"tcp://127.0.0.1:{centre.tcp['bravo']}")
        device.protobuf = True
        await device.send(sa("bravo-proto-1", 34.6100, 70.9100, ce=7.0))
        # Sent in XML until the gateway has read the device's protobuf, then again (a full refresh) in protobuf.
        clinic = await device.wait_for(lambda e: uid_is("deconfliction.alfa.clinic")(e) and e.get("via") == "protobuf")
        await device.close()
        return clinic

    clinic = asyncio.run(go())
    assert point(clinic)[:2] == CLINIC
    asset = centre.wait_for(lambda: reported(centre, "bravo", "bravo-proto-1"), "the protobuf report was not taken")
    assert asset["uncertainty_m"] == 7.0


def test_a_check_asked_from_a_device_comes_back_as_an_alert(centre: Centre) -> None:
    """Fires at alfa's hidden post, asked by bravo's device: conflict, with alfa named and nothing placed."""
    check = sa("bravo-check-1", *POST, type_="t-x-deconflict-check").replace(
        b"</detail>", b'<deconflict kind="fires" radius_m="50"/></detail>'
    )

    async def go() -> ET.Element:
        device = await Device.connect(f"tcp://127.0.0.1:{centre.tcp['bravo']}")
        await device.send(check)
        answer = await device.wait_for(lambda e: e.get("type") == "b-a-deconflict-answer")
        await device.close()
        return answer

    answer = asyncio.run(go())
    status = answer.find("detail/deconflict")
    assert status is not None and status.get("status") == "conflict" and status.get("asked") == "bravo-check-1"
    remarks = answer.findtext("detail/remarks") or ""
    assert "alfa" in remarks and "hidden" in remarks and "post" not in remarks
    record = int(str(status.get("record")))
    entries = centre.get("/v1/ledger/entries", "bravo", start=record - 1, end=record)["entries"]
    assert entries[0]["event"]["type"] == "check.asked", "the device's check is in the record"


def delete(uid: str) -> bytes:
    """A ``t-x-d-d`` naming ``uid``, as ATAK sends when a marker is deleted."""
    event = ET.fromstring(sa("delete-" + uid, 0.0, 0.0, type_="t-x-d-d"))
    detail = event.find("detail")
    assert detail is not None
    ET.SubElement(detail, "link", uid=uid, relation="none", type="a-f-G-U-C")
    return ET.tostring(event)


def test_a_delete_withdraws_the_devices_position_and_other_partys_uids_are_refused(centre: Centre) -> None:
    async def go() -> None:
        device = await Device.connect(f"tcp://127.0.0.1:{centre.tcp['bravo']}")
        await device.send(sa("bravo-gone-1", 34.6200, 70.9200))
        await asyncio.sleep(1.0)
        await device.send(delete("bravo-gone-1"))
        await device.send(sa("deconfliction.alfa.clinic", 34.0, 70.0))  # alfa's clinic, as bravo was sent it
        await device.send(delete("deconfliction.alfa.clinic"))
        await device.close()

    before = centre.counts().get("refused.foreign", 0)
    asyncio.run(go())
    centre.wait_for(lambda: centre.counts().get("refused.foreign", 0) == before + 2, "uids of another party were not refused")
    gone = centre.wait_for(
        lambda: (a := own_asset(centre, "bravo", "bravo-gone-1")) and "position" not in a and a, "not withdrawn"
    )
    assert gone["id"] == "bravo-gone-1"
    clinic = own_asset(centre, "alfa", "clinic")
    assert clinic is not None and clinic["position"]["lat"] == CLINIC[0]


def test_a_malformed_message_is_dropped_and_the_device_goes_on(centre: Centre) -> None:
    async def go() -> None:
        device = await Device.connect(f"tcp://127.0.0.1:{centre.tcp['bravo']}")
        await device.send(sa("bravo-bad-1", 34.0, 70.0).replace(b'lat="34.0"', b'lat="north"'))
        await device.send(b'<!DOCTYPE x [<!ENTITY a "b">]><event uid="y" type="a-f-G">&a;</event>')
        await device.send(sa("bravo-after-1", 34.6300, 70.9300))
        await device.close()

    before = centre.counts()
    asyncio.run(go())
    centre.wait_for(lambda: reported(centre, "bravo", "bravo-after-1"), "the report after the bad messages was not taken")
    after = centre.counts()
    assert after.get("dropped.bad_point", 0) == before.get("dropped.bad_point", 0) + 1
    assert after.get("dropped.unsafe_xml", 0) == before.get("dropped.unsafe_xml", 0) + 1


def test_a_stream_that_breaks_its_framing_is_closed(centre: Centre) -> None:
    async def go() -> bytes:
        device = await Device.connect(f"tcp://127.0.0.1:{centre.tcp['bravo']}")
        device.writer.write(b"\xbf\xff\xff\xff\xff\x0f")  # a protobuf message of 4 GiB
        await device.writer.drain()
        rest = await asyncio.wait_for(device.reader.read(), WAIT_S)  # everything until the server closes
        await device.close()
        return rest

    before = centre.counts().get("closed.oversized", 0)
    asyncio.run(go())
    assert centre.counts()["closed.oversized"] == before + 1
    assert centre.get("/healthz", "admin") is not None, "the gateway serves on"


def test_udp_datagrams_are_reports_of_the_listeners_party(centre: Centre) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(sa("alfa-udp-1", 34.6400, 71.1000, ce=3.0), ("127.0.0.1", centre.udp))
        proto = takproto.xml2proto(sa("alfa-udp-2", 34.6410, 71.1010, ce=2.0), takproto.TAKProtoVer.MESH)
        udp.sendto(bytes(proto), ("127.0.0.1", centre.udp))
    asset = centre.wait_for(lambda: reported(centre, "alfa", "alfa-udp-1"), "the UDP report was not taken")
    assert asset["uncertainty_m"] == 3.0
    mesh = centre.wait_for(lambda: reported(centre, "alfa", "alfa-udp-2"), "the UDP protobuf (mesh) report was not taken")
    assert mesh["uncertainty_m"] == 2.0


def test_a_tls_device_is_its_certificates_party_and_one_without_a_known_party_is_refused(centre: Centre) -> None:
    def tls(organisation: str) -> dict[str, str]:
        cert, key = centre.pki.devices[organisation]
        return {
            "PYTAK_TLS_CLIENT_CERT": str(cert),
            "PYTAK_TLS_CLIENT_KEY": str(key),
            "PYTAK_TLS_CLIENT_CAFILE": str(centre.pki.ca),
        }

    async def go() -> bytes:
        alfa = await Device.connect(f"tls://localhost:{centre.tls}", **tls("alfa"))
        await alfa.send(sa("alfa-tls-1", 34.6500, 71.1100, ce=4.0))
        await alfa.close()
        nobody = await Device.connect(f"tls://localhost:{centre.tls}", **tls("nobody"))
        rest = await asyncio.wait_for(nobody.reader.read(), WAIT_S)
        await nobody.close()
        return rest

    before = centre.counts().get("refused.no_party", 0)
    assert asyncio.run(go()) == b"", "a device whose certificate names no party is closed at once"
    asset = centre.wait_for(lambda: reported(centre, "alfa", "alfa-tls-1"), "the TLS device's report was not alfa's")
    assert asset["uncertainty_m"] == 4.0
    assert centre.counts()["refused.no_party"] == before + 1


def test_the_gateway_status_is_for_the_server_admin(centre: Centre) -> None:
    status = centre.get("/v1/tak", "admin")
    assert {(x["transport"], x["party"]) for x in status["listeners"]} >= {
        ("tcp", "alfa"),
        ("tcp", "bravo"),
        ("udp", "alfa"),
        ("tls", None),
    }
    refused = httpx.get(centre.url + "/v1/tak", headers={"Authorization": f"Bearer {centre.tokens['bravo']}"}, timeout=10)
    assert refused.status_code == 403, json.dumps(refused.json())


def test_a_device_that_negotiates_version_1_is_answered_and_sent_protobuf(centre: Centre) -> None:
    request = ET.fromstring(sa("negotiate-1", 0.0, 0.0, type_="t-x-takp-q"))
    detail = request.find("detail")
    assert detail is not None
    ET.SubElement(ET.SubElement(detail, "TakControl"), "TakRequest", version="1")

    async def go() -> tuple[ET.Element, ET.Element]:
        device = await Device.connect(f"tcp://127.0.0.1:{centre.tcp['bravo']}")
        await device.send(ET.tostring(request))
        response = await device.wait_for(lambda e: e.get("type") == "t-x-takp-r")
        device.protobuf = True  # from here on both sides write TAK protocol version 1
        after: list[ET.Element] = []
        clinic = await device.wait_for(lambda e: after.append(e) is None and e.get("uid") == "deconfliction.alfa.clinic")
        assert {e.get("via") for e in after} == {"protobuf"}, "nothing in XML after the switch"
        await device.close()
        return response, clinic

    response, clinic = asyncio.run(go())
    assert response.find("detail/TakControl/TakResponse").get("status") == "true"  # type: ignore[union-attr]
    assert point(clinic)[:2] == CLINIC


def test_a_unit_entering_an_active_fire_mission_alerts_its_partys_devices(centre: Centre) -> None:
    """charlie's fires are under way (overridden) where alfa's unit then reports itself: alfa's device is alerted."""
    headers = {"Authorization": f"Bearer {centre.tokens['charlie']}"}
    target = (34.7000, 71.2000)
    now = datetime.now(UTC)
    window = {"start": (now - timedelta(minutes=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}
    body = {"id": "fm-1", "kind": "fires", "purpose": "registration", "volumes": [{"position": at(target), "window": window}]}

    def with_key(path: str, data: dict[str, Any]) -> None:
        refused = httpx.post(centre.url + path, json=data, headers=headers, timeout=10)
        assert refused.status_code == 409, refused.text  # no picture key yet: the fresh one comes with the refusal
        made = httpx.post(centre.url + path, json=data | {"key": refused.json()["error"]["key"]}, headers=headers, timeout=10)
        assert made.is_success, made.text

    with_key("/v1/activities", body)
    with_key("/v1/activities/charlie/fm-1/activate", {"override": "troops in contact"})

    async def go() -> ET.Element:
        device = await Device.connect(f"tcp://127.0.0.1:{centre.tcp['alfa']}")
        await asyncio.sleep(0.5)  # connected before the report: alerts are of what happens from now on
        await device.send(sa("alfa-walker-1", *target, ce=5.0, callsign="Walker"))
        alert = await device.wait_for(lambda e: e.get("type") == "b-a-deconflict-conflict")
        await device.close()
        return alert

    alert = asyncio.run(go())
    remarks = alert.findtext("detail/remarks") or ""
    assert remarks.startswith("CONFLICT: charlie/fm-1 (fires) meets alfa: Walker"), remarks
    lat, lon, _ = point(alert)
    assert abs(lat - target[0]) < 0.01 and abs(lon - target[1]) < 0.01
