#include "ledger/record.h"

#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>

namespace ledger {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

bool SodiumReady() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

// ParseStrictJson parses untrusted JSON without exceptions and rejects
// duplicate object keys, which different parsers would resolve differently.
StatusOr<json> ParseStrictJson(ByteView text, const char* what) {
  // nlohmann::json silently skips a leading UTF-8 byte order mark; RFC 8259
  // parsers (JSON.parse, Go's encoding/json) refuse it, so such a payload
  // would be logged yet unreadable to other verifiers.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") return Status::InvalidArgument(std::string(what) + " starts with a byte order mark");
  std::vector<std::set<std::string>> keys;
  bool duplicate = false;
  int depth = 0, max_depth = 0;
  json::parser_callback_t cb = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: keys.emplace_back(); max_depth = std::max(max_depth, ++depth); break;
      case json::parse_event_t::object_end: if (!keys.empty()) keys.pop_back(); depth--; break;
      case json::parse_event_t::array_start: max_depth = std::max(max_depth, ++depth); break;
      case json::parse_event_t::array_end: depth--; break;
      case json::parse_event_t::key:
        if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second) duplicate = true;
        break;
      default: break;
    }
    // Keep everything: a callback returning false makes nlohmann silently
    // drop that value and skip the end events of the containers inside it,
    // which would unbalance depth and the key sets (deep values vanished
    // and duplicate keys went unnoticed). Deep nesting is refused below;
    // the parser is iterative and the input bounded, so this is safe.
    return true;
  };
  json j = json::parse(text.begin(), text.end(), cb, false);
  if (j.is_discarded() || max_depth > 8) return Status::InvalidArgument(std::string(what) + " is not valid JSON (or is nested too deeply)");
  if (duplicate) return Status::InvalidArgument(std::string(what) + " has a duplicate key");
  return j;
}

bool IsNameChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'; }

Status CheckName(const std::string& v, const char* field) {
  if (v.empty() || v.size() > kMaxNameLength)
    return Status::InvalidArgument(std::string(field) + " must be 1 to 64 characters");
  for (char c : v)
    if (!IsNameChar(c)) return Status::InvalidArgument(std::string(field) + " may only use a-z, 0-9, '.', '-' and '_'");
  if (!((v[0] >= 'a' && v[0] <= 'z') || (v[0] >= '0' && v[0] <= '9')))
    return Status::InvalidArgument(std::string(field) + " must start with a letter or digit");
  return Status::OK();
}

// CheckText accepts UTF-8 text (already validated by the JSON parser)
// without control characters.
Status CheckText(const std::string& v, const char* field, size_t max, bool printable_ascii) {
  if (v.empty() || v.size() > max)
    return Status::InvalidArgument(std::string(field) + " must be 1 to " + std::to_string(max) + " bytes");
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f) return Status::InvalidArgument(std::string(field) + " contains a control character");
    if (printable_ascii && (c == ' ' || c > 0x7e))
      return Status::InvalidArgument(std::string(field) + " must be printable ASCII without spaces");
  }
  return Status::OK();
}

// Fields reads an object's members against an exact schema.
class Fields {
 public:
  Fields(const json& obj, const char* what) : obj_(obj), what_(what) {}

  Status CheckObject(std::initializer_list<const char*> required, std::initializer_list<const char*> optional) {
    if (!obj_.is_object()) return Status::InvalidArgument(std::string(what_) + " must be a JSON object");
    for (const char* r : required)
      if (!obj_.contains(r)) return Status::InvalidArgument(std::string(what_) + ": missing field \"" + r + "\"");
    for (const auto& [k, v] : obj_.items()) {
      bool known = false;
      for (const char* r : required) known = known || k == r;
      for (const char* o : optional) known = known || k == o;
      if (!known) return Status::InvalidArgument(std::string(what_) + ": unknown field \"" + k + "\"");
    }
    return Status::OK();
  }

  StatusOr<std::string> String(const char* field) const {
    const json& v = obj_.at(field);
    if (!v.is_string()) return Status::InvalidArgument(std::string(what_) + ": \"" + field + "\" must be a string");
    return v.get<std::string>();
  }

  StatusOr<Bytes> Key(const char* field) const {
    LEDGER_ASSIGN_OR_RETURN(std::string s, String(field));
    return DecodeKey(s, field);
  }

  Status DecodeKeyError(const char* field) const {
    return Status::InvalidArgument(std::string(what_) + ": \"" + field + "\" must be a base64url 32-byte key");
  }

  StatusOr<Bytes> DecodeKey(const std::string& s, const char* field) const {
    auto raw = Base64UrlDecode(s);
    if (!raw.ok() || raw->size() != 32) return DecodeKeyError(field);
    return *raw;
  }

