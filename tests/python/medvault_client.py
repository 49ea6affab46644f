"""A small, independent client of medvault's public API (medvault.v1).

What the clinical walk (clinical_walk.py) needs besides the API itself:
connections to the gateway over mutual TLS with the deployment's
certificates, the metadata that names who acts through a hospital's
connection, a patient's wallet that signs EIP-712 documents (Foundry's
cast), and the operator's command line (medvaultctl) for certificates and
the regulator's licence transactions.

Only the standard library, grpcio and protobuf; the Python stubs are
generated from proto/ into a directory of the build (see load_stubs).
"""

import importlib
import subprocess
import sys
import time

import grpc

# Every call gets this long; a fleet on a slow machine answers well within.
RPC_TIMEOUT_SECONDS = 60
# How long the signer's index may take to show a licence transaction.
LICENCE_TIMEOUT_SECONDS = 60


class StepFailed(Exception):
    """A step of the walk did not go as the API documents."""


def load_stubs(stubs_dir):
    """Imports the medvault.v1 stubs generated into `stubs_dir`.

    Returns a namespace-like object with one attribute per module, e.g.
    `stubs.records_pb2` and `stubs.records_pb2_grpc`.
    """
    sys.path.insert(0, stubs_dir)
    modules = {}
    for name in ("types", "registry", "records", "access", "consent", "disputes"):
        for suffix in ("_pb2", "_pb2_grpc"):
            try:
                modules[name + suffix] = importlib.import_module(
                    "medvault.v1." + name + suffix)
            except ImportError as error:
                raise StepFailed(
                    "cannot import the medvault.v1 stubs from %s (%s); generate them with "
                    "python3 -m grpc_tools.protoc -I proto --python_out=DIR "
                    "--grpc_python_out=DIR proto/medvault/v1/*.proto" % (stubs_dir, error))
    return type("Stubs", (), modules)


def describe(error):
    """'PERMISSION_DENIED: <the server's message>' for a failed call."""
    return "%s: %s" % (error.code().name, error.details())


def add_gateway_arguments(parser, pki_help):
    """--gateway, --pki (described by `pki_help`) and --stubs, which every
    script against the public API takes."""
    parser.add_argument("--gateway", required=True, metavar="HOST:PORT",
                        help="the gateway's public mutual-TLS address")
    parser.add_argument("--pki", required=True, metavar="DIR", help=pki_help)
    parser.add_argument("--stubs", required=True, metavar="DIR",
                        help="where the medvault.v1 Python stubs were generated "
                             "(python3 -m grpc_tools.protoc --python_out=DIR "
                             "--grpc_python_out=DIR)")


def run_steps(name, make, done):
    """Runs make().run() (an object with step_number, run() and close()),
    printing `done` on success or the failed step; returns the exit code."""
    runner = None
    try:
        runner = make()
        runner.run()
    except (StepFailed, OSError) as failure:
        step = runner.step_number + 1 if runner is not None else 1
        print("%s FAILED at step %d: %s" % (name, step, failure), file=sys.stderr, flush=True)
        return 1
    finally:
        if runner is not None:
            runner.close()
    print("%s: %s" % (name, done), flush=True)
    return 0


def read_file(path):
    """The bytes of a file (certificates and keys)."""
    with open(path, "rb") as f:
        return f.read()


class Organisation:
    """One organisation's connection to the gateway (its client certificate).

    People act through it, named in metadata: `as_practitioner(id)` and
    `as_patient(id)` give the metadata for a call; without, the organisation
    itself acts.
    """

    def __init__(self, stubs, address, ca_file, cert_prefix):
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read_file(ca_file),
            private_key=read_file(cert_prefix + ".key"),
            certificate_chain=read_file(cert_prefix + ".pem"))
        self.channel = grpc.secure_channel(address, credentials)
        self.registry = stubs.registry_pb2_grpc.RegistryServiceStub(self.channel)
        self.records = stubs.records_pb2_grpc.RecordServiceStub(self.channel)
        self.access = stubs.access_pb2_grpc.AccessServiceStub(self.channel)
        self.consent = stubs.consent_pb2_grpc.ConsentServiceStub(self.channel)
        self.disputes = stubs.disputes_pb2_grpc.DisputeServiceStub(self.channel)

    @staticmethod
    def as_practitioner(practitioner_id):
        return (("medvault-practitioner", practitioner_id),)

    @staticmethod
    def as_patient(patient_id):
        return (("medvault-patient", patient_id),)

    def close(self):
        self.channel.close()


