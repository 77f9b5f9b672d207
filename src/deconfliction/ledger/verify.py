"""Verify a record from the outside: recompute the tree from the entries, check every signed head.

Pure: it takes the entries and heads however they were fetched (an HTTP API, a store file)
and says what does not hold, naming the first bad entry. ``deconflict ledger verify``
is its command line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from deconfliction.ledger.heads import head_is_signed
from deconfliction.ledger.merkle import MerkleTree, leaf_hash, verify_consistency


@dataclass(frozen=True, slots=True)
class Entry:
    """An entry as a verifier gets it: its index, its exact bytes, and the leaf hash the store keeps for it (if shown)."""

    index: int
    data: bytes
    stored_leaf: bytes | None = None


class _Row(Protocol):
    seq: int
    leaf: bytes

    @property
    def entry(self) -> bytes: ...


class Rows(Protocol):
    """A store's rows, as ``store.rows(start, end)`` gives them."""

    def rows(self, start: int, end: int) -> Iterable[_Row]: ...


def stored_entries(store: Rows, page: int = 1000) -> Iterator[Entry]:
    """Every entry of a store with the leaf hash kept beside it, page by page, read as it is."""
    start = 0
    while rows := list(store.rows(start, start + page)):
        for row in rows:
            yield Entry(row.seq - 1, row.entry, row.leaf)
        start += page


@dataclass
class Verdict:
    entries: int = 0
    heads: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


ConsistencyProof = Callable[[int, int], list[bytes]]


def verify_record(
    entries: Iterable[Entry], heads: list[dict[str, Any]], public_key: str, consistency: ConsistencyProof | None = None
) -> Verdict:
    """Check the entries (order, bytes against their leaf hashes) and every head (signature, root, consistency).

    ``consistency`` fetches the service's own consistency proof between two sizes; the
    verifier checks it against the signed roots. Without it, the recomputed tree gives it.
    """
    verdict = Verdict()
    tree = MerkleTree()
    for entry in entries:
        problem = _entry_problem(entry, len(tree))
        if problem:
            verdict.problems.append(problem)
            return verdict
        tree.append(leaf_hash(entry.data))
    verdict.entries = len(tree)
    previous: dict[str, Any] | None = None
    for k, head in enumerate(heads):
        problem = _head_problem(k, head, public_key, tree)
        if problem is None and previous is not None:
            problem = _consistency_problem(k, previous, head, consistency or tree.consistency_proof)
        if problem:
            verdict.problems.append(problem)
            return verdict
        previous = head
        verdict.heads += 1
    if not heads:
        verdict.problems.append("no signed tree head to check the entries against")
    return verdict


def _entry_problem(entry: Entry, expected: int) -> str | None:
    if entry.index != expected:
        return f"entry {expected} is missing (the next one is {entry.index})"
    try:
        seq = json.loads(entry.data)["seq"]
    except (ValueError, KeyError, TypeError):
        return f"entry {expected} is not a readable entry"
    if seq != expected + 1:
        return f"entry {expected} is out of order: it holds event {seq}, not {expected + 1}"
    if entry.stored_leaf is not None and leaf_hash(entry.data) != entry.stored_leaf:
        return f"entry {expected} was altered: its bytes no longer hash to the leaf recorded with it"
    return None


def _head_problem(k: int, head: dict[str, Any], public_key: str, tree: MerkleTree) -> str | None:
    size = int(head["tree_size"])
    if not head_is_signed(head, public_key):
        return f"tree head {k} (size {size}) does not carry a valid signature of the node's key"
    if size > len(tree):
        return f"tree head {k} covers {size} entries, the record has {len(tree)}: entries from {len(tree)} on were removed"
    if tree.root(size).hex() != head["root_hash"]:
        return (
            f"tree head {k} (size {size}) does not match the entries: an entry before {size} was altered, "
            "removed or reordered along with its leaf hash"
        )
    return None


def _consistency_problem(k: int, first: dict[str, Any], second: dict[str, Any], proof: ConsistencyProof) -> str | None:
    m, n = int(first["tree_size"]), int(second["tree_size"])
    if n < m:
        return f"tree head {k} (size {n}) is smaller than the head before it (size {m})"
    path = proof(m, n) if m > 0 and m != n else []
    if m > 0 and not verify_consistency(m, n, bytes.fromhex(first["root_hash"]), bytes.fromhex(second["root_hash"]), path):
        return f"tree heads {k - 1} (size {m}) and {k} (size {n}) are not consistent"
    return None
