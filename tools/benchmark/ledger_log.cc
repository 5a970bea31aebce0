#include "ledger_log.h"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <iterator>
#include <thread>

#include "bench.h"
#include "ledger/bytes.h"
#include "ledger/files.h"
#include "ledger/rules.h"
#include "ledger/vrf.h"

namespace bench {

LedgerModeLog::LedgerModeLog(const std::string& dir, uint64_t batch, uint64_t map_gib,
                             std::vector<ledger::PolicyPurpose> purposes)
    : dir_(dir), batch_(batch), now_text_(ledger::FormatTime(static_cast<int64_t>(time(nullptr)))) {
  if (sodium_init() < 0) Die("libsodium failed to initialise");
  std::string mk = "mkdir -p '" + dir + "'";
  if (std::system(mk.c_str()) != 0) Die("cannot create " + dir);
  bool created = false;
  auto signer = ledger::LoadOrCreateNoteKey(dir + "/log.key", "localhost/access-ledger", &created);
  if (!signer.ok()) Die(signer.status().ToString());
  signer_ = std::move(*signer);
  ledger::StoreOptions sopts;
  sopts.dir = dir + "/lmdb";
  sopts.map_size = map_gib << 30;
  auto store = ledger::Store::Open(sopts);
  if (!store.ok()) Die("cannot open the store: " + store.status().ToString());
  store_ = std::move(*store);
  if (store_->size() != 0) Die(sopts.dir + " already holds a log");

  ledger::RulesOptions ropts;
  ropts.log_public_key = ledger::Bytes(signer_->verifier().public_key());
  ropts.max_clock_skew = 864000;
  hook_ = std::make_unique<ledger::RulesHook>(ledger::LedgerRules(ropts),
                                              [] { return static_cast<int64_t>(time(nullptr)); });
  ledger::SubjectIndexerOptions iopts;
  iopts.interval = std::chrono::milliseconds(1);
  // The subject tree where ledgerd keeps it (DIR/subjects).
  ledger::SubjectTreeOptions topts;
  topts.dir = dir + "/subjects";
  topts.map_size = map_gib << 30;
  auto tree = ledger::SubjectTreeStore::Open(topts);
  if (!tree.ok()) Die("cannot open the subject tree: " + tree.status().ToString());
  tree_ = std::move(*tree);
  indexer_ = std::make_unique<ledger::SubjectIndexer>(signer_.get(), tree_.get(), iopts);
  if (auto s = indexer_->Recover(*store_); !s.ok()) Die(s.ToString());
  hook_->SetSubjectIndexer(indexer_.get());
  ledger::SequencerOptions qopts;
  qopts.max_batch_entries = batch;
  qopts.max_queued_entries = std::max<size_t>(batch * 4, 1 << 20);
  seq_ = std::make_unique<ledger::Sequencer>(store_.get(), signer_.get(), qopts, hook_.get());
  if (auto s = seq_->Start(); !s.ok()) Die(s.ToString());

  auto holder = ledger::Ed25519Signer::Generate();
  auto accessor = ledger::Ed25519Signer::Generate();
  auto vrf = ledger::VrfSecretKey::Generate();
  if (!holder.ok() || !accessor.ok() || !vrf.ok()) Die("key generation failed");
  holder_ = std::move(*holder);
  accessor_ = std::move(*accessor);
  auto append = [&](ledger::Bytes entry) {
    auto r = seq_->Append({std::move(entry)}, {});
    if (!r.ok()) Die("append: " + r.status().ToString());
  };
  ledger::HolderRecord h{"bench-bank", ledger::Bytes(holder_->public_key()), ledger::Bytes((*vrf)->public_key()),
                         now_text_};
  append(ledger::SignEnvelopeWith(ledger::kHolderPayloadType, ledger::EncodeHolder(h), signer_->verifier().public_key(),
                                  [&](ledger::ByteView m) { return signer_->Sign(m); }));
  ledger::AccessorRecord a{"bench-bank", "chat-banking", ledger::AccessorRecord::Action::kAuthorize,
                           {ledger::Bytes(accessor_->public_key())}, now_text_};
  append(ledger::SignEnvelope(ledger::kAccessorPayloadType, ledger::EncodeAccessor(a), *holder_));
  ledger::PolicyRecord p;
  p.holder = "bench-bank";
  p.accessor = "chat-banking";
  p.version = 1;
  p.purposes = std::move(purposes);
  p.time = now_text_;
  append(ledger::SignEnvelope(ledger::kPolicyPayloadType, ledger::EncodePolicy(p), *accessor_));
}

LedgerModeLog::~LedgerModeLog() {
  if (seq_) seq_->Stop();
}

double LedgerModeLog::AppendAccesses(uint64_t base, uint64_t n,
                                     const std::function<void(uint64_t, ledger::AccessRecord*)>& fill) {
  using Clock = std::chrono::steady_clock;
  std::vector<ledger::Bytes> entries(n);
  std::vector<std::shared_ptr<const void>> parsed(n);
  auto sign_start = Clock::now();
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; t++) {
    pool.emplace_back([&, t] {
      ledger::AccessRecord r;
      r.accessor = "chat-banking";
      r.holder = "bench-bank";
      r.consent = "bench-consent";
      r.time = now_text_;
      for (uint64_t k = t; k < n; k += threads) {
        fill(base + k, &r);
        entries[k] = ledger::SignEnvelope(ledger::kAccessPayloadType, ledger::EncodeAccess(r), *accessor_);
        // The hook takes the entry parsed: we signed it, so it need not
        // verify it again.
        auto pe = std::make_shared<ledger::ParsedEntry>();
        pe->kind = ledger::EntryKind::kAccess;
        auto env = ledger::ParseEnvelope(entries[k]);
        if (!env.ok()) Die("internal: " + env.status().ToString());
        pe->envelope = std::move(*env);
        pe->record = r;
        parsed[k] = std::move(pe);
      }
    });
  }
  for (auto& th : pool) th.join();
  double sign_secs = std::chrono::duration<double>(Clock::now() - sign_start).count();
  // A few submitters, so the sequencer's batches are full.
  std::atomic<uint64_t> next{0};
  std::vector<std::thread> submitters;
  for (int s = 0; s < 4; s++) {
    submitters.emplace_back([&] {
      for (;;) {
        uint64_t at = next.fetch_add(batch_);
        if (at >= n) return;
        uint64_t end = std::min(n, at + batch_);
        auto first = static_cast<std::ptrdiff_t>(at), last = static_cast<std::ptrdiff_t>(end);
        std::vector<ledger::Bytes> es(std::make_move_iterator(entries.begin() + first),
                                      std::make_move_iterator(entries.begin() + last));
        std::vector<std::shared_ptr<const void>> cs(parsed.begin() + first, parsed.begin() + last);
        auto r = seq_->Append(std::move(es), std::move(cs));
        if (!r.ok()) Die("append: " + r.status().ToString());
      }
    });
  }
  for (auto& th : submitters) th.join();
  return sign_secs;
}

void LedgerModeLog::Finish() {
  // The last accesses' commitment follows at the sequencer's next wake-up.
  for (int i = 0; i < 600 && indexer_->pending_accesses() > 0; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (indexer_->pending_accesses() > 0) Die("the last commitment did not come");
  seq_->Stop();
  if (auto s = tree_->Close(); !s.ok()) Die(s.ToString());
  std::string vkey = signer_->verifier().VerifierKeyString();
  if (auto s = ledger::WriteFileAtomic(dir_ + "/log.vkey", vkey + "\n", 0644); !s.ok()) Die(s.ToString());
}

}  // namespace bench
