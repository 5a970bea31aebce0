// Txn: RAII ownership of an LMDB transaction, shared by the LMDB stores in
// ledger/state (store.cc, subject_tree.cc). Internal: not a public header.
//
// Thread-safety: a Txn is used by one thread at a time, as LMDB requires
// of its transaction.
#ifndef LEDGER_STATE_LMDB_TXN_H_
#define LEDGER_STATE_LMDB_TXN_H_

#include <lmdb.h>

namespace ledger {

// Txn owns an MDB_txn and aborts it on destruction unless committed.
class Txn {
 public:
  Txn() = default;
  explicit Txn(MDB_txn* t) : txn_(t) {}
  Txn(Txn&& o) noexcept : txn_(o.txn_) { o.txn_ = nullptr; }
  Txn& operator=(Txn&& o) noexcept {
    Reset();
    txn_ = o.txn_;
    o.txn_ = nullptr;
    return *this;
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn() { Reset(); }
  MDB_txn* get() const { return txn_; }
  // out aborts any transaction held and returns the slot for
  // mdb_txn_begin to fill: mdb_txn_begin(env, parent, flags, txn.out()).
  MDB_txn** out() {
    Reset();
    return &txn_;
  }
  // Commit commits (LMDB frees the transaction even when it fails) and
  // returns LMDB's result.
  int Commit() {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    return rc;
  }
  void Reset() {
    if (txn_) mdb_txn_abort(txn_);
    txn_ = nullptr;
  }

 private:
  MDB_txn* txn_ = nullptr;
};

}  // namespace ledger

#endif  // LEDGER_STATE_LMDB_TXN_H_
