"""Entries of the record: what every party may read of an event, and what stays sealed.

The Merkle tree covers every entry, so every party can verify the whole record; but the
record must not reveal what disclosure withholds (a hidden post's position, a coarse
unit's exact point, another party's planned activity, the full answer of someone else's
check). Such fields are taken out of the public entry into *sealed parts*: each part is
kept in the store with a random salt and named readers, and the public entry carries
only its commitment, SHA-256(salt || canonical JSON of the part). The root covers the
commitment; a reader of the part can check it against the clear data.

    entry = canonical JSON of {"seq", "time", "party", "type", "data"}, UTF-8
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from deconfliction.model import Event

SALT_BYTES = 16


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_PLAIN = re.compile(r"[ !#-\[\]-~]*")
"""Printable ASCII without quote or backslash: JSON writes such a string as it is, between quotes."""


_FLOATS_ALIKE = (1e-4, 1e16)
"""Floats whose magnitude is in this range (or zero) orjson writes exactly as the standard encoder does."""


def canonical_json(data: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: one byte string per entry, the same whichever way it is made.

    An object of strings, integers, booleans, null, floats of :data:`_FLOATS_ALIKE` and lists
    and objects of those (a report's data, a check's answer: the hot paths of ingest and checks)
    goes through orjson, byte for byte what the standard encoder writes for those (it writes
    0.00001 where the standard encoder writes 1e-05, and NaN as null where the encoder refuses
    it): ten times faster for a report's data, twice for a check's answer, whose values are
    walked first. Anything else goes through the standard encoder, as every entry did before;
    tests/ledger/test_canonical.py holds the two to the same bytes.
    """
    if type(data) is dict and _alike(data):
        try:
            return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError:  # a key that is not a string, an integer past 64 bits, deep nesting: the encoder decides
            pass
    return _CANONICAL.encode(data)


def _alike(data: dict[str, Any] | list[Any] | tuple[Any, ...]) -> bool:
    """Whether orjson writes every value in ``data``, at any depth, as the standard encoder does."""
    low, high = _FLOATS_ALIKE
    values: Iterable[Any] = data.values() if isinstance(data, dict) else data
    for value in values:
        kind = type(value)
        if kind is str or kind is int or value is None:
            continue
        if kind is float:
            if not (low <= abs(value) < high or value == 0.0):  # NaN fails both
                return False
        elif kind is dict or kind is list or kind is tuple:
            if not _alike(value):
                return False
        elif not isinstance(value, str | int):  # bool is an int; a str enum writes its value
            return False
    return True


def _string(value: str | None) -> str:
    """A JSON string (or null) exactly as :func:`canonical_json` writes it, without the encoder for the common plain case."""
    if value is None:
        return "null"
    return f'"{value}"' if _PLAIN.fullmatch(value) else canonical_json(value)


@dataclass(frozen=True, slots=True)
class Sealed:
    """A part of an event that only ``readers`` (and the centre's auditors) may read; ``()``: auditors only."""

    readers: tuple[str, ...]
    salt: str  # hex
    data: dict[str, Any]
    # ``data`` in canonical JSON, kept by :func:`seal`, which encodes it once for the commitment and the
    # store's row (a check's full answer, the largest part the record seals, was encoded twice).
    encoded: str | None = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        """``data`` in canonical JSON."""
        return canonical_json(self.data) if self.encoded is None else self.encoded

    @property
    def commitment(self) -> str:
        return hashlib.sha256(bytes.fromhex(self.salt) + self.text.encode()).hexdigest()

    def as_json(self) -> dict[str, Any]:
        return {"readers": list(self.readers), "salt": self.salt, "data": self.data}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Sealed:
        return cls(tuple(d["readers"]), d["salt"], d["data"])


Rule = Callable[[dict[str, Any], str | None], list[tuple[tuple[str, ...], Sequence[str]]]]
"""For an event's data and party: the sealed parts to make, as (readers, field names)."""


def _named(party: object) -> tuple[str, ...]:
    return (party,) if isinstance(party, str) else ()


def _not_exact(fields_coarse: Sequence[str], fields_hidden: Sequence[str]) -> Rule:
    """Position-like fields are sealed unless the object is exact; hidden objects also seal what names them."""

    def rule(d: dict[str, Any], party: str | None) -> list[tuple[tuple[str, ...], Sequence[str]]]:
        disclosure = d.get("disclosure", "hidden")
        owner = _named(d.get("party", party))
        if disclosure == "hidden":
            return [(owner, [*fields_coarse, *fields_hidden])]
        return [(owner, fields_coarse)] if disclosure == "coarse" else []

    return rule


