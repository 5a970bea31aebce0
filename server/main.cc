// ledgerd: the Access Ledger log server. See README.md and SPEC.md.
#include <arpa/inet.h>
#include <httplib.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "api.h"
#include "cli/flags.h"
#include "ledger/ledger_hook.h"
#include "setup.h"
#include "ledger/files.h"
#include "ledger/sequencer.h"
#include "ledger/store.h"
#include "connection.h"
#include "metrics.h"
#include "rate_limit.h"
#include "tiles_export.h"
#include "witnessing.h"

namespace {

constexpr char kUsage[] = R"(Usage: ledgerd [options]

Runs the Access Ledger log: an append-only RFC 6962 Merkle tree on LMDB,
serving C2SP checkpoints and tiles and the /v1 API described in SPEC.md.

Options:
  --data DIR            data directory (LMDB and keys)         [./var/ledger]
  --listen HOST:PORT    address to listen on (port 0: any)      [127.0.0.1:8080]
  --origin NAME         log origin, used when the key is created [localhost/access-ledger]
  --port-file FILE      write the bound port to FILE once listening
  --threads N           HTTP worker threads                    [64]
  --batch-max N         max entries per durable commit         [4096]
  --batch-wait-us N     group-commit window in microseconds    [500]
  --max-body BYTES      max request body                       [67108864]
  --max-entries N       max entries per POST /v1/entries       [1000]
  --map-size GIB        LMDB map size in GiB, or in MiB with a suffix M
                        (e.g. 16M: small maps for tests)        [64]
  --entries MODE        ledger: entries are signed access-ledger envelopes
                        checked against the log's rules (SPEC.md §8-§10);
                        opaque: any bytes (a plain C2SP transparency log) [ledger]
  --holders FILE        holders file (SPEC.md §11): holder entries are
                        appended for new or changed holders on start
  --max-skew SECONDS    allowed distance of an access's time from the log's
                        clock                                   [300]
  --index-interval-ms MS  ledger mode: append a subject index commitment
                        (SPEC.md §14) once accesses are this old [1000]
  --index-max-accesses N  ledger mode: ... or once N accesses are not yet
                        committed (bounds a commitment's work)  [128]
  --witnesses FILE      witnesses and quorum (SPEC.md §13): cosign new
                        checkpoints; with quorum K > 0, /checkpoint and
                        receipts use checkpoints with K cosignatures
  --tiles-dir DIR       keep DIR a static C2SP tlog-tiles copy of the log
                        (checkpoint, tiles, entry bundles) for a web server
                        such as tools/nginx/ledger-tiles.conf to serve
  --read-timeout-ms MS  a request must arrive in full within MS of its first
                        byte (a new connection's: of its accept)  [10000]
  --write-timeout-ms MS a response must be sent within MS      [10000]
  --keep-alive-ms MS    close connections idle this long between requests
                        (10 ms while others wait for a thread)  [30000]
  --rate-limit R        POST /v1/entries: at most R (a decimal) access and
                        policy entries per second per accessor (429
                        beyond); 0: off                         [0]
  --rate-burst B        entries an idle accessor may send at once [max(1,R)]
  --tls-cert FILE       serve HTTPS with this PEM certificate chain ...
  --tls-key FILE        ... and this PEM private key (mode 0600)
  --demo                ledger mode with a demo holder, accessor, policy and
                        accesses (keys in DIR/demo); what tools/run starts
  --help                show this help

On first start ledgerd creates DIR/log.key (mode 0600) and writes the
verifier key to DIR/log.vkey. SIGTERM or SIGINT stop it cleanly.
)";

struct Flags {
  std::string data = "./var/ledger";
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string origin;
  std::string port_file;
  int threads = 64;
  size_t batch_max = 4096;
  long batch_wait_us = 500;
  size_t max_body = 64u << 20;
  size_t max_entries = 1000;
  uint64_t map_bytes = uint64_t{64} << 30;
  bool opaque = false;
  std::string holders;
  int64_t max_skew = 300;
  uint64_t index_interval_ms = 1000;
  uint64_t index_max_accesses = 128;
  bool demo = false;
  std::string witnesses;
  std::string tiles_dir;
  ledgerd::ConnectionOptions conn;
  ledgerd::RateLimitOptions rate;
};

[[noreturn]] void Die(const std::string& msg, int code = 1) { ledger_cli::Die("ledgerd", msg, code); }

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  ledger_cli::FlagReader flags("ledgerd", kUsage, argc, argv, {"--demo"});
  std::string a, value;
  while (flags.Next(&a, &value)) {
    if (a == "--demo") {
      f.demo = true;
      f.opaque = false;
    } else if (a == "--data") f.data = value;
    else if (a == "--listen") flags.ParseListen(value, &f.host, &f.port);
    else if (a == "--origin") f.origin = value;
    else if (a == "--port-file") f.port_file = value;
    else if (a == "--threads") f.threads = static_cast<int>(flags.ParseNumber(a, value, 1, 1024));
    else if (a == "--batch-max") f.batch_max = flags.ParseNumber(a, value, 1, 1 << 20);
    else if (a == "--batch-wait-us") f.batch_wait_us = static_cast<long>(flags.ParseNumber(a, value, 0, 1000000));
    else if (a == "--max-body") f.max_body = flags.ParseNumber(a, value, 1024, uint64_t{1} << 32);
    else if (a == "--max-entries") f.max_entries = flags.ParseNumber(a, value, 1, 100000);
    else if (a == "--map-size") {
      bool mib = !value.empty() && value.back() == 'M';
      if (mib) value.pop_back();
      f.map_bytes = flags.ParseNumber(a, value, 1, mib ? 1 << 30 : 1 << 20) << (mib ? 20 : 30);
    }
    else if (a == "--entries") {
      if (value != "ledger" && value != "opaque") Die("--entries must be \"ledger\" or \"opaque\"", 2);
      f.opaque = value == "opaque";
    } else if (a == "--holders") f.holders = value;
    else if (a == "--witnesses") f.witnesses = value;
    else if (a == "--tiles-dir") f.tiles_dir = value;
    else if (a == "--index-interval-ms") f.index_interval_ms = flags.ParseNumber(a, value, 1, 3600000);
    else if (a == "--index-max-accesses") f.index_max_accesses = flags.ParseNumber(a, value, 1, 65536);
    else if (a == "--max-skew") f.max_skew = static_cast<int64_t>(flags.ParseNumber(a, value, 0, 86400 * 365));
    else if (a == "--read-timeout-ms") f.conn.read_timeout = std::chrono::milliseconds(flags.ParseNumber(a, value, 1, 3600000));
    else if (a == "--write-timeout-ms") f.conn.write_timeout = std::chrono::milliseconds(flags.ParseNumber(a, value, 1, 3600000));
    else if (a == "--keep-alive-ms") f.conn.keep_alive_timeout = std::chrono::milliseconds(flags.ParseNumber(a, value, 0, 3600000));
    else if (a == "--rate-limit") {
      // A decimal: 0.5 is one entry every two seconds.
      char* end = nullptr;
      double r = std::strtod(value.c_str(), &end);
      if (value.empty() || !std::isdigit(static_cast<unsigned char>(value[0])) || *end != '\0' || !(r >= 0 && r <= 1e9))
        Die("--rate-limit must be a decimal number of entries per second from 0 to 1e9, got \"" + value + "\"", 2);
      f.rate.rate = r;
    }
    else if (a == "--rate-burst") f.rate.burst = static_cast<double>(flags.ParseNumber(a, value, 1, 1000000000));
    else if (a == "--tls-cert") f.conn.tls_cert = value;
    else if (a == "--tls-key") f.conn.tls_key = value;
    else flags.Unknown(a);
  }
  if (f.demo && f.opaque) Die("--demo needs --entries ledger", 2);
  if (f.conn.tls_cert.empty() != f.conn.tls_key.empty()) Die("--tls-cert and --tls-key go together", 2);
  if (!f.holders.empty() && f.opaque) Die("--holders needs --entries ledger", 2);
  return f;
}

// RaiseListenBacklog re-listens on the bound socket with a deep queue:
// Debian's cpp-httplib compiles its backlog as 5, which drops connections
// under load. listen() on a listening socket only updates the backlog.
void RaiseListenBacklog(int port) {
  for (int fd = 0; fd < 4096; fd++) {
    int accepting = 0;
    socklen_t len = sizeof accepting;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    int p = addr.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
          : addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port) : -1;
    if (p == port) listen(fd, 4096);
  }
}

