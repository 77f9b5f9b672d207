"""RFC 9162 section 2.1 hashing and proofs, held to definitions and verifiers written from the RFC's text.

``tests/ledger/rfc9162.py`` does not import the module under test: MTH, PATH and PROOF there are
the RFC's recursive definitions over plain lists of entries, and its verifiers rebuild roots from a
proof by the same recursion. The module's tree, proofs and verifiers must agree with them
everywhere, and with the Certificate Transparency test vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconfliction.ledger.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, node_hash, verify_consistency, verify_inclusion
from tests.ledger.rfc9162 import independent_consistency, independent_inclusion, mth, rfc_path, rfc_proof, sha256

# ---------------------------------------------------------------- the trees under test

MAX_ROOTS = 70
MAX_PROOFS = 40


def entries(n: int) -> list[bytes]:
    """n distinct entries of varied lengths, the first one empty."""
    return [f"entry {i}".encode() * (1 + i % 3) if i else b"" for i in range(n)]


@pytest.fixture(scope="module")
def data() -> list[bytes]:
    return entries(MAX_ROOTS)


def new_tree(held_from: int | None) -> MerkleTree:
    """A tree that keeps every level (``None``), or, as a store's does, only blocks of 2**held_from leaves and up,
    reading the leaf hashes below that from a list standing for the store (the tree's own appends fill it)."""
    if held_from is None:
        return MerkleTree()
    stored: list[bytes] = []
    tree = MerkleTree(stored=lambda start, end: b"".join(stored[start:end]), held_from=held_from)
    append, extend = tree.append, tree.extend

    def appended(leaf: bytes) -> None:
        stored.append(leaf)  # committed before the tree hears of it, as in a store
        append(leaf)

    def extended(leaves: list[bytes]) -> None:
        stored.extend(leaves)
        extend(leaves)

    tree.append, tree.extend = appended, extended  # type: ignore[method-assign]
    return tree


KINDS = pytest.mark.parametrize("held_from", [None, 2, 3], ids=["every level kept", "blocks of 4", "blocks of 8"])


@pytest.fixture(scope="module", params=[None, 2], ids=["every level kept", "blocks of 4 from the store"])
def kept_from(request: pytest.FixtureRequest) -> int | None:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def tree(data: list[bytes], kept_from: int | None) -> MerkleTree:
    made = new_tree(kept_from)
    for entry in data:
        made.append(leaf_hash(entry))
    return made


def pairs(limit: int) -> Iterator[tuple[int, int]]:
    for n in range(1, limit + 1):
        for m in range(n):
            yield m, n


# ---------------------------------------------------------------- known answers


def test_hashes_are_rfc_9162_with_domain_separation() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    assert leaf_hash(b"abc") != hashlib.sha256(b"abc").digest()


def test_the_empty_tree_root_is_sha256_of_nothing() -> None:
    nothing = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert nothing == EMPTY_ROOT
    assert MerkleTree().root() == nothing
    assert MerkleTree().root(0) == nothing
    assert len(MerkleTree()) == 0


# The Certificate Transparency test leaves (RFC 6962 reference code, merkle_tree_test).
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PATH_0_OF_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]


def test_roots_of_one_to_three_leaves_computed_by_hand() -> None:
    def h(b: bytes) -> bytes:
        return hashlib.sha256(b).digest()

    a, b, c = h(b"\x00" + b""), h(b"\x00" + b"\x00"), h(b"\x00" + b"\x10")
    by_hand = [a, h(b"\x01" + a + b), h(b"\x01" + h(b"\x01" + a + b) + c)]
    tree = MerkleTree()
    for n, leaf in enumerate(CT_LEAVES[:3], start=1):
        tree.append(leaf_hash(leaf))
        assert tree.root() == by_hand[n - 1], n
        assert tree.root().hex() == CT_ROOTS[n - 1], n


def test_the_certificate_transparency_vectors() -> None:
    tree = MerkleTree()
    for n, leaf in enumerate(CT_LEAVES, start=1):
        tree.append(leaf_hash(leaf))
        assert tree.root().hex() == CT_ROOTS[n - 1], n
        assert mth(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1], n  # the definitions written here agree too
    assert [p.hex() for p in tree.inclusion_proof(0, 8)] == CT_PATH_0_OF_8
    assert [p.hex() for p in tree.consistency_proof(1, 8)] == CT_PATH_0_OF_8  # the first tree is leaf 0 itself
    assert tree.consistency_proof(4, 8) == [mth(CT_LEAVES[4:])]  # the first tree is the left half


# ---------------------------------------------------------------- the module against the definitions


def test_roots_of_every_size_up_to_70_match_mth(tree: MerkleTree, data: list[bytes], kept_from: int | None) -> None:
    grown = new_tree(kept_from)
    for n in range(MAX_ROOTS + 1):
        expected = mth(data[:n])
        assert tree.root(n) == expected, n  # a past size of the full tree
        assert grown.root() == expected, n  # the tree as it was when it had n entries
        assert len(grown) == n
        if n < MAX_ROOTS:
            grown.append(leaf_hash(data[n]))
    assert tree.root() == mth(data)


