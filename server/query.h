// Query-string checks shared by ledgerd's endpoints (SPEC.md, "HTTP API"):
// no parameter twice, no unknown parameter, canonical decimal numbers. Kept
// apart from api.cc so that fuzz/fuzz_query.cc can drive them with the
// same cpp-httplib parsing a request goes through.
//
// Thread-safety: pure functions.
#ifndef LEDGER_SERVER_QUERY_H_
#define LEDGER_SERVER_QUERY_H_

#include <httplib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/status.h"

namespace ledgerd {

// CheckQueryParams returns OK if the raw request target |target| names no
// query parameter twice and has no pair without a name, and every name in
// |params| (cpp-httplib's parse of that query) is in |allowed| once; InvalidArgument naming the parameter
// otherwise. The raw query is read because cpp-httplib drops a repeated
// identical "name=value" pair while parsing.
ledger::Status CheckQueryParams(const std::string& target, const httplib::Params& params,
                                const std::vector<std::string_view>& allowed);

// ParseQueryUint reads the canonical decimal query parameter |name| from
// |params|: its value, or |fallback| when it is absent and a fallback is
// given. InvalidArgument if it is missing without a fallback, given more
// than once, or not a canonical decimal uint64.
ledger::StatusOr<uint64_t> ParseQueryUint(const httplib::Params& params, const char* name,
                                          std::optional<uint64_t> fallback = std::nullopt);

}  // namespace ledgerd

#endif  // LEDGER_SERVER_QUERY_H_
