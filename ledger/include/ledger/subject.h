// Subject tokens: what a data holder hands a customer so that the customer
// can find their accesses in the log and check that the holder logs them
// under the tag the holder's VRF key really gives them. Pure.
//
// A token is one line of printable ASCII:
//
//   ledger-subject-v1:<holder>:<YYYY-MM>:<customer id>:<tag>:<proof>
//
//   holder       the holder's name, as in the log (1 to 64 characters of
//                a-z, 0-9, '.', '-', '_', starting with a letter or digit)
//   YYYY-MM      the period: four digits, '-', a month 01 to 12
//   customer id  base64url (RFC 4648 §5, no padding) of the customer id
//                bytes, 1 to 256 of them
//   tag          base64url of the 32-byte subject tag
//   proof        base64url of the 80-byte ECVRF-EDWARDS25519-SHA512-TAI proof
//                (ledger/vrf.h) over SubjectVrfInput(customer id, period)
//
// The fields are separated by single ':' characters; nothing precedes the
// prefix or follows the proof (no whitespace, no newline). Every base64url
// field must be canonical (the only spelling of its bytes). A token is valid
// for a holder VRF public key when the proof verifies for that input and the
// tag equals the first 32 bytes of the VRF output. The customer id is in
// the token because the customer must recompute the VRF input; tokens are
// for the customer only and never appear in the log (the log holds tags).
//
// Thread-safety: pure functions and value types; all thread-safe.
#ifndef LEDGER_SUBJECT_H_
#define LEDGER_SUBJECT_H_

#include <string>
#include <string_view>

#include "ledger/bytes.h"
#include "ledger/status.h"
#include "ledger/vrf.h"

namespace ledger {

// The first field of every token.
extern const char kSubjectTokenPrefix[];  // "ledger-subject-v1"

struct SubjectToken {
  std::string holder;
  std::string period;       // "YYYY-MM"
  Bytes customer_id;        // 1 to 256 bytes
  Bytes tag;                // kSubjectTagSize (32) bytes
  Bytes proof;              // kVrfProofSize (80) bytes
};

// IssueSubjectToken computes the token of |customer_id| in |period| under
// the holder's VRF key: the proof over SubjectVrfInput(customer_id, period)
// and the tag it yields. Deterministic. InvalidArgument if |holder| is not a
// valid holder name, |customer_id| is empty or longer than 256 bytes, or
// |period| is not YYYY-MM with a month from 01 to 12.
StatusOr<SubjectToken> IssueSubjectToken(const VrfSecretKey& key, std::string_view holder,
                                         std::string_view customer_id, std::string_view period);

// FormatSubjectToken renders |token| in the text form above. It does not
// validate the fields: format only tokens that IssueSubjectToken or
// ParseSubjectToken produced.
std::string FormatSubjectToken(const SubjectToken& token);

// ParseSubjectToken parses the text form strictly: the exact prefix, exactly
// six ':'-separated fields, a valid holder name and period, canonical
// base64url of the documented lengths. InvalidArgument naming the field
// otherwise. It does not verify the proof (see VerifySubjectToken).
StatusOr<SubjectToken> ParseSubjectToken(std::string_view text);

// VerifySubjectToken checks |token| against the holder's 32-byte VRF public
// key (taken from the holder's entry in the log): the proof must verify for
// SubjectVrfInput(customer_id, period) and the tag must equal the first 32
// bytes of the VRF output. InvalidArgument if |holder_vrf_public_key| is not
// a valid VRF public key (ledger/vrf.h rules) or the token's fields are out
// of range; PermissionDenied if the proof does not verify (including a proof
// that does not even decode) or the tag does not match.
Status VerifySubjectToken(const SubjectToken& token, ByteView holder_vrf_public_key);

}  // namespace ledger

#endif  // LEDGER_SUBJECT_H_
