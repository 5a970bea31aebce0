// Durable file helpers and key files: atomic writes (temp file, fsync,
// rename, fsync of the directory) and secret files that must be mode 0600.
//
// Thread-safety: functions are safe to call concurrently on different paths.
#ifndef LEDGER_FILES_H_
#define LEDGER_FILES_H_

#include <memory>
#include <string>

#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/vrf.h"
#include "ledger/status.h"

namespace ledger {

// WriteFileAtomic replaces |path| with |data| durably, creating it with
// |mode|. IOError on failure (the old file, if any, is left intact).
Status WriteFileAtomic(const std::string& path, const std::string& data, unsigned mode);

// ReadFile reads a whole file. NotFound if it does not exist, IOError
// otherwise.
StatusOr<std::string> ReadFile(const std::string& path);

// ReadSecretFile reads a key file, refusing (PermissionDenied) one that
// group or others may read or write. The caller wipes the result.
StatusOr<std::string> ReadSecretFile(const std::string& path);

// LoadOrCreateNoteKey loads the signed-note private key in |path|, or, if
// the file does not exist, generates a key named |name| and writes it with
// mode 0600. *created tells which happened. If |name| is non-empty and the
// existing key has another name, FailedPrecondition.
StatusOr<std::unique_ptr<NoteSigner>> LoadOrCreateNoteKey(const std::string& path, const std::string& name,
                                                          bool* created);

// Key files for holders and accessors: one JSON object, mode 0600,
//   {"type": "ed25519" | "ecvrf", "seed": "<base64url 32 bytes>",
//    "public_key": "<base64url 32 bytes>"}
// WriteKeyFile refuses to overwrite an existing file (AlreadyExists).
Status WriteKeyFile(const std::string& path, const std::string& type, ByteView seed, ByteView public_key);
// LoadSigningKeyFile loads an "ed25519" key file; LoadVrfKeyFile an "ecvrf"
// one. PermissionDenied if the file is readable by others, InvalidArgument
// if malformed or the public key does not match the seed.
StatusOr<std::unique_ptr<Ed25519Signer>> LoadSigningKeyFile(const std::string& path);
StatusOr<std::unique_ptr<VrfSecretKey>> LoadVrfKeyFile(const std::string& path);

}  // namespace ledger

#endif  // LEDGER_FILES_H_