  StatusOr<uint64_t> Uint(const char* field, uint64_t min, uint64_t max) const {
    const json& v = obj_.at(field);
    if (!v.is_number_unsigned() || v.get<uint64_t>() < min || v.get<uint64_t>() > max)
      return Status::InvalidArgument(std::string(what_) + ": \"" + field + "\" must be a whole number from " +
                                     std::to_string(min) + " to " + std::to_string(max));
    return v.get<uint64_t>();
  }

  StatusOr<std::set<std::string>> Categories(const char* field) const {
    const json& v = obj_.at(field);
    if (!v.is_array() || v.empty())
      return Status::InvalidArgument(std::string(what_) + ": \"" + field + "\" must be a non-empty array of category codes");
    std::set<std::string> out;
    for (const json& c : v) {
      if (!c.is_string()) return Status::InvalidArgument(std::string(what_) + ": \"" + field + "\" must hold strings");
      std::string code = c.get<std::string>();
      if (!FindCategory(code)) return Status::InvalidArgument(std::string(what_) + ": unknown data category \"" + code + "\"");
      if (!out.insert(code).second) return Status::InvalidArgument(std::string(what_) + ": category \"" + code + "\" listed twice");
    }
    return out;
  }

  StatusOr<std::string> Time(const char* field) const {
    LEDGER_ASSIGN_OR_RETURN(std::string s, String(field));
    auto t = ParseTime(s);
    if (!t.ok()) return Status::InvalidArgument(std::string(what_) + ": \"" + field + "\": " + t.status().message());
    return s;
  }

  const json& obj() const { return obj_; }

 private:
  const json& obj_;
  const char* what_;
};

Status Prefix(const Status& s, const std::string& where) {
  if (s.ok()) return s;
  return Status::InvalidArgument(where + s.message());
}

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's algorithm: days since 1970-01-01.
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::string KeyB64(ByteView key) { return Base64UrlEncode(key); }

// CanonicalScanner reads the byte form the Encode functions write (compact
// JSON, keys in their fixed order) when every string in it is printable
// ASCII without '"' or '\\': each JSON string's value is then its bytes,
// so the fields can be taken without the JSON parser. It is a fast path in
// front of the parser (the audit parses every entry of the log): anything
// it does not recognise goes through the parser, which decides and words
// every refusal, so the result is the same either way.
class CanonicalScanner {
 public:
  explicit CanonicalScanner(ByteView text) : s_(text) {}
  // Lit consumes |lit| if the text continues with it.
  bool Lit(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }
  // Str reads a string's characters up to (not including) its closing quote.
  bool Str(std::string* out) {
    size_t start = pos_;
    for (; pos_ < s_.size(); pos_++) {
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        out->assign(s_.data() + start, pos_ - start);
        return true;
      }
      if (c < 0x20 || c > 0x7e || c == '\\') return false;
    }
    return false;
  }
  // View is Str without the copy: |out| points into the scanned text.
  bool View(std::string_view* out) {
    size_t start = pos_;
    for (; pos_ < s_.size(); pos_++) {
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        *out = s_.substr(start, pos_ - start);
        return true;
      }
      if (c < 0x20 || c > 0x7e || c == '\\') return false;
    }
    return false;
  }
  bool AtEnd() const { return pos_ == s_.size(); }

 private:
  ByteView s_;
  size_t pos_ = 0;
};

// ParseCanonicalEnvelope is ParseEnvelope's fast path: the envelope in
// EncodeEnvelope's form with fields that decode; nullopt for anything else.
std::optional<Envelope> ParseCanonicalEnvelope(ByteView entry) {
  CanonicalScanner s(entry);
  std::string_view payload_b64, keyid, sig_b64;  // views into |entry|: no copies
  Envelope env;
  if (!s.Lit("{\"payload\":\"") || !s.View(&payload_b64) || !s.Lit("\",\"payloadType\":\"") ||
      !s.Str(&env.payload_type) || !s.Lit("\",\"signatures\":[{\"keyid\":\"") || !s.View(&keyid) ||
      !s.Lit("\",\"sig\":\"") || !s.View(&sig_b64) || !s.Lit("\"}]}") || !s.AtEnd())
    return std::nullopt;
  if (env.payload_type != kHolderPayloadType && env.payload_type != kAccessorPayloadType &&
      env.payload_type != kPolicyPayloadType && env.payload_type != kAccessPayloadType &&
      env.payload_type != kIndexPayloadType)
    return std::nullopt;
  auto payload = Base64Decode(payload_b64);
  auto key = Base64UrlDecode(keyid);
  auto sig = Base64Decode(sig_b64);
  if (!payload.ok() || payload->empty() || !key.ok() || key->size() != 32 || !sig.ok() || sig->size() != 64)
    return std::nullopt;
  env.payload = std::move(*payload);
  env.public_key = std::move(*key);
  env.signature = std::move(*sig);
  // No EncodeEnvelope(env) == entry check is needed: the literals are
  // EncodeEnvelope's, and both decoders accept only canonical base64, so
  // re-encoding the decoded fields gives back exactly the scanned strings.
  return env;
}

