// Uses the engine adapters of an installed keel: their engines' client libraries must come with
// the package (keelConfig.cmake finds them), yet stay out of keel's headers.
#include <cstdio>
#include <string>

#include "keel/postgres.h"
#include "keel/redis.h"
#include "keel/sqlite.h"

int main() {
  keel::sqlite::Database db(":memory:");
  db.execute("CREATE TABLE t (x INTEGER)");
  keel::sqlite::Statement insert = db.prepare("INSERT INTO t VALUES (?)");
  insert.bind_int64(1, 42).step();

  // Nothing listens on port 1: a miss, counted, never an exception.
  keel::redis::RedisCacheOptions options;
  options.connection.port = 1;
  keel::redis::RedisCache<std::string, std::string> cache(options);
  const bool missed = !cache.get("k") && cache.metrics().read_errors == 1;

  const keel::postgres::Param param(42);
  const bool ok = db.last_insert_rowid() == 1 && missed && param.text() == std::string("42");
  std::puts(ok ? "keel package works" : "keel package BROKEN");
  return ok ? 0 : 1;
}