def call(what, rpc, request, metadata=()):
    """Makes a unary (or client-streaming) call; StepFailed names `what`."""
    try:
        return rpc(request, metadata=metadata, timeout=RPC_TIMEOUT_SECONDS)
    except grpc.RpcError as error:
        raise StepFailed("%s failed: %s" % (what, describe(error))) from None


def read_stream(what, rpc, request, metadata=()):
    """Makes a server-streaming call and returns every message it sent."""
    try:
        return list(rpc(request, metadata=metadata, timeout=RPC_TIMEOUT_SECONDS))
    except grpc.RpcError as error:
        raise StepFailed("%s failed: %s" % (what, describe(error))) from None


def expect_refused(what, code, fn):
    """Runs `fn` (which makes one call) and expects it to fail with `code`.

    Returns the server's message. A streaming call must be consumed inside
    `fn` (e.g. `lambda: list(stub.GetRecord(...))`).
    """
    try:
        fn()
    except grpc.RpcError as error:
        if error.code() != code:
            raise StepFailed("%s: expected %s, got %s" % (what, code.name, describe(error)))
        return error.details()
    raise StepFailed("%s: expected %s, but the call succeeded" % (what, code.name))


def expect(condition, message):
    """StepFailed with `message` unless `condition`."""
    if not condition:
        raise StepFailed(message)


def run_tool(argv, what):
    """Runs a command line tool; returns its standard output (stripped)."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StepFailed("%s: cannot run %s: %s" % (what, argv[0], error)) from None
    if done.returncode != 0:
        raise StepFailed("%s: %s exited with %d:\n%s%s" % (
            what, " ".join(argv[:4]), done.returncode, done.stdout, done.stderr))
    return done.stdout.strip()


class Wallet:
    """A patient's Ethereum key; signs EIP-712 documents with cast.

    `cast wallet sign --data` is eth_signTypedData_v4: it hashes the
    document itself, so what the gateway verifies is checked by an
    implementation other than the gateway's.
    """

    def __init__(self, cast_binary, private_key):
        self.cast = cast_binary
        self.private_key = private_key

    def sign_typed_data(self, typed_data_json):
        """Returns the 65-byte signature r || s || v of the document."""
        out = run_tool([self.cast, "wallet", "sign", "--data", "--private-key",
                        self.private_key, typed_data_json], "signing with cast")
        signature = bytes.fromhex(out[2:] if out.startswith("0x") else out)
        expect(len(signature) == 65, "cast printed a signature of %d bytes, not 65: %s"
               % (len(signature), out))
        return signature


class Operator:
    """medvaultctl: the deployment's CA and the regulator's chain commands."""

    def __init__(self, medvaultctl, config):
        self.ctl = medvaultctl
        self.config = config

    def issue_certificate(self, pki_dir, organisation_id, role, name):
        """Issues <pki_dir>/<name>.pem and .key for the organisation."""
        out = pki_dir + "/" + name
        run_tool([self.ctl, "ca", "issue", "--dir", pki_dir, "--org", organisation_id,
                  "--role", role, "--out", out], "issuing a certificate for " + organisation_id)
        return out

    def set_licence(self, licence_key_hex, status, valid_until, evidence_hex):
        """LicenceRegistry.setLicence as the regulator (0x-prefixed hex)."""
        run_tool([self.ctl, "-c", self.config, "chain", "set-licence", "--practitioner",
                  licence_key_hex, "--status", status, "--valid-until", str(valid_until),
                  "--evidence", evidence_hex], "setting licence %s %s" % (licence_key_hex, status))

    def wait_licence(self, licence_key_hex, status):
        """Waits until the signer's index shows the licence with `status`."""
        wanted = "%s %s " % (licence_key_hex.lower(), status)
        deadline = time.monotonic() + LICENCE_TIMEOUT_SECONDS
        last = ""
        while time.monotonic() < deadline:
            done = subprocess.run([self.ctl, "-c", self.config, "chain", "licence",
                                   "--practitioner", licence_key_hex],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=60, check=False)
            last = (done.stdout + done.stderr).strip()
            if done.returncode == 0 and done.stdout.startswith(wanted):
                return
            time.sleep(0.2)
        raise StepFailed("the signer's index never showed licence %s as %s; last answer: %s"
                         % (licence_key_hex, status, last))
