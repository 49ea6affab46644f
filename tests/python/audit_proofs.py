#!/usr/bin/python3
"""The audit log's proofs, checked from outside: medvault.v1.AuditService.

Expected command line (the environment of scripts/run, once a compliance
office's certificate is issued into the PKI directory with
`medvaultctl ca issue --dir .medvault-dev/pki --org <id> --role compliance
--out .medvault-dev/pki/compliance`):

  /usr/bin/python3 tests/python/audit_proofs.py --gateway 127.0.0.1:8443 \\
    --pki .medvault-dev/pki --compliance compliance --stubs build/release/python

As a compliance office (a client certificate with the COMPLIANCE role), and
with nothing of the gateway's code: the hashing and the proof verification
are tests/python/rfc6962.py's (RFC 6962 / RFC 9162, hashlib only).

  1. The latest signed tree head (waiting while the gateway has signed
     none, or only the empty tree), and the log's public key.
  2. Every leaf of that tree with GetEntries, 1000 at a time; the root
     computed here from the leaves must be the head's.
  3. Every leaf is a medvault.v1.AuditEvent whose deterministic
     serialisation is the leaf itself.
  4. The inclusion proof of every leaf (beyond 200 leaves: the first, the
     last, every power of two and a random sample) verifies against the
     head's root, and carries the leaf GetEntries gave.
  5. The consistency proof from every size m = 1..n to the head's size n
     (beyond 200: a sample as above), and between random pairs of sizes,
     verifies against roots computed here from the leaves.
  6. A later head (the calls above are audit events themselves, so the log
     has grown) is consistent with the first: the log only appends.
  7. Requests outside the tree are INVALID_ARGUMENT naming a field:
     leaf_index >= tree_size, first_tree_size > second_tree_size,
     first_tree_size = 0, sizes and starts beyond the head.

What it does not check: the heads' ECDSA P-256 signatures. hashlib has no
ECDSA and this client uses nothing but the standard library, grpcio and
protobuf. It only fetches the key (GetLogPublicKey) and checks that it is
DER; the signatures are for a client with an ECDSA implementation (e.g.
OpenSSL) to check over the 82-byte message audit.proto describes.

Each step prints one line. The first check that fails ends the run with
the reason and exit status 1.
"""

import argparse
import importlib
import random
import secrets
import sys
import time

import grpc
from google.protobuf import message as protobuf_message

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import rfc6962
from medvault_client import (RPC_TIMEOUT_SECONDS, Organisation, StepFailed, call, describe,
                             expect, expect_refused, load_stubs, run_steps,
                             add_gateway_arguments)

# GetEntries gives at most this many leaves per call.
ENTRIES_PAGE = 1000
# Up to this many leaves every leaf and every size is proved; beyond, a
# sample (first, last, powers of two, random).
EVERY_LEAF_UP_TO = 200
# Random leaves or sizes added to a sample, and random pairs of sizes.
RANDOM_SAMPLE = 25
RANDOM_PAIRS = 10
# How long the gateway may take to sign its first head (it signs moments
# after it starts, and again as the log grows).
HEAD_TIMEOUT_SECONDS = 60
# A size no test log reaches.
FAR_BEYOND = 1 << 62


def load_audit_stubs(stubs_dir):
    """The medvault.v1 stubs (medvault_client.load_stubs) plus audit.proto's."""
    stubs = load_stubs(stubs_dir)
    for name in ("audit_pb2", "audit_pb2_grpc"):
        try:
            setattr(stubs, name, importlib.import_module("medvault.v1." + name))
        except ImportError as error:
            raise StepFailed("cannot import medvault.v1.%s from %s (%s); generate the stubs "
                             "from proto/medvault/v1/*.proto" % (name, stubs_dir, error))
    return stubs


def powers_of_two_up_to(n):
    """1, 2, 4, ... <= n."""
    k = 1
    while k <= n:
        yield k
        k *= 2


