#include "query.h"

#include <algorithm>
#include <set>

#include "ledger/bytes.h"

namespace ledgerd {

using ledger::Status;

Status CheckQueryParams(const std::string& target, const httplib::Params& params,
                        const std::vector<std::string_view>& allowed) {
  if (size_t q = target.find('?'); q != std::string::npos) {
    std::set<std::string> names;
    for (size_t pos = q + 1; pos <= target.size();) {
      size_t amp = std::min(target.find('&', pos), target.size());
      std::string pair = target.substr(pos, amp - pos);
      std::string name = httplib::detail::decode_url(pair.substr(0, pair.find('=')), true);
      // httplib skips empty '='-separated pieces, so "==to=1" reaches the
      // handler as to=1: a pair must start with its name.
      if (!pair.empty() && name.empty()) return Status::InvalidArgument("query parameter without a name");
      if (!pair.empty() && !names.insert(name).second)
        return Status::InvalidArgument("query parameter " + name + " given more than once");
      pos = amp + 1;
    }
  }
  for (const auto& [k, v] : params) {
    if (params.count(k) > 1) return Status::InvalidArgument("query parameter " + k + " given more than once");
    bool ok = false;
    for (std::string_view a : allowed) ok = ok || k == a;
    if (!ok) return Status::InvalidArgument("unknown query parameter " + k);
  }
  return Status::OK();
}

ledger::StatusOr<uint64_t> ParseQueryUint(const httplib::Params& params, const char* name,
                                          std::optional<uint64_t> fallback) {
  size_t count = params.count(name);
  if (count == 0) {
    if (fallback) return *fallback;
    return Status::InvalidArgument(std::string("missing query parameter ") + name);
  }
  if (count > 1) return Status::InvalidArgument(std::string("query parameter ") + name + " given more than once");
  auto v = ledger::ParseUint64(params.find(name)->second);
  if (!v.ok()) return Status::InvalidArgument(std::string("query parameter ") + name + ": " + v.status().message());
  return *v;
}

}  // namespace ledgerd