// ParseCanonicalAccess is ParseAccess's fast path: the payload in
// EncodeAccess's form whose fields all pass ParseAccess's checks; nullopt
// for anything else.
std::optional<AccessRecord> ParseCanonicalAccess(ByteView payload) {
  CanonicalScanner s(payload);
  AccessRecord r;
  std::string_view subject, category;  // views into |payload|
  std::string text;
  if (!s.Lit("{\"request_id\":\"") || !s.Str(&r.request_id) || !s.Lit("\",\"accessor\":\"") || !s.Str(&r.accessor) ||
      !s.Lit("\",\"holder\":\"") || !s.Str(&r.holder) || !s.Lit("\",\"subject\":\"") || !s.View(&subject) ||
      !s.Lit("\",\"purpose\":\"") || !s.Str(&r.purpose) || !s.Lit("\",\"categories\":[\""))
    return std::nullopt;
  for (;;) {
    if (!s.View(&category) || !FindCategory(category) || !r.categories.emplace(category).second) return std::nullopt;
    if (s.Lit("\",\"")) continue;
    if (s.Lit("\"],\"consent\":\"")) break;
    return std::nullopt;
  }
  if (!s.Str(&r.consent) || !s.Lit("\",\"time\":\"") || !s.Str(&r.time) || !s.Lit("\"")) return std::nullopt;
  if (s.Lit(",\"actor\":\"")) {
    if (!s.Str(&text) || !s.Lit("\"") || !CheckText(text, "actor", kMaxActorLength, false).ok()) return std::nullopt;
    r.actor = text;
  }
  if (s.Lit(",\"detail\":\"")) {
    if (!s.Str(&text) || !s.Lit("\"") || !CheckText(text, "detail", kMaxDetailLength, false).ok()) return std::nullopt;
    r.detail = text;
  }
  if (!s.Lit("}") || !s.AtEnd()) return std::nullopt;
  auto tag = Base64UrlDecode(subject);
  if (!tag.ok() || tag->size() != 32) return std::nullopt;
  r.subject = std::move(*tag);
  if (!CheckText(r.request_id, "request_id", kMaxRequestIdLength, true).ok() || !CheckName(r.accessor, "accessor").ok() ||
      !CheckName(r.holder, "holder").ok() || !FindPurpose(r.purpose) ||
      !CheckText(r.consent, "consent", kMaxConsentLength, false).ok() || !ParseTime(r.time).ok())
    return std::nullopt;
  return r;
}

}  // namespace

const char kHolderPayloadType[] = "application/vnd.access-ledger.holder.v1+json";
const char kAccessorPayloadType[] = "application/vnd.access-ledger.accessor.v1+json";
const char kPolicyPayloadType[] = "application/vnd.access-ledger.policy.v1+json";
const char kAccessPayloadType[] = "application/vnd.access-ledger.access.v1+json";
const char kIndexPayloadType[] = "application/vnd.access-ledger.index.v1+json";

const char* EntryKindName(EntryKind kind) {
  switch (kind) {
    case EntryKind::kHolder: return "holder";
    case EntryKind::kAccessor: return "accessor";
    case EntryKind::kPolicy: return "policy";
    case EntryKind::kAccess: return "access";
    case EntryKind::kIndex: return "index";
  }
  return "unknown";
}

const std::vector<PurposeInfo>& Purposes() {
  static const std::vector<PurposeInfo> kPurposes = {
      {"CUSTOMER_SUPPORT", "answering the customer's own requests for help", false},
      {"PAYMENT_INITIATION", "initiating a payment the customer asked for", false},
      {"ACCOUNT_VERIFICATION", "verifying account ownership and details", false},
      {"FRAUD_PREVENTION", "detecting and preventing fraud", false},
      {"LEGAL_COMPLIANCE", "complying with law and regulation", false},
      {"PERSONAL_FINANCIAL_MANAGEMENT", "budgeting and insights the customer asked for", false},
      {"CREDIT_UNDERWRITING", "assessing credit the customer applied for", false},
      {"TARGETED_ADVERTISING", "targeted or behavioural advertising (never reasonably necessary)", true},
      {"CROSS_SELLING", "cross-selling other products (never reasonably necessary)", true},
      {"SALE_OF_DATA", "selling the customer's data (never reasonably necessary)", true},
  };
  return kPurposes;
}