class AuditProofs:
    """One run: the compliance office's connection and what it has seen."""

    def __init__(self, args, stubs):
        self.args = args
        self.pb = stubs.audit_pb2
        self.step_number = 0
        self.seed = args.seed if args.seed is not None else secrets.randbits(32)
        self.rng = random.Random(self.seed)
        self.office = Organisation(stubs, args.gateway, args.pki + "/ca.pem",
                                   args.pki + "/" + args.compliance)
        self.audit = stubs.audit_pb2_grpc.AuditServiceStub(self.office.channel)
        self.head = None
        self.leaves = []
        self.leaf_hashes = []
        self.roots = {}  # tree size -> root computed here from the leaves

    # --- Output --------------------------------------------------------------

    def say(self, line):
        """Prints one step."""
        self.step_number += 1
        print("%2d. %s" % (self.step_number, line), flush=True)

    @staticmethod
    def note(line):
        """Prints a detail of the step just printed."""
        print("      " + line, flush=True)

    # --- Helpers -------------------------------------------------------------

    def root_of(self, size):
        """The root of the first `size` leaves, computed here."""
        if size not in self.roots:
            self.roots[size] = rfc6962.root_from_leaf_hashes(self.leaf_hashes[:size])
        return self.roots[size]

    def sample(self, low, high):
        """Every value of [low, high], or beyond EVERY_LEAF_UP_TO of them a
        sample: both ends, every power of two and its neighbours, random."""
        if high - low + 1 <= EVERY_LEAF_UP_TO:
            return list(range(low, high + 1))
        chosen = {low, low + 1, high - 1, high}
        for k in powers_of_two_up_to(high):
            chosen.update(v for v in (k - 1, k, k + 1) if low <= v <= high)
        chosen.update(self.rng.randint(low, high) for _ in range(RANDOM_SAMPLE))
        return sorted(chosen)

    @staticmethod
    def verified(what, verify, *args):
        """Runs an rfc6962 verifier; StepFailed unless the proof holds."""
        try:
            holds = verify(*args)
        except ValueError as error:
            raise StepFailed("%s: the proof is malformed: %s" % (what, error)) from None
        expect(holds, "%s: the proof does not verify" % what)

    def check_head(self, head, what):
        expect(len(head.root_hash) == rfc6962.HASH_SIZE,
               "%s: root_hash is %d bytes, not 32" % (what, len(head.root_hash)))
        expect(len(head.log_id) == 32, "%s: log_id is %d bytes, not 32" % (what, len(head.log_id)))
        expect(head.signature, "%s: no signature" % what)
        expect(head.timestamp_ms > 0, "%s: no timestamp" % what)
        if head.tree_size == 0:
            expect(head.root_hash == rfc6962.empty_root(),
                   "%s: the empty tree's root is %s, not SHA-256 of nothing"
                   % (what, head.root_hash.hex()))

    def latest_head(self, at_least):
        """The latest signed tree head of at least `at_least` leaves.

        Waits while the gateway has signed none (FAILED_PRECONDITION) or
        only a smaller tree: every call here is an audit event, so the log
        grows and the next head takes the calls in.
        """
        deadline = time.monotonic() + HEAD_TIMEOUT_SECONDS
        last = "no answer"
        while True:
            try:
                head = self.audit.GetSignedTreeHead(self.pb.GetSignedTreeHeadRequest(),
                                                    timeout=RPC_TIMEOUT_SECONDS)
                self.check_head(head, "GetSignedTreeHead")
                if head.tree_size >= at_least:
                    return head
                last = "a head of %d leaves" % head.tree_size
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise StepFailed("GetSignedTreeHead failed: %s" % describe(error)) from None
                last = describe(error)
            if time.monotonic() > deadline:
                raise StepFailed("no signed tree head of at least %d leaves within %d s; last "
                                 "answer: %s" % (at_least, HEAD_TIMEOUT_SECONDS, last))
            time.sleep(0.5)

    # --- The steps -------------------------------------------------------------

    def signed_tree_head(self):
        self.head = self.latest_head(1)
        self.say("signed tree head: %d leaves, root %s, signed at %d ms, log id %s"
                 % (self.head.tree_size, self.head.root_hash.hex(), self.head.timestamp_ms,
                    self.head.log_id.hex()))
        key = call("GetLogPublicKey", self.audit.GetLogPublicKey,
                   self.pb.GetLogPublicKeyRequest()).public_key
        expect(len(key) > 64 and key[0] == 0x30,
               "GetLogPublicKey: %d bytes that are no DER SubjectPublicKeyInfo" % len(key))
        self.note("log public key: %d bytes of DER (the signature is not checked here: "
                  "hashlib has no ECDSA)" % len(key))

    def entries(self):
        n = self.head.tree_size
        start = 0
        pages = 0
        while start < n:
            count = min(ENTRIES_PAGE, n - start)
            page = call("GetEntries from %d" % start, self.audit.GetEntries,
                        self.pb.GetEntriesRequest(start=start, count=count)).entries
            pages += 1
            expect(0 < len(page) <= count, "GetEntries(start=%d, count=%d) gave %d entries, in a "
                   "log of at least %d" % (start, count, len(page), n))
            for offset, entry in enumerate(page):
                expect(entry.leaf_index == start + offset,
                       "GetEntries(start=%d) gave leaf %d in place %d"
                       % (start, entry.leaf_index, offset))
                self.leaves.append(bytes(entry.leaf))
            start += len(page)
        self.leaf_hashes = [rfc6962.leaf_hash(leaf) for leaf in self.leaves]
        self.say("GetEntries: %d leaves in %d page%s of up to %d, %d bytes" % (
            len(self.leaves), pages, "" if pages == 1 else "s", ENTRIES_PAGE,
            sum(len(leaf) for leaf in self.leaves)))

        root = self.root_of(n)
        expect(root == self.head.root_hash,
               "the root of the %d leaves is %s, the signed tree head says %s"
               % (n, root.hex(), self.head.root_hash.hex()))
        self.say("the root computed here from the leaves is the signed head's")

    def events(self):
        methods = {}
        for index, leaf in enumerate(self.leaves):
            event = self.pb.AuditEvent()
            try:
                event.ParseFromString(leaf)
            except protobuf_message.DecodeError as error:
                raise StepFailed("leaf %d is no AuditEvent: %s" % (index, error)) from None
            again = event.SerializeToString(deterministic=True)
            expect(again == leaf, "leaf %d is not the deterministic serialisation of its "
                   "AuditEvent (%d bytes, re-serialised %d)" % (index, len(leaf), len(again)))
            methods[event.method] = methods.get(event.method, 0) + 1
        self.say("every leaf is an AuditEvent serialised deterministically (%d methods)"
                 % len(methods))
        for method, count in sorted(methods.items(), key=lambda item: -item[1])[:5]:
            self.note("%4d  %s" % (count, method or "(no method)"))

    def inclusion_proofs(self):
        n = self.head.tree_size
        indices = self.sample(0, n - 1)
        longest = 0
        for index in indices:
            what = "inclusion proof of leaf %d in the tree of %d" % (index, n)
            answer = call("GetInclusionProof of leaf %d" % index, self.audit.GetInclusionProof,
                          self.pb.GetInclusionProofRequest(leaf_index=index, tree_size=n))
            expect(answer.leaf_index == index and answer.tree_size == n,
                   "%s: the answer is for leaf %d of %d" % (what, answer.leaf_index,
                                                           answer.tree_size))
            expect(answer.leaf == self.leaves[index],
                   "%s: its leaf is not the one GetEntries gave" % what)
            self.verified(what, rfc6962.verify_inclusion, index, n,
                          rfc6962.leaf_hash(answer.leaf), list(answer.audit_path),
                          self.head.root_hash)
            longest = max(longest, len(answer.audit_path))
        self.say("%d inclusion proofs verified against the head's root (%s; paths of up to "
                 "%d hashes)" % (len(indices), "every leaf" if len(indices) == n else "a sample",
                                 longest))

    def consistency_proof(self, first, second, first_root, second_root):
        """Gets and verifies the consistency proof between two sizes."""
        what = "consistency proof from %d to %d" % (first, second)
        answer = call("GetConsistencyProof from %d to %d" % (first, second),
                      self.audit.GetConsistencyProof,
                      self.pb.GetConsistencyProofRequest(first_tree_size=first,
                                                         second_tree_size=second))
        expect(answer.first_tree_size == first and answer.second_tree_size == second,
               "%s: the answer is from %d to %d" % (what, answer.first_tree_size,
                                                   answer.second_tree_size))
        self.verified(what, rfc6962.verify_consistency, first, second, first_root, second_root,
                      list(answer.proof))
        return len(answer.proof)

    def consistency_proofs(self):
        n = self.head.tree_size
        sizes = self.sample(1, n)
        longest = 0
        for m in sizes:
            longest = max(longest, self.consistency_proof(m, n, self.root_of(m),
                                                          self.head.root_hash))
        self.say("%d consistency proofs to the head's size verified (%s; up to %d hashes)"
                 % (len(sizes), "every size 1..%d" % n if len(sizes) == n else "a sample", longest))
        pairs = sorted({tuple(sorted((self.rng.randint(1, n), self.rng.randint(1, n))))
                        for _ in range(RANDOM_PAIRS)})
        for first, second in pairs:
            self.consistency_proof(first, second, self.root_of(first), self.root_of(second))
        self.say("%d consistency proofs between random sizes verified: %s (seed %d)"
                 % (len(pairs), ", ".join("%d-%d" % pair for pair in pairs), self.seed))

    def later_head(self):
        n = self.head.tree_size
        later = self.latest_head(n)
        expect(later.log_id == self.head.log_id, "the later head is of another log: %s"
               % later.log_id.hex())
        expect(later.timestamp_ms >= self.head.timestamp_ms,
               "the later head was signed at %d ms, before the first (%d ms)"
               % (later.timestamp_ms, self.head.timestamp_ms))
        self.consistency_proof(n, later.tree_size, self.head.root_hash, later.root_hash)
        self.say("a later head of %d leaves (root %s) is consistent with the first: the log "
                 "only appended" % (later.tree_size, later.root_hash.hex()))

    def bad_requests(self):
        n = self.head.tree_size
        pb = self.pb
        timeout = RPC_TIMEOUT_SECONDS
        cases = [
            ("leaf_index = tree_size", ("leaf_index", "tree_size"),
             lambda: self.audit.GetInclusionProof(
                 pb.GetInclusionProofRequest(leaf_index=n, tree_size=n), timeout=timeout)),
            ("leaf_index beyond tree_size", ("leaf_index", "tree_size"),
             lambda: self.audit.GetInclusionProof(
                 pb.GetInclusionProofRequest(leaf_index=n + 7, tree_size=n), timeout=timeout)),
            ("tree_size beyond the head", ("tree_size",),
             lambda: self.audit.GetInclusionProof(
                 pb.GetInclusionProofRequest(leaf_index=0, tree_size=FAR_BEYOND),
                 timeout=timeout)),
            ("first_tree_size > second_tree_size", ("first_tree_size", "second_tree_size"),
             lambda: self.audit.GetConsistencyProof(
                 pb.GetConsistencyProofRequest(first_tree_size=max(n, 2),
                                               second_tree_size=max(n, 2) - 1),
                 timeout=timeout)),
            ("first_tree_size = 0", ("first_tree_size",),
             lambda: self.audit.GetConsistencyProof(
                 pb.GetConsistencyProofRequest(first_tree_size=0, second_tree_size=n),
                 timeout=timeout)),
            ("second_tree_size beyond the head", ("second_tree_size",),
             lambda: self.audit.GetConsistencyProof(
                 pb.GetConsistencyProofRequest(first_tree_size=1, second_tree_size=FAR_BEYOND),
                 timeout=timeout)),
            ("GetEntries start beyond the log", ("start",),
             lambda: self.audit.GetEntries(pb.GetEntriesRequest(start=FAR_BEYOND, count=1),
                                           timeout=timeout)),
        ]
        answers = []
        for what, fields, fn in cases:
            message = expect_refused(what, grpc.StatusCode.INVALID_ARGUMENT, fn)
            expect(any(message.startswith(field + ": ") for field in fields),
                   "%s: INVALID_ARGUMENT, but %r does not start with \"<field>: \" for %s"
                   % (what, message, " or ".join(fields)))
            answers.append("%s: %s" % (what, message))
        self.say("%d requests outside the tree refused with INVALID_ARGUMENT naming the field"
                 % len(cases))
        for answer in answers:
            self.note(answer)

    def run(self):
        self.signed_tree_head()
        self.entries()
        self.events()
        self.inclusion_proofs()
        self.consistency_proofs()
        self.later_head()
        self.bad_requests()

    def close(self):
        self.office.close()


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="Example (the environment of scripts/run):\n"
               "  /usr/bin/python3 tests/python/audit_proofs.py --gateway 127.0.0.1:8443 \\\n"
               "    --pki .medvault-dev/pki --compliance compliance \\\n"
               "    --stubs build/release/python",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_gateway_arguments(parser, "the deployment's CA directory: ca.pem, and the compliance "
                                  "office's certificate <NAME>.pem and key <NAME>.key")
    parser.add_argument("--compliance", required=True, metavar="NAME",
                        help="the file name (without .pem/.key) in --pki of a client "
                             "certificate with the compliance role (OU=compliance)")
    parser.add_argument("--seed", type=int, metavar="N",
                        help="seed of the random samples and pairs (printed; random by "
                             "default), to repeat a run")
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    def start():
        run = AuditProofs(args, load_audit_stubs(args.stubs))
        print("audit proofs against %s as %s (seed %d)" % (args.gateway, args.compliance,
                                                           run.seed), flush=True)
        return run

    return run_steps("audit proofs", start, "every proof verified independently")

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
