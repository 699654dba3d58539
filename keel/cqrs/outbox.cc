#include "keel/cqrs/outbox.h"

#include <fmt/format.h>

#include <atomic>
#include <functional>
#include <string_view>
#include <utility>

namespace keel::cqrs {
namespace {

// A topic token: printable ASCII without whitespace, '.', '*', '#', '>' (see pubsub/topic.h).
std::string token(std::string_view text) {
  // A topic is at most 1,024 bytes: a long name keeps its first 200 bytes and a hash of the
  // whole, so that it stays distinct and the outbox never stalls on an unpublishable event.
  constexpr std::size_t kMaxToken = 240;
  if (text.size() > kMaxToken) {
    return fmt::format("{}~{:016x}", token(text.substr(0, 200)),
                       std::hash<std::string_view>{}(text));
  }
  std::string out(text.empty() ? "_" : text);
  for (char& c : out) {
    const bool printable = c > ' ' && c < 0x7f;
    if (!printable || c == '.' || c == '*' || c == '#' || c == '>') c = '_';
  }
  return out;
}

}  // namespace

std::string outbox_topic(const RecordedEvent& event) {
  const std::string_view stream = event.stream;
  return fmt::format("{}.{}", token(stream.substr(0, stream.find('-'))), token(event.type));
}

// The outbox as a projection whose "read model" is the bus: apply() publishes, then saves.
class Outbox::Publisher final : public Projection {
 public:
  Publisher(pubsub::EventBus& bus, CheckpointStore& checkpoints, std::string name)
      : bus_(bus), checkpoints_(checkpoints), name_(std::move(name)) {}

  std::uint64_t checkpoint() override { return checkpoints_.load(name_); }

  void apply(const RecordedEvent& event) override {
    pubsub::Headers headers{{"content-type", "application/json"},
                            {"x-event-id", event.id},
                            {"x-event-stream", event.stream},
                            {"x-event-version", std::to_string(event.version)},
                            {"x-event-position", std::to_string(event.position)},
                            {"x-event-type", event.type}};
    if (!event.metadata.empty()) headers.emplace_back("x-event-metadata", event.metadata);
    try {
      bus_.publish(outbox_topic(event), event.data, std::move(headers));
    } catch (const pubsub::PublishFailed&) {
      // Delivered to every other subscription; the full one was counted by the bus.
    } catch (...) {
      failures.fetch_add(1, std::memory_order_relaxed);
      throw;
    }
    published.fetch_add(1, std::memory_order_relaxed);
    checkpoints_.save(name_, event.position);  // after the publish: at least once
  }

  void reset() override { checkpoints_.save(name_, 0); }

  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> failures{0};

 private:
  pubsub::EventBus& bus_;
  CheckpointStore& checkpoints_;
  const std::string name_;
};

Outbox::Outbox(EventStore& store, pubsub::EventBus& bus, CheckpointStore& checkpoints,
               std::string name)
    : publisher_(std::make_unique<Publisher>(bus, checkpoints, std::move(name))),
      runner_(std::make_unique<ProjectionRunner>(store, *publisher_)) {}

Outbox::~Outbox() { runner_->stop(); }

void Outbox::start() { runner_->start(); }
void Outbox::stop() { runner_->stop(); }
bool Outbox::running() const { return runner_->running(); }
std::uint64_t Outbox::position() const { return runner_->position(); }

OutboxMetrics Outbox::metrics() const {
  return OutboxMetrics{.published = publisher_->published.load(std::memory_order_relaxed),
                       .failures = publisher_->failures.load(std::memory_order_relaxed)};
}

}  // namespace keel::cqrs
