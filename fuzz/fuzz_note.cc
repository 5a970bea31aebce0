// Fuzz target: C2SP signed notes, checkpoints and note keys (ledger/note.h).
// Properties: whatever ParseNote, ParseCheckpoint and the key parsers accept
// formats back to exactly the input (one spelling per value), and
// OpenNote/OpenCheckpoint accept only notes carrying the log's signature.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "ledger/note.h"

namespace {

std::string SignatureLine(const ledger::NoteSignature& sig) {
  ledger::Bytes raw;
  for (int s = 24; s >= 0; s -= 8) raw.push_back(static_cast<char>((sig.key_id >> s) & 0xff));
  raw += sig.signature;
  return "\xE2\x80\x94 " + sig.name + " " + ledger::Base64Encode(raw) + "\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  const ledger::NoteVerifier& log_key = fuzz::LogSigner().verifier();

  auto note = ledger::ParseNote(in);
  if (note.ok()) {
    std::string again = note->text + "\n";
    for (const auto& sig : note->signatures) again += SignatureLine(sig);
    FUZZ_CHECK(again == in, "ParseNote accepted a note that does not format back to itself");
    FUZZ_CHECK(!note->signatures.empty() && note->signatures.size() <= ledger::kMaxNoteSignatures,
               "ParseNote signature count out of bounds");
  }
  auto opened = ledger::OpenNote(in, {log_key});
  if (opened.ok()) {
    FUZZ_CHECK(note.ok() && opened->text == note->text, "OpenNote accepted what ParseNote refused");
    bool signed_by_log = false;
    for (const auto& sig : opened->signatures)
      signed_by_log = signed_by_log || (sig.name == log_key.name() && sig.key_id == log_key.key_id() &&
                                        log_key.Verify(opened->text, sig.signature));
    FUZZ_CHECK(signed_by_log, "OpenNote accepted a note without a valid log signature");
  }

  auto cp = ledger::ParseCheckpoint(in);
  if (cp.ok()) FUZZ_CHECK(cp->Format() == in, "ParseCheckpoint accepted a non-canonical checkpoint");
  auto ocp = ledger::OpenCheckpoint(in, log_key);
  if (ocp.ok()) {
    FUZZ_CHECK(opened.ok() && ocp->Format() == opened->text, "OpenCheckpoint disagrees with OpenNote");
    FUZZ_CHECK(ocp->origin == log_key.name(), "OpenCheckpoint accepted another origin");
  }

  auto vkey = ledger::NoteVerifier::Parse(in);
  if (vkey.ok()) FUZZ_CHECK(vkey->VerifierKeyString() == in, "NoteVerifier::Parse accepted a non-canonical key");
  auto skey = ledger::NoteSigner::ParsePrivateKey(in);
  if (skey.ok()) FUZZ_CHECK((*skey)->PrivateKeyString() == in, "NoteSigner::ParsePrivateKey accepted a non-canonical key");
  return 0;
}
