// Signed entries of the access ledger: a DSSE-style envelope around a JSON
// payload of one of five kinds (holder, accessor, policy, access, and the
// log's own subject index commitments), the
// vocabulary of purposes and data categories, and strict parsing of each.
// Pure: no storage, no network. See SPEC.md §8–§10 for the byte grammar.
//
// Signatures cover PAE(payloadType, payload) as DSSE v1 defines it, never a
// re-serialisation of JSON, so no canonicalisation is needed. A signature's
// keyid is the signer's Ed25519 public key in base64url, which lets every
// signature be checked without any state; whether that key is *authorised*
// is the business of the ledger state (ledger/rules.h).
//
// Thread-safety: pure functions and value types.
#ifndef LEDGER_RECORD_H_
#define LEDGER_RECORD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/status.h"

namespace ledger {

class NoteSigner;

enum class EntryKind { kHolder, kAccessor, kPolicy, kAccess, kIndex };

// Payload types, one per kind, versioned.
extern const char kHolderPayloadType[];    // application/vnd.access-ledger.holder.v1+json
extern const char kAccessorPayloadType[];  // application/vnd.access-ledger.accessor.v1+json
extern const char kPolicyPayloadType[];    // application/vnd.access-ledger.policy.v1+json
extern const char kAccessPayloadType[];    // application/vnd.access-ledger.access.v1+json
extern const char kIndexPayloadType[];     // application/vnd.access-ledger.index.v1+json

const char* EntryKindName(EntryKind kind);  // "holder", "accessor", ...

// Limits.
constexpr size_t kMaxNameLength = 64;        // holder and accessor names
constexpr size_t kMaxRequestIdLength = 128;
constexpr size_t kMaxConsentLength = 256;
constexpr size_t kMaxActorLength = 128;
constexpr size_t kMaxDetailLength = 1024;
constexpr size_t kMaxKeysPerAccessor = 16;
constexpr size_t kMaxPurposesPerPolicy = 32;

// Vocabulary (SPEC.md §9). Prohibited purposes exist so that an access can
// name them (and be refused); no policy may disclose them.
struct PurposeInfo {
  const char* code;
  const char* description;
  bool prohibited;
};
struct CategoryInfo {
  const char* code;
  const char* description;
};
const std::vector<PurposeInfo>& Purposes();
const std::vector<CategoryInfo>& Categories();
const PurposeInfo* FindPurpose(std::string_view code);
const CategoryInfo* FindCategory(std::string_view code);

// PAE returns the DSSE v1 pre-authentication encoding:
// "DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload.
Bytes Pae(std::string_view payload_type, ByteView payload);

// Envelope is a parsed entry: exactly one signature.
struct Envelope {
  std::string payload_type;
  Bytes payload;
  Bytes public_key;  // 32 bytes, decoded from keyid
  Bytes signature;   // 64 bytes
};

// EncodeEnvelope renders the canonical entry bytes:
// {"payload":"<b64>","payloadType":"<type>","signatures":[{"keyid":"<b64url>","sig":"<b64>"}]}
Bytes EncodeEnvelope(const Envelope& env);

// ParseEnvelope parses entry bytes strictly: valid JSON in exactly the
// canonical form EncodeEnvelope produces, a known payload type, one
// signature with a 32-byte keyid and a 64-byte sig. InvalidArgument
// otherwise. Does not verify the signature.
StatusOr<Envelope> ParseEnvelope(ByteView entry);

// VerifyEnvelope checks the Ed25519 signature over PAE. PermissionDenied if
// it does not verify.
Status VerifyEnvelope(const Envelope& env);

// Ed25519Signer signs envelopes with a raw Ed25519 key (holder or accessor
// keys; the log signs holder entries with its note key through the same
// interface). The secret is wiped on destruction. Thread-compatible.
class Ed25519Signer {
 public:
  // FromSeed builds a signer from a 32-byte seed.
  static StatusOr<std::unique_ptr<Ed25519Signer>> FromSeed(ByteView seed);
  static StatusOr<std::unique_ptr<Ed25519Signer>> Generate();
  ~Ed25519Signer();
  Ed25519Signer(const Ed25519Signer&) = delete;
  Ed25519Signer& operator=(const Ed25519Signer&) = delete;
  ByteView public_key() const;
  ByteView seed() const;  // secret
  Bytes Sign(ByteView msg) const;

