#include "keel/sqlite/saga_log.h"

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <utility>

namespace keel::sqlite {

namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS keel_saga (
  saga_id   TEXT PRIMARY KEY,
  saga_name TEXT NOT NULL,
  state     TEXT NOT NULL CHECK (state IN ('running', 'completed', 'compensated', 'failed')),
  owner     TEXT,              -- NULL: nobody drives it
  lease_until_ms INTEGER,      -- the owner's claim lapses after this (wall time, ms)
  claim     INTEGER NOT NULL DEFAULT 1  -- fencing number: +1 on every claim
);
CREATE INDEX IF NOT EXISTS keel_saga_by_state ON keel_saga (state);
CREATE TABLE IF NOT EXISTS keel_saga_record (
  seq       INTEGER PRIMARY KEY AUTOINCREMENT,
  saga_id   TEXT NOT NULL REFERENCES keel_saga (saga_id),
  event     TEXT NOT NULL,
  step      INTEGER NOT NULL,
  step_name TEXT NOT NULL,
  attempt   INTEGER NOT NULL,
  error     TEXT NOT NULL,
  may_have_effect INTEGER NOT NULL,
  status    TEXT,
  context   TEXT NOT NULL,     -- JSON object
  at_us     INTEGER NOT NULL   -- wall time, microseconds since 1970
);
CREATE INDEX IF NOT EXISTS keel_saga_record_by_saga ON keel_saga_record (saga_id, seq);
)sql";

std::string default_owner() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') {
    std::snprintf(name.data(), name.size(), "localhost");
  }
  std::random_device random;
  return fmt::format("{}:{}:{:08x}", name.data(), getpid(), random());
}

}  // namespace

SqliteSagaLog::SqliteSagaLog(const std::string& path, SqliteSagaLogOptions options)
    : owner_(options.owner.empty() ? default_owner() : std::move(options.owner)),
      lease_(options.lease),
      clock_(options.clock != nullptr ? *options.clock : default_clock()),
      db_(path) {
  if (lease_ <= Duration::zero()) {
    throw std::invalid_argument("SqliteSagaLog: the lease must be positive");
  }
  db_.execute(options.sync_every_commit ? "PRAGMA synchronous = FULL"
                                        : "PRAGMA synchronous = NORMAL");
  db_.execute(kSchema);
}

std::int64_t SqliteSagaLog::now_ms() const noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             clock_.wall_now().time_since_epoch())
      .count();
}

