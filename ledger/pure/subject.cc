#include "ledger/subject.h"

#include <sodium.h>

#include <vector>

#include "ledger/record.h"

namespace ledger {
namespace {

// CheckHolderName applies the name rule of ledger/record.h (SPEC.md §9).
Status CheckHolderName(std::string_view v) {
  if (v.empty() || v.size() > kMaxNameLength)
    return Status::InvalidArgument("subject token: holder must be 1 to 64 characters");
  for (char c : v) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) return Status::InvalidArgument("subject token: holder may only use a-z, 0-9, '.', '-' and '_'");
  }
  if (!((v[0] >= 'a' && v[0] <= 'z') || (v[0] >= '0' && v[0] <= '9')))
    return Status::InvalidArgument("subject token: holder must start with a letter or digit");
  return Status::OK();
}

// DecodeField decodes a canonical base64url field of |min|..|max| bytes.
StatusOr<Bytes> DecodeField(std::string_view text, const char* field, size_t min, size_t max) {
  auto raw = Base64UrlDecode(text);
  if (!raw.ok()) return Status::InvalidArgument(std::string("subject token: ") + field + " is not canonical base64url");
  if (raw->size() < min || raw->size() > max) {
    std::string want = min == max ? std::to_string(min) : std::to_string(min) + " to " + std::to_string(max);
    return Status::InvalidArgument(std::string("subject token: ") + field + " must be " + want + " bytes, got " +
                                   std::to_string(raw->size()));
  }
  return std::move(*raw);
}

}  // namespace

const char kSubjectTokenPrefix[] = "ledger-subject-v1";

StatusOr<SubjectToken> IssueSubjectToken(const VrfSecretKey& key, std::string_view holder,
                                         std::string_view customer_id, std::string_view period) {
  LEDGER_RETURN_IF_ERROR(CheckHolderName(holder));
  LEDGER_ASSIGN_OR_RETURN(Bytes alpha, SubjectVrfInput(customer_id, period));
  SubjectToken token;
  token.holder = std::string(holder);
  token.period = std::string(period);
  token.customer_id = Bytes(customer_id);
  token.proof = key.Prove(alpha);
  LEDGER_ASSIGN_OR_RETURN(Bytes beta, VrfProofToHash(token.proof));
  LEDGER_ASSIGN_OR_RETURN(token.tag, SubjectTagFromBeta(beta));
  return token;
}

std::string FormatSubjectToken(const SubjectToken& token) {
  std::string out = kSubjectTokenPrefix;
  out += ':';
  out += token.holder;
  out += ':';
  out += token.period;
  out += ':';
  out += Base64UrlEncode(token.customer_id);
  out += ':';
  out += Base64UrlEncode(token.tag);
  out += ':';
  out += Base64UrlEncode(token.proof);
  return out;
}

StatusOr<SubjectToken> ParseSubjectToken(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  for (;;) {
    size_t colon = text.find(':', start);
    if (colon == std::string_view::npos) {
      fields.push_back(text.substr(start));
      break;
    }
    fields.push_back(text.substr(start, colon - start));
    start = colon + 1;
    if (fields.size() > 6) break;
  }
  if (fields.size() != 6)
    return Status::InvalidArgument(
        "subject token: want 6 ':'-separated fields "
        "(ledger-subject-v1:<holder>:<YYYY-MM>:<customer id>:<tag>:<proof>)");
  if (fields[0] != kSubjectTokenPrefix)
    return Status::InvalidArgument(std::string("subject token: must start with \"") + kSubjectTokenPrefix + ":\"");
  SubjectToken token;
  LEDGER_RETURN_IF_ERROR(CheckHolderName(fields[1]));
  token.holder = std::string(fields[1]);
  // SubjectVrfInput owns the period rule; a placeholder id checks it alone.
  if (!SubjectVrfInput("x", fields[2]).ok())
    return Status::InvalidArgument("subject token: period must be YYYY-MM with a month from 01 to 12");
  token.period = std::string(fields[2]);
  LEDGER_ASSIGN_OR_RETURN(token.customer_id, DecodeField(fields[3], "customer id", 1, 256));
  LEDGER_ASSIGN_OR_RETURN(token.tag, DecodeField(fields[4], "tag", kSubjectTagSize, kSubjectTagSize));
  LEDGER_ASSIGN_OR_RETURN(token.proof, DecodeField(fields[5], "proof", kVrfProofSize, kVrfProofSize));
  return token;
}

Status VerifySubjectToken(const SubjectToken& token, ByteView holder_vrf_public_key) {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  // The key is the caller's input, the proof the token's: check the key
  // first so that a bad key is never reported as a bad token. This is the
  // public-key rule VrfVerify applies.
  if (holder_vrf_public_key.size() != kVrfPublicKeySize ||
      crypto_core_ed25519_is_valid_point(reinterpret_cast<const unsigned char*>(holder_vrf_public_key.data())) != 1)
    return Status::InvalidArgument("holder VRF public key must be a valid 32-byte ECVRF-EDWARDS25519 public key");
  if (token.tag.size() != kSubjectTagSize) return Status::InvalidArgument("subject token: tag must be 32 bytes");
  LEDGER_ASSIGN_OR_RETURN(Bytes alpha, SubjectVrfInput(token.customer_id, token.period));
  auto beta = VrfVerify(holder_vrf_public_key, alpha, token.proof);
  if (!beta.ok())
    return Status::PermissionDenied("subject token: the VRF proof does not verify with the holder's VRF key (" +
                                    beta.status().message() + ")");
  LEDGER_ASSIGN_OR_RETURN(Bytes tag, SubjectTagFromBeta(*beta));
  if (tag != token.tag)
    return Status::PermissionDenied("subject token: the tag is not the one the VRF proof yields");
  return Status::OK();
}

}  // namespace ledger
