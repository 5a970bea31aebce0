// ledger-bench subcommands for signed access records: the Ed25519
// verification baseline and bodies of signed accesses for a --demo log.
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <thread>

#include "bench.h"
#include "ledger/files.h"
#include "ledger/record.h"

namespace bench {
namespace {

constexpr char kVerifyBaselineUsage[] = R"(Usage: ledger-bench verify-baseline [--seconds S] [--threads T]

The bound of verified appends: a bare loop of libsodium Ed25519 signature
verifications of signed access records' PAEs (the same message shape and
size ledgerd verifies; 1024 distinct records and signatures, cycled, as a
log never holds the same signature twice), on T threads (default 1) for S
seconds (default 5).
Prints JSON: threads, verifications, seconds, per_s.
)";

constexpr char kGenAccessUsage[] = R"(Usage: ledger-bench gen-access-bodies --key FILE --holder H --accessor A
           --entries-per-request K --count M --out FILE [--purpose P] [--categories C1,C2]

Writes M POST /v1/entries bodies (one per line) of K signed access records
each, every record with a unique request id and random subject tag, signed
with the accessor key file (for a `ledgerd --demo` log: DIR/demo/accessor.key,
holder demo-bank, accessor chat-banking). Times are now: start ledgerd with
a large --max-skew when the bodies are used later.
)";

}  // namespace

int VerifyBaselineMain(int argc, char** argv) {
  Flags flags(argc, argv, 2, {"seconds", "threads"}, kVerifyBaselineUsage);
  double seconds = flags.real("seconds", 5);
  uint64_t threads = flags.num("threads", 1, 1, 64);
  if (sodium_init() < 0) Die("libsodium failed to initialise");
  auto signer = ledger::Ed25519Signer::Generate();
  if (!signer.ok()) Die(signer.status().ToString());
  ledger::AccessRecord r;
  r.accessor = "chat-banking";
  r.holder = "demo-bank";
  r.subject = ledger::Bytes(32, 'x');
  r.purpose = "CUSTOMER_SUPPORT";
  r.categories = {"BALANCES"};
  r.consent = "consent-0123456789";
  r.time = ledger::FormatTime(time(nullptr));
  // Distinct records and signatures, cycled: an audit or an append never
  // verifies the same signature twice, and one signature verified over and
  // over ran 3-4 % faster (the branch predictor learns its scalars).
  constexpr size_t kDistinct = 1024;
  std::vector<ledger::Bytes> paes, sigs;
  for (size_t i = 0; i < kDistinct; i++) {
    r.request_id = "request-" + std::to_string(i) + "-0123456789abcdef0123456789";
    paes.push_back(ledger::Pae(ledger::kAccessPayloadType, ledger::EncodeAccess(r)));
    sigs.push_back((*signer)->Sign(paes.back()));
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> total{0};
  std::vector<std::thread> pool;
  auto start = std::chrono::steady_clock::now();
  for (uint64_t t = 0; t < threads; t++) {
    pool.emplace_back([&, t] {
      uint64_t n = 0;
      size_t next = t * kDistinct / threads;
      const auto* pk = reinterpret_cast<const unsigned char*>((*signer)->public_key().data());
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 64; i++) {
          const ledger::Bytes& pae = paes[next];
          const ledger::Bytes& sig = sigs[next];
          next = (next + 1) % kDistinct;
          if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()),
                                          reinterpret_cast<const unsigned char*>(pae.data()), pae.size(), pk) != 0)
            Die("verification failed");
          n++;
        }
      }
      total += n;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : pool) t.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "{\"threads\":" << threads << ",\"verifications\":" << total.load() << ",\"seconds\":" << elapsed
            << ",\"per_s\":" << static_cast<uint64_t>(total.load() / elapsed) << "}\n";
  return 0;
}

int GenAccessBodiesMain(int argc, char** argv) {
  Flags flags(argc, argv, 2,
              {"key", "holder", "accessor", "entries-per-request", "count", "out", "purpose", "categories"},
              kGenAccessUsage);
  auto key = ledger::LoadSigningKeyFile(flags.required("key"));
  if (!key.ok()) Die(key.status().ToString());
  uint64_t k = flags.num("entries-per-request", 1, 1, 100000);
  uint64_t m = flags.num("count", 1000, 1, 100000000);
  std::string out_path = flags.required("out");
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  if (!out) Die("cannot write " + out_path);
  ledger::AccessRecord r;
  r.accessor = flags.required("accessor");
  r.holder = flags.required("holder");
  r.purpose = flags.str("purpose", "CUSTOMER_SUPPORT");
  std::string cats = flags.str("categories", "BALANCES");
  for (size_t pos = 0; pos <= cats.size();) {
    size_t comma = cats.find(',', pos);
    if (comma == std::string::npos) comma = cats.size();
    r.categories.insert(cats.substr(pos, comma - pos));
    pos = comma + 1;
  }
  r.consent = "bench-consent";
  r.time = ledger::FormatTime(time(nullptr));
  auto rng = std::mt19937_64(std::random_device{}());
  char rid[40];
  uint64_t run = rng();
  std::string line;
  for (uint64_t i = 0; i < m; i++) {
    line = "{\"entries\":[";
    for (uint64_t j = 0; j < k; j++) {
      snprintf(rid, sizeof rid, "%016llx-%llu", static_cast<unsigned long long>(run),
               static_cast<unsigned long long>(i * k + j));
      r.request_id = rid;
      r.subject.assign(32, '\0');
      FillRandom(rng, r.subject.data(), 32);
      ledger::Bytes entry = ledger::SignEnvelope(ledger::kAccessPayloadType, ledger::EncodeAccess(r), **key);
      if (j) line += ',';
      line += '"';
      line += ledger::Base64Encode(entry);
      line += '"';
    }
    line += "]}\n";
    out << line;
  }
  out.close();
  if (!out) Die("error writing " + out_path);
  return 0;
}

}  // namespace bench
