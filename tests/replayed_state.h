// RequireReplayedState: the check shared by the replay tests that the state
// rebuilt from the log alone is the state the sequencer stored.
#ifndef LEDGER_TESTS_REPLAYED_STATE_H_
#define LEDGER_TESTS_REPLAYED_STATE_H_

#include <catch2/catch.hpp>

#include <map>

#include "ledger/ledger_hook.h"
#include "ledger/rules.h"
#include "ledger/store.h"

namespace ledger_test {

// RequireReplayedState requires |replayed| (a replay's state) to equal what
// |reader|'s store holds: every key but the request ids as stored state
// keys, and each request id (r/, not a state key in LMDB: SPEC.md §10)
// through ReaderStateStore, which finds it from its access entry. Returns
// the number of request ids.
inline size_t RequireReplayedState(const ledger::LogReader& reader, const ledger::MemoryStateStore& replayed) {
  std::map<ledger::Bytes, ledger::Bytes> stored, others;
  REQUIRE(reader.ForEachState("", [&](ledger::ByteView k, ledger::ByteView v) { stored.emplace(k, v); }).ok());
  ledger::ReaderStateStore through(reader);
  size_t request_ids = 0;
  for (const auto& [k, v] : replayed.data()) {
    if (k.compare(0, 2, "r/") != 0) {
      others.emplace(k, v);
      continue;
    }
    INFO("request id key " << k);
    CHECK(stored.count(k) == 0);
    auto got = through.Get(k);
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    CHECK(**got == v);
    request_ids++;
  }
  CHECK(stored.size() == others.size());
  for (const auto& [k, v] : others) {
    INFO("key " << k);
    auto it = stored.find(k);
    REQUIRE(it != stored.end());
    CHECK(it->second == v);
  }
  REQUIRE(stored == others);
  return request_ids;
}

}  // namespace ledger_test

#endif  // LEDGER_TESTS_REPLAYED_STATE_H_
