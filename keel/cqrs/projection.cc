#include "keel/cqrs/projection.h"

#include <exception>

namespace keel::cqrs {

struct ProjectionRunner::State {
  std::atomic<bool> running{false};
  std::atomic<std::uint64_t> position{0};
  std::atomic<std::uint64_t> applied{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> rebuilds{0};
};

ProjectionRunner::ProjectionRunner(EventStore& store, Projection& projection,
                                   ProjectionRunnerOptions options)
    : store_(store),
      projection_(projection),
      options_(options),
      state_(std::make_shared<State>()) {}

ProjectionRunner::~ProjectionRunner() { stop(); }

void ProjectionRunner::start() {
  std::lock_guard lock(mutex_);
  start_locked();
}

void ProjectionRunner::start_locked() {
  if (state_->running) return;
  subscription_.unsubscribe();  // the one a failure ended, if any
  const std::uint64_t checkpoint = projection_.checkpoint();
  state_->position = checkpoint;
  state_->running = true;
  subscription_ = store_.subscribe_all(
      checkpoint, [state = state_, &projection = projection_,
                   upcasters = options_.upcasters](const RecordedEvent& event) {
        try {
          with_upcast(upcasters, event, [&](const RecordedEvent& e) { projection.apply(e); });
        } catch (...) {
          state->failures.fetch_add(1, std::memory_order_relaxed);
          state->running = false;
          throw;  // ends the subscription, logged by the store: the checkpoint stays before it
        }
        state->position = event.position;
        state->applied.fetch_add(1, std::memory_order_relaxed);
      });
}

void ProjectionRunner::stop() {
  std::lock_guard lock(mutex_);
  stop_locked();
}

void ProjectionRunner::stop_locked() {
  subscription_.unsubscribe();
  state_->running = false;
}

void ProjectionRunner::rebuild() {
  // One lock for the whole rebuild: a start() from another thread cannot slip in between the
  // stop and the reset and subscribe from the old checkpoint.
  std::lock_guard lock(mutex_);
  stop_locked();
  projection_.reset();
  state_->rebuilds.fetch_add(1, std::memory_order_relaxed);
  start_locked();
}

bool ProjectionRunner::running() const { return state_->running; }

std::uint64_t ProjectionRunner::position() const { return state_->position; }

ProjectionMetrics ProjectionRunner::metrics() const {
  return ProjectionMetrics{.applied = state_->applied.load(std::memory_order_relaxed),
                           .failures = state_->failures.load(std::memory_order_relaxed),
                           .rebuilds = state_->rebuilds.load(std::memory_order_relaxed)};
}

std::uint64_t InMemoryCheckpointStore::load(std::string_view name) {
  std::lock_guard lock(mutex_);
  const auto it = positions_.find(name);
  return it == positions_.end() ? 0 : it->second;
}

void InMemoryCheckpointStore::save(std::string_view name, std::uint64_t position) {
  std::lock_guard lock(mutex_);
  positions_.insert_or_assign(std::string(name), position);
}

}  // namespace keel::cqrs
