// checkpoint, inclusion, consistency and receipt: the single-proof commands.
// Proofs are computed by the verifier from the log's tiles (TileHashReader)
// and verified with the pure RFC 9162 functions; the log's own proof
// endpoints are never used.
//
// Thread-safety: the commands run on the main thread.
#include <iostream>
#include <sstream>

#include "commands.h"
#include "fetcher.h"
#include "ledger/gate.h"
#include "ledger/merkle.h"
#include "ledger/record.h"
#include "ledger/tlog_proof.h"
#include "log_reader.h"

namespace verifier {
namespace {

using ledger::Bytes;
using ledger::Hash;
using ledger::Status;
using json = nlohmann::json;

std::string B64(const Hash& h) { return ledger::Base64Encode(ledger::HashView(h)); }

std::string Indent(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) out += prefix + line + "\n";
  return out;
}

void PrintJson(const ordered_json& j) { std::cout << DumpJson(j) << std::endl; }

// PrintCheckpointRefused reports a checkpoint from |where| that does not
// verify (the log's signature, a witness's cosignature, or the witness
// quorum); for a quorum failure it lists which witnesses cosigned.
void PrintCheckpointRefused(const std::string& where, const Status& s, const WitnessPolicy& witnesses,
                            const std::vector<ledger::WitnessCosignature>& cosigned, bool as_json) {
  bool quorum = IsQuorumFailure(s);
  if (as_json) {
    ordered_json j;
    j["verified"] = false;
    j["error"] = where + ": " + s.message();
    if (quorum) j["witnesses"] = WitnessesJson(witnesses, cosigned);
    PrintJson(j);
  } else {
    std::cout << "NOT VERIFIED: " << where << " does not verify: " << s.message() << "\n";
    if (quorum) std::cout << WitnessesText(witnesses, cosigned, "  ");
  }
}

// LoadCheckpoint loads the checkpoint named by |flag| (a file or "-"), or
// fetches the log's latest when the flag is absent, and verifies it with
// the log key and the witness policy. Sets *exit_code and returns nullopt
// when it cannot (2: I/O or usage, 1: does not verify).
std::optional<SignedCheckpoint> LoadCheckpoint(const Args& args, const std::string& flag, Fetcher* fetcher,
                                               const ledger::NoteVerifier& key, const WitnessPolicy& witnesses,
                                               bool as_json, int* exit_code) {
  ledger::StatusOr<SignedCheckpoint> cp = Status::Internal("unset");
  std::vector<ledger::WitnessCosignature> cosigned;
  std::string where;
  if (args.Has(flag)) {
    where = args.Get(flag) == "-" ? "stdin" : args.Get(flag);
    auto note = ReadWholeFile(args.Get(flag));
    if (!note.ok()) {
      *exit_code = IoError(flag + ": " + note.status().message());
      return std::nullopt;
    }
    cp = OpenSignedCheckpoint(*note, key, witnesses, &cosigned);
  } else {
    if (!fetcher) {
      *exit_code = UsageError("give --log to fetch the checkpoint, or " + flag + " FILE");
      return std::nullopt;
    }
    where = fetcher->Describe("checkpoint");
    cp = FetchCheckpoint(*fetcher, key, witnesses, &cosigned);
  }
  if (cp.ok()) return *cp;
  if (!IsVerificationFailure(cp.status())) {
    *exit_code = IoError(cp.status().message());
    return std::nullopt;
  }
  PrintCheckpointRefused("the checkpoint " + where, cp.status(), witnesses, cosigned, as_json);
  *exit_code = kExitFailed;
  return std::nullopt;
}

// OpenFetcherIfGiven opens --log when present.
ledger::StatusOr<std::unique_ptr<Fetcher>> OpenFetcherIfGiven(const Args& args) {
  if (!args.Has("--log")) return std::unique_ptr<Fetcher>();
  return Fetcher::Open(args.Get("--log"));
}

// --- checkpoint ---------------------------------------------------------------

constexpr char kCheckpointHelp[] = R"(Usage: ledger-verify checkpoint --log-key VKEY [--log URL|DIR] [--checkpoint FILE|-]
                                [--witness WKEY ... [--quorum K]] [--json]

Verifies a checkpoint's signature with the log key (C2SP signed-note and
tlog-checkpoint) and prints its origin, size and root. Without --checkpoint
the log's current checkpoint (GET /checkpoint, or DIR/checkpoint) is fetched.
With --witness, the checkpoint must also carry valid C2SP tlog-cosignature
cosignatures from K distinct listed witnesses (a witness's cosignature lines
appended to the signed note, as ledger-witness returns them).

