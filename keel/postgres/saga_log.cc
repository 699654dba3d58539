#include "keel/postgres/saga_log.h"

#include <fmt/format.h>

#include <chrono>
#include <stdexcept>

namespace keel::postgres {

namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS keel_saga (
  saga_id   TEXT PRIMARY KEY,
  saga_name TEXT NOT NULL,
  state     TEXT NOT NULL CHECK (state IN ('running', 'completed', 'compensated', 'failed')),
  created   BIGSERIAL NOT NULL,
  claim     BIGINT NOT NULL DEFAULT 1  -- fencing number: +1 on every claim
);
CREATE INDEX IF NOT EXISTS keel_saga_by_state ON keel_saga (state, created);
CREATE TABLE IF NOT EXISTS keel_saga_record (
  seq       BIGSERIAL PRIMARY KEY,
  saga_id   TEXT NOT NULL REFERENCES keel_saga (saga_id),
  event     TEXT NOT NULL,
  step      INTEGER NOT NULL,
  step_name TEXT NOT NULL,
  attempt   INTEGER NOT NULL,
  error     TEXT NOT NULL,
  may_have_effect BOOLEAN NOT NULL,
  status    TEXT,
  context   TEXT NOT NULL,
  at_us     BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS keel_saga_record_by_saga ON keel_saga_record (saga_id, seq);
)sql";

// The advisory lock of a saga: keel's class ('keel' in ASCII) and the id's hash.
constexpr std::string_view kLockArgs = "1801807212, hashtext($1)";

}  // namespace

PostgresSagaLog::PostgresSagaLog(const std::string& connection_string) : db_(connection_string) {
  // Two coordinators starting together may both try to create the tables: serialise them.
  Transaction tx = db_.transaction();
  tx.execute("SELECT pg_advisory_xact_lock(1801807213, 0)");  // not a saga lock class
  tx.execute(kSchema);
  tx.commit();
}

void PostgresSagaLog::append(const saga::SagaRecord& record) {
  const std::lock_guard lock(mutex_);
  const bool started = record.event == saga::SagaEvent::started;
  const bool finished = record.event == saga::SagaEvent::finished;
  if (finished && !record.status) {
    throw std::invalid_argument("saga log: a finished record needs a status");
  }
  if (started) {
    if (!db_.execute("SELECT 1 FROM keel_saga WHERE saga_id = $1", {record.saga_id}).empty()) {
      throw std::invalid_argument(
          fmt::format("saga log: the saga id {} is already in the log", record.saga_id));
    }
    // Hold the saga for the life of the run (see the header). Waits only when another saga's
    // id hashes to the same lock and that saga is being driven: until it ends.
    db_.execute(fmt::format("SELECT pg_advisory_lock({})", kLockArgs), {record.saga_id});
  }
  try {
    Transaction tx = db_.transaction();
    if (started) {
      const Result inserted = tx.execute(
          "INSERT INTO keel_saga (saga_id, saga_name, state) VALUES ($1, $2, 'running') "
          "ON CONFLICT (saga_id) DO NOTHING",
          {record.saga_id, record.saga_name});
      if (inserted.affected_rows() == 0) {
        throw std::invalid_argument(
            fmt::format("saga log: the saga id {} is already in the log", record.saga_id));
      }
    } else {
      // The fence: the claim number this connection got when it claimed the saga. A connection
      // that was lost (and its lock with it) while another coordinator claimed the saga has an
      // old number and is refused.
      const auto held = held_.find(record.saga_id);
      const std::int64_t claim = held == held_.end() ? -1 : held->second;
      const Result updated =
          finished ? tx.execute("UPDATE keel_saga SET state = $3 WHERE saga_id = $1 AND claim = $2",
                                {record.saga_id, claim, saga::to_string(*record.status)})
                   : tx.execute("UPDATE keel_saga SET state = 'running' "
                                "WHERE saga_id = $1 AND claim = $2",
                                {record.saga_id, claim});
      if (updated.affected_rows() == 0) {
        const bool exists =
            !tx.execute("SELECT 1 FROM keel_saga WHERE saga_id = $1", {record.saga_id}).empty();
        throw std::logic_error(
            exists ? fmt::format("saga log: saga {} is not held by this coordinator (never "
                                 "claimed, released, or taken over)",
                                 record.saga_id)
                   : fmt::format("saga log: no saga {} was started", record.saga_id));
      }
    }
    tx.execute(
        "INSERT INTO keel_saga_record (saga_id, event, step, step_name, attempt, error, "
        "may_have_effect, status, context, at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
        "$10)",
        {record.saga_id, saga::to_string(record.event), record.step, record.step_name,
         record.attempt, record.error, record.may_have_effect,
         record.status ? Param(saga::to_string(*record.status)) : Param(nullptr),
         saga::context_to_json(record.context),
         std::chrono::duration_cast<std::chrono::microseconds>(record.at.time_since_epoch())
             .count()});
    tx.commit();
  } catch (...) {
    if (started) unlock(record.saga_id);
    throw;
  }
  if (started) {
    held_.emplace(record.saga_id, 1);
  } else if (finished) {
    if (const auto it = held_.find(record.saga_id); it != held_.end()) {
      unlock(record.saga_id);
      held_.erase(it);
    }
  }
}

