// submit: send JSONL entries to the log in batches and keep the receipts.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "client.h"
#include "commands.h"
#include "ledger/record.h"

namespace ledgerctl {
namespace {

using ordered_json = nlohmann::ordered_json;

constexpr char kSubmitHelp[] = R"(Usage: ledgerctl submit --log URL [--batch N] [--receipts FILE] [--log-key VKEY] FILE|-

Reads signed entries, one per line (JSONL, as the signing commands print
them; blank lines are ignored), from FILE or stdin ("-"), submits them to
the log in batches and prints one line per entry, in input order:
  entry N               logged at index N (or already logged there)
  refused: <reason>     refused by the log, or malformed (not sent)
Each receipt is verified against the checkpoint the log returns before it
is reported or saved.

Options:
  --log URL            the log, e.g. http://127.0.0.1:8080
  --batch N            entries per request, 1 to 1000 [100]
  --receipts FILE      append one JSON line per logged entry:
                       {"index": N, "leaf_hash": "<base64>", "tlog_proof": "<C2SP tlog-proof text>"}
                       the tlog-proof's extra line carries the entry; "ledgerctl
                       receipt check --receipt" accepts such a line
  --log-key VKEY       the log's verifier key (string or file, e.g. DIR/log.vkey);
                       the checkpoint's signature is then checked too
  --help               show this help
Exit status: 0 if every entry was logged, 1 if any was refused or the
submission failed, 2 for a usage error.
)";

// Slot is one non-blank input line: refused locally, or sent as batch[k].
struct Slot {
  size_t line = 0;
  std::string local_refusal;
  size_t batch_index = 0;
};

int Submit(const Args& args) {
  size_t batch_size = 100;
  if (args.Has("--batch")) {
    auto n = ledger::ParseUint64(args.Get("--batch"));
    if (!n.ok() || *n < 1 || *n > 1000) return UsageError("--batch must be a whole number from 1 to 1000");
    batch_size = static_cast<size_t>(*n);
  }
  std::optional<ledger::NoteVerifier> log_key;
  if (args.Has("--log-key")) {
    auto k = LoadLogKey(args.Get("--log-key"));
    if (!k.ok()) return FailStatus(k.status(), "", true);
    log_key = *k;
  }
  auto client = LogClient::Connect(args.Get("--log"));
  if (!client.ok()) return FailStatus(client.status(), "", true);
  std::string input = args.positional()[0];
  std::ifstream file;
  std::istream* in = &std::cin;
  if (input != "-") {
    file.open(input, std::ios::binary);
    if (!file) return Fail("cannot open " + input);
    in = &file;
  }
  std::string receipts_path = args.Get("--receipts");

  size_t accepted = 0, refused = 0, line_no = 0;
  std::vector<Slot> slots;
  std::vector<ledger::Bytes> batch;
  // Flush submits the batch and prints every pending slot in input order.
  auto flush = [&]() -> int {
    std::vector<EntryOutcome> outcomes;
    if (!batch.empty()) {
      auto r = (*client)->Submit(batch, log_key);
      if (!r.ok()) {
        return Fail(r.status().message() + " (entries from input line " + std::to_string(slots.front().line) +
                    " on were not confirmed; submitting them again is safe)");
      }
      outcomes = std::move(*r);
    }
    std::string receipts;
    for (const Slot& s : slots) {
      if (!s.local_refusal.empty()) {
        std::cout << "refused: " << s.local_refusal << "\n";
        refused++;
        continue;
      }
      const EntryOutcome& o = outcomes[s.batch_index];
      if (!o.accepted) {
        std::cout << "refused: " << o.refusal << "\n";
        refused++;
        continue;
      }
      std::cout << "entry " << o.index << "\n";
      accepted++;
      if (!receipts_path.empty()) {
        ordered_json j;
        j["index"] = o.index;
        j["leaf_hash"] = ledger::Base64Encode(ledger::HashView(o.leaf_hash));
        j["tlog_proof"] = o.tlog_proof;
        receipts += j.dump() + "\n";
      }
    }
    std::cout.flush();
    if (!receipts.empty()) {
      if (auto s = AppendText(receipts_path, receipts); !s.ok()) return FailStatus(s, "--receipts");
    }
    slots.clear();
    batch.clear();
    return kExitOk;
  };

  std::string line;
  while (std::getline(*in, line)) {
    line_no++;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    Slot slot;
    slot.line = line_no;
    if (line.size() > 65535) {
      slot.local_refusal = "entry on line " + std::to_string(line_no) + " is larger than 65535 bytes";
    } else if (auto e = ledger::ParseEntry(line); !e.ok()) {
      slot.local_refusal = e.status().message() + " (line " + std::to_string(line_no) + ", not sent)";
    } else {
      slot.batch_index = batch.size();
      batch.push_back(line);
    }
    slots.push_back(std::move(slot));
    if (batch.size() >= batch_size) {
      if (int rc = flush(); rc != kExitOk) return rc;
    }
  }
  if (in->bad()) return Fail("reading " + input + " failed");
  if (!slots.empty()) {
    if (int rc = flush(); rc != kExitOk) return rc;
  }
  if (refused > 0) {
    return Fail(std::to_string(refused) + " of " + std::to_string(refused + accepted) + " entries refused");
  }
  if (accepted == 0) std::cerr << "ledgerctl submit: no entries in " << input << std::endl;
  return kExitOk;
}

}  // namespace

std::vector<Command> SubmitCommands() {
  return {
      {"submit", "submit JSONL entries to the log in batches, saving receipts", kSubmitHelp,
       {{"--log", FlagDef::kValue}, {"--batch", FlagDef::kValue}, {"--receipts", FlagDef::kValue},
        {"--log-key", FlagDef::kValue}},
       {"--log"}, 1, 1, Submit},
  };
}

}  // namespace ledgerctl
