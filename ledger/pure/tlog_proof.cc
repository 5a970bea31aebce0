#include "ledger/tlog_proof.h"

namespace ledger {
namespace {
constexpr std::string_view kHeader = "c2sp.org/tlog-proof@v1";

// NextLine splits off the next "\n"-terminated line; false if none.
bool NextLine(std::string_view* text, std::string_view* line) {
  size_t nl = text->find('\n');
  if (nl == std::string_view::npos) return false;
  *line = text->substr(0, nl);
  text->remove_prefix(nl + 1);
  return true;
}
}  // namespace

std::string FormatTlogProof(const TlogProof& proof) {
  std::string out(kHeader);
  out += "\n";
  if (!proof.extra.empty()) out += "extra " + Base64Encode(proof.extra) + "\n";
  out += "index " + std::to_string(proof.index) + "\n";
  for (const Hash& h : proof.inclusion) out += Base64Encode(HashView(h)) + "\n";
  out += "\n";
  out += proof.checkpoint;
  return out;
}

StatusOr<TlogProof> ParseTlogProof(std::string_view text) {
  TlogProof proof;
  std::string_view line;
  if (!NextLine(&text, &line) || line != kHeader) return Status::InvalidArgument("tlog-proof: missing c2sp.org/tlog-proof@v1 header");
  if (!NextLine(&text, &line)) return Status::InvalidArgument("tlog-proof: truncated");
  if (line.substr(0, 6) == "extra ") {
    LEDGER_ASSIGN_OR_RETURN(proof.extra, Base64Decode(line.substr(6)));
    if (proof.extra.empty()) return Status::InvalidArgument("tlog-proof: empty extra line");
    if (!NextLine(&text, &line)) return Status::InvalidArgument("tlog-proof: truncated");
  }
  if (line.substr(0, 6) != "index ") return Status::InvalidArgument("tlog-proof: missing index line");
  auto index = ParseUint64(line.substr(6));
  if (!index.ok()) return Status::InvalidArgument("tlog-proof: bad index: " + index.status().message());
  proof.index = *index;
  for (;;) {
    if (!NextLine(&text, &line)) return Status::InvalidArgument("tlog-proof: missing blank line before the checkpoint");
    if (line.empty()) break;
    if (proof.inclusion.size() >= 64) return Status::InvalidArgument("tlog-proof: more than 64 inclusion hashes");
    auto raw = Base64Decode(line);
    if (!raw.ok() || raw->size() != 32) return Status::InvalidArgument("tlog-proof: inclusion line is not a base64 SHA-256 hash");
    proof.inclusion.push_back(*HashFromBytes(*raw));
  }
  if (text.empty()) return Status::InvalidArgument("tlog-proof: missing checkpoint");
  proof.checkpoint = std::string(text);
  return proof;
}

}  // namespace ledger
