// Proof by crash: a child process runs two order sagas (one that completes, one whose payment is
// declined) against a SQLite saga log and dies at one point in turn: before and after every log
// append and right after every effect of an action or compensation, by _exit() or by the
// parent's SIGKILL. The parent then recovers with a new coordinator on the same file and checks
// that every saga completed or was fully compensated and that no effect was applied twice.
//
// The services keep their effects in another SQLite file, each applied at most once through an
// idempotency key (saga id, step, kind) — what docs/saga.md asks of compensations — and log
// every call, in the child and during recovery, so the test can check that recovery never
// repeats an action and never repeats a compensation the log says completed.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/saga/coordinator.h"
#include "keel/sqlite/database.h"
#include "keel/sqlite/saga_log.h"
#include "tests/support/temp_dir.h"

namespace keel {
namespace {

using saga::Context;

enum class Death { exit, sigkill };

// Counts crash points in the child; at `crash_at` the child dies.
struct Crasher {
  int crash_at = -1;  // -1: never
  int point = 0;
  Death death = Death::exit;
  int signal_fd = -1;  // sigkill: tell the parent, then wait to be killed

  void here() {
    if (++point != crash_at) return;
    if (death == Death::exit) _exit(42);
    const char byte = 'k';
    if (write(signal_fd, &byte, 1) != 1) _exit(43);
    for (;;) pause();
  }
};

// The log the child writes through: a crash point before and after each append.
class CrashingLog final : public saga::SagaLog {
 public:
  CrashingLog(saga::SagaLog& inner, Crasher& crasher) : inner_(inner), crasher_(crasher) {}
  void append(const saga::SagaRecord& record) override {
    crasher_.here();
    inner_.append(record);
    crasher_.here();
  }
  std::vector<saga::SagaRecord> history(std::string_view id) override { return inner_.history(id); }
  std::vector<std::string> unfinished() override { return inner_.unfinished(); }
  std::vector<std::string> failed() override { return inner_.failed(); }
  bool try_claim(std::string_view id) override { return inner_.try_claim(id); }
  void release(std::string_view id) override { inner_.release(id); }

 private:
  saga::SagaLog& inner_;
  Crasher& crasher_;
};

// The services: effects applied once per idempotency key, each application counted.
class Services {
 public:
  Services(const std::string& path, std::string phase) : db_(path), phase_(std::move(phase)) {
    db_.execute(
        "CREATE TABLE IF NOT EXISTS effects (saga_id TEXT, step TEXT, kind TEXT, "
        "PRIMARY KEY (saga_id, step, kind));"
        "CREATE TABLE IF NOT EXISTS calls (saga_id TEXT, step TEXT, kind TEXT, phase TEXT)");
  }
  // Logs the call, then applies (saga, step, kind) of the running step unless it was applied
  // already, in one transaction.
  void apply(std::string_view kind) {
    const saga::StepInfo* step = saga::current_step();
    sqlite::Transaction tx = db_.transaction();
    auto call = db_.prepare("INSERT INTO calls VALUES (?1, ?2, ?3, ?4)");
    call.bind_text(1, step->saga_id).bind_text(2, step->step).bind_text(3, kind).bind_text(4, phase_);
    call.step();
    auto insert = db_.prepare("INSERT OR IGNORE INTO effects VALUES (?1, ?2, ?3)");
    insert.bind_text(1, step->saga_id).bind_text(2, step->step).bind_text(3, kind);
    insert.step();
    tx.commit();
  }
  // The calls made during recovery, as "saga/step/kind".
  std::vector<std::string> recovery_calls() {
    std::vector<std::string> calls;
    auto select = db_.prepare("SELECT saga_id, step, kind FROM calls WHERE phase = 'recovery'");
    while (select.step()) {
      calls.push_back(fmt::format("{}/{}/{}", select.column_text(0), select.column_text(1),
                                  select.column_text(2)));
    }
    return calls;
  }
  bool has(const std::string& saga_id, const std::string& step, const std::string& kind) {
    auto select = db_.prepare("SELECT 1 FROM effects WHERE saga_id = ?1 AND step = ?2 AND kind = ?3");
    select.bind_text(1, saga_id).bind_text(2, step).bind_text(3, kind);
    return select.step();
  }
  std::int64_t effects_outside(const std::vector<std::string>& known) {
    std::int64_t n = 0;
    auto select = db_.prepare("SELECT saga_id FROM effects");
    while (select.step()) {
      if (std::find(known.begin(), known.end(), select.column_text(0)) == known.end()) ++n;
    }
    return n;
  }