void PostgresSagaLog::unlock(std::string_view saga_id) {
  try {
    db_.execute(fmt::format("SELECT pg_advisory_unlock({})", kLockArgs), {saga_id});
  } catch (const Error&) {
    // A lost connection has lost its locks already.
  }
}

std::vector<saga::SagaRecord> PostgresSagaLog::history(std::string_view saga_id) {
  const std::lock_guard lock(mutex_);
  const Result rows = db_.execute(
      "SELECT s.saga_name, r.event, r.step, r.step_name, r.attempt, r.error, r.may_have_effect, "
      "r.status, r.context, r.at_us FROM keel_saga_record r JOIN keel_saga s USING (saga_id) "
      "WHERE r.saga_id = $1 ORDER BY r.seq",
      {saga_id});
  std::vector<saga::SagaRecord> records;
  records.reserve(rows.size());
  for (const Row& row : rows) {
    saga::SagaRecord& r = records.emplace_back();
    r.saga_id = std::string(saga_id);
    r.saga_name = row.as_text(0);
    r.event = saga::saga_event_from_string(row.as_text(1));
    r.step = static_cast<int>(row.as_int64(2));
    r.step_name = row.as_text(3);
    r.attempt = static_cast<int>(row.as_int64(4));
    r.error = row.as_text(5);
    r.may_have_effect = row.as_bool(6);
    if (!row.is_null(7)) r.status = saga::saga_status_from_string(row.as_text(7));
    r.context = saga::context_from_json(row.as_text(8));
    r.at = WallTime{std::chrono::duration_cast<WallTime::duration>(
        std::chrono::microseconds{row.as_int64(9)})};
  }
  return records;
}

std::vector<std::string> PostgresSagaLog::ids_in_state(std::string_view state) {
  const std::lock_guard lock(mutex_);
  const Result rows =
      db_.execute("SELECT saga_id FROM keel_saga WHERE state = $1 ORDER BY created", {state});
  std::vector<std::string> ids;
  ids.reserve(rows.size());
  for (const Row& row : rows) ids.push_back(row.as_text(0));
  return ids;
}

std::vector<std::string> PostgresSagaLog::unfinished() { return ids_in_state("running"); }

std::vector<std::string> PostgresSagaLog::failed() { return ids_in_state("failed"); }

bool PostgresSagaLog::try_claim(std::string_view saga_id) {
  const std::lock_guard lock(mutex_);
  if (held_.contains(saga_id)) return false;
  if (db_.execute("SELECT 1 FROM keel_saga WHERE saga_id = $1", {saga_id}).empty()) return false;
  const Result locked =
      db_.execute(fmt::format("SELECT pg_try_advisory_lock({})", kLockArgs), {saga_id});
  if (!locked[0].as_bool(0)) return false;
  try {
    const Result claim = db_.execute(
        "UPDATE keel_saga SET claim = claim + 1 WHERE saga_id = $1 RETURNING claim", {saga_id});
    held_.emplace(std::string(saga_id), claim[0].as_int64(0));
  } catch (...) {
    unlock(saga_id);
    throw;
  }
  return true;
}

void PostgresSagaLog::release(std::string_view saga_id) {
  const std::lock_guard lock(mutex_);
  const auto it = held_.find(saga_id);
  if (it == held_.end()) return;
  unlock(saga_id);
  held_.erase(it);
}

}  // namespace keel::postgres