const std::vector<CategoryInfo>& Categories() {
  static const std::vector<CategoryInfo> kCategories = {
      {"ACCOUNT_BASIC", "account identifiers, type, status and holder name"},
      {"BALANCES", "current and available balances"},
      {"TRANSACTIONS", "transaction history"},
      {"STATEMENTS", "periodic statements"},
      {"PAYMENT_SUPPORT", "account and routing numbers needed to pay"},
      {"CUSTOMER_CONTACT", "the customer's name, address, e-mail and phone"},
      {"BILLS", "upcoming bills and payees"},
      {"TERMS", "account terms, rates and fees"},
  };
  return kCategories;
}

const PurposeInfo* FindPurpose(std::string_view code) {
  for (const auto& p : Purposes())
    if (code == p.code) return &p;
  return nullptr;
}

const CategoryInfo* FindCategory(std::string_view code) {
  for (const auto& c : Categories())
    if (code == c.code) return &c;
  return nullptr;
}

namespace {

// AppendPae appends PAE(payload_type, payload) (see Pae) to |out|.
void AppendPae(std::string_view payload_type, ByteView payload, Bytes* out) {
  char len[24];
  out->append("DSSEv1 ");
  out->append(len, static_cast<size_t>(std::to_chars(len, len + sizeof len, payload_type.size()).ptr - len));
  out->push_back(' ');
  out->append(payload_type);
  out->push_back(' ');
  out->append(len, static_cast<size_t>(std::to_chars(len, len + sizeof len, payload.size()).ptr - len));
  out->push_back(' ');
  out->append(payload);
}

}  // namespace

Bytes Pae(std::string_view payload_type, ByteView payload) {
  Bytes out;
  out.reserve(payload_type.size() + payload.size() + 32);
  AppendPae(payload_type, payload, &out);
  return out;
}

Bytes EncodeEnvelope(const Envelope& env) {
  // Built by hand so the byte form is fixed by SPEC.md, not by a JSON
  // library's choices. The payload type is from a fixed set (no escaping).
  Bytes out = "{\"payload\":\"";
  out += Base64Encode(env.payload);
  out += "\",\"payloadType\":\"";
  out += env.payload_type;
  out += "\",\"signatures\":[{\"keyid\":\"";
  out += KeyB64(env.public_key);
  out += "\",\"sig\":\"";
  out += Base64Encode(env.signature);
  out += "\"}]}";
  return out;
}

StatusOr<Envelope> ParseEnvelope(ByteView entry) {
  if (entry.size() > 65535) return Status::InvalidArgument("envelope: larger than 65535 bytes");
  if (auto env = ParseCanonicalEnvelope(entry)) return std::move(*env);
  LEDGER_ASSIGN_OR_RETURN(json j, ParseStrictJson(entry, "envelope"));
  Fields f(j, "envelope");
  LEDGER_RETURN_IF_ERROR(f.CheckObject({"payload", "payloadType", "signatures"}, {}));
  Envelope env;
  LEDGER_ASSIGN_OR_RETURN(env.payload_type, f.String("payloadType"));
  if (env.payload_type != kHolderPayloadType && env.payload_type != kAccessorPayloadType &&
      env.payload_type != kPolicyPayloadType && env.payload_type != kAccessPayloadType &&
      env.payload_type != kIndexPayloadType)
    return Status::InvalidArgument("envelope: unknown payloadType \"" + env.payload_type.substr(0, 100) + "\"");
  LEDGER_ASSIGN_OR_RETURN(std::string payload_b64, f.String("payload"));
  auto payload = Base64Decode(payload_b64);
  if (!payload.ok() || payload->empty()) return Status::InvalidArgument("envelope: payload must be non-empty base64");
  env.payload = std::move(*payload);
  const json& sigs = j["signatures"];
  if (!sigs.is_array() || sigs.size() != 1) return Status::InvalidArgument("envelope: exactly one signature is required");
  Fields s(sigs[0], "envelope signature");
  LEDGER_RETURN_IF_ERROR(s.CheckObject({"keyid", "sig"}, {}));
  LEDGER_ASSIGN_OR_RETURN(std::string keyid, s.String("keyid"));
  LEDGER_ASSIGN_OR_RETURN(env.public_key, s.DecodeKey(keyid, "keyid"));
  LEDGER_ASSIGN_OR_RETURN(std::string sig_b64, s.String("sig"));
  auto sig = Base64Decode(sig_b64);
  if (!sig.ok() || sig->size() != 64) return Status::InvalidArgument("envelope: sig must be a base64 64-byte Ed25519 signature");
  env.signature = std::move(*sig);
  // One byte form per envelope: leaf hashes (dedup, receipts) depend on it.
  if (EncodeEnvelope(env) != entry)
    return Status::InvalidArgument("envelope: not in canonical form (compact JSON, keys payload, payloadType, signatures[keyid, sig] in that order)");
  return env;
}