Options:
  --log URL|DIR        the log's base URL or a mirror directory
  --log-key VKEY       the log's verifier key, or @FILE (e.g. @DATA/log.vkey)
  --checkpoint FILE    the signed checkpoint to verify ("-": stdin)
)" LEDGER_VERIFY_WITNESS_HELP R"(  --json               {"checkpoint": {"origin", "size", "root"}, "note": "<text>",
                        "witnesses"?: {...}, "verified": true}
  --help               show this help
Exit status: 0 verified, 1 the signature does not verify (or another log's
key signed it, or a listed witness's cosignature is bad, or fewer than K
listed witnesses cosigned), 2 usage or I/O error (including --quorum larger
than the number of distinct witnesses).
)";

int RunCheckpoint(const Args& args) {
  auto key = LoadLogKey(args.Get("--log-key"));
  if (!key.ok()) return ExitForStatus(key.status());
  auto witnesses = LoadWitnessPolicy(args);
  if (!witnesses.ok()) return ExitForStatus(witnesses.status());
  auto fetcher = OpenFetcherIfGiven(args);
  if (!fetcher.ok()) return UsageError(fetcher.status().message());
  bool as_json = args.Has("--json");
  int rc = 0;
  auto cp = LoadCheckpoint(args, "--checkpoint", fetcher->get(), *key, *witnesses, as_json, &rc);
  if (!cp) return rc;
  if (as_json) {
    ordered_json j;
    j["checkpoint"] = CheckpointJson(cp->body);
    j["note"] = cp->note;
    if (witnesses->active()) j["witnesses"] = WitnessesJson(*witnesses, cp->cosignatures);
    j["verified"] = true;
    PrintJson(j);
  } else {
    std::cout << "verified: checkpoint of " << cp->body.origin << "\n"
              << "  size  " << cp->body.size << "\n"
              << "  root  " << B64(cp->body.root) << "\n"
              << "  key   " << key->VerifierKeyString() << "\n";
    if (witnesses->active()) std::cout << WitnessesText(*witnesses, cp->cosignatures, "  ");
  }
  return kExitVerified;
}

// --- inclusion ----------------------------------------------------------------

constexpr char kInclusionHelp[] = R"(Usage: ledger-verify inclusion --log-key VKEY (--entry FILE | --leaf-hash B64) --index I
                               [--log URL|DIR] [--checkpoint FILE] [--witness WKEY ... [--quorum K]] [--json]
       ledger-verify inclusion --log-key VKEY --proof FILE [--entry FILE | --leaf-hash B64]
                               [--witness WKEY ... [--quorum K]] [--json]

Proves that an entry is at index I in the tree of a signed checkpoint. The
inclusion proof is computed by the verifier from the log's tiles (never
asked of the log) and verified per RFC 9162 §2.1.3.2. With --proof, the
proof and checkpoint come from a C2SP tlog-proof file instead (nothing is
fetched); its extra line, if any, is the entry.