void SqliteSagaLog::append(const saga::SagaRecord& record) {
  const std::lock_guard lock(mutex_);
  const std::int64_t lease_until =
      now_ms() + std::chrono::duration_cast<std::chrono::milliseconds>(lease_).count();
  Transaction tx = db_.transaction();
  if (record.event == saga::SagaEvent::started) {
    Statement insert = db_.prepare(
        "INSERT INTO keel_saga (saga_id, saga_name, state, owner, lease_until_ms) "
        "VALUES (?1, ?2, 'running', ?3, ?4)");
    insert.bind_text(1, record.saga_id)
        .bind_text(2, record.saga_name)
        .bind_text(3, owner_)
        .bind_int64(4, lease_until);
    try {
      insert.step();
    } catch (const Error& e) {
      if (!e.is_constraint_violation()) throw;
      throw std::invalid_argument(
          fmt::format("saga log: the saga id {} is already in the log", record.saga_id));
    }
  } else {
    // Fenced: only the holder of the saga's current claim writes to it. A record after finished
    // (a resume) makes the saga running again; a finished record lets go of it.
    const bool finished = record.event == saga::SagaEvent::finished;
    if (finished && !record.status) {
      throw std::invalid_argument("saga log: a finished record needs a status");
    }
    const auto held = held_.find(record.saga_id);
    Statement update = db_.prepare(
        finished ? "UPDATE keel_saga SET state = ?3, owner = NULL, lease_until_ms = NULL "
                   "WHERE saga_id = ?1 AND claim = ?2"
                 : "UPDATE keel_saga SET state = 'running', lease_until_ms = ?3 "
                   "WHERE saga_id = ?1 AND claim = ?2");
    update.bind_text(1, record.saga_id).bind_int64(2, held == held_.end() ? -1 : held->second);
    if (finished) {
      update.bind_text(3, saga::to_string(*record.status));
    } else {
      update.bind_int64(3, lease_until);
    }
    update.step();
    if (db_.changes() == 0) {
      Statement owner = db_.prepare("SELECT owner FROM keel_saga WHERE saga_id = ?1");
      owner.bind_text(1, record.saga_id);
      if (!owner.step()) {
        throw std::logic_error(fmt::format("saga log: no saga {} was started", record.saga_id));
      }
      throw std::logic_error(fmt::format(
          "saga log: saga {} is not held by {} (never claimed, released, or taken over by {} "
          "after its lease lapsed)",
          record.saga_id, owner_, owner.column_is_null(0) ? "nobody" : owner.column_text(0)));
    }
  }
  Statement insert = db_.prepare(
      "INSERT INTO keel_saga_record (saga_id, event, step, step_name, attempt, error, "
      "may_have_effect, status, context, at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  insert.bind_text(1, record.saga_id)
      .bind_text(2, saga::to_string(record.event))
      .bind_int64(3, record.step)
      .bind_text(4, record.step_name)
      .bind_int64(5, record.attempt)
      .bind_text(6, record.error)
      .bind_int64(7, record.may_have_effect ? 1 : 0)
      .bind_text(9, saga::context_to_json(record.context))
      .bind_int64(10, std::chrono::duration_cast<std::chrono::microseconds>(
                          record.at.time_since_epoch())
                          .count());
  if (record.status) {
    insert.bind_text(8, saga::to_string(*record.status));
  } else {
    insert.bind_null(8);
  }
  insert.step();
  tx.commit();
  if (record.event == saga::SagaEvent::started) {
    held_.emplace(record.saga_id, 1);
  } else if (record.event == saga::SagaEvent::finished) {
    held_.erase(record.saga_id);
  }
}

std::vector<saga::SagaRecord> SqliteSagaLog::history(std::string_view saga_id) {
  const std::lock_guard lock(mutex_);
  Statement select = db_.prepare(
      "SELECT s.saga_name, r.event, r.step, r.step_name, r.attempt, r.error, r.may_have_effect, "
      "r.status, r.context, r.at_us FROM keel_saga_record r JOIN keel_saga s USING (saga_id) "
      "WHERE r.saga_id = ?1 ORDER BY r.seq");
  select.bind_text(1, saga_id);
  std::vector<saga::SagaRecord> records;
  while (select.step()) {
    saga::SagaRecord& r = records.emplace_back();
    r.saga_id = std::string(saga_id);
    r.saga_name = select.column_text(0);
    r.event = saga::saga_event_from_string(select.column_text(1));
    r.step = static_cast<int>(select.column_int64(2));
    r.step_name = select.column_text(3);
    r.attempt = static_cast<int>(select.column_int64(4));
    r.error = select.column_text(5);
    r.may_have_effect = select.column_int64(6) != 0;
    if (!select.column_is_null(7)) r.status = saga::saga_status_from_string(select.column_text(7));
    r.context = saga::context_from_json(select.column_text(8));
    r.at = WallTime{std::chrono::duration_cast<WallTime::duration>(
        std::chrono::microseconds{select.column_int64(9)})};
  }
  return records;
}

std::vector<std::string> SqliteSagaLog::ids_in_state(std::string_view state) {
  const std::lock_guard lock(mutex_);
  Statement select =
      db_.prepare("SELECT saga_id FROM keel_saga WHERE state = ?1 ORDER BY rowid");
  select.bind_text(1, state);
  std::vector<std::string> ids;
  while (select.step()) ids.push_back(select.column_text(0));
  return ids;
}

std::vector<std::string> SqliteSagaLog::unfinished() { return ids_in_state("running"); }

std::vector<std::string> SqliteSagaLog::failed() { return ids_in_state("failed"); }

bool SqliteSagaLog::try_claim(std::string_view saga_id) {
  const std::lock_guard lock(mutex_);
  if (held_.contains(saga_id)) return false;
  const std::int64_t now = now_ms();
  Statement claim = db_.prepare(
      "UPDATE keel_saga SET owner = ?2, lease_until_ms = ?3, claim = claim + 1 WHERE saga_id = ?1 "
      "AND (owner IS NULL OR owner = ?2 OR lease_until_ms < ?4) RETURNING claim");
  claim.bind_text(1, saga_id)
      .bind_text(2, owner_)
      .bind_int64(3, now + std::chrono::duration_cast<std::chrono::milliseconds>(lease_).count())
      .bind_int64(4, now);
  if (!claim.step()) return false;
  held_.emplace(std::string(saga_id), claim.column_int64(0));
  claim.reset();
  return true;
}

void SqliteSagaLog::release(std::string_view saga_id) {
  const std::lock_guard lock(mutex_);
  const auto it = held_.find(saga_id);
  if (it == held_.end()) return;
  Statement release = db_.prepare(
      "UPDATE keel_saga SET owner = NULL, lease_until_ms = NULL WHERE saga_id = ?1 AND claim = ?2");
  release.bind_text(1, saga_id).bind_int64(2, it->second);
  release.step();
  held_.erase(it);
}

}  // namespace keel::sqlite
