// Fast paths for the JSON that ledgerd's hottest routes read and write
// (SPEC.md §6): the body of POST /v1/entries and the hash arrays of
// receipts and proofs. Measured reason (BENCHMARKS.md, figure a): parsing a
// 100-entry body and serialising 100 receipts through nlohmann/json DOM
// objects was ~30 % of ledgerd's CPU per batched append.
//
// ParseSimpleEntriesBody accepts only a strict subset of JSON whose meaning
// is unambiguous; anything else (escapes, non-ASCII, other keys, other
// types, a byte-order mark, …) is left to nlohmann/json, so every request
// the general parser refuses is refused with the same reason.
// fuzz/fuzz_entries_body.cc checks that subset against nlohmann/json.
//
// Thread-safety: pure functions.
#ifndef LEDGER_SERVER_JSON_BODY_H_
#define LEDGER_SERVER_JSON_BODY_H_

#include <string>
#include <string_view>
#include <vector>

#include "ledger/bytes.h"

namespace ledgerd {

// ParseSimpleEntriesBody returns true, with |entries| holding views into
// |body| of the array's strings in order, when |body| is exactly
//   ws { ws "entries" ws : ws [ ws ( string ws ( , ws string ws )* )? ] ws } ws
// (ws: JSON whitespace) and every string consists of printable ASCII
// characters other than '"' and '\\' (no escapes). Such a body is valid JSON
// whose nlohmann/json parse is an object with the single key "entries" whose
// value is the array of exactly these strings. Returns false (|entries|
// unspecified) for every other body.
bool ParseSimpleEntriesBody(std::string_view body, std::vector<std::string_view>* entries);

// AppendBase64 appends the standard base64 (with padding) of |data| to
// |out|; the same text as ledger::Base64Encode.
void AppendBase64(std::string* out, std::string_view data);

// AppendHashArray appends a JSON array of the base64 of |hashes|, without
// spaces, to |out|: byte for byte what nlohmann/json's dump() writes for an
// array of those strings.
void AppendHashArray(std::string* out, const std::vector<ledger::Hash>& hashes);

// AppendJsonString appends |s| as a JSON string exactly as nlohmann/json's
// dump() does in ledgerd (UTF-8 kept, invalid UTF-8 replaced by U+FFFD).
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace ledgerd

#endif  // LEDGER_SERVER_JSON_BODY_H_
