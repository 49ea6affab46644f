#!/usr/bin/python3
"""Self-test of rfc6962.py, the independent verifier of the audit log's proofs.

The proofs to verify are made here by the definitions of RFC 6962 read
literally: MTH (section 2.1), PATH (section 2.1.1) and PROOF / SUBPROOF
(section 2.1.2), recursive over the list of leaves, with hashlib directly.
For every tree of 1 to 40 leaves, every leaf's audit path and the
consistency proof between every pair of sizes verify; every single-bit
flip of a proof hash, a wrong index, a wrong size, a wrong root or leaf, a
truncated and an extended proof do not. Fixed vectors from the Certificate
Transparency test tree pin the hashing to what other implementations
compute.

Runs as `python3 tests/python/rfc6962_test.py` (ctest: Rfc6962PythonSelfTest).
"""

import hashlib
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rfc6962

# The largest tree the exhaustive tests build.
MAX_SIZE = 40
# Up to this size every bit of every proof hash is flipped in turn; beyond
# it ten bits of each hash (the first and last bit, and one in each of eight
# bytes spread over the hash), which keeps the test to seconds. A hash is
# opaque to the verifier: what matters is that every hash of every proof
# is flipped. MEDVAULT_RFC6962_EXHAUSTIVE=1 flips every bit at every size
# (about a minute).
EVERY_BIT_SIZE = MAX_SIZE if os.environ.get("MEDVAULT_RFC6962_EXHAUSTIVE") == "1" else 16

# The RFC 6962 test tree of Certificate Transparency implementations: its
# eight leaves, and the root of the tree of the first n of them for n = 0
# to 8. Data from transparency-dev/merkle (the Merkle code of Trillian),
# testonly/constants.go, LeafInputs() and RootHashes() (commit
# 582a6ad190b6848f1d26f8bf08ddef29955d9db1); the same roots are in its
# proof/verify_test.go and in Trillian's older merkle tests.
REFERENCE_LEAVES = [bytes.fromhex(h) for h in (
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]
REFERENCE_ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]

