"""RFC 9162 section 2.1, written for the tests from the RFC's text, independent of ``deconfliction.ledger``.

MTH, PATH and PROOF are the recursive definitions of sections 2.1.1, 2.1.3.1 and 2.1.4.1 over
plain lists of entries. The verifiers rebuild the roots from a proof by the same recursion (the
approach of the RFC 6962 reference code), not by the bit-walking algorithms of 2.1.3.2 and
2.1.4.2 that the module uses. ``canonical`` is the entry encoding: sorted keys, no spaces, UTF-8.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(value: Any) -> bytes:
    """JSON with sorted keys and no spaces, as UTF-8 bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def head_message(tree_size: int, root_hash: str, timestamp: int) -> bytes:
    """The bytes a tree head's signature covers, written out by hand."""
    return f'{{"root_hash":"{root_hash}","timestamp":{timestamp},"tree_size":{tree_size}}}'.encode()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def split_point(n: int) -> int:
    """k, the largest power of two smaller than n (n > 1), found by counting up."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 2.1.1."""
    if not d:
        return sha256(b"")
    if len(d) == 1:
        return sha256(b"\x00" + d[0])
    k = split_point(len(d))
    return sha256(b"\x01" + mth(d[:k]) + mth(d[k:]))


def rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1."""
    if len(d) == 1:
        return []
    k = split_point(len(d))
    if m < k:
        return [*rfc_path(m, d[:k]), mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), mth(d[:k])]


def rfc_proof(m: int, d: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 2.1.4.1."""
    return rfc_subproof(m, d, True)


def rfc_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = split_point(n)
    if m <= k:
        return [*rfc_subproof(m, d[:k], b), mth(d[k:])]
    return [*rfc_subproof(m - k, d[k:], False), mth(d[:k])]


def root_from_path(leaf: bytes, m: int, n: int, path: list[bytes]) -> bytes | None:
    """The root that ``path`` (as PATH(m, D[n]) builds it, deepest first) gives for a leaf hash, or None if it cannot."""
    if not 0 <= m < n or any(len(p) != 32 for p in path):
        return None
    if n == 1:
        return leaf if not path else None
    if not path:
        return None
    k = split_point(n)
    *below, sibling = path
    if m < k:
        left = root_from_path(leaf, m, k, below)
        return None if left is None else sha256(b"\x01" + left + sibling)
    right = root_from_path(leaf, m - k, n - k, below)
    return None if right is None else sha256(b"\x01" + sibling + right)


def independent_inclusion(leaf: bytes, m: int, n: int, path: list[bytes], root: bytes) -> bool:
    return root_from_path(leaf, m, n, path) == root


def roots_from_proof(m: int, n: int, proof: list[bytes], first_root: bytes, whole: bool) -> tuple[bytes, bytes] | None:
    """(MTH(D[0:m]), MTH(D[0:n])) of the subtree at hand as SUBPROOF(m, D[n], whole) built ``proof``, or None."""
    if m == n:
        if whole:  # the subtree is the whole first tree: its hash is the first root, and the proof says nothing of it
            return (first_root, first_root) if not proof else None
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    k = split_point(n)
    *below, sibling = proof
    if m <= k:  # the first tree lies in the left subtree; the right one is new
        sub = roots_from_proof(m, k, below, first_root, whole)
        return None if sub is None else (sub[0], sha256(b"\x01" + sub[1] + sibling))
    sub = roots_from_proof(m - k, n - k, below, first_root, False)  # k < m <= n <= 2k: the first tree splits at k too
    if sub is None:
        return None
    return sha256(b"\x01" + sibling + sub[0]), sha256(b"\x01" + sibling + sub[1])


def independent_consistency(m: int, n: int, first_root: bytes, second_root: bytes, proof: list[bytes]) -> bool:
    if not 0 < m <= n or any(len(p) != 32 for p in proof):
        return False
    return roots_from_proof(m, n, proof, first_root, True) == (first_root, second_root)