Status VerifyEnvelope(const Envelope& env) {
  if (!SodiumReady()) return Status::Internal("libsodium failed to initialise");
  if (env.public_key.size() != crypto_sign_PUBLICKEYBYTES || env.signature.size() != crypto_sign_BYTES)
    return Status::InvalidArgument("envelope: bad key or signature length");
  // The PAE is built in a per-thread buffer: verifying is the hot loop of
  // an audit, and a fresh string per entry was an allocation and a free of
  // the payload's size each time.
  thread_local Bytes pae;
  pae.clear();
  AppendPae(env.payload_type, env.payload, &pae);
  if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(env.signature.data()),
                                  reinterpret_cast<const unsigned char*>(pae.data()), pae.size(),
                                  reinterpret_cast<const unsigned char*>(env.public_key.data())) != 0)
    return Status::PermissionDenied("bad signature: the envelope signature does not verify with its keyid");
  return Status::OK();
}

StatusOr<std::unique_ptr<Ed25519Signer>> Ed25519Signer::FromSeed(ByteView seed) {
  if (!SodiumReady()) return Status::Internal("libsodium failed to initialise");
  if (seed.size() != crypto_sign_SEEDBYTES) return Status::InvalidArgument("Ed25519 seed must be 32 bytes");
  std::unique_ptr<Ed25519Signer> s(new Ed25519Signer());
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_seed_keypair(pk, s->sk_, reinterpret_cast<const unsigned char*>(seed.data()));
  return s;
}

StatusOr<std::unique_ptr<Ed25519Signer>> Ed25519Signer::Generate() {
  if (!SodiumReady()) return Status::Internal("libsodium failed to initialise");
  unsigned char seed[crypto_sign_SEEDBYTES];
  randombytes_buf(seed, sizeof seed);
  auto s = FromSeed(ByteView(reinterpret_cast<const char*>(seed), sizeof seed));
  sodium_memzero(seed, sizeof seed);
  return s;
}

Ed25519Signer::~Ed25519Signer() { sodium_memzero(sk_, sizeof sk_); }

ByteView Ed25519Signer::public_key() const { return ByteView(reinterpret_cast<const char*>(sk_ + 32), 32); }
ByteView Ed25519Signer::seed() const { return ByteView(reinterpret_cast<const char*>(sk_), 32); }

Bytes Ed25519Signer::Sign(ByteView msg) const {
  Bytes sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), sk_);
  return sig;
}

Bytes SignEnvelopeWith(std::string_view payload_type, ByteView payload, ByteView public_key,
                       const std::function<Bytes(ByteView)>& sign) {
  Envelope env;
  env.payload_type = std::string(payload_type);
  env.payload = Bytes(payload);
  env.public_key = Bytes(public_key);
  env.signature = sign(Pae(payload_type, payload));
  return EncodeEnvelope(env);
}

Bytes SignEnvelope(std::string_view payload_type, ByteView payload, const Ed25519Signer& signer) {
  return SignEnvelopeWith(payload_type, payload, signer.public_key(), [&](ByteView m) { return signer.Sign(m); });
}

StatusOr<int64_t> ParseTime(std::string_view t) {
  auto bad = [] { return Status::InvalidArgument("time must be RFC 3339 UTC like 2026-12-01T10:00:00Z"); };
  if (t.size() < 20 || t.size() > 30 || t.back() != 'Z') return bad();
  auto digits = [&](size_t pos, size_t n, int* out) {
    int v = 0;
    for (size_t i = pos; i < pos + n; i++) {
      if (t[i] < '0' || t[i] > '9') return false;
      v = v * 10 + (t[i] - '0');
    }
    *out = v;
    return true;
  };
  int y, mo, d, h, mi, s;
  if (!digits(0, 4, &y) || t[4] != '-' || !digits(5, 2, &mo) || t[7] != '-' || !digits(8, 2, &d) || t[10] != 'T' ||
      !digits(11, 2, &h) || t[13] != ':' || !digits(14, 2, &mi) || t[16] != ':' || !digits(17, 2, &s))
    return bad();
  size_t pos = 19;
  if (t[pos] == '.') {
    pos++;
    size_t start = pos;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') pos++;
    if (pos == start || pos - start > 9) return bad();
  }
  if (pos != t.size() - 1) return bad();
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] || h > 23 || mi > 59 || s > 59) return bad();
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo == 2 && d == 29 && !leap) return bad();
  return DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 + mi * 60 + s;
}

