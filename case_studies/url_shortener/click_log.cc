#include "case_studies/url_shortener/click_log.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <deque>
#include <stdexcept>
#include <utility>

#include "case_studies/url_shortener/click_tables.h"
#include "keel/sqlite/database.h"
#include "keel/sqlite/event_store.h"

namespace keel::shortener {

cqrs::NewEvent click_event(const Click& click) {
  const boost::json::object data{
      {"code", click.code},
      {"at_ms",
       std::chrono::duration_cast<std::chrono::milliseconds>(click.at.time_since_epoch()).count()},
      {"referrer", click.referrer},
      {"agent", click.agent},
      {"client", click.client}};
  return cqrs::NewEvent{.type = std::string(kClickEventType), .data = boost::json::serialize(data)};
}

namespace {

std::string text_field(const boost::json::object& object, std::string_view key) {
  const boost::json::value* value = object.if_contains(key);
  if (value == nullptr || !value->is_string()) {
    throw std::invalid_argument(fmt::format("a click event needs a string \"{}\"", key));
  }
  return std::string(value->get_string());
}

Click click_from_json(std::string_view json) {
  boost::system::error_code ec;
  const boost::json::value value = boost::json::parse(json, ec);
  if (ec || !value.is_object()) throw std::invalid_argument("a click is a JSON object");
  const boost::json::object& object = value.get_object();
  const boost::json::value* at = object.if_contains("at_ms");
  if (at == nullptr || !at->is_int64()) {
    throw std::invalid_argument("a click event needs an integer \"at_ms\"");
  }
  return Click{.code = text_field(object, "code"),
               .at = WallTime{std::chrono::milliseconds{at->get_int64()}},
               .referrer = text_field(object, "referrer"),
               .agent = text_field(object, "agent"),
               .client = text_field(object, "client")};
}

}  // namespace

Click click_from_event(const cqrs::RecordedEvent& event) {
  if (event.type != kClickEventType) {
    throw std::invalid_argument(fmt::format("not a click event: {}", event.type));
  }
  return click_from_json(event.data);
}

std::string click_day(WallTime at) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch());
  return fmt::format("{:%Y-%m-%d}", std::chrono::sys_seconds(seconds));
}

// ---------------------------------------------------------------------------------------------
// ClickRecorder

struct ClickRecorder::State {
  State(cqrs::EventStore& s, Scheduler& sch, ClickRecorderOptions o)
      : store(s), scheduler(sch), options(o) {}

  cqrs::EventStore& store;
  Scheduler& scheduler;
  const ClickRecorderOptions options;

  std::mutex append_mutex;  // one append at a time, in buffer order
  mutable std::mutex mutex;
  std::deque<cqrs::NewEvent> buffer;  // GUARDED_BY(mutex)
  ClickRecorderMetrics metrics;       // GUARDED_BY(mutex), buffered computed on read
  TaskHandle timer;                   // GUARDED_BY(mutex)
  bool stopped = false;               // GUARDED_BY(mutex)

  void add(const pubsub::Message& message) {
    Click click;
    try {
      click = click_from_json(message.payload);
    } catch (const std::exception& e) {
      const std::lock_guard lock(mutex);
      ++metrics.dropped;
      spdlog::warn("shortener: click message dropped: {}", e.what());
      return;
    }
    bool full = false;
    {
      const std::lock_guard lock(mutex);
      buffer.push_back(click_event(click));
      while (buffer.size() > options.max_buffered) {
        buffer.pop_front();
        ++metrics.dropped;
      }
      full = buffer.size() >= options.max_batch;
    }
    if (full) flush();
  }

  // Appends batches until the buffer is empty or an append fails.
  bool flush() {
    const std::lock_guard serial(append_mutex);
    for (;;) {
      std::vector<cqrs::NewEvent> batch;
      {
        const std::lock_guard lock(mutex);
        if (buffer.empty()) return true;
        const std::size_t n = std::min(buffer.size(), options.max_batch);
        batch.assign(std::make_move_iterator(buffer.begin()),
                     std::make_move_iterator(buffer.begin() + static_cast<std::ptrdiff_t>(n)));
        buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
      }
      try {
        store.append(kClickStream, cqrs::ExpectedVersion::any(), batch);
      } catch (const std::exception& e) {
        const std::lock_guard lock(mutex);
        ++metrics.failures;
        // Back to the front, in order, for the next flush; the oldest go first if over the cap.
        buffer.insert(buffer.begin(), std::make_move_iterator(batch.begin()),
                      std::make_move_iterator(batch.end()));
        while (buffer.size() > options.max_buffered) {
          buffer.pop_front();
          ++metrics.dropped;
        }
        spdlog::warn("shortener: appending {} clicks failed (kept for the next flush): {}",
                     batch.size(), e.what());
        return false;
      }
      const std::lock_guard lock(mutex);
      ++metrics.appends;
      metrics.recorded += batch.size();
    }
  }

  void schedule(const std::shared_ptr<State>& self) {
    const std::lock_guard lock(mutex);
    if (stopped) return;
    std::weak_ptr<State> weak = self;
    timer = scheduler.schedule_after(options.flush_interval, [weak] {
      if (const auto state = weak.lock()) {
        state->flush();
        state->schedule(state);
      }
    });
  }
};

