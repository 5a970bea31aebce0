// receipt check: the bank gate's offline check, from the command line.
#include <unistd.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "ledger/cosignature.h"
#include "ledger/files.h"
#include "ledger/gate.h"

namespace ledgerctl {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr char kCheckHelp[] = R"(Usage: ledgerctl receipt check --receipt FILE --log-key VKEY [--entry FILE]
                              [--accessor A] [--holder H] [--subject TAG]
                              [--purpose P] [--categories C1,C2]
                              [--witness WKEY ... [--quorum K]] [--json]

Checks a receipt offline, as a data holder's gate does before releasing
data: the checkpoint is signed by the log (and, with --witness, cosigned by
K distinct listed witnesses: C2SP tlog-cosignature lines appended to the
receipt's checkpoint), the entry is included in its tree, the entry is an
access signed by its accessor's key, and it matches every expectation
given. Prints "allowed: ..." (exit 0) or "refused: <reason>" (exit 1).

Options:
  --receipt FILE       the receipt: a C2SP tlog-proof text (GET
                       /v1/proof/tlog-proof) or one line of "ledgerctl submit
                       --receipts" JSONL; "-" reads stdin
  --log-key VKEY       the log's verifier key (string or file, e.g. DIR/log.vkey)
  --entry FILE         the entry bytes (one line), if the receipt has no
                       extra line carrying it (if both, they must be equal)
  --accessor A         require this accessor
  --holder H           require this holder
  --subject TAG        require this subject tag (base64url 32 bytes)
  --purpose P          require this purpose
  --categories C1,C2   require each of these categories to be logged
  --witness WKEY       require cosignatures by this witness: its cosignature/v1
                       verifier key "<name>+<hash>+<base64>", or @FILE / a file
                       holding one (ledger-witness writes STATE/witness.vkey);
                       repeat for several witnesses. A listed witness's line
                       that does not verify refuses the receipt ("bad
                       cosignature: "); lines by other keys are ignored
  --quorum K           how many distinct listed witnesses must have cosigned
                       ("witness quorum: " otherwise) [every listed witness;
                       0 without --witness]; more than the distinct witnesses
                       listed is a usage error (exit 2)
  --json               print the decision as JSON (with --witness, "witnesses":
                       {"quorum", "listed", "cosigned": [{"witness", "timestamp"}]})
  --help               show this help
)";

std::string TrimRight(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

// LoadWitnessKey accepts a witness verifier key string, "@FILE", or the
// path of a file holding one (such as a witness's STATE/witness.vkey).
ledger::StatusOr<ledger::CosignatureVerifier> LoadWitnessKey(const std::string& value) {
  std::string vkey = value;
  std::string path = !value.empty() && value[0] == '@' ? value.substr(1) : "";
  if (path.empty() && access(value.c_str(), F_OK) == 0) path = value;
  if (!path.empty()) {
    auto text = ledger::ReadFile(path);
    if (!text.ok()) return ledger::Status::InvalidArgument("--witness: " + text.status().message());
    vkey = TrimRight(text->substr(0, text->find('\n')));
  }
  auto v = ledger::CosignatureVerifier::Parse(vkey);
  if (!v.ok())
    return ledger::Status::InvalidArgument("--witness must be a witness verifier key <name>+<hash>+<base64> or a file "
                                           "holding one: " + v.status().message());
  return v;
}

int Check(const Args& args) {
  auto log_key = LoadLogKey(args.Get("--log-key"));
  if (!log_key.ok()) return FailStatus(log_key.status(), "", true);
  ledger::GateExpectation expected;
  // The witness policy: --witness (repeatable) and --quorum [all listed].
  size_t distinct = 0;
  for (const std::string& value : args.All("--witness")) {
    auto w = LoadWitnessKey(value);
    if (!w.ok()) return FailStatus(w.status(), "", true);
    bool dup = false;
    for (const auto& seen : expected.witnesses) {
      if (seen.name() != w->name() || seen.key_id() != w->key_id()) continue;
      if (seen.public_key() != w->public_key())
        return UsageError("--witness: two different keys share the name and key ID of " + w->VerifierKeyString());
      dup = true;
    }
    if (!dup) distinct++;
    expected.witnesses.push_back(std::move(*w));
  }
  expected.quorum = distinct;
  if (args.Has("--quorum")) {
    auto q = ledger::ParseUint64(args.Get("--quorum"));
    if (!q.ok()) return UsageError("--quorum must be a whole number, got \"" + args.Get("--quorum") + "\"");
    if (*q > distinct)
      return UsageError("--quorum " + args.Get("--quorum") + " exceeds the " + std::to_string(distinct) +
                        " distinct witnesses given with --witness");
    expected.quorum = static_cast<size_t>(*q);
  }
  bool witnessed = !expected.witnesses.empty() || expected.quorum > 0;
  if (args.Has("--accessor")) expected.accessor = args.Get("--accessor");
  if (args.Has("--holder")) expected.holder = args.Get("--holder");
  if (args.Has("--purpose")) {
    expected.purpose = args.Get("--purpose");
    if (!ledger::FindPurpose(*expected.purpose)) return UsageError("--purpose: unknown purpose \"" + *expected.purpose + "\"");
  }
  if (args.Has("--subject")) {
    auto tag = ledger::Base64UrlDecode(args.Get("--subject"));
    if (!tag.ok() || tag->size() != 32) return UsageError("--subject must be a base64url 32-byte subject tag");
    expected.subject = *tag;
  }
  if (args.Has("--categories")) {
    auto cats = ParseCategories(args.Get("--categories"));
    if (!cats.ok()) return FailStatus(cats.status(), "", true);
    expected.categories = *cats;
  }
  std::string path = args.Get("--receipt");
  auto text = ReadInput(path);
  if (!text.ok()) return FailStatus(text.status(), "--receipt");
  std::string receipt = std::move(*text);
  size_t first = receipt.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && receipt[first] == '{') {
    // One line of `ledgerctl submit --receipts`.
    json j = json::parse(receipt, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("tlog_proof") || !j["tlog_proof"].is_string())
      return Fail("--receipt " + path + ": a JSON receipt must be one object with a \"tlog_proof\" string "
                  "(one line of ledgerctl submit --receipts)");
    receipt = j["tlog_proof"].get<std::string>();
  }
  std::optional<ledger::Bytes> entry;
  if (args.Has("--entry")) {
    auto e = ReadInput(args.Get("--entry"));
    if (!e.ok()) return FailStatus(e.status(), "--entry");
    entry = TrimRight(std::move(*e));
  }
  std::optional<ledger::ByteView> entry_view;
  if (entry) entry_view = ledger::ByteView(*entry);
  ledger::GateDecision d = ledger::CheckReceipt(receipt, entry_view, *log_key, expected);

  if (args.Has("--json")) {
    ordered_json out;
    out["allowed"] = d.allowed;
    out["reason"] = d.reason;
    if (d.tree_size > 0) {
      out["index"] = d.index;
      out["tree_size"] = d.tree_size;
    }
    if (d.access) out["access"] = ordered_json::parse(ledger::EncodeAccess(*d.access));
    if (witnessed) {
      ordered_json w;
      w["quorum"] = expected.quorum;
      w["listed"] = distinct;
      w["cosigned"] = ordered_json::array();
      for (const auto& c : d.cosignatures)
        w["cosigned"].push_back(ordered_json{{"witness", c.witness}, {"timestamp", c.timestamp}});
      out["witnesses"] = w;
    }
    std::cout << out.dump() << std::endl;
  } else if (d.allowed) {
    const ledger::AccessRecord& a = *d.access;
    std::string cats;
    for (const auto& c : a.categories) cats += (cats.empty() ? "" : ",") + c;
    std::cout << "allowed: entry " << d.index << " (tree size " << d.tree_size << "): accessor " << a.accessor
              << ", holder " << a.holder << ", purpose " << a.purpose << ", categories " << cats << ", request id "
              << a.request_id << ", time " << a.time << std::endl;
  } else {
    std::cout << "refused: " << d.reason << std::endl;
  }
  if (witnessed && !args.Has("--json") && (d.allowed || d.reason.rfind("witness quorum: ", 0) == 0)) {
    std::cout << "witnesses: " << d.cosignatures.size() << " of " << distinct << " listed cosigned, quorum "
              << expected.quorum << std::endl;
    for (const auto& c : d.cosignatures) std::cout << "  cosigned  " << c.witness << " (time " << c.timestamp << ")" << std::endl;
  }
  return d.allowed ? kExitOk : kExitFailure;
}

int GroupUsage(const Args&) { return UsageError("missing subcommand"); }

constexpr char kReceiptGroupHelp[] = R"(Usage: ledgerctl receipt check [options]

Commands:
  receipt check        check a receipt offline, as a bank's gate does

Run "ledgerctl receipt check --help" for the options.
)";

}  // namespace

std::vector<Command> ReceiptCommands() {
  return {
      {"receipt", nullptr, kReceiptGroupHelp, {}, {}, 0, 0, GroupUsage},
      {"receipt check", "check a receipt offline against the log key, as a bank's gate does", kCheckHelp,
       {{"--receipt", FlagDef::kValue}, {"--log-key", FlagDef::kValue}, {"--entry", FlagDef::kValue},
        {"--accessor", FlagDef::kValue}, {"--holder", FlagDef::kValue}, {"--subject", FlagDef::kValue},
        {"--purpose", FlagDef::kValue}, {"--categories", FlagDef::kValue}, {"--witness", FlagDef::kRepeated},
        {"--quorum", FlagDef::kValue}, {"--json", FlagDef::kSwitch}},
       {"--receipt", "--log-key"}, 0, 0, Check},
  };
}

}  // namespace ledgerctl
