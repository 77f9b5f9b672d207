"""Snapshots of the picture: a node that starts from one applies only the log written after it.

Rebuilding the picture from the whole log is the slow part of a start (at a million assets,
two million entries read, decoded and applied: about 20 s). A snapshot is the picture, with
the tokens, as it stood after the log's first ``size`` entries, so a node loads it and
replays only the entries after those. It is a cache of the log, never a source of its own,
and a node uses it only when all of these hold; otherwise it says why in its log and
replays the whole log, so a snapshot can make a start slower, never a picture wrong:

- **Signed.** The file carries an Ed25519 signature by the store's own signing key over
  its header, and the header the payload's SHA-256. Both are checked before anything is
  unpickled: unpickling runs code, so a file the store's key did not sign is never read.
  Whoever holds that key can already sign the record's tree heads as the service.
- **Of this log.** The header names the Merkle root of the log's first ``size`` entries.
  The log only grows, so a snapshot stays good for as long as that prefix is there; one
  made from another history (a restored backup, another centre's file) is refused.
- **Of this code.** The header names a fingerprint of the code that made it (every module
  of the package, and the versions of Python, NumPy and shapely, whose objects it holds):
  after an upgrade the first start replays the whole log.

pickle (not a hand-written format): the picture is several indexes of millions of objects,
and pickle writes and reads them in C. The payload is written to a temporary file and
renamed over the old one after an fsync, so a crash while writing leaves the last good one.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy
import shapely
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAGIC = b"deconfliction picture snapshot\n"
FORMAT = 1


@dataclass(frozen=True)
class Snapshot:
    """The state a rebuild makes from the log's first ``size`` entries, whose Merkle root is ``root``."""

    size: int
    root: bytes
    state: Any  # what the service rebuilds from the log (its picture and tokens), pickled whole


class Refused(Exception):
    """The snapshot cannot be used; the reason says why (the node then replays the whole log)."""


@cache
def code_fingerprint() -> str:
    """What a snapshot's objects depend on: the package's source, and the libraries whose objects it holds."""
    digest = hashlib.sha256(f"{platform.python_version()} numpy {numpy.__version__} shapely {shapely.__version__}".encode())
    package = Path(__file__).parent
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


def write(path: Path, snapshot: Snapshot, key: Ed25519PrivateKey) -> None:
    """Write ``snapshot`` to ``path``, signed with ``key``, in place of any there."""
    payload = pickle.dumps(snapshot.state, protocol=5)
    header = _header(snapshot, payload)
    signature = key.sign(header).hex().encode()
    path.parent.mkdir(parents=True, exist_ok=True)  # a PostgreSQL node's state folder, on its first snapshot
    fd, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=_PARTIAL, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + header + b"\n" + signature + b"\n")
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


_PARTIAL = ".partial"
"""The ending of a snapshot being written, before it is renamed into place."""


def discard_partials(path: Path) -> None:
    """Remove what a writer of ``path`` that was stopped mid-way left (a kill runs no clean-up of its own)."""
    for partial in path.parent.glob(f"{path.name}.*{_PARTIAL}"):
        partial.unlink(missing_ok=True)


def _header(snapshot: Snapshot, payload: bytes) -> bytes:
    fields = {
        "format": FORMAT,
        "code": code_fingerprint(),
        "size": snapshot.size,
        "root": snapshot.root.hex(),
        "bytes": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def read(path: Path, key: Ed25519PublicKey) -> Snapshot:
    """The snapshot at ``path``, its signature, code and payload checked before it is unpickled; else :class:`Refused`.

    Whether it belongs to the log (its root against the log's at its size) is the caller's to check.
    """
    try:
        with path.open("rb") as f:
            return _read(f, key)
    except FileNotFoundError:
        raise Refused(f"there is no snapshot at {path}") from None
    except OSError as exc:
        raise Refused(f"the snapshot at {path} cannot be read: {exc}") from None


def _read(f: Any, key: Ed25519PublicKey) -> Snapshot:
    if f.read(len(MAGIC)) != MAGIC:
        raise Refused("it is not a deconfliction snapshot")
    header, signature = f.readline(4096).rstrip(b"\n"), f.readline(4096).rstrip(b"\n")
    try:
        key.verify(bytes.fromhex(signature.decode("ascii")), header)
    except (InvalidSignature, ValueError, UnicodeDecodeError):
        raise Refused("its signature is not the store's signing key's") from None
    fields = json.loads(header)
    if fields["format"] != FORMAT or fields["code"] != code_fingerprint():
        raise Refused("it was made by another version of deconfliction (or of Python, NumPy or shapely)")
    payload = f.read(fields["bytes"] + 1)
    if len(payload) != fields["bytes"] or hashlib.sha256(payload).hexdigest() != fields["sha256"]:
        raise Refused("its payload is not the one its signed header names (cut short, or changed)")
    return Snapshot(fields["size"], bytes.fromhex(fields["root"]), pickle.loads(payload))
