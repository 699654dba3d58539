// Durable click analytics: the CQRS read side of the shortener. Clicks are events, kept in a
// cqrs::EventStore (SQLite beside the links, or PostgreSQL shared by every node), and an inline
// read model folds them into three tables a stats query reads without joins:
//
//   redirect ──publish──▶ bus ──async──▶ ClickRecorder ──batched append──▶ event store
//                                                                             │ same transaction
//                                                                             ▼
//   GET /api/v1/links/{code} ◀── SqliteClickStats / PostgresClickStats ◀── shortener_clicks,
//                                                                          shortener_referrers,
//                                                                          shortener_daily
//
//   sqlite::SqliteEventStore events("links.db");
//   SqliteClickStats stats(events, "links.db");          // adds the inline read model
//   ClickRecorder recorder(bus, events, scheduler);       // bus clicks → events, in batches
//   stats.stats("k3F9aZ0").clicks
//
// Why events and not counters: the log keeps every click (time, referrer host, agent class,
// anonymised client) so that a new question — clicks per country, per hour — is a new
// projection rebuilt from the log (rebuild()), not a migration of counters that threw the
// detail away.
//
// Latency and loss: the redirect only publishes on the bus. The recorder appends a batch when
// it holds `max_batch` clicks or every `flush_interval`, whichever comes first, so the stats
// lag by at most about flush_interval (+ the bus queue). A process that dies loses the clicks
// it had not appended yet (at most one interval's worth); clicks are analytics, and a redirect
// is never slowed or failed to make them safer. An append that fails (database busy or down)
// keeps its clicks for the next flush, up to `max_buffered`, beyond which the oldest are
// dropped and counted.
//
// Many nodes: every node appends to the one PostgreSQL store and runs the read model inline;
// appends are serialised by the store, so each click is counted exactly once whichever node
// recorded it.
//
// Thread safety: every member is safe to call from any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "case_studies/url_shortener/analytics.h"
#include "keel/core/clock.h"
#include "keel/core/scheduler.h"
#include "keel/core/subscription.h"
#include "keel/cqrs/event_store.h"
#include "keel/pubsub/event_bus.h"

namespace keel::sqlite {
class SqliteEventStore;
}
namespace keel::postgres {
class PostgresEventStore;
}

namespace keel::shortener {

// The event type and stream of clicks in the event store.
inline constexpr std::string_view kClickEventType = "LinkClicked";
inline constexpr std::string_view kClickStream = "clicks";

// A click as an event (data: {"code","at_ms","referrer","agent","client"}) and back. from_event
// throws std::invalid_argument for data that is not a click.
cqrs::NewEvent click_event(const Click& click);
Click click_from_event(const cqrs::RecordedEvent& event);

struct ClickRecorderOptions {
  // Clicks per append. REQUIRES: >= 1.
  std::size_t max_batch = 500;
  // Time after which buffered clicks are appended even if fewer than max_batch. REQUIRES: > 0.
  Duration flush_interval = std::chrono::milliseconds(250);
  // Clicks kept while the store fails; beyond, the oldest are dropped (and counted).
  std::size_t max_buffered = 100'000;
  // How the recorder receives clicks from the bus. Asynchronous keeps the redirect off the
  // store; tests may use synchronous delivery.
  pubsub::Delivery delivery = pubsub::Delivery::asynchronous;
};

struct ClickRecorderMetrics {
  std::uint64_t recorded = 0;   // clicks appended to the store
  std::uint64_t appends = 0;    // successful appends (batches)
  std::uint64_t failures = 0;   // appends that threw (their clicks kept for the next flush)
  std::uint64_t dropped = 0;    // clicks dropped (buffer full, or not a valid click)
  std::uint64_t buffered = 0;   // clicks waiting now
};

// Turns the bus's click messages into events in `store`, in batches.
class ClickRecorder {
 public:
  // Subscribes to kClickTopic on `bus` and schedules the periodic flush on `scheduler`. All
  // three must outlive the recorder. Throws std::invalid_argument for invalid options.
  ClickRecorder(pubsub::EventBus& bus, cqrs::EventStore& store, Scheduler& scheduler,
                ClickRecorderOptions options = {});
  // Unsubscribes, stops the timer and appends what is buffered (once; errors are logged).
  ~ClickRecorder();
  ClickRecorder(const ClickRecorder&) = delete;
  ClickRecorder& operator=(const ClickRecorder&) = delete;

  // Appends the buffered clicks now. Returns false when the append failed (clicks kept).
  bool flush();
  ClickRecorderMetrics metrics() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
  Subscription subscription_;
};

// The read model's tables and queries on SQLite: added inline to `store`, so a stats query never
// sees the log ahead of the tables. `path` is the store's file (queries use a connection of
// their own; WAL readers never wait for the writer).
class SqliteClickStats final : public ClickStats {
 public:
  SqliteClickStats(sqlite::SqliteEventStore& store, const std::string& path);
  ~SqliteClickStats() override;
  LinkStats stats(std::string_view code) const override;
  std::uint64_t total_clicks() const override;
  // Empties the tables and folds the whole log again.
  void rebuild();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The same on PostgreSQL: the tables live in the store's database, shared by every node.
class PostgresClickStats final : public ClickStats {
 public:
  PostgresClickStats(postgres::PostgresEventStore& store, const std::string& connection_string);
  ~PostgresClickStats() override;
  LinkStats stats(std::string_view code) const override;
  std::uint64_t total_clicks() const override;
  void rebuild();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::shortener