std::string FormatTime(int64_t unix_seconds) {
  int64_t days = unix_seconds / 86400, rem = unix_seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  // Inverse of DaysFromCivil.
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  char buf[64];
  snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", static_cast<long long>(y), m, d,
           static_cast<long long>(rem / 3600), static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60));
  return buf;
}

Bytes EncodeHolder(const HolderRecord& r) {
  ordered_json j;
  j["holder"] = r.holder;
  j["signing_key"] = KeyB64(r.signing_key);
  j["vrf_key"] = KeyB64(r.vrf_key);
  j["time"] = r.time;
  return j.dump();
}

Bytes EncodeAccessor(const AccessorRecord& r) {
  ordered_json j;
  j["holder"] = r.holder;
  j["accessor"] = r.accessor;
  j["action"] = r.action == AccessorRecord::Action::kAuthorize ? "authorize" : "revoke";
  j["keys"] = ordered_json::array();
  for (const auto& k : r.keys) j["keys"].push_back(KeyB64(k));
  j["time"] = r.time;
  return j.dump();
}

Bytes EncodePolicy(const PolicyRecord& r) {
  ordered_json j;
  j["holder"] = r.holder;
  j["accessor"] = r.accessor;
  j["version"] = r.version;
  j["purposes"] = ordered_json::array();
  for (const auto& p : r.purposes) {
    ordered_json pj;
    pj["purpose"] = p.purpose;
    pj["categories"] = ordered_json::array();
    for (const auto& c : p.categories) pj["categories"].push_back(c);
    if (p.retention_days) pj["retention_days"] = *p.retention_days;
    j["purposes"].push_back(std::move(pj));
  }
  j["time"] = r.time;
  return j.dump();
}

Bytes EncodeAccess(const AccessRecord& r) {
  ordered_json j;
  j["request_id"] = r.request_id;
  j["accessor"] = r.accessor;
  j["holder"] = r.holder;
  j["subject"] = KeyB64(r.subject);
  j["purpose"] = r.purpose;
  j["categories"] = ordered_json::array();
  for (const auto& c : r.categories) j["categories"].push_back(c);
  j["consent"] = r.consent;
  j["time"] = r.time;
  if (r.actor) j["actor"] = *r.actor;
  if (r.detail) j["detail"] = *r.detail;
  return j.dump();
}

Bytes EncodeIndex(const IndexRecord& r) {
  ordered_json j;
  j["size"] = r.size;
  j["root"] = KeyB64(HashView(r.root));
  j["subjects"] = r.subjects;
  j["accesses"] = r.accesses;
  j["time"] = r.time;
  return j.dump();
}

StatusOr<HolderRecord> ParseHolder(ByteView payload) {
  LEDGER_ASSIGN_OR_RETURN(json j, ParseStrictJson(payload, "holder payload"));
  Fields f(j, "holder");
  LEDGER_RETURN_IF_ERROR(f.CheckObject({"holder", "signing_key", "vrf_key", "time"}, {}));
  HolderRecord r;
  LEDGER_ASSIGN_OR_RETURN(r.holder, f.String("holder"));
  LEDGER_RETURN_IF_ERROR(Prefix(CheckName(r.holder, "holder"), "holder: "));
  LEDGER_ASSIGN_OR_RETURN(r.signing_key, f.Key("signing_key"));
  LEDGER_ASSIGN_OR_RETURN(r.vrf_key, f.Key("vrf_key"));
  LEDGER_ASSIGN_OR_RETURN(r.time, f.Time("time"));
  return r;
}

