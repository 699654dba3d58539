// keel::postgres::PostgresSagaLog: the saga log many coordinators share, on PostgreSQL.
//
//   postgres::PostgresSagaLog log("host=db dbname=app user=app");
//   saga::SagaCoordinator coordinator(log);
//   coordinator.recover();   // safe on every node at once: each saga is taken by one of them
//
// Each append is one transaction: the record in keel_saga_record plus the saga's row in
// keel_saga (state). Records are durable when the commit returns (with the server's
// synchronous_commit on, its default).
//
// Claims are session advisory locks (pg_try_advisory_lock on a hash of the saga id), held by
// this log's connection while a saga is driven through it. They need no clock and no lease: when
// a coordinator's process dies, the server ends its session and the locks go with it, so another
// coordinator's recover() can take the saga at once; while it lives, nobody else can. Appends
// are fenced by a claim number that every claim increments: if this connection is lost, its
// locks go with it, another coordinator may claim the saga, and the next append here (on a new
// connection) carries an old number and is refused (std::logic_error). Until that append, the
// step in progress here may still be running: the fence stops the saga's log from forking, not
// a call already made.
//
// Two saga ids whose hashes collide share a lock: one waits (at start) or is skipped by
// recover() until the other finishes — never two coordinators on one saga.
//
// Tables: keel_saga and keel_saga_record, created when missing.
//
// Thread safety: safe to call from any number of threads (one connection behind a mutex); for
// more throughput, give each coordinator its own log.
#pragma once

#include <mutex>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "keel/postgres/connection.h"
#include "keel/saga/saga_log.h"

namespace keel::postgres {

class PostgresSagaLog final : public saga::SagaLog {
 public:
  // Connects and creates the tables when missing. Throws postgres::Error.
  explicit PostgresSagaLog(const std::string& connection_string);

  void append(const saga::SagaRecord& record) override;
  std::vector<saga::SagaRecord> history(std::string_view saga_id) override;
  std::vector<std::string> unfinished() override;
  std::vector<std::string> failed() override;
  bool try_claim(std::string_view saga_id) override;
  void release(std::string_view saga_id) override;

 private:
  std::vector<std::string> ids_in_state(std::string_view state);
  void unlock(std::string_view saga_id);

  std::mutex mutex_;
  Connection db_;
  // Sagas whose session lock this connection holds, with the claim number fencing their appends.
  std::map<std::string, std::int64_t, std::less<>> held_;
};

}  // namespace keel::postgres
