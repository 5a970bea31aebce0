#include "ledger/files.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace ledger
