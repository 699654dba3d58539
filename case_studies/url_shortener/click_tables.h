// The click read model's SQL, shared by the SQLite and PostgreSQL versions: both dialects accept
// the statements as written ($1, $2 are PostgreSQL's parameters, and SQLite's named parameters,
// numbered in order of appearance). Internal to the shortener library.
#pragma once

#include <string>

#include "keel/core/clock.h"

namespace keel::shortener {

// "YYYY-MM-DD" of a time point, in UTC.
std::string click_day(WallTime at);

namespace click_tables {

// Three tables, each keyed for its query: totals per link, clicks per (link, referrer host),
// clicks per (link, UTC day).
inline constexpr const char* kCreateSqlite =
    "CREATE TABLE IF NOT EXISTS shortener_clicks (code TEXT PRIMARY KEY, clicks INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shortener_referrers (code TEXT NOT NULL, referrer TEXT NOT NULL,"
    " clicks INTEGER NOT NULL, PRIMARY KEY (code, referrer));"
    "CREATE TABLE IF NOT EXISTS shortener_daily (code TEXT NOT NULL, day TEXT NOT NULL,"
    " clicks INTEGER NOT NULL, PRIMARY KEY (code, day))";

inline constexpr const char* kCreatePostgres =
    "CREATE TABLE IF NOT EXISTS shortener_clicks (code text PRIMARY KEY, clicks bigint NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shortener_referrers (code text NOT NULL, referrer text NOT NULL,"
    " clicks bigint NOT NULL, PRIMARY KEY (code, referrer));"
    "CREATE TABLE IF NOT EXISTS shortener_daily (code text NOT NULL, day text NOT NULL,"
    " clicks bigint NOT NULL, PRIMARY KEY (code, day))";

inline constexpr const char* kUpsertClicks =
    "INSERT INTO shortener_clicks (code, clicks) VALUES ($1, 1) "
    "ON CONFLICT (code) DO UPDATE SET clicks = shortener_clicks.clicks + 1";
inline constexpr const char* kUpsertReferrers =
    "INSERT INTO shortener_referrers (code, referrer, clicks) VALUES ($1, $2, 1) "
    "ON CONFLICT (code, referrer) DO UPDATE SET clicks = shortener_referrers.clicks + 1";
inline constexpr const char* kUpsertDaily =
    "INSERT INTO shortener_daily (code, day, clicks) VALUES ($1, $2, 1) "
    "ON CONFLICT (code, day) DO UPDATE SET clicks = shortener_daily.clicks + 1";
inline constexpr const char* kClear =
    "DELETE FROM shortener_clicks; DELETE FROM shortener_referrers; DELETE FROM shortener_daily";

inline constexpr const char* kSelectClicks = "SELECT clicks FROM shortener_clicks WHERE code = $1";
inline constexpr const char* kSelectReferrers =
    "SELECT referrer, clicks FROM shortener_referrers WHERE code = $1 "
    "ORDER BY clicks DESC, referrer";
inline constexpr const char* kSelectDaily =
    "SELECT day, clicks FROM shortener_daily WHERE code = $1 ORDER BY day";
inline constexpr const char* kSelectTotal = "SELECT COALESCE(SUM(clicks), 0) FROM shortener_clicks";

}  // namespace click_tables
}  // namespace keel::shortener
