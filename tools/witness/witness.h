// ledger-witness core: a C2SP tlog-witness that cosigns checkpoints of the
// logs it is configured for (C2SP tlog-cosignature v1, Ed25519), keeping
// the latest cosigned checkpoint of each log in a state directory. No HTTP
// here: main.cc maps requests onto Witness and Witness's answers onto
// responses. See README.md in this folder for the protocol and guarantees.
//
// Thread-safety: Witness is safe to call from many threads. Each log has a
// mutex held from the old-size check to the durable write of the new state,
// so checking and persisting are atomic (tlog-witness's rollback race).
#ifndef LEDGER_TOOLS_WITNESS_WITNESS_H_
#define LEDGER_TOOLS_WITNESS_WITNESS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/cosignature.h"
#include "ledger/note.h"
#include "ledger/status.h"

namespace witness {

// At most this many consistency proof lines (tlog-witness).
constexpr size_t kMaxProofLines = 63;

struct LogConfig {
  std::string origin;
  std::vector<ledger::NoteVerifier> keys;  // any one valid signature suffices
};

struct Config {
  std::string name;      // the witness's key name
  std::string key_path;  // its private key file (absolute, or relative to the working directory)
  std::vector<LogConfig> logs;
};

// ParseConfig parses the JSON config
//   {"name": "<witness name>", "key": "<private key file>",
//    "logs": [{"origin": "<origin>", "key": "<log vkey>"} |
//             {"origin": "<origin>", "keys": ["<log vkey>", ...]}, ...]}
// A relative "key" path is taken relative to |base_dir| (the config file's
// directory). Unknown fields, duplicate origins, and invalid names or keys
// are InvalidArgument.
ledger::StatusOr<Config> ParseConfig(std::string_view json_text, const std::string& base_dir);
// LoadConfig reads and parses a config file.
ledger::StatusOr<Config> LoadConfig(const std::string& path);

// LoadOrCreateCosignatureKey loads the witness private key in |path|
// ("PRIVATE+KEY+<name>+<hash>+<base64(0x04||seed)>", one line), or, if the
// file does not exist, generates one named |name| and writes it with mode
// 0600. *created tells which happened. PermissionDenied if the existing
// file is readable or writable by group or others; FailedPrecondition if it
// holds a key with another name.
ledger::StatusOr<std::unique_ptr<ledger::CosignatureSigner>> LoadOrCreateCosignatureKey(const std::string& path,
                                                                                        const std::string& name,
                                                                                        bool* created);

// Response is an HTTP answer, independent of the HTTP library.
struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// StateFileName returns the file in the state directory holding |origin|'s
// latest cosigned checkpoint: lowercase hex SHA-256 of the origin, then
// ".checkpoint".
std::string StateFileName(std::string_view origin);

class Witness {
 public:
  using Clock = std::function<uint64_t()>;  // POSIX seconds

  // Open loads the state of every configured log from |state_dir| (which
  // must exist). Corruption if a state file is malformed, is for another
  // origin, or carries a cosignature by this witness's key that does not
  // verify: the witness refuses to start rather than forget what it signed.
  static ledger::StatusOr<std::unique_ptr<Witness>> Open(const Config& config,
                                                         std::unique_ptr<ledger::CosignatureSigner> signer,
                                                         const std::string& state_dir, Clock clock = nullptr);

  const ledger::CosignatureSigner& signer() const { return *signer_; }

  // AddCheckpoint handles a POST /add-checkpoint body (C2SP tlog-witness):
  // 200 with the cosignature line, 400 malformed, 403 no valid signature by
  // the log's keys (or a failing one), 404 unknown origin, 409 with
  // "<size>\n" as text/x.tlog.size when the old size is not the latest
  // cosigned size or an equal-size checkpoint has another root, 422 when the
  // consistency proof does not verify, 500 if the state cannot be saved.
  Response AddCheckpoint(std::string_view body);

  // LatestCheckpoint returns the latest cosigned checkpoint of |origin|:
  // the checkpoint text, the log's verified signatures and this witness's
  // cosignature, as a signed note. 404 for an unknown origin or one never
  // cosigned.
  Response LatestCheckpoint(std::string_view origin) const;

  // Logs returns a JSON array of {"origin", "size", "root", "time"} (root
  // base64, time of the latest cosignature; size 0 and no root/time for a
  // log never cosigned).
  Response Logs() const;

 private:
  struct LogState {
    std::string origin;
    std::vector<ledger::NoteVerifier> keys;
    std::string path;  // state file
    mutable std::mutex mu;
    // Guarded by mu:
    bool cosigned = false;   // a checkpoint was ever cosigned
    uint64_t size = 0;       // latest cosigned size (0 if never)
    ledger::Hash root{};     // its root (the empty tree's if never)
    uint64_t last_time = 0;  // timestamp of the latest cosignature
    std::string note;        // the stored cosigned note
  };

  Witness() = default;
  ledger::Status LoadState(LogState* st);

  std::unique_ptr<ledger::CosignatureSigner> signer_;
  std::map<std::string, std::unique_ptr<LogState>, std::less<>> logs_;  // by origin; immutable after Open
  Clock clock_;
};

}  // namespace witness

#endif  // LEDGER_TOOLS_WITNESS_WITNESS_H_
