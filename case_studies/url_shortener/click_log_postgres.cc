// PostgresClickStats: the click read model in PostgreSQL (see click_log.h).
#include <mutex>

#include "case_studies/url_shortener/click_log.h"
#include "case_studies/url_shortener/click_tables.h"
#include "keel/postgres/connection.h"
#include "keel/postgres/event_store.h"

namespace keel::shortener {

namespace {

class PostgresClickTables final : public postgres::PostgresReadModel {
 public:
  std::string name() const override { return "shortener_clicks"; }
  void create(postgres::Transaction& tx) override { tx.execute(click_tables::kCreatePostgres); }
  void update(postgres::Transaction& tx, const cqrs::RecordedEvent& event) override {
    if (event.type != kClickEventType) return;
    const Click click = click_from_event(event);
    tx.execute(click_tables::kUpsertClicks, {click.code});
    tx.execute(click_tables::kUpsertReferrers, {click.code, click.referrer});
    tx.execute(click_tables::kUpsertDaily, {click.code, click_day(click.at)});
  }
  void clear(postgres::Transaction& tx) override { tx.execute(click_tables::kClear); }
};

}  // namespace

struct PostgresClickStats::Impl {
  Impl(postgres::PostgresEventStore& s, const std::string& connection_string)
      : store(s), db(connection_string) {}
  postgres::PostgresEventStore& store;
  PostgresClickTables tables;
  mutable std::mutex mutex;
  mutable postgres::Connection db;  // GUARDED_BY(mutex): queries only
};

PostgresClickStats::PostgresClickStats(postgres::PostgresEventStore& store,
                                       const std::string& connection_string)
    : impl_(std::make_unique<Impl>(store, connection_string)) {
  store.add_inline_read_model(impl_->tables);
}

PostgresClickStats::~PostgresClickStats() = default;

LinkStats PostgresClickStats::stats(std::string_view code) const {
  const std::lock_guard lock(impl_->mutex);
  LinkStats stats;
  const std::string key(code);
  for (const postgres::Row& row : impl_->db.execute(click_tables::kSelectClicks, {key})) {
    stats.clicks = static_cast<std::uint64_t>(row.as_int64(0));
  }
  for (const postgres::Row& row : impl_->db.execute(click_tables::kSelectReferrers, {key})) {
    stats.referrers.emplace_back(row.as_text(0), static_cast<std::uint64_t>(row.as_int64(1)));
  }
  for (const postgres::Row& row : impl_->db.execute(click_tables::kSelectDaily, {key})) {
    stats.daily.emplace_back(row.as_text(0), static_cast<std::uint64_t>(row.as_int64(1)));
  }
  return stats;
}

std::uint64_t PostgresClickStats::total_clicks() const {
  const std::lock_guard lock(impl_->mutex);
  for (const postgres::Row& row : impl_->db.execute(click_tables::kSelectTotal)) {
    return static_cast<std::uint64_t>(row.as_int64(0));
  }
  return 0;
}

void PostgresClickStats::rebuild() { impl_->store.rebuild_inline_read_model(impl_->tables); }

}  // namespace keel::shortener
