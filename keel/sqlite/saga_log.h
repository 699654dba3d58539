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
// it is released, or `lease` passes without an append from the owner. Each claim increments the
// saga's claim number, and appends are fenced by it: an owner whose lease lapsed and was taken
// over cannot write to the saga any more (std::logic_error). It may still be running the step it
// was in when its lease lapsed: make `lease` longer than any step takes, backoffs included.
//
// Owners are names. The default is unique to this object (host:pid:random), so a restarted
// process waits for the lease to lapse before it recovers its predecessor's sagas. Give a node a
// stable owner name (its host name, say) to take its own sagas back at once after a restart —
// and never give two live log objects the same name.
//
// Tables: keel_saga (one row per saga) and keel_saga_record (the records), created when missing.
//
// Thread safety: safe to call from any number of threads (one connection behind a mutex). Use
// one SqliteSagaLog per owner; several processes may share the file, each with its own owner.
#pragma once

#include <chrono>
#include <mutex>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/clock.h"
#include "keel/saga/saga_log.h"
#include "keel/sqlite/database.h"

namespace keel::sqlite {

struct SqliteSagaLogOptions {
  // Names this coordinator in claims. Default: unique to this object (host:pid:random). A stable
  // name lets a restarted node take its own unfinished sagas back at once (see above).
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
  // Sagas driven through this object right now, with the claim number that fences their appends.
  std::map<std::string, std::int64_t, std::less<>> held_;
};

}  // namespace keel::sqlite
