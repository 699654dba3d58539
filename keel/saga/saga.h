// keel::saga::Saga: a transaction across services made of local steps, each with a compensation
// that semantically undoes it (Garcia-Molina and Salem, "Sagas", 1987). This is the orchestrated
// form: one coordinator runs the steps in order and, when one fails, runs the compensations of
// the completed steps in reverse.
//
//   Saga order_saga("order", {
//       {"reserve_inventory", reserve, release},
//       {"charge_payment",    charge,  refund},
//       {"send_confirmation", confirm, no_op},
//   });
//   SagaResult result = order_saga.execute({{"product_id", "A1"}, {"amount", 49.99}});
//
// Semantics:
// - Steps run in order; each sees the Context as the previous steps left it (a step records, for
//   example, its reservation id for its compensation to use).
// - Step k fails once its attempts (StepOptions::retry; one attempt by default) are used up.
//   The compensations of the completed steps then run in reverse, k-1 down to 1, and the result
//   is `compensated` with failed_step and error. The failed step's own compensation runs first
//   only when the step may have had an effect (StepOptions::compensate_on_failure, or an attempt
//   that overran its timeout).
// - A compensation that throws is retried (StepOptions::compensation_retry: 3 attempts, backoff
//   from 100 ms). If it still fails, the other compensations still run and the saga ends
//   `failed`, listing the compensations that did not finish: it needs a person (or
//   SagaCoordinator::resume once the cause is fixed).
// - A pivot step (StepOptions::pivot) is the point of no return: once it completes, the saga
//   only moves forward. A later step that fails is retried per its policy and, if it still
//   fails, the saga ends `failed` without compensating anything; resume() retries it.
// - Timeouts: C++ cannot stop a running function, so a step's timeout is measured, not imposed:
//   an attempt that returns after its deadline counts as a failure that may have had an effect.
//   An action should pass current_step()->deadline to its own I/O so that it returns in time.
//
// Durability: with SagaOptions::log every state change is written to the SagaLog (with the
// context) before the next action runs, so SagaCoordinator::recover can finish a saga whose
// process died. Compensations, and with forward recovery actions, may then run twice for one
// step: write them to be idempotent, keyed by current_step()->saga_id and the step name.
//
// Thread safety: a Saga is immutable after construction; execute() may run on many threads at
// once, each execution with its own context. Steps of one execution run on the calling thread.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/backoff.h"
#include "keel/core/clock.h"

namespace keel::pubsub {
class EventBus;
}

namespace keel::saga {

class SagaLog;

using Context = boost::json::object;           // shared by the steps, persisted with the saga
using Action = std::function<void(Context&)>;  // throws to fail the step
inline const Action no_op = [](Context&) {};
// Waits for a backoff delay. The default sleeps the thread; tests advance a ManualClock instead.
using Sleeper = std::function<void(Duration delay)>;

struct StepOptions {
  // Attempts of the action, the first included (BackoffPolicy::max_attempts). Default: one
  // attempt, no retry. Steps after a completed pivot use it too before the saga gives up.
  BackoffPolicy retry = {.max_attempts = 1};
  // Attempts of the compensation. Default: 3 attempts, waiting 100 ms then 200 ms (full jitter).
  BackoffPolicy compensation_retry = {.initial = std::chrono::milliseconds(100), .max_attempts = 3};
  // Each attempt's budget, measured on the saga's clock; nullopt = none.
  std::optional<Duration> timeout = std::nullopt;
  // The point of no return: after it completes the saga only moves forward.
  bool pivot = false;
  // The action may have had its effect even when it threw (e.g. a payment call whose reply was
  // lost): when the step finally fails, its own compensation runs first.
  bool compensate_on_failure = false;
};

struct SagaStep {
  std::string name;
  Action action;
  Action compensation;
  StepOptions options = {};
};

enum class SagaStatus {
  completed,    // every step completed
  compensated,  // a step failed and every completed step was compensated
  failed,       // a compensation could not finish, or a step after the pivot could not: a person
                // must look (the saga stays in the log as failed)
};
std::string_view to_string(SagaStatus status) noexcept;

struct SagaResult {
  std::string saga_id;
  SagaStatus status = SagaStatus::completed;
  std::string failed_step;  // the step whose failure ended the forward run ("" when completed)
  std::string error;        // what it threw
  std::vector<std::string> completed_steps;    // in order
  std::vector<std::string> compensated_steps;  // in the order they were compensated
  // Compensations that could not finish, and after a pivot the step that could not complete:
  // what a person has to resolve when status is failed.
  std::vector<std::string> unfinished_steps;
  Context context;
};

// How recover() finishes a saga it finds unfinished in the log.
enum class Recovery {
  // Compensate every step that started, in reverse, since the effect of the step in flight is
  // unknown. A saga past its pivot always recovers forward.
  backward,
  // Run again, from the step that was in flight, every step that did not complete.
  forward,
};

struct SagaOptions {
  // Where each state change is written before the next action runs (not owned; must outlive the
  // Saga). nullptr: nothing is written and a crash loses the saga.
  SagaLog* log = nullptr;
  // When set, each state change is published as saga.<name>.<event> (not owned).
  pubsub::EventBus* bus = nullptr;
  Recovery recovery = Recovery::backward;
  const Clock* clock = nullptr;  // nullptr = default_clock()
  Sleeper sleeper = {};          // empty = std::this_thread::sleep_for
  Backoff::RandomSource random = {};  // jitter; empty = a per-execution generator
};

// What the running step can learn about itself (for idempotency keys and deadlines).
struct StepInfo {
  std::string_view saga_id;
  std::string_view saga_name;
  std::string_view step;
  int attempt = 1;                        // 1 for the first attempt
  bool compensating = false;              // running the compensation
  std::optional<TimePoint> deadline = {}; // from StepOptions::timeout
};
// The step running on this thread, or nullptr outside of a step.
const StepInfo* current_step() noexcept;

class Saga {
 public:
  // Throws std::invalid_argument for no steps, an empty or duplicate step name, an empty action
  // or compensation (use no_op), an invalid retry policy, a non-positive timeout, or a saga name
  // that is empty or not one topic token ([!-~] without '.', '*', '#', '>').
  Saga(std::string name, std::vector<SagaStep> steps, SagaOptions options = {});

  // Runs the saga to its end and returns how it ended. `saga_id` names the run in the log and in
  // events (a random id when empty); an id already in the log throws std::invalid_argument.
  // Throws what the log throws when a state change cannot be written (the saga then stops where
  // it is, and recover() finishes it).
  SagaResult execute(Context context = {}, std::string saga_id = {}) const;

  const std::string& name() const noexcept { return name_; }
  const std::vector<SagaStep>& steps() const noexcept { return steps_; }
  const SagaOptions& options() const noexcept { return options_; }

 private:
  friend class SagaCoordinator;
  std::string name_;
  std::vector<SagaStep> steps_;
  SagaOptions options_;
};

// A fresh random saga id: 32 lower-case hex digits.
std::string new_saga_id();

}  // namespace keel::saga
