#include "keel/saga/saga_log.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <stdexcept>
#include <utility>

#include "keel/core/encoding.h"

namespace keel::saga {

namespace {

constexpr std::array<std::string_view, 8> kEventNames = {
    "started",
    "step_started",
    "step_completed",
    "step_failed",
    "compensation_started",
    "compensation_completed",
    "compensation_failed",
    "finished",
};

}  // namespace

std::string_view to_string(SagaEvent event) noexcept {
  const auto index = static_cast<std::size_t>(event);
  return index < kEventNames.size() ? kEventNames[index] : "unknown";
}

SagaEvent saga_event_from_string(std::string_view name) {
  for (std::size_t i = 0; i < kEventNames.size(); ++i) {
    if (kEventNames[i] == name) return static_cast<SagaEvent>(i);
  }
  throw std::invalid_argument(
      fmt::format("saga log: {} is not a saga event", quote_for_message(name)));
}

SagaStatus saga_status_from_string(std::string_view name) {
  for (const SagaStatus status :
       {SagaStatus::completed, SagaStatus::compensated, SagaStatus::failed}) {
    if (to_string(status) == name) return status;
  }
  throw std::invalid_argument(
      fmt::format("saga log: {} is not a saga status", quote_for_message(name)));
}

std::string context_to_json(const Context& context) { return boost::json::serialize(context); }

Context context_from_json(std::string_view text) {
  boost::system::error_code error;
  boost::json::value value = boost::json::parse(text, error);
  if (error || !value.is_object()) {
    throw std::invalid_argument(fmt::format(
        "saga log: the context {} is not a JSON object{}", quote_for_message(text),
        error ? fmt::format(" ({})", error.message()) : std::string()));
  }
  return std::move(value.as_object());
}

SagaState replay(const std::vector<SagaRecord>& records) {
  if (records.empty()) throw std::invalid_argument("saga log: an empty history");
  if (records.front().event != SagaEvent::started) {
    throw std::invalid_argument(fmt::format("saga log: the history of {} does not begin with started",
                                            records.front().saga_id));
  }
  SagaState state;
  state.saga_id = records.front().saga_id;
  state.saga_name = records.front().saga_name;
  for (const SagaRecord& record : records) {
    state.context = record.context;
    // A record after finished is a resume: the saga is running again.
    if (record.event != SagaEvent::finished) state.status.reset();
    if (record.event == SagaEvent::finished) {
      state.status = record.status;
      state.failed_step = record.step_name;
      state.error = record.error;
      continue;
    }
    if (record.step < 0) continue;
    const auto index = static_cast<std::size_t>(record.step);
    if (state.steps.size() <= index) state.steps.resize(index + 1);
    SagaState::Step& step = state.steps[index];
    if (!record.step_name.empty()) step.name = record.step_name;
    switch (record.event) {
      case SagaEvent::step_started:
        // A new run of the step (forward recovery, resume). An earlier run whose outcome was
        // never logged, or that may have had an effect, may have left its effect: that stays
        // known, so that a clean failure of the new run still compensates the step.
        step.may_have_effect =
            step.may_have_effect || (step.started && !step.completed && !step.failed);
        step.started = true;
        step.failed = false;
        break;
      case SagaEvent::step_completed:
        step.completed = true;
        break;
      case SagaEvent::step_failed:
        step.failed = true;
        step.may_have_effect = step.may_have_effect || record.may_have_effect;
        step.error = record.error;
        state.failed_step = record.step_name;
        state.error = record.error;
        break;
      case SagaEvent::compensation_started:
        state.compensating = true;
        step.compensation_started = true;
        step.compensation_failed = false;
        break;
      case SagaEvent::compensation_completed:
        step.compensation_completed = true;
        break;
      case SagaEvent::compensation_failed:
        step.compensation_failed = true;
        step.error = record.error;
        break;
      case SagaEvent::started:
      case SagaEvent::finished:
        break;
    }
  }
  return state;
}

// ----------------------------------------------------------------------------------------------
// InMemorySagaLog

void InMemorySagaLog::append(const SagaRecord& record) {
  const std::lock_guard lock(mutex_);
  auto it = sagas_.find(record.saga_id);
  if (record.event == SagaEvent::started) {
    if (it != sagas_.end()) {
      throw std::invalid_argument(
          fmt::format("saga log: the saga id {} is already in the log", record.saga_id));
    }
    Entry entry;
    entry.started_order = next_order_++;
    entry.claimed = true;
    entry.records.push_back(record);
    sagas_.emplace(record.saga_id, std::move(entry));
    return;
  }
  if (it == sagas_.end()) {
    throw std::logic_error(fmt::format("saga log: no saga {} was started", record.saga_id));
  }
  if (!it->second.claimed) {
    throw std::logic_error(fmt::format(
        "saga log: saga {} is not held here (claim it before writing to it)", record.saga_id));
  }
  it->second.records.push_back(record);
  if (record.event == SagaEvent::finished) {
    it->second.status = record.status;
    it->second.claimed = false;
  } else {
    it->second.status.reset();  // running (again, after a resume)
  }
}

std::vector<SagaRecord> InMemorySagaLog::history(std::string_view saga_id) {
  const std::lock_guard lock(mutex_);
  const auto it = sagas_.find(saga_id);
  return it == sagas_.end() ? std::vector<SagaRecord>{} : it->second.records;
}

namespace {

template <class Map, class Pred>
std::vector<std::string> ids_where(const Map& sagas, Pred pred) {
  std::vector<std::pair<std::uint64_t, std::string>> found;
  for (const auto& [id, entry] : sagas) {
    if (pred(entry)) found.emplace_back(entry.started_order, id);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> ids;
  ids.reserve(found.size());
  for (auto& [order, id] : found) ids.push_back(std::move(id));
  return ids;
}

}  // namespace

std::vector<std::string> InMemorySagaLog::unfinished() {
  const std::lock_guard lock(mutex_);
  return ids_where(sagas_, [](const Entry& entry) { return !entry.status.has_value(); });
}

std::vector<std::string> InMemorySagaLog::failed() {
  const std::lock_guard lock(mutex_);
  return ids_where(sagas_,
                   [](const Entry& entry) { return entry.status == SagaStatus::failed; });
}

bool InMemorySagaLog::try_claim(std::string_view saga_id) {
  const std::lock_guard lock(mutex_);
  const auto it = sagas_.find(saga_id);
  if (it == sagas_.end() || it->second.claimed) return false;
  it->second.claimed = true;
  return true;
}

void InMemorySagaLog::release(std::string_view saga_id) {
  const std::lock_guard lock(mutex_);
  const auto it = sagas_.find(saga_id);
  if (it != sagas_.end()) it->second.claimed = false;
}

}  // namespace keel::saga
