#include "ledger/subject_tree.h"

#include <lmdb.h>
#include <pthread.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>

#include "ledger/subject_state.h"
#include "lmdb_txn.h"

namespace ledger {
namespace {

constexpr uint64_t kLatest = std::numeric_limits<uint64_t>::max();
constexpr char kVersionKey[] = "version";

Status LmdbError(const std::string& what, int rc) {
  const std::string m = "subject tree: " + what + ": " + mdb_strerror(rc);
  if (rc == MDB_MAP_FULL) return Status::ResourceExhausted(m);
  return Status::IOError(m);
}

MDB_val Val(ByteView b) { return MDB_val{b.size(), const_cast<char*>(b.data())}; }

struct EnvCloser {
  void operator()(MDB_env* e) const { mdb_env_close(e); }
};

// A node version held in memory.
struct Entry {
  uint64_t version;
  std::optional<SubjectNode> node;  // nullopt: deleted at this version
};

// ReadVersion returns the persisted version in |txn| (nullopt: none).
StatusOr<std::optional<uint64_t>> ReadVersion(MDB_txn* txn, MDB_dbi meta) {
  MDB_val k = Val(kVersionKey), v;
  int rc = mdb_get(txn, meta, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<uint64_t>();
  if (rc != 0) return LmdbError("reading the version", rc);
  if (v.mv_size != 8) return Status::Corruption("subject tree: the persisted version is malformed");
  return std::optional<uint64_t>(LoadU64(static_cast<const char*>(v.mv_data)));
}

}  // namespace

struct SubjectTreeStore::Impl {
  SubjectTreeOptions options;
  std::unique_ptr<MDB_env, EnvCloser> env;
  MDB_dbi nodes = 0, meta = 0;

  // mu guards everything below; readers of the overlay take it shared.
  mutable std::shared_mutex mu;
  std::condition_variable_any changed;  // persister and waiting writers
  std::map<Bytes, std::vector<Entry>> overlay;  // versions ascending
  size_t count = 0;                             // entries in overlay
  uint64_t persisted = 0, committed = 0, published = 0;
  bool uncommitted = false;
  std::vector<Bytes> uncommitted_keys;
  std::optional<std::chrono::steady_clock::time_point> first_unpersisted;
  std::multiset<uint64_t> pin_bases, pin_versions;
  Status failure;
  uint64_t persists = 0;
  size_t count_max = 0;  // SubjectTreeStats
  size_t persist_writes_max = 0;
  uint64_t persist_micros_total = 0, persist_micros_max = 0;
  bool stop = false;
  bool unpinned = false;  // a view went while over max_nodes: drop again

  std::mutex persist_mu;  // one persist (or import) at a time
  std::thread thread;

  // MinVersion: no view reads a version below this (nor will one made
  // later: it reads at least the committed version).
  uint64_t MinVersion() const { return pin_versions.empty() ? committed : std::min(committed, *pin_versions.begin()); }

  // DropInvisible removes from |entries| each version that nothing needs
  // any more: those followed by another at or below both MinVersion (no
  // view reads them) and the persisted version (no later transaction of a
  // persist writes them: one that ends between the two versions would),
  // and with |horizon| (persisted and below every view's base), those at
  // or below it.
  void DropInvisible(std::vector<Entry>& entries, uint64_t horizon) {
    const uint64_t superseded_at = std::min(MinVersion(), persisted);
    size_t keep_from = 0;
    for (size_t i = 0; i + 1 < entries.size(); i++)
      if (entries[i + 1].version <= superseded_at) keep_from = i + 1;
    while (keep_from < entries.size() && entries[keep_from].version <= horizon) keep_from++;
    if (keep_from == 0) return;
    entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(keep_from));
    count -= keep_from;
  }

  Status Fail(const Status& s) {
    {
      std::unique_lock<std::shared_mutex> l(mu);
      if (failure.ok()) failure = s;
    }
    changed.notify_all();
    if (options.on_failure) options.on_failure(s);
    return s;
  }

