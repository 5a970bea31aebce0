// Fuzz target: signed entries (ledger/record.h): DSSE envelopes, every
// payload kind (holder, accessor, policy, access, index), RFC 3339 times, and whole
// entries as POST /v1/entries and the verifier's audit parse them.
// Properties: an accepted envelope is in its one canonical form; every
// accepted payload re-encodes to a payload that parses to the same record
// (encode∘parse is idempotent); an accepted entry's signature verifies;
// ParseTime∘FormatTime is the identity on accepted times.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "ledger/record.h"

namespace {

template <typename Record>
void CheckPayload(const std::string& in, ledger::StatusOr<Record> (*parse)(ledger::ByteView),
                  ledger::Bytes (*encode)(const Record&), const char* what) {
  auto r = parse(in);
  if (!r.ok()) return;
  ledger::Bytes once = encode(*r);
  auto again = parse(once);
  FUZZ_CHECK(again.ok(), what);
  FUZZ_CHECK(encode(*again) == once, what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);

  auto env = ledger::ParseEnvelope(in);
  if (env.ok()) FUZZ_CHECK(ledger::EncodeEnvelope(*env) == in, "ParseEnvelope accepted a non-canonical envelope");
  auto entry = ledger::ParseEntry(in);
  if (entry.ok()) {
    FUZZ_CHECK(env.ok(), "ParseEntry accepted what ParseEnvelope refused");
    FUZZ_CHECK(ledger::VerifyEnvelope(entry->envelope).ok(), "ParseEntry accepted a bad signature");
  }

  CheckPayload<ledger::HolderRecord>(in, ledger::ParseHolder, ledger::EncodeHolder, "holder payload round trip");
  CheckPayload<ledger::AccessorRecord>(in, ledger::ParseAccessor, ledger::EncodeAccessor, "accessor payload round trip");
  CheckPayload<ledger::PolicyRecord>(in, ledger::ParsePolicy, ledger::EncodePolicy, "policy payload round trip");
  CheckPayload<ledger::AccessRecord>(in, ledger::ParseAccess, ledger::EncodeAccess, "access payload round trip");
  CheckPayload<ledger::IndexRecord>(in, ledger::ParseIndex, ledger::EncodeIndex, "index payload round trip");
  // Index commitments have exactly one byte form.
  if (auto ix = ledger::ParseIndex(in); ix.ok())
    FUZZ_CHECK(ledger::EncodeIndex(*ix) == in, "ParseIndex accepted a non-canonical commitment");

  auto t = ledger::ParseTime(in);
  if (t.ok()) {
    auto back = ledger::ParseTime(ledger::FormatTime(*t));
    FUZZ_CHECK(back.ok() && *back == *t, "ParseTime(FormatTime(t)) != t");
  }
  return 0;
}
