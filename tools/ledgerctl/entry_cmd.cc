// Signing commands: authorize, revoke, policy publish, access sign.
#include <iostream>
#include <nlohmann/json.hpp>

#include "client.h"
#include "commands.h"
#include "ledger/files.h"
#include "ledger/record.h"

namespace ledgerctl {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr char kAuthorizeHelp[] = R"(Usage: ledgerctl authorize --holder NAME --holder-key PATH --accessor NAME
                           (--key PUB | --key-file PATH)... [--log URL] [--out FILE]

Signs, with the holder's key, an accessor entry authorising the accessor's
keys to access the holder's customers' data (time: now).

Options:
  --holder NAME        holder name (as registered in the log)
  --holder-key PATH    the holder's Ed25519 key file
  --accessor NAME      accessor name (a-z, 0-9, '.', '-', '_'; 1 to 64)
  --key PUB            an accessor public key, base64url (repeatable)
  --key-file PATH      an accessor key file; only its public key is used
                       (repeatable; 1 to 16 keys in all)
  --log URL            submit the entry to the log at URL and print
                       "entry N" (or "refused: <reason>", exit 1)
  --log-key VKEY       with --log: the log's verifier key (string or file);
                       the checkpoint's signature is then checked too
  --out FILE           append the entry (one line) to FILE
  --help               show this help
Without --log or --out the entry is printed as one line.
)";

constexpr char kRevokeHelp[] = R"(Usage: ledgerctl revoke --holder NAME --holder-key PATH --accessor NAME
                        (--key PUB | --key-file PATH)... [--log URL] [--out FILE]

Signs, with the holder's key, an accessor entry revoking the accessor's
keys (time: now). Accesses signed by a revoked key are refused from then on,
and a revoked key can never be authorised again.

Options:
  --holder NAME        holder name
  --holder-key PATH    the holder's Ed25519 key file
  --accessor NAME      accessor name
  --key PUB            an accessor public key, base64url (repeatable)
  --key-file PATH      an accessor key file; only its public key is used
                       (repeatable; 1 to 16 keys in all)
  --log URL            submit the entry and print "entry N" (or
                       "refused: <reason>", exit 1)
  --log-key VKEY       with --log: the log's verifier key (string or file)
  --out FILE           append the entry (one line) to FILE
  --help               show this help
Without --log or --out the entry is printed as one line.
)";

constexpr char kPolicyHelp[] = R"(Usage: ledgerctl policy publish --key PATH --holder NAME --accessor NAME --file POLICY.json
                                [--log URL] [--out FILE]

Signs, with the accessor's key, the accessor's policy for one holder: the
uses it discloses (time: now). POLICY.json is
  {"version": N,
   "purposes": [{"purpose": "CUSTOMER_SUPPORT",
                 "categories": ["ACCOUNT_BASIC", "BALANCES"],
                 "retention_days": 90}]}
retention_days is optional. Versions start at 1 and must increase; the
policy takes effect for accesses sequenced after it. The policy is checked
with the ledger's own parser (known purposes and categories, no prohibited
purpose such as TARGETED_ADVERTISING) before it is signed.

Options:
  --key PATH           the accessor's Ed25519 key file
  --holder NAME        holder name
  --accessor NAME      accessor name
  --file POLICY.json   the policy ("-": stdin)
  --log URL            submit the entry and print "entry N" (or
                       "refused: <reason>", exit 1)
  --log-key VKEY       with --log: the log's verifier key (string or file)
  --out FILE           append the entry (one line) to FILE
  --help               show this help
Without --log or --out the entry is printed as one line.
)";

constexpr char kPolicyGroupHelp[] = R"(Usage: ledgerctl policy publish [options]

Commands:
  policy publish       sign (and optionally submit) an accessor's policy

Run "ledgerctl policy publish --help" for the options.
)";

constexpr char kAccessHelp[] = R"(Usage: ledgerctl access sign --key PATH --accessor A --holder H --subject TAG
                             --purpose P --categories C1,C2 --consent REF
                             [--request-id ID] [--time RFC3339] [--actor X] [--detail Y]
                             [--out FILE]

Signs, with the accessor's key, the record of one access to a customer's
data and prints the entry as one line (JSONL), ready for "ledgerctl submit".