// TuneMalloc bounds what glibc malloc keeps (RELIABILITY.md "Load and
// soak"). By default it gives up to 8 x cores arenas to the worker threads,
// each keeping its own freed memory, and raises its mmap and trim
// thresholds to the largest block ever freed (up to 32 MiB), so freed
// large buffers stay in the heap. Fixed thresholds return blocks of 256 KiB
// and more to the system when freed; 4 arenas serve 64 workers (small
// blocks come from per-thread caches first).
void TuneMalloc() {
  mallopt(M_ARENA_MAX, 4);
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
}

// Trimmer returns the free pages inside malloc's heaps (not only at their
// top) to the system every 10 s, so RSS follows live memory: for example
// the leaf index's 2^18 pending leaves, freed at each merge (SPEC.md §7).
class Trimmer {
 public:
  Trimmer() : thread_([this] { Run(); }) {}
  ~Trimmer() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> l(mu_);
    while (!cv_.wait_for(l, std::chrono::seconds(10), [this] { return stop_; })) malloc_trim(0);
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  TuneMalloc();
  Flags flags = ParseFlags(argc, argv);
  // The HTTP server first: a bad TLS certificate or key stops ledgerd
  // before anything is opened or written.
  flags.conn.threads = static_cast<size_t>(flags.threads);
  flags.conn.max_request_bytes = flags.max_body + (64u << 10);
  auto made_server = ledgerd::MakeServer(flags.conn);
  if (!made_server.ok()) Die("refusing to start: " + made_server.status().message());
  const std::string scheme = flags.conn.tls_cert.empty() ? "http" : "https";

