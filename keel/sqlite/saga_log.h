// keel::sqlite::SqliteSagaLog: the embedded durable saga log, one SQLite file in WAL mode.
//
//   sqlite::SqliteSagaLog log("sagas.db");
//   saga::SagaCoordinator coordinator(log);
//
// Each append is one transaction (committed with synchronous=FULL, so a record is on disk before
// the next action runs): the record, plus the saga's row in keel_saga (state, owner, lease). A
// crash at any point leaves every committed record and nothing of the one in flight.
//
// Claims are leases: the owner that started or claimed a saga holds it until the saga finishes,
// it is released, or `lease` passes without an append from the owner. Owners are names: a node
// that restarts with the same owner takes its own sagas back at once; another owner waits for the
// lease to expire. Appends are fenced: an owner whose lease was taken over cannot write to that
// saga any more (std::logic_error), so two coordinators never drive one saga.
//
// Tables: keel_saga (one row per saga) and keel_saga_record (the records), created when missing.
//
// Thread safety: safe to call from any number of threads (one connection behind a mutex). Use
// one SqliteSagaLog per owner; several processes may share the file, each with its own owner.
#pragma once

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/clock.h"
#include "keel/saga/saga_log.h"
#include "keel/sqlite/database.h"

namespace keel::sqlite {

struct SqliteSagaLogOptions {
  // Names this coordinator in claims. Default: the host name, so that a restarted node takes
  // its own unfinished sagas back at once.
  std::string owner = {};
  // How long a claim lasts without an append from its owner. REQUIRES: > 0. Default: 30 s.
  Duration lease = std::chrono::seconds(30);
  // Wall time for leases and record times. Must outlive the log. Default: the system clock.
  const Clock* clock = nullptr;
  // synchronous=FULL: each commit is synced to disk (survives power loss, not only a crash of
  // the process). Default: true.
  bool sync_every_commit = true;
};

class SqliteSagaLog final : public saga::SagaLog {
 public:
  // Opens (or creates) the log at `path`. Throws sqlite::Error, or std::invalid_argument for a
  // non-positive lease or an empty owner name.
  explicit SqliteSagaLog(const std::string& path, SqliteSagaLogOptions options = {});

  void append(const saga::SagaRecord& record) override;
  std::vector<saga::SagaRecord> history(std::string_view saga_id) override;
  std::vector<std::string> unfinished() override;
  std::vector<std::string> failed() override;
  bool try_claim(std::string_view saga_id) override;
  void release(std::string_view saga_id) override;

  const std::string& owner() const noexcept { return owner_; }

 private:
  std::int64_t now_ms() const noexcept;
  std::vector<std::string> ids_in_state(std::string_view state);

  const std::string owner_;
  const Duration lease_;
  const Clock& clock_;
  std::mutex mutex_;
  Database db_;
  std::set<std::string, std::less<>> held_;  // sagas driven through this object right now
};

}  // namespace keel::sqlite
