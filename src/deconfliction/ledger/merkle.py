"""RFC 9162 section 2.1 Merkle tree hashing, with inclusion and consistency proofs.

Written here rather than taken from a library: the few Python Certificate Transparency
packages verify proofs but do not keep a growing tree, and this one must answer proofs
at a million entries in well under a millisecond. Hashes of complete, aligned subtrees
are kept per level (two hashes per leaf in all), so any subtree hash the RFC's recursive
definitions ask for is assembled from O(log n) of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes | bytearray, right: bytes | bytearray) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1): where the RFC splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """``tree.append(leaf_hash(entry))`` in log order; ``root(n)``, ``inclusion_proof(i, n)``, ``consistency_proof(m, n)``."""

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]  # level k: hashes of the complete subtrees of 2**k leaves
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash. The size grows only once every subtree the leaf completes is hashed, so a
        reader in another thread (a head being signed) never sees a size whose hashes are not there yet."""
        index = self._size
        self._levels[0] += leaf
        level = 0
        while index % 2 == 1:  # this leaf completed a subtree: keep its hash one level up
            below = self._levels[level]
            if len(self._levels) == level + 1:
                self._levels.append(bytearray())
            at = (index - 1) * HASH_SIZE
            self._levels[level + 1] += node_hash(below[at : at + HASH_SIZE], below[at + HASH_SIZE : at + 2 * HASH_SIZE])
            index //= 2
            level += 1
        self._size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Add many leaf hashes (a store opening): level by level, each new subtree hashed once, as ``append`` would."""
        self._levels[0] += b"".join(leaves)
        level = 0
        while True:
            below = self._levels[level]
            if len(self._levels) == level + 1:
                self._levels.append(bytearray())
            done, complete = len(self._levels[level + 1]) // HASH_SIZE, len(below) // (2 * HASH_SIZE)
            if done == complete:
                break
            step = 2 * HASH_SIZE
            self._levels[level + 1] += b"".join(
                node_hash(below[at : at + HASH_SIZE], below[at + HASH_SIZE : at + step])
                for at in range(done * step, complete * step, step)
            )
            level += 1
        self._size += len(leaves)

    def leaf(self, index: int) -> bytes:
        return bytes(self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def _hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end])."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            level = n.bit_length() - 1
            at = (start >> level) * HASH_SIZE
            return bytes(self._levels[level][at : at + HASH_SIZE])
        k = _split(n)
        return node_hash(self._hash(start, start + k), self._hash(start + k, end))

    def _check_size(self, size: int, name: str) -> None:
        if not 0 <= size <= len(self):
            raise ValueError(f"{name} {size} is outside the tree of {len(self)} entries")

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first ``size`` entries (default all)."""
        size = len(self) if size is None else size
        self._check_size(size, "tree_size")
        return self._hash(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1."""
        self._check_size(size, "tree_size")
        if not 0 <= index < size:
            raise ValueError(f"index {index} is not in a tree of {size} entries")
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, start + k), self._hash(start + k, end)]
        return [*self._path(m - k, start + k, end), self._hash(start, start + k)]

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """PROOF(first, D[0:second]) of RFC 9162 section 2.1.4.1."""
        self._check_size(second, "second")
        if not 0 < first <= second:
            raise ValueError(f"first {first} must be between 1 and second {second}")
        return self._subproof(first, 0, second, True)

    def _subproof(self, m: int, start: int, end: int, whole: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if whole else [self._hash(start, end)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, whole), self._hash(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self._hash(start, start + k)]


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does ``path`` prove ``leaf`` at ``index`` in the tree of ``size`` with ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: does ``path`` prove the tree of ``first`` a prefix of the tree of ``second``?"""
    if first == second:
        return not path and first_root == second_root
    if not 0 < first < second or not path:
        return False
    if first & (first - 1) == 0:  # a power of two: the first tree is a complete subtree, its root starts the path
        path = [first_root, *path]
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
