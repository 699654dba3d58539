// The read side of CQRS: a Projection turns the event log into a read model shaped for the
// queries that read it (a balance per account, an activity feed per day), pre-joined, so a query
// is a lookup. A ProjectionRunner keeps it up to date with a catch-up subscription, and can
// rebuild it from position 0 (a new read model, a bug fixed in the projection).
//
// The checkpoint — the position of the last event applied — is stored next to the read model
// and changed with it (in one transaction when the read model is in a database). A projection
// restarted after a crash resumes from its checkpoint: no event is applied twice or skipped.
//
// Consistency: the read model lags the write model. With keel's stores, live events are
// delivered on the appending thread before append() returns, so a projection running in the
// same process has applied a command's events when the command returns; another process sees
// them later (eventual consistency). A caller that must read its own write compares the
// AppendResult::position it got with ProjectionRunner::position().
//
// Thread safety: a Projection's apply() is called one event at a time (possibly from different
// threads, one after another); its queries may run concurrently and must lock what apply()
// changes. ProjectionRunner is safe from any number of threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "keel/core/subscription.h"
#include "keel/cqrs/event_store.h"
#include "keel/cqrs/upcasting.h"

namespace keel::cqrs {

class Projection {
 public:
  virtual ~Projection() = default;
  // The position of the last event applied (0: none), as stored with the read model.
  virtual std::uint64_t checkpoint() = 0;
  // Applies `event` to the read model and stores event.position as the checkpoint, together.
  // A throw stops the runner with the checkpoint unchanged (see ProjectionRunner).
  virtual void apply(const RecordedEvent& event) = 0;
  // Empties the read model and sets the checkpoint to 0.
  virtual void reset() = 0;
};

struct ProjectionMetrics {
  std::uint64_t applied = 0;   // events applied
  std::uint64_t failures = 0;  // apply() calls that threw (each stopped the runner)
  std::uint64_t rebuilds = 0;
};

struct ProjectionRunnerOptions {
  // Translate old events to their current shape before the projection applies them (see
  // upcasting.h); nullptr: events are applied as stored. Must outlive the runner.
  // Default: nullptr.
  const Upcasters* upcasters = nullptr;
};

class ProjectionRunner {
 public:
  // `store` and `projection` (and options.upcasters) must outlive the runner. Does not start
  // it.
  ProjectionRunner(EventStore& store, Projection& projection, ProjectionRunnerOptions options = {});
  // Stops.
  ~ProjectionRunner();
  ProjectionRunner(const ProjectionRunner&) = delete;
  ProjectionRunner& operator=(const ProjectionRunner&) = delete;

  // Subscribes after the projection's checkpoint: applies the events stored since on this
  // thread, then each live event as it is appended, each upcast first. No-op while running.
  // After apply() (or an upcaster) threw, start() resumes from the checkpoint (retrying the
  // event that failed).
  void start();
  // Stops applying events; once it returns apply() is not running and will not be called.
  void stop();
  // stop(), reset(), start(): the whole log is applied again, on this thread.
  void rebuild();

  // Whether events are being applied (false before start(), after stop() or a failure).
  bool running() const;
  // The position of the last event applied through this runner (or the checkpoint at start).
  std::uint64_t position() const;
  ProjectionMetrics metrics() const;

 private:
  struct State;
  void start_locked();
  void stop_locked();

  EventStore& store_;
  Projection& projection_;
  ProjectionRunnerOptions options_;
  std::shared_ptr<State> state_;
  std::mutex mutex_;           // serialises start/stop/rebuild
  Subscription subscription_;  // GUARDED_BY(mutex_)
};

// A checkpoint kept apart from any read model, for consumers whose effect is outside (the
// outbox publishing to a bus). Thread safety: implementations are safe from any thread.
class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;
  // The position saved under `name`, 0 when none.
  virtual std::uint64_t load(std::string_view name) = 0;
  virtual void save(std::string_view name, std::uint64_t position) = 0;
};

class InMemoryCheckpointStore final : public CheckpointStore {
 public:
  std::uint64_t load(std::string_view name) override;
  void save(std::string_view name, std::uint64_t position) override;

 private:
  std::mutex mutex_;
  std::map<std::string, std::uint64_t, std::less<>> positions_;  // GUARDED_BY(mutex_)
};

}  // namespace keel::cqrs
