// Reading an SqliteEventStore's file from another process than the one writing it (the crash
// tests): a connection of the reader's own, opened for each look.
#pragma once

#include <cstdint>
#include <string>

#include "keel/sqlite/database.h"

namespace keel::testing {

// Events committed in `file` so far; 0 before the writer created the file or its schema.
inline std::uint64_t committed_events(const std::string& file) {
  try {
    sqlite::Database db(file, {.read_only = true});
    sqlite::Statement count = db.prepare("SELECT count(*) FROM keel_events");
    count.step();
    return static_cast<std::uint64_t>(count.column_int64(0));
  } catch (const sqlite::Error&) {
    return 0;
  }
}

}  // namespace keel::testing
