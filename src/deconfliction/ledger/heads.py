"""Signed tree heads: ``{tree_size, root_hash, timestamp, signature}`` signed with the node's Ed25519 key.

The signature is over the UTF-8 bytes of ``{"root_hash", "timestamp", "tree_size"}`` as
canonical JSON (sorted keys, no spaces), so that anyone can check it with any Ed25519
library; hashes and keys travel as lowercase hex, the timestamp in milliseconds.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deconfliction.ledger.seal import canonical_json


def signed_message(tree_size: int, root_hash: str, timestamp: int) -> bytes:
    return canonical_json({"root_hash": root_hash, "timestamp": timestamp, "tree_size": tree_size}).encode()


def public_key_hex(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key, hex."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def sign_head(key: Ed25519PrivateKey, tree_size: int, root: bytes, timestamp: int) -> dict[str, Any]:
    root_hash = root.hex()
    signature = key.sign(signed_message(tree_size, root_hash, timestamp)).hex()
    return {"tree_size": tree_size, "root_hash": root_hash, "timestamp": timestamp, "signature": signature}


def head_is_signed(head: dict[str, Any], public_key: str) -> bool:
    """Whether ``head`` carries a valid signature by ``public_key`` (hex)."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
        message = signed_message(int(head["tree_size"]), str(head["root_hash"]), int(head["timestamp"]))
        key.verify(bytes.fromhex(str(head["signature"])), message)
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return False
    return True