 private:
  sqlite::Database db_;
  std::string phase_;
};

const std::vector<std::string> kSteps = {"reserve", "charge", "confirm"};

std::vector<saga::SagaStep> order_steps(Services& services, Crasher* crasher) {
  const auto effect = [&services, crasher](std::string kind) {
    return [&services, crasher, kind](Context& c) {
      if (kind == "do" && saga::current_step()->step == "charge" && c.contains("declined")) {
        throw std::runtime_error("card declined");
      }
      services.apply(kind);
      if (crasher != nullptr) crasher->here();
    };
  };
  std::vector<saga::SagaStep> steps;
  for (const std::string& name : kSteps) steps.push_back({name, effect("do"), effect("undo")});
  return steps;
}

// The child's whole life: two sagas, then exit 0. Never returns.
[[noreturn]] void run_child(const std::string& dir, Crasher crasher) {
  try {
    Services services(dir + "/services.db", "child");
    sqlite::SqliteSagaLog sqlite_log(dir + "/sagas.db", {.owner = "node-a"});
    CrashingLog log(sqlite_log, crasher);
    saga::SagaCoordinator coordinator(log);
    coordinator.define("order", order_steps(services, &crasher));
    coordinator.execute("order", {{"sku", "A1"}}, "order-ok");
    coordinator.execute("order", {{"sku", "B2"}, {"declined", true}}, "order-declined");
    _exit(0);
  } catch (const std::exception& e) {
    fmt::print(stderr, "child failed: {}\n", e.what());
    _exit(3);
  } catch (...) {
    _exit(3);
  }
}

// Runs the child until crash point `crash_at`; returns false when it finished without reaching it.
bool run_until_crash(const std::string& dir, int crash_at, Death death) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    close(fds[0]);
    run_child(dir, Crasher{.crash_at = crash_at, .death = death, .signal_fd = fds[1]});
  }
  close(fds[1]);
  if (death == Death::sigkill) {
    char byte = 0;
    if (read(fds[0], &byte, 1) == 1) kill(pid, SIGKILL);  // 0 bytes: the child exited first
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return false;
  const bool died_as_planned = (WIFEXITED(status) && WEXITSTATUS(status) == 42) ||
                               (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  if (!died_as_planned) throw std::runtime_error(fmt::format("child ended with status {}", status));
  return true;
}

void check_recovery(const std::string& dir) {
  Services services(dir + "/services.db", "recovery");
  sqlite::SqliteSagaLog log(dir + "/sagas.db", {.owner = "node-a"});

  // What the log says before recovery: what recovery must not do again.
  std::set<std::string> must_not_repeat;
  for (const std::string id : {"order-ok", "order-declined"}) {
    const auto history = log.history(id);
    if (history.empty()) continue;
    const saga::SagaState before = saga::replay(history);
    for (std::size_t i = 0; i < before.steps.size(); ++i) {
      must_not_repeat.insert(fmt::format("{}/{}/do", id, kSteps[i]));  // backward: no action
      if (before.steps[i].compensation_completed || before.status) {
        must_not_repeat.insert(fmt::format("{}/{}/undo", id, kSteps[i]));
      }
    }
    if (before.status) {  // finished: recovery must not touch it at all
      for (const std::string& step : kSteps) {
        must_not_repeat.insert(fmt::format("{}/{}/undo", id, step));
      }
    }
  }

  saga::SagaCoordinator coordinator(log);
  coordinator.define("order", order_steps(services, nullptr));
  const saga::RecoveryReport report = coordinator.recover();
  EXPECT_TRUE(report.skipped.empty());
  EXPECT_TRUE(report.invalid.empty());
  EXPECT_TRUE(log.unfinished().empty());
  for (const std::string& call : services.recovery_calls()) {
    EXPECT_FALSE(must_not_repeat.contains(call)) << "recovery repeated " << call;
  }

  std::vector<std::string> known;
  for (const std::string id : {"order-ok", "order-declined"}) {
    const auto history = log.history(id);
    if (history.empty()) continue;  // died before it started: checked below (no effects)
    known.push_back(id);
    const saga::SagaState state = saga::replay(history);
    ASSERT_TRUE(state.status.has_value()) << id;
    if (*state.status == saga::SagaStatus::completed) {
      EXPECT_EQ(id, "order-ok");
      for (const std::string& step : kSteps) {
        EXPECT_TRUE(services.has(id, step, "do")) << id << " " << step;
        EXPECT_FALSE(services.has(id, step, "undo")) << id << " " << step;
      }
    } else {
      EXPECT_EQ(*state.status, saga::SagaStatus::compensated) << id;
      for (const std::string& step : kSteps) {
        // Every effect that happened was undone.
        if (services.has(id, step, "do")) {
          EXPECT_TRUE(services.has(id, step, "undo")) << id << " " << step;
        }
      }
    }
  }
  EXPECT_EQ(services.effects_outside(known), 0);
}

class SagaCrashTest : public ::testing::TestWithParam<Death> {};

TEST_P(SagaCrashTest, RecoveryAfterADeathAtEveryPointIsConsistent) {
  int crashes = 0;
  for (int crash_at = 1;; ++crash_at) {
    SCOPED_TRACE(fmt::format("crash point {}", crash_at));
    keel::testing::TempDir dir("keel-saga-crash");
    const bool crashed = run_until_crash(dir.path().string(), crash_at, GetParam());
    if (!crashed) break;
    ++crashes;
    check_recovery(dir.path().string());
    if (HasFatalFailure()) return;
    ASSERT_LT(crash_at, 500);
  }
  // Every point was visited: 8 records (16 points) and 3 effects for the saga that completes;
  // 8 records (started, reserve started/completed, charge started/failed, compensation of
  // reserve started/completed, finished) and 2 effects for the declined one.
  EXPECT_EQ(crashes, 16 + 3 + 16 + 2);
}

INSTANTIATE_TEST_SUITE_P(Death, SagaCrashTest, ::testing::Values(Death::exit, Death::sigkill),
                         [](const ::testing::TestParamInfo<Death>& param_info) {
                           return param_info.param == Death::exit ? std::string("exit")
                                                            : std::string("sigkill");
                         });

}  // namespace
}  // namespace keel
