// LedgerParties: the keys of a ledger-mode test log (the log's note key, one
// holder with its VRF key, one accessor) and the signed entries that set
// such a log up: the holder (signed by the log's key), the accessor's
// authorisation (signed by the holder) and a policy (signed by the
// accessor), all dated kTestTime. Tests that build logs entry by entry
// (audit_memory_test, subject_verify_test) start from these.
// Header-only. Not thread-safe: one owner.
#ifndef LEDGER_TESTS_TEST_PARTIES_H_
#define LEDGER_TESTS_TEST_PARTIES_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/vrf.h"

namespace ledger_test {

inline constexpr char kTestTime[] = "2026-12-01T10:00:00Z";

struct LedgerParties {
  // The constructor generates every key; |origin| names the log's key.
  LedgerParties(const std::string& origin, std::string holder_name, std::string accessor_name)
      : holder_name(std::move(holder_name)), accessor_name(std::move(accessor_name)) {
    log_key = std::move(ledger::NoteSigner::Generate(origin)).value();
    holder = std::move(ledger::Ed25519Signer::Generate()).value();
    accessor = std::move(ledger::Ed25519Signer::Generate()).value();
    vrf = std::move(ledger::VrfSecretKey::Generate()).value();
  }

  // LogSigned signs an envelope of |type| with the log's own key (holder
  // entries, index commitments).
  ledger::Bytes LogSigned(const char* type, const ledger::Bytes& payload) const {
    return ledger::SignEnvelopeWith(type, payload, log_key->verifier().public_key(),
                                    [&](ledger::ByteView m) { return log_key->Sign(m); });
  }

  ledger::Bytes HolderEntry() const {
    ledger::HolderRecord r{holder_name, ledger::Bytes(holder->public_key()), ledger::Bytes(vrf->public_key()),
                           kTestTime};
    return LogSigned(ledger::kHolderPayloadType, ledger::EncodeHolder(r));
  }

  // AuthorizeEntry is the holder's authorisation of the accessor's key.
  ledger::Bytes AuthorizeEntry() const {
    ledger::AccessorRecord r{holder_name, accessor_name, ledger::AccessorRecord::Action::kAuthorize,
                             {ledger::Bytes(accessor->public_key())}, kTestTime};
    return ledger::SignEnvelope(ledger::kAccessorPayloadType, ledger::EncodeAccessor(r), *holder);
  }

  // PolicyEntry is the accessor's policy |version| disclosing |purposes|.
  ledger::Bytes PolicyEntry(uint64_t version, std::vector<ledger::PolicyPurpose> purposes) const {
    ledger::PolicyRecord r;
    r.holder = holder_name;
    r.accessor = accessor_name;
    r.version = version;
    r.purposes = std::move(purposes);
    r.time = kTestTime;
    return ledger::SignEnvelope(ledger::kPolicyPayloadType, ledger::EncodePolicy(r), *accessor);
  }

  std::string holder_name, accessor_name;
  std::unique_ptr<ledger::NoteSigner> log_key;
  std::unique_ptr<ledger::Ed25519Signer> holder, accessor;
  std::unique_ptr<ledger::VrfSecretKey> vrf;
};

}  // namespace ledger_test

#endif  // LEDGER_TESTS_TEST_PARTIES_H_