Options:
  --log URL|DIR        the log's base URL or a mirror directory
  --log-key VKEY       the log's verifier key, or @FILE
  --entry FILE         the entry bytes (one line; the final newline is not
                       part of the entry)
  --leaf-hash B64      or the entry's leaf hash, base64 SHA-256(0x00 || entry)
  --index I            the entry's index
  --checkpoint FILE    prove against this signed checkpoint [the log's latest]
  --proof FILE         a C2SP tlog-proof (GET /v1/proof/tlog-proof) to check
)" LEDGER_VERIFY_WITNESS_HELP R"(                       (the checkpoint proven against, or the tlog-proof's)
  --json               {"index", "leaf_hash", "checkpoint": {...}, "inclusion": [...],
                        "witnesses"?: {...}, "verified", "note"}
  --help               show this help
Exit status: 0 verified, 1 not included (or the checkpoint does not
verify, or lacks the witness quorum), 2 usage or I/O error.
)";

int RunInclusion(const Args& args) {
  auto key = LoadLogKey(args.Get("--log-key"));
  if (!key.ok()) return ExitForStatus(key.status());
  auto witnesses = LoadWitnessPolicy(args);
  if (!witnesses.ok()) return ExitForStatus(witnesses.status());
  bool as_json = args.Has("--json");
  if (args.Has("--entry") && args.Has("--leaf-hash")) return UsageError("give --entry or --leaf-hash, not both");
  bool with_proof = args.Has("--proof");
  if (with_proof && args.Has("--checkpoint"))
    return UsageError("--proof carries its checkpoint; --checkpoint is for proofs computed from the log's tiles");
  if (!with_proof && !args.Has("--entry") && !args.Has("--leaf-hash"))
    return UsageError("give the entry: --entry FILE or --leaf-hash B64");
  if (!with_proof && !args.Has("--index")) return UsageError("missing required flag --index");
  if (!with_proof && !args.Has("--log")) return UsageError("missing required flag --log (or use --proof FILE)");

  std::optional<uint64_t> index;
  if (args.Has("--index")) {
    auto i = ledger::ParseUint64(args.Get("--index"));
    if (!i.ok()) return UsageError("--index must be a whole number, got \"" + args.Get("--index") + "\"");
    index = *i;
  }
  std::optional<Hash> leaf;
  Bytes entry;
  if (args.Has("--entry")) {
    auto e = EntryFromFile(args.Get("--entry"));
    if (!e.ok()) return e.status().IsInvalidArgument() ? UsageError(e.status().message()) : IoError(e.status().message());
    entry = *e;
    leaf = ledger::HashLeaf(entry);
  } else if (args.Has("--leaf-hash")) {
    auto raw = ledger::Base64Decode(args.Get("--leaf-hash"));
    if (!raw.ok() || raw->size() != 32) return UsageError("--leaf-hash must be a base64 SHA-256 hash (32 bytes)");
    leaf = *ledger::HashFromBytes(*raw);
  }

  std::optional<SignedCheckpoint> cp;
  std::vector<Hash> proof;
  std::string proof_source;
  if (with_proof) {
    auto text = ReadWholeFile(args.Get("--proof"));
    if (!text.ok()) return IoError("--proof: " + text.status().message());
    auto tp = ledger::ParseTlogProof(*text);
    if (!tp.ok()) {
      if (as_json) PrintJson(ordered_json{{"verified", false}, {"error", "malformed tlog-proof: " + tp.status().message()}});
      else std::cout << "NOT VERIFIED: malformed tlog-proof: " << tp.status().message() << "\n";
      return kExitFailed;
    }
    if (index && *index != tp->index)
      return UsageError("--index " + std::to_string(*index) + " differs from the proof's index " + std::to_string(tp->index));
    index = tp->index;
    if (!leaf) {
      if (tp->extra.empty()) return UsageError("the proof has no extra line with the entry: give --entry or --leaf-hash");
      entry = tp->extra;
      leaf = ledger::HashLeaf(entry);
    }
    std::vector<ledger::WitnessCosignature> cosigned;
    auto opened = OpenSignedCheckpoint(tp->checkpoint, *key, *witnesses, &cosigned);
    if (!opened.ok()) {
      PrintCheckpointRefused("the proof's checkpoint", opened.status(), *witnesses, cosigned, as_json);
      return kExitFailed;
    }
    cp = *opened;
    proof = tp->inclusion;
    proof_source = "the tlog-proof " + args.Get("--proof");
  } else {
    auto fetcher = Fetcher::Open(args.Get("--log"));
    if (!fetcher.ok()) return UsageError(fetcher.status().message());
    int rc = 0;
    cp = LoadCheckpoint(args, "--checkpoint", fetcher->get(), *key, *witnesses, as_json, &rc);
    if (!cp) return rc;
    if (*index < cp->body.size) {
      TileHashReader reader(fetcher->get(), cp->body.size);
      auto p = ledger::InclusionProof(*index, cp->body.size, reader);
      if (!p.ok()) {
        if (!IsVerificationFailure(p.status())) return IoError("cannot compute the proof from the log's tiles: " + p.status().message());
        if (as_json) PrintJson(ordered_json{{"verified", false}, {"error", p.status().message()}});
        else std::cout << "NOT VERIFIED: the log's tiles are malformed: " << p.status().message() << "\n";
        return kExitFailed;
      }
      proof = *p;
    }
    proof_source = "the log's tiles";
  }

  Status ok = ledger::VerifyInclusion(*leaf, *index, cp->body.size, proof, cp->body.root);
  if (as_json) {
    ordered_json j;
    j["index"] = *index;
    j["leaf_hash"] = B64(*leaf);
    j["checkpoint"] = CheckpointJson(cp->body);
    j["inclusion"] = HashesJson(proof);
    if (witnesses->active()) j["witnesses"] = WitnessesJson(*witnesses, cp->cosignatures);
    j["verified"] = ok.ok();
    if (!ok.ok()) j["error"] = ok.message();
    j["note"] = cp->note;
    PrintJson(j);
  } else if (ok.ok()) {
    std::cout << "verified: entry " << *index << " (leaf hash " << B64(*leaf) << ") is in the tree of size "
              << cp->body.size << "\n  root       " << B64(cp->body.root) << " (" << cp->body.origin
              << ", signature verified)\n";
    if (witnesses->active()) std::cout << WitnessesText(*witnesses, cp->cosignatures, "  ");
    std::cout << "  proof from " << proof_source << ":\n";
    for (const Hash& h : proof) std::cout << "    " << B64(h) << "\n";
  } else {
    std::cout << "NOT VERIFIED: entry " << *index << " (leaf hash " << B64(*leaf) << ") is not proven in the tree of size "
              << cp->body.size << ": " << ok.message() << "\n";
  }
  return ok.ok() ? kExitVerified : kExitFailed;
}

// --- consistency --------------------------------------------------------------

constexpr char kConsistencyHelp[] = R"(Usage: ledger-verify consistency --log URL|DIR --log-key VKEY --old FILE [--new FILE]
                                 [--witness WKEY ... [--quorum K]] [--json]

Proves that a newer checkpoint extends an older one: the tree of the old
checkpoint is a prefix of the new one (append-only, no fork). Both
checkpoints must be signed by the log key. The consistency proof is
computed by the verifier from the tiles of the newer tree and verified per
RFC 9162 §2.1.4.2. On failure both checkpoints are printed: two signed,
inconsistent checkpoints are the evidence of a fork.

Options:
  --log URL|DIR        the log's base URL or a mirror directory
  --log-key VKEY       the log's verifier key, or @FILE
  --old FILE           the older signed checkpoint (e.g. saved earlier)
  --new FILE           the newer signed checkpoint [the log's latest]
)" LEDGER_VERIFY_WITNESS_HELP R"(                       (both checkpoints must meet it)
  --json               {"old": {...}, "new": {...}, "consistency": [...], "verified",
                        "old_checkpoint": "<note>", "new_checkpoint": "<note>",
                        "old_witnesses"?: {...}, "new_witnesses"?: {...}}
  --help               show this help
Exit status: 0 consistent, 1 not consistent (fork or rollback) or a
checkpoint does not verify (or lacks the witness quorum), 2 usage or I/O
error.
)";

int RunConsistency(const Args& args) {
  auto key = LoadLogKey(args.Get("--log-key"));
  if (!key.ok()) return ExitForStatus(key.status());
  auto witnesses = LoadWitnessPolicy(args);
  if (!witnesses.ok()) return ExitForStatus(witnesses.status());
  bool as_json = args.Has("--json");
  auto fetcher = Fetcher::Open(args.Get("--log"));
  if (!fetcher.ok()) return UsageError(fetcher.status().message());
  int rc = 0;
  auto old_cp = LoadCheckpoint(args, "--old", fetcher->get(), *key, *witnesses, as_json, &rc);
  if (!old_cp) return rc;
  auto new_cp = LoadCheckpoint(args, "--new", fetcher->get(), *key, *witnesses, as_json, &rc);
  if (!new_cp) return rc;
  const ledger::Checkpoint& o = old_cp->body;
  const ledger::Checkpoint& n = new_cp->body;

  std::vector<Hash> proof;
  Status verdict;
  if (n.size < o.size) {
    verdict = Status::FailedPrecondition("the new checkpoint (size " + std::to_string(n.size) +
                                         ") is smaller than the old one (size " + std::to_string(o.size) +
                                         "): the log rolled back or forked");
  } else {
    TileHashReader reader(fetcher->get(), n.size);
    auto p = ledger::ConsistencyProof(o.size, n.size, reader);
    if (!p.ok()) {
      if (!IsVerificationFailure(p.status()) && !p.status().IsNotFound())
        return IoError("cannot compute the consistency proof from the log's tiles: " + p.status().message());
      verdict = Status::FailedPrecondition("cannot compute a consistency proof from the log's tiles: " + p.status().message());
    } else {
      proof = *p;
      verdict = ledger::VerifyConsistency(o.size, n.size, proof, o.root, n.root);
    }
  }
  if (as_json) {
    ordered_json j;
    j["old"] = CheckpointJson(o);
    j["new"] = CheckpointJson(n);
    j["consistency"] = HashesJson(proof);
    j["verified"] = verdict.ok();
    if (!verdict.ok()) j["error"] = verdict.message();
    j["old_checkpoint"] = old_cp->note;
    j["new_checkpoint"] = new_cp->note;
    if (witnesses->active()) {
      j["old_witnesses"] = WitnessesJson(*witnesses, old_cp->cosignatures);
      j["new_witnesses"] = WitnessesJson(*witnesses, new_cp->cosignatures);
    }
    PrintJson(j);
  } else if (verdict.ok()) {
    std::cout << "verified: the tree of size " << n.size << " extends the tree of size " << o.size << " (" << o.origin
              << ")\n  old root  " << B64(o.root) << "\n  new root  " << B64(n.root) << "\n";
    if (witnesses->active()) {
      std::cout << "  old checkpoint:\n" << WitnessesText(*witnesses, old_cp->cosignatures, "    ");
      std::cout << "  new checkpoint:\n" << WitnessesText(*witnesses, new_cp->cosignatures, "    ");
    }
    std::cout << "  proof from the log's tiles:\n";
    for (const Hash& h : proof) std::cout << "    " << B64(h) << "\n";
  } else {
    std::cout << "NOT VERIFIED: FORK: " << verdict.message() << "\n"
              << "Evidence: two checkpoints signed by " << key->VerifierKeyString() << " that are not consistent.\n"
              << "Old checkpoint:\n"
              << Indent(old_cp->note, "  ") << "New checkpoint:\n"
              << Indent(new_cp->note, "  ");
  }
  return verdict.ok() ? kExitVerified : kExitFailed;
}

// --- receipt ------------------------------------------------------------------

constexpr char kReceiptHelp[] = R"(Usage: ledger-verify receipt --log-key VKEY --receipt FILE [--entry FILE]
                             [--accessor A] [--holder H] [--subject TAG]
                             [--purpose P] [--categories C1,C2]
                             [--witness WKEY ... [--quorum K]] [--json]

The offline gate check (ledger::CheckReceipt, as a bank's gate runs it): the
receipt's checkpoint is signed by the log key (and, with --witness,
cosigned by K distinct listed witnesses), the entry is included in its
tree, the entry is an access signed by its accessor's key, and it matches
every expectation given. Nothing is fetched.

Options:
  --receipt FILE       a C2SP tlog-proof text (GET /v1/proof/tlog-proof), or
                       one JSON line {"tlog_proof": "<text>", ...} (ledgerctl
                       submit --receipts); "-" reads stdin
  --log-key VKEY       the log's verifier key, or @FILE
  --entry FILE         the entry bytes, if the receipt has no extra line
  --accessor A, --holder H, --subject TAG (base64url), --purpose P
                       require these to match the logged access
  --categories C1,C2   require each of these categories to be logged
)" LEDGER_VERIFY_WITNESS_HELP R"(                       (refusals: "bad cosignature: ...", "witness quorum: ...")
  --log URL|DIR        accepted for symmetry; not used
  --json               {"verified", "reason", "index", "tree_size", "access": {...},
                        "witnesses"?: {...}}
  --help               show this help
Exit status: 0 allowed, 1 refused, 2 usage or I/O error.
)";

