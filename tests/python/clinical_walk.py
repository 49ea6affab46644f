#!/usr/bin/python3
"""The clinical walk: medvault's public API end to end, from Python.

Against a running fleet (gateway, chain and all), as an independent client
would use it: the regulator registers two hospitals and licenses a doctor
of each on chain; hospital A registers a patient and uploads a FHIR record
and a PDF; hospital B's doctor asks for access, the patient approves with
a signature of their own wallet, the doctor reads, the patient revokes and
the next read is refused; the doctor breaks the glass in an emergency and
the patient sees that read in their access history; the patient disputes
the FHIR record, the regulator upholds the dispute, hospital A amends the
record; the regulator suspends the doctor, who is then refused everything.

Each step prints one line. The first step that does not go as the API
documents ends the walk with a message and exit status 1. Ids get a random
suffix, so the walk runs again and again against the same environment.
"""

import argparse
import hashlib
import json
import os
import secrets
import sys
import time

import grpc
from google.protobuf import timestamp_pb2

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from medvault_client import (RPC_TIMEOUT_SECONDS, Operator, Organisation, StepFailed, Wallet,
                             call, describe, expect, expect_refused, load_stubs, read_stream,
                             run_steps, add_gateway_arguments)

# anvil's first development account: the patient's wallet.
PATIENT_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
PATIENT_PRIVATE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

# A signed decision is valid this long (the gateway accepts at most 24 h).
CONSENT_LIFETIME_SECONDS = 600
ONE_YEAR_SECONDS = 365 * 24 * 3600

# A small PDF: one A4 page and a binary stream of every byte value, long
# enough to span several of the gateway's 64 KiB encryption segments.
PDF = (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
       b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
       b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj\n"
       b"4 0 obj << /Length 153600 >> stream\n" + bytes(range(256)) * 600 + b"\nendstream endobj\n"
       b"trailer << /Root 1 0 R >>\n"
       b"%%EOF\n")


def fhir_observation(patient_id, value):
    """A FHIR R4 Observation (a haemoglobin result) as JSON bytes."""
    return json.dumps({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7",
                             "display": "Hemoglobin [Mass/volume] in Blood"}]},
        "subject": {"identifier": {"value": patient_id}},
        "valueQuantity": {"value": value, "unit": "g/dL",
                          "system": "http://unitsofmeasure.org", "code": "g/dL"},
    }, indent=1).encode()


def chunks(data, size):
    """`data` cut into pieces of at most `size` bytes (at least one piece)."""
    return [data[i:i + size] for i in range(0, max(len(data), 1), size)]


