// Fuzz target: subject tokens (ledger/subject.h) and the ECVRF decoding and
// verification under them (ledger/vrf.h), on arbitrary bytes.
// Input: a subject token, or (for the raw VRF calls) bytes split as
// public key (32) || proof (80) || alpha.
// Properties: an accepted token formats back to exactly the input; a token
// that verifies under the fixed holder key carries the tag the VRF yields;
// VrfVerify accepts only what VrfProofToHash decodes to the same beta, and
// a proof that verifies under the fixed key is the one the key itself
// produces: without the secret key the only other proofs would be
// re-encodings of it (a non-canonical Gamma or s), which decoding rejects.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "ledger/subject.h"
#include "ledger/vrf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  const ledger::VrfSecretKey& key = fuzz::VrfKey();

  auto token = ledger::ParseSubjectToken(in);
  if (token.ok()) {
    FUZZ_CHECK(ledger::FormatSubjectToken(*token) == in, "ParseSubjectToken accepted a non-canonical token");
    if (ledger::VerifySubjectToken(*token, key.public_key()).ok()) {
      auto issued = ledger::IssueSubjectToken(key, token->holder, token->customer_id, token->period);
      FUZZ_CHECK(issued.ok() && issued->tag == token->tag && issued->proof == token->proof,
                 "a verified token differs from the one the holder key issues");
    }
  }

  // Raw VRF: public key || proof || alpha.
  if (in.size() >= ledger::kVrfPublicKeySize + ledger::kVrfProofSize) {
    ledger::ByteView v(in);
    ledger::ByteView pk = v.substr(0, ledger::kVrfPublicKeySize);
    ledger::ByteView proof = v.substr(ledger::kVrfPublicKeySize, ledger::kVrfProofSize);
    ledger::ByteView alpha = v.substr(ledger::kVrfPublicKeySize + ledger::kVrfProofSize);
    auto beta = ledger::VrfVerify(pk, alpha, proof);
    auto hashed = ledger::VrfProofToHash(proof);
    if (beta.ok()) {
      FUZZ_CHECK(beta->size() == ledger::kVrfOutputSize, "beta of the wrong length");
      FUZZ_CHECK(hashed.ok() && *hashed == *beta, "VrfVerify and VrfProofToHash disagree");
    }
    // The same proof under the fixed key.
    auto mine = ledger::VrfVerify(key.public_key(), alpha, proof);
    if (mine.ok()) FUZZ_CHECK(key.Prove(alpha) == proof, "a second valid proof for one key and alpha");
    auto tag = ledger::SubjectTagFromBeta(beta.ok() ? ledger::ByteView(*beta) : ledger::ByteView(in).substr(0, 64));
    FUZZ_CHECK(tag.ok() && tag->size() == ledger::kSubjectTagSize, "SubjectTagFromBeta on 64 bytes");
  }
  auto alpha = ledger::SubjectVrfInput(in.substr(0, in.find('\n')), in.find('\n') == std::string::npos ? "" : in.substr(in.find('\n') + 1));
  if (alpha.ok()) FUZZ_CHECK(alpha->size() == 17 + 2 + in.size() - 1 - 7 + 7, "SubjectVrfInput length");
  return 0;
}
