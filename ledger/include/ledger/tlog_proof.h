// C2SP tlog-proof: the text form of a receipt — "c2sp.org/tlog-proof@v1",
// optional "extra <base64>", "index <N>", inclusion hashes one per line,
// a blank line, then the signed checkpoint verbatim. Pure.
#ifndef LEDGER_TLOG_PROOF_H_
#define LEDGER_TLOG_PROOF_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/status.h"

namespace ledger {

struct TlogProof {
  Bytes extra;                 // empty: no extra line
  uint64_t index = 0;
  std::vector<Hash> inclusion; // bottom-up
  std::string checkpoint;      // signed note, verbatim
};

// FormatTlogProof renders |proof| in the C2SP text form.
std::string FormatTlogProof(const TlogProof& proof);

// ParseTlogProof parses the text form strictly. It does not verify the
// checkpoint or the proof. InvalidArgument if malformed.
StatusOr<TlogProof> ParseTlogProof(std::string_view text);

}  // namespace ledger

#endif  // LEDGER_TLOG_PROOF_H_