ClickRecorder::ClickRecorder(pubsub::EventBus& bus, cqrs::EventStore& store,
                             Scheduler& scheduler, ClickRecorderOptions options) {
  if (options.max_batch == 0) throw std::invalid_argument("ClickRecorder: max_batch must be >= 1");
  if (options.flush_interval <= Duration::zero()) {
    throw std::invalid_argument("ClickRecorder: flush_interval must be > 0");
  }
  if (options.max_buffered < options.max_batch) {
    throw std::invalid_argument("ClickRecorder: max_buffered must be >= max_batch");
  }
  state_ = std::make_shared<State>(store, scheduler, options);
  std::weak_ptr<State> weak = state_;
  subscription_ = bus.subscribe(
      kClickTopic,
      [weak](const pubsub::Message& message) {
        if (const auto state = weak.lock()) state->add(message);
      },
      {.name = "click-recorder",
       .delivery = options.delivery,
       .queue_capacity = 65'536,
       .overflow = pubsub::OverflowPolicy::drop_oldest});
  state_->schedule(state_);
}

ClickRecorder::~ClickRecorder() {
  subscription_.unsubscribe();
  {
    const std::lock_guard lock(state_->mutex);
    state_->stopped = true;
    state_->timer.cancel();
  }
  if (!state_->flush()) spdlog::warn("shortener: clicks lost at shutdown: the last append failed");
}

bool ClickRecorder::flush() { return state_->flush(); }

ClickRecorderMetrics ClickRecorder::metrics() const {
  const std::lock_guard lock(state_->mutex);
  ClickRecorderMetrics m = state_->metrics;
  m.buffered = state_->buffer.size();
  return m;
}

// ---------------------------------------------------------------------------------------------
// SQLite read model

namespace {

class SqliteClickTables final : public sqlite::SqliteReadModel {
 public:
  std::string name() const override { return "shortener_clicks"; }
  void create(sqlite::Database& db) override { db.execute(click_tables::kCreateSqlite); }
  void update(sqlite::Database& db, const cqrs::RecordedEvent& event) override {
    if (event.type != kClickEventType) return;
    const Click click = click_from_event(event);
    Statements& s = statements(db);
    s.clicks.reset();
    s.clicks.bind_text(1, click.code);
    s.clicks.step();
    s.referrers.reset();
    s.referrers.bind_text(1, click.code).bind_text(2, click.referrer);
    s.referrers.step();
    s.daily.reset();
    s.daily.bind_text(1, click.code).bind_text(2, click_day(click.at));
    s.daily.step();
  }
  void clear(sqlite::Database& db) override { db.execute(click_tables::kClear); }

 private:
  // Prepared once per connection: the three upserts are most of a click's cost. The model
  // belongs to one SqliteClickStats, used by one store (one connection) for its whole life;
  // update() is called under that store's lock.
  struct Statements {
    explicit Statements(sqlite::Database& db)
        : clicks(db.prepare(click_tables::kUpsertClicks)),
          referrers(db.prepare(click_tables::kUpsertReferrers)),
          daily(db.prepare(click_tables::kUpsertDaily)) {}
    sqlite::Statement clicks;
    sqlite::Statement referrers;
    sqlite::Statement daily;
  };
  Statements& statements(sqlite::Database& db) {
    if (db_ != &db || !statements_) {
      statements_ = std::make_unique<Statements>(db);
      db_ = &db;
    }
    return *statements_;
  }
  sqlite::Database* db_ = nullptr;
  std::unique_ptr<Statements> statements_;
};

}  // namespace

struct SqliteClickStats::Impl {
  Impl(sqlite::SqliteEventStore& s, const std::string& path) : store(s), db(path) {}
  sqlite::SqliteEventStore& store;
  SqliteClickTables tables;
  mutable std::mutex mutex;
  mutable sqlite::Database db;  // GUARDED_BY(mutex): queries only
};

SqliteClickStats::SqliteClickStats(sqlite::SqliteEventStore& store, const std::string& path)
    : impl_(std::make_unique<Impl>(store, path)) {
  store.add_inline_read_model(impl_->tables);
}

SqliteClickStats::~SqliteClickStats() = default;

LinkStats SqliteClickStats::stats(std::string_view code) const {
  const std::lock_guard lock(impl_->mutex);
  LinkStats stats;
  auto total = impl_->db.prepare(click_tables::kSelectClicks);
  total.bind_text(1, code);
  if (total.step()) stats.clicks = static_cast<std::uint64_t>(total.column_int64(0));
  auto referrers = impl_->db.prepare(click_tables::kSelectReferrers);
  referrers.bind_text(1, code);
  while (referrers.step()) {
    stats.referrers.emplace_back(referrers.column_text(0),
                                 static_cast<std::uint64_t>(referrers.column_int64(1)));
  }
  auto daily = impl_->db.prepare(click_tables::kSelectDaily);
  daily.bind_text(1, code);
  while (daily.step()) {
    stats.daily.emplace_back(daily.column_text(0),
                             static_cast<std::uint64_t>(daily.column_int64(1)));
  }
  return stats;
}

std::uint64_t SqliteClickStats::total_clicks() const {
  const std::lock_guard lock(impl_->mutex);
  auto total = impl_->db.prepare(click_tables::kSelectTotal);
  return total.step() ? static_cast<std::uint64_t>(total.column_int64(0)) : 0;
}

void SqliteClickStats::rebuild() { impl_->store.rebuild_inline_read_model(impl_->tables); }

}  // namespace keel::shortener
