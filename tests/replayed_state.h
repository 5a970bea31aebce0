// RequireReplayedState: the check shared by the replay tests that the state
// rebuilt from the log alone is the state the sequencer stored.
#ifndef LEDGER_TESTS_REPLAYED_STATE_H_
#define LEDGER_TESTS_REPLAYED_STATE_H_

#include <catch2/catch.hpp>

#include <map>

#include "ledger/ledger_hook.h"
#include "ledger/rules.h"
#include "ledger/store.h"
#include "ledger/subject_tree.h"

namespace ledger_test {

// RequireReplayedState requires |replayed| (a replay's state) to equal what
// |reader|'s store holds: every key but the request ids as stored state
// keys, and each request id (r/, not a state key in LMDB: SPEC.md §10)
// through ReaderStateStore, which finds it from its access entry, and the
// subject tree's nodes (t/ keys of the replay) as |tree| persisted them
// (flushed by the caller; none in the stored state). Returns the number of
// request ids.
inline size_t RequireReplayedState(const ledger::LogReader& reader, const ledger::MemoryStateStore& replayed,
                                   const ledger::SubjectTreeStore& tree) {
  std::map<ledger::Bytes, ledger::Bytes> stored, others, nodes, replayed_nodes;
  REQUIRE(tree.ForEachPersisted([&](ledger::ByteView k, ledger::ByteView v) { nodes.emplace(k, v); }).ok());
  REQUIRE(reader.ForEachState("", [&](ledger::ByteView k, ledger::ByteView v) { stored.emplace(k, v); }).ok());
  ledger::ReaderStateStore through(reader);
  size_t request_ids = 0;
  for (const auto& [k, v] : replayed.data()) {
    if (k.compare(0, 2, "t/") == 0) {
      replayed_nodes.emplace(k, v);
      continue;
    }
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
  CHECK(nodes.size() == replayed_nodes.size());
  REQUIRE(nodes == replayed_nodes);
  return request_ids;
}

}  // namespace ledger_test

#endif  // LEDGER_TESTS_REPLAYED_STATE_H_