# Known proofs in that tree, from transparency-dev/merkle
# proof/verify_test.go (commit 02194e9afb6c1d95b5381350007963aa70fff472),
# inclusionProofs and consistencyProofs (its leaf numbers there count from
# 1; here they are 0-based indices).
REFERENCE_INCLUSION = [
    # (leaf_index, tree_size, audit_path)
    (0, 8, ("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")),
    (5, 8, ("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
    (2, 3, ("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",)),
    (1, 5, ("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")),
]
REFERENCE_CONSISTENCY = [
    # (first_size, second_size, proof)
    (1, 8, ("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")),
    (6, 8, ("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
    (2, 5, ("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")),
    (6, 7, ("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
]

# A hash that is no node of any tree here.
SOME_HASH = hashlib.sha256(b"not a node of the tree").digest()


# --- RFC 6962 section 2.1, read literally ----------------------------------

def naive_leaf_hash(leaf):
    return hashlib.sha256(b"\x00" + leaf).digest()


def naive_node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n):
    """k: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    """MTH(D[n])."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return naive_leaf_hash(leaves[0])
    k = split(n)
    return naive_node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    """PATH(m, D[n]) as (hash, side) pairs, side being where the sibling is."""
    n = len(leaves)
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return path(m, leaves[:k]) + [(mth(leaves[k:]), "right")]
    return path(m - k, leaves[k:]) + [(mth(leaves[:k]), "left")]


def proof(m, leaves):
    """PROOF(m, D[n]) as (hash, role) pairs, 0 < m <= n.

    The role says what the hash is to the two trees: "start", the root of
    a subtree that both contain, from which the verifier starts; "left", a
    subtree to the left that both contain; "right", a subtree to the right
    that only the second contains. Two pairs of sizes whose proofs have the
    same roles make the verifier compute the same thing.
    """
    return subproof(m, leaves, True)


def subproof(m, leaves, b):
    n = len(leaves)
    if m == n:
        return [] if b else [(mth(leaves), "start")]
    k = split(n)
    if m <= k:
        return subproof(m, leaves[:k], b) + [(mth(leaves[k:]), "right")]
    return subproof(m - k, leaves[k:], False) + [(mth(leaves[:k]), "left")]


def path_shape(m, n):
    """The sides of PATH(m, D[n]) without the hashes, for any size."""
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return path_shape(m, k) + ["right"]
    return path_shape(m - k, n - k) + ["left"]


def proof_shape(m, n, b=True):
    """The roles of PROOF(m, D[n]) without the hashes, for any sizes."""
    if m == n:
        return [] if b else ["start"]
    k = split(n)
    if m <= k:
        return proof_shape(m, k, b) + ["right"]
    return proof_shape(m - k, n - k, False) + ["left"]


def hashes(pairs):
    return [h for h, _ in pairs]


def shape(pairs):
    return [tag for _, tag in pairs]


# --- Helpers ------------------------------------------------------------------

def outcome(verify, *args):
    """True or False as `verify` answers, or "malformed" for ValueError."""
    try:
        result = verify(*args)
    except ValueError:
        return "malformed"
    if not isinstance(result, bool):
        raise AssertionError("the verifier answered %r, not a bool" % (result,))
    return result


def flips(hash_list, size):
    """Copies of `hash_list` with one bit of one hash flipped.

    Every bit of every hash for trees of up to EVERY_BIT_SIZE leaves, ten
    bits of every hash beyond.
    """
    for i, h in enumerate(hash_list):
        bits = range(8 * len(h))
        if size > EVERY_BIT_SIZE:
            bits = [0, 8 * len(h) - 1] + [byte * 8 + byte % 8 for byte in range(1, 32, 4)]
        for bit in bits:
            flipped = bytearray(h)
            flipped[bit // 8] ^= 1 << (bit % 8)
            yield hash_list[:i] + [bytes(flipped)] + hash_list[i + 1:]


def test_leaves(count):
    """`count` distinct leaves of various lengths, the empty one first."""
    return [bytes([i]) * (i % 7) + (b"event %d" % i if i else b"") for i in range(count)]


class HashingTest(unittest.TestCase):
    """The hashing and MTH against the published Certificate Transparency tree."""

    def test_empty_tree_and_prefixes(self):
        self.assertEqual(rfc6962.empty_root(), REFERENCE_ROOTS[0])
        self.assertEqual(rfc6962.root_from_leaves([]), REFERENCE_ROOTS[0])
        self.assertEqual(rfc6962.leaf_hash(b""), REFERENCE_ROOTS[1])
        self.assertEqual(rfc6962.node_hash(rfc6962.leaf_hash(b""), rfc6962.leaf_hash(b"\x00")),
                         REFERENCE_ROOTS[2])

    def test_reference_roots(self):
        for n, root in enumerate(REFERENCE_ROOTS):
            self.assertEqual(rfc6962.root_from_leaves(REFERENCE_LEAVES[:n]).hex(), root.hex(),
                             "root of the first %d reference leaves" % n)
            self.assertEqual(mth(REFERENCE_LEAVES[:n]), root,
                             "the test's own MTH of the first %d reference leaves" % n)

    def test_roots_agree_with_the_naive_mth(self):
        leaves = test_leaves(MAX_SIZE * 3)
        for n in range(len(leaves) + 1):
            self.assertEqual(rfc6962.root_from_leaves(leaves[:n]), mth(leaves[:n]), "size %d" % n)
            self.assertEqual(
                rfc6962.root_from_leaf_hashes([naive_leaf_hash(x) for x in leaves[:n]]),
                mth(leaves[:n]), "size %d from leaf hashes" % n)

    def test_split(self):
        for n, k in ((2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512),
                     ((1 << 63) + 1, 1 << 63)):
            self.assertEqual(rfc6962.largest_power_of_two_below(n), k, "n = %d" % n)
        self.assertRaises(ValueError, rfc6962.largest_power_of_two_below, 1)


class ReferenceProofTest(unittest.TestCase):
    """The published proofs of the reference tree verify, and the naive
    definitions here make exactly them."""

    def test_reference_inclusion_proofs(self):
        for index, size, audit_path in REFERENCE_INCLUSION:
            audit_path = [bytes.fromhex(h) for h in audit_path]
            self.assertEqual(hashes(path(index, REFERENCE_LEAVES[:size])), audit_path,
                             "PATH(%d, D[%d])" % (index, size))
            self.assertIs(rfc6962.verify_inclusion(
                index, size, rfc6962.leaf_hash(REFERENCE_LEAVES[index]), audit_path,
                REFERENCE_ROOTS[size]), True, "leaf %d of %d" % (index, size))

    def test_reference_consistency_proofs(self):
        for first, second, consistency in REFERENCE_CONSISTENCY:
            consistency = [bytes.fromhex(h) for h in consistency]
            self.assertEqual(hashes(proof(first, REFERENCE_LEAVES[:second])), consistency,
                             "PROOF(%d, D[%d])" % (first, second))
            self.assertIs(rfc6962.verify_consistency(
                first, second, REFERENCE_ROOTS[first], REFERENCE_ROOTS[second], consistency),
                True, "from %d to %d" % (first, second))


class InclusionTest(unittest.TestCase):
    """Every audit path of every tree of 1 to MAX_SIZE leaves."""

    @classmethod
    def setUpClass(cls):
        cls.leaves = test_leaves(MAX_SIZE)
        cls.leaf_hashes = [naive_leaf_hash(x) for x in cls.leaves]
        cls.roots = [mth(cls.leaves[:n]) for n in range(MAX_SIZE + 1)]
        # paths[n][m]: PATH(m, D[n]) as (hash, side) pairs.
        cls.paths = [None] + [[path(m, cls.leaves[:n]) for m in range(n)]
                              for n in range(1, MAX_SIZE + 1)]

    def verify(self, m, n, audit_path, root=None, leaf_hash=None):
        return outcome(rfc6962.verify_inclusion, m, n,
                       self.leaf_hashes[m] if leaf_hash is None else leaf_hash, audit_path,
                       self.roots[n] if root is None else root)

    def test_every_path_verifies(self):
        for n in range(1, MAX_SIZE + 1):
            for m in range(n):
                self.assertIs(self.verify(m, n, hashes(self.paths[n][m])), True,
                              "leaf %d of %d" % (m, n))

    def test_every_bit_flip_fails(self):
        for n in range(1, MAX_SIZE + 1):
            for m in range(n):
                for bad in flips(hashes(self.paths[n][m]), n):
                    self.assertIs(self.verify(m, n, bad), False,
                                  "leaf %d of %d with a bit flipped" % (m, n))

    def test_wrong_leaf_or_root_fails(self):
        for n in range(1, MAX_SIZE + 1):
            for m in range(n):
                good = hashes(self.paths[n][m])
                self.assertIs(self.verify(m, n, good, leaf_hash=SOME_HASH), False)
                self.assertIs(self.verify(m, n, good, root=SOME_HASH), False)
                self.assertIs(self.verify(m, n, good, root=rfc6962.empty_root()), False)
                for other in range(1, MAX_SIZE + 1):
                    if other != n:
                        self.assertIs(self.verify(m, n, good, root=self.roots[other]), False,
                                      "leaf %d of %d against the root of %d" % (m, n, other))

    def test_wrong_index_fails(self):
        for n in range(1, MAX_SIZE + 1):
            for m in range(n):
                good = hashes(self.paths[n][m])
                for other in range(n):
                    if other != m:
                        self.assertIn(self.verify(other, n, good, leaf_hash=self.leaf_hashes[m]),
                                      (False, "malformed"),
                                      "leaf %d's path of %d claimed as leaf %d's" % (m, n, other))
                for other in (n, n + 5, -1):
                    self.assertEqual(self.verify(other, n, good, leaf_hash=self.leaf_hashes[m]),
                                     "malformed", "index %d in a tree of %d" % (other, n))

    def test_wrong_size_fails(self):
        # An audit path does not commit to the tree size by itself: where
        # two sizes give a leaf the same siblings on the same sides, the
        # same path proves it in both (the signed tree head binds the size
        # to the root). Every other wrong size must fail.
        for n in range(1, MAX_SIZE + 1):
            for m in range(n):
                good = hashes(self.paths[n][m])
                for other in range(1, MAX_SIZE * 2 + 1):
                    if other == n:
                        continue
                    answer = self.verify(m, other, good, root=self.roots[n])
                    if m < other and path_shape(m, other) == shape(self.paths[n][m]):
                        self.assertIs(answer, True, "same shape: leaf %d, sizes %d and %d"
                                      % (m, n, other))
                    else:
                        self.assertIn(answer, (False, "malformed"),
                                      "leaf %d's path of %d claimed for size %d" % (m, n, other))
                self.assertEqual(self.verify(m, 0, good, root=self.roots[n]), "malformed",
                                 "size 0")

    def test_truncated_or_extended_path_is_malformed(self):
        for n in range(1, MAX_SIZE + 1):
            for m in range(n):
                good = hashes(self.paths[n][m])
                wrong = [good + [SOME_HASH], [SOME_HASH] + good, good + [self.roots[n]]]
                if good:
                    wrong += [good[:-1], good[1:], good[:1] + good,
                              good[:1] + [SOME_HASH] + good[1:]]
                for bad in wrong:
                    self.assertEqual(self.verify(m, n, bad), "malformed",
                                     "leaf %d of %d, %d hashes instead of %d"
                                     % (m, n, len(bad), len(good)))

    def test_bad_hash_sizes_are_malformed(self):
        good = hashes(self.paths[7][3])
        short = good[0][:31]
        self.assertEqual(self.verify(3, 7, [short] + good[1:]), "malformed")
        self.assertEqual(self.verify(3, 7, good[:-1] + [good[-1] + b"\x00"]), "malformed")
        self.assertEqual(self.verify(3, 7, good, leaf_hash=b""), "malformed")
        self.assertEqual(self.verify(3, 7, good, root=self.roots[7][:16]), "malformed")
        self.assertEqual(self.verify(3, 7, [h.hex() for h in good]), "malformed")

    def test_single_leaf_tree(self):
        self.assertIs(rfc6962.verify_inclusion(0, 1, self.leaf_hashes[0], [], self.roots[1]),
                      True)
        self.assertIs(rfc6962.verify_inclusion(0, 1, self.leaf_hashes[1], [], self.roots[1]),
                      False)

    def test_naive_path_lengths_match_the_rfc_count(self):
        for n in range(1, MAX_SIZE + 1):
            for m in range(n):
                self.assertEqual(rfc6962.inclusion_proof_size(m, n), len(self.paths[n][m]))
        # And for sizes too big to build: log2 of a power of two.
        self.assertEqual(rfc6962.inclusion_proof_size(0, 1 << 40), 40)
        self.assertEqual(rfc6962.inclusion_proof_size((1 << 40) - 1, 1 << 40), 40)
        self.assertEqual(rfc6962.inclusion_proof_size(1 << 40, (1 << 40) + 1), 1)


class ConsistencyTest(unittest.TestCase):
    """Every consistency proof between sizes 1 <= m <= n <= MAX_SIZE."""

    @classmethod
    def setUpClass(cls):
        cls.leaves = test_leaves(MAX_SIZE)
        cls.roots = [mth(cls.leaves[:n]) for n in range(MAX_SIZE + 1)]
        # proofs[(m, n)]: PROOF(m, D[n]) as (hash, role) pairs, m < n.
        cls.proofs = {(m, n): proof(m, cls.leaves[:n])
                      for n in range(1, MAX_SIZE + 1) for m in range(1, n)}

    def verify(self, m, n, consistency, first_root=None, second_root=None):
        return outcome(rfc6962.verify_consistency, m, n,
                       self.roots[m] if first_root is None else first_root,
                       self.roots[n] if second_root is None else second_root, consistency)

    def test_every_proof_verifies(self):
        for (m, n), pairs in self.proofs.items():
            self.assertIs(self.verify(m, n, hashes(pairs)), True, "from %d to %d" % (m, n))

    def test_equal_sizes(self):
        for n in range(1, MAX_SIZE + 1):
            self.assertIs(self.verify(n, n, []), True, "size %d to itself" % n)
            self.assertIs(self.verify(n, n, [], second_root=SOME_HASH), False)
            self.assertEqual(self.verify(n, n, [self.roots[n]]), "malformed")

    def test_every_bit_flip_fails(self):
        for (m, n), pairs in self.proofs.items():
            for bad in flips(hashes(pairs), n):
                self.assertIs(self.verify(m, n, bad), False,
                              "from %d to %d with a bit flipped" % (m, n))

    def test_wrong_roots_fail(self):
        for (m, n), pairs in self.proofs.items():
            good = hashes(pairs)
            self.assertIs(self.verify(m, n, good, first_root=SOME_HASH), False)
            self.assertIs(self.verify(m, n, good, second_root=SOME_HASH), False)
            self.assertIs(self.verify(m, n, good, self.roots[n], self.roots[m]), False,
                          "swapped roots, %d and %d" % (m, n))
            for other in range(1, MAX_SIZE + 1):
                if other != m:
                    self.assertIs(self.verify(m, n, good, first_root=self.roots[other]), False)
                if other != n:
                    self.assertIs(self.verify(m, n, good, second_root=self.roots[other]), False)

    def test_wrong_sizes_fail(self):
        # As for audit paths: sizes whose proofs have the same roles make
        # the verifier compute the same thing, so one proof serves both;
        # any other pair of sizes must fail.
        for (m, n), pairs in self.proofs.items():
            good = hashes(pairs)
            wrong = {(m2, n) for m2 in range(MAX_SIZE + 2)}
            wrong |= {(m, n2) for n2 in range(MAX_SIZE * 2 + 1)}
            wrong |= {(m + dm, n + dn) for dm in (-1, 0, 1) for dn in (-1, 0, 1)}
            wrong |= {(m * 2, n * 2), (m // 2, n // 2), (m, n * 2), (m ^ 2, n)}
            wrong.discard((m, n))
            for m2, n2 in sorted(wrong):
                answer = self.verify(m2, n2, good, self.roots[m], self.roots[n])
                if 0 < m2 < n2 and proof_shape(m2, n2) == shape(pairs):
                    self.assertIs(answer, True, "same roles: %d to %d and %d to %d"
                                  % (m, n, m2, n2))
                else:
                    self.assertIn(answer, (False, "malformed"),
                                  "proof from %d to %d claimed from %d to %d" % (m, n, m2, n2))

    def test_truncated_or_extended_proof_is_malformed(self):
        for (m, n), pairs in self.proofs.items():
            good = hashes(pairs)
            wrong = [good[:-1], good[1:], good + [SOME_HASH], [SOME_HASH] + good,
                     good + [self.roots[m]], [self.roots[m]] + good, [self.roots[n]] + good,
                     good[:1] + good, good[:1] + [SOME_HASH] + good[1:], []]
            for bad in wrong:
                self.assertEqual(self.verify(m, n, bad), "malformed",
                                 "from %d to %d, %d hashes instead of %d"
                                 % (m, n, len(bad), len(good)))

    def test_sizes_out_of_range_are_malformed(self):
        good = hashes(self.proofs[(3, 7)])
        self.assertEqual(self.verify(7, 3, good, self.roots[7], self.roots[3]), "malformed")
        self.assertEqual(self.verify(0, 7, good, rfc6962.empty_root()), "malformed")
        self.assertEqual(outcome(rfc6962.verify_consistency, 3, 7, self.roots[3],
                                 self.roots[7][:31], good), "malformed")
        self.assertEqual(outcome(rfc6962.verify_consistency, 3, 7, self.roots[3],
                                 self.roots[7], good[:-1] + [b""]), "malformed")

    def test_naive_proof_lengths_match_the_rfc_count(self):
        for (m, n), pairs in self.proofs.items():
            self.assertEqual(rfc6962.consistency_proof_size(m, n), len(pairs),
                             "from %d to %d" % (m, n))
        self.assertEqual(rfc6962.consistency_proof_size(1 << 20, 1 << 40), 20)


if __name__ == "__main__":
    unittest.main()
