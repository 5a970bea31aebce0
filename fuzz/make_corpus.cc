// fuzz_make_corpus DIR: writes the seed corpora of the fuzz targets into
// DIR/<target>/ (normally fuzz/corpus/; tools/fuzz --seed runs it). Seeds
// are valid inputs signed with the fixed keys of fuzz_common.h, so the
// fuzzers start past every signature check. It writes only its own
// "seed-<name>" files (the same bytes every run), so re-running it never
// disturbs the inputs the fuzzers added.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_common.h"
#include "ledger/cosignature.h"
#include "ledger/merkle.h"
#include "ledger/record.h"
#include "ledger/subject.h"
#include "ledger/tiles.h"
#include "ledger/tlog_proof.h"

namespace {

using json = nlohmann::json;
std::string g_dir;
int g_written = 0;

void Put(const std::string& target, const std::string& name, const std::string& bytes) {
  std::string dir = g_dir + "/" + target;
  mkdir(g_dir.c_str(), 0755);
  mkdir(dir.c_str(), 0755);
  std::string path = dir + "/seed-" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) {
    std::cerr << "cannot write " << path << "\n";
    std::exit(2);
  }
  g_written++;
}

std::string B64(const ledger::Hash& h) { return ledger::Base64Encode(ledger::HashView(h)); }

json HashesJson(const std::vector<ledger::Hash>& v) {
  json a = json::array();
  for (const auto& h : v) a.push_back(B64(h));
  return a;
}