int RunReceipt(const Args& args) {
  auto key = LoadLogKey(args.Get("--log-key"));
  if (!key.ok()) return ExitForStatus(key.status());
  auto witnesses = LoadWitnessPolicy(args);
  if (!witnesses.ok()) return ExitForStatus(witnesses.status());
  auto text = ReadWholeFile(args.Get("--receipt"));
  if (!text.ok()) return IoError("--receipt: " + text.status().message());
  std::string receipt = *text;
  size_t first = receipt.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && receipt[first] == '{') {
    json j = json::parse(receipt, nullptr, false);
    if (!j.is_object() || !j.contains("tlog_proof") || !j["tlog_proof"].is_string())
      return UsageError("--receipt: a JSON receipt must be an object with a \"tlog_proof\" string");
    receipt = j["tlog_proof"].get<std::string>();
  }
  ledger::GateExpectation expected;
  expected.witnesses = witnesses->witnesses;
  expected.quorum = witnesses->quorum;
  if (args.Has("--accessor")) expected.accessor = args.Get("--accessor");
  if (args.Has("--holder")) expected.holder = args.Get("--holder");
  if (args.Has("--purpose")) {
    if (!ledger::FindPurpose(args.Get("--purpose"))) return UsageError("unknown purpose \"" + args.Get("--purpose") + "\"");
    expected.purpose = args.Get("--purpose");
  }
  if (args.Has("--subject")) {
    auto tag = ledger::Base64UrlDecode(args.Get("--subject"));
    if (!tag.ok() || tag->size() != 32) return UsageError("--subject must be a base64url 32-byte subject tag");
    expected.subject = *tag;
  }
  if (args.Has("--categories")) {
    std::string list = args.Get("--categories");
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos) comma = list.size();
      std::string code = list.substr(start, comma - start);
      if (!ledger::FindCategory(code)) return UsageError("unknown category \"" + code + "\" in --categories");
      expected.categories.insert(code);
      start = comma + 1;
    }
  }
  std::optional<Bytes> entry;
  if (args.Has("--entry")) {
    auto e = EntryFromFile(args.Get("--entry"));
    if (!e.ok()) return e.status().IsInvalidArgument() ? UsageError(e.status().message()) : IoError(e.status().message());
    entry = *e;
  }
  std::optional<ledger::ByteView> entry_view;
  if (entry) entry_view = ledger::ByteView(*entry);
  ledger::GateDecision d = ledger::CheckReceipt(receipt, entry_view, *key, expected);
  if (args.Has("--json")) {
    ordered_json j;
    j["verified"] = d.allowed;
    j["reason"] = d.reason;
    j["index"] = d.index;
    j["tree_size"] = d.tree_size;
    if (d.access) {
      ordered_json a;
      a["request_id"] = d.access->request_id;
      a["accessor"] = d.access->accessor;
      a["holder"] = d.access->holder;
      a["subject"] = ledger::Base64UrlEncode(d.access->subject);
      a["purpose"] = d.access->purpose;
      a["categories"] = d.access->categories;
      a["time"] = d.access->time;
      j["access"] = a;
    }
    // The witnesses are known once the log's signature and every listed
    // witness's line verified: on success and on a quorum refusal.
    bool witnesses_known = d.allowed || d.reason.rfind("witness quorum: ", 0) == 0;
    if (witnesses->active() && witnesses_known) j["witnesses"] = WitnessesJson(*witnesses, d.cosignatures);
    PrintJson(j);
  } else if (d.allowed) {
    const ledger::AccessRecord& a = *d.access;
    std::cout << "allowed: entry " << d.index << " in the tree of size " << d.tree_size << " is an access by "
              << a.accessor << " to " << a.holder << "'s customer " << ledger::Base64UrlEncode(a.subject) << "\n"
              << "  request id  " << a.request_id << "\n  purpose     " << a.purpose << "\n  categories ";
    for (const auto& c : a.categories) std::cout << " " << c;
    std::cout << "\n  time        " << a.time << "\n";
    if (witnesses->active()) std::cout << WitnessesText(*witnesses, d.cosignatures, "  ");
  } else {
    std::cout << "refused: " << d.reason << "\n";
    if (witnesses->active() && d.reason.rfind("witness quorum: ", 0) == 0)
      std::cout << WitnessesText(*witnesses, d.cosignatures, "  ");
  }
  return d.allowed ? kExitVerified : kExitFailed;
}

}  // namespace