def test_leaves_are_the_leaf_hashes(tree: MerkleTree, data: list[bytes]) -> None:
    assert [tree.leaf(i) for i in range(len(data))] == [sha256(b"\x00" + d) for d in data]


def test_every_inclusion_proof_up_to_40_is_path_and_verifies(tree: MerkleTree, data: list[bytes]) -> None:
    for m, n in pairs(MAX_PROOFS):
        proof = tree.inclusion_proof(m, n)
        assert proof == rfc_path(m, data[:n]), (m, n)
        root, leaf = mth(data[:n]), tree.leaf(m)
        assert independent_inclusion(leaf, m, n, proof, root), (m, n)
        assert verify_inclusion(leaf, m, n, proof, root), (m, n)


def test_every_consistency_proof_up_to_40_is_proof_and_verifies(tree: MerkleTree, data: list[bytes]) -> None:
    for n in range(1, MAX_PROOFS + 1):
        for m in range(1, n + 1):
            proof = tree.consistency_proof(m, n)
            assert proof == rfc_proof(m, data[:n]), (m, n)
            first, second = mth(data[:m]), mth(data[:n])
            assert independent_consistency(m, n, first, second, proof), (m, n)
            assert verify_consistency(m, n, first, second, proof), (m, n)


@KINDS
@settings(max_examples=40, deadline=None)
@given(case=st.integers(min_value=1, max_value=1500).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_proofs_of_larger_trees(case: tuple[int, int], held_from: int | None) -> None:
    n, m = case
    data = entries(n)
    tree = new_tree(held_from)
    for entry in data:
        tree.append(leaf_hash(entry))
    proof = tree.inclusion_proof(m, n)
    assert proof == rfc_path(m, data)
    assert independent_inclusion(tree.leaf(m), m, n, proof, mth(data))
    assert verify_inclusion(tree.leaf(m), m, n, proof, tree.root())


@KINDS
@settings(max_examples=40, deadline=None)
@given(case=st.integers(min_value=2, max_value=1500).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))))
def test_consistency_proofs_of_larger_trees(case: tuple[int, int], held_from: int | None) -> None:
    m, n = case
    data = entries(n)
    tree = new_tree(held_from)
    for entry in data:
        tree.append(leaf_hash(entry))
    proof = tree.consistency_proof(m, n)
    assert proof == rfc_proof(m, data)
    assert independent_consistency(m, n, mth(data[:m]), mth(data), proof)
    assert verify_consistency(m, n, tree.root(m), tree.root(n), proof)


def test_proofs_are_refused_outside_the_tree(tree: MerkleTree) -> None:
    size = len(tree)
    for call in (
        lambda: tree.root(size + 1),
        lambda: tree.root(-1),
        lambda: tree.inclusion_proof(size, size),
        lambda: tree.inclusion_proof(0, size + 1),
        lambda: tree.inclusion_proof(-1, size),
        lambda: tree.inclusion_proof(0, 0),
        lambda: tree.consistency_proof(0, size),
        lambda: tree.consistency_proof(5, 4),
        lambda: tree.consistency_proof(1, size + 1),
    ):
        with pytest.raises(ValueError):
            call()


# ---------------------------------------------------------------- tampered proofs fail


def flipped(h: bytes, at: int = 0) -> bytes:
    return h[:at] + bytes([h[at] ^ 0x01]) + h[at + 1 :]


def both_inclusion(leaf: bytes, m: int, n: int, path: list[bytes], root: bytes) -> tuple[bool, bool]:
    return verify_inclusion(leaf, m, n, path, root), independent_inclusion(leaf, m, n, path, root)


def both_consistency(m: int, n: int, first: bytes, second: bytes, proof: list[bytes]) -> tuple[bool, bool]:
    return verify_consistency(m, n, first, second, proof), independent_consistency(m, n, first, second, proof)


def test_tampered_inclusion_proofs_fail(tree: MerkleTree) -> None:
    refused = (False, False)
    for m, n in pairs(MAX_PROOFS):
        path, root, leaf = tree.inclusion_proof(m, n), tree.root(n), tree.leaf(m)
        for k in range(len(path)):  # a flipped byte anywhere on the path
            bad = [*path[:k], flipped(path[k], k % 32), *path[k + 1 :]]
            assert both_inclusion(leaf, m, n, bad, root) == refused, (m, n, k)
        assert both_inclusion(flipped(leaf, 31), m, n, path, root) == refused, (m, n)
        assert both_inclusion(leaf, m, n, path, flipped(root, 7)) == refused, (m, n)
        for j in range(n):  # a wrong index, and another entry's leaf at this index
            if j != m:
                assert both_inclusion(leaf, j, n, path, root) == refused, (m, n, j)
                assert both_inclusion(tree.leaf(j), m, n, path, root) == refused, (m, n, j)
        for other in range(m + 1, MAX_PROOFS + 1):  # a proof for another size, against that size's head
            if other != n:
                assert both_inclusion(leaf, m, other, path, tree.root(other)) == refused, (m, n, other)
        if path:  # a path cut short, or with one hash too many
            assert both_inclusion(leaf, m, n, path[:-1], root) == refused, (m, n)
            assert both_inclusion(leaf, m, n, path[1:], root) == refused, (m, n)
        assert both_inclusion(leaf, m, n, [*path, root], root) == refused, (m, n)
        assert both_inclusion(leaf, m, n, [root, *path], root) == refused, (m, n)


