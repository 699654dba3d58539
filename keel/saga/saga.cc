#include "keel/saga/saga.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json/value.hpp>
#include <exception>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#include "keel/core/encoding.h"
#include "keel/core/internal/log.h"
#include "keel/pubsub/event_bus.h"
#include "keel/saga/internal/runner.h"
#include "keel/saga/saga_log.h"

namespace keel::saga {

namespace {

thread_local const StepInfo* t_current_step = nullptr;

// Makes `info` the current step for the life of the scope (nesting restores the outer one).
class CurrentStep {
 public:
  explicit CurrentStep(const StepInfo& info) noexcept : previous_(t_current_step) {
    t_current_step = &info;
  }
  ~CurrentStep() { t_current_step = previous_; }
  CurrentStep(const CurrentStep&) = delete;
  CurrentStep& operator=(const CurrentStep&) = delete;

 private:
  const StepInfo* previous_;
};

bool is_token_char(char c) noexcept {
  return c > ' ' && c <= '~' && c != '.' && c != '*' && c != '#' && c != '>';
}

void validate_saga(const std::string& name, const std::vector<SagaStep>& steps) {
  if (name.empty()) throw std::invalid_argument("Saga: the saga name is empty");
  if (!std::all_of(name.begin(), name.end(), is_token_char)) {
    throw std::invalid_argument(fmt::format(
        "Saga: the name {} is not one topic token (printable ASCII without whitespace, '.', '*', "
        "'#', '>'); it names the saga's events saga.<name>.<event>",
        quote_for_message(name)));
  }
  if (steps.empty()) throw std::invalid_argument(fmt::format("Saga {}: no steps", name));
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const SagaStep& step = steps[i];
    if (step.name.empty()) {
      throw std::invalid_argument(fmt::format("Saga {}: step {} has an empty name", name, i + 1));
    }
    if (!names.insert(step.name).second) {
      throw std::invalid_argument(fmt::format("Saga {}: two steps are named {}", name,
                                              quote_for_message(step.name)));
    }
    if (!step.action) {
      throw std::invalid_argument(
          fmt::format("Saga {}: step {} has no action", name, quote_for_message(step.name)));
    }
    if (!step.compensation) {
      throw std::invalid_argument(fmt::format(
          "Saga {}: step {} has no compensation (use keel::saga::no_op for a step with nothing "
          "to undo)",
          name, quote_for_message(step.name)));
    }
    try {
      step.options.retry.validate();
      step.options.compensation_retry.validate();
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(
          fmt::format("Saga {}: step {}: {}", name, quote_for_message(step.name), e.what()));
    }
    if (step.options.timeout && *step.options.timeout <= Duration::zero()) {
      throw std::invalid_argument(fmt::format("Saga {}: step {}: the timeout must be positive",
                                              name, quote_for_message(step.name)));
    }
  }
}

std::string describe_error(const std::exception_ptr& error) {
  return keel::internal::describe(error);
}

}  // namespace

std::string_view to_string(SagaStatus status) noexcept {
  switch (status) {
    case SagaStatus::completed:
      return "completed";
    case SagaStatus::compensated:
      return "compensated";
    case SagaStatus::failed:
      return "failed";
  }
  return "unknown";
}

const StepInfo* current_step() noexcept { return t_current_step; }

std::string new_saga_id() {
  thread_local std::mt19937_64 generator{[] {
    std::random_device device;
    return (std::uint64_t{device()} << 32) ^ device();
  }()};
  return fmt::format("{:016x}{:016x}", generator(), generator());
}

Saga::Saga(std::string name, std::vector<SagaStep> steps, SagaOptions options)
    : name_(std::move(name)), steps_(std::move(steps)), options_(std::move(options)) {
  validate_saga(name_, steps_);
}

SagaResult Saga::execute(Context context, std::string saga_id) const {
  if (saga_id.empty()) saga_id = new_saga_id();
  return internal::Runner(*this, std::move(saga_id), std::move(context)).start();
}

// ----------------------------------------------------------------------------------------------
// Runner

