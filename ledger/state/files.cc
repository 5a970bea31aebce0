#include "ledger/files.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <cstring>

namespace ledger {
namespace {

Status Errno(const std::string& what) { return Status::IOError(what + ": " + std::strerror(errno)); }

std::string DirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Status WriteFileAtomic(const std::string& path, const std::string& data, unsigned mode) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Errno("creating " + tmp);
  // open() applies the umask; make the mode exact.
  if (fchmod(fd, mode) != 0) {
    close(fd);
    unlink(tmp.c_str());
    return Errno("chmod " + tmp);
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = Errno("writing " + tmp);
      close(fd);
      unlink(tmp.c_str());
      return s;
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    Status s = Errno("fsync " + tmp);
    close(fd);
    unlink(tmp.c_str());
    return s;
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Errno("renaming " + tmp);
    unlink(tmp.c_str());
    return s;
  }
  int dfd = open(DirName(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return Status::OK();
}

StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Errno("opening " + path);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Errno("reading " + path);
      close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

StatusOr<std::string> ReadSecretFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Errno("stat " + path);
  }
  if (st.st_mode & 077) {
    char mode[8];
    snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return Status::PermissionDenied("key file " + path + " has mode " + mode +
                                    " (readable or writable by others); run: chmod 600 " + path);
  }
  return ReadFile(path);
}

StatusOr<std::unique_ptr<NoteSigner>> LoadOrCreateNoteKey(const std::string& path, const std::string& name,
                                                          bool* created) {
  auto text = ReadSecretFile(path);
  if (text.ok()) {
    std::string s = std::move(*text);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    auto signer = NoteSigner::ParsePrivateKey(s);
    sodium_memzero(s.data(), s.size());
    if (!signer.ok()) return Status::InvalidArgument("key file " + path + " is not a valid private key: " + signer.status().message());
    if (!name.empty() && (*signer)->name() != name)
      return Status::FailedPrecondition("key file " + path + " is for \"" + (*signer)->name() + "\", not \"" + name + "\"");
    *created = false;
    return std::move(*signer);
  }
  if (!text.status().IsNotFound()) return text.status();
  if (name.empty()) return Status::InvalidArgument("no key name given to create " + path);
  LEDGER_ASSIGN_OR_RETURN(auto signer, NoteSigner::Generate(name));
  std::string skey = signer->PrivateKeyString();
  skey.push_back('\n');
  Status s = WriteFileAtomic(path, skey, 0600);
  sodium_memzero(skey.data(), skey.size());
  LEDGER_RETURN_IF_ERROR(s);
  *created = true;
  return signer;
}

Status WriteKeyFile(const std::string& path, const std::string& type, ByteView seed, ByteView public_key) {
  if (access(path.c_str(), F_OK) == 0) return Status::AlreadyExists(path + " already exists; not overwriting a key");
  std::string text = "{\"type\":\"" + type + "\",\"seed\":\"" + Base64UrlEncode(seed) + "\",\"public_key\":\"" +
                     Base64UrlEncode(public_key) + "\"}\n";
  Status s = WriteFileAtomic(path, text, 0600);
  sodium_memzero(text.data(), text.size());
  return s;
}

namespace {

// ReadKeyFile returns the seed and public key of a key file of |type|.
Status ReadKeyFile(const std::string& path, const char* type, Bytes* seed, Bytes* public_key) {
  LEDGER_ASSIGN_OR_RETURN(std::string text, ReadSecretFile(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  sodium_memzero(text.data(), text.size());
  auto bad = [&](const std::string& why) { return Status::InvalidArgument("key file " + path + ": " + why); };
  if (!j.is_object() || !j.contains("type") || !j.contains("seed") || !j.contains("public_key") || !j["type"].is_string() ||
      !j["seed"].is_string() || !j["public_key"].is_string())
    return bad("not a key file (want {\"type\", \"seed\", \"public_key\"})");
  if (j["type"].get<std::string>() != type) return bad(std::string("is not an ") + type + " key");
  auto s = Base64UrlDecode(j["seed"].get_ref<const std::string&>());
  auto p = Base64UrlDecode(j["public_key"].get_ref<const std::string&>());
  std::string& seed_text = j["seed"].get_ref<std::string&>();
  sodium_memzero(seed_text.data(), seed_text.size());
  if (!s.ok() || s->size() != 32 || !p.ok() || p->size() != 32) return bad("seed and public_key must be base64url 32 bytes");
  *seed = std::move(*s);
  *public_key = std::move(*p);
  return Status::OK();
}

}  // namespace

StatusOr<std::unique_ptr<Ed25519Signer>> LoadSigningKeyFile(const std::string& path) {
  Bytes seed, pub;
  LEDGER_RETURN_IF_ERROR(ReadKeyFile(path, "ed25519", &seed, &pub));
  auto signer = Ed25519Signer::FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  if (!signer.ok()) return signer.status();
  if ((*signer)->public_key() != ByteView(pub))
    return Status::InvalidArgument("key file " + path + ": public_key does not match the seed");
  return std::move(*signer);
}

StatusOr<std::unique_ptr<VrfSecretKey>> LoadVrfKeyFile(const std::string& path) {
  Bytes seed, pub;
  LEDGER_RETURN_IF_ERROR(ReadKeyFile(path, "ecvrf", &seed, &pub));
  auto key = VrfSecretKey::FromSeed(seed);
  sodium_memzero(seed.data(), seed.size());
  if (!key.ok()) return key.status();
  if ((*key)->public_key() != ByteView(pub))
    return Status::InvalidArgument("key file " + path + ": public_key does not match the seed");
  return std::move(*key);
}

}  // namespace ledger
