// Fuzz target: C2SP tlog-cosignature v1 (ledger/cosignature.h): witness key
// strings, single cosignature lines and checkpoints carrying cosignatures
// checked against a quorum, as ledgerd (server/witnessing.cc), the gate and
// the verifier do with a witness's answer.
// Properties: accepted keys format back to the input; an accepted
// cosignature really verifies; a quorum is only met by distinct witnesses
// whose lines verify.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "ledger/cosignature.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  const ledger::NoteVerifier& log_key = fuzz::LogSigner().verifier();
  const std::vector<ledger::CosignatureVerifier> witnesses = {fuzz::Witness1().verifier(), fuzz::Witness2().verifier()};

  auto vkey = ledger::CosignatureVerifier::Parse(in);
  if (vkey.ok()) FUZZ_CHECK(vkey->VerifierKeyString() == in, "CosignatureVerifier::Parse accepted a non-canonical key");
  auto skey = ledger::CosignatureSigner::ParsePrivateKey(in);
  if (skey.ok())
    FUZZ_CHECK((*skey)->PrivateKeyString() == in, "CosignatureSigner::ParsePrivateKey accepted a non-canonical key");

  // A witness's answer line checked against a checkpoint body: first line
  // is the cosignature line, the rest the body (as witnessing.cc does).
  size_t nl = in.find('\n');
  if (nl != std::string::npos) {
    std::string line = in.substr(0, nl);
    std::string body = in.substr(nl + 1);
    for (const auto& w : witnesses) {
      auto ts = w.VerifyLine(line, body);
      if (ts.ok()) {
        FUZZ_CHECK(*ts <= ledger::kMaxCosignatureTime, "cosignature time above 2^63-1 accepted");
        auto again = w.VerifyLine(line + "\n", body);
        FUZZ_CHECK(again.ok() && *again == *ts, "VerifyLine depends on the final newline");
      }
    }
  }

  // A whole witnessed checkpoint, quorum 1 and 2.
  for (size_t quorum = 1; quorum <= 2; quorum++) {
    std::vector<ledger::WitnessCosignature> cosigs;
    auto cp = ledger::OpenWitnessedCheckpoint(in, log_key, witnesses, quorum, &cosigs);
    if (!cp.ok()) continue;
    FUZZ_CHECK(cosigs.size() >= quorum, "quorum met with too few cosignatures");
    auto plain = ledger::OpenCheckpoint(in, log_key);
    FUZZ_CHECK(plain.ok() && plain->Format() == cp->Format(), "witnessed checkpoint without a valid log signature");
    auto note = ledger::ParseNote(in);
    FUZZ_CHECK(note.ok(), "witnessed checkpoint is not a note");
    for (const auto& c : cosigs) {
      bool found = false;
      for (const auto& w : witnesses) {
        if (w.VerifierKeyString() != c.witness) continue;
        for (const auto& sig : note->signatures) {
          auto ts = w.VerifyCosignature(sig, note->text);
          found = found || (ts.ok() && *ts == c.timestamp);
        }
      }
      FUZZ_CHECK(found, "reported cosignature does not verify");
    }
  }
  return 0;
}