namespace internal {

Runner::Runner(const Saga& saga, std::string saga_id, Context context)
    : saga_(saga),
      clock_(saga.options().clock != nullptr ? *saga.options().clock : default_clock()),
      flags_(saga.steps().size()) {
  result_.saga_id = std::move(saga_id);
  result_.context = std::move(context);
}

Runner::Runner(const Saga& saga, const SagaState& state)
    : saga_(saga),
      clock_(saga.options().clock != nullptr ? *saga.options().clock : default_clock()),
      flags_(saga.steps().size()) {
  if (state.steps.size() > saga.steps().size()) {
    throw std::invalid_argument(fmt::format(
        "saga {} ({}): the log names step {} but the definition has {} steps", state.saga_id,
        saga.name(), state.steps.size(), saga.steps().size()));
  }
  for (std::size_t i = 0; i < state.steps.size(); ++i) {
    if (!state.steps[i].name.empty() && state.steps[i].name != saga.steps()[i].name) {
      throw std::invalid_argument(fmt::format(
          "saga {} ({}): the log names step {} {} but the definition calls it {}", state.saga_id,
          saga.name(), i + 1, quote_for_message(state.steps[i].name),
          quote_for_message(saga.steps()[i].name)));
    }
  }
  result_.saga_id = state.saga_id;
  result_.context = state.context;
  result_.failed_step = state.failed_step;
  result_.error = state.error;
  compensating_ = state.compensating;
  started_ = true;
  for (std::size_t i = 0; i < state.steps.size(); ++i) {
    const SagaState::Step& logged = state.steps[i];
    StepFlags& flags = flags_[i];
    flags.started = logged.started;
    flags.completed = logged.completed;
    flags.failed = logged.failed;
    flags.may_have_effect = logged.may_have_effect;
    flags.compensation_completed = logged.compensation_completed;
    flags.compensation_failed = logged.compensation_failed && !logged.compensation_completed;
    if (logged.completed) result_.completed_steps.push_back(saga.steps()[i].name);
  }
  for (std::size_t i = flags_.size(); i-- > 0;) {
    if (flags_[i].compensation_completed) {
      result_.compensated_steps.push_back(saga.steps()[i].name);
    }
  }
}

SagaResult Runner::start() {
  record(SagaEvent::started, -1);
  started_ = true;
  const ReleaseOnError guard(*this);
  run_forward(0);
  return std::move(result_);
}

Runner::ReleaseOnError::~ReleaseOnError() {
  // Unwinding: whatever threw (the log, the sleeper, an allocation), the saga stays unfinished
  // in the log; let go of it so that recover() can finish it.
  if (std::uncaught_exceptions() > exceptions_) runner_.release_quietly();
}

void Runner::release_quietly() noexcept {
  SagaLog* log = saga_.options().log;
  if (log == nullptr || !started_ || finished_) return;
  try {
    log->release(result_.saga_id);
  } catch (...) {
    keel::internal::logger().warn("saga {} ({}): could not release its claim: {}",
                                  result_.saga_id, saga_.name(),
                                  describe_error(std::current_exception()));
  }
}

bool Runner::past_pivot() const {
  for (std::size_t i = 0; i < flags_.size(); ++i) {
    if (saga_.steps()[i].options.pivot && flags_[i].completed) return true;
  }
  return false;
}

std::size_t Runner::first_incomplete() const {
  std::size_t i = 0;
  while (i < flags_.size() && flags_[i].completed) ++i;
  return i;
}

std::vector<std::size_t> Runner::compensation_order() const {
  std::vector<std::size_t> order;
  for (std::size_t i = flags_.size(); i-- > 0;) {
    const StepFlags& flags = flags_[i];
    if (!flags.started || flags.compensation_completed) continue;
    // A step that failed, knowing it had no effect, has nothing to undo.
    if (flags.failed && !flags.completed && !flags.may_have_effect) continue;
    order.push_back(i);
  }
  return order;
}

SagaResult Runner::recover() {
  const ReleaseOnError guard(*this);
  const std::size_t next = first_incomplete();
  const bool failed_before_pivot = !past_pivot() && std::any_of(
      flags_.begin(), flags_.end(), [](const StepFlags& f) { return f.failed && !f.completed; });
  if (compensating_ || failed_before_pivot) {
    // Compensation had begun, or a step had failed for good before the pivot (the decision to
    // compensate was logged): finish going backward, whatever the recovery mode.
    run_backward(compensation_order());
  } else if (next == flags_.size()) {
    // Every step completed; only the finished record is missing.
    finish(SagaStatus::completed);
  } else if (past_pivot() || saga_.options().recovery == Recovery::forward) {
    run_forward(next);
  } else {
    if (result_.failed_step.empty()) {
      result_.failed_step = saga_.steps()[next].name;
      result_.error = flags_[next].started
                          ? "the coordinator stopped while this step was running"
                          : "the coordinator stopped before this step";
    }
    run_backward(compensation_order());
  }
  return std::move(result_);
}

SagaResult Runner::resume() {
  const ReleaseOnError guard(*this);
  result_.unfinished_steps.clear();
  if (compensating_) {
    run_backward(compensation_order());
  } else {
    run_forward(first_incomplete());
  }
  return std::move(result_);
}

void Runner::run_forward(std::size_t from) {
  const auto& steps = saga_.steps();
  for (std::size_t i = from; i < steps.size(); ++i) {
    const int index = static_cast<int>(i);
    record(SagaEvent::step_started, index);
    // An earlier run of this step (before a crash) whose outcome is unknown may have had its
    // effect: that stays true whatever this run does (replay() folds the log the same way).
    const bool earlier_effect =
        flags_[i].may_have_effect || (flags_[i].started && !flags_[i].completed && !flags_[i].failed);
    flags_[i].started = true;
    flags_[i].failed = false;
    flags_[i].may_have_effect = earlier_effect;
    const Outcome outcome = attempt(i, /*compensating=*/false);
    if (outcome.ok) {
      record(SagaEvent::step_completed, index, outcome.attempts);
      flags_[i].completed = true;
      result_.completed_steps.push_back(steps[i].name);
      continue;
    }
    const bool may_have_effect =
        earlier_effect || steps[i].options.compensate_on_failure || outcome.timed_out;
    record(SagaEvent::step_failed, index, outcome.attempts, outcome.error, may_have_effect);
    flags_[i].failed = true;
    flags_[i].may_have_effect = may_have_effect;
    result_.failed_step = steps[i].name;
    result_.error = outcome.error;
    if (past_pivot()) {
      // Past the point of no return: nothing is undone; a person (or resume) must finish it.
      result_.unfinished_steps.push_back(steps[i].name);
      finish(SagaStatus::failed);
    } else {
      run_backward(compensation_order());
    }
    return;
  }
  result_.failed_step.clear();
  result_.error.clear();
  finish(SagaStatus::completed);
}

void Runner::run_backward(const std::vector<std::size_t>& order) {
  compensating_ = true;
  bool all_done = true;
  for (const std::size_t i : order) {
    const int index = static_cast<int>(i);
    record(SagaEvent::compensation_started, index);
    const Outcome outcome = attempt(i, /*compensating=*/true);
    if (outcome.ok) {
      record(SagaEvent::compensation_completed, index, outcome.attempts);
      flags_[i].compensation_completed = true;
      flags_[i].compensation_failed = false;
      result_.compensated_steps.push_back(saga_.steps()[i].name);
    } else {
      record(SagaEvent::compensation_failed, index, outcome.attempts, outcome.error);
      flags_[i].compensation_failed = true;
      result_.unfinished_steps.push_back(saga_.steps()[i].name);
      all_done = false;
      keel::internal::logger().error(
          "saga {} ({}): the compensation of step {} failed after {} attempts: {}",
          result_.saga_id, saga_.name(), saga_.steps()[i].name, outcome.attempts, outcome.error);
    }
  }
  finish(all_done ? SagaStatus::compensated : SagaStatus::failed);
}

void Runner::finish(SagaStatus status) {
  result_.status = status;
  record(SagaEvent::finished, -1);
}

Runner::Outcome Runner::attempt(std::size_t step, bool compensating) {
  const SagaStep& definition = saga_.steps()[step];
  const SagaOptions& options = saga_.options();
  Backoff backoff(compensating ? definition.options.compensation_retry : definition.options.retry,
                  options.random);
  Outcome outcome;
  StepInfo info{.saga_id = result_.saga_id,
                .saga_name = saga_.name(),
                .step = definition.name,
                .compensating = compensating};
  for (;;) {
    ++outcome.attempts;
    info.attempt = outcome.attempts;
    const TimePoint began = clock_.now();
    info.deadline = definition.options.timeout
                        ? std::optional<TimePoint>(began + *definition.options.timeout)
                        : std::nullopt;
    std::exception_ptr error;
    {
      const CurrentStep current(info);
      try {
        (compensating ? definition.compensation : definition.action)(result_.context);
      } catch (...) {
        error = std::current_exception();
      }
    }
    const bool overran = info.deadline && clock_.now() > *info.deadline;
    if (!error && !overran) {
      outcome.ok = true;
      return outcome;
    }
    if (overran) {
      outcome.timed_out = true;
      outcome.error = fmt::format(
          "timed out: the attempt took {} ms, over its {} ms budget",
          std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now() - began).count(),
          std::chrono::duration_cast<std::chrono::milliseconds>(*definition.options.timeout)
              .count());
      if (error) outcome.error += fmt::format(" (and threw: {})", describe_error(error));
    } else {
      outcome.error = describe_error(error);
    }
    const std::optional<Duration> delay = backoff.next();
    if (!delay) return outcome;
    keel::internal::logger().debug("saga {} ({}): {} of step {} failed (attempt {}): {}",
                                   result_.saga_id, saga_.name(),
                                   compensating ? "the compensation" : "the action",
                                   definition.name, outcome.attempts, outcome.error);
    if (options.sleeper) {
      options.sleeper(*delay);
    } else {
      std::this_thread::sleep_for(*delay);
    }
  }
}