def _activity(d: dict[str, Any], party: str | None) -> list[tuple[tuple[str, ...], Sequence[str]]]:
    """Activities concern their proposer and the parties they affect: everything but who proposed is theirs."""
    return [((*_named(d.get("party", party)), *d.get("affected", ())), [k for k in d if k != "party"])]


def _check(d: dict[str, Any], party: str | None) -> list[tuple[tuple[str, ...], Sequence[str]]]:
    """The asker reads what it asked and was answered; the full answer (other parties' findings) is for auditors."""
    return [(_named(d.get("asker", party)), ["query", "answer"]), ((), ["full"])]


def _conflict(d: dict[str, Any], party: str | None) -> list[tuple[tuple[str, ...], Sequence[str]]]:
    """What was found is its owner's; which activity it was found by concerns that activity's parties and the owner."""
    owner = _named(d.get("found", {}).get("owner"))
    concerned = (*_named(d.get("party")), *d.get("affected", ()), *owner)
    return [(owner, ["found"]), (concerned, ["id", "affected", "by"])]


RULES: dict[str, Rule] = {
    "report.accepted": _not_exact(["lat", "lon", "uncertainty_m", "notation", "how"], ["asset"]),
    "asset.registered": _not_exact([], ["id", "name", "kind"]),
    "asset.withdrawn": _not_exact([], ["id"]),
    "position.withdrawn": _not_exact([], ["id"]),
    "zone.declared": _not_exact(["area", "width_m"], ["id", "name", "kind", "window", "altitude_m"]),
    "zone.withdrawn": _not_exact([], ["id"]),
    "token.created": lambda d, party: [((), ["hash"])],
    "token.revoked": lambda d, party: [((), ["hash"])],
    "grant.given": lambda d, party: [((*_named(d.get("party")), *_named(d.get("grantee"))), ["grantee", "what", "level"])],
    "grant.withdrawn": lambda d, party: [((*_named(d.get("party")), *_named(d.get("grantee"))), ["grantee", "what"])],
    "check.asked": _check,
    "psi.answered": lambda d, party: [((*_named(d.get("asker")), *_named(d.get("owner"))), [k for k in d if k != "asker"])],
    "probe.suspected": lambda d, party: [(_named(d.get("party")), [k for k in d if k != "party"])],
    "conflict.detected": _conflict,
}


def seal(event: Event) -> tuple[dict[str, Any], list[Sealed]]:
    """The public data of ``event`` (with ``sealed``: the commitments) and its sealed parts."""
    rule = _activity if event.type.startswith("activity.") else RULES.get(event.type)
    sealing = [] if rule is None else rule(event.data, event.party)
    if not sealing:
        return event.data, []
    public = dict(event.data)
    parts = []
    salts = os.urandom(SALT_BYTES * len(sealing)).hex()  # one call for all the parts
    for i, (readers, names) in enumerate(sealing):
        taken = {name: public.pop(name) for name in names if name in public}
        if taken:
            parts.append(Sealed(readers, salts[2 * SALT_BYTES * i : 2 * SALT_BYTES * (i + 1)], taken, canonical_json(taken)))
    if parts:
        public["sealed"] = [p.commitment for p in parts]
    return public, parts


def parts_json(parts: Sequence[Sealed]) -> str:
    """``canonical_json([p.as_json() for p in parts])``, assembled around each part's data as already
    encoded (keys in sorted order: data, readers, salt), as :func:`entry_bytes` assembles an entry."""
    written = (
        f'{{"data":{p.text},"readers":[{",".join(_string(r) for r in p.readers)}],"salt":{_string(p.salt)}}}' for p in parts
    )
    return f"[{','.join(written)}]"


def unseal(public: dict[str, Any], parts: Sequence[Sealed]) -> dict[str, Any]:
    """The event's full data again: the public fields and every sealed part (``public`` itself when nothing was sealed)."""
    if not parts and "sealed" not in public:
        return public  # most events seal nothing: no copy
    data = {k: v for k, v in public.items() if k != "sealed"}
    for part in parts:
        data.update(part.data)
    return data


def entry_bytes(seq: int, time: str, party: str | None, type_: str, public: dict[str, Any] | str) -> bytes:
    """The exact bytes of a leaf: what the tree hashes and every reader may see.

    ``public`` may come already as canonical JSON text: the entry is then assembled around
    it (keys in sorted order) instead of encoding the data twice on the hot path of ingest.
    """
    data = public if isinstance(public, str) else canonical_json(public)
    return f'{{"data":{data},"party":{_string(party)},"seq":{seq},"time":{_string(time)},"type":{_string(type_)}}}'.encode()


def may_read(part: Sealed, party: str | None) -> bool:
    """Readers named by the part, and the centre (a token of no party: its admin and auditors), may read it."""
    return party is None or party in part.readers
