#include "daemon/ctl/policy_commands.h"

#include <dirent.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "daemon/common/roles.h"
#include "daemon/ctl/rpc.h"
#include "daemon/policy/bundle.h"
#include "daemon/policy/evaluator.h"
#include "daemon/policy/policy_loader.h"
#include "daemon/policy/policy_tests.h"
#include "medvault/internal/v1/policy.grpc.pb.h"

namespace medvault::ctl {
namespace {

using policy::BundleFiles;

int Fail(absl::string_view what, const absl::Status& status) {
  std::cerr << "medvaultctl: " << what << ":\n" << status.message() << "\n";
  return 1;
}

bool ReadText(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

// Reads and compiles the bundle in `dir`, signature not checked.
int Compile(const std::string& dir, BundleFiles* files,
            std::shared_ptr<const policy::CompiledPolicy>* compiled) {
  auto read = policy::ReadBundle(dir);
  if (!read.ok()) return Fail(dir, read.status());
  *files = *std::move(read);
  auto c = policy::CompileBundle(*files);
  if (!c.ok()) return Fail(dir, c.status());
  *compiled = *std::move(c);
  return 0;
}

int Lint(const std::string& dir) {
  BundleFiles files;
  std::shared_ptr<const policy::CompiledPolicy> p;
  if (int rc = Compile(dir, &files, &p); rc != 0) return rc;
  std::printf(
      "%s: OK: version %llu, %zu files, %zu rules, %zu actions, %zu roles, %zu attributes\n",
      dir.c_str(), static_cast<unsigned long long>(p->version), files.files.size(), p->rules.size(),
      p->actions.size(), p->roles.size(), p->attributes.size());
  return 0;
}

int Hash(const std::string& dir) {
  BundleFiles files;
  std::shared_ptr<const policy::CompiledPolicy> p;
  if (int rc = Compile(dir, &files, &p); rc != 0) return rc;
  std::printf("version %llu\nbundle_hash 0x%s\n", static_cast<unsigned long long>(p->version),
              p->bundle_hash_hex.c_str());
  return 0;
}

int Sign(const std::string& dir, const std::string& key_file, std::string output) {
  BundleFiles files;
  std::shared_ptr<const policy::CompiledPolicy> p;
  // Only a bundle that compiles is signed: the regulator never vouches for
  // files medvault-policy would refuse.
  if (int rc = Compile(dir, &files, &p); rc != 0) return rc;
  std::string key;
  if (!ReadText(key_file, &key)) {
    std::cerr << "medvaultctl: cannot read " << key_file << "\n";
    return 2;
  }
  auto sig = policy::SignBundleHash(key, p->bundle_hash);
  if (!sig.ok()) return Fail(key_file, sig.status());
  if (output.empty()) output = absl::StrCat(dir, "/", policy::kSignatureFile);
  std::ofstream out(output, std::ios::binary | std::ios::trunc);
  out.write(sig->data(), static_cast<std::streamsize>(sig->size()));
  if (!out.flush()) {
    std::cerr << "medvaultctl: cannot write " << output << "\n";
    return 1;
  }
  std::printf("signed version %llu, bundle_hash 0x%s: %s\n",
              static_cast<unsigned long long>(p->version), p->bundle_hash_hex.c_str(),
              output.c_str());
  return 0;
}

std::vector<std::string> TestFiles(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (struct dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (absl::EndsWith(name, ".textproto")) names.push_back(absl::StrCat(dir, "/", name));
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

int Test(const std::string& dir, std::string tests_dir, bool verbose) {
  BundleFiles files;
  std::shared_ptr<const policy::CompiledPolicy> p;
  if (int rc = Compile(dir, &files, &p); rc != 0) return rc;
  if (tests_dir.empty()) tests_dir = absl::StrCat(dir, "/tests");
  std::vector<std::string> suites = TestFiles(tests_dir);
  if (suites.empty()) {
    std::cerr << "medvaultctl: no *.textproto test suites in " << tests_dir << "\n";
    return 1;
  }
  int passed = 0, failed = 0;
  for (const std::string& path : suites) {
    std::string text;
    policy::v1::TestSuite suite;
    if (!ReadText(path, &text)) return Fail(path, absl::NotFoundError("cannot read"));
    if (auto s = policy::ParseTextProto(text, path, &suite); !s.ok()) return Fail(path, s);
    for (const policy::CaseResult& r : policy::RunSuite(*p, suite)) {
      (r.passed ? passed : failed)++;
      if (!r.passed) {
        std::printf("FAIL %s: %s: %s\n", path.c_str(), r.name.c_str(), r.failure.c_str());
      } else if (verbose) {
        std::printf("PASS %s: %s\n", path.c_str(), r.name.c_str());
      }
    }
  }
  std::printf("%s: %d passed, %d failed (bundle version %llu)\n", failed ? "FAIL" : "PASS", passed,
              failed, static_cast<unsigned long long>(p->version));
  return failed ? 1 : 0;
}

int Explain(const std::string& dir, const std::string& request_file) {
  BundleFiles files;
  std::shared_ptr<const policy::CompiledPolicy> p;
  if (int rc = Compile(dir, &files, &p); rc != 0) return rc;
  std::string text;
  policy::v1::Request request;
  if (!ReadText(request_file, &text)) {
    std::cerr << "medvaultctl: cannot read " << request_file << "\n";
    return 2;
  }
  if (auto s = policy::ParseTextProto(text, request_file, &request); !s.ok()) {
    return Fail(request_file, s);
  }
  std::vector<policy::v1::RuleTrace> traces;
  auto d = policy::Explain(*p, request, &traces);
  if (!d.ok()) return Fail("request refused", d.status());
  std::printf(
      "decision:    %s\nexplanation: %s\ndecision id: %s\npolicy:      version %llu, 0x%s\n",
      policy::v1::Effect_Name(d->effect()).c_str(), d->explanation().c_str(),
      d->decision_id().c_str(), static_cast<unsigned long long>(d->policy_version()),
      d->bundle_hash().c_str());
  if (!d->next_state().empty()) std::printf("next state:  %s\n", d->next_state().c_str());
  for (const auto& o : d->obligations()) {
    std::printf("obligation:  %s%s%s (from %s)\n", o.name().c_str(), o.due().empty() ? "" : " due ",
                o.due().c_str(), o.rule_id().c_str());
  }
  std::printf("rules for %s:\n", request.action().c_str());
  for (const auto& t : traces) {
    std::printf("  %-7s %s: %s\n", t.matched() ? "MATCH" : "no", t.rule_id().c_str(),
                t.reason().c_str());
  }
  return 0;
}

std::unique_ptr<internal::v1::Policy::Stub> Stub(const config::v1::Config& config) {
  return internal::v1::Policy::NewStub(ProcessChannel(config, Role::kPolicy));
}

int Info(const config::v1::Config& config) {
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(5));
  internal::v1::GetPolicyInfoResponse info;
  grpc::Status status = Stub(config)->GetPolicyInfo(&context, {}, &info);
  if (!status.ok()) return Report(status, "policy GetPolicyInfo");
  if (!info.bundle_loaded()) {
    std::printf("no bundle loaded: every decision is a deny\n");
  } else {
    std::printf("version:   %s\nhash:      0x%s\neffective: %s\nloaded:    %s\n",
                info.bundle_version().c_str(), info.bundle_hash().c_str(),
                info.effective_time().c_str(), info.loaded_time().c_str());
  }
  if (!info.last_error().empty()) std::printf("last load refused: %s\n", info.last_error().c_str());
  return 0;
}

int Reload(const config::v1::Config& config) {
  grpc::ClientContext context;
  SetDeadline(context, absl::Seconds(30));
  internal::v1::ReloadResponse response;
  grpc::Status status = Stub(config)->Reload(&context, {}, &response);
  if (!status.ok()) return Report(status, "policy Reload (the bundle in force keeps serving)");
  std::printf("%s: version %llu, 0x%s\n", response.changed() ? "loaded" : "unchanged",
              static_cast<unsigned long long>(response.bundle_version()),
              response.bundle_hash().c_str());
  return 0;
}

}  // namespace

PolicyCommands::PolicyCommands(CLI::App& app) {
  auto* policy = app.add_subcommand("policy", "the regulator's policy bundle");
  policy->require_subcommand(1);
  auto bundle = [&](CLI::App* sub) {
    sub->add_option("bundle", dir_, "bundle directory (manifest.textproto and the files it lists)")
        ->required();
    return sub;
  };
  lint_ =
      bundle(policy->add_subcommand("lint", "compile a bundle; report every error with file:line"));
  test_ = bundle(policy->add_subcommand("test", "run the policy's test suites against a bundle"));
  test_->add_option("--tests", tests_dir_, "directory of test suites (default: BUNDLE/tests)");
  test_->add_flag("-v,--verbose", verbose_, "list passing cases too");
  explain_ = bundle(policy->add_subcommand(
      "explain", "decide a request and say how every rule of its action fared"));
  explain_->add_option("request", request_file_, "medvault.policy.v1.Request in text format")
      ->required();
  hash_ = bundle(policy->add_subcommand("hash", "print the version and bundle hash to publish"));
  sign_ = bundle(policy->add_subcommand("sign", "sign a bundle with the regulator's private key"));
  sign_->add_option("--key", key_file_, "Ed25519 or ECDSA P-256 private key (PEM)")->required();
  sign_->add_option("-o,--output", output_, "signature file (default: BUNDLE/bundle.sig)");
  info_ = policy->add_subcommand("info", "the bundle the running medvault-policy serves");
  reload_ = policy->add_subcommand(
      "reload", "make medvault-policy load its bundle directory again (verified first)");
}

std::optional<int> PolicyCommands::RunOffline() {
  if (lint_->parsed()) return Lint(dir_);
  if (test_->parsed()) return Test(dir_, tests_dir_, verbose_);
  if (explain_->parsed()) return Explain(dir_, request_file_);
  if (hash_->parsed()) return Hash(dir_);
  if (sign_->parsed()) return Sign(dir_, key_file_, output_);
  return std::nullopt;
}

std::optional<int> PolicyCommands::RunOnline(const config::v1::Config& config) {
  if (info_->parsed()) return Info(config);
  if (reload_->parsed()) return Reload(config);
  return std::nullopt;
}

}  // namespace medvault::ctl