Options:
  --key PATH           the accessor's Ed25519 key file
  --accessor A         accessor name
  --holder H           holder name
  --subject TAG        the customer's subject tag for the period, base64url
                       32 bytes (from the holder: ledgerctl subject-token --tag-only)
  --purpose P          purpose code, e.g. CUSTOMER_SUPPORT
  --categories C1,C2   data categories, comma-separated, e.g. BALANCES,TRANSACTIONS
  --consent REF        reference of the customer's consent (1 to 256 bytes)
  --request-id ID      unique per accessor; a retry must reuse it
                       [random 128-bit hex]
  --time RFC3339       time of the access, UTC, e.g. 2026-12-01T10:00:00Z [now]
  --actor X            who acted (optional, 1 to 128 bytes)
  --detail Y           free text (optional, 1 to 1024 bytes)
  --out FILE           append the entry to FILE instead of printing it
  --help               show this help
)";

constexpr char kAccessGroupHelp[] = R"(Usage: ledgerctl access sign [options]

Commands:
  access sign          sign the record of one access (prints the entry)

Run "ledgerctl access sign --help" for the options.
)";

int AccessorEntry(const Args& args, ledger::AccessorRecord::Action action) {
  ledger::AccessorRecord rec;
  rec.holder = args.Get("--holder");
  rec.accessor = args.Get("--accessor");
  rec.action = action;
  for (const std::string& k : args.All("--key")) {
    auto key = DecodePublicKey(k, "--key");
    if (!key.ok()) return FailStatus(key.status(), "", true);
    rec.keys.push_back(*key);
  }
  for (const std::string& path : args.All("--key-file")) {
    auto key = PublicKeyFromFile(path, "ed25519");
    if (!key.ok()) return FailStatus(key.status(), "--key-file");
    rec.keys.push_back(*key);
  }
  if (rec.keys.empty()) return UsageError("give the accessor's keys with --key or --key-file");
  rec.time = NowRfc3339();
  ledger::Bytes payload = ledger::EncodeAccessor(rec);
  if (auto p = ledger::ParseAccessor(payload); !p.ok()) return FailStatus(p.status(), "", true);
  auto signer = ledger::LoadSigningKeyFile(args.Get("--holder-key"));
  if (!signer.ok()) return FailStatus(signer.status(), "--holder-key");
  return EmitEntry(args, ledger::SignEnvelope(ledger::kAccessorPayloadType, payload, **signer));
}

int Authorize(const Args& args) { return AccessorEntry(args, ledger::AccessorRecord::Action::kAuthorize); }
int Revoke(const Args& args) { return AccessorEntry(args, ledger::AccessorRecord::Action::kRevoke); }

int PolicyPublish(const Args& args) {
  std::string path = args.Get("--file");
  auto text = ReadInput(path);
  if (!text.ok()) return FailStatus(text.status());
  ordered_json doc = ordered_json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return Fail("policy file " + path + " is not a JSON object {\"version\": N, \"purposes\": [...]}");
  for (const auto& [k, v] : doc.items())
    if (k != "version" && k != "purposes")
      return Fail("policy file " + path + ": unknown field \"" + k + "\" (want \"version\" and \"purposes\")");
  if (!doc.contains("version") || !doc.contains("purposes"))
    return Fail("policy file " + path + ": needs \"version\" and \"purposes\"");
  // Assemble the payload and let the ledger's strict parser judge it.
  ordered_json payload;
  payload["holder"] = args.Get("--holder");
  payload["accessor"] = args.Get("--accessor");
  payload["version"] = doc["version"];
  payload["purposes"] = doc["purposes"];
  payload["time"] = NowRfc3339();
  auto policy = ledger::ParsePolicy(payload.dump());
  if (!policy.ok()) return Fail(path + ": " + policy.status().message());
  auto signer = ledger::LoadSigningKeyFile(args.Get("--key"));
  if (!signer.ok()) return FailStatus(signer.status(), "--key");
  return EmitEntry(args, ledger::SignEnvelope(ledger::kPolicyPayloadType, ledger::EncodePolicy(*policy), **signer));
}

int AccessSign(const Args& args) {
  ledger::AccessRecord rec;
  rec.request_id = args.Get("--request-id", RandomRequestId());
  rec.accessor = args.Get("--accessor");
  rec.holder = args.Get("--holder");
  auto subject = ledger::Base64UrlDecode(args.Get("--subject"));
  if (!subject.ok() || subject->size() != 32)
    return UsageError("--subject must be a base64url 32-byte subject tag");
  rec.subject = *subject;
  rec.purpose = args.Get("--purpose");
  if (!ledger::FindPurpose(rec.purpose)) {
    std::string known;
    for (const auto& p : ledger::Purposes()) known += std::string(known.empty() ? "" : ", ") + p.code;
    return UsageError("--purpose: unknown purpose \"" + rec.purpose + "\" (known: " + known + ")");
  }
  auto categories = ParseCategories(args.Get("--categories"));
  if (!categories.ok()) return FailStatus(categories.status(), "", true);
  rec.categories = *categories;
  rec.consent = args.Get("--consent");
  rec.time = args.Get("--time", NowRfc3339());
  if (!ledger::ParseTime(rec.time).ok()) return UsageError("--time must be RFC 3339 UTC like 2026-12-01T10:00:00Z");
  if (args.Has("--actor")) rec.actor = args.Get("--actor");
  if (args.Has("--detail")) rec.detail = args.Get("--detail");
  ledger::Bytes payload = ledger::EncodeAccess(rec);
  if (auto p = ledger::ParseAccess(payload); !p.ok()) return FailStatus(p.status(), "", true);
  auto signer = ledger::LoadSigningKeyFile(args.Get("--key"));
  if (!signer.ok()) return FailStatus(signer.status(), "--key");
  ledger::Bytes entry = ledger::SignEnvelope(ledger::kAccessPayloadType, payload, **signer);
  if (args.Has("--out")) {
    if (auto s = AppendText(args.Get("--out"), entry + "\n"); !s.ok()) return FailStatus(s);
    return kExitOk;
  }
  std::cout << entry << std::endl;
  return kExitOk;
}

