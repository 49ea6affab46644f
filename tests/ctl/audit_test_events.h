// Audit events for the tests of medvaultctl audit's library: a time from
// RFC 3339, an event by practitioner pr-1 of hosp-1 about patient pat-1,
// and the opening of an emergency access with its review due.
#ifndef MEDVAULT_TESTS_CTL_AUDIT_TEST_EVENTS_H_
#define MEDVAULT_TESTS_CTL_AUDIT_TEST_EVENTS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "medvault/v1/audit.pb.h"

namespace medvault::ctl::testing {

inline absl::Time T(absl::string_view rfc3339) {
  absl::Time t;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &error)) << rfc3339 << error;
  return t;
}

inline v1::AuditEvent Event(absl::string_view time, absl::string_view action,
                            v1::AuditEvent::Outcome outcome = v1::AuditEvent::SUCCEEDED) {
  v1::AuditEvent e;
  e.mutable_time()->set_seconds(absl::ToUnixSeconds(T(time)));
  e.set_action(std::string(action));
  e.set_outcome(outcome);
  e.set_method("/medvault.v1.Test/Method");
  e.mutable_actor()->set_organization_id("hosp-1");
  e.mutable_actor()->set_organization_role("HOSPITAL");
  e.mutable_actor()->set_practitioner_id("pr-1");
  e.mutable_actor()->set_policy_role("PRACTITIONER");
  e.set_patient_id("pat-1");
  e.set_decision_id("dec-1");
  e.set_policy_version(3);
  return e;
}

inline v1::AuditEvent EmergencyOpen(absl::string_view time, absl::string_view id,
                                    absl::string_view due) {
  v1::AuditEvent e = Event(time, "record.read_emergency");
  e.set_emergency_access_id(std::string(id));
  e.add_rule_ids("emergency-break-glass");
  e.add_obligations("regulator_review");
  v1::Obligation* o = e.add_obligation_details();
  o->set_name("regulator_review");
  o->set_due(std::string(due));
  return e;
}

}  // namespace medvault::ctl::testing

#endif  // MEDVAULT_TESTS_CTL_AUDIT_TEST_EVENTS_H_
