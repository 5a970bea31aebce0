// SubjectTreeStore keeps ledgerd's subject index tree (SPEC.md §14): every
// committed version of it, readable at any version a read snapshot of the
// log needs, with the nodes persisted in an LMDB environment of their own
// (DIR/subjects, SPEC.md §7) by a background thread and the versions not
// yet persisted in memory.
//
// Why: updating the tree inside the log's write transactions dirtied a
// random page per access on a large log, and the sequencer waited for
// every one of them (RELIABILITY.md, "Load and soak"). Here a commitment
// only computes its changed nodes and keeps them in memory; the persister
// writes many commitments' nodes at once, each page once, in a transaction
// of its own environment that the sequencer never waits for. The tree is
// derived from the log, so nothing acknowledged depends on it: after a
// crash, SubjectIndexer::Recover recomputes the versions after the
// persisted one from the log's entries.
//
// Versions. Version v is the tree of the index commitment at leaf index v
// (0: the empty tree, before any commitment); a reader of the log asks for
// the version of the latest commitment in its snapshot.
//
// Thread-safety: thread-safe. A SubjectTreeView is used by one thread at a
// time. The update calls (BeginUpdate, SubjectTreeUpdate::Publish, Commit,
// Retract) come from one thread at a time (the sequencer's), and versions
// are published in increasing order, at most one of them uncommitted.
#ifndef LEDGER_SUBJECT_TREE_H_
#define LEDGER_SUBJECT_TREE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/status.h"
#include "ledger/subject_index.h"

namespace ledger {

struct SubjectTreeOptions {
  // The environment's directory (created if missing, mode 0700).
  std::string dir;
  // LMDB map size in bytes (address space; the file grows as needed).
  uint64_t map_size = uint64_t{128} << 30;
  // The persister writes the committed versions once this many node
  // versions are held in memory (about 250 bytes each), or once
  // |flush_interval| has passed since the first of them.
  size_t flush_nodes = 16384;
  std::chrono::milliseconds flush_interval{5000};
  // It writes them in transactions of whole versions, each of at most this
  // many node writes (or one version, if that alone has more). LMDB keeps
  // a heap buffer for every page of the environment's largest transaction
  // until it is closed, and the pages per node write rise as the tree
  // grows (band-2 tiles outgrow a page), so a transaction bounded only by
  // what arrived since the last persist kept raising ledgerd's memory
  // with the log: those buffers held 12.9 MiB at 0.27M entries and
  // 16.3 MiB at 1.5M (RELIABILITY.md). At 8,192 they still rose from 7.1
  // to 9.1 MiB between 0.35M and 1.6M entries. 4,096 holds one or two
  // commitments of ledgerd's default 128 accesses (about 2,000-2,500 node
  // writes each up to 1.9M entries); a single version above the bound,
  // as commitments of 256 accesses became (4,661 writes), lets the
  // largest transaction grow with the tree again. Larger: more nodes
  // share a page per transaction, for more of those buffers.
  size_t max_persist_writes = 4096;
  // BeginUpdate waits for the persister while more than this many are held
  // (a bound on memory when the disk falls behind).
  size_t max_nodes = 4 * 16384;
  // false: no background thread; only Flush persists (tests).
  bool background = true;
  // false: commits without fsync (tests), as StoreOptions::durable.
  bool durable = true;
  // Called (on the persisting thread, no lock held) after each persisting
  // transaction commits, with its version (tests).
  std::function<void(uint64_t version)> on_persisted;
  // Called (on the persister's thread) when persisting fails; the store
  // then persists nothing more and BeginUpdate fails (IOError). The caller
  // stops appending: a restart recomputes the versions from the log.
  std::function<void(const Status&)> on_failure;
};

class SubjectTreeStore;

// SubjectTreeStats is what SubjectTreeStore::stats reports (ledgerd's
// /metrics): how far the persister lags and what it holds.
struct SubjectTreeStats {
  size_t memory_nodes = 0;      // node versions held in memory now
  size_t memory_nodes_max = 0;  // the most held at once since Open
  uint64_t persists = 0;        // persisting transactions committed
  uint64_t persisted_version = 0, committed_version = 0;
  size_t persist_writes_max = 0;      // the most node writes in one transaction
  uint64_t persist_micros_total = 0;  // time spent in those transactions
  uint64_t persist_micros_max = 0;
};

// SubjectTreeView reads the tree at one version; writes fail
// (FailedPrecondition). It pins what it reads (an LMDB read snapshot of
// the persisted nodes and the versions in memory after it) until
// destroyed; destroy it before its store.
class SubjectTreeView : public SubjectNodeStore {
 public:
  ~SubjectTreeView() override;
  // SetVersion chooses the version read: the latest commitment's index in
  // a log snapshot opened after this view (0 for none).
  // FailedPrecondition if |version| is older than the view's persisted
  // version or than the latest version committed when the view was made
  // (the log snapshot was opened before the view).
  Status SetVersion(uint64_t version);
  uint64_t version() const { return version_; }