 private:
  Ed25519Signer() = default;
  uint8_t sk_[64] = {};
};

// SignEnvelope returns canonical entry bytes for |payload| of |payload_type|
// signed by |signer|.
Bytes SignEnvelope(std::string_view payload_type, ByteView payload, const Ed25519Signer& signer);
// SignEnvelopeWith does the same with any Ed25519 signing function (the
// log's note key signs holder entries this way).
Bytes SignEnvelopeWith(std::string_view payload_type, ByteView payload, ByteView public_key,
                       const std::function<Bytes(ByteView)>& sign);

// --- Payloads -------------------------------------------------------------

// Times are RFC 3339 UTC with a "Z" suffix and optional fraction:
// "2026-12-01T10:00:00Z". ParseTime returns Unix seconds.
StatusOr<int64_t> ParseTime(std::string_view text);
std::string FormatTime(int64_t unix_seconds);

struct HolderRecord {
  std::string holder;      // name
  Bytes signing_key;       // 32-byte Ed25519 public key
  Bytes vrf_key;           // 32-byte ECVRF public key
  std::string time;
};

struct AccessorRecord {
  std::string holder;
  std::string accessor;
  enum class Action { kAuthorize, kRevoke } action = Action::kAuthorize;
  std::vector<Bytes> keys;  // 1..16 Ed25519 public keys
  std::string time;
};

struct PolicyPurpose {
  std::string purpose;
  std::set<std::string> categories;  // non-empty
  std::optional<uint32_t> retention_days;
};

struct PolicyRecord {
  std::string holder;
  std::string accessor;
  uint64_t version = 0;  // >= 1, strictly increasing per (holder, accessor)
  std::vector<PolicyPurpose> purposes;  // distinct purposes
  std::string time;
};

struct AccessRecord {
  std::string request_id;
  std::string accessor;
  std::string holder;
  Bytes subject;  // 32-byte subject tag
  std::string purpose;
  std::set<std::string> categories;  // non-empty
  std::string consent;
  std::string time;
  std::optional<std::string> actor;
  std::optional<std::string> detail;
};

// IndexRecord is a subject index commitment (SPEC.md §14), appended and
// signed by the log: it covers every access entry below |size|, which is
// the commitment's own leaf index.
struct IndexRecord {
  uint64_t size = 0;
  Hash root{};            // subject index root over the access entries below size
  uint64_t subjects = 0;  // distinct subject tags below size
  uint64_t accesses = 0;  // access entries below size
  std::string time;
};

// Payload JSON encoders (compact, fixed key order) used by clients.
Bytes EncodeHolder(const HolderRecord& r);
Bytes EncodeAccessor(const AccessorRecord& r);
Bytes EncodePolicy(const PolicyRecord& r);
Bytes EncodeAccess(const AccessRecord& r);
// EncodeIndex renders the one byte form ParseIndex accepts.
Bytes EncodeIndex(const IndexRecord& r);

// Strict payload parsers: a JSON object with exactly the documented fields,
// each of the documented type and length, codes from the vocabulary.
// InvalidArgument naming the field otherwise.
StatusOr<HolderRecord> ParseHolder(ByteView payload);
StatusOr<AccessorRecord> ParseAccessor(ByteView payload);
StatusOr<PolicyRecord> ParsePolicy(ByteView payload);
StatusOr<AccessRecord> ParseAccess(ByteView payload);
// ParseIndex also requires the payload to be exactly EncodeIndex of what it
// parsed (compact, fields in order): only the log writes commitments, so
// one commitment has one byte form. Numbers are at most 2^53.
StatusOr<IndexRecord> ParseIndex(ByteView payload);

// ParsedEntry is an entry whose envelope, payload and signature all check.
struct ParsedEntry {
  EntryKind kind;
  Envelope envelope;
  std::variant<HolderRecord, AccessorRecord, PolicyRecord, AccessRecord, IndexRecord> record;

  const HolderRecord& holder() const { return std::get<HolderRecord>(record); }
  const AccessorRecord& accessor() const { return std::get<AccessorRecord>(record); }
  const PolicyRecord& policy() const { return std::get<PolicyRecord>(record); }
  const AccessRecord& access() const { return std::get<AccessRecord>(record); }
  const IndexRecord& index() const { return std::get<IndexRecord>(record); }
};

// ParseEntry parses the envelope and its payload and verifies the
// signature. InvalidArgument for malformed input, PermissionDenied for a bad
// signature.
StatusOr<ParsedEntry> ParseEntry(ByteView entry);

}  // namespace ledger

#endif  // LEDGER_RECORD_H_