const Command kCheckpointCommand = {
    "checkpoint", "verify a checkpoint's signature (default: the log's latest)", kCheckpointHelp,
    {{"--log", true}, {"--log-key", true}, {"--checkpoint", true}, kWitnessFlag, kQuorumFlag, {"--json", false}},
    {"--log-key"}, RunCheckpoint,
};

const Command kInclusionCommand = {
    "inclusion", "prove an entry is in a checkpoint's tree (proof computed from tiles)", kInclusionHelp,
    {{"--log", true},
     {"--log-key", true},
     {"--entry", true},
     {"--leaf-hash", true},
     {"--index", true},
     {"--checkpoint", true},
     {"--proof", true},
     kWitnessFlag,
     kQuorumFlag,
     {"--json", false}},
    {"--log-key"}, RunInclusion,
};

const Command kConsistencyCommand = {
    "consistency", "prove a newer checkpoint extends an older one (else: fork evidence)", kConsistencyHelp,
    {{"--log", true}, {"--log-key", true}, {"--old", true}, {"--new", true}, kWitnessFlag, kQuorumFlag, {"--json", false}},
    {"--log", "--log-key", "--old"}, RunConsistency,
};

const Command kReceiptCommand = {
    "receipt", "check a receipt offline, as a bank's gate does", kReceiptHelp,
    {{"--log", true},
     {"--log-key", true},
     {"--receipt", true},
     {"--entry", true},
     {"--accessor", true},
     {"--holder", true},
     {"--subject", true},
     {"--purpose", true},
     {"--categories", true},
     kWitnessFlag,
     kQuorumFlag,
     {"--json", false}},
    {"--log-key", "--receipt"}, RunReceipt,
};

}  // namespace verifier
