// ledgerd's fast paths (server/json_body.h, server/node_cache.h): the
// POST /v1/entries body subset and the JSON writers against nlohmann/json,
// and the shared node cache against an uncached reader, including from
// many threads at once. (fuzz/fuzz_entries_body.cc explores the parser and
// writers further.) Runs in well under a second.
#include <atomic>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "json_body.h"
#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "node_cache.h"
#include "test_util.h"

namespace {

using json = nlohmann::json;
using ledgerd::ParseSimpleEntriesBody;

std::string Dump(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

// RandomTree is a MemoryReader over |n| random leaf hashes.
ledger_test::MemoryReader RandomTree(uint64_t n) {
  std::mt19937_64 rng(7);
  std::vector<ledger::Hash> leaves;
  for (uint64_t i = 0; i < n; i++) leaves.push_back(ledger::HashLeaf(std::to_string(rng())));
  return ledger_test::MemoryReader(leaves);
}

}  // namespace

TEST_CASE("fast entries body: accepted bodies read as nlohmann/json reads them") {
  for (const std::string& body : std::vector<std::string>{R"({"entries":["aGVsbG8=","d29ybGQ="]})", " {\n\t\"entries\" : [ \"aGVsbG8=\" ,\"\" ]\r} ",
                           R"({"entries":[]})", R"({"entries":["a b~!#$%&'()*+,-./:;<=>?@[]^_`{|}"]})"}) {
    std::vector<std::string_view> texts;
    INFO(body);
    REQUIRE(ParseSimpleEntriesBody(body, &texts));
    json parsed = json::parse(body);
    REQUIRE(parsed.size() == 1);
    REQUIRE(parsed["entries"].size() == texts.size());
    for (size_t i = 0; i < texts.size(); i++) CHECK(parsed["entries"][i].get<std::string>() == texts[i]);
  }
}

TEST_CASE("fast entries body: every other form is left to nlohmann/json") {
  // Each is either invalid JSON or JSON of another shape (the general path
  // gives the reason), or valid but with escapes or non-ASCII.
  for (const std::string& body : std::vector<std::string>{
           "", "{}", "[]", R"({"entries":"aGVsbG8="})", R"({"entries":["aGVsbG8=",1]})", R"({"entries":[null]})",
           R"({"entries":["aGVsbG8="],"extra":1})", R"({"extra":1,"entries":["aGVsbG8="]})",
           R"({"entries":["aGVsbG8="],"entries":["d29ybGQ="]})", R"({"entries":["aGVs\u0062G8="]})",
           R"({"entries":["aGVs\"G8="]})", "{\"entries\":[\"h\xc3\xa9\"]}", "{\"entries\":[\"a\x01\"]}",
           "\xef\xbb\xbf{\"entries\":[\"aGVsbG8=\"]}", R"({"entries":["aGVsbG8="]} x)", R"({"entries":["aGVsbG8="])",
           R"({"entries":["aGVsbG8=",]})", R"({"entries":[,"aGVsbG8="]})", R"({"entries":["aGVsbG8=" "x"]})",
           R"({"Entries":["aGVsbG8="]})", R"({ "entries" : [ "a" ] } })", "{\"entries\":[\"a\"]}\f",
           R"({"entries":[["aGVsbG8="]]})", R"({"entries":["aGVsbG8="]})" + std::string(1, '\0')}) {
    std::vector<std::string_view> texts;
    INFO(body);
    CHECK_FALSE(ParseSimpleEntriesBody(body, &texts));
  }
}

TEST_CASE("JSON writers match nlohmann/json's dump byte for byte") {
  std::string cp = "localhost/access-ledger\n2\nJCMzOarc7fKH0mJBPwPAKOuNs5ft0yooeAkRUbmb8g8=\n\n\xe2\x80\x94 localhost/x AbC=\n";
  for (const std::string& s : std::vector<std::string>{std::string(), std::string("plain"), cp, std::string("q\"b\\s\b\f\t\r\x01\x1f\x7f end"),
                        std::string("bad \xff utf8 \xc3"), std::string("\xed\xa0\x80 surrogate"),
                        std::string("\xf4\x90\x80\x80 too high"), std::string("\xc0\xaf overlong"),
                        std::string("ok \xf0\x9f\x94\x92 \xe2\x82\xac"), std::string("nul \0 inside", 13)}) {
    std::string out = "x";
    ledgerd::AppendJsonString(&out, s);
    CHECK(out == "x" + Dump(s));
  }
  std::mt19937_64 rng(1);
  for (size_t n = 0; n < 40; n++) {
    std::vector<ledger::Hash> hashes(n % 23);
    json arr = json::array();
    for (auto& h : hashes) {
      for (auto& b : h) b = static_cast<uint8_t>(rng());
      arr.push_back(ledger::Base64Encode(ledger::HashView(h)));
    }
    std::string out;
    ledgerd::AppendHashArray(&out, hashes);
    CHECK(out == arr.dump());
    std::string raw(n, '\0');
    for (auto& c : raw) c = static_cast<char>(rng());
    out.clear();
    ledgerd::AppendBase64(&out, raw);
    CHECK(out == ledger::Base64Encode(raw));
  }
}

TEST_CASE("node cache: proofs through it equal proofs without it, from many threads") {
  const ledger_test::MemoryReader tree = RandomTree(3000);
  // A tiny table (64 slots) so that nodes collide and replace each other.
  ledgerd::NodeCache cache(6, 2);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      ledgerd::CachedHashReader cached(tree, &cache);
      for (int i = 0; i < 400; i++) {
        uint64_t size = 1 + rng() % 3000, index = rng() % size, from = rng() % (size + 1);
        auto a = ledger::InclusionProof(index, size, tree), b = ledger::InclusionProof(index, size, cached);
        auto c = ledger::ConsistencyProof(from, size, tree), d = ledger::ConsistencyProof(from, size, cached);
        if (!a.ok() || !b.ok() || *a != *b || !c.ok() || !d.ok() || *c != *d) mismatches++;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(mismatches == 0);
}

TEST_CASE("node cache: repeated proofs read only the uncached levels") {
  const ledger_test::MemoryReader tree = RandomTree(1 << 12);
  ledgerd::NodeCache cache(16, 4);
  ledgerd::CachedHashReader cached(tree, &cache);
  REQUIRE(ledger::InclusionProof(5, 1 << 12, cached).ok());
  uint64_t first = tree.nodes_read;
  REQUIRE(ledger::InclusionProof(5, 1 << 12, cached).ok());
  // 12 proof nodes at levels 0..11: levels 4..11 now come from the cache.
  CHECK(first == 12);
  CHECK(tree.nodes_read - first == 4);
  ledger::Hash h;
  CHECK_FALSE(cache.Get({3, 0}, &h));  // below min_level: never cached
  CHECK(cache.Get({11, 1}, &h));
  // An error from the reader is passed on and nothing is cached.
  std::vector<ledger::Hash> out;
  CHECK(cached.ReadHashes({{20, 0}}, &out).code() == ledger::Status::Code::kNotFound);
  CHECK_FALSE(cache.Get({20, 0}, &h));
}