class Walk:
    """The walk's state: who is who, and what has been made so far."""

    def __init__(self, args, stubs):
        self.args = args
        self.pb = stubs
        self.suffix = secrets.token_hex(4)
        self.step_number = 0
        self.operator = Operator(args.medvaultctl, args.config)
        self.wallet = Wallet(args.cast, PATIENT_PRIVATE_KEY)
        pki = args.pki
        self.regulator = Organisation(stubs, args.gateway, pki + "/ca.pem", pki + "/regulator")
        self.hospital_a = Organisation(stubs, args.gateway, pki + "/ca.pem", pki + "/client")
        self.hospital_a_id = args.hospital_a
        self.hospital_b_id = "walk-hospital-b-" + self.suffix
        self.hospital_b = None  # its certificate is issued by the first step
        self.doctor_a = "dr-a-" + self.suffix
        self.doctor_b = "dr-b-" + self.suffix
        self.licence_keys = {}
        self.patient_id = "walk-patient-" + self.suffix
        self.records = {}  # name -> (Record, bytes uploaded)
        self.request_id = None
        self.grant_id = None
        self.emergency_id = None
        self.dispute_id = None

    # --- Output --------------------------------------------------------------

    def say(self, line):
        """Prints one step of the walk."""
        self.step_number += 1
        print("%2d. %s" % (self.step_number, line), flush=True)

    @staticmethod
    def note(line):
        """Prints a detail of the step just printed."""
        print("      " + line, flush=True)

    # --- Who acts ------------------------------------------------------------

    def patient(self):
        """Metadata: the patient acting through hospital A's portal."""
        return Organisation.as_patient(self.patient_id)

    def doctor(self):
        """Metadata: hospital B's doctor acting through hospital B."""
        return Organisation.as_practitioner(self.doctor_b)

    # --- Helpers -------------------------------------------------------------

    @staticmethod
    def timestamp(seconds):
        return timestamp_pb2.Timestamp(seconds=int(seconds))

    def signed_consent(self, what, **decision):
        """The patient's signature over one decision, as a PatientConsent.

        `decision` is the PrepareConsentRequest field, e.g.
        revoke_access=RevokeAccessRequest(...). The gateway prepares the
        EIP-712 document; the walk checks what it says before the wallet
        signs it.
        """
        nonce = secrets.randbits(64)
        expires_at = self.timestamp(time.time() + CONSENT_LIFETIME_SECONDS)
        request = self.pb.consent_pb2.PrepareConsentRequest(nonce=nonce, expires_at=expires_at,
                                                            **decision)
        prepared = call("PrepareConsent for " + what, self.hospital_a.consent.PrepareConsent,
                        request, self.patient())
        document = json.loads(prepared.typed_data_json)
        message = document.get("message", {})
        expect(document.get("domain", {}).get("name") == "medvault",
               "the consent document's domain is not medvault's: %s" % prepared.typed_data_json)
        expect(message.get("patient") == self.patient_id
               and str(message.get("nonce")) == str(nonce),
               "the consent document for %s names another patient or nonce: %s"
               % (what, prepared.typed_data_json))
        expect(len(prepared.digest) == 32, "PrepareConsent's digest is not 32 bytes")
        signature = self.wallet.sign_typed_data(prepared.typed_data_json)
        return self.pb.types_pb2.PatientConsent(signature=self.pb.types_pb2.PatientSignature(
            nonce=nonce, expires_at=expires_at, signature=signature))

    def read_record(self, what, org, metadata, record_id, basis):
        """GetRecord: returns (Record, plaintext bytes)."""
        request = self.pb.records_pb2.GetRecordRequest(record_id=record_id, basis=basis)
        messages = read_stream(what, org.records.GetRecord, request, metadata)
        expect(messages and messages[0].WhichOneof("part") == "record",
               "%s: the first message is not the record's metadata" % what)
        expect(all(m.WhichOneof("part") == "data" for m in messages[1:]),
               "%s: a message after the first is not data" % what)
        return messages[0].record, b"".join(m.data for m in messages[1:])

    def treatment(self):
        return self.pb.records_pb2.ReadBasis(purpose=self.pb.types_pb2.TREATMENT)

    def refused_read(self, what, basis):
        """The doctor's read of the FHIR record, expected PERMISSION_DENIED."""
        request = self.pb.records_pb2.GetRecordRequest(
            record_id=self.records["fhir"][0].record_id, basis=basis)
        return expect_refused(what, grpc.StatusCode.PERMISSION_DENIED, lambda: list(
            self.hospital_b.records.GetRecord(request, metadata=self.doctor(),
                                              timeout=RPC_TIMEOUT_SECONDS)))

    def upload(self, org, header, data):
        """UploadRecord (a RecordHeader) or AmendRecord (an AmendmentHeader):
        the header, then the data in several messages (so that the gateway
        has to put the pieces together)."""
        records = self.pb.records_pb2
        if isinstance(header, records.RecordHeader):
            what, make, rpc = "UploadRecord", records.UploadRecordRequest, org.records.UploadRecord
        else:
            what, make, rpc = "AmendRecord", records.AmendRecordRequest, org.records.AmendRecord
        messages = [make(header=header)] + [make(data=c) for c in chunks(data, len(data) // 3 + 1)]
        return call(what, rpc, iter(messages))

    def check_record(self, record, data, content_type):
        """The stored record describes exactly the bytes uploaded."""
        expect(record.record_id.startswith("rec-"), "record id %r" % record.record_id)
        expect(record.size == len(data) and record.sha256 == hashlib.sha256(data).hexdigest(),
               "record %s: size %d sha256 %s, but %d bytes with sha256 %s were uploaded"
               % (record.record_id, record.size, record.sha256, len(data),
                  hashlib.sha256(data).hexdigest()))
        expect(record.content_type == content_type and record.cid,
               "record %s: content type %r, cid %r" % (record.record_id, record.content_type,
                                                     record.cid))

    def set_licence(self, practitioner_id, status):
        """The regulator's licence transaction; returns the licence key."""
        key = self.licence_keys[practitioner_id]
        self.operator.set_licence(key, status, int(time.time()) + ONE_YEAR_SECONDS,
                                  "0x" + secrets.token_hex(32))
        return key

    def licence_status(self, practitioner_id):
        """The licence status GetPractitioner reports (as the regulator)."""
        found = call("GetPractitioner " + practitioner_id, self.regulator.registry.GetPractitioner,
                     self.pb.registry_pb2.GetPractitionerRequest(practitioner_id=practitioner_id))
        return self.pb.types_pb2.LicenceStatus.Name(found.licence_status)

    def dispute_action(self, name):
        return self.pb.disputes_pb2.TransitionDisputeRequest.Action.Value(name)

    def transition(self, action, rationale=""):
        """The regulator moves the dispute; returns the Dispute."""
        request = self.pb.disputes_pb2.TransitionDisputeRequest(
            dispute_id=self.dispute_id, action=self.dispute_action(action), rationale=rationale)
        return call("TransitionDispute " + action, self.regulator.disputes.TransitionDispute,
                    request)

    # --- The steps -----------------------------------------------------------

    def register_hospitals(self):
        reg = self.pb.registry_pb2
        try:
            self.regulator.registry.RegisterHospital(
                reg.RegisterHospitalRequest(organization_id=self.hospital_a_id,
                                            display_name="Walk Hospital A"),
                timeout=RPC_TIMEOUT_SECONDS)
            a_note = "registered"
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise StepFailed("RegisterHospital %s failed: %s"
                                 % (self.hospital_a_id, describe(error))) from None
            a_note = "registered before"
        cert = self.operator.issue_certificate(self.args.pki, self.hospital_b_id, "hospital",
                                               "walk-" + self.suffix)
        self.hospital_b = Organisation(self.pb, self.args.gateway, self.args.pki + "/ca.pem", cert)
        hospital = call("RegisterHospital " + self.hospital_b_id,
                        self.regulator.registry.RegisterHospital,
                        reg.RegisterHospitalRequest(organization_id=self.hospital_b_id,
                                                    display_name="Walk Hospital B"))
        expect(hospital.organization_id == self.hospital_b_id,
               "RegisterHospital answered %r" % hospital.organization_id)
        self.say("the regulator registers two hospitals: A %s (%s), B %s (new certificate)"
                 % (self.hospital_a_id, a_note, self.hospital_b_id))

    def register_doctors(self):
        reg = self.pb.registry_pb2
        for org, org_id, doctor, specialty in (
                (self.hospital_a, self.hospital_a_id, self.doctor_a, "GENERAL_PRACTICE"),
                (self.hospital_b, self.hospital_b_id, self.doctor_b, "EMERGENCY_MEDICINE")):
            request = reg.RegisterPractitionerRequest(
                practitioner_id=doctor, licence_number="WALK-" + doctor.upper(),
                specialties=[specialty])
            practitioner = call("RegisterPractitioner " + doctor, org.registry.RegisterPractitioner,
                                request)
            expect(len(practitioner.licence_key) == 32,
                   "%s: licence_key has %d bytes, not 32" % (doctor, len(practitioner.licence_key)))
            expect(practitioner.hospital_id == org_id,
                   "%s: hospital_id %r, not %r" % (doctor, practitioner.hospital_id, org_id))
            self.licence_keys[doctor] = "0x" + practitioner.licence_key.hex()
        self.say("each hospital registers a doctor: %s at A, %s at B"
                 % (self.doctor_a, self.doctor_b))

    def license_doctors(self):
        keys = [self.set_licence(doctor, "active") for doctor in (self.doctor_a, self.doctor_b)]
        for key in keys:
            self.operator.wait_licence(key, "active")
        status = self.licence_status(self.doctor_b)
        expect(status == "LICENCE_ACTIVE", "GetPractitioner %s: licence %s, not LICENCE_ACTIVE"
               % (self.doctor_b, status))
        self.say("the regulator licenses both doctors on chain: %s %s, %s %s (the gateway sees %s)"
                 % (self.doctor_a, keys[0], self.doctor_b, keys[1], status))

    def register_patient(self):
        request = self.pb.registry_pb2.RegisterPatientRequest(patient_id=self.patient_id,
                                                              address=PATIENT_ADDRESS.lower())
        patient = call("RegisterPatient " + self.patient_id,
                       self.hospital_a.registry.RegisterPatient, request)
        expect(patient.address == PATIENT_ADDRESS,
               "RegisterPatient: address %r, not the EIP-55 %s" % (patient.address,
                                                                   PATIENT_ADDRESS))
        expect(list(patient.care_organizations) == [self.hospital_a_id],
               "RegisterPatient: care organisations %s" % list(patient.care_organizations))
        self.say("hospital A registers patient %s with wallet %s"
                 % (self.patient_id, patient.address))

    def upload_records(self):
        types = self.pb.types_pb2
        uploads = (("fhir", types.LAB_RESULT, "application/fhir+json",
                    fhir_observation(self.patient_id, 7.1)),
                   ("pdf", types.GENERAL, "application/pdf", PDF))
        for name, category, content_type, data in uploads:
            header = self.pb.records_pb2.RecordHeader(patient_id=self.patient_id,
                                                      category=category, content_type=content_type)
            record = self.upload(self.hospital_a, header, data)
            self.check_record(record, data, content_type)
            expect(record.author_organization_id == self.hospital_a_id,
                   "record %s: author %r" % (record.record_id, record.author_organization_id))
            self.records[name] = (record, data)
        fhir = self.records["fhir"][0]
        expect(fhir.fhir_resource_type == "Observation",
               "the FHIR record's resource type is %r, not Observation" % fhir.fhir_resource_type)
        self.say("hospital A uploads a FHIR Observation %s (%d bytes) and a PDF %s (%d bytes)"
                 % (fhir.record_id, fhir.size, self.records["pdf"][0].record_id,
                    self.records["pdf"][0].size))

    def request_access(self):
        message = self.refused_read("the doctor's read before any grant", self.treatment())
        access = self.pb.access_pb2
        request = access.RequestAccessRequest(
            patient_id=self.patient_id, scope=access.AccessScope(scope=self.pb.types_pb2.ALL),
            purpose=self.pb.types_pb2.TREATMENT,
            not_after=self.timestamp(time.time() + 30 * 24 * 3600),
            reason="follow-up of the haemoglobin result at hospital B")
        asked = call("RequestAccess", self.hospital_b.access.RequestAccess, request, self.doctor())
        expect(asked.state == access.AccessRequest.PENDING and asked.request_id.startswith("req-"),
               "RequestAccess: %s" % asked)
        expect(asked.practitioner_id == self.doctor_b and
               asked.organization_id == self.hospital_b_id,
               "RequestAccess: practitioner %r of %r" % (asked.practitioner_id,
                                                         asked.organization_id))
        self.request_id = asked.request_id
        self.say("without a grant the doctor of B reads nothing; %s requests access: %s PENDING"
                 % (self.doctor_b, asked.request_id))
        self.note("refused: " + message)

    def approve(self):
        access = self.pb.access_pb2
        decision = access.DecideAccessRequestRequest(request_id=self.request_id, approve=True)
        decision.consent.CopyFrom(self.signed_consent("the approval",
                                                      decide_access_request=decision))
        decided = call("DecideAccessRequest", self.hospital_a.access.DecideAccessRequest,
                       decision, self.patient())
        expect(decided.state == access.AccessRequest.APPROVED and decided.grant_id,
               "DecideAccessRequest: state %s, grant %r"
               % (access.AccessRequest.State.Name(decided.state), decided.grant_id))
        self.grant_id = decided.grant_id
        self.say("the patient approves with a signature of their wallet: request %s APPROVED, "
                 "grant %s" % (self.request_id, self.grant_id))

    def read_under_grant(self):
        for name in ("fhir", "pdf"):
            uploaded, data = self.records[name]
            record, plaintext = self.read_record(
                "GetRecord %s (TREATMENT)" % uploaded.record_id, self.hospital_b, self.doctor(),
                uploaded.record_id, self.treatment())
            expect(record.record_id == uploaded.record_id,
                   "GetRecord answered record %r" % record.record_id)
            expect(plaintext == data, "GetRecord %s: %d bytes that differ from the %d uploaded"
                   % (uploaded.record_id, len(plaintext), len(data)))
        self.say("the doctor of B reads both records for treatment; the bytes are those uploaded")

    def revoke(self):
        access = self.pb.access_pb2
        revoke = access.RevokeAccessRequest(grant_id=self.grant_id)
        revoke.consent.CopyFrom(self.signed_consent("the revocation", revoke_access=revoke))
        grant = call("RevokeAccess", self.hospital_a.access.RevokeAccess, revoke, self.patient())
        expect(grant.status == access.Grant.REVOKED,
               "RevokeAccess: grant status %s" % access.Grant.Status.Name(grant.status))
        message = self.refused_read("the doctor's read after the revocation", self.treatment())
        self.say("the patient revokes grant %s (signed); the doctor's next read is "
                 "PERMISSION_DENIED" % self.grant_id)
        self.note("refused: " + message)

    def emergency(self):
        request = self.pb.access_pb2.EmergencyAccessRequest(
            patient_id=self.patient_id,
            reason="unconscious on arrival at B's emergency department; allergies unknown")
        session = call("EmergencyAccess", self.hospital_b.access.EmergencyAccess, request,
                       self.doctor())
        expect(session.emergency_access_id.startswith("emg-"),
               "EmergencyAccess: id %r" % session.emergency_access_id)
        self.emergency_id = session.emergency_access_id
        uploaded, data = self.records["fhir"]
        basis = self.pb.records_pb2.ReadBasis(purpose=self.pb.types_pb2.EMERGENCY,
                                              emergency_access_id=self.emergency_id)
        _, plaintext = self.read_record("GetRecord %s (EMERGENCY)" % uploaded.record_id,
                                        self.hospital_b, self.doctor(), uploaded.record_id, basis)
        expect(plaintext == data, "the emergency read returned other bytes than uploaded")
        obligations = ", ".join(o.name for o in session.decision.obligations)
        self.say("the doctor of B opens emergency access %s and reads the FHIR record "
                 "(obligations: %s)" % (self.emergency_id, obligations or "none"))

    def access_history(self):
        request = self.pb.access_pb2.GetAccessHistoryRequest(patient_id=self.patient_id)
        history = call("GetAccessHistory", self.hospital_a.access.GetAccessHistory, request,
                       self.patient())
        fhir_id = self.records["fhir"][0].record_id
        emergency_reads = [e for e in history.entries
                           if e.action == "record.read_emergency" and e.record_id == fhir_id
                           and e.emergency_access_id == self.emergency_id and e.allowed
                           and e.practitioner_id == self.doctor_b
                           and e.organization_id == self.hospital_b_id]
        expect(emergency_reads, "the patient's access history has no emergency read of %s by %s "
               "under %s; it has:\n%s" % (fhir_id, self.doctor_b, self.emergency_id, history))
        # Denied attempts are history too: before the grant, after the revocation.
        refused = [e for e in history.entries if e.action == "record.read" and not e.allowed
                   and e.practitioner_id == self.doctor_b and e.record_id == fhir_id]
        expect(len(refused) == 2, "the patient's access history shows %d refused reads of %s by "
               "%s, not 2; it has:\n%s" % (len(refused), fhir_id, self.doctor_b, history))
        self.say("the patient sees the emergency read in their access history (%d entries, "
                 "the doctor's 2 refused reads among them)" % len(history.entries))

    def file_dispute(self):
        disputes = self.pb.disputes_pb2
        request = disputes.FileDisputeRequest(
            patient_id=self.patient_id, record_id=self.records["fhir"][0].record_id,
            evidence="the sample was taken after a transfusion; the value is not mine")
        request.consent.CopyFrom(self.signed_consent("the dispute", file_dispute=request))
        dispute = call("FileDispute", self.hospital_a.disputes.FileDispute, request,
                       self.patient())
        expect(dispute.state == "FILED" and dispute.dispute_id.startswith("dsp-"),
               "FileDispute: %s %r" % (dispute.dispute_id, dispute.state))
        self.dispute_id = dispute.dispute_id
        self.say("the patient disputes the FHIR record (signed): %s FILED" % self.dispute_id)

    def review_dispute(self):
        early = expect_refused(
            "UPHOLD of a dispute still FILED", grpc.StatusCode.FAILED_PRECONDITION,
            lambda: self.regulator.disputes.TransitionDispute(
                self.pb.disputes_pb2.TransitionDisputeRequest(
                    dispute_id=self.dispute_id, action=self.dispute_action("UPHOLD"),
                    rationale="too early"), timeout=RPC_TIMEOUT_SECONDS))
        reviewed = self.transition("START_REVIEW")
        expect(reviewed.state == "UNDER_REVIEW", "START_REVIEW led to %r" % reviewed.state)
        upheld = self.transition("UPHOLD", "the laboratory confirms the sample was mislabelled")
        expect(upheld.state == "UPHELD", "UPHOLD led to %r" % upheld.state)
        owed = [o.name for o in upheld.obligations]
        expect("append_amendment" in owed, "an upheld dispute owes no amendment: %s" % owed)
        self.say("the regulator reviews and upholds the dispute: FILED -> UNDER_REVIEW -> UPHELD "
                 "(owed: %s)" % ", ".join(owed))
        self.note("UPHOLD straight from FILED was refused: " + early)

    def amend(self):
        original, _ = self.records["fhir"]
        header = self.pb.records_pb2.AmendmentHeader(
            record_id=original.record_id, reason="corrected after the upheld dispute",
            content_type="application/fhir+json", dispute_id=self.dispute_id)
        data = fhir_observation(self.patient_id, 13.4)
        amendment = self.upload(self.hospital_a, header, data)
        self.check_record(amendment, data, "application/fhir+json")
        expect(amendment.amends_record_id == original.record_id,
               "the amendment amends %r" % amendment.amends_record_id)
        record, plaintext = self.read_record(
            "the patient's GetRecord of the original", self.hospital_a, self.patient(),
            original.record_id, self.pb.records_pb2.ReadBasis())
        expect(plaintext == self.records["fhir"][1], "the original's bytes changed")
        expect(list(record.amended_by) == [amendment.record_id],
               "the original %s shows amended_by %s, not [%s]"
               % (original.record_id, list(record.amended_by), amendment.record_id))
        dispute = call("GetDispute", self.regulator.disputes.GetDispute,
                       self.pb.disputes_pb2.GetDisputeRequest(dispute_id=self.dispute_id))
        expect(dispute.amendment_id == amendment.record_id,
               "the dispute names amendment %r, not %s" % (dispute.amendment_id,
                                                           amendment.record_id))
        closed = self.transition("CLOSE")
        expect(closed.state == "CLOSED", "CLOSE led to %r" % closed.state)
        self.say("hospital A appends amendment %s; the original shows amended_by, the dispute "
                 "names it and closes: UPHELD -> CLOSED" % amendment.record_id)

    def suspend(self):
        key = self.set_licence(self.doctor_b, "suspended")
        self.operator.wait_licence(key, "suspended")
        status = self.licence_status(self.doctor_b)
        expect(status == "LICENCE_SUSPENDED",
               "GetPractitioner %s: licence %s, not LICENCE_SUSPENDED" % (self.doctor_b, status))
        self.say("the regulator suspends %s's licence on chain (the gateway sees %s)"
                 % (self.doctor_b, status))

    def refused_everything(self):
        access = self.pb.access_pb2
        emergency = access.EmergencyAccessRequest(
            patient_id=self.patient_id, reason="another emergency, after the suspension")
        messages = [expect_refused(
            "EmergencyAccess by a suspended doctor", grpc.StatusCode.PERMISSION_DENIED,
            lambda: self.hospital_b.access.EmergencyAccess(emergency, metadata=self.doctor(),
                                                           timeout=RPC_TIMEOUT_SECONDS))]
        messages.append(self.refused_read(
            "a read under the still-open emergency access by a suspended doctor",
            self.pb.records_pb2.ReadBasis(purpose=self.pb.types_pb2.EMERGENCY,
                                          emergency_access_id=self.emergency_id)))
        ask = access.RequestAccessRequest(
            patient_id=self.patient_id, scope=access.AccessScope(scope=self.pb.types_pb2.ALL),
            purpose=self.pb.types_pb2.TREATMENT,
            not_after=self.timestamp(time.time() + 24 * 3600), reason="asking again")
        messages.append(expect_refused(
            "RequestAccess by a suspended doctor", grpc.StatusCode.PERMISSION_DENIED,
            lambda: self.hospital_b.access.RequestAccess(ask, metadata=self.doctor(),
                                                         timeout=RPC_TIMEOUT_SECONDS)))
        for message in messages:
            expect("licence.suspended_or_revoked" in message,
                   "a suspended doctor's refusal does not name licence.suspended_or_revoked: "
                   + message)
        self.say("the suspended doctor is refused everything, emergency access included "
                 "(PERMISSION_DENIED)")
        self.note("refused: " + messages[0])

    def run(self):
        for step in (self.register_hospitals, self.register_doctors, self.license_doctors,
                     self.register_patient, self.upload_records, self.request_access,
                     self.approve, self.read_under_grant, self.revoke, self.emergency,
                     self.access_history, self.file_dispute, self.review_dispute, self.amend,
                     self.suspend, self.refused_everything):
            step()

    def close(self):
        for org in (self.regulator, self.hospital_a, self.hospital_b):
            if org is not None:
                org.close()


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="Example (the environment of scripts/run):\n"
               "  /usr/bin/python3 tests/python/clinical_walk.py --gateway 127.0.0.1:8443 \\\n"
               "    --pki .medvault-dev/pki --hospital-a dev-hospital \\\n"
               "    --medvaultctl build/release/bin/medvaultctl \\\n"
               "    --config .medvault-dev/medvault.textproto \\\n"
               "    --cast contracts/node_modules/@foundry-rs/cast-linux-amd64/bin/cast \\\n"
               "    --stubs build/release/python",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_gateway_arguments(parser, "the deployment's CA directory: ca.pem, regulator.pem/.key, "
                                  "client.pem/.key (hospital A); the walk issues hospital B's "
                                  "certificate there with medvaultctl ca issue")
    parser.add_argument("--hospital-a", required=True, metavar="ID",
                        help="hospital A's organisation id: the CN of <pki>/client.pem")
    parser.add_argument("--medvaultctl", required=True, metavar="PATH",
                        help="the medvaultctl binary")
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="the fleet's configuration, for medvaultctl -c (chain commands "
                             "as the development regulator)")
    parser.add_argument("--cast", required=True, metavar="PATH",
                        help="Foundry's cast binary (contracts/node_modules/@foundry-rs/"
                             "cast-<platform>/bin/cast), the patient's wallet")
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    for path in (args.medvaultctl, args.cast):
        if not os.access(path, os.X_OK):
            print("clinical walk: %s is not an executable" % path, file=sys.stderr)
            return 2
    def start():
        walk = Walk(args, load_stubs(args.stubs))
        print("clinical walk against %s (run %s)" % (args.gateway, walk.suffix), flush=True)
        return walk

    return run_steps("clinical walk", start, "every step went as documented")

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
