// The state machine behind Saga::execute, SagaCoordinator::recover and resume: runs the steps
// forward and the compensations backward, writing every change to the log before the next
// action. One Runner drives one saga once, on the calling thread.
#pragma once

#include <exception>
#include <string>
#include <vector>

#include "keel/saga/saga.h"
#include "keel/saga/saga_log.h"

namespace keel::saga::internal {

class Runner {
 public:
  // A new run of `saga` (id already chosen).
  Runner(const Saga& saga, std::string saga_id, Context context);
  // A run that continues from what the log recorded.
  Runner(const Saga& saga, const SagaState& state);

  // New run: writes started, then runs forward (compensating on failure).
  SagaResult start();
  // Continues an unfinished saga per its recovery mode (see coordinator.h).
  SagaResult recover();
  // Drives a failed saga again: unfinished compensations, or the steps after the pivot.
  SagaResult resume();

 private:
  struct StepFlags {
    bool started = false;
    bool completed = false;
    bool failed = false;
    bool may_have_effect = false;
    bool compensation_completed = false;
    bool compensation_failed = false;
  };

  // Runs steps [from, n). Ends the saga (finished record) in every case.
  void run_forward(std::size_t from);
  // Compensates `order` (indexes, in the order given), then ends the saga.
  void run_backward(const std::vector<std::size_t>& order);
  // The steps to compensate, in reverse: those that started and may have had an effect.
  std::vector<std::size_t> compensation_order() const;
  bool past_pivot() const;
  std::size_t first_incomplete() const;
  void finish(SagaStatus status);

  // Writes a record (then publishes it on the bus, if any).
  void record(SagaEvent event, int step, int attempt = 0, std::string error = {},
              bool may_have_effect = false);
  void publish(const SagaRecord& record) const;

  // One attempt loop of an action or a compensation: returns the error of the last attempt, or
  // nullopt on success. Sets `timed_out` when an attempt overran the step's timeout.
  struct Outcome {
    bool ok = false;
    int attempts = 0;
    std::string error;
    bool timed_out = false;
  };
  Outcome attempt(std::size_t step, bool compensating);

  // Releases the claim when a run ends by an exception (not when it ends normally: the finished
  // record released it).
  class ReleaseOnError {
   public:
    explicit ReleaseOnError(Runner& runner) noexcept
        : runner_(runner), exceptions_(std::uncaught_exceptions()) {}
    ~ReleaseOnError();
    ReleaseOnError(const ReleaseOnError&) = delete;
    ReleaseOnError& operator=(const ReleaseOnError&) = delete;

   private:
    Runner& runner_;
    int exceptions_;
  };
  void release_quietly() noexcept;

  const Saga& saga_;
  const Clock& clock_;
  SagaResult result_;
  std::vector<StepFlags> flags_;
  bool compensating_ = false;
  bool started_ = false;   // the log holds this saga (claims to release on an error)
  bool finished_ = false;  // the finished record was written (and released the claim)
};

}  // namespace keel::saga::internal