def test_tampered_consistency_proofs_fail(tree: MerkleTree) -> None:
    refused = (False, False)
    for n in range(2, MAX_PROOFS + 1):
        for m in range(1, n):
            proof, first, second = tree.consistency_proof(m, n), tree.root(m), tree.root(n)
            for k in range(len(proof)):  # a flipped byte anywhere in the proof
                bad = [*proof[:k], flipped(proof[k], (3 * k) % 32), *proof[k + 1 :]]
                assert both_consistency(m, n, first, second, bad) == refused, (m, n, k)
            assert both_consistency(m, n, flipped(first), second, proof) == refused, (m, n)
            assert both_consistency(m, n, first, flipped(second, 31), proof) == refused, (m, n)
            assert both_consistency(m, n, second, first, proof) == refused, (m, n)  # the roots swapped
            for other in range(1, MAX_PROOFS + 1):  # the proof held to heads of other sizes
                if other != m and other < n:
                    assert both_consistency(other, n, tree.root(other), second, proof) == refused, (m, n, other)
                if other != n and other > m:
                    assert both_consistency(m, other, first, tree.root(other), proof) == refused, (m, n, other)
            assert both_consistency(m, n, first, second, proof[:-1]) == refused, (m, n)
            assert both_consistency(m, n, first, second, proof[1:]) == refused, (m, n)
            assert both_consistency(m, n, first, second, [*proof, second]) == refused, (m, n)
            assert both_consistency(m, n, first, second, []) == refused, (m, n)
            assert both_consistency(n, m, second, first, proof) == refused, (m, n)  # first after second


def test_consistency_of_a_tree_with_itself_needs_equal_roots_and_no_proof(tree: MerkleTree) -> None:
    for n in range(1, 10):
        root = tree.root(n)
        assert verify_consistency(n, n, root, root, [])
        assert not verify_consistency(n, n, root, tree.root(n + 1), [])
        assert not verify_consistency(n, n, root, root, [root])


def test_a_tree_that_was_rewritten_is_not_consistent_with_its_past(data: list[bytes]) -> None:
    """The point of it: change one old entry and no proof from the new tree reaches the old head."""
    for changed in range(12):
        forged = MerkleTree()
        for i, entry in enumerate(data[:24]):
            forged.append(leaf_hash(entry + b"!" if i == changed else entry))
        for m in range(changed + 1, 24):
            old_root = mth(data[:m])
            proof = forged.consistency_proof(m, 24)
            assert not verify_consistency(m, 24, old_root, forged.root(), proof), (changed, m)
            assert not independent_consistency(m, 24, old_root, forged.root(), proof), (changed, m)


def test_a_negative_index_fails(tree: MerkleTree) -> None:
    for n in (2, 4, 8, 16, 32):
        path = tree.inclusion_proof(n - 1, n)
        assert verify_inclusion(tree.leaf(n - 1), n - 1, n, path, tree.root(n))
        assert not independent_inclusion(tree.leaf(n - 1), -1, n, path, tree.root(n))
        assert not verify_inclusion(tree.leaf(n - 1), -1, n, path, tree.root(n)), n


@KINDS
@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=5))
def test_extending_a_tree_in_chunks_makes_the_tree_appending_makes(chunks: list[int], held_from: int | None) -> None:
    """A store opening adds its leaves in chunks: every root and proof must be as if each had been appended."""
    leaves = [leaf_hash(e) for e in entries(sum(chunks))]
    appended, extended = MerkleTree(), new_tree(held_from)
    for leaf in leaves:
        appended.append(leaf)
    at = 0
    for size in chunks:
        extended.extend(leaves[at : at + size])
        at += size
    assert len(extended) == len(appended)
    for n in range(len(leaves) + 1):
        assert extended.root(n) == appended.root(n) == mth(entries(n))
    for index in range(len(leaves)):
        assert extended.inclusion_proof(index, len(leaves)) == appended.inclusion_proof(index, len(leaves))
        assert extended.leaf(index) == appended.leaf(index)
    extended.append(leaf_hash(b"after"))
    appended.append(leaf_hash(b"after"))
    assert extended.root() == appended.root()
