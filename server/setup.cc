#include "setup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ledger/files.h"
#include "ledger/ledger_hook.h"
#include "ledger/record.h"
#include "ledger/rules.h"
#include "ledger/vrf.h"

namespace ledgerd {
namespace {

using json = nlohmann::json;
using ledger::Status;

constexpr char kDemoHolder[] = "demo-bank";
constexpr char kDemoAccessor[] = "chat-banking";

int64_t Now() { return static_cast<int64_t>(time(nullptr)); }

// AppendOne submits one entry and returns its index, or why it was refused.
ledger::StatusOr<uint64_t> AppendOne(ledger::Sequencer& sequencer, ledger::Bytes entry) {
  auto parsed = ledger::ParseEntry(entry);
  if (!parsed.ok()) return parsed.status();
  std::vector<std::shared_ptr<const void>> ctx{std::make_shared<const ledger::ParsedEntry>(std::move(*parsed))};
  std::vector<ledger::Bytes> entries;
  entries.push_back(std::move(entry));
  LEDGER_ASSIGN_OR_RETURN(auto result, sequencer.Append(std::move(entries), std::move(ctx)));
  if (!result.entries[0].status.ok()) return result.entries[0].status;
  return result.entries[0].index;
}

ledger::StatusOr<ledger::Bytes> KeyField(const json& h, const char* field, const std::string& where) {
  if (!h.contains(field) || !h[field].is_string())
    return Status::InvalidArgument(where + ": missing string field \"" + field + "\"");
  auto raw = ledger::Base64UrlDecode(h[field].get_ref<const std::string&>());
  if (!raw.ok() || raw->size() != 32) return Status::InvalidArgument(where + ": \"" + field + "\" must be a base64url 32-byte key");
  return *raw;
}

}  // namespace

Status SyncHolders(const std::string& path, ledger::Store& store, ledger::Sequencer& sequencer,
                   const ledger::NoteSigner& log_key) {
  LEDGER_ASSIGN_OR_RETURN(std::string text, ledger::ReadFile(path));
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("holders") || !doc["holders"].is_array())
    return Status::InvalidArgument("holders file " + path + " must be a JSON object {\"holders\": [...]}");
  std::set<std::string> listed;
  for (size_t i = 0; i < doc["holders"].size(); i++) {
    const json& h = doc["holders"][i];
    std::string where = path + ": holders[" + std::to_string(i) + "]";
    if (!h.is_object() || !h.contains("name") || !h["name"].is_string())
      return Status::InvalidArgument(where + ": needs \"name\", \"signing_key\" and \"vrf_key\"");
    ledger::HolderRecord rec;
    rec.holder = h["name"].get<std::string>();
    LEDGER_ASSIGN_OR_RETURN(rec.signing_key, KeyField(h, "signing_key", where));
    LEDGER_ASSIGN_OR_RETURN(rec.vrf_key, KeyField(h, "vrf_key", where));
    if (!listed.insert(rec.holder).second) return Status::InvalidArgument(where + ": holder " + rec.holder + " listed twice");
    LEDGER_ASSIGN_OR_RETURN(auto reader, store.Read());
    ledger::ReaderStateStore state(*reader);
    LEDGER_ASSIGN_OR_RETURN(auto current, ledger::LedgerRules::GetHolder(state, rec.holder));
    if (current && current->signing_key == rec.signing_key && current->vrf_key == rec.vrf_key) continue;
    rec.time = ledger::FormatTime(Now());
    ledger::Bytes payload = ledger::EncodeHolder(rec);
    if (!ledger::ParseHolder(payload).ok())
      return Status::InvalidArgument(where + ": " + ledger::ParseHolder(payload).status().message());
    ledger::Bytes entry = ledger::SignEnvelopeWith(ledger::kHolderPayloadType, payload, log_key.verifier().public_key(),
                                                   [&](ledger::ByteView m) { return log_key.Sign(m); });
    LEDGER_ASSIGN_OR_RETURN(uint64_t index, AppendOne(sequencer, std::move(entry)));
    std::cout << "ledgerd: holder " << rec.holder << (current ? " changed keys" : " registered") << ": entry " << index
              << std::endl;
  }
  LEDGER_ASSIGN_OR_RETURN(auto reader, store.Read());
  std::vector<std::string> unlisted;
  LEDGER_RETURN_IF_ERROR(reader->ForEachState("h/", [&](ledger::ByteView key, ledger::ByteView) {
    std::string name(key.substr(2));
    if (!listed.count(name)) unlisted.push_back(name);
  }));
  for (const auto& name : unlisted)
    std::cout << "ledgerd: warning: holder " << name << " is in the log but not in " << path
              << "; its entries stay (the log is append-only)" << std::endl;
  return Status::OK();
}