  StatusOr<std::optional<SubjectNode>> GetNode(unsigned depth, const SubjectTag& prefix) override;
  Status PutNode(unsigned depth, const SubjectTag& prefix, const SubjectNode& node) override;
  Status DeleteNode(unsigned depth, const SubjectTag& prefix) override;

 private:
  friend class SubjectTreeStore;
  friend class SubjectTreeUpdate;
  struct Pin;
  SubjectTreeView(std::unique_ptr<Pin> pin, uint64_t version);
  StatusOr<std::optional<SubjectNode>> Read(const Bytes& key, uint64_t version);

  std::unique_ptr<Pin> pin_;
  uint64_t version_;
};

// SubjectTreeUpdate computes one new version: it reads the latest version
// published (committed or not) with its own writes on top, and Publish
// makes its writes that version.
class SubjectTreeUpdate : public SubjectNodeStore {
 public:
  ~SubjectTreeUpdate() override;
  StatusOr<std::optional<SubjectNode>> GetNode(unsigned depth, const SubjectTag& prefix) override;
  Status PutNode(unsigned depth, const SubjectTag& prefix, const SubjectNode& node) override;
  Status DeleteNode(unsigned depth, const SubjectTag& prefix) override;
  // Publish adds the writes as version |version| (greater than every
  // version published before), not yet committed: readers whose log
  // snapshot holds that commitment see it; Commit or Retract settles it.
  // Call once, before the log's batch holding the commitment commits.
  Status Publish();

 private:
  friend class SubjectTreeStore;
  SubjectTreeUpdate(SubjectTreeStore* store, std::unique_ptr<SubjectTreeView> base, uint64_t version);

  SubjectTreeStore* store_;
  std::unique_ptr<SubjectTreeView> base_;
  uint64_t version_;
  std::map<Bytes, std::optional<SubjectNode>> writes_;  // key -> node, nullopt: deleted
  bool published_ = false;
};

class SubjectTreeStore {
 public:
  // Open opens (creating) the environment in options.dir and starts the
  // persister. An environment whose import (Import) did not finish is
  // emptied: persisted_version() is then 0. IOError if it cannot be
  // opened; Corruption for a malformed version.
  static StatusOr<std::unique_ptr<SubjectTreeStore>> Open(SubjectTreeOptions options);
  // The destructor stops the persister without persisting (Close does).
  ~SubjectTreeStore();
  SubjectTreeStore(const SubjectTreeStore&) = delete;
  SubjectTreeStore& operator=(const SubjectTreeStore&) = delete;

  // View returns a view at the latest committed version (SetVersion
  // changes it).
  StatusOr<std::unique_ptr<SubjectTreeView>> View();
  // BeginUpdate starts version |version|. It waits while more than
  // max_nodes versions of nodes are in memory; IOError once persisting has
  // failed; FailedPrecondition if |version| is not above every version
  // published or another version is uncommitted.
  StatusOr<std::unique_ptr<SubjectTreeUpdate>> BeginUpdate(uint64_t version);
  // Commit marks |version| (published) as committed to the log: it may be
  // persisted. Retract drops it (its batch did not commit).
  void Commit(uint64_t version);
  void Retract(uint64_t version);

  // Flush persists every committed version now and waits for it.
  Status Flush();
  // Close flushes and stops the persister.
  Status Close();

  // Import replaces the persisted nodes with those |source| yields (keys
  // SubjectNodeKey in ascending order, values EncodeSubjectNode) as
  // version |version|, in transactions of at most |step| nodes; the
  // version is written by the last, so an import a crash interrupted is
  // undone by the next Open. Only with nothing in memory
  // (FailedPrecondition otherwise). Used to move the tree out of the log's
  // state (storage format 4).
  using NodeSource = std::function<Status(const std::function<Status(ByteView key, ByteView value)>& put)>;
  Status Import(const NodeSource& source, uint64_t version, size_t step = 65536);

  // ForEachPersisted calls |fn| with every persisted node's key and value,
  // in key order (tests compare them with a replay's t/ keys).
  Status ForEachPersisted(const std::function<void(ByteView key, ByteView value)>& fn) const;

  uint64_t persisted_version() const;
  uint64_t committed_version() const;
  // stats returns the figures of SubjectTreeStats (held versions, persists).
  SubjectTreeStats stats() const;

 private:
  friend class SubjectTreeView;
  friend class SubjectTreeUpdate;
  struct Impl;
  explicit SubjectTreeStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ledger

#endif  // LEDGER_SUBJECT_TREE_H_
