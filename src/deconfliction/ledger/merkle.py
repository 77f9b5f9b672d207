"""RFC 9162 section 2.1 Merkle tree hashing, with inclusion and consistency proofs.

Written here rather than taken from a library: the few Python Certificate Transparency
packages verify proofs but do not keep a growing tree, and this one must answer proofs
at a million entries in about a millisecond. Hashes of complete, aligned subtrees are kept
per level, so any subtree hash the RFC's recursive definitions ask for is assembled from
O(log n) of them; a store's tree keeps them only for blocks of 1,024 leaves and up, and
reads a block's leaves back from the store when a proof goes inside it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence

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


HELD_FROM = 10
"""A store's tree keeps in memory the hashes of subtrees of 2**10 = 1,024 entries and up (a sixteenth of a
byte an entry); below that it reads a block's leaf hashes from the store when a proof asks for them."""

LeafReader = Callable[[int, int], bytes]
"""``stored(start, end)``: the leaf hashes of entries ``start`` to ``end - 1``, concatenated."""


def _level_above(below: bytes | bytearray) -> bytes:
    """The hashes of each pair of hashes in ``below`` (an odd last one left out: it completes no subtree)."""
    pair = 2 * HASH_SIZE
    return b"".join(
        node_hash(below[at : at + HASH_SIZE], below[at + HASH_SIZE : at + pair]) for at in range(0, len(below) - HASH_SIZE, pair)
    )


def _levels_over(leaves: bytes) -> list[bytes]:
    """Each level of complete, aligned subtrees over ``leaves``, from the leaves up."""
    levels = [leaves]
    while len(levels[-1]) >= 2 * HASH_SIZE:
        levels.append(_level_above(levels[-1]))
    return levels


class MerkleTree:
    """``tree.append(leaf_hash(entry))`` in log order; ``root(n)``, ``inclusion_proof(i, n)``, ``consistency_proof(m, n)``.

    Without ``stored``, every level is kept (two hashes a leaf). With it (a store's tree), only the
    subtrees of ``2**held_from`` leaves and up are kept, with the leaves of the block not yet complete:
    a node that runs for months would otherwise hold 64 bytes for every entry ever written. A proof
    about an entry in a complete block reads that block's leaf hashes through ``stored``; a few blocks
    are cached, as they never change.
    """

    def __init__(self, stored: LeafReader | None = None, held_from: int = HELD_FROM) -> None:
        self._low = held_from if stored is not None else 0
        self._block = 1 << self._low
        self._stored = stored
        self._levels: list[bytearray] = [bytearray()]  # level j: hashes of the complete subtrees of 2**(low + j) leaves
        # The leaves after the last complete block, and where they start: one tuple, replaced whole, so a
        # reader in another thread always sees a pair that belongs together.
        self._tail: tuple[int, bytes] = (0, b"")
        self._size = 0
        self._complete_block = functools.lru_cache(maxsize=32)(self._read_block)
        # The levels over the ``count`` leaves of the block being filled, which starts at ``start``: a root
        # assembles several subtrees of it, and would otherwise hash its leaves once for each.
        self._tail_levels: tuple[tuple[int, int], list[bytes]] = ((0, 0), [b""])

    def __len__(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash. The size grows only once every subtree the leaf completes is hashed, so a
        reader in another thread (a head being signed) never sees a size whose hashes are not there yet."""
        start, tail = self._tail
        tail += leaf
        if len(tail) < self._block * HASH_SIZE:
            self._tail = (start, tail)
        else:
            self._push(_levels_over(tail)[-1])
            self._tail = (start + self._block, b"")
        self._size += 1

    def _push(self, block_hash: bytes) -> None:
        """A complete block's hash joins level 0, and every subtree it completes is hashed on up."""
        index = len(self._levels[0]) // HASH_SIZE
        self._levels[0] += block_hash
        level = 0
        while index % 2 == 1:  # this block completed a subtree: keep its hash one level up
            below = self._levels[level]
            if len(self._levels) == level + 1:
                self._levels.append(bytearray())
            at = (index - 1) * HASH_SIZE
            self._levels[level + 1] += node_hash(below[at : at + HASH_SIZE], below[at + HASH_SIZE : at + 2 * HASH_SIZE])
            index //= 2
            level += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Add many leaf hashes (a store opening): level by level, each new subtree hashed once, as ``append`` would."""
        start, tail = self._tail
        joined = tail + b"".join(leaves)
        step = self._block * HASH_SIZE
        complete = len(joined) // step * step
        if self._low:
            self._levels[0] += b"".join(_levels_over(joined[at : at + step])[-1] for at in range(0, complete, step))
        else:
            self._levels[0] += joined[:complete]
        level = 0
        while True:
            below = self._levels[level]
            if len(self._levels) == level + 1:
                self._levels.append(bytearray())
            done = len(self._levels[level + 1]) // HASH_SIZE
            if done == len(below) // (2 * HASH_SIZE):
                break
            self._levels[level + 1] += _level_above(below[done * 2 * HASH_SIZE :])
            level += 1
        self._tail = (start + complete // HASH_SIZE, joined[complete:])
        self._size += len(leaves)

    def leaf(self, index: int) -> bytes:
        self._check_size(index + 1, "index + 1")
        start, tail = self._tail
        if index >= start:  # in the block being filled: no level to hash
            at = (index - start) * HASH_SIZE
            return tail[at : at + HASH_SIZE]
        at = (index % self._block) * HASH_SIZE
        return self._inside(index >> self._low)[0][at : at + HASH_SIZE]

    def _read_block(self, block: int) -> list[bytes]:
        """The levels inside a complete block, from its leaf hashes as the store holds them."""
        assert self._stored is not None
        first = block * self._block
        leaves = self._stored(first, first + self._block)
        if len(leaves) != self._block * HASH_SIZE:
            raise ValueError(
                f"the store holds {len(leaves) // HASH_SIZE} leaf hashes for entries {first} to {first + self._block - 1}"
            )
        return _levels_over(leaves)

    def _inside(self, block: int) -> list[bytes]:
        """The levels inside block ``block``: the block being filled from memory (as far as it goes), a complete
        one from the store (or, without one, level 0)."""
        start, tail = self._tail
        if block * self._block >= start:
            # Over every leaf held, not just up to ``end``: more leaves change no complete subtree before them, so
            # each subtree a root or proof asks for comes from one hashing. Entries never change, so (start,
            # count) names the same leaves for ever; the pair is replaced whole.
            key, levels = self._tail_levels
            if key != (start, len(tail)):
                levels = _levels_over(tail)
                self._tail_levels = ((start, len(tail)), levels)
            return levels
        if self._stored is None:
            return [bytes(self._levels[0][block * HASH_SIZE : (block + 1) * HASH_SIZE])]
        complete: list[bytes] = self._complete_block(block)
        return complete

    def _hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end])."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            level = n.bit_length() - 1
            if level >= self._low:  # whole blocks: kept in memory
                at = (start >> level) * HASH_SIZE
                return bytes(self._levels[level - self._low][at : at + HASH_SIZE])
            at = ((start % self._block) >> level) * HASH_SIZE
            return self._inside(start >> self._low)[level][at : at + HASH_SIZE]
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
