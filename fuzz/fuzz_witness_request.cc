// Fuzz target: ledger-witness's POST /add-checkpoint (C2SP tlog-witness),
// the whole handler (tools/witness/witness.cc Witness::AddCheckpoint):
// "old <N>" line, consistency proof lines, blank line, signed checkpoint.
// The witness starts each input having cosigned the fixed test tree at size
// kStateSize (the corpus holds requests that extend it with real
// consistency proofs); after any input it accepts, its state is reset so
// every input meets the same state.
// Properties: every answer is one of the documented statuses (never 500);
// a 200 carries a cosignature by the witness key on a checkpoint the log
// signed, consistent with the state it had.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_common.h"
#include "ledger/cosignature.h"
#include "ledger/merkle.h"
#include "witness.h"

namespace {

constexpr uint64_t kStateSize = 5;

struct State {
  std::string dir;
  std::unique_ptr<witness::Witness> w;
};

std::unique_ptr<witness::Witness> OpenFresh(const std::string& dir) {
  std::remove((dir + "/" + witness::StateFileName(fuzz::kLogName)).c_str());
  witness::Config config;
  config.name = fuzz::kWitness1Name;
  config.logs.push_back({fuzz::kLogName, {fuzz::LogSigner().verifier()}});
  auto signer = fuzz::Must(ledger::CosignatureSigner::FromSeed(fuzz::kWitness1Name, fuzz::Seed('\x02')));
  auto w = fuzz::Must(witness::Witness::Open(config, std::move(signer), dir, [] { return uint64_t{1767225600}; }));
  std::string first = "old 0\n\n" + fuzz::SignedCheckpoint(kStateSize, fuzz::TestTree(kStateSize).Root());
  witness::Response r = w->AddCheckpoint(first);
  FUZZ_CHECK(r.status == 200, "witness setup: first checkpoint refused");
  return w;
}

State& GetState() {
  static State* s = [] {
    auto* st = new State();
    char tmpl[] = "/tmp/fuzz-witness-XXXXXX";
    char* d = mkdtemp(tmpl);
    FUZZ_CHECK(d != nullptr, "mkdtemp");
    st->dir = d;
    st->w = OpenFresh(st->dir);
    return st;
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  State& st = GetState();
  witness::Response r = st.w->AddCheckpoint(in);
  FUZZ_CHECK(r.status == 200 || r.status == 400 || r.status == 403 || r.status == 404 || r.status == 409 ||
                 r.status == 422,
             "add-checkpoint answered an undocumented status");
  if (r.status != 200) return 0;

  // The request's note, after the blank line ending the proof lines.
  size_t blank = in.find("\n\n");
  FUZZ_CHECK(blank != std::string::npos, "accepted a request without a blank line");
  auto cp = ledger::OpenCheckpoint(in.substr(blank + 2), fuzz::LogSigner().verifier());
  FUZZ_CHECK(cp.ok(), "cosigned a checkpoint the log did not sign");
  FUZZ_CHECK(cp->size >= kStateSize, "cosigned a smaller tree than the one it had");
  auto note = ledger::ParseNote(in.substr(blank + 2));
  auto ts = fuzz::Witness1().verifier().VerifyLine(r.body, note->text);
  FUZZ_CHECK(ts.ok(), "the cosignature line does not verify");
  if (cp->size == kStateSize) FUZZ_CHECK(cp->root == fuzz::TestTree(kStateSize).Root(), "cosigned a fork at the same size");
  st.w = OpenFresh(st.dir);
  return 0;
}