  // Signals are taken by a dedicated thread (sigwait), so block them in
  // every thread before any is created.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (mkdir(flags.data.c_str(), 0700) != 0 && errno != EEXIST) {
    // Create parents as tools/run's default ./var/ledger needs.
    std::string partial;
    for (size_t i = 0; i <= flags.data.size(); i++) {
      if (i == flags.data.size() || flags.data[i] == '/') {
        if (!partial.empty()) mkdir(partial.c_str(), 0700);
      }
      if (i < flags.data.size()) partial.push_back(flags.data[i]);
    }
  }
  bool created = false;
  std::string key_path = flags.data + "/log.key";
  // Without --origin, an existing key keeps its name and a new one gets the default.
  std::string origin = flags.origin;
  if (origin.empty() && access(key_path.c_str(), F_OK) != 0) origin = "localhost/access-ledger";
  auto signer = ledger::LoadOrCreateNoteKey(key_path, origin, &created);
  if (!signer.ok()) Die(signer.status().message());
  std::string vkey = (*signer)->verifier().VerifierKeyString();
  if (auto s = ledger::WriteFileAtomic(flags.data + "/log.vkey", vkey + "\n", 0644); !s.ok()) Die(s.message());

  ledger::StoreOptions store_options;
  store_options.dir = flags.data + "/lmdb";
  store_options.map_size = flags.map_bytes;
  auto store = ledger::Store::Open(store_options);
  if (!store.ok()) Die("cannot open the store: " + store.status().ToString());

  ledger::SequencerOptions seq_options;
  seq_options.max_batch_entries = flags.batch_max;
  seq_options.max_wait = std::chrono::microseconds(flags.batch_wait_us);
  // A failed write or fsync stops ledgerd cleanly (exit status 3): the
  // batch's submitters got 500, later appends 503, and a restart re-checks
  // the store before anything more is written (SequencerOptions).
  std::atomic<httplib::Server*> running_server{nullptr};
  std::atomic<bool> storage_failed{false};
  seq_options.on_storage_failure = [&](const ledger::Status& s) {
    std::cerr << "ledgerd: storage failure, stopping: " << s.ToString() << std::endl;
    storage_failed = true;
    if (httplib::Server* srv = running_server.load()) srv->stop();
  };
  std::unique_ptr<ledger::RulesHook> hook;
  std::unique_ptr<ledger::SubjectTreeStore> subject_tree;
  std::unique_ptr<ledger::SubjectIndexer> indexer;
  if (!flags.opaque) {
    // The subject index's tree (SPEC.md §7, §14), persisted in the
    // background; if that fails, ledgerd stops as for any storage failure
    // (a restart recomputes the unpersisted versions from the log).
    ledger::SubjectTreeOptions tree_options;
    tree_options.dir = flags.data + "/subjects";
    tree_options.map_size = flags.map_bytes;
    tree_options.on_failure = seq_options.on_storage_failure;
    auto opened = ledger::SubjectTreeStore::Open(tree_options);
    if (!opened.ok()) Die("cannot open the subject tree: " + opened.status().ToString());
    subject_tree = std::move(*opened);
    ledger::RulesOptions rules;
    rules.log_public_key = ledger::Bytes((*signer)->verifier().public_key());
    rules.max_clock_skew = flags.max_skew;
    // The log's clock never runs backwards (SPEC.md §10): if the wall clock
    // is stepped back, access times are checked against, and commitments
    // stamped with, the latest time already used until the wall clock
    // passes it again; a forward step is followed. Called on the sequencer
    // thread only.
    hook = std::make_unique<ledger::RulesHook>(ledger::LedgerRules(rules), [last = int64_t{0}]() mutable {
      last = std::max(last, static_cast<int64_t>(time(nullptr)));
      return last;
    });
    // The subject index (SPEC.md §14): accesses since the last commitment
    // are rebuilt from the log before anything is appended.
    ledger::SubjectIndexerOptions index_options;
    index_options.interval = std::chrono::milliseconds(flags.index_interval_ms);
    index_options.max_accesses = static_cast<size_t>(flags.index_max_accesses);
    indexer = std::make_unique<ledger::SubjectIndexer>(signer->get(), subject_tree.get(), index_options);
    const auto recover_started = std::chrono::steady_clock::now();
    if (auto s = indexer->Recover(**store); !s.ok()) Die("refusing to start: subject index: " + s.ToString());
    if (uint64_t moved = indexer->migrated_lists(); moved > 0) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - recover_started).count();
      std::cerr << "ledgerd: subject index: moved the access lists of " << moved
                << " subjects to the layout of 2026-12-02 (SPEC.md section 10) in " << seconds << " s" << std::endl;
    }
    if (uint64_t moved = indexer->moved_nodes(); moved > 0) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - recover_started).count();
      std::cerr << "ledgerd: subject index: moved " << moved << " tree nodes to " << tree_options.dir
                << " (storage format 5, SPEC.md section 7) in " << seconds << " s" << std::endl;
    }
    hook->SetSubjectIndexer(indexer.get());
  }
  ledger::Sequencer sequencer(store->get(), signer->get(), seq_options, hook.get());
  if (auto s = sequencer.Start(); !s.ok()) Die("refusing to start: " + s.ToString());
  std::string holders_file = flags.holders;
  if (flags.demo && holders_file.empty()) {
    auto demo = ledgerd::PrepareDemo(flags.data);
    if (!demo.ok()) Die("demo set-up failed: " + demo.status().ToString());
    holders_file = *demo;
  }
  if (!holders_file.empty()) {
    if (auto s = ledgerd::SyncHolders(holders_file, **store, sequencer, **signer); !s.ok())
      Die("holders: " + s.ToString());
  }

  std::unique_ptr<ledgerd::Witnessing> witnessing;
  if (!flags.witnesses.empty()) {
    auto config = ledgerd::LoadWitnessingConfig(flags.witnesses);
    if (!config.ok()) Die("--witnesses: " + config.status().message());
    auto w = ledgerd::Witnessing::Create(store->get(), (*signer)->verifier(), std::move(*config),
                                         flags.data + "/witnessed.checkpoint");
    if (!w.ok()) Die("--witnesses: " + w.status().message());
    witnessing = std::move(*w);
    if (auto s = witnessing->Start(); !s.ok()) Die("witnessing: " + s.ToString());
  }

  // The static tiles directory follows the log on its own thread.
  std::unique_ptr<ledgerd::TilesExporter> tiles;
  if (!flags.tiles_dir.empty()) {
    ledgerd::TilesExportOptions tiles_options;
    tiles_options.dir = flags.tiles_dir;
    auto t = ledgerd::TilesExporter::Create(store->get(), tiles_options);
    if (!t.ok()) Die(t.status().message());
    tiles = std::move(*t);
    tiles->Start();
  }

  ledgerd::Metrics metrics;
  ledgerd::ApiOptions api_options;
  api_options.max_body_bytes = flags.max_body;
  api_options.max_entries_per_request = flags.max_entries;
  api_options.opaque_entries = flags.opaque;
  api_options.subject_tree = subject_tree.get();
  api_options.witnessing = witnessing.get();
  api_options.verifier_key = vkey;
  ledgerd::RateLimiter rate_limiter(flags.rate);
  if (flags.rate.rate > 0) api_options.rate_limiter = &rate_limiter;
  ledgerd::Api api(store->get(), &sequencer, &metrics, api_options);

  // Threads, timeouts and TLS: connection.h (httplib's own read/write and
  // keep-alive timeouts below are not used by its connection loop).
  httplib::Server& server = **made_server;
  server.set_tcp_nodelay(true);  // Nagle + delayed ACK cost ~40 ms per request otherwise
  server.set_payload_max_length(flags.max_body);
  api.Register(server);

  int port = flags.port;
  if (port == 0) {
    port = server.bind_to_any_port(flags.host);
    if (port < 0) Die("cannot listen on " + flags.host);
  } else if (!server.bind_to_port(flags.host, port)) {
    Die("cannot listen on " + flags.host + ":" + std::to_string(port) + ": " + std::strerror(errno));
  }
  RaiseListenBacklog(port);

  std::cout << "ledgerd: log origin   " << (*signer)->name() << "\n"
            << "ledgerd: verifier key " << vkey << "\n"
            << "ledgerd: " << (created ? "created" : "loaded") << " key " << key_path << "; verifier key also in "
            << flags.data << "/log.vkey\n"
            << "ledgerd: entries      " << (flags.opaque ? "opaque bytes" : "signed access-ledger envelopes") << "\n"
            << "ledgerd: tree size    " << (*store)->size() << "\n"
            << (witnessing ? "ledgerd: witnesses    " + std::to_string(witnessing->witness_count()) + ", quorum " +
                                 std::to_string(witnessing->quorum()) + "\n"
                           : std::string())
            << "ledgerd: listening on " << scheme << "://" << flags.host << ":" << port << std::endl;
  if (!flags.port_file.empty()) {
    if (auto s = ledger::WriteFileAtomic(flags.port_file, std::to_string(port) + "\n", 0644); !s.ok()) Die(s.message());
  }

  if (flags.demo) {
    std::string base = scheme + "://" + flags.host + ":" + std::to_string(port);
    if (auto s = ledgerd::PopulateDemo(flags.data, **store, sequencer, base, vkey); !s.ok())
      Die("demo: " + s.ToString());
  }

  std::atomic<bool> listen_returned{false};
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::cout << "ledgerd: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ", shutting down" << std::endl;
    if (witnessing) witnessing->Stop();  // answers waiting receipts with 503
    // httplib's stop() does nothing until listen_after_bind() has started:
    // a signal right after start-up would otherwise be lost.
    while (!server.is_running() && !listen_returned) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    server.stop();
  });

  running_server = &server;
  Trimmer trimmer;
  bool ok = storage_failed ? false : server.listen_after_bind();
  listen_returned = true;
  // The server returns once stopped and its workers (and so every waiting
  // append) are done; then drain the sequencer and close LMDB.
  if (witnessing) witnessing->Stop();
  sequencer.Stop();
  if (tiles) tiles->Stop();  // exports the last commits
  if (subject_tree) {
    // Persists the tree's committed versions, so the next start has none
    // to recompute.
    if (auto s = subject_tree->Close(); !s.ok()) std::cerr << "ledgerd: subject tree: " << s.ToString() << std::endl;
  }
  if (!ok && server.is_running()) std::cerr << "ledgerd: server stopped unexpectedly\n";
  if (signal_thread.joinable()) {
    // If the server stopped on its own, wake the signal thread.
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
  }
  std::cout << "ledgerd: stopped at tree size " << (*store)->size() << std::endl;
  return storage_failed ? 3 : 0;
}
