// keygen and holder-config.
#include <unistd.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "ledger/files.h"
#include "ledger/record.h"
#include "ledger/vrf.h"

namespace ledgerctl {
namespace {

using json = nlohmann::json;

constexpr char kKeygenHelp[] = R"(Usage: ledgerctl keygen --type ed25519|vrf --out PATH

Generates a key and writes it to PATH as a JSON key file with mode 0600:
  {"type": "ed25519" | "ecvrf", "seed": "<base64url>", "public_key": "<base64url>"}
ed25519 keys sign entries (holders, accessors); vrf keys
(ECVRF-EDWARDS25519-SHA512-TAI) derive a holder's subject tags. Refuses to
overwrite an existing file. Prints the base64url public key.

Options:
  --type ed25519|vrf   kind of key
  --out PATH           key file to create
  --help               show this help
)";

int Keygen(const Args& args) {
  std::string type = args.Get("--type");
  std::string path = args.Get("--out");
  if (type != "ed25519" && type != "vrf") return UsageError("--type must be ed25519 or vrf, got \"" + type + "\"");
  if (access(path.c_str(), F_OK) == 0) return Fail(path + " already exists; not overwriting a key");
  std::string public_key;
  ledger::Status s;
  if (type == "ed25519") {
    auto key = ledger::Ed25519Signer::Generate();
    if (!key.ok()) return FailStatus(key.status());
    s = ledger::WriteKeyFile(path, "ed25519", (*key)->seed(), (*key)->public_key());
    public_key = ledger::Base64UrlEncode((*key)->public_key());
  } else {
    auto key = ledger::VrfSecretKey::Generate();
    if (!key.ok()) return FailStatus(key.status());
    s = ledger::WriteKeyFile(path, "ecvrf", (*key)->seed(), (*key)->public_key());
    public_key = ledger::Base64UrlEncode((*key)->public_key());
  }
  if (!s.ok()) return FailStatus(s);
  std::cout << public_key << std::endl;
  return kExitOk;
}

constexpr char kHolderConfigHelp[] = R"(Usage: ledgerctl holder-config --name NAME --signing-key KEY --vrf-key KEY [--file HOLDERS.json]

Adds a data holder to ledgerd's holders file (SPEC.md §11), or replaces the
holder of that name:
  {"holders": [{"name": "...", "signing_key": "<base64url>", "vrf_key": "<base64url>"}]}
ledgerd appends a holder entry for every new or changed holder when it
starts with --holders HOLDERS.json.

Options:
  --name NAME          holder name (a-z, 0-9, '.', '-', '_'; 1 to 64)
  --signing-key KEY    the holder's Ed25519 key: a key file (from keygen) or
                       a base64url public key
  --vrf-key KEY        the holder's VRF key: a key file or a base64url
                       public key
  --file HOLDERS.json  file to update (created if missing); without it the
                       holders JSON for this one holder is printed
  --help               show this help
)";

int HolderConfig(const Args& args) {
  ledger::HolderRecord rec;
  rec.holder = args.Get("--name");
  auto signing = PublicKeyArg(args.Get("--signing-key"), "ed25519", "--signing-key");
  if (!signing.ok()) return FailStatus(signing.status(), "", true);
  auto vrf = PublicKeyArg(args.Get("--vrf-key"), "ecvrf", "--vrf-key");
  if (!vrf.ok()) return FailStatus(vrf.status(), "", true);
  rec.signing_key = *signing;
  rec.vrf_key = *vrf;
  rec.time = NowRfc3339();
  // The library's parser is the authority on names and keys.
  if (auto p = ledger::ParseHolder(ledger::EncodeHolder(rec)); !p.ok()) return FailStatus(p.status(), "", true);
  json entry{{"name", rec.holder},
             {"signing_key", ledger::Base64UrlEncode(rec.signing_key)},
             {"vrf_key", ledger::Base64UrlEncode(rec.vrf_key)}};
  if (!args.Has("--file")) {
    std::cout << json{{"holders", json::array({entry})}}.dump(2) << std::endl;
    return kExitOk;
  }
  std::string path = args.Get("--file");
  json doc{{"holders", json::array()}};
  auto text = ledger::ReadFile(path);
  if (text.ok()) {
    doc = json::parse(*text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("holders") || !doc["holders"].is_array())
      return Fail(path + " is not a holders file (want a JSON object {\"holders\": [...]})");
  } else if (!text.status().IsNotFound()) {
    return FailStatus(text.status());
  }
  bool replaced = false;
  for (json& h : doc["holders"]) {
    if (h.is_object() && h.contains("name") && h["name"] == rec.holder) {
      h = entry;
      replaced = true;
    }
  }
  if (!replaced) doc["holders"].push_back(entry);
  if (auto s = ledger::WriteFileAtomic(path, doc.dump(2) + "\n", 0644); !s.ok()) return FailStatus(s);
  std::cout << "holder " << rec.holder << (replaced ? " updated in " : " added to ") << path << std::endl;
  return kExitOk;
}

}  // namespace

std::vector<Command> KeyCommands() {
  return {
      {"keygen", "generate an Ed25519 or VRF key file (prints the public key)", kKeygenHelp,
       {{"--type", FlagDef::kValue}, {"--out", FlagDef::kValue}}, {"--type", "--out"}, 0, 0, Keygen},
      {"holder-config", "add or replace a holder in ledgerd's holders file", kHolderConfigHelp,
       {{"--name", FlagDef::kValue}, {"--signing-key", FlagDef::kValue}, {"--vrf-key", FlagDef::kValue},
        {"--file", FlagDef::kValue}},
       {"--name", "--signing-key", "--vrf-key"}, 0, 0, HolderConfig},
  };
}

}  // namespace ledgerctl
