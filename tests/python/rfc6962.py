"""An independent verifier of RFC 6962 / RFC 9162 Merkle tree proofs.

The hashing of RFC 6962 section 2.1 (the same in RFC 9162 section 2.1.1),
with SHA-256:
  leaf hash    SHA-256(0x00 || leaf)
  node hash    SHA-256(0x01 || left || right)
  empty tree   SHA-256("")
and the tree shape of the Merkle Tree Hash: a tree of n > 1 leaves splits
at k, the largest power of two smaller than n.

Written from the RFCs alone, with nothing but hashlib, so that what the
gateway's audit log proves is checked by code that shares none of the
gateway's:
  root_from_leaves      MTH(D[n]), the recursive definition of RFC 6962
                        section 2.1
  verify_inclusion      RFC 9162 section 2.1.3.2, "Verifying an Inclusion
                        Proof"
  verify_consistency    RFC 9162 section 2.1.4.2, "Verifying Consistency
                        between Two Tree Heads"

The convention of both verifiers:
  - a proof that cannot be a proof for the sizes given raises ValueError
    naming what is wrong: a size or index out of range, a hash that is not
    32 bytes, a proof with more or fewer hashes than the RFC's algorithm
    consumes for those sizes (the algorithm is run on the sizes alone to
    count them before any hashing);
  - a well-formed proof returns True when it proves what is claimed and
    False when the hashes do not match.
A caller that only wants a yes or no treats ValueError as no.
"""

import hashlib

# Bytes in a SHA-256 hash: every hash of the tree.
HASH_SIZE = 32

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(leaf):
    """SHA-256(0x00 || leaf): the hash of one entry (bytes) of the log."""
    return hashlib.sha256(_LEAF_PREFIX + bytes(leaf)).digest()


def node_hash(left, right):
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + _hash("left", left) + _hash("right", right)).digest()


def empty_root():
    """The root of the tree of no leaves: SHA-256 of nothing."""
    return hashlib.sha256(b"").digest()


def largest_power_of_two_below(n):
    """k, the largest power of two smaller than n (n > 1): where MTH splits."""
    if n < 2:
        raise ValueError("there is no split of a tree of %d leaves" % n)
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaves(leaves):
    """MTH(D[n]) of a list of leaves (each bytes), RFC 6962 section 2.1."""
    return root_from_leaf_hashes([leaf_hash(leaf) for leaf in leaves])


def root_from_leaf_hashes(leaf_hashes):
    """MTH of the tree whose leaves hash to `leaf_hashes` (32 bytes each)."""
    hashes = [_hash("leaf hash %d" % i, h) for i, h in enumerate(leaf_hashes)]
    if not hashes:
        return empty_root()

    def mth(begin, end):
        # MTH(D[begin:end]), end - begin >= 1.
        n = end - begin
        if n == 1:
            return hashes[begin]
        k = largest_power_of_two_below(n)
        return node_hash(mth(begin, begin + k), mth(begin + k, end))

    return mth(0, len(hashes))


def inclusion_proof_size(leaf_index, tree_size):
    """How many hashes RFC 9162's inclusion verification consumes.

    The loop of section 2.1.3.2 step 4 run on the indices alone: one hash
    per iteration until sn reaches 0.
    """
    _check_size("tree_size", tree_size, 1)
    _check_size("leaf_index", leaf_index, 0)
    if leaf_index >= tree_size:
        raise ValueError("leaf_index %d is not below tree_size %d" % (leaf_index, tree_size))
    fn, sn = leaf_index, tree_size - 1
    count = 0
    while sn != 0:
        fn, sn = _step(fn, sn)
        count += 1
    return count


def consistency_proof_size(first_size, second_size):
    """How many hashes RFC 9162's consistency verification consumes.

    Steps 2 to 6 of section 2.1.4.2 run on the sizes alone: the first value
    of the path, then one per iteration until sn reaches 0; the path's first
    value is the first root itself, not part of the proof, when first_size
    is a power of two. The proof between equal sizes is empty.
    """
    _check_size("first_size", first_size, 1)
    _check_size("second_size", second_size, 1)
    if first_size > second_size:
        raise ValueError("first_size %d is beyond second_size %d" % (first_size, second_size))
    if first_size == second_size:
        return 0
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    count = 1
    while sn != 0:
        fn, sn = _step(fn, sn)
        count += 1
    if _is_power_of_two(first_size):
        count -= 1
    return count