const char* Purpose() {
  for (const auto& p : ledger::Purposes())
    if (!p.prohibited) return p.code;
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_corpus DIR\n";
    return 2;
  }
  g_dir = argv[1];
  const auto& log = fuzz::LogSigner();
  const auto& w1 = fuzz::Witness1();
  const auto& w2 = fuzz::Witness2();
  const auto& acc = fuzz::AccessorKey();
  const auto& vrf = fuzz::VrfKey();
  const uint64_t kTime = 1767225600;

  // --- bytes
  Put("fuzz_bytes", "b64", "aGVsbG8gd29ybGQ=");
  Put("fuzz_bytes", "b64url", "aGVsbG8gd29ybGQ");
  Put("fuzz_bytes", "hex", "00ff10ab");
  Put("fuzz_bytes", "uint", "18446744073709551615");
  Put("fuzz_bytes", "zero", "0");
  Put("fuzz_bytes", "reader", std::string("\x00\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x07\x0a\x41\x42", 15));

  // --- notes and checkpoints
  fuzz::MemTree t5 = fuzz::TestTree(5), t8 = fuzz::TestTree(8);
  std::string cp5 = fuzz::SignedCheckpoint(5, t5.Root());
  std::string cp8 = fuzz::SignedCheckpoint(8, t8.Root());
  ledger::Checkpoint body;
  body.origin = fuzz::kLogName;
  body.size = 8;
  body.root = t8.Root();
  body.extensions = {"ext line"};
  Put("fuzz_note", "signed-checkpoint", cp5);
  Put("fuzz_note", "checkpoint-body", body.Format());
  Put("fuzz_note", "signed-ext", fuzz::Must(log.SignNote(body.Format())));
  Put("fuzz_note", "vkey", log.verifier().VerifierKeyString());
  Put("fuzz_note", "skey", log.PrivateKeyString());
  std::string text8 = fuzz::Must(ledger::ParseNote(cp8)).text;
  Put("fuzz_note", "two-signatures", cp8 + fuzz::Must(w1.CosignLine(text8, kTime)));

  // --- cosignatures
  std::string line1 = fuzz::Must(w1.CosignLine(text8, kTime));
  std::string line2 = fuzz::Must(w2.CosignLine(text8, kTime + 1));
  Put("fuzz_cosignature", "vkey", w1.verifier().VerifierKeyString());
  Put("fuzz_cosignature", "skey", w2.PrivateKeyString());
  Put("fuzz_cosignature", "line-and-body", line1 + text8);
  Put("fuzz_cosignature", "witnessed-1", cp8 + line1);
  Put("fuzz_cosignature", "witnessed-2", cp8 + line1 + line2);

  // --- witness add-checkpoint (the fuzzer's witness holds size 5)
  auto proof58 = fuzz::Must(ledger::ConsistencyProof(5, 8, t8));
  std::string req = "old 5\n";
  for (const auto& h : proof58) req += B64(h) + "\n";
  Put("fuzz_witness_request", "extend-5-8", req + "\n" + cp8);
  Put("fuzz_witness_request", "same-5", "old 5\n\n" + cp5);
  Put("fuzz_witness_request", "stale-0", "old 0\n\n" + cp8);
  Put("fuzz_witness_request", "cosigned-note", req + "\n" + cp8 + line2);

  // --- tiles and bundles
  Put("fuzz_tiles", "hash-tile", "tile/0/000");
  Put("fuzz_tiles", "partial", "tile/0/001.p/44");
  Put("fuzz_tiles", "deep", "tile/3/x123/x456/789.p/255");
  Put("fuzz_tiles", "entries", "tile/entries/x001/000.p/7");
  Put("fuzz_tiles", "bundle",
      fuzz::Must(ledger::EncodeEntryBundle({ledger::ByteView("first"), ledger::ByteView(""), ledger::ByteView("third entry")})));

  // --- records: every payload kind, alone and signed
  ledger::HolderRecord h{fuzz::kHolderName, std::string(log.verifier().public_key()), std::string(vrf.public_key()),
                         "2026-12-01T10:00:00Z"};
  ledger::AccessorRecord a;
  a.holder = fuzz::kHolderName;
  a.accessor = "insurer";
  a.keys = {std::string(acc.public_key())};
  a.time = "2026-12-01T10:00:01Z";
  ledger::PolicyRecord p;
  p.holder = fuzz::kHolderName;
  p.accessor = "insurer";
  p.version = 1;
  ledger::PolicyPurpose pp;
  pp.purpose = Purpose();
  pp.categories = {ledger::Categories()[0].code};
  pp.retention_days = 30;
  p.purposes = {pp};
  p.time = "2026-12-01T10:00:02Z";
  auto token = fuzz::Must(ledger::IssueSubjectToken(vrf, fuzz::kHolderName, "customer-42", "2026-12"));
  ledger::AccessRecord x;
  x.request_id = "req-1";
  x.accessor = "insurer";
  x.holder = fuzz::kHolderName;
  x.subject = token.tag;
  x.purpose = Purpose();
  x.categories = {ledger::Categories()[0].code};
  x.consent = "consent-ref-9";
  x.time = "2026-12-01T10:00:03Z";
  x.actor = "agent 7";
  x.detail = "claim review";
  ledger::Bytes access_entry = ledger::SignEnvelope(ledger::kAccessPayloadType, ledger::EncodeAccess(x), acc);
  Put("fuzz_record", "holder", ledger::EncodeHolder(h));
  Put("fuzz_record", "accessor", ledger::EncodeAccessor(a));
  Put("fuzz_record", "policy", ledger::EncodePolicy(p));
  Put("fuzz_record", "access", ledger::EncodeAccess(x));
  Put("fuzz_record", "holder-entry", ledger::SignEnvelope(ledger::kHolderPayloadType, ledger::EncodeHolder(h), acc));
  Put("fuzz_record", "accessor-entry", ledger::SignEnvelope(ledger::kAccessorPayloadType, ledger::EncodeAccessor(a), acc));
  Put("fuzz_record", "policy-entry", ledger::SignEnvelope(ledger::kPolicyPayloadType, ledger::EncodePolicy(p), acc));
  Put("fuzz_record", "access-entry", access_entry);
  ledger::IndexRecord ix;
  ix.size = 1042;
  ix.root = t8.Root();
  ix.subjects = 17;
  ix.accesses = 900;
  ix.time = "2026-12-01T10:00:04Z";
  Put("fuzz_record", "index", ledger::EncodeIndex(ix));
  Put("fuzz_record", "index-entry",
      ledger::SignEnvelopeWith(ledger::kIndexPayloadType, ledger::EncodeIndex(ix), log.verifier().public_key(),
                               [&](ledger::ByteView m) { return log.Sign(m); }));
  Put("fuzz_record", "time", "2026-12-01T10:00:00.125Z");

  // --- proofs: a receipt for the access entry at index 4 of a 6-leaf tree
  std::vector<std::string> leaves = {fuzz::LeafData(0), fuzz::LeafData(1), fuzz::LeafData(2), fuzz::LeafData(3),
                                     access_entry, fuzz::LeafData(5)};
  fuzz::MemTree rt(leaves);
  std::string rcp = fuzz::SignedCheckpoint(6, rt.Root());
  std::string receipt = ledger::FormatTlogProof({access_entry, 4, fuzz::Must(ledger::InclusionProof(4, 6, rt)), rcp});
  Put("fuzz_proof", "receipt", receipt);
  Put("fuzz_proof", "receipt-json", json{{"tlog_proof", receipt}, {"index", 4}}.dump());
  Put("fuzz_proof", "receipt-witnessed",
      ledger::FormatTlogProof({access_entry, 4, fuzz::Must(ledger::InclusionProof(4, 6, rt)),
                               rcp + fuzz::Must(w1.CosignLine(fuzz::Must(ledger::ParseNote(rcp)).text, kTime))}));
  fuzz::MemTree t40 = fuzz::TestTree(40);
  Put("fuzz_proof", "inclusion",
      json{{"index", 13}, {"size", 40}, {"hashes", HashesJson(fuzz::Must(ledger::InclusionProof(13, 40, t40)))}}.dump());
  Put("fuzz_proof", "consistency",
      json{{"from", 11}, {"to", 37}, {"hashes", HashesJson(fuzz::Must(ledger::ConsistencyProof(11, 37, t40)))}}.dump());

  // --- subject tokens and VRF proofs
  Put("fuzz_subject", "token", ledger::FormatSubjectToken(token));
  auto alpha = fuzz::Must(ledger::SubjectVrfInput("customer-42", "2026-12"));
  Put("fuzz_subject", "vrf", std::string(vrf.public_key()) + vrf.Prove(alpha) + alpha);
  Put("fuzz_subject", "vrf-input", "customer-42\n2026-12");

  // --- query strings of every endpoint
  const char* targets[] = {
      "/checkpoint",
      "/tile/0/x001/234.p/7",
      "/tile/entries/000",
      "/v1/entries?proof=tlog",
      "/v1/entries/12345",
      "/v1/proof/inclusion?index=3&size=10",
      "/v1/proof/consistency?from=1&to=18446744073709551615",
      "/v1/proof/by-hash?hash=47DEQpj8HBSa%2B%2FTImW%2B5JCeuQeRkm5NMpJWZG3hSuFU%3D&size=9",
      "/v1/proof/tlog-proof?index=0",
      "/v1/subjects/47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU?offset=0&limit=100",
  };
  for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) Put("fuzz_query", "target-" + std::to_string(i), targets[i]);

  // --- heads of HTTP answers (ledger-verify's fetcher)
  const char* heads[] = {
      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 66048\r\n",
      "HTTP/1.1 404 Not Found\r\nContent-Length: 57\r\nConnection: close\r\n",
      "HTTP/1.0 200 OK\r\ncontent-length: 0\r\nConnection: keep-alive\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
      "HTTP/1.1 302 Found\r\nLocation: /log/checkpoint\r\nContent-Length: 0\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n",
  };
  for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) Put("fuzz_fetcher", "head-" + std::to_string(i), heads[i]);

  std::cout << "wrote " << g_written << " seeds under " << g_dir << "\n";
  return 0;
}