StatusOr<AccessorRecord> ParseAccessor(ByteView payload) {
  LEDGER_ASSIGN_OR_RETURN(json j, ParseStrictJson(payload, "accessor payload"));
  Fields f(j, "accessor");
  LEDGER_RETURN_IF_ERROR(f.CheckObject({"holder", "accessor", "action", "keys", "time"}, {}));
  AccessorRecord r;
  LEDGER_ASSIGN_OR_RETURN(r.holder, f.String("holder"));
  LEDGER_RETURN_IF_ERROR(Prefix(CheckName(r.holder, "holder"), "accessor: "));
  LEDGER_ASSIGN_OR_RETURN(r.accessor, f.String("accessor"));
  LEDGER_RETURN_IF_ERROR(Prefix(CheckName(r.accessor, "accessor"), "accessor: "));
  LEDGER_ASSIGN_OR_RETURN(std::string action, f.String("action"));
  if (action == "authorize") r.action = AccessorRecord::Action::kAuthorize;
  else if (action == "revoke") r.action = AccessorRecord::Action::kRevoke;
  else return Status::InvalidArgument("accessor: \"action\" must be \"authorize\" or \"revoke\"");
  const json& keys = j["keys"];
  if (!keys.is_array() || keys.empty() || keys.size() > kMaxKeysPerAccessor)
    return Status::InvalidArgument("accessor: \"keys\" must be an array of 1 to 16 keys");
  std::set<Bytes> seen;
  for (const json& k : keys) {
    if (!k.is_string()) return f.DecodeKeyError("keys");
    LEDGER_ASSIGN_OR_RETURN(Bytes key, f.DecodeKey(k.get<std::string>(), "keys"));
    if (!seen.insert(key).second) return Status::InvalidArgument("accessor: a key is listed twice");
    r.keys.push_back(std::move(key));
  }
  LEDGER_ASSIGN_OR_RETURN(r.time, f.Time("time"));
  return r;
}

StatusOr<PolicyRecord> ParsePolicy(ByteView payload) {
  LEDGER_ASSIGN_OR_RETURN(json j, ParseStrictJson(payload, "policy payload"));
  Fields f(j, "policy");
  LEDGER_RETURN_IF_ERROR(f.CheckObject({"holder", "accessor", "version", "purposes", "time"}, {}));
  PolicyRecord r;
  LEDGER_ASSIGN_OR_RETURN(r.holder, f.String("holder"));
  LEDGER_RETURN_IF_ERROR(Prefix(CheckName(r.holder, "holder"), "policy: "));
  LEDGER_ASSIGN_OR_RETURN(r.accessor, f.String("accessor"));
  LEDGER_RETURN_IF_ERROR(Prefix(CheckName(r.accessor, "accessor"), "policy: "));
  LEDGER_ASSIGN_OR_RETURN(r.version, f.Uint("version", 1, uint64_t{1} << 53));
  const json& purposes = j["purposes"];
  if (!purposes.is_array() || purposes.empty() || purposes.size() > kMaxPurposesPerPolicy)
    return Status::InvalidArgument("policy: \"purposes\" must be an array of 1 to 32 purposes");
  std::set<std::string> seen;
  for (const json& pj : purposes) {
    Fields pf(pj, "policy purpose");
    LEDGER_RETURN_IF_ERROR(pf.CheckObject({"purpose", "categories"}, {"retention_days"}));
    PolicyPurpose p;
    LEDGER_ASSIGN_OR_RETURN(p.purpose, pf.String("purpose"));
    const PurposeInfo* info = FindPurpose(p.purpose);
    if (!info) return Status::InvalidArgument("policy: unknown purpose \"" + p.purpose.substr(0, 64) + "\"");
    if (info->prohibited)
      return Status::InvalidArgument("policy: purpose " + p.purpose + " is never reasonably necessary and cannot be disclosed");
    if (!seen.insert(p.purpose).second) return Status::InvalidArgument("policy: purpose " + p.purpose + " listed twice");
    LEDGER_ASSIGN_OR_RETURN(p.categories, pf.Categories("categories"));
    if (pj.contains("retention_days")) {
      LEDGER_ASSIGN_OR_RETURN(uint64_t days, pf.Uint("retention_days", 0, 36500));
      p.retention_days = static_cast<uint32_t>(days);
    }
    r.purposes.push_back(std::move(p));
  }
  LEDGER_ASSIGN_OR_RETURN(r.time, f.Time("time"));
  return r;
}

