// End-to-end tests of ledger-witness (C2SP tlog-witness): each test starts
// the binary (LEDGER_WITNESS_PATH) as a child process on 127.0.0.1 with an
// ephemeral port and talks HTTP to it. Checkpoints are built here with a
// NoteSigner log key over an in-memory tree.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/cosignature.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "test_util.h"

#ifndef LEDGER_WITNESS_PATH
#error "LEDGER_WITNESS_PATH must be defined to the ledger-witness binary's path"
#endif

using namespace ledger;

namespace {

// ------------------------------------------------------------ processes

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

void WriteText(const std::string& path, const std::string& text, mode_t mode = 0644) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  chmod(path.c_str(), mode);
}

using ledger_test::TempDir;

// WitnessProcess runs `ledger-witness --config C --state S --listen
// 127.0.0.1:0 --port-file S.port` with output appended to S.log.
class WitnessProcess {
 public:
  WitnessProcess(std::string config, std::string state)
      : config_(std::move(config)), state_(std::move(state)), port_file_(state_ + ".port"), log_file_(state_ + ".log") {}
  ~WitnessProcess() { Kill(); }

  // Start launches the witness and waits for its port file. Returns false
  // (with the exit status in exit_status()) if it exits during startup.
  bool Start() {
    signal(SIGPIPE, SIG_IGN);
    unlink(port_file_.c_str());
    std::vector<std::string> args = {LEDGER_WITNESS_PATH, "--config", config_, "--state", state_,
                                     "--listen", "127.0.0.1:0", "--port-file", port_file_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int log_fd = open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("cannot open log");
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      signal(SIGPIPE, SIG_DFL);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(log_fd);
    pid_ = pid;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (true) {
      std::string text = Trim(ReadWhole(port_file_));
      if (!text.empty()) {
        port_ = std::atoi(text.c_str());
        return true;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_status_ = status;
        return false;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        Kill();
        throw std::runtime_error("ledger-witness did not start; log:\n" + Log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  void MustStart() {
    if (!Start()) FAIL("ledger-witness exited during startup; log:\n" << Log());
  }

  // Stop sends SIGTERM and waits; returns the wait status.
  int Stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  int port() const { return port_; }
  int exit_status() const { return exit_status_; }
  std::string Log() const { return ReadWhole(log_file_); }
  std::string VerifierKey() const { return Trim(ReadWhole(state_ + "/witness.vkey")); }

  std::unique_ptr<httplib::Client> Client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);
    c->set_connection_timeout(5, 0);
    c->set_read_timeout(30, 0);
    return c;
  }

 private:
  std::string config_, state_, port_file_, log_file_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_status_ = 0;
};

// ------------------------------------------------------------ trees

// MemTree is an in-memory RFC 6962 tree; its HashReader computes any
// complete subtree's hash from the leaves.
class MemTree : public HashReader {
 public:
  explicit MemTree(std::string tag) : tag_(std::move(tag)) {}
  void Grow(uint64_t size) {
    while (leaves_.size() < size) leaves_.push_back(HashLeaf(tag_ + " entry " + std::to_string(leaves_.size())));
  }
  // Set replaces leaf |i| (to build a fork).
  void Set(uint64_t i, const std::string& data) { leaves_.at(i) = HashLeaf(data); }

  Status ReadHashes(const std::vector<NodeId>& ids, std::vector<Hash>* out) const override {
    out->resize(ids.size());
    for (size_t k = 0; k < ids.size(); k++) {
      uint64_t begin = ids[k].index << ids[k].level, end = (ids[k].index + 1) << ids[k].level;
      if (end > leaves_.size()) return Status::NotFound("node beyond the tree");
      (*out)[k] = Root(begin, end);
    }
    return Status::OK();
  }
  Hash RootAt(uint64_t size) const { return Root(0, size); }
  std::vector<Hash> Proof(uint64_t from, uint64_t to) const {
    auto p = ConsistencyProof(from, to, *this);
    REQUIRE(p.ok());
    return *p;
  }

 private:
  Hash Root(uint64_t begin, uint64_t end) const {
    uint64_t n = end - begin;
    if (n == 0) return EmptyTreeRoot();
    if (n == 1) return leaves_[begin];
    uint64_t k = 1;
    while (k * 2 < n) k *= 2;
    return HashChildren(Root(begin, begin + k), Root(begin + k, end));
  }
  std::string tag_;
  std::vector<Hash> leaves_;
};

const std::string kOrigin = "example.com/witness-test-log";
const std::string kDash = "\xE2\x80\x94";

std::string SignedCheckpoint(const NoteSigner& log, uint64_t size, const Hash& root,
                             const std::vector<std::string>& extensions = {}) {
  Checkpoint cp;
  cp.origin = log.name();
  cp.size = size;
  cp.root = root;
  cp.extensions = extensions;
  auto n = log.SignNote(cp.Format());
  REQUIRE(n.ok());
  return *n;
}

std::string Request(uint64_t old_size, const std::vector<Hash>& proof, const std::string& note) {
  std::string body = "old " + std::to_string(old_size) + "\n";
  for (const auto& h : proof) body += Base64Encode(HashView(h)) + "\n";
  body += "\n" + note;
  return body;
}

struct Reply {
  int status = 0;
  std::string body;
  std::string content_type;
};

Reply Post(httplib::Client& cli, const std::string& body) {
  auto res = cli.Post("/add-checkpoint", body, "text/plain");
  REQUIRE(res);
  return {res->status, res->body, res->get_header_value("Content-Type")};
}

Reply Get(httplib::Client& cli, const std::string& path) {
  auto res = cli.Get(path.c_str());
  REQUIRE(res);
  return {res->status, res->body, res->get_header_value("Content-Type")};
}

std::string Escape(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Setup writes a config for |logs| (origin -> vkeys) and a witness key.
struct Setup {
  TempDir tmp;
  std::string config, state, key_path;
  std::unique_ptr<CosignatureSigner> witness_key;  // null if the witness creates it

  explicit Setup(const std::vector<std::pair<std::string, std::vector<std::string>>>& logs, bool make_key = true) {
    config = tmp.path() + "/witness.json";
    state = tmp.path() + "/state";
    key_path = tmp.path() + "/witness.key";
    if (make_key) {
      auto k = CosignatureSigner::Generate("witness.example/w1");
      REQUIRE(k.ok());
      witness_key = std::move(*k);
      WriteText(key_path, witness_key->PrivateKeyString() + "\n", 0600);
    }
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& [origin, keys] : logs) {
      if (keys.size() == 1) arr.push_back({{"origin", origin}, {"key", keys[0]}});
      else arr.push_back({{"origin", origin}, {"keys", keys}});
    }
    // A relative key path: relative to the config file's directory.
    nlohmann::json j = {{"name", "witness.example/w1"}, {"key", "witness.key"}, {"logs", arr}};
    WriteText(config, j.dump(2));
  }
};

std::unique_ptr<NoteSigner> LogKey(const std::string& origin = kOrigin) {
  auto k = NoteSigner::Generate(origin);
  REQUIRE(k.ok());
  return std::move(*k);
}

// ExpectCosigned checks a 200 reply: one cosignature line by the witness
// over the note's checkpoint, valid as a witnessed checkpoint.
uint64_t ExpectCosigned(const Reply& r, const std::string& note, const NoteSigner& log,
                        const CosignatureVerifier& wv) {
  INFO("body: " << r.body);
  REQUIRE(r.status == 200);
  CHECK(r.content_type.rfind("text/plain", 0) == 0);
  REQUIRE(r.body.rfind(kDash + " witness.example/w1 ", 0) == 0);
  REQUIRE(r.body.back() == '\n');
  CHECK(std::count(r.body.begin(), r.body.end(), '\n') == 1);
  auto parsed = ParseNote(note);
  REQUIRE(parsed.ok());
  auto ts = wv.VerifyLine(r.body, parsed->text);
  REQUIRE(ts.ok());
  auto opened = OpenWitnessedCheckpoint(note + r.body, log.verifier(), {wv}, 1);
  REQUIRE(opened.ok());
  return *ts;
}

void ExpectConflict(const Reply& r, uint64_t size) {
  INFO("body: " << r.body);
  CHECK(r.status == 409);
  CHECK(r.body == std::to_string(size) + "\n");
  CHECK(r.content_type == "text/x.tlog.size");
}

}  // namespace

TEST_CASE("witness: add-checkpoint status paths") {
  auto log = LogKey();
  Setup s({{kOrigin, {log->verifier().VerifierKeyString()}}});
  WitnessProcess w(s.config, s.state);
  w.MustStart();
  REQUIRE(w.VerifierKey() == s.witness_key->verifier().VerifierKeyString());
  CHECK(w.Log().find(w.VerifierKey()) != std::string::npos);
  auto wv = s.witness_key->verifier();
  auto cli = w.Client();
  MemTree tree("main");
  tree.Grow(20);

  // Nothing cosigned yet.
  CHECK(Get(*cli, "/checkpoint/" + Escape(kOrigin)).status == 404);

  const std::string note5 = SignedCheckpoint(*log, 5, tree.RootAt(5));

  SECTION("404 for an unknown origin") {
    auto other = LogKey("example.com/other-log");
    auto r = Post(*cli, Request(0, {}, SignedCheckpoint(*other, 5, tree.RootAt(5))));
    CHECK(r.status == 404);
  }

  SECTION("403 for bad log signatures") {
    // Signed by another key with the log's name: an unknown key, so no
    // valid signature by a trusted key.
    auto impostor = LogKey(kOrigin);
    CHECK(Post(*cli, Request(0, {}, SignedCheckpoint(*impostor, 5, tree.RootAt(5)))).status == 403);
    // The log's signature over another text.
    std::string tampered = note5;
    tampered.replace(tampered.find("\n5\n"), 3, "\n6\n");
    CHECK(Post(*cli, Request(0, {}, tampered)).status == 403);
    // A valid log signature plus a failing one by the same key.
    std::string bad_line = log->SignatureLine("other text\n");
    CHECK(Post(*cli, Request(0, {}, note5 + bad_line)).status == 403);
    // Nothing was cosigned.
    ExpectConflict(Post(*cli, Request(1, {}, note5)), 0);
  }

  SECTION("400 for malformed bodies") {
    std::string good = Request(0, {}, note5);
    const std::vector<std::string> bad = {
        "",
        "old 0",
        "old 0\n",
        "old 0\n" + note5,                     // no blank line: note lines taken as proof
        "old\n\n" + note5,
        "old \n\n" + note5,
        "old 00\n\n" + note5,
        "old 01\n\n" + note5,
        "old -1\n\n" + note5,
        "old +1\n\n" + note5,
        "old 18446744073709551616\n\n" + note5,
        "Old 0\n\n" + note5,
        "old  0\n\n" + note5,
        "old 0 \n\n" + note5,
        "new 0\n\n" + note5,
        "old 0\nnot-base64!\n\n" + note5,
        "old 0\n" + Base64Encode("short") + "\n\n" + note5,
        "old 0\n\n",                            // no checkpoint
        "old 0\n\ngarbage\n",                   // not a note
        "old 0\n\n" + note5.substr(0, note5.find("\n\n") + 2),  // no signatures
        "old 0\r\n\r\n" + note5,
    };
    for (const auto& b : bad) {
      INFO(b);
      CHECK(Post(*cli, b).status == 400);
    }
    // More than 63 proof lines.
    std::vector<Hash> many(64, tree.RootAt(1));
    CHECK(Post(*cli, Request(0, many, note5)).status == 400);
    // A log-signed note whose text is not a checkpoint.
    auto bad_text = log->SignNote(kOrigin + "\n05\n" + Base64Encode(HashView(tree.RootAt(5))) + "\n");
    REQUIRE(bad_text.ok());
    CHECK(Post(*cli, Request(0, {}, *bad_text)).status == 400);
    // Old size beyond the checkpoint size.
    CHECK(Post(*cli, Request(6, {}, note5)).status == 400);
    // The good request still works afterwards.
    ExpectCosigned(Post(*cli, good), note5, *log, wv);
  }

  SECTION("200, 409, 422 and equal sizes") {
    // 200: first checkpoint, old 0.
    auto r = Post(*cli, Request(0, {}, note5));
    uint64_t t1 = ExpectCosigned(r, note5, *log, wv);
    uint64_t now = static_cast<uint64_t>(time(nullptr));
    CHECK(t1 + 60 >= now);
    CHECK(t1 <= now + 60);

    // The monitor view.
    auto got = Get(*cli, "/checkpoint/" + Escape(kOrigin));
    REQUIRE(got.status == 200);
    CHECK(got.body == note5 + r.body);
    CHECK(OpenWitnessedCheckpoint(got.body, log->verifier(), {wv}, 1).ok());
    auto logs = nlohmann::json::parse(Get(*cli, "/logs").body);
    REQUIRE(logs.size() == 1);
    CHECK(logs[0]["origin"] == kOrigin);
    CHECK(logs[0]["size"] == 5);
    CHECK(logs[0]["root"] == Base64Encode(HashView(tree.RootAt(5))));

    const std::string note9 = SignedCheckpoint(*log, 9, tree.RootAt(9));
    // 409: wrong old sizes, with the latest size as the body.
    ExpectConflict(Post(*cli, Request(0, {}, note9)), 5);
    ExpectConflict(Post(*cli, Request(3, tree.Proof(3, 9), note9)), 5);
    ExpectConflict(Post(*cli, Request(7, tree.Proof(7, 9), note9)), 5);

    // 422: bad proofs.
    CHECK(Post(*cli, Request(5, {}, note9)).status == 422);
    CHECK(Post(*cli, Request(5, tree.Proof(4, 9), note9)).status == 422);
    auto proof = tree.Proof(5, 9);
    REQUIRE(!proof.empty());
    auto flipped = proof;
    flipped[0][0] ^= 1;
    CHECK(Post(*cli, Request(5, flipped, note9)).status == 422);
    auto longer = proof;
    longer.push_back(tree.RootAt(1));
    CHECK(Post(*cli, Request(5, longer, note9)).status == 422);
    // A fork whose old tree differs from what was cosigned: its own proof
    // is internally consistent but not with the cosigned root.
    MemTree fork("main");
    fork.Grow(20);
    fork.Set(2, "forked entry");
    const std::string fork9 = SignedCheckpoint(*log, 9, fork.RootAt(9));
    CHECK(Post(*cli, Request(5, fork.Proof(5, 9), fork9)).status == 422);

    // 200: extension with a valid proof.
    uint64_t t2 = ExpectCosigned(Post(*cli, Request(5, proof, note9)), note9, *log, wv);
    CHECK(t2 >= t1);
    ExpectConflict(Post(*cli, Request(5, proof, note9)), 9);

    // Equal sizes: the same root is cosigned again (proof must be empty) ...
    ExpectCosigned(Post(*cli, Request(9, {}, note9)), note9, *log, wv);
    CHECK(Post(*cli, Request(9, {tree.RootAt(1)}, note9)).status == 422);
    // ... another root is a 409, and nothing changes.
    ExpectConflict(Post(*cli, Request(9, {}, fork9)), 9);
    CHECK(Get(*cli, "/checkpoint/" + Escape(kOrigin)).body.rfind(note9.substr(0, note9.find("\n\n")), 0) == 0);

    // A smaller tree after a larger one is never cosigned.
    CHECK(Post(*cli, Request(9, {}, note5)).status == 400);
    ExpectConflict(Post(*cli, Request(5, {}, note5)), 9);

    // Extra signatures (unknown keys, say other witnesses) are fine, and
    // extension lines are covered by the cosignature.
    const std::string note12 = SignedCheckpoint(*log, 12, tree.RootAt(12), {"ext line"});
    auto other_witness = CosignatureSigner::Generate("witness.example/w2");
    REQUIRE(other_witness.ok());
    auto parsed12 = ParseNote(note12);
    REQUIRE(parsed12.ok());
    auto w2line = (*other_witness)->CosignLine(parsed12->text, 1);
    REQUIRE(w2line.ok());
    std::string note12x = note12 + *w2line;
    auto r12 = Post(*cli, Request(9, tree.Proof(9, 12), note12x));
    ExpectCosigned(r12, note12x, *log, wv);
    CHECK(OpenWitnessedCheckpoint(note12x + r12.body, log->verifier(), {wv, (*other_witness)->verifier()}, 2).ok());
    // The stored checkpoint keeps the log's signature and the cosignature,
    // not other parties' lines.
    auto stored = Get(*cli, "/checkpoint/" + Escape(kOrigin));
    CHECK(stored.body == note12 + r12.body);

  }

  SECTION("other paths") {
    CHECK(Get(*cli, "/add-checkpoint").status == 405);
    CHECK(Get(*cli, "/checkpoint/" + Escape("example.com/unknown")).status == 404);
    CHECK(Get(*cli, "/checkpoint/%zz").status == 400);
    CHECK(Get(*cli, "/nothing").status == 404);
    // An unescaped origin with '/' works too (the path is decoded).
    ExpectCosigned(Post(*cli, Request(0, {}, note5)), note5, *log, wv);
    CHECK(Get(*cli, "/checkpoint/" + kOrigin).status == 200);
    // Too large a body.
    CHECK(Post(*cli, std::string(2 << 20, 'x')).status == 413);
  }
  cli.reset();  // an idle keep-alive connection would delay the shutdown
  CHECK(w.Stop() == 0);
}

TEST_CASE("witness: size 0 checkpoints") {
  auto log = LogKey();
  Setup s({{kOrigin, {log->verifier().VerifierKeyString()}}});
  WitnessProcess w(s.config, s.state);
  w.MustStart();
  auto cli = w.Client();
  auto wv = s.witness_key->verifier();
  // The empty tree with a bogus root is a conflict with the empty tree.
  ExpectConflict(Post(*cli, Request(0, {}, SignedCheckpoint(*log, 0, HashLeaf("x")))), 0);
  const std::string empty = SignedCheckpoint(*log, 0, EmptyTreeRoot());
  ExpectCosigned(Post(*cli, Request(0, {}, empty)), empty, *log, wv);
  MemTree tree("t");
  tree.Grow(3);
  // Old 0 needs an empty proof.
  const std::string note3 = SignedCheckpoint(*log, 3, tree.RootAt(3));
  CHECK(Post(*cli, Request(0, {tree.RootAt(1)}, note3)).status == 422);
  ExpectCosigned(Post(*cli, Request(0, {}, note3)), note3, *log, wv);
}

TEST_CASE("witness: state persists across restarts") {
  auto log = LogKey();
  Setup s({{kOrigin, {log->verifier().VerifierKeyString()}}}, /*make_key=*/false);
  MemTree tree("persist");
  tree.Grow(40);
  MemTree fork("persist");
  fork.Grow(40);
  fork.Set(7, "forked");
  const std::string note5 = SignedCheckpoint(*log, 5, tree.RootAt(5));
  const std::string note9 = SignedCheckpoint(*log, 9, tree.RootAt(9));
  const std::string fork9 = SignedCheckpoint(*log, 9, fork.RootAt(9));
  std::string vkey;
  uint64_t t9 = 0;
  {
    WitnessProcess w(s.config, s.state);
    w.MustStart();
    vkey = w.VerifierKey();
    // The key was created with mode 0600.
    struct stat st{};
    REQUIRE(stat(s.key_path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto wv = CosignatureVerifier::Parse(vkey);
    REQUIRE(wv.ok());
    CHECK(wv->name() == "witness.example/w1");
    auto cli = w.Client();
    ExpectCosigned(Post(*cli, Request(0, {}, note5)), note5, *log, *wv);
    t9 = ExpectCosigned(Post(*cli, Request(5, tree.Proof(5, 9), note9)), note9, *log, *wv);
    cli.reset();  // an idle keep-alive connection would delay the shutdown
    CHECK(w.Stop() == 0);
  }
  // The state file is the cosigned checkpoint.
  std::string state_file;
  for (const auto& e : std::filesystem::directory_iterator(s.state)) {
    if (e.path().extension() == ".checkpoint") state_file = e.path().string();
  }
  REQUIRE(!state_file.empty());
  CHECK(ReadWhole(state_file).rfind(note9.substr(0, note9.find("\n\n")), 0) == 0);

  SECTION("after a clean stop") {}
  SECTION("after kill -9") {
    // Cosign once more, then SIGKILL: the answered state must survive.
    WitnessProcess w(s.config, s.state);
    w.MustStart();
    auto wv = CosignatureVerifier::Parse(vkey);
    REQUIRE(wv.ok());
    auto cli = w.Client();
    t9 = ExpectCosigned(Post(*cli, Request(9, {}, note9)), note9, *log, *wv);
    w.Kill();
  }

  WitnessProcess w(s.config, s.state);
  w.MustStart();
  CHECK(w.VerifierKey() == vkey);  // the same key was loaded
  CHECK(w.Log().find("loaded key") != std::string::npos);
  auto wv = CosignatureVerifier::Parse(vkey);
  REQUIRE(wv.ok());
  auto cli = w.Client();
  // 409 reflects the persisted size.
  ExpectConflict(Post(*cli, Request(0, {}, note5)), 9);
  ExpectConflict(Post(*cli, Request(5, tree.Proof(5, 9), note9)), 9);
  // A fork of the same size with another root is refused.
  ExpectConflict(Post(*cli, Request(9, {}, fork9)), 9);
  // So is a fork that extends from it.
  const std::string fork12 = SignedCheckpoint(*log, 12, fork.RootAt(12));
  CHECK(Post(*cli, Request(9, fork.Proof(9, 12), fork12)).status == 422);
  // A smaller tree after a larger one is refused.
  CHECK(Post(*cli, Request(9, {}, note5)).status == 400);
  ExpectConflict(Post(*cli, Request(5, {}, note5)), 9);
  // The monitor view survived.
  auto got = Get(*cli, "/checkpoint/" + Escape(kOrigin));
  REQUIRE(got.status == 200);
  CHECK(OpenWitnessedCheckpoint(got.body, log->verifier(), {*wv}, 1).ok());
  // And the log can go on; cosignature times do not go backwards.
  const std::string note30 = SignedCheckpoint(*log, 30, tree.RootAt(30));
  uint64_t t30 = ExpectCosigned(Post(*cli, Request(9, tree.Proof(9, 30), note30)), note30, *log, *wv);
  CHECK(t30 >= t9);
  cli.reset();  // an idle keep-alive connection would delay the shutdown
  CHECK(w.Stop() == 0);
}

TEST_CASE("witness: concurrent submissions from one old size cosign exactly one") {
  auto log = LogKey();
  Setup s({{kOrigin, {log->verifier().VerifierKeyString()}}});
  WitnessProcess w(s.config, s.state);
  w.MustStart();
  auto wv = s.witness_key->verifier();
  MemTree tree("race");
  tree.Grow(64);
  {
    auto cli = w.Client();
    const std::string note4 = SignedCheckpoint(*log, 4, tree.RootAt(4));
    ExpectCosigned(Post(*cli, Request(0, {}, note4)), note4, *log, wv);
  }
  // Many requests from old size 4 to different new sizes: one wins, every
  // other gets 409 with the winner's size.
  constexpr int kThreads = 12;
  std::vector<int> status(kThreads);
  std::vector<std::string> bodies(kThreads);
  std::vector<std::string> reqs;
  for (int i = 0; i < kThreads; i++) {
    uint64_t size = 5 + static_cast<uint64_t>(i) * 4;
    reqs.push_back(Request(4, tree.Proof(4, size), SignedCheckpoint(*log, size, tree.RootAt(size))));
  }
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", w.port());
      while (!go) std::this_thread::yield();
      auto res = c.Post("/add-checkpoint", reqs[i], "text/plain");
      status[i] = res ? res->status : -1;
      bodies[i] = res ? res->body : "";
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  int winner = -1, wins = 0;
  for (int i = 0; i < kThreads; i++) {
    if (status[i] == 200) {
      wins++;
      winner = i;
    }
  }
  REQUIRE(wins == 1);
  const std::string want = std::to_string(5 + winner * 4) + "\n";
  for (int i = 0; i < kThreads; i++) {
    if (i == winner) continue;
    CHECK(status[i] == 409);
    CHECK(bodies[i] == want);
  }
  auto cli = w.Client();
  auto logs = nlohmann::json::parse(Get(*cli, "/logs").body);
  CHECK(logs[0]["size"] == 5 + winner * 4);
}

TEST_CASE("witness: several logs and several keys per log") {
  auto a = LogKey("example.com/log-a");
  auto b1 = LogKey("example.com/log-b");
  auto b2 = LogKey("example.com/log-b-new-key");
  Setup s({{"example.com/log-a", {a->verifier().VerifierKeyString()}},
           {"example.com/log-b", {b1->verifier().VerifierKeyString(), b2->verifier().VerifierKeyString()}}});
  WitnessProcess w(s.config, s.state);
  w.MustStart();
  auto cli = w.Client();
  auto wv = s.witness_key->verifier();
  MemTree ta("a"), tb("b");
  ta.Grow(10);
  tb.Grow(10);
  // Log b's checkpoints may be signed by either key (the key name need not
  // be the origin).
  auto sign = [](const NoteSigner& k, const std::string& origin, uint64_t size, const Hash& root) {
    Checkpoint cp;
    cp.origin = origin;
    cp.size = size;
    cp.root = root;
    auto n = k.SignNote(cp.Format());
    REQUIRE(n.ok());
    return *n;
  };
  const std::string a3 = SignedCheckpoint(*a, 3, ta.RootAt(3));
  ExpectCosigned(Post(*cli, Request(0, {}, a3)), a3, *a, wv);
  const std::string b3 = sign(*b1, "example.com/log-b", 3, tb.RootAt(3));
  CHECK(Post(*cli, Request(0, {}, b3)).status == 200);
  const std::string b6 = sign(*b2, "example.com/log-b", 6, tb.RootAt(6));
  auto r = Post(*cli, Request(3, tb.Proof(3, 6), b6));
  REQUIRE(r.status == 200);
  CHECK(wv.VerifyLine(r.body, ParseNote(b6)->text).ok());
  // Log a's key does not sign for log b.
  CHECK(Post(*cli, Request(6, tb.Proof(6, 9), sign(*a, "example.com/log-b", 9, tb.RootAt(9)))).status == 403);
  // The logs' states are independent.
  ExpectConflict(Post(*cli, Request(0, {}, SignedCheckpoint(*a, 5, ta.RootAt(5)))), 3);
  auto logs = nlohmann::json::parse(Get(*cli, "/logs").body);
  REQUIRE(logs.size() == 2);
}

TEST_CASE("witness: refuses to start on bad configuration or state") {
  auto log = LogKey();
  const std::string vk = log->verifier().VerifierKeyString();

  SECTION("malformed configs") {
    const std::vector<std::string> configs = {
        "",
        "[]",
        R"({"name": "w", "key": "k"})",
        R"({"name": "w", "logs": []})",
        R"({"name": "bad name", "key": "k", "logs": []})",
        R"({"name": "w", "key": "k", "logs": [], "extra": 1})",
        R"({"name": "w", "key": "k", "logs": [{"origin": "o", "key": "not a key"}]})",
        R"({"name": "w", "key": "k", "logs": [{"origin": "o"}]})",
        R"({"name": "w", "key": "k", "logs": [{"key": ")" + vk + R"("}]})",
        R"({"name": "w", "key": "k", "logs": [{"origin": "o", "key": ")" + vk + R"(", "x": 1}]})",
        R"({"name": "w", "key": "k", "logs": [{"origin": "o", "key": ")" + vk + R"("}, {"origin": "o", "key": ")" +
            vk + R"("}]})",
    };
    for (const auto& c : configs) {
      INFO(c);
      TempDir tmp;
      WriteText(tmp.path() + "/c.json", c);
      WitnessProcess w(tmp.path() + "/c.json", tmp.path() + "/state");
      CHECK_FALSE(w.Start());
      CHECK(w.Log().find("config") != std::string::npos);
    }
  }

  SECTION("a key file readable by others") {
    Setup s({{kOrigin, {vk}}});
    chmod(s.key_path.c_str(), 0644);
    WitnessProcess w(s.config, s.state);
    CHECK_FALSE(w.Start());
  }

  SECTION("a key file with another name") {
    Setup s({{kOrigin, {vk}}}, false);
    auto other = CosignatureSigner::Generate("witness.example/other");
    REQUIRE(other.ok());
    WriteText(s.key_path, (*other)->PrivateKeyString() + "\n", 0600);
    WitnessProcess w(s.config, s.state);
    CHECK_FALSE(w.Start());
  }

  SECTION("a second witness on the same state directory") {
    Setup s({{kOrigin, {vk}}});
    WitnessProcess w1(s.config, s.state);
    w1.MustStart();
    WitnessProcess w2(s.config, s.state);
    CHECK_FALSE(w2.Start());
    CHECK(w1.Stop() == 0);
  }

  SECTION("corrupt or foreign state files") {
    Setup s({{kOrigin, {vk}}});
    MemTree tree("c");
    tree.Grow(4);
    {
      WitnessProcess w(s.config, s.state);
      w.MustStart();
      auto cli = w.Client();
      const std::string note4 = SignedCheckpoint(*log, 4, tree.RootAt(4));
      REQUIRE(Post(*cli, Request(0, {}, note4)).status == 200);
      cli.reset();  // an idle keep-alive connection would delay the shutdown
      CHECK(w.Stop() == 0);
    }
    std::string state_file;
    for (const auto& e : std::filesystem::directory_iterator(s.state)) {
      if (e.path().extension() == ".checkpoint") state_file = e.path().string();
    }
    REQUIRE(!state_file.empty());
    std::string good = ReadWhole(state_file);
    // A truncated file.
    WriteText(state_file, good.substr(0, good.size() / 2));
    {
      WitnessProcess w(s.config, s.state);
      CHECK_FALSE(w.Start());
    }
    // A tampered cosignature (the stored size changed).
    std::string tampered = good;
    tampered.replace(tampered.find("\n4\n"), 3, "\n3\n");
    WriteText(state_file, tampered);
    {
      WitnessProcess w(s.config, s.state);
      CHECK_FALSE(w.Start());
    }
    // Restored, it starts again.
    WriteText(state_file, good);
    WitnessProcess w(s.config, s.state);
    w.MustStart();
    auto cli = w.Client();
    ExpectConflict(Post(*cli, Request(0, {}, SignedCheckpoint(*log, 4, tree.RootAt(4)))), 4);
  }
}