def verify_inclusion(leaf_index, tree_size, leaf_hash, audit_path, root):
    """Whether `audit_path` proves `leaf_hash` at `leaf_index` under `root`.

    RFC 9162 section 2.1.3.2 for the tree of `tree_size` leaves whose root
    hash is `root`; `audit_path` lists the sibling hashes from the leaf up
    (RFC 6962's PATH). ValueError for a malformed proof (see the module's
    docstring), otherwise True or False.
    """
    expected = inclusion_proof_size(leaf_index, tree_size)
    leaf_hash = _hash("leaf_hash", leaf_hash)
    root = _hash("root", root)
    path = [_hash("audit_path[%d]" % i, p) for i, p in enumerate(audit_path)]
    if len(path) != expected:
        raise ValueError("an inclusion proof of leaf %d in a tree of %d has %d hashes, "
                         "this one %d" % (leaf_index, tree_size, expected, len(path)))

    # 1. leaf_index < tree_size: checked above. 2. and 3.:
    fn, sn = leaf_index, tree_size - 1
    r = leaf_hash
    # 4. For each value p of the path:
    for p in path:
        # a. Nothing may remain once sn is 0 (the count above says so too).
        if sn == 0:
            return False
        # b. The sibling is on the left: the node so far is a right child,
        #    or the last of its level, which rises until it is one (ii).
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # ii. Up past the levels where it has no sibling.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        # c.
        fn, sn = fn >> 1, sn >> 1
    # 5.
    return sn == 0 and r == root


def verify_consistency(first_size, second_size, first_root, second_root, proof):
    """Whether `proof` shows the tree of `second_size` extends that of `first_size`.

    RFC 9162 section 2.1.4.2: the tree of `first_size` leaves with root
    `first_root` is a prefix of the tree of `second_size` leaves with root
    `second_root`; `proof` is RFC 6962's PROOF(first_size, D[second_size]).
    The RFC defines proofs for 0 < first_size < second_size; between equal
    sizes the proof must be empty and the roots equal. ValueError for a
    malformed proof (see the module's docstring), otherwise True or False.
    """
    expected = consistency_proof_size(first_size, second_size)
    first_root = _hash("first_root", first_root)
    second_root = _hash("second_root", second_root)
    path = [_hash("proof[%d]" % i, c) for i, c in enumerate(proof)]
    if len(path) != expected:
        raise ValueError("a consistency proof from size %d to size %d has %d hashes, "
                         "this one %d" % (first_size, second_size, expected, len(path)))
    if first_size == second_size:
        return first_root == second_root

    # 1. An empty proof between different sizes: the count above refused it.
    if not path:
        return False
    # 2.
    if _is_power_of_two(first_size):
        path.insert(0, first_root)
    # 3.
    fn, sn = first_size - 1, second_size - 1
    # 4.
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        # a.
        if sn == 0:
            return False
        # b.
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # iii.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        # c.
        fn, sn = fn >> 1, sn >> 1
    # 7.
    return fr == first_root and sr == second_root and sn == 0


def _step(fn, sn):
    """One iteration of the RFC's loops on the indices alone (steps b and c)."""
    if fn & 1 or fn == sn:
        while not fn & 1 and fn != 0:
            fn, sn = fn >> 1, sn >> 1
    return fn >> 1, sn >> 1


def _is_power_of_two(n):
    return n > 0 and n & (n - 1) == 0


def _check_size(name, value, minimum):
    """ValueError unless `value` is an int of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("%s must be an integer, not %r" % (name, value))
    if value < minimum:
        raise ValueError("%s %d is below %d" % (name, value, minimum))


def _hash(name, value):
    """`value` as bytes; ValueError unless it is a 32-byte string."""
    if not isinstance(value, (bytes, bytearray)):
        raise ValueError("%s must be bytes, not %s" % (name, type(value).__name__))
    if len(value) != HASH_SIZE:
        raise ValueError("%s is %d bytes, not a %d-byte SHA-256 hash"
                         % (name, len(value), HASH_SIZE))
    return bytes(value)