int GroupUsage(const Args&) { return UsageError("missing subcommand"); }

const std::vector<FlagDef> kAccessorFlags = {
    {"--holder", FlagDef::kValue},   {"--holder-key", FlagDef::kValue}, {"--accessor", FlagDef::kValue},
    {"--key", FlagDef::kRepeated},   {"--key-file", FlagDef::kRepeated}, {"--log", FlagDef::kValue},
    {"--log-key", FlagDef::kValue},  {"--out", FlagDef::kValue}};

}  // namespace

int EmitEntry(const Args& args, const ledger::Bytes& entry) {
  if (args.Has("--out")) {
    if (auto s = AppendText(args.Get("--out"), entry + "\n"); !s.ok()) return FailStatus(s);
  }
  if (!args.Has("--log")) {
    if (!args.Has("--out")) std::cout << entry << std::endl;
    return kExitOk;
  }
  std::optional<ledger::NoteVerifier> log_key;
  if (args.Has("--log-key")) {
    auto k = LoadLogKey(args.Get("--log-key"));
    if (!k.ok()) return FailStatus(k.status(), "", true);
    log_key = *k;
  }
  auto client = LogClient::Connect(args.Get("--log"));
  if (!client.ok()) return FailStatus(client.status(), "", true);
  auto outcomes = (*client)->Submit({entry}, log_key);
  if (!outcomes.ok()) return FailStatus(outcomes.status());
  const EntryOutcome& o = (*outcomes)[0];
  if (!o.accepted) {
    std::cout << "refused: " << o.refusal << std::endl;
    return kExitFailure;
  }
  std::cout << "entry " << o.index << std::endl;
  return kExitOk;
}

std::vector<Command> EntryCommands() {
  return {
      {"authorize", "sign (and submit) a holder's authorisation of an accessor's keys", kAuthorizeHelp, kAccessorFlags,
       {"--holder", "--holder-key", "--accessor"}, 0, 0, Authorize},
      {"revoke", "sign (and submit) a holder's revocation of an accessor's keys", kRevokeHelp, kAccessorFlags,
       {"--holder", "--holder-key", "--accessor"}, 0, 0, Revoke},
      {"policy", nullptr, kPolicyGroupHelp, {}, {}, 0, 0, GroupUsage},
      {"policy publish", "sign (and submit) an accessor's policy of disclosed uses", kPolicyHelp,
       {{"--key", FlagDef::kValue}, {"--holder", FlagDef::kValue}, {"--accessor", FlagDef::kValue},
        {"--file", FlagDef::kValue}, {"--log", FlagDef::kValue}, {"--log-key", FlagDef::kValue},
        {"--out", FlagDef::kValue}},
       {"--key", "--holder", "--accessor", "--file"}, 0, 0, PolicyPublish},
      {"access", nullptr, kAccessGroupHelp, {}, {}, 0, 0, GroupUsage},
      {"access sign", "sign the record of one access (prints the entry line)", kAccessHelp,
       {{"--key", FlagDef::kValue}, {"--accessor", FlagDef::kValue}, {"--holder", FlagDef::kValue},
        {"--subject", FlagDef::kValue}, {"--purpose", FlagDef::kValue}, {"--categories", FlagDef::kValue},
        {"--consent", FlagDef::kValue}, {"--request-id", FlagDef::kValue}, {"--time", FlagDef::kValue},
        {"--actor", FlagDef::kValue}, {"--detail", FlagDef::kValue}, {"--out", FlagDef::kValue}},
       {"--key", "--accessor", "--holder", "--subject", "--purpose", "--categories", "--consent"}, 0, 0, AccessSign},
  };
}

}  // namespace ledgerctl
