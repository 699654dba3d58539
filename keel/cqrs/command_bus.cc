#include "keel/cqrs/command_bus.h"

#include <fmt/format.h>

namespace keel::cqrs {

struct CommandBus::Counters {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> invalid{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> conflicts{0};
  std::atomic<std::uint64_t> retries{0};
};

CommandBus::CommandBus() : counters_(std::make_shared<Counters>()) {}

void CommandBus::add(std::type_index type, Entry entry) {
  if (entry.options.max_attempts < 1) {
    throw std::invalid_argument(fmt::format(
        "cqrs: CommandOptions::max_attempts must be >= 1, got {}", entry.options.max_attempts));
  }
  if (!handlers_.emplace(type, std::move(entry)).second) {
    throw std::invalid_argument(
        fmt::format("cqrs: a handler for {} is already registered", type.name()));
  }
}

const CommandBus::Entry& CommandBus::find(std::type_index type) const {
  const auto it = handlers_.find(type);
  if (it == handlers_.end()) {
    throw std::invalid_argument(
        fmt::format("cqrs: no handler is registered for commands of type {}", type.name()));
  }
  return it->second;
}

CommandResult CommandBus::run(const Entry& entry, const void* command) const {
  using Status = CommandResult::Status;
  if (entry.validate) {
    if (std::optional<std::string> error = entry.validate(command)) {
      counters_->invalid.fetch_add(1, std::memory_order_relaxed);
      return CommandResult{.status = Status::invalid, .reason = std::move(*error)};
    }
  }
  const int attempts = entry.options.retryable ? entry.options.max_attempts : 1;
  for (int attempt = 1;; ++attempt) {
    try {
      const AppendResult written = entry.run(command);
      counters_->accepted.fetch_add(1, std::memory_order_relaxed);
      return CommandResult{.status = Status::accepted, .written = written, .attempts = attempt};
    } catch (const CommandRejected& e) {
      counters_->rejected.fetch_add(1, std::memory_order_relaxed);
      return CommandResult{.status = Status::rejected, .reason = e.what(), .attempts = attempt};
    } catch (const WrongExpectedVersion& e) {
      if (attempt >= attempts) {
        counters_->conflicts.fetch_add(1, std::memory_order_relaxed);
        return CommandResult{.status = Status::conflict, .reason = e.what(), .attempts = attempt};
      }
      counters_->retries.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

CommandBusMetrics CommandBus::metrics() const {
  return CommandBusMetrics{
      .accepted = counters_->accepted.load(std::memory_order_relaxed),
      .invalid = counters_->invalid.load(std::memory_order_relaxed),
      .rejected = counters_->rejected.load(std::memory_order_relaxed),
      .conflicts = counters_->conflicts.load(std::memory_order_relaxed),
      .retries = counters_->retries.load(std::memory_order_relaxed),
  };
}

}  // namespace keel::cqrs