  // Persist writes the versions committed when it starts, in transactions
  // of whole versions (Step), and drops from memory what no view needs.
  Status Persist();
  // Step writes, in one transaction, the versions after the persisted one
  // up to at most |target|: as many whole versions as fit in
  // options.max_persist_writes node writes (at least one version).
  Status Step(uint64_t target);
  Status Write(const std::vector<std::pair<Bytes, std::optional<SubjectNode>>>& writes, uint64_t version);
  void Run();
};

// --- views ------------------------------------------------------------------

// Pin is what a view holds: its read snapshot of the persisted nodes and
// its registrations, which keep the versions it may read in memory.
struct SubjectTreeView::Pin {
  SubjectTreeStore::Impl* impl = nullptr;
  Txn txn;
  uint64_t base = 0;        // the persisted version in txn
  uint64_t registered_base = 0;
  uint64_t registered_version = 0;
  uint64_t floor = 0;       // the committed version when made

  ~Pin() {
    txn.Reset();
    bool wake = false;
    {
      std::unique_lock<std::shared_mutex> l(impl->mu);
      impl->pin_bases.erase(impl->pin_bases.find(registered_base));
      impl->pin_versions.erase(impl->pin_versions.find(registered_version));
      // A writer waiting for memory may wait for this view's versions.
      if (impl->count > impl->options.max_nodes) wake = impl->unpinned = true;
    }
    if (wake) impl->changed.notify_all();
  }
};

SubjectTreeView::SubjectTreeView(std::unique_ptr<Pin> pin, uint64_t version)
    : pin_(std::move(pin)), version_(version) {}

SubjectTreeView::~SubjectTreeView() = default;

Status SubjectTreeView::SetVersion(uint64_t version) {
  if (version < pin_->base || version < pin_->floor)
    return Status::FailedPrecondition("subject tree: version " + std::to_string(version) +
                                      " is older than this view (open the log snapshot after the view)");
  std::unique_lock<std::shared_mutex> l(pin_->impl->mu);
  auto& versions = pin_->impl->pin_versions;
  versions.erase(versions.find(pin_->registered_version));
  versions.insert(version);
  pin_->registered_version = version;
  version_ = version;
  return Status::OK();
}

StatusOr<std::optional<SubjectNode>> SubjectTreeView::Read(const Bytes& key, uint64_t version) {
  SubjectTreeStore::Impl& im = *pin_->impl;
  {
    std::shared_lock<std::shared_mutex> l(im.mu);
    auto it = im.overlay.find(key);
    if (it != im.overlay.end()) {
      const std::vector<Entry>& entries = it->second;
      for (auto e = entries.rbegin(); e != entries.rend(); ++e) {
        if (e->version > version) continue;
        if (e->version > pin_->base) return e->node;
        break;  // nothing in (base, version]: the snapshot has it
      }
    }
  }
  MDB_val k = Val(key), v;
  int rc = mdb_get(pin_->txn.get(), im.nodes, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<SubjectNode>();
  if (rc != 0) return LmdbError("reading a node", rc);
  LEDGER_ASSIGN_OR_RETURN(SubjectNode n, DecodeSubjectNode(ByteView(static_cast<const char*>(v.mv_data), v.mv_size)));
  return std::optional<SubjectNode>(n);
}

StatusOr<std::optional<SubjectNode>> SubjectTreeView::GetNode(unsigned depth, const SubjectTag& prefix) {
  return Read(SubjectNodeKey(depth, prefix), version_);
}

Status SubjectTreeView::PutNode(unsigned, const SubjectTag&, const SubjectNode&) {
  return Status::FailedPrecondition("read-only subject tree view");
}

Status SubjectTreeView::DeleteNode(unsigned, const SubjectTag&) {
  return Status::FailedPrecondition("read-only subject tree view");
}

// --- updates ----------------------------------------------------------------

SubjectTreeUpdate::SubjectTreeUpdate(SubjectTreeStore* store, std::unique_ptr<SubjectTreeView> base, uint64_t version)
    : store_(store), base_(std::move(base)), version_(version) {}

SubjectTreeUpdate::~SubjectTreeUpdate() = default;

StatusOr<std::optional<SubjectNode>> SubjectTreeUpdate::GetNode(unsigned depth, const SubjectTag& prefix) {
  Bytes key = SubjectNodeKey(depth, prefix);
  auto it = writes_.find(key);
  if (it != writes_.end()) return it->second;
  return base_->Read(key, kLatest);
}

Status SubjectTreeUpdate::PutNode(unsigned depth, const SubjectTag& prefix, const SubjectNode& node) {
  if (published_) return Status::FailedPrecondition("subject tree update already published");
  writes_[SubjectNodeKey(depth, prefix)] = node;
  return Status::OK();
}

Status SubjectTreeUpdate::DeleteNode(unsigned depth, const SubjectTag& prefix) {
  if (published_) return Status::FailedPrecondition("subject tree update already published");
  writes_[SubjectNodeKey(depth, prefix)] = std::nullopt;
  return Status::OK();
}

Status SubjectTreeUpdate::Publish() {
  if (published_) return Status::FailedPrecondition("subject tree update already published");
  SubjectTreeStore::Impl& im = *store_->impl_;
  std::unique_lock<std::shared_mutex> l(im.mu);
  if (im.uncommitted || version_ <= im.committed)
    return Status::FailedPrecondition("subject tree: version " + std::to_string(version_) + " cannot be published now");
  im.uncommitted_keys.clear();
  im.uncommitted_keys.reserve(writes_.size());
  for (auto& [key, node] : writes_) {
    im.overlay[key].push_back(Entry{version_, std::move(node)});
    im.uncommitted_keys.push_back(key);
  }
  im.count += writes_.size();
  im.count_max = std::max(im.count_max, im.count);
  writes_.clear();
  im.published = version_;
  im.uncommitted = true;
  published_ = true;
  return Status::OK();
}

// --- the store --------------------------------------------------------------

SubjectTreeStore::SubjectTreeStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SubjectTreeStore::~SubjectTreeStore() {
  {
    std::unique_lock<std::shared_mutex> l(impl_->mu);
    impl_->stop = true;
  }
  impl_->changed.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

StatusOr<std::unique_ptr<SubjectTreeStore>> SubjectTreeStore::Open(SubjectTreeOptions options) {
  if (options.dir.empty()) return Status::InvalidArgument("subject tree: no directory");
  if (mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::IOError("subject tree: creating " + options.dir + ": " + std::strerror(errno));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return LmdbError("creating the environment", rc);
  impl->env.reset(env);
  if ((rc = mdb_env_set_mapsize(env, options.map_size)) != 0) return LmdbError("setting the map size", rc);
  if ((rc = mdb_env_set_maxdbs(env, 4)) != 0) return LmdbError("setting max dbs", rc);
  if ((rc = mdb_env_set_maxreaders(env, 4096)) != 0) return LmdbError("setting max readers", rc);
  // MDB_NOTLS: views on any thread. Not MDB_WRITEMAP, although LMDB then
  // keeps a heap buffer for every page of the largest persist: writing
  // back a shared writable map write-protects each page (a TLB shootdown
  // per page) and the next write to it faults, which cost the persister
  // about a quarter of this 2-core machine's CPU under the soak's load;
  // with pwrite it sustained more appends (RELIABILITY.md).
  // MDB_NOMETASYNC: one fsync per persisting transaction instead of two.
  // A crash may then lose the last one (LMDB keeps the environment
  // consistent), which the start recomputes from the log like any version
  // not yet persisted.
  unsigned flags = MDB_NOTLS | (options.durable ? MDB_NOMETASYNC : MDB_NOSYNC);
  if ((rc = mdb_env_open(env, options.dir.c_str(), flags, 0600)) != 0)
    return LmdbError("opening " + options.dir, rc);
  {
    Txn txn;
    if ((rc = mdb_txn_begin(env, nullptr, 0, txn.out())) != 0) return LmdbError("beginning", rc);
    if ((rc = mdb_dbi_open(txn.get(), "nodes", MDB_CREATE, &impl->nodes)) != 0 ||
        (rc = mdb_dbi_open(txn.get(), "meta", MDB_CREATE, &impl->meta)) != 0)
      return LmdbError("opening databases", rc);
    LEDGER_ASSIGN_OR_RETURN(std::optional<uint64_t> version, ReadVersion(txn.get(), impl->meta));
    if (!version) {
      // New, or an import a crash interrupted: start from the empty tree.
      if ((rc = mdb_drop(txn.get(), impl->nodes, 0)) != 0) return LmdbError("emptying an unfinished import", rc);
      Bytes zero;
      AppendU64(&zero, 0);
      MDB_val k = Val(kVersionKey), v = Val(zero);
      if ((rc = mdb_put(txn.get(), impl->meta, &k, &v, 0)) != 0) return LmdbError("writing the version", rc);
    }
    if ((rc = txn.Commit()) != 0) return LmdbError("committing", rc);
    impl->persisted = impl->committed = impl->published = version.value_or(0);
  }
  std::unique_ptr<SubjectTreeStore> store(new SubjectTreeStore(std::move(impl)));
  if (options.background) store->impl_->thread = std::thread([im = store->impl_.get()] { im->Run(); });
  return store;
}

StatusOr<std::unique_ptr<SubjectTreeView>> SubjectTreeStore::View() {
  Impl& im = *impl_;
  auto pin = std::make_unique<SubjectTreeView::Pin>();
  {
    // Registered before the snapshot is opened: the persisted version can
    // only grow, so the registration is never above the snapshot's.
    std::unique_lock<std::shared_mutex> l(im.mu);
    pin->impl = &im;
    pin->registered_base = im.persisted;
    pin->registered_version = im.committed;
    pin->floor = im.committed;
    im.pin_bases.insert(pin->registered_base);
    im.pin_versions.insert(pin->registered_version);
  }
  int rc = mdb_txn_begin(im.env.get(), nullptr, MDB_RDONLY, pin->txn.out());
  if (rc != 0) return LmdbError("beginning a read", rc);
  LEDGER_ASSIGN_OR_RETURN(std::optional<uint64_t> base, ReadVersion(pin->txn.get(), im.meta));
  if (!base) return Status::Corruption("subject tree: no persisted version");
  pin->base = *base;
  const uint64_t version = std::max(pin->floor, pin->base);
  return std::unique_ptr<SubjectTreeView>(new SubjectTreeView(std::move(pin), version));
}

StatusOr<std::unique_ptr<SubjectTreeUpdate>> SubjectTreeStore::BeginUpdate(uint64_t version) {
  Impl& im = *impl_;
  {
    std::unique_lock<std::shared_mutex> l(im.mu);
    if (im.options.background)
      im.changed.wait(l, [&] { return im.count <= im.options.max_nodes || !im.failure.ok() || im.stop; });
    if (!im.failure.ok()) return Status::IOError("the subject tree could not be persisted: " + im.failure.message());
    if (im.uncommitted || version <= im.committed)
      return Status::FailedPrecondition("subject tree: version " + std::to_string(version) + " cannot be started now");
  }
  LEDGER_ASSIGN_OR_RETURN(std::unique_ptr<SubjectTreeView> base, View());
  LEDGER_RETURN_IF_ERROR(base->SetVersion(kLatest));
  return std::unique_ptr<SubjectTreeUpdate>(new SubjectTreeUpdate(this, std::move(base), version));
}

void SubjectTreeStore::Commit(uint64_t version) {
  Impl& im = *impl_;
  bool wake = false;
  {
    std::unique_lock<std::shared_mutex> l(im.mu);
    if (!im.uncommitted || im.published != version) return;
    im.committed = version;
    im.uncommitted = false;
    if (!im.first_unpersisted) {
      im.first_unpersisted = std::chrono::steady_clock::now();
      wake = true;  // the persister starts timing the interval
    }
    for (const Bytes& key : im.uncommitted_keys) {
      auto it = im.overlay.find(key);
      if (it != im.overlay.end()) im.DropInvisible(it->second, 0);
    }
    im.uncommitted_keys.clear();
    wake = wake || im.count >= im.options.flush_nodes;
  }
  if (wake) im.changed.notify_all();
}

void SubjectTreeStore::Retract(uint64_t version) {
  Impl& im = *impl_;
  std::unique_lock<std::shared_mutex> l(im.mu);
  if (!im.uncommitted || im.published != version) return;
  for (const Bytes& key : im.uncommitted_keys) {
    auto it = im.overlay.find(key);
    if (it == im.overlay.end() || it->second.empty() || it->second.back().version != version) continue;
    it->second.pop_back();
    im.count--;
    if (it->second.empty()) im.overlay.erase(it);
  }
  im.uncommitted_keys.clear();
  im.uncommitted = false;
  im.published = im.committed;
}

Status SubjectTreeStore::Impl::Persist() {
  std::lock_guard<std::mutex> one(persist_mu);
  uint64_t target;
  {
    std::shared_lock<std::shared_mutex> l(mu);
    if (!failure.ok()) return Status::IOError("the subject tree could not be persisted: " + failure.message());
    target = committed;
  }
  // With nothing to write, one step still drops what no view needs.
  do {
    LEDGER_RETURN_IF_ERROR(Step(target));
  } while (persisted < target);
  return Status::OK();
}

Status SubjectTreeStore::Impl::Step(uint64_t target) {
  // Only this thread (under persist_mu) changes |persisted|.
  const uint64_t from = persisted;
  uint64_t upto = from;
  std::vector<std::pair<Bytes, std::optional<SubjectNode>>> writes;
  if (target > from) {
    std::shared_lock<std::shared_mutex> l(mu);
    // The first version after |from| of every node changed since: a step
    // to version v writes the nodes whose first is at most v. Entries
    // after |from| are all in memory (DropInvisible keeps them).
    std::map<uint64_t, size_t> firsts;  // version -> nodes first changed there
    for (const auto& [key, entries] : overlay)
      for (const Entry& e : entries)
        if (e.version > from) {
          if (e.version <= target) firsts[e.version]++;
          break;
        }
    size_t total = 0;
    upto = target;
    for (const auto& [version, nodes] : firsts) {
      if (total > 0 && total + nodes > options.max_persist_writes) {
        upto = std::prev(firsts.find(version))->first;
        break;
      }
      total += nodes;
    }
    writes.reserve(total);
    for (const auto& [key, entries] : overlay)
      for (auto e = entries.rbegin(); e != entries.rend(); ++e) {
        if (e->version > upto) continue;
        if (e->version > from) writes.emplace_back(key, e->node);
        break;
      }
  }
  const auto started = std::chrono::steady_clock::now();
  if (upto != from) LEDGER_RETURN_IF_ERROR(Write(writes, upto));
  const uint64_t micros = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count());
  {
    std::unique_lock<std::shared_mutex> l(mu);
    persisted = upto;
    if (upto != from) {
      persists++;
      persist_writes_max = std::max(persist_writes_max, writes.size());
      persist_micros_total += micros;
      persist_micros_max = std::max(persist_micros_max, micros);
    }
    const uint64_t horizon = pin_bases.empty() ? upto : std::min(upto, *pin_bases.begin());
    for (auto it = overlay.begin(); it != overlay.end();) {
      DropInvisible(it->second, horizon);
      it = it->second.empty() ? overlay.erase(it) : std::next(it);
    }
    if (committed == persisted) {
      first_unpersisted.reset();
    } else {
      first_unpersisted = std::chrono::steady_clock::now();
    }
  }
  changed.notify_all();
  if (upto != from && options.on_persisted) options.on_persisted(upto);
  return Status::OK();
}

Status SubjectTreeStore::Impl::Write(const std::vector<std::pair<Bytes, std::optional<SubjectNode>>>& writes,
                                     uint64_t version) {
  // Keys ascending (the overlay is ordered): each page is written once.
  Txn txn;
  int rc = mdb_txn_begin(env.get(), nullptr, 0, txn.out());
  if (rc != 0) return Fail(LmdbError("beginning a persist", rc));
  for (const auto& [key, node] : writes) {
    MDB_val k = Val(key);
    if (node) {
      Bytes value = EncodeSubjectNode(*node);
      MDB_val v = Val(value);
      rc = mdb_put(txn.get(), nodes, &k, &v, 0);
    } else {
      rc = mdb_del(txn.get(), nodes, &k, nullptr);
      if (rc == MDB_NOTFOUND) rc = 0;
    }
    if (rc != 0) return Fail(LmdbError("writing a node", rc));
  }
  Bytes encoded;
  AppendU64(&encoded, version);
  MDB_val k = Val(kVersionKey), v = Val(encoded);
  if ((rc = mdb_put(txn.get(), meta, &k, &v, 0)) != 0) return Fail(LmdbError("writing the version", rc));
  if ((rc = txn.Commit()) != 0) return Fail(LmdbError("committing a persist", rc));
  return Status::OK();
}

void SubjectTreeStore::Impl::Run() {
  pthread_setname_np(pthread_self(), "ledger-tree");  // for top -H and perf
  while (true) {
    {
      std::unique_lock<std::shared_mutex> l(mu);
      while (true) {
        if (stop || !failure.ok()) return;
        if (unpinned) {
          unpinned = false;
          break;
        }
        if (committed != persisted) {
          if (count >= options.flush_nodes) break;
          if (first_unpersisted) {
            auto due = *first_unpersisted + options.flush_interval;
            if (std::chrono::steady_clock::now() >= due) break;
            changed.wait_until(l, due);
            continue;
          }
        }
        changed.wait(l);
      }
    }
    (void)Persist();  // a failure is reported through Fail and ends the loop
  }
}

Status SubjectTreeStore::Flush() { return impl_->Persist(); }

Status SubjectTreeStore::Close() {
  Status s = Flush();
  {
    std::unique_lock<std::shared_mutex> l(impl_->mu);
    impl_->stop = true;
  }
  impl_->changed.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  return s;
}

Status SubjectTreeStore::Import(const NodeSource& source, uint64_t version, size_t step) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> one(im.persist_mu);
  {
    std::shared_lock<std::shared_mutex> l(im.mu);
    if (!im.overlay.empty() || im.uncommitted)
      return Status::FailedPrecondition("subject tree: import with versions in memory");
  }
  Txn txn;
  int rc = mdb_txn_begin(im.env.get(), nullptr, 0, txn.out());
  if (rc != 0) return LmdbError("beginning an import", rc);
  // First: no version (an unfinished import is undone by Open) and no nodes.
  MDB_val vk = Val(kVersionKey);
  if ((rc = mdb_del(txn.get(), im.meta, &vk, nullptr)) != 0 && rc != MDB_NOTFOUND) return LmdbError("importing", rc);
  if ((rc = mdb_drop(txn.get(), im.nodes, 0)) != 0) return LmdbError("importing", rc);
  size_t in_txn = 0;
  std::optional<Bytes> previous;
  Status s = source([&](ByteView key, ByteView value) -> Status {
    if (previous && ByteView(*previous) >= key) return Status::InvalidArgument("subject tree: import keys not ascending");
    previous = Bytes(key);
    if (in_txn == step) {
      if ((rc = txn.Commit()) != 0) return LmdbError("committing an import step", rc);
      if ((rc = mdb_txn_begin(im.env.get(), nullptr, 0, txn.out())) != 0) return LmdbError("beginning an import step", rc);
      in_txn = 0;
    }
    MDB_val k = Val(key), v = Val(value);
    if ((rc = mdb_put(txn.get(), im.nodes, &k, &v, MDB_APPEND)) != 0) return LmdbError("importing a node", rc);
    in_txn++;
    return Status::OK();
  });
  LEDGER_RETURN_IF_ERROR(s);
  Bytes v;
  AppendU64(&v, version);
  MDB_val vv = Val(v);
  if ((rc = mdb_put(txn.get(), im.meta, &vk, &vv, 0)) != 0) return LmdbError("writing the version", rc);
  if ((rc = txn.Commit()) != 0) return LmdbError("committing an import", rc);
  std::unique_lock<std::shared_mutex> l(im.mu);
  im.persisted = im.committed = im.published = version;
  return Status::OK();
}

Status SubjectTreeStore::ForEachPersisted(const std::function<void(ByteView key, ByteView value)>& fn) const {
  Txn txn;
  int rc = mdb_txn_begin(impl_->env.get(), nullptr, MDB_RDONLY, txn.out());
  if (rc != 0) return LmdbError("beginning a read", rc);
  MDB_cursor* raw = nullptr;
  if ((rc = mdb_cursor_open(txn.get(), impl_->nodes, &raw)) != 0) return LmdbError("opening a cursor", rc);
  std::unique_ptr<MDB_cursor, void (*)(MDB_cursor*)> c(raw, mdb_cursor_close);
  MDB_val k, v;
  for (rc = mdb_cursor_get(c.get(), &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT))
    fn(ByteView(static_cast<const char*>(k.mv_data), k.mv_size), ByteView(static_cast<const char*>(v.mv_data), v.mv_size));
  if (rc != MDB_NOTFOUND) return LmdbError("reading nodes", rc);
  return Status::OK();
}

uint64_t SubjectTreeStore::persisted_version() const {
  std::shared_lock<std::shared_mutex> l(impl_->mu);
  return impl_->persisted;
}

uint64_t SubjectTreeStore::committed_version() const {
  std::shared_lock<std::shared_mutex> l(impl_->mu);
  return impl_->committed;
}

SubjectTreeStats SubjectTreeStore::stats() const {
  const Impl& im = *impl_;
  std::shared_lock<std::shared_mutex> l(im.mu);
  SubjectTreeStats s;
  s.memory_nodes = im.count;
  s.memory_nodes_max = im.count_max;
  s.persists = im.persists;
  s.persisted_version = im.persisted;
  s.committed_version = im.committed;
  s.persist_writes_max = im.persist_writes_max;
  s.persist_micros_total = im.persist_micros_total;
  s.persist_micros_max = im.persist_micros_max;
  return s;
}

}  // namespace ledger