void Runner::record(SagaEvent event, int step, int attempt, std::string error,
                    bool may_have_effect) {
  SagaRecord record;
  record.saga_id = result_.saga_id;
  record.saga_name = saga_.name();
  record.event = event;
  record.step = step;
  if (step >= 0) record.step_name = saga_.steps()[static_cast<std::size_t>(step)].name;
  record.attempt = attempt;
  record.error = std::move(error);
  record.may_have_effect = may_have_effect;
  if (event == SagaEvent::finished) {
    record.status = result_.status;
    record.step_name = result_.failed_step;
    record.error = result_.error;
  }
  record.context = result_.context;
  record.at = clock_.wall_now();
  // If the append throws, the saga stops here, unfinished in the log (ReleaseOnError lets go of
  // it; a new saga whose started record failed was never claimed).
  if (SagaLog* log = saga_.options().log) log->append(record);
  if (event == SagaEvent::finished) finished_ = true;
  publish(record);
}

void Runner::publish(const SagaRecord& record) const {
  pubsub::EventBus* bus = saga_.options().bus;
  if (bus == nullptr) return;
  const std::string_view event = record.event == SagaEvent::finished
                                     ? to_string(*record.status)
                                     : to_string(record.event);
  boost::json::object payload{{"saga_id", record.saga_id},
                              {"saga", record.saga_name},
                              {"event", event}};
  if (!record.step_name.empty()) payload["step"] = record.step_name;
  if (record.attempt > 0) payload["attempts"] = record.attempt;
  if (!record.error.empty()) payload["error"] = record.error;
  if (record.status) payload["status"] = to_string(*record.status);
  try {
    bus->publish_json(fmt::format("saga.{}.{}", record.saga_name, event), payload);
  } catch (...) {
    // The log holds the truth; a bus that refuses an event must not stop the saga.
    keel::internal::logger().warn("saga {} ({}): could not publish {}: {}", record.saga_id,
                                  record.saga_name, event,
                                  describe_error(std::current_exception()));
  }
}

}  // namespace internal
}  // namespace keel::saga