ledger::StatusOr<std::string> PrepareDemo(const std::string& data_dir) {
  std::string dir = data_dir + "/demo";
  mkdir(dir.c_str(), 0700);
  auto ensure_ed25519 = [&](const std::string& name) -> Status {
    std::string path = dir + "/" + name;
    if (access(path.c_str(), F_OK) == 0) return Status::OK();
    LEDGER_ASSIGN_OR_RETURN(auto key, ledger::Ed25519Signer::Generate());
    return ledger::WriteKeyFile(path, "ed25519", key->seed(), key->public_key());
  };
  LEDGER_RETURN_IF_ERROR(ensure_ed25519("holder.key"));
  LEDGER_RETURN_IF_ERROR(ensure_ed25519("accessor.key"));
  std::string vrf_path = dir + "/holder-vrf.key";
  if (access(vrf_path.c_str(), F_OK) != 0) {
    LEDGER_ASSIGN_OR_RETURN(auto key, ledger::VrfSecretKey::Generate());
    LEDGER_RETURN_IF_ERROR(ledger::WriteKeyFile(vrf_path, "ecvrf", key->seed(), key->public_key()));
  }
  LEDGER_ASSIGN_OR_RETURN(auto holder, ledger::LoadSigningKeyFile(dir + "/holder.key"));
  LEDGER_ASSIGN_OR_RETURN(auto vrf, ledger::LoadVrfKeyFile(vrf_path));
  json doc{{"holders", json::array({json{{"name", kDemoHolder},
                                         {"signing_key", ledger::Base64UrlEncode(holder->public_key())},
                                         {"vrf_key", ledger::Base64UrlEncode(vrf->public_key())}}})}};
  std::string path = dir + "/holders.json";
  LEDGER_RETURN_IF_ERROR(ledger::WriteFileAtomic(path, doc.dump(2) + "\n", 0644));
  return path;
}

