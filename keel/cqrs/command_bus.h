// keel::cqrs::CommandBus: the entry point of the write side. A command ("deposit 100 into account
// 42") is a request that may be refused; the bus finds its handler by the command's type, checks
// it, runs it, and returns what happened as a value:
//
//   CommandBus commands;
//   commands.handle<Deposit>(
//       [&](const Deposit& c) {
//         auto account = accounts.load<Account>(c.account);
//         account.deposit(c.amount);         // may throw CommandRejected (a business rule)
//         return accounts.save(account);     // may throw WrongExpectedVersion (a race)
//       },
//       {.retryable = true},
//       [](const Deposit& c) -> std::optional<std::string> {
//         if (c.account.empty()) return "account is required";
//         return std::nullopt;
//       });
//   const CommandResult result = commands.dispatch(Deposit{"account-42", 100});
//
// The steps, in order: validation (shape of the input, no state read) → the handler (loads the
// aggregate, whose methods check the business rules against its state, and saves). A handler
// declared retryable is run again when the save loses a race (WrongExpectedVersion): it reloads
// the aggregate and decides again on the new state — that is optimistic concurrency. Outcomes:
// accepted, invalid (validation), rejected (CommandRejected), conflict (still losing after
// max_attempts, or not retryable). Any other exception (a BackendError) passes through.
//
// Thread safety: register every handler before dispatching; dispatch() is then safe from any
// number of threads (handlers run on the calling thread).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <typeindex>
#include <unordered_map>

#include "keel/cqrs/aggregate.h"
#include "keel/cqrs/event_store.h"

namespace keel::cqrs {

struct CommandOptions {
  // Runs the handler again when it throws WrongExpectedVersion. Declare it only for handlers
  // that read the state they decide on from the store on every run. Default: false.
  bool retryable = false;
  // Runs in all, the first included, for a retryable handler. REQUIRES: >= 1. Default: 3.
  int max_attempts = 3;
};

struct CommandResult {
  enum class Status { accepted, invalid, rejected, conflict };
  Status status = Status::accepted;
  // Why the command was not accepted (the validation error, the rule, the conflict).
  std::string reason = {};
  // What the handler returned (for an accepted command): the last event written.
  AppendResult written = {};
  // Runs of the handler (0 for an invalid command).
  int attempts = 0;

  bool accepted() const noexcept { return status == Status::accepted; }
};

// Counters since construction; exact under concurrency.
struct CommandBusMetrics {
  std::uint64_t accepted = 0;
  std::uint64_t invalid = 0;
  std::uint64_t rejected = 0;
  std::uint64_t conflicts = 0;  // commands that ended in a conflict
  std::uint64_t retries = 0;    // extra runs after a WrongExpectedVersion
};

class CommandBus {
 public:
  template <class C>
  using Handler = std::function<AppendResult(const C&)>;
  // Returns an error message for an invalid command, nullopt for a valid one.
  template <class C>
  using Validator = std::function<std::optional<std::string>(const C&)>;

  CommandBus();

  // Registers the handler of commands of type C. Throws std::invalid_argument for an empty
  // handler, invalid options, or a type that already has one.
  template <class C>
  void handle(Handler<C> handler, CommandOptions options = {}, Validator<C> validate = {}) {
    if (!handler) throw std::invalid_argument("cqrs: CommandBus::handle with an empty handler");
    add(typeid(C),
        Entry{
            .run = [h = std::move(handler)](const void* c) { return h(*static_cast<const C*>(c)); },
            .validate = validate ? ErasedValidator([v = std::move(validate)](const void* c) {
              return v(*static_cast<const C*>(c));
            })
                                 : ErasedValidator(),
            .options = options});
  }

  // Runs the command through its handler. Throws std::invalid_argument when no handler is
  // registered for C; exceptions other than CommandRejected and WrongExpectedVersion pass
  // through.
  template <class C>
  CommandResult dispatch(const C& command) const {
    return run(find(typeid(C)), &command);
  }

  CommandBusMetrics metrics() const;

 private:
  using ErasedValidator = std::function<std::optional<std::string>(const void*)>;
  struct Entry {
    std::function<AppendResult(const void*)> run;
    ErasedValidator validate;
    CommandOptions options;
  };
  struct Counters;

  void add(std::type_index type, Entry entry);
  const Entry& find(std::type_index type) const;
  CommandResult run(const Entry& entry, const void* command) const;

  std::unordered_map<std::type_index, Entry> handlers_;
  std::shared_ptr<Counters> counters_;
};

}  // namespace keel::cqrs
