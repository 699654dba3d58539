// keel::saga::SagaLog: the durable record of every saga's state changes, written before the next
// action runs, so that a coordinator that dies mid-saga can be replaced by one that finishes it.
//
// The log is append-only per saga: started, then step and compensation events, then finished.
// A saga without its finished record is unfinished; one finished `failed` waits for a person.
//
// Claims: only one coordinator may drive a saga at a time. append(started) claims the new saga
// for this log object; recover() and resume() must try_claim() an existing saga first; finished
// and release() give the claim back. try_claim() fails while this log object holds the saga (a
// run in progress here) or another owner does. Appends are fenced: every record after started
// must come from the log object that holds the saga's current claim, otherwise append throws
// std::logic_error — a coordinator that lost its claim (a lapsed lease, a dropped connection)
// cannot write over the one that took the saga over. Durable logs fence with a claim number
// that each try_claim increments. How a claim is held is the implementation's: InMemorySagaLog keeps a set;
// SqliteSagaLog a lease (owner + expiry) renewed by each append; PostgresSagaLog a session
// advisory lock that the server drops when the coordinator's connection dies.
//
// Implementations: InMemorySagaLog (here; for tests and for sagas that need no durability),
// keel::sqlite::SqliteSagaLog (the embedded default) and keel::postgres::PostgresSagaLog (many
// coordinators). saga_log_conformance.h holds the tests every implementation passes.
//
// Thread safety: every implementation is safe to call from any number of threads.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/clock.h"
#include "keel/saga/saga.h"

namespace keel::saga {

enum class SagaEvent {
  started,
  step_started,
  step_completed,
  step_failed,
  compensation_started,
  compensation_completed,
  compensation_failed,
  finished,
};
std::string_view to_string(SagaEvent event) noexcept;
// Throws std::invalid_argument for a name that is not a SagaEvent.
SagaEvent saga_event_from_string(std::string_view name);
SagaStatus saga_status_from_string(std::string_view name);

struct SagaRecord {
  std::string saga_id = {};
  std::string saga_name = {};
  SagaEvent event = SagaEvent::started;
  int step = -1;                // index of the step, -1 for started and finished
  std::string step_name = {};   // for finished: the failed step, if any
  int attempt = 0;              // attempts made (step_completed/failed, compensation_*)
  std::string error = {};       // step_failed, compensation_failed, finished
  bool may_have_effect = false;           // step_failed: compensate this step too
  std::optional<SagaStatus> status = {};  // finished only
  Context context = {};                   // as it was at this change
  WallTime at = {};
};

class SagaLog {
 public:
  virtual ~SagaLog() = default;

  // Writes one record; durable when it returns. append(started) for an id already in the log
  // throws std::invalid_argument; any other record for an unknown saga, or for a saga this log
  // object does not hold (never claimed, released, or taken over), throws std::logic_error.
  // A record after `finished` (resume) makes the saga unfinished again until the next finished.
  // Engine failures throw keel::BackendError.
  virtual void append(const SagaRecord& record) = 0;
  // Every record of one saga in append order; empty for an unknown id.
  virtual std::vector<SagaRecord> history(std::string_view saga_id) = 0;
  // Ids of the sagas started and not finished, oldest first.
  virtual std::vector<std::string> unfinished() = 0;
  // Ids of the sagas that finished `failed`, oldest first.
  virtual std::vector<std::string> failed() = 0;
  // Takes the right to drive an existing saga: false when another owner holds it.
  virtual bool try_claim(std::string_view saga_id) = 0;
  // Gives it back (finished records release it too).
  virtual void release(std::string_view saga_id) = 0;
};

// In process memory: lost with the process. One owner: the log object itself.
class InMemorySagaLog final : public SagaLog {
 public:
  void append(const SagaRecord& record) override;
  std::vector<SagaRecord> history(std::string_view saga_id) override;
  std::vector<std::string> unfinished() override;
  std::vector<std::string> failed() override;
  bool try_claim(std::string_view saga_id) override;
  void release(std::string_view saga_id) override;

 private:
  struct Entry {
    std::uint64_t started_order = 0;
    std::vector<SagaRecord> records;
    std::optional<SagaStatus> status;
    bool claimed = false;
  };
  std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> sagas_;
  std::uint64_t next_order_ = 0;
};

// The state of one saga as its records tell it; what recovery starts from.
struct SagaState {
  std::string saga_id;
  std::string saga_name;
  Context context;  // the last one recorded
  struct Step {
    bool started = false;
    bool completed = false;
    bool failed = false;
    bool may_have_effect = false;  // failed with may_have_effect
    bool compensation_started = false;
    bool compensation_completed = false;
    bool compensation_failed = false;
    std::string name;  // as the log recorded it
    std::string error;
  };
  std::vector<Step> steps;  // indexed by step; sized to the highest index seen
  bool compensating = false;  // a compensation was started
  std::optional<SagaStatus> status;  // set when finished
  std::string failed_step;
  std::string error;
};
// Folds the records of one saga (as history() returns them) into its state. Throws
// std::invalid_argument for an empty history or one that does not start with `started`.
SagaState replay(const std::vector<SagaRecord>& records);

// The text form of a record's fields for SQL logs (context as JSON text).
std::string context_to_json(const Context& context);
// Throws std::invalid_argument when `text` is not a JSON object.
Context context_from_json(std::string_view text);

}  // namespace keel::saga
