// Fuzz target: the body of POST /v1/entries (SPEC.md §6) as ledgerd reads
// it: the hand-written fast path (server/json_body.h) against nlohmann/json,
// which ledgerd falls back to for every body the fast path does not take.
// Input: a request body, e.g. {"entries":["aGVsbG8="]}.
// Properties: a body the fast path accepts is valid JSON whose parse is an
// object with the single key "entries" holding exactly the same strings in
// the same order, so a request is never answered differently than through
// nlohmann/json alone; and the response writers (AppendJsonString,
// AppendHashArray) produce nlohmann/json's dump byte for byte.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.h"
#include "json_body.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using json = nlohmann::json;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> texts;
  bool fast = ledgerd::ParseSimpleEntriesBody(body, &texts);
  json parsed = json::parse(body.begin(), body.end(), nullptr, false);
  if (fast) {
    FUZZ_CHECK(!parsed.is_discarded(), "the fast path accepted invalid JSON");
    FUZZ_CHECK(parsed.is_object() && parsed.size() == 1 && parsed.contains("entries"),
               "the fast path accepted a body that is not {\"entries\": ...}");
    const json& arr = parsed["entries"];
    FUZZ_CHECK(arr.is_array() && arr.size() == texts.size(), "the fast path read a different array");
    for (size_t i = 0; i < texts.size(); i++)
      FUZZ_CHECK(arr[i].is_string() && arr[i].get_ref<const std::string&>() == texts[i],
                 "the fast path read a different string");
  }

  // The writers against nlohmann/json's dump, on the input as a string and
  // as hashes.
  std::string out;
  ledgerd::AppendJsonString(&out, body);
  FUZZ_CHECK(out == json(std::string(body)).dump(-1, ' ', false, json::error_handler_t::replace),
             "AppendJsonString differs from nlohmann/json");
  std::vector<ledger::Hash> hashes(size / 32);
  json arr = json::array();
  for (size_t i = 0; i < hashes.size(); i++) {
    std::memcpy(hashes[i].data(), data + 32 * i, 32);
    arr.push_back(ledger::Base64Encode(ledger::HashView(hashes[i])));
  }
  out.clear();
  ledgerd::AppendHashArray(&out, hashes);
  FUZZ_CHECK(out == arr.dump(), "AppendHashArray differs from nlohmann/json");
  out.clear();
  ledgerd::AppendBase64(&out, body);
  FUZZ_CHECK(out == ledger::Base64Encode(body), "AppendBase64 differs from Base64Encode");
  return 0;
}