Status PopulateDemo(const std::string& data_dir, ledger::Store& store, ledger::Sequencer& sequencer,
                    const std::string& base_url, const std::string& vkey) {
  std::string dir = data_dir + "/demo";
  LEDGER_ASSIGN_OR_RETURN(auto holder, ledger::LoadSigningKeyFile(dir + "/holder.key"));
  LEDGER_ASSIGN_OR_RETURN(auto accessor, ledger::LoadSigningKeyFile(dir + "/accessor.key"));
  LEDGER_ASSIGN_OR_RETURN(auto vrf, ledger::LoadVrfKeyFile(dir + "/holder-vrf.key"));
  LEDGER_ASSIGN_OR_RETURN(auto reader, store.Read());
  ledger::ReaderStateStore state(*reader);
  LEDGER_ASSIGN_OR_RETURN(char key_status, ledger::LedgerRules::KeyStatus(state, kDemoHolder, kDemoAccessor, accessor->public_key()));
  int64_t now = Now();
  std::string time = ledger::FormatTime(now);
  std::time_t tt = static_cast<std::time_t>(now);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char period[8];
  strftime(period, sizeof period, "%Y-%m", &tm);

  if (key_status == 0) {
    ledger::AccessorRecord auth{kDemoHolder, kDemoAccessor, ledger::AccessorRecord::Action::kAuthorize,
                                {ledger::Bytes(accessor->public_key())}, time};
    LEDGER_ASSIGN_OR_RETURN(uint64_t a, AppendOne(sequencer, ledger::SignEnvelope(ledger::kAccessorPayloadType,
                                                                                  ledger::EncodeAccessor(auth), *holder)));
    ledger::PolicyRecord policy;
    policy.holder = kDemoHolder;
    policy.accessor = kDemoAccessor;
    policy.version = 1;
    policy.purposes = {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES", "TRANSACTIONS"}, 90},
                       {"PAYMENT_INITIATION", {"ACCOUNT_BASIC", "PAYMENT_SUPPORT"}, 30},
                       {"FRAUD_PREVENTION", {"TRANSACTIONS"}, 365}};
    policy.time = time;
    LEDGER_ASSIGN_OR_RETURN(uint64_t p, AppendOne(sequencer, ledger::SignEnvelope(ledger::kPolicyPayloadType,
                                                                                  ledger::EncodePolicy(policy), *accessor)));
    struct DemoAccess {
      const char* customer;
      const char* purpose;
      std::set<std::string> categories;
      const char* detail;
    };
    const DemoAccess accesses[] = {
        {"alice", "CUSTOMER_SUPPORT", {"BALANCES"}, "customer asked for her balance in chat"},
        {"alice", "PAYMENT_INITIATION", {"ACCOUNT_BASIC", "PAYMENT_SUPPORT"}, "pay rent, initiated by the customer"},
        {"bob", "CUSTOMER_SUPPORT", {"TRANSACTIONS"}, "dispute of a card transaction"},
        {"bob", "FRAUD_PREVENTION", {"TRANSACTIONS"}, "unusual login check"},
        {"alice", "CUSTOMER_SUPPORT", {"ACCOUNT_BASIC"}, "address change request"},
    };
    uint64_t first = 0;
    int n = 0;
    for (const auto& d : accesses) {
      LEDGER_ASSIGN_OR_RETURN(ledger::Bytes alpha, ledger::SubjectVrfInput(d.customer, period));
      LEDGER_ASSIGN_OR_RETURN(ledger::Bytes beta, ledger::VrfProofToHash(vrf->Prove(alpha)));
      LEDGER_ASSIGN_OR_RETURN(ledger::Bytes tag, ledger::SubjectTagFromBeta(beta));
      ledger::AccessRecord r;
      r.request_id = "demo-" + std::to_string(++n);
      r.accessor = kDemoAccessor;
      r.holder = kDemoHolder;
      r.subject = tag;
      r.purpose = d.purpose;
      r.categories = d.categories;
      r.consent = "demo-consent-" + std::string(d.customer);
      r.time = time;
      r.actor = "demo-agent";
      r.detail = d.detail;
      LEDGER_ASSIGN_OR_RETURN(uint64_t i, AppendOne(sequencer, ledger::SignEnvelope(ledger::kAccessPayloadType,
                                                                                    ledger::EncodeAccess(r), *accessor)));
      if (n == 1) first = i;
    }
    std::cout << "ledgerd: demo: authorised accessor " << kDemoAccessor << " (entry " << a << "), policy v1 (entry " << p
              << "), " << n << " accesses (entries " << first << "-" << first + n - 1 << ")" << std::endl;
  }
  std::string ctl = "build/tools/ledgerctl/ledgerctl";
  std::cout << "\nTry next (demo keys are in " << dir << "):\n"
            << "  curl -s " << base_url << "/checkpoint\n"
            << "  curl -s " << base_url << "/v1/entries/3\n"
            << "  curl -s '" << base_url << "/v1/proof/tlog-proof?index=3' > receipt.tlog-proof\n"
            << "  " << ctl << " receipt check --receipt receipt.tlog-proof --log-key '" << vkey << "'\n"
            << "  " << ctl << " access sign --key " << dir << "/accessor.key --accessor " << kDemoAccessor << " --holder "
            << kDemoHolder << " \\\n      --subject $(" << ctl << " subject-token --holder " << kDemoHolder
            << " --vrf-key " << dir << "/holder-vrf.key --customer carol --period " << period << " --tag-only) \\\n"
            << "      --purpose TARGETED_ADVERTISING --categories TRANSACTIONS --consent none \\\n"
            << "    | " << ctl << " submit --log " << base_url << " -    # refused: undisclosed use\n"
            << std::endl;
  return Status::OK();
}

}  // namespace ledgerd
