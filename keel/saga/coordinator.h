// keel::saga::SagaCoordinator: owns a SagaLog and the saga definitions by name, runs sagas
// against that log, and finishes the ones a dead process left unfinished.
//
//   sqlite::SqliteSagaLog log("sagas.db");
//   SagaCoordinator coordinator(log);
//   coordinator.define("order", {{"reserve_inventory", reserve, release}, ...});
//   coordinator.recover();                       // at start-up: finish what a crash left behind
//   SagaResult r = coordinator.execute("order", {{"product_id", "A1"}});
//
// recover() claims each unfinished saga (so that with many coordinators on one PostgreSQL log
// exactly one of them takes it), rebuilds its state from the log and finishes it:
// - backward (the default): compensates, in reverse, every step that started and was not already
//   compensated — including the step that was in flight, whose effect is unknown;
// - forward (Recovery::forward, and always for a saga past its pivot): runs again the step that
//   was in flight and every later one.
// Either way a compensation or an action may run a second time for one step: they must be
// idempotent (key them by current_step()->saga_id and the step name).
//
// resume(id) drives a saga that finished `failed` once more (after a person fixed the cause):
// it retries the compensations that did not finish, or the steps after the pivot.
//
// Thread safety: every member may be called from any number of threads. define() is expected
// at start-up; execute() of different sagas runs in parallel.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "keel/saga/saga.h"
#include "keel/saga/saga_log.h"

namespace keel::saga {

struct RecoveryReport {
  std::vector<SagaResult> finished;   // sagas this call drove to an end (any status)
  std::vector<std::string> skipped;   // claimed by another coordinator or running here
  std::vector<std::string> unknown;   // no definition with that saga's name (left in the log)
  // A history this definition cannot continue (more steps, other step names, a record that does
  // not parse): logged and left in the log for a person, and the other sagas still recovered.
  std::vector<std::string> invalid;
};

class SagaCoordinator {
 public:
  // `log` is not owned and must outlive the coordinator. `defaults` fills the options of the
  // sagas defined here (its `log` is replaced by this coordinator's log).
  explicit SagaCoordinator(SagaLog& log, SagaOptions defaults = {});

  // Adds a definition. Throws std::invalid_argument as Saga's constructor does, and for a name
  // already defined.
  void define(std::string name, std::vector<SagaStep> steps);
  void define(std::string name, std::vector<SagaStep> steps, SagaOptions options);

  // Runs the saga named `name`; throws std::invalid_argument for an unknown name.
  SagaResult execute(std::string_view name, Context context = {}, std::string saga_id = {});

  // Finishes every unfinished saga in the log that is not claimed elsewhere. Throws what the log
  // throws for an engine failure (keel::BackendError); the sagas before it were finished.
  RecoveryReport recover();
  // Drives one failed (or unfinished) saga again. Throws std::invalid_argument for an unknown
  // id or definition, std::logic_error when another coordinator holds it or it is not failed
  // or unfinished.
  SagaResult resume(std::string_view saga_id);

  SagaLog& log() noexcept { return log_; }

 private:
  const Saga& find(std::string_view name) const;

  SagaLog& log_;
  SagaOptions defaults_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<Saga>> sagas_;
};

}  // namespace keel::saga