StatusOr<AccessRecord> ParseAccess(ByteView payload) {
  if (auto r = ParseCanonicalAccess(payload)) return std::move(*r);
  LEDGER_ASSIGN_OR_RETURN(json j, ParseStrictJson(payload, "access payload"));
  Fields f(j, "access");
  LEDGER_RETURN_IF_ERROR(f.CheckObject(
      {"request_id", "accessor", "holder", "subject", "purpose", "categories", "consent", "time"}, {"actor", "detail"}));
  AccessRecord r;
  LEDGER_ASSIGN_OR_RETURN(r.request_id, f.String("request_id"));
  LEDGER_RETURN_IF_ERROR(Prefix(CheckText(r.request_id, "request_id", kMaxRequestIdLength, true), "access: "));
  LEDGER_ASSIGN_OR_RETURN(r.accessor, f.String("accessor"));
  LEDGER_RETURN_IF_ERROR(Prefix(CheckName(r.accessor, "accessor"), "access: "));
  LEDGER_ASSIGN_OR_RETURN(r.holder, f.String("holder"));
  LEDGER_RETURN_IF_ERROR(Prefix(CheckName(r.holder, "holder"), "access: "));
  LEDGER_ASSIGN_OR_RETURN(std::string subject, f.String("subject"));
  auto tag = Base64UrlDecode(subject);
  if (!tag.ok() || tag->size() != 32) return Status::InvalidArgument("access: \"subject\" must be a base64url 32-byte subject tag");
  r.subject = std::move(*tag);
  LEDGER_ASSIGN_OR_RETURN(r.purpose, f.String("purpose"));
  if (!FindPurpose(r.purpose)) return Status::InvalidArgument("access: unknown purpose \"" + r.purpose.substr(0, 64) + "\"");
  LEDGER_ASSIGN_OR_RETURN(r.categories, f.Categories("categories"));
  LEDGER_ASSIGN_OR_RETURN(r.consent, f.String("consent"));
  LEDGER_RETURN_IF_ERROR(Prefix(CheckText(r.consent, "consent", kMaxConsentLength, false), "access: "));
  LEDGER_ASSIGN_OR_RETURN(r.time, f.Time("time"));
  if (j.contains("actor")) {
    LEDGER_ASSIGN_OR_RETURN(std::string actor, f.String("actor"));
    LEDGER_RETURN_IF_ERROR(Prefix(CheckText(actor, "actor", kMaxActorLength, false), "access: "));
    r.actor = std::move(actor);
  }
  if (j.contains("detail")) {
    LEDGER_ASSIGN_OR_RETURN(std::string detail, f.String("detail"));
    LEDGER_RETURN_IF_ERROR(Prefix(CheckText(detail, "detail", kMaxDetailLength, false), "access: "));
    r.detail = std::move(detail);
  }
  return r;
}

StatusOr<IndexRecord> ParseIndex(ByteView payload) {
  LEDGER_ASSIGN_OR_RETURN(json j, ParseStrictJson(payload, "index payload"));
  Fields f(j, "index");
  LEDGER_RETURN_IF_ERROR(f.CheckObject({"size", "root", "subjects", "accesses", "time"}, {}));
  IndexRecord r;
  constexpr uint64_t kMax = uint64_t{1} << 53;  // exact in every JSON reader
  LEDGER_ASSIGN_OR_RETURN(r.size, f.Uint("size", 0, kMax));
  LEDGER_ASSIGN_OR_RETURN(Bytes root, f.Key("root"));
  std::memcpy(r.root.data(), root.data(), 32);
  LEDGER_ASSIGN_OR_RETURN(r.subjects, f.Uint("subjects", 0, kMax));
  LEDGER_ASSIGN_OR_RETURN(r.accesses, f.Uint("accesses", 0, kMax));
  LEDGER_ASSIGN_OR_RETURN(r.time, f.Time("time"));
  if (EncodeIndex(r) != payload)
    return Status::InvalidArgument("index: not in canonical form (compact JSON, keys size, root, subjects, accesses, time in that order)");
  return r;
}

StatusOr<ParsedEntry> ParseEntry(ByteView entry) {
  LEDGER_ASSIGN_OR_RETURN(Envelope env, ParseEnvelope(entry));
  ParsedEntry out;
  if (env.payload_type == kHolderPayloadType) {
    out.kind = EntryKind::kHolder;
    LEDGER_ASSIGN_OR_RETURN(out.record, ParseHolder(env.payload));
  } else if (env.payload_type == kAccessorPayloadType) {
    out.kind = EntryKind::kAccessor;
    LEDGER_ASSIGN_OR_RETURN(out.record, ParseAccessor(env.payload));
  } else if (env.payload_type == kPolicyPayloadType) {
    out.kind = EntryKind::kPolicy;
    LEDGER_ASSIGN_OR_RETURN(out.record, ParsePolicy(env.payload));
  } else if (env.payload_type == kAccessPayloadType) {
    out.kind = EntryKind::kAccess;
    LEDGER_ASSIGN_OR_RETURN(out.record, ParseAccess(env.payload));
  } else {
    out.kind = EntryKind::kIndex;
    LEDGER_ASSIGN_OR_RETURN(out.record, ParseIndex(env.payload));
  }
  LEDGER_RETURN_IF_ERROR(VerifyEnvelope(env));
  out.envelope = std::move(env);
  return out;
}

}  // namespace ledger
