#include "keel/saga/coordinator.h"

#include <fmt/format.h>

#include <stdexcept>
#include <utility>

#include "keel/core/encoding.h"
#include "keel/core/errors.h"
#include "keel/core/internal/log.h"
#include "keel/saga/internal/runner.h"

namespace keel::saga {

SagaCoordinator::SagaCoordinator(SagaLog& log, SagaOptions defaults)
    : log_(log), defaults_(std::move(defaults)) {
  defaults_.log = &log_;
}

void SagaCoordinator::define(std::string name, std::vector<SagaStep> steps) {
  define(std::move(name), std::move(steps), defaults_);
}

void SagaCoordinator::define(std::string name, std::vector<SagaStep> steps, SagaOptions options) {
  options.log = &log_;
  auto saga = std::make_unique<Saga>(name, std::move(steps), std::move(options));
  const std::lock_guard lock(mutex_);
  if (sagas_.contains(name)) {
    throw std::invalid_argument(
        fmt::format("SagaCoordinator: a saga named {} is already defined", name));
  }
  sagas_.emplace(std::move(name), std::move(saga));
}

const Saga& SagaCoordinator::find(std::string_view name) const {
  const std::lock_guard lock(mutex_);
  const auto it = sagas_.find(std::string(name));
  if (it == sagas_.end()) {
    throw std::invalid_argument(
        fmt::format("SagaCoordinator: no saga named {}", quote_for_message(name)));
  }
  return *it->second;  // definitions are never removed: the reference stays valid
}

SagaResult SagaCoordinator::execute(std::string_view name, Context context, std::string saga_id) {
  return find(name).execute(std::move(context), std::move(saga_id));
}

RecoveryReport SagaCoordinator::recover() {
  RecoveryReport report;
  for (const std::string& id : log_.unfinished()) {
    if (!log_.try_claim(id)) {
      report.skipped.push_back(id);
      continue;
    }
    try {
      // Read after claiming: what another coordinator wrote before letting go is included.
      const SagaState state = replay(log_.history(id));
      if (state.status) {  // finished meanwhile, by its previous holder
        log_.release(id);
        continue;
      }
      const Saga* saga = nullptr;
      try {
        saga = &find(state.saga_name);
      } catch (const std::invalid_argument&) {
        keel::internal::logger().error(
            "saga recovery: saga {} is a {}, which is not defined here; left in the log", id,
            quote_for_message(state.saga_name));
        report.unknown.push_back(id);
        log_.release(id);
        continue;
      }
      report.finished.push_back(internal::Runner(*saga, state).recover());
    } catch (const BackendError&) {
      log_.release(id);
      throw;  // the engine is failing: the next sagas would fail the same way
    } catch (const std::exception& e) {
      // This saga cannot be continued as defined (or its log does not parse): a person must
      // look; the others are still recovered.
      keel::internal::logger().error("saga recovery: saga {} left in the log: {}", id, e.what());
      report.invalid.push_back(id);
      log_.release(id);
    }
  }
  return report;
}

SagaResult SagaCoordinator::resume(std::string_view saga_id) {
  const std::vector<SagaRecord> before = log_.history(saga_id);
  if (before.empty()) {
    throw std::invalid_argument(
        fmt::format("SagaCoordinator: no saga {} in the log", quote_for_message(saga_id)));
  }
  const Saga& saga = find(before.front().saga_name);
  if (!log_.try_claim(saga_id)) {
    throw std::logic_error(fmt::format(
        "SagaCoordinator: saga {} is held by a coordinator", quote_for_message(saga_id)));
  }
  try {
    const SagaState state = replay(log_.history(saga_id));
    if (!state.status) return internal::Runner(saga, state).recover();
    if (*state.status != SagaStatus::failed) {
      throw std::logic_error(fmt::format("SagaCoordinator: saga {} already ended {}",
                                         quote_for_message(saga_id), to_string(*state.status)));
    }
    return internal::Runner(saga, state).resume();
  } catch (...) {
    log_.release(saga_id);
    throw;
  }
}

}  // namespace keel::saga
