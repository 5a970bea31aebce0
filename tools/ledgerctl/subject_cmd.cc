// subject-token and subject-token verify.
#include <iostream>

#include "commands.h"
#include "ledger/files.h"
#include "ledger/subject.h"

namespace ledgerctl {
namespace {

constexpr char kIssueHelp[] = R"(Usage: ledgerctl subject-token --holder H --vrf-key PATH --customer ID --period YYYY-MM [--tag-only]
       ledgerctl subject-token verify --token T --holder-vrf-key KEY

Issues a customer's subject token for one period (a month) with the
holder's VRF key:
  ledger-subject-v1:<holder>:<YYYY-MM>:<base64url customer id>:<base64url tag>:<base64url proof>
The tag (the first 32 bytes of the ECVRF output over the customer id and
period) is what access entries carry; the proof lets the customer check,
with the holder's public VRF key from the log, that it is their tag. Give
the token to the customer only; give accessors the tag (--tag-only).

Options:
  --holder H           holder name
  --vrf-key PATH       the holder's VRF key file (keygen --type vrf)
  --customer ID        the holder's customer id (1 to 256 bytes)
  --period YYYY-MM     the month, e.g. 2026-12
  --tag-only           print only the base64url subject tag
  --help               show this help
)";

constexpr char kVerifyHelp[] = R"(Usage: ledgerctl subject-token verify --token T --holder-vrf-key KEY [--holder H]

Checks a subject token: its VRF proof must verify with the holder's public
VRF key (from the holder's entry in the log, or the holders file) and its
tag must be the one the proof yields. Prints "valid: ..." (exit 0) or
"invalid: <reason>" (exit 1).

Options:
  --token T            the token (ledger-subject-v1:...)
  --holder-vrf-key KEY the holder's VRF public key, base64url (or a VRF key file)
  --holder H           also require the token to name holder H
  --help               show this help
)";

int Issue(const Args& args) {
  auto key = ledger::LoadVrfKeyFile(args.Get("--vrf-key"));
  if (!key.ok()) return FailStatus(key.status(), "--vrf-key");
  auto token = ledger::IssueSubjectToken(**key, args.Get("--holder"), args.Get("--customer"), args.Get("--period"));
  if (!token.ok()) return FailStatus(token.status(), "", true);
  if (args.Has("--tag-only")) {
    std::cout << ledger::Base64UrlEncode(token->tag) << std::endl;
  } else {
    std::cout << ledger::FormatSubjectToken(*token) << std::endl;
  }
  return kExitOk;
}

int Verify(const Args& args) {
  auto key = PublicKeyArg(args.Get("--holder-vrf-key"), "ecvrf", "--holder-vrf-key");
  if (!key.ok()) return FailStatus(key.status(), "", true);
  auto token = ledger::ParseSubjectToken(args.Get("--token"));
  if (!token.ok()) {
    std::cout << "invalid: " << token.status().message() << std::endl;
    return kExitFailure;
  }
  if (args.Has("--holder") && token->holder != args.Get("--holder")) {
    std::cout << "invalid: the token is for holder " << token->holder << ", not " << args.Get("--holder") << std::endl;
    return kExitFailure;
  }
  ledger::Status s = ledger::VerifySubjectToken(*token, *key);
  if (s.IsInvalidArgument() && s.message().rfind("holder VRF public key", 0) == 0) return UsageError(s.message());
  if (!s.ok()) {
    std::cout << "invalid: " << s.message() << std::endl;
    return kExitFailure;
  }
  std::cout << "valid: holder " << token->holder << ", period " << token->period << ", tag "
            << ledger::Base64UrlEncode(token->tag) << std::endl;
  return kExitOk;
}

}  // namespace

std::vector<Command> SubjectCommands() {
  return {
      {"subject-token", "issue a customer's subject token (or just the tag) for a period", kIssueHelp,
       {{"--holder", FlagDef::kValue}, {"--vrf-key", FlagDef::kValue}, {"--customer", FlagDef::kValue},
        {"--period", FlagDef::kValue}, {"--tag-only", FlagDef::kSwitch}},
       {"--holder", "--vrf-key", "--customer", "--period"}, 0, 0, Issue},
      {"subject-token verify", "check a subject token against the holder's VRF public key", kVerifyHelp,
       {{"--token", FlagDef::kValue}, {"--holder-vrf-key", FlagDef::kValue}, {"--holder", FlagDef::kValue}},
       {"--token", "--holder-vrf-key"}, 0, 0, Verify},
  };
}

}  // namespace ledgerctl
