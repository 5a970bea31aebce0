// Api: ledgerd's HTTP routes (SPEC.md, "HTTP API") over a Store and a
// Sequencer. The only place, with main.cc and witnessing.cc (the witness
// client), that sees cpp-httplib types.
//
// Thread-safety: handlers run concurrently on the server's worker threads;
// each request uses its own store snapshot.
#ifndef LEDGER_SERVER_API_H_
#define LEDGER_SERVER_API_H_

#include <httplib.h>

#include <cstdint>
#include <string>

#include "ledger/sequencer.h"
#include "ledger/store.h"
#include "ledger/subject_tree.h"
#include "metrics.h"
#include "node_cache.h"
#include "rate_limit.h"
#include "witnessing.h"

namespace ledgerd {

struct ApiOptions {
  size_t max_entries_per_request = 1000;
  size_t max_body_bytes = 64u << 20;
  // ledger: entries must be signed envelopes (SPEC.md §8) checked against the
  // log's rules. opaque: any bytes, a plain C2SP transparency log.
  bool opaque_entries = false;
  // With witnesses and a quorum K > 0 (SPEC.md §13), GET /checkpoint and the
  // receipts use the newest checkpoint with K cosignatures. Null: none.
  Witnessing* witnessing = nullptr;
  // The subject index's tree (ledger mode; SPEC.md §14), for GET
  // /v1/subjects. Null: that route answers 404.
  ledger::SubjectTreeStore* subject_tree = nullptr;
  // Per-accessor rate limits on POST /v1/entries (429). Null: none.
  RateLimiter* rate_limiter = nullptr;
  // The log's verifier key (SPEC.md §2), served by GET /v1/log for the
  // customer page.
  std::string verifier_key;
};

class Api {
 public:
  Api(ledger::Store* store, ledger::Sequencer* sequencer, Metrics* metrics, ApiOptions options)
      : store_(store), sequencer_(sequencer), metrics_(metrics), options_(options) {}

  // Register installs every route, the JSON error handler and the request
  // counter on |server|.
  void Register(httplib::Server& server);

 private:
  void GetCheckpoint(const httplib::Request& req, httplib::Response& res);
  void GetTile(const httplib::Request& req, httplib::Response& res);
  void PostEntries(const httplib::Request& req, httplib::Response& res);
  void GetEntry(const httplib::Request& req, httplib::Response& res);
  void GetInclusion(const httplib::Request& req, httplib::Response& res);
  void GetConsistency(const httplib::Request& req, httplib::Response& res);
  void GetByHash(const httplib::Request& req, httplib::Response& res);
  void GetTlogProof(const httplib::Request& req, httplib::Response& res);
  void GetHealth(const httplib::Request& req, httplib::Response& res);
  void GetMetrics(const httplib::Request& req, httplib::Response& res);

  ledger::Store* store_;
  ledger::Sequencer* sequencer_;
  Metrics* metrics_;
  ApiOptions options_;
  // Hashes of complete subtrees served by earlier proofs (node_cache.h).
  std::unique_ptr<NodeCache> nodes_ = std::make_unique<NodeCache>();
};

}  // namespace ledgerd

#endif  // LEDGER_SERVER_API_H_
