// The write side of event sourcing: an Aggregate is a consistency boundary (one bank account,
// one order) whose state is never stored, only derived from its events; a Repository loads one
// from its stream and saves the events its commands raised, with optimistic concurrency.
//
//   class Account : public cqrs::Aggregate {
//    public:
//     void deposit(std::int64_t amount) {
//       if (amount <= 0) throw cqrs::CommandRejected("a deposit must be positive");
//       raise("Deposited", {{"amount", amount}});
//     }
//    private:
//     void apply(std::string_view type, const boost::json::value& data) override {
//       if (type == "Deposited") balance_ += data.at("amount").as_int64();
//     }
//     std::int64_t balance_ = 0;
//   };
//
//   cqrs::Repository accounts(store);
//   auto account = accounts.load<Account>("account-42");
//   account.deposit(100);
//   accounts.save(account);  // throws WrongExpectedVersion if another writer saved first
//
// Snapshots: an aggregate that can write its state as JSON (snapshot()/restore()) is saved to a
// SnapshotStore every `snapshot_every` events, so loading a long-lived one reads the latest
// snapshot and only the events after it.
//
// Thread safety: an Aggregate is a value used by one thread; a Repository is safe to use from
// any number of threads (it only calls its stores, which are).
#pragma once

#include <boost/json/value.hpp>
#include <concepts>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "keel/cqrs/event_store.h"
#include "keel/cqrs/upcasting.h"

namespace keel::cqrs {

// A command broke a business rule ("insufficient funds"): thrown by an aggregate, returned to
// the caller by the CommandBus as a rejected CommandResult.
class CommandRejected : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Aggregate {
 public:
  virtual ~Aggregate() = default;

  // The stream the aggregate was loaded from (empty before Repository::load).
  const std::string& stream() const noexcept { return stream_; }
  // The stream's version when loaded (0: a new aggregate).
  std::uint64_t loaded_version() const noexcept { return loaded_version_; }
  // loaded_version() plus the events raised since.
  std::uint64_t version() const noexcept { return loaded_version_ + pending_.size(); }
  // Events raised and not saved yet, oldest first.
  const std::vector<NewEvent>& pending() const noexcept { return pending_; }

 protected:
  Aggregate() = default;
  Aggregate(const Aggregate&) = default;
  Aggregate& operator=(const Aggregate&) = default;
  Aggregate(Aggregate&&) = default;
  Aggregate& operator=(Aggregate&&) = default;

  // Records that `type` happened: applies it at once (so the next rule checked sees it) and
  // keeps it for Repository::save.
  void raise(std::string type, const boost::json::value& data);

  // Changes the state for one event, read from the store or just raised. Events are facts that
  // were accepted: apply() decides nothing and must not throw for a known type; it ignores types
  // it does not know (events added by later versions of the code).
  virtual void apply(std::string_view type, const boost::json::value& data) = 0;

  // The state as JSON, for a snapshot; nullopt (the default) when the aggregate takes none.
  virtual std::optional<boost::json::value> snapshot() const { return std::nullopt; }
  // Sets the state from what snapshot() returned.
  virtual void restore(const boost::json::value& state) { (void)state; }

 private:
  friend class Repository;
  std::string stream_;
  std::uint64_t loaded_version_ = 0;
  std::vector<NewEvent> pending_;
};

// A snapshot: an aggregate's state (JSON text) after the event at `version` of its stream.
struct Snapshot {
  std::uint64_t version = 0;
  std::string state;
};

// Where snapshots are kept. Thread safety: implementations are safe from any number of threads.
class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;
  // The latest snapshot of `stream`, if any.
  virtual std::optional<Snapshot> load(std::string_view stream) = 0;
  // Keeps `snapshot` as the latest of `stream` (replacing an older one).
  virtual void save(std::string_view stream, const Snapshot& snapshot) = 0;
};

class InMemorySnapshotStore final : public SnapshotStore {
 public:
  std::optional<Snapshot> load(std::string_view stream) override;
  void save(std::string_view stream, const Snapshot& snapshot) override;

 private:
  std::mutex mutex_;
  std::map<std::string, Snapshot, std::less<>> snapshots_;  // GUARDED_BY(mutex_)
};

struct RepositoryOptions {
  // Where snapshots are kept; nullptr: none are taken. Must outlive the repository.
  // Default: nullptr.
  SnapshotStore* snapshots = nullptr;
  // A snapshot is taken when a save moves the stream's version past a multiple of this.
  // REQUIRES: >= 1. Default: 100.
  std::uint64_t snapshot_every = 100;
  // Translate old events to their current shape before the aggregate applies them (see
  // upcasting.h); nullptr: events are applied as stored. Must outlive the repository.
  // Default: nullptr.
  const Upcasters* upcasters = nullptr;
};

// Counters since construction; exact under concurrency.
struct RepositoryMetrics {
  std::uint64_t loads = 0;
  std::uint64_t events_read = 0;     // events applied by loads (after any snapshot)
  std::uint64_t snapshots_read = 0;  // loads that started from a snapshot
  std::uint64_t snapshots_taken = 0;
  std::uint64_t snapshot_failures = 0;  // snapshots that could not be saved (logged)
  std::uint64_t saves = 0;              // saves that appended events
};

class Repository {
 public:
  // `store` (and options.snapshots) must outlive the repository. Throws std::invalid_argument
  // for snapshot_every == 0.
  explicit Repository(EventStore& store, RepositoryOptions options = {});

  // Rebuilds `aggregate` (freshly constructed) from `stream`: the latest snapshot if there is
  // one, then the events after it, each upcast (options.upcasters) before it is applied. A
  // stream without events gives a new aggregate at version 0. Throws std::invalid_argument for
  // an empty stream name, std::logic_error when `aggregate` was already loaded, UpcastFailed
  // when an upcaster fails.
  void load(std::string_view stream, Aggregate& aggregate);
  template <std::derived_from<Aggregate> A>
  A load(std::string_view stream) {
    A aggregate;
    load(stream, aggregate);
    return aggregate;
  }

  // Appends the aggregate's pending events at ExpectedVersion::exactly(loaded_version()), with
  // `metadata` on each, then counts them as loaded. Throws WrongExpectedVersion when another
  // writer saved first (reload and decide again), std::logic_error for an aggregate that was
  // never loaded. A snapshot that cannot be saved is logged and counted, not thrown: the events
  // are saved and the next load reads a little more.
  AppendResult save(Aggregate& aggregate, const std::string& metadata = {});

  RepositoryMetrics metrics() const;

 private:
  struct Counters;
  void take_snapshot(const Aggregate& aggregate);

  EventStore& store_;
  RepositoryOptions options_;
  std::shared_ptr<Counters> counters_;
};

}  // namespace keel::cqrs
